//! Histograms and counters of one interval, per (target, cache class) series: recorded by each
//! worker thread without a lock, shipped sparse (non-empty buckets only), merged exactly
//! (histograms add), so threads, intervals and regions combine without loss.

use std::time::Instant;

use hdrhistogram::Histogram;

use super::hist::{new_hist, us};
use super::{ErrorKind, Metric, Outcome, PerMetric, PopName};
use crate::cache_status::CacheClass;

/// Histograms of one (target, class) series.
#[derive(Clone, Debug)]
pub struct Series {
    pub h: PerMetric<Histogram<u64>>,
    pub bytes: u64,
    /// requests counted: the total histogram's count for requests edgeload timed; an access
    /// log's requests count here whether or not the log recorded a time
    pub n: u64,
}

impl Series {
    pub fn new() -> Series {
        Series {
            h: PerMetric([new_hist(), new_hist(), new_hist(), new_hist()]),
            bytes: 0,
            n: 0,
        }
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn add(&mut self, o: &Series) {
        for (a, b) in self.h.iter_mut().zip(o.h.iter()) {
            a.add(b).expect("same bounds");
        }
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.n += o.n;
    }
}

impl Default for Series {
    fn default() -> Self {
        Series::new()
    }
}

/// Requests answered by one POP: by class, and how many of them were errors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PopCounts {
    pub classes: [u64; CacheClass::COUNT],
    pub errors: u64,
}

impl PopCounts {
    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// Per-target counters of one interval (or of a whole run, after merging).
#[derive(Clone, Debug, Default)]
pub struct TargetCounts {
    pub requests: u64,
    /// requests sent again on a new connection (each counted once in `requests`)
    pub retries: u64,
    /// connections opened, and requests sent on a kept-alive one (built-in client)
    pub opened: u64,
    pub reused: u64,
    /// TLS handshakes, and how many of them resumed a session
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    /// connections opened that speak HTTP/2 (the rest HTTP/1.1)
    pub h2_opened: u64,
    /// connections opened per address
    pub addrs: Vec<(std::net::SocketAddr, u64)>,
    /// TLS handshakes per (version, cipher suite) negotiated
    pub tls_params: Vec<((u16, u16), u64)>,
    pub classes: [u64; CacheClass::COUNT],
    pub errors: [u64; ErrorKind::COUNT],
    pub statuses: Vec<(u16, u64)>,
    pub pops: Vec<(PopName, PopCounts)>,
}

impl TargetCounts {
    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }
    fn add_status(&mut self, s: u16, n: u64) {
        match self.statuses.iter_mut().find(|(k, _)| *k == s) {
            Some((_, c)) => *c += n,
            None => self.statuses.push((s, n)),
        }
    }
    fn add_tls_params(&mut self, k: (u16, u16), n: u64) {
        match self.tls_params.iter_mut().find(|(p, _)| *p == k) {
            Some((_, c)) => *c += n,
            None => self.tls_params.push((k, n)),
        }
    }
    fn add_addr(&mut self, a: std::net::SocketAddr, n: u64) {
        match self.addrs.iter_mut().find(|(k, _)| *k == a) {
            Some((_, c)) => *c += n,
            None => self.addrs.push((a, n)),
        }
    }
    fn add_pop(&mut self, p: PopName, counts: &PopCounts) {
        let p = if self.pops.len() >= MAX_POP_NAMES && !self.pops.iter().any(|(k, _)| *k == p) {
            PopName::new("_other")
        } else {
            p
        };
        let slot = match self.pops.iter().position(|(k, _)| *k == p) {
            Some(i) => &mut self.pops[i].1,
            None => {
                self.pops.push((p, PopCounts::default()));
                &mut self.pops.last_mut().expect("just pushed").1
            }
        };
        for (a, b) in slot.classes.iter_mut().zip(counts.classes) {
            *a += b;
        }
        slot.errors += counts.errors;
    }
    pub fn add(&mut self, o: &TargetCounts) {
        self.requests += o.requests;
        self.retries += o.retries;
        self.opened += o.opened;
        self.reused += o.reused;
        self.tls_handshakes += o.tls_handshakes;
        self.tls_resumed += o.tls_resumed;
        self.h2_opened += o.h2_opened;
        for &(a, n) in &o.addrs {
            self.add_addr(a, n);
        }
        for &(k, n) in &o.tls_params {
            self.add_tls_params(k, n);
        }
        for (a, b) in self.classes.iter_mut().zip(o.classes) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for &(s, n) in &o.statuses {
            self.add_status(s, n);
        }
        for (p, c) in &o.pops {
            self.add_pop(*p, c);
        }
    }
}

/// At most this many POPs per target get latency histograms (each is four histograms a class,
/// scanned every interval).
pub(crate) const MAX_POPS: usize = 16;
/// At most this many POP names are counted per target; the rest are counted as `_other` (a
/// header may name a new "POP" on every response).
pub(crate) const MAX_POP_NAMES: usize = 256;

/// The histograms of one (target, POP, class).
#[derive(Clone, Debug)]
pub struct PopSeries {
    pub target: usize,
    pub pop: PopName,
    pub class: CacheClass,
    pub s: Box<Series>,
}

/// How long opening connections took: the name's lookup (when one was made), TCP connect, and
/// the TLS handshake (https), in us.
#[derive(Clone, Debug)]
pub struct Phases {
    pub dns: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub tls: Histogram<u64>,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            dns: new_hist(),
            connect: new_hist(),
            tls: new_hist(),
        }
    }
}

/// Everything recorded in one interval (by one thread, or merged).
#[derive(Clone, Debug)]
pub struct IntervalData {
    pub idx: u64,
    /// index = target * CacheClass::COUNT + class; None until the first sample.
    pub series: Vec<Option<Box<Series>>>,
    pub targets: Vec<TargetCounts>,
    /// per (target, POP, class), for the responses that named a POP (at most `MAX_POPS` POPs
    /// a target; the counts in `targets` keep every POP)
    pub pop_series: Vec<PopSeries>,
    /// open model: actual send minus intended send, in us (None until the first send)
    pub send_lag: Option<Histogram<u64>>,
    /// per target: the TCP connect and TLS handshake times of the connections opened, in us
    pub phases: Vec<Option<Box<Phases>>>,
    /// Every request was sent at its intended time (closed model), so the service histograms
    /// would equal the corrected ones: only those are recorded, and `take_sparse` ships their
    /// buckets for both (two histogram records and two clock subtractions less per request).
    service_is_corrected: bool,
}

impl IntervalData {
    pub fn new(idx: u64, n_targets: usize) -> IntervalData {
        IntervalData {
            idx,
            series: vec![None; n_targets * CacheClass::COUNT],
            targets: vec![TargetCounts::default(); n_targets],
            pop_series: Vec::new(),
            send_lag: None,
            phases: vec![None; n_targets],
            service_is_corrected: false,
        }
    }

    /// An interval of a worker whose requests are all sent at their intended time (closed
    /// model): it records the corrected histograms only and ships them as the service ones too.
    /// Only `take_sparse` fills in the service histograms, so this is for a worker's recorder.
    pub fn sent_as_intended(idx: u64, n_targets: usize) -> IntervalData {
        IntervalData {
            service_is_corrected: true,
            ..IntervalData::new(idx, n_targets)
        }
    }
    pub fn n_targets(&self) -> usize {
        self.targets.len()
    }
    pub fn series(&self, target: usize, class: CacheClass) -> Option<&Series> {
        self.series[target * CacheClass::COUNT + class.index()].as_deref()
    }
    pub fn series_mut(&mut self, target: usize, class: CacheClass) -> &mut Series {
        self.series[target * CacheClass::COUNT + class.index()]
            .get_or_insert_with(|| Box::new(Series::new()))
    }
    /// The series of (target, POP, class), made on first use; None past `MAX_POPS` POPs.
    pub(crate) fn pop_series_mut(
        &mut self,
        target: usize,
        pop: PopName,
        class: CacheClass,
    ) -> Option<&mut Series> {
        let at = (self.pop_series.iter())
            .position(|p| p.target == target && p.pop == pop && p.class == class);
        let i = match at {
            Some(i) => i,
            None => {
                let mut seen: Vec<PopName> = (self.pop_series.iter())
                    .filter(|p| p.target == target)
                    .map(|p| p.pop)
                    .collect();
                seen.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
                seen.dedup();
                if !seen.contains(&pop) && seen.len() >= MAX_POPS {
                    return None;
                }
                self.pop_series.push(PopSeries {
                    target,
                    pop,
                    class,
                    s: Box::new(Series::new()),
                });
                self.pop_series.len() - 1
            }
        };
        Some(&mut self.pop_series[i].s)
    }

    /// All classes of a target merged (None when it had no samples).
    pub fn target_all(&self, target: usize) -> Option<Series> {
        let mut out: Option<Series> = None;
        for c in CacheClass::ALL {
            if let Some(s) = self.series(target, c) {
                out.get_or_insert_with(Series::new).add(s);
            }
        }
        out
    }
    pub fn is_empty(&self) -> bool {
        self.targets.iter().all(|t| t.requests == 0)
            && self.send_lag.as_ref().is_none_or(|h| h.is_empty())
    }
    pub fn add(&mut self, o: &IntervalData) {
        for (i, s) in o.series.iter().enumerate() {
            if let Some(s) = s {
                // new and add, not clone: a clone writes all 188 KB of each histogram, an add
                // only the buckets in use (fresh zeroed pages stay out of RSS)
                self.series[i]
                    .get_or_insert_with(|| Box::new(Series::new()))
                    .add(s);
            }
        }
        for (a, b) in self.targets.iter_mut().zip(&o.targets) {
            a.add(b);
        }
        for p in &o.pop_series {
            if let Some(s) = self.pop_series_mut(p.target, p.pop, p.class) {
                s.add(&p.s);
            }
        }
        for (a, b) in self.phases.iter_mut().zip(&o.phases) {
            if let Some(b) = b {
                let a = a.get_or_insert_with(|| Box::new(Phases::new()));
                a.dns.add(&b.dns).expect("same bounds");
                a.connect.add(&b.connect).expect("same bounds");
                a.tls.add(&b.tls).expect("same bounds");
            }
        }
        if let Some(l) = &o.send_lag {
            self.send_lag
                .get_or_insert_with(new_hist)
                .add(l)
                .expect("same bounds");
        }
    }

    /// Adds an interval a worker shipped as its non-empty buckets.
    pub fn add_sparse(&mut self, o: &SparseInterval) {
        for (i, hs, (bytes, n)) in &o.series {
            let s = self.series[*i].get_or_insert_with(|| Box::new(Series::new()));
            for (h, buckets) in s.h.iter_mut().zip(hs.iter()) {
                add_buckets(h, buckets);
            }
            s.bytes += bytes;
            s.n += n;
        }
        for (a, b) in self.targets.iter_mut().zip(&o.targets) {
            a.add(b);
        }
        for (target, pop, class, hs, (bytes, n)) in &o.pop_series {
            if let Some(s) = self.pop_series_mut(*target, *pop, *class) {
                for (h, buckets) in s.h.iter_mut().zip(hs.iter()) {
                    add_buckets(h, buckets);
                }
                s.bytes += bytes;
                s.n += n;
            }
        }
        for (t, dns, connect, tls) in &o.phases {
            if let Some(a) = self.phases.get_mut(*t) {
                let a = a.get_or_insert_with(|| Box::new(Phases::new()));
                add_buckets(&mut a.dns, dns);
                add_buckets(&mut a.connect, connect);
                add_buckets(&mut a.tls, tls);
            }
        }
        if !o.send_lag.is_empty() {
            add_buckets(self.send_lag.get_or_insert_with(new_hist), &o.send_lag);
        }
    }

    /// The non-empty buckets of this interval, which is then emptied (for `idx`) with its
    /// histograms kept: a worker reuses one set of histograms for the whole run.
    pub fn take_sparse(&mut self, idx: u64) -> SparseInterval {
        let same = self.service_is_corrected;
        let take = |s: &mut Series| {
            let mut b = s.h.map_mut(take_buckets);
            if same {
                b[Metric::TotalService] = b[Metric::Total].clone();
                b[Metric::TtfbService] = b[Metric::Ttfb].clone();
            }
            (b, (std::mem::take(&mut s.bytes), std::mem::take(&mut s.n)))
        };
        let series = (self.series.iter_mut().enumerate())
            .filter_map(|(i, s)| Some((i, s.as_deref_mut().filter(|s| s.count() > 0)?)))
            .map(|(i, s)| {
                let (b, bytes) = take(s);
                (i, b, bytes)
            })
            .collect();
        let pop_series = (self.pop_series.iter_mut())
            .filter(|p| p.s.count() > 0)
            .map(|p| {
                let (b, bytes) = take(&mut p.s);
                (p.target, p.pop, p.class, b, bytes)
            })
            .collect();
        let n = self.targets.len();
        SparseInterval {
            idx: std::mem::replace(&mut self.idx, idx),
            series,
            targets: std::mem::replace(&mut self.targets, vec![TargetCounts::default(); n]),
            pop_series,
            send_lag: self.send_lag.as_mut().map(take_buckets).unwrap_or_default(),
            phases: (self.phases.iter_mut().enumerate())
                .filter_map(|(t, p)| {
                    let p = p.as_deref_mut().filter(|p| !p.connect.is_empty())?;
                    Some((
                        t,
                        take_buckets(&mut p.dns),
                        take_buckets(&mut p.connect),
                        take_buckets(&mut p.tls),
                    ))
                })
                .collect(),
        }
    }
}

/// (value, count) of each non-empty bucket; the value is the bucket's highest equivalent, so
/// recording it again lands in the same bucket of a histogram with the same bounds.
pub type Buckets = Vec<(u64, u64)>;

fn take_buckets(h: &mut Histogram<u64>) -> Buckets {
    if h.is_empty() {
        // nothing to ship, and a reset would write all 188 KB (the service histograms of a
        // closed-model worker are always empty)
        return Buckets::new();
    }
    let out = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    h.reset();
    out
}

fn add_buckets(h: &mut Histogram<u64>, b: &Buckets) {
    for &(v, n) in b {
        h.saturating_record_n(v, n);
    }
}

/// A series' (bytes, requests) as it travels beside its buckets.
pub type Sizes = (u64, u64);

/// One interval of one worker as it travels to the aggregator: the non-empty buckets only (a
/// few hundred at most), not four 188 KB histograms per class.
#[derive(Clone, Debug)]
pub struct SparseInterval {
    pub idx: u64,
    /// (series index, buckets per metric, (bytes, requests))
    pub series: Vec<(usize, PerMetric<Buckets>, Sizes)>,
    pub targets: Vec<TargetCounts>,
    /// (target, POP, class, buckets per metric, (bytes, requests))
    pub pop_series: Vec<(usize, PopName, CacheClass, PerMetric<Buckets>, Sizes)>,
    pub send_lag: Buckets,
    /// (target, DNS, connect and TLS handshake buckets)
    pub phases: Vec<(usize, Buckets, Buckets, Buckets)>,
}

impl SparseInterval {
    pub fn is_empty(&self) -> bool {
        self.targets.iter().all(|t| t.requests == 0) && self.send_lag.is_empty()
    }
}

/// Adds one finished request to an interval; returns the class it was counted in (requests
/// that failed before any response count as `error`).
pub fn record_into(
    d: &mut IntervalData,
    target: usize,
    intended: Instant,
    o: &Outcome,
) -> CacheClass {
    let class = if o.headers_at.is_none() {
        CacheClass::Error
    } else {
        o.class
    };
    let intended = intended.min(o.sent);
    let same = d.service_is_corrected;
    debug_assert!(!same || intended == o.sent, "sent_as_intended, sent late");
    record_series(d.series_mut(target, class), intended, o, same);
    let t = &mut d.targets[target];
    t.requests += 1;
    t.retries += u64::from(o.retries);
    t.reused += u64::from(o.reused);
    if let Some(op) = o.opened {
        t.opened += 1;
        t.tls_handshakes += u64::from(op.tls.is_some());
        t.tls_resumed += u64::from(op.resumed);
        t.h2_opened += u64::from(op.h2);
        if op.tls.is_some() {
            t.add_tls_params((op.tls_version, op.tls_suite), 1);
        }
        t.add_addr(op.addr, 1);
        let p = d.phases[target].get_or_insert_with(|| Box::new(Phases::new()));
        if let Some(d) = op.dns {
            p.dns.saturating_record(us(d));
        }
        p.connect.saturating_record(us(op.connect));
        if let Some(h) = op.tls {
            p.tls.saturating_record(us(h));
        }
    }
    t.classes[class.index()] += 1;
    if let Some(e) = o.error {
        t.errors[e.index()] += 1;
    }
    if o.status != 0 {
        t.add_status(o.status, 1);
    }
    if let Some(p) = o.pop {
        let mut c = PopCounts::default();
        c.classes[class.index()] = 1;
        c.errors = u64::from(o.error.is_some());
        t.add_pop(p, &c);
        if let Some(s) = d.pop_series_mut(target, p, class) {
            record_series(s, intended, o, same);
        }
    }
    class
}

/// The four latencies of one request into a series (`same`: only the corrected ones, see
/// `IntervalData::sent_as_intended`).
fn record_series(s: &mut Series, intended: Instant, o: &Outcome, same: bool) {
    s.h[Metric::Total].saturating_record(us(o.done - intended));
    if !same {
        s.h[Metric::TotalService].saturating_record(us(o.done - o.sent));
    }
    if let Some(h) = o.headers_at {
        s.h[Metric::Ttfb].saturating_record(us(h - intended));
        if !same {
            s.h[Metric::TtfbService].saturating_record(us(h - o.sent));
        }
    }
    s.bytes += o.bytes;
    s.n += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(
        base: Instant,
        sent_us: u64,
        ttfb_us: u64,
        total_us: u64,
        class: CacheClass,
    ) -> Outcome {
        let sent = base + Duration::from_micros(sent_us);
        Outcome {
            sent,
            headers_at: Some(sent + Duration::from_micros(ttfb_us)),
            done: sent + Duration::from_micros(total_us),
            status: 200,
            bytes: total_us,
            class,
            pop: None,
            error: None,
            retries: 0,
            opened: None,
            reused: false,
        }
    }

    /// The two intervals hold the same series, histogram for histogram (counts, extremes,
    /// mean, quantiles) and byte for byte.
    fn assert_same_series(a: &IntervalData, b: &IntervalData) {
        for (a, b) in a.series.iter().zip(&b.series) {
            match (a, b) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.bytes, b.bytes);
                    for (m, (x, y)) in Metric::ALL.iter().zip(a.h.iter().zip(&b.h)) {
                        assert_eq!(x, y, "{m:?}");
                        assert_eq!((x.len(), x.min(), x.max()), (y.len(), y.min(), y.max()));
                        assert_eq!(x.mean(), y.mean());
                        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                            assert_eq!(x.value_at_quantile(q), y.value_at_quantile(q));
                        }
                    }
                }
                (None, None) => {}
                _ => panic!("series present on one side only"),
            }
        }
    }

    /// A worker ships its interval as buckets and keeps its histograms: what the aggregator
    /// rebuilds must equal the interval recorded directly, bucket for bucket, and the worker's
    /// next interval must start empty.
    #[test]
    fn sparse_interval_rebuilds_exactly() {
        let base = Instant::now();
        let mut direct = IntervalData::new(3, 2);
        let mut worker = IntervalData::new(3, 2);
        let mut rng = 7u64;
        for i in 0..20_000u64 {
            rng = crate::urls::mix(rng);
            // 1 us .. ~70 s, so that several buckets of every magnitude are hit
            let total = 1 + (rng % 1000) * (1 + (rng >> 20) % 70_000);
            let ttfb = 1 + total / 3;
            let class =
                [CacheClass::Hit, CacheClass::Miss, CacheClass::Unknown][(rng >> 40) as usize % 3];
            let o = outcome(base, i, ttfb, total, class);
            let intended = o.sent - Duration::from_micros(rng % 500);
            for d in [&mut direct, &mut worker] {
                record_into(d, (i % 2) as usize, intended, &o);
                d.send_lag
                    .get_or_insert_with(new_hist)
                    .saturating_record(rng % 5000 + 1);
            }
        }
        let sparse = worker.take_sparse(4);
        assert_eq!(sparse.idx, 3);
        let mut rebuilt = IntervalData::new(3, 2);
        rebuilt.add_sparse(&sparse);
        assert_same_series(&direct, &rebuilt);
        assert_eq!(direct.send_lag, rebuilt.send_lag);
        for (a, b) in direct.targets.iter().zip(&rebuilt.targets) {
            assert_eq!(
                (a.requests, a.classes, &a.statuses),
                (b.requests, b.classes, &b.statuses)
            );
        }
        // the worker keeps its (now empty) histograms for the next interval
        assert_eq!(worker.idx, 4);
        assert!(worker.is_empty());
        assert!(
            worker
                .series
                .iter()
                .flatten()
                .all(|s| s.count() == 0 && s.bytes == 0)
        );
        assert!(worker.take_sparse(5).is_empty());
    }

    /// A closed-model worker records the corrected histograms only: what it ships must equal
    /// four histograms recorded directly, service ones included, and `count` must still count.
    #[test]
    fn sent_as_intended_ships_the_service_histograms_too() {
        let base = Instant::now();
        let mut direct = IntervalData::new(0, 1);
        let mut worker = IntervalData::sent_as_intended(0, 1);
        let mut rng = 3u64;
        for i in 0..5_000u64 {
            rng = crate::urls::mix(rng);
            let total = 1 + rng % 90_000;
            let mut o = outcome(base, i, 1 + total / 4, total, CacheClass::Hit);
            if i % 7 == 0 {
                o.headers_at = None; // failed before a response: no TTFB
            }
            record_into(&mut direct, 0, o.sent, &o);
            record_into(&mut worker, 0, o.sent, &o);
        }
        let s = worker.series(0, CacheClass::Error).map(|s| s.count());
        assert_eq!(s, direct.series(0, CacheClass::Error).map(|s| s.count()));
        assert_eq!(
            worker.series(0, CacheClass::Hit).map(|s| s.count()),
            Some(4285)
        );
        let mut rebuilt = IntervalData::new(0, 1);
        rebuilt.add_sparse(&worker.take_sparse(1));
        // every series holds total latencies (the error class no TTFBs)
        for s in direct.series.iter().flatten() {
            for m in [Metric::Total, Metric::TotalService] {
                assert!(!s.h[m].is_empty(), "{m:?}");
            }
        }
        assert_same_series(&direct, &rebuilt);
    }
}
