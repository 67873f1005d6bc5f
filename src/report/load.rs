//! Reads results directories for the report. A directory without MANIFEST.json is an
//! incomplete upload: skipped with a warning. A different format_version or a damaged file is
//! an error that names the file. Remote stores (S3) hand the same `RunData` over; this is the
//! only place that knows the on-disk layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use hdrhistogram::Histogram;

use super::sparse::Sparse;

use crate::results::manifest::{self, Manifest};
use crate::results::summary::Summary;
use crate::results::{hlog, timeline};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Summary(#[from] crate::results::summary::SummaryError),
    #[error("{path}: {msg}")]
    Bad { path: String, msg: String },
}

/// Latency percentiles of one step of one target (corrected total, classes merged), ms.
#[derive(Clone, Debug, PartialEq)]
pub struct TimePoint {
    pub target: Arc<str>,
    /// unix seconds of the interval's start
    pub start: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// (target, class, metric)
pub(crate) type SeriesKey = (String, String, crate::measure::Metric);
/// (target, POP, class, metric)
pub(crate) type PopKey = (String, String, String, crate::measure::Metric);

/// Counts of one step of one target (timeline.csv's rows, added up per step).
#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    pub target: Arc<str>,
    /// seconds from the run's start to the step's start
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub hits: u64,
    pub misses: u64,
}

/// The most points a run keeps per series over time: about a plot's width. A longer run's
/// intervals are added up into steps of several intervals.
pub(crate) const MAX_POINTS: f64 = 1200.0;

/// One results directory, read in one pass: interval histograms are added into the run's totals
/// as they are decoded (kept as their recorded buckets) and reduced to percentiles per step, so
/// memory does not grow with the run's length.
pub struct RunData {
    pub dir: PathBuf,
    pub summary: Summary,
    pub totals: BTreeMap<SeriesKey, Sparse>,
    /// the whole run's histograms per POP (pops.hlog; empty before format 2 or without POPs)
    pub pop_totals: BTreeMap<PopKey, Sparse>,
    pub over_time: Vec<TimePoint>,
    pub timeline: Vec<Rates>,
    /// unix seconds of the run's start
    pub start: f64,
    /// seconds a point of `over_time` and `timeline` covers: the interval, or a multiple of it
    /// for a run longer than `MAX_POINTS` intervals
    pub step: f64,
}

impl RunData {
    pub fn region(&self) -> &str {
        &self.summary.region
    }
}

/// Every results directory at or below `path` (a run folder with region folders, or one dir).
pub(crate) fn find_dirs(path: &Path) -> Vec<PathBuf> {
    if path.join(crate::results::SUMMARY).exists()
        || path.join(manifest::NAME).exists()
        || path.join(hlog::NAME).exists()
    {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(path) {
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for s in subs {
            out.extend(find_dirs(&s));
        }
    }
    out
}

/// A tag's series: (target, POP (empty unless `pop`), class, metric); an error quoting the tag
/// when a part is missing or unknown.
fn series_of(tag: &str, pop: bool) -> Result<(&str, &str, &str, crate::measure::Metric), String> {
    let t = hlog::parse_tag(tag);
    let bad = || format!("interval with an unexpected tag {tag:?}");
    let part = |k: &str| t.get(k).copied().ok_or_else(bad);
    let p = if pop { part("pop")? } else { "" };
    let metric =
        crate::measure::Metric::from_tag_parts(part("metric")?, part("basis")?).ok_or_else(bad)?;
    Ok((part("target")?, p, part("class")?, metric))
}

/// The step a run's series are kept at: its interval, or a multiple of it for a run longer
/// than `MAX_POINTS` intervals (a run of 1200.3 intervals keeps its intervals).
pub(crate) fn step_of_run(s: &Summary) -> f64 {
    let interval = s.interval_s.max(1e-3);
    let n = s.duration_s / interval;
    if !n.is_finite() {
        return interval;
    }
    interval * (n / MAX_POINTS - 1e-3).ceil().max(1.0)
}

/// Loads one directory (its series kept at `step`, or its own); `Ok(None)` (with the reason)
/// when it is incomplete.
pub(crate) fn load_dir(
    dir: &Path,
    step: Option<f64>,
) -> Result<Result<RunData, String>, LoadError> {
    let m = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) if !dir.join(manifest::NAME).exists() => {
            return Ok(Err(format!(
                "{}: no {} (incomplete run or upload): skipped ({e})",
                dir.display(),
                manifest::NAME
            )));
        }
        Err(e) => {
            return Err(LoadError::Bad {
                path: dir.join(manifest::NAME).display().to_string(),
                msg: e,
            });
        }
    };
    let summary = Summary::read(&dir.join(crate::results::SUMMARY))?;
    let bad = |name: &str, msg: String| LoadError::Bad {
        path: dir.join(name).display().to_string(),
        msg,
    };
    for f in &m.files {
        let p = dir.join(&f.name);
        let size = std::fs::metadata(&p)
            .map(|md| md.len())
            .map_err(|e| bad(&f.name, e.to_string()))?;
        if size != f.size {
            return Err(bad(
                &f.name,
                format!(
                    "{size} bytes, the manifest says {} (truncated or changed)",
                    f.size
                ),
            ));
        }
    }
    let bytes = std::fs::read(dir.join(hlog::NAME)).map_err(|e| bad(hlog::NAME, e.to_string()))?;
    let mut totals: BTreeMap<SeriesKey, Histogram<u64>> = BTreeMap::new();
    let mut over_time = Vec::new();
    // target -> (step start, (value, count) pairs of the corrected total of all classes)
    type Pairs = Vec<(u64, u64)>;
    let mut current: BTreeMap<Arc<str>, (f64, Pairs)> = BTreeMap::new();
    let template = crate::measure::new_hist();
    let step = step.unwrap_or_else(|| step_of_run(&summary));
    // a step's start, as an offset from the run's start (offsets are written rounded to 1 ms:
    // half of that is added)
    let step_of = |offset: f64| ((offset + 0.0005) / step).floor() * step;
    let flush =
        |target: &Arc<str>, start: f64, pairs: &mut Vec<(u64, u64)>, out: &mut Vec<TimePoint>| {
            if pairs.is_empty() {
                return;
            }
            pairs.sort_unstable_by_key(|p| p.0);
            let total: u64 = pairs.iter().map(|p| p.1).sum();
            // HdrHistogram's value_at_quantile on the merged counts, without building the histogram
            let q = |p: f64| {
                let need = ((p * total as f64).ceil() as u64).max(1);
                let mut acc = 0;
                for &(v, c) in pairs.iter() {
                    acc += c;
                    if acc >= need {
                        return template.highest_equivalent(v) as f64 / 1000.0;
                    }
                }
                0.0
            };
            out.push(TimePoint {
                target: target.clone(),
                start,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
            });
            pairs.clear();
        };
    let base = std::cell::Cell::new(0.0f64);
    let record = |h: &mut Histogram<u64>, counts: &[(u64, u64)]| -> Result<(), String> {
        for &(v, c) in counts {
            h.record_n(v, c).map_err(|e| format!("value {v}: {e:?}"))?;
        }
        Ok(())
    };
    hlog::for_each_interval_sparse(
        &bytes,
        |b| base.set(b.as_secs_f64()),
        |iv| {
            let (target, _, class, mi) = series_of(iv.tag, false)?;
            let start = base.get() + step_of(iv.start.as_secs_f64());
            if mi == crate::measure::Metric::Total {
                match current.get_mut(target) {
                    Some((s, pairs)) if *s == start => pairs.extend_from_slice(iv.counts),
                    Some((s, pairs)) => {
                        let name: Arc<str> = target.into();
                        flush(&name, *s, pairs, &mut over_time);
                        *s = start;
                        pairs.extend_from_slice(iv.counts);
                    }
                    None => {
                        current.insert(target.into(), (start, iv.counts.to_vec()));
                    }
                }
            }
            let key = (target.to_string(), class.to_string(), mi);
            match totals.get_mut(&key) {
                Some(h) => record(h, iv.counts)?,
                None => {
                    let mut h = crate::measure::new_hist();
                    record(&mut h, iv.counts)?;
                    totals.insert(key, h);
                }
            }
            Ok(())
        },
    )
    .map_err(|e| bad(hlog::NAME, e))?;
    for (target, (s, pairs)) in current.iter_mut() {
        flush(target, *s, pairs, &mut over_time);
    }
    over_time.sort_by(|a, b| a.target.cmp(&b.target).then(a.start.total_cmp(&b.start)));
    let start = base.get();
    let tl =
        std::fs::read(dir.join(timeline::NAME)).map_err(|e| bad(timeline::NAME, e.to_string()))?;
    let rows = timeline::read(&tl).map_err(|e| bad(timeline::NAME, e.to_string()))?;
    drop(tl);
    let names: Vec<Arc<str>> = current.into_keys().collect();
    let mut timeline: Vec<Rates> = Vec::new();
    // target -> its last step in `timeline`
    let mut last: BTreeMap<Arc<str>, usize> = BTreeMap::new();
    for row in rows {
        let t_s = step_of(row.t_s);
        let add = |r: &mut Rates| {
            r.requests += row.requests;
            r.errors += row.errors;
            r.hits += row.hits;
            r.misses += row.misses;
        };
        match last.get(row.target.as_str()) {
            Some(&i) if timeline[i].t_s == t_s => add(&mut timeline[i]),
            _ => {
                let target = match names.iter().find(|n| &***n == row.target.as_str()) {
                    Some(n) => n.clone(),
                    None => row.target.as_str().into(),
                };
                let mut r = Rates {
                    target: target.clone(),
                    t_s,
                    requests: 0,
                    errors: 0,
                    hits: 0,
                    misses: 0,
                };
                add(&mut r);
                last.insert(target, timeline.len());
                timeline.push(r);
            }
        }
    }
    let mut pop_totals: BTreeMap<PopKey, Histogram<u64>> = BTreeMap::new();
    if m.files.iter().any(|f| f.name == hlog::POPS) {
        let bytes =
            std::fs::read(dir.join(hlog::POPS)).map_err(|e| bad(hlog::POPS, e.to_string()))?;
        hlog::for_each_interval_sparse(
            &bytes,
            |_| {},
            |iv| {
                let (target, pop, class, mi) = series_of(iv.tag, true)?;
                let key = (target.to_string(), pop.to_string(), class.to_string(), mi);
                let h = pop_totals
                    .entry(key)
                    .or_insert_with(crate::measure::new_hist);
                record(h, iv.counts)
            },
        )
        .map_err(|e| bad(hlog::POPS, e))?;
    }
    fn sparse<K>((k, h): (K, Histogram<u64>)) -> (K, Sparse) {
        (k, Sparse::of(&h))
    }
    Ok(Ok(RunData {
        dir: dir.to_path_buf(),
        summary,
        totals: totals.into_iter().map(sparse).collect(),
        pop_totals: pop_totals.into_iter().map(sparse).collect(),
        over_time,
        timeline,
        start,
        step,
    }))
}
