//! Histogram construction: every latency histogram of edgeload has the same bounds, so any two
//! add exactly (threads, intervals, regions).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Histogram range: 1 us .. 1 hour, 3 significant digits (DESIGN.md).
pub const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static bounds are valid")
}

/// A duration as a histogram value: microseconds, clamped into the bounds.
pub fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, HIST_MAX_US)
}
