//! What a measurement is: the metrics (total/TTFB x corrected/service), error kinds, POP names,
//! one request's outcome, the series of histograms per (target, cache class), interval data and
//! its exact merge, and the sink finished intervals go to. A leaf: the engine and the mirror
//! fill it, results and report read it; it imports none of them.

mod error;
mod hist;
mod interval;
mod metric;
mod outcome;

pub use error::ErrorKind;
pub use hist::{HIST_MAX_US, new_hist, us};
pub use interval::{
    Buckets, IntervalData, PopCounts, PopSeries, Series, SparseInterval, TargetCounts, record_into,
};
pub use metric::{Metric, PerMetric};
pub use outcome::{Opened, Outcome, PopName};

/// Where finished intervals go, in order, each exactly once (the results writer).
pub trait Sink {
    /// Called once, before any interval, with the wall-clock time of the run's start.
    fn begin(&mut self, start: std::time::SystemTime) -> std::io::Result<()>;
    fn interval(&mut self, data: &IntervalData, totals: &IntervalData) -> std::io::Result<()>;
    fn samples(&mut self, rows: &[u8]) -> std::io::Result<()>;
}
