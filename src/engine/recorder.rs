//! The per-thread recorder: each worker thread has one `Recorder` (no lock, no per-sample
//! message); it fills the current interval (`measure::IntervalData`) and ships it, sparse, to
//! the aggregator when the interval ends, with samples.jtl rows in batches.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cache_status::CacheClass;
use crate::measure::{IntervalData, Outcome, SparseInterval, new_hist, record_into, us};
use crate::results::jtl;

/// What a thread sends to the aggregator: once per interval, never per sample.
pub(crate) enum Msg {
    /// `data` is the finished interval (None when nothing happened); every interval before
    /// `watermark` is final for this thread.
    Interval {
        thread: usize,
        data: Option<SparseInterval>,
        watermark: u64,
    },
    /// A batch of samples.jtl rows.
    Samples(Vec<u8>),
    /// Header names the thread saw on responses it classified `unknown` (sent once, at its end).
    UnknownNames(Vec<String>),
    /// why TLS handshakes failed (distinct reasons)
    TlsReasons(Vec<String>),
}

/// The per-thread recorder.
pub(crate) struct Recorder {
    thread: usize,
    start: Instant,
    start_epoch_ms: u128,
    interval: Duration,
    cur: IntervalData,
    /// when `cur` ends: a request finishing before it needs no interval arithmetic
    cur_end: Instant,
    tx: Sender<Msg>,
    samples: Option<SampleRows>,
}

struct SampleRows {
    buf: Vec<u8>,
    labels: Vec<String>,
    threads: usize,
    /// the sample's URL, made in place (base + path)
    url: String,
}

const SAMPLE_BATCH: usize = 256 * 1024;

impl Recorder {
    pub fn new(
        thread: usize,
        start: Instant,
        start_wall: SystemTime,
        interval: Duration,
        n_targets: usize,
        tx: Sender<Msg>,
        sample_labels: Option<(Vec<String>, usize)>,
    ) -> Recorder {
        Recorder {
            thread,
            start,
            start_epoch_ms: start_wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            interval,
            cur: IntervalData::new(0, n_targets),
            cur_end: start + interval,
            tx,
            samples: sample_labels.map(|(labels, threads)| SampleRows {
                buf: Vec::with_capacity(SAMPLE_BATCH + 4096),
                labels,
                threads,
                url: String::new(),
            }),
        }
    }

    /// For a closed-model worker: every request is sent at its intended time, so the service
    /// histograms are shipped from the corrected ones (see `IntervalData::sent_as_intended`).
    pub fn sent_as_intended(mut self) -> Recorder {
        self.cur = IntervalData::sent_as_intended(self.cur.idx, self.cur.n_targets());
        self
    }

    fn idx_of(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.start).as_nanos() / self.interval.as_nanos()) as u64
    }

    /// Closes the current interval if `now` is past it (called by a ticker and before each record).
    pub(crate) fn advance(&mut self, now: Instant) {
        if now < self.cur_end {
            return;
        }
        let idx = self.idx_of(now);
        if idx > self.cur.idx {
            let n = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            self.cur_end = (self.start.checked_add(self.interval.saturating_mul(n))).unwrap_or(now);
            let old = self.cur.take_sparse(idx);
            let data = (!old.is_empty()).then_some(old);
            // The aggregator outlives the workers; a send error means it is gone and so are we.
            let _ = self.tx.send(Msg::Interval {
                thread: self.thread,
                data,
                watermark: idx,
            });
        }
    }

    /// Records a send lag (open model) at the moment of sending.
    pub fn send_lag(&mut self, lag: Duration) {
        self.cur
            .send_lag
            .get_or_insert_with(new_hist)
            .saturating_record(us(lag));
    }

    /// Records one finished request. `intended` is the scheduled send time (= actual send in the
    /// closed model).
    pub fn record(
        &mut self,
        target: usize,
        intended: Instant,
        url: (&str, &str),
        worker: usize,
        o: &Outcome,
    ) {
        self.advance(o.done);
        let class = record_into(&mut self.cur, target, intended, o);
        if self.samples.is_some() {
            self.sample_row(target, class, url, worker, o);
        }
    }

    fn sample_row(
        &mut self,
        target: usize,
        class: CacheClass,
        (base, path): (&str, &str),
        worker: usize,
        o: &Outcome,
    ) {
        let Some(s) = self.samples.as_mut() else {
            return;
        };
        s.url.clear();
        s.url.push_str(base);
        s.url.push_str(path);
        let url = s.url.as_str();
        jtl::Row {
            sent_ms: self.start_epoch_ms + o.sent.saturating_duration_since(self.start).as_millis(),
            elapsed_ms: (o.done - o.sent).as_millis(),
            latency_ms: o.headers_at.map_or(0, |h| (h - o.sent).as_millis()),
            target: &s.labels[target],
            class,
            status: o.status,
            error: o.error,
            bytes: o.bytes,
            thread: self.thread,
            worker,
            threads: s.threads,
            url,
            connect_ms: o.opened.map_or(0, |op| {
                (op.connect + op.tls.unwrap_or_default()).as_millis()
            }),
        }
        .write(&mut s.buf);
        if s.buf.len() >= SAMPLE_BATCH {
            let buf = std::mem::replace(&mut s.buf, Vec::with_capacity(SAMPLE_BATCH + 4096));
            let _ = self.tx.send(Msg::Samples(buf));
        }
    }

    /// Sends what is left; this thread is done.
    pub fn finish(mut self) {
        if let Some(s) = self.samples.take()
            && !s.buf.is_empty()
        {
            let _ = self.tx.send(Msg::Samples(s.buf));
        }
        let names = crate::cache_status::take_unknown_names();
        if !names.is_empty() {
            let _ = self.tx.send(Msg::UnknownNames(names));
        }
        let reasons = super::failure::take_tls_reasons();
        if !reasons.is_empty() {
            let _ = self.tx.send(Msg::TlsReasons(reasons));
        }
        let idx = self.cur.idx;
        let last = self.cur.take_sparse(idx);
        let data = (!last.is_empty()).then_some(last);
        let _ = self.tx.send(Msg::Interval {
            thread: self.thread,
            data,
            watermark: u64::MAX,
        });
    }
}
