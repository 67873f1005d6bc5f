//! The results directory: summary.json, latency.hlog, timeline.csv, samples.jtl and pops.hlog
//! (optional) and MANIFEST.json, written last. `ResultsWriter` is the engine's sink: it writes each interval as
//! it is finished (flushed, so a killed run still leaves its data), then the summary and manifest.

pub mod hlog;
pub mod jtl;
pub mod live;
pub mod manifest;
pub mod summary;
pub mod timeline;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache_status::CacheClass;
use crate::measure::{IntervalData, Metric, Sink};

pub const SUMMARY: &str = "summary.json";
pub(crate) const SAMPLES: &str = "samples.jtl";
/// `observe`: the URLs that missed most, as a URL list `run` and `mirror` read
pub const MISSES: &str = "misses.csv";
/// Every file a results directory may hold besides MANIFEST.json: the only names a manifest may
/// list (a downloaded manifest is untrusted input).
pub(crate) const FILES: [&str; 6] = [
    SUMMARY,
    hlog::NAME,
    timeline::NAME,
    SAMPLES,
    hlog::POPS,
    MISSES,
];

pub struct ResultsWriter {
    dir: PathBuf,
    run_id: String,
    region: String,
    names: Vec<String>,
    interval: Duration,
    hlog_file: Option<BufWriter<File>>,
    hlog: Option<hlog::HlogWriter<BufWriter<File>>>,
    timeline: timeline::TimelineWriter<BufWriter<File>>,
    samples: Option<BufWriter<File>>,
    /// the run's start (BaseTime of the logs)
    start: Option<SystemTime>,
    pops_written: bool,
    /// files written beside the writer's own (`MISSES`), listed in the manifest
    extra: Vec<&'static str>,
}

fn create(dir: &Path, name: &str) -> std::io::Result<BufWriter<File>> {
    let p = dir.join(name);
    File::create(&p)
        .map(BufWriter::new)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create {}: {e}", p.display())))
}

impl ResultsWriter {
    pub fn create(
        dir: &Path,
        run_id: &str,
        region: &str,
        names: Vec<String>,
        interval: Duration,
        samples: bool,
    ) -> std::io::Result<ResultsWriter> {
        std::fs::create_dir_all(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        // A directory reused for a new run must not keep a stale manifest.
        let _ = std::fs::remove_file(dir.join(manifest::NAME));
        let _ = std::fs::remove_file(dir.join(SAMPLES));
        let _ = std::fs::remove_file(dir.join(hlog::POPS));
        let hlog_file = Some(create(dir, hlog::NAME)?);
        let timeline = timeline::TimelineWriter::new(create(dir, timeline::NAME)?);
        let samples = if samples {
            let mut w = create(dir, SAMPLES)?;
            writeln!(w, "{}", jtl::HEADER)?;
            Some(w)
        } else {
            None
        };
        Ok(ResultsWriter {
            dir: dir.to_path_buf(),
            run_id: run_id.to_string(),
            region: region.to_string(),
            names,
            interval,
            hlog_file,
            hlog: None,
            timeline,
            samples,
            start: None,
            pops_written: false,
            extra: Vec::new(),
        })
    }

    /// pops.hlog: the run's latency per (target, POP, class), one histogram each over the whole
    /// run (`elapsed`), tagged `target=T;pop=P;class=C;metric=M;basis=B`. Written only when
    /// responses named a POP.
    pub fn pops(&mut self, totals: &IntervalData, elapsed: Duration) -> std::io::Result<()> {
        if totals.pop_series.is_empty() {
            return Ok(());
        }
        let start = self.start.unwrap_or_else(SystemTime::now);
        let f = create(&self.dir, hlog::POPS)?;
        let mut w = hlog::HlogWriter::new(f, start, &self.run_id, &self.region)?;
        let mut series: Vec<&crate::measure::PopSeries> = totals.pop_series.iter().collect();
        series.sort_by_key(|p| (p.target, p.pop.as_str().to_string(), p.class));
        for p in series {
            let Some(name) = self.names.get(p.target) else {
                continue;
            };
            for m in Metric::ALL {
                let h = &p.s.h[m];
                if !h.is_empty() {
                    let (metric, basis) = m.tag_parts();
                    let tag = hlog::pop_tag(name, p.pop.as_str(), p.class.as_str(), metric, basis);
                    w.write(&tag, Duration::ZERO, elapsed, h)?;
                }
            }
        }
        w.flush()?;
        self.pops_written = true;
        Ok(())
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists a file written into the directory by someone else (one of `FILES`) in the
    /// manifest.
    pub fn add_file(&mut self, name: &'static str) {
        debug_assert!(FILES.contains(&name));
        if !self.extra.contains(&name) {
            self.extra.push(name);
        }
    }

    /// Writes summary.json, flushes everything, and writes MANIFEST.json last.
    pub fn finish(mut self, summary: &summary::Summary) -> std::io::Result<PathBuf> {
        if self.hlog.is_none() {
            // a run that never started still leaves a valid (empty) log
            self.begin(SystemTime::now())?;
        }
        if let Some(h) = self.hlog.as_mut() {
            h.flush()?;
        }
        self.timeline.flush()?;
        let mut files = vec![SUMMARY, hlog::NAME];
        if self.pops_written {
            files.push(hlog::POPS);
        }
        files.push(timeline::NAME);
        if let Some(s) = self.samples.as_mut() {
            s.flush()?;
            files.push(SAMPLES);
        }
        files.extend(self.extra.iter().copied());
        let json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
        crate::guard::atomic::write(&self.dir.join(SUMMARY), &json)?;
        manifest::Manifest::write(&self.dir, &self.run_id, &self.region, &files)?;
        Ok(self.dir)
    }
}

impl Sink for ResultsWriter {
    fn begin(&mut self, start: SystemTime) -> std::io::Result<()> {
        self.start = Some(start);
        if let Some(f) = self.hlog_file.take() {
            self.hlog = Some(hlog::HlogWriter::new(f, start, &self.run_id, &self.region)?);
        }
        Ok(())
    }

    fn interval(&mut self, d: &IntervalData, _totals: &IntervalData) -> std::io::Result<()> {
        let start = self.interval * d.idx as u32;
        let Some(hlog) = self.hlog.as_mut() else {
            return Err(std::io::Error::other("interval before begin"));
        };
        for (ti, name) in self.names.iter().enumerate() {
            for c in CacheClass::ALL {
                if let Some(s) = d.series(ti, c) {
                    for m in Metric::ALL {
                        let h = &s.h[m];
                        if !h.is_empty() {
                            let (metric, basis) = m.tag_parts();
                            hlog.write(
                                &hlog::tag(name, c.as_str(), metric, basis),
                                start,
                                self.interval,
                                h,
                            )?;
                        }
                    }
                }
            }
        }
        for row in timeline::rows(d, self.interval, &self.names, &self.run_id, &self.region) {
            self.timeline.write(&row)?;
        }
        hlog.flush()?;
        self.timeline.flush()
    }

    fn samples(&mut self, rows: &[u8]) -> std::io::Result<()> {
        match self.samples.as_mut() {
            Some(w) => w.write_all(rows),
            None => Ok(()),
        }
    }
}
