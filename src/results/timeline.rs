//! timeline.csv: one row per interval x target: requests, rate, errors, hits, misses, hit ratio,
//! corrected p50/p99 of the total time, bytes, retries, connections opened, requests on
//! kept-alive connections, TLS sessions resumed. A stall shows as rows with zero requests.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache_status::{self, CacheClass};
use crate::measure::{IntervalData, Metric};

pub const NAME: &str = "timeline.csv";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub run_id: String,
    pub region: String,
    /// seconds from the run's start to the interval's start
    pub t_s: f64,
    pub target: String,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub hits: u64,
    pub misses: u64,
    /// empty when no request counted in the ratio
    pub hit_ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub bytes: u64,
    /// requests resent on a new connection (`--retries`); absent in files before 0.6
    #[serde(default)]
    pub retries: u64,
    /// connections opened in the interval (built-in client)
    #[serde(default)]
    pub connections: u64,
    /// requests sent on a kept-alive connection, and TLS handshakes that resumed a session
    /// (built-in client); absent in files before 2026-11-30
    #[serde(default)]
    pub reused: u64,
    #[serde(default)]
    pub resumed: u64,
}

pub fn rows(
    d: &IntervalData,
    interval: Duration,
    names: &[String],
    run_id: &str,
    region: &str,
) -> Vec<Row> {
    let secs = interval.as_secs_f64();
    names
        .iter()
        .enumerate()
        .map(|(ti, name)| {
            let c = &d.targets[ti];
            let all = d.target_all(ti);
            let h = all.as_ref().map(|s| &s.h[Metric::Total]);
            let q = |p: f64| {
                h.filter(|h| !h.is_empty())
                    .map(|h| h.value_at_quantile(p) as f64 / 1000.0)
            };
            Row {
                run_id: run_id.to_string(),
                region: region.to_string(),
                t_s: d.idx as f64 * secs,
                target: name.clone(),
                requests: c.requests,
                rps: c.requests as f64 / secs,
                errors: c.error_count(),
                hits: c.classes[CacheClass::Hit.index()] + c.classes[CacheClass::StaleHit.index()],
                // the edge's misses: origin fetches, revalidations and shield hits
                misses: c.classes[CacheClass::Miss.index()]
                    + c.classes[CacheClass::Revalidated.index()]
                    + c.classes[CacheClass::ShieldHit.index()],
                hit_ratio: cache_status::hit_ratio(&c.classes),
                p50_ms: q(0.5),
                p99_ms: q(0.99),
                bytes: all.map(|s| s.bytes).unwrap_or(0),
                retries: c.retries,
                connections: c.opened,
                reused: c.reused,
                resumed: c.tls_resumed,
            }
        })
        .collect()
}

pub(crate) struct TimelineWriter<W: Write> {
    w: csv::Writer<W>,
}

impl<W: Write> TimelineWriter<W> {
    pub fn new(w: W) -> Self {
        TimelineWriter {
            w: csv::Writer::from_writer(w),
        }
    }
    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        self.w.serialize(row).map_err(std::io::Error::other)
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

pub fn read(bytes: &[u8]) -> Result<Vec<Row>, csv::Error> {
    csv::Reader::from_reader(bytes).deserialize().collect()
}

#[cfg(test)]
mod tests {
    /// A timeline written before the `retries` column reads with 0 retries; a new one
    /// round-trips.
    #[test]
    fn old_files_read_and_new_ones_round_trip() {
        let old = "run_id,region,t_s,target,requests,rps,errors,hits,misses,hit_ratio,p50_ms,p99_ms,bytes\n\
                   r,local,0.0,edge,10,10.0,1,6,3,0.6666,1.5,9.0,4000\n";
        let rows = super::read(old.as_bytes()).unwrap();
        assert_eq!(
            (rows[0].requests, rows[0].retries, rows[0].bytes),
            (10, 0, 4000)
        );
        let mut row = rows[0].clone();
        row.retries = 3;
        row.reused = 7;
        row.resumed = 2;
        row.hit_ratio = None;
        let mut w = super::TimelineWriter::new(Vec::new());
        w.write(&row).unwrap();
        w.flush().unwrap();
        let bytes = w.w.into_inner().unwrap();
        assert_eq!(super::read(&bytes).unwrap(), vec![row]);
    }
}
