//! `observe`'s tally, counted in the same pass as the URL table: per interval and target (the
//! whole log, a host or a POP), requests by cache class with their bytes, statuses, errors,
//! and the log's own latencies kept as histogram buckets (a bucket's value -> count: an hour
//! of a CDN's latencies fills a few hundred buckets, not a 188 KB histogram); per target and
//! POP over the whole log, counts and latencies. Memory grows with intervals x targets and with
//! POPs, never with lines; the reading pass holds the tallies to `--max-memory` (a thread's is
//! merged into one shared tally when it grows; past the budget the observation stops with an
//! error).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use hdrhistogram::Histogram;

use crate::cache_status::{CacheClass, log_class};
use crate::logs::LogRecord;
use crate::measure::{ErrorKind, HIST_MAX_US, PopName, new_hist};

/// What a target of the observation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// the whole log is one target
    Whole,
    /// one target per Host
    Host,
    /// one target per POP
    Pop,
}

#[derive(Clone, Debug)]
pub struct ObserveOptions {
    /// the interval's length, us; intervals start at multiples of it since the Unix epoch
    pub interval_us: i64,
    pub split: Split,
}

/// At most this many target names a thread keeps apart; later ones are counted as `OTHER`.
pub(crate) const MAX_NAMES: usize = 1024;
pub const OTHER: &str = "_other";
/// The target name of records that do not name a host or a POP.
const NONE: &str = "_none";

/// A multiplicative hasher for the tally's small integer keys (SipHash would cost more than
/// the rest of a record's counting).
#[derive(Default)]
pub struct Mul(u64);

impl Hasher for Mul {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Mul>>;

/// Latency buckets: the bucket's lowest value in us (as `new_hist` buckets it) -> count.
pub type Lat = FastMap<u32, u64>;

/// A POP's requests by class over the whole log, their bytes, and its errors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PopCell {
    pub classes: [u64; CacheClass::COUNT],
    pub class_bytes: [u64; CacheClass::COUNT],
    pub errors: u64,
}

impl PopCell {
    pub fn add(&mut self, o: &PopCell) {
        for i in 0..CacheClass::COUNT {
            self.classes[i] += o.classes[i];
            self.class_bytes[i] = self.class_bytes[i].saturating_add(o.class_bytes[i]);
        }
        self.errors += o.errors;
    }
}

/// One (interval, target).
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub classes: [u64; CacheClass::COUNT],
    pub class_bytes: [u64; CacheClass::COUNT],
    pub errors: [u64; ErrorKind::COUNT],
    pub statuses: Vec<(u16, u64)>,
    /// per class: the server's total time and time to first byte, for the records that had them
    pub lat: Vec<(CacheClass, Lat, Lat)>,
}

impl Cell {
    pub fn requests(&self) -> u64 {
        self.classes.iter().sum()
    }

    fn lat_mut(&mut self, c: CacheClass) -> &mut (CacheClass, Lat, Lat) {
        match self.lat.iter().position(|l| l.0 == c) {
            Some(i) => &mut self.lat[i],
            None => {
                self.lat.push((c, Lat::default(), Lat::default()));
                self.lat.last_mut().expect("just pushed")
            }
        }
    }

    pub fn add(&mut self, o: Cell) {
        for i in 0..CacheClass::COUNT {
            self.classes[i] += o.classes[i];
            self.class_bytes[i] = self.class_bytes[i].saturating_add(o.class_bytes[i]);
        }
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for (s, n) in o.statuses {
            match self.statuses.iter_mut().find(|(k, _)| *k == s) {
                Some((_, c)) => *c += n,
                None => self.statuses.push((s, n)),
            }
        }
        for (c, total, ttfb) in o.lat {
            let mine = self.lat_mut(c);
            add_lat(&mut mine.1, total);
            add_lat(&mut mine.2, ttfb);
        }
    }
}

fn add_lat(into: &mut Lat, o: Lat) {
    for (v, n) in o {
        *into.entry(v).or_default() += n;
    }
}

/// One thread's tally (or, after `merge`, everyone's).
pub struct Tally {
    opts: ObserveOptions,
    /// buckets values as every edgeload histogram does
    template: Histogram<u64>,
    names: FastMap<Box<str>, u32>,
    /// target names by index
    pub name_list: Vec<Box<str>>,
    /// (interval index, target index) -> counts
    pub cells: FastMap<(i64, u32), Cell>,
    /// the whole log's counts per (target, POP)
    pub pop_counts: FastMap<(u32, PopName), PopCell>,
    /// the whole log's latency per (target, POP, class): (total, ttfb)
    pub pop_lat: FastMap<(u32, PopName, CacheClass), (Lat, Lat)>,
    /// recent cache-status spellings and their classes (a log repeats a handful)
    seen: Vec<(Box<str>, CacheClass)>,
    /// bytes held, as counted while adding (`held` counts them all again)
    approx: usize,
    /// names past `MAX_NAMES` were counted as `OTHER`
    pub capped: bool,
    /// the earliest and latest record times counted, us
    pub first: i64,
    pub last: i64,
}

/// Record times outside [1970, 9000) are not counted: an interval's end must stay a
/// four-digit year (RFC 3339), whatever `--interval` (at most a year) adds.
pub(crate) const LATEST_US: i64 = 221_845_392_000_000_000;

/// `m`'s entry for `k`, made when missing; a new entry adds `cost` to `grew`.
fn slot<'m, K: std::hash::Hash + Eq, V: Default>(
    m: &'m mut FastMap<K, V>,
    k: K,
    cost: usize,
    grew: &mut usize,
) -> &'m mut V {
    match m.entry(k) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            *grew += cost;
            e.insert(V::default())
        }
    }
}

/// What a new entry of each map costs, roughly.
const CELL_BYTES: usize = std::mem::size_of::<Cell>() + 64;
const POP_BYTES: usize = std::mem::size_of::<PopCell>() + 48;
const BUCKET_BYTES: usize = 24;

impl Tally {
    pub fn new(opts: ObserveOptions) -> Tally {
        Tally {
            opts,
            template: new_hist(),
            names: FastMap::default(),
            name_list: Vec::new(),
            cells: FastMap::default(),
            pop_counts: FastMap::default(),
            pop_lat: FastMap::default(),
            seen: Vec::new(),
            approx: 0,
            capped: false,
            first: i64::MAX,
            last: i64::MIN,
        }
    }

    fn name_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let name = if self.name_list.len() >= MAX_NAMES {
            self.capped = true;
            OTHER
        } else {
            name
        };
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let i = self.name_list.len() as u32;
        self.names.insert(name.into(), i);
        self.name_list.push(name.into());
        i
    }

    fn class_of(&mut self, v: Option<&str>) -> CacheClass {
        let Some(v) = v else {
            return CacheClass::Unknown;
        };
        // a byte loop: `==` on strings calls memcmp, dear for the few bytes of a status
        let same = |s: &str| s.len() == v.len() && s.bytes().zip(v.bytes()).all(|(a, b)| a == b);
        if let Some((_, c)) = self.seen.iter().find(|(s, _)| same(s)) {
            return *c;
        }
        let c = log_class(v);
        if self.seen.len() < 32 {
            self.seen.push((v.into(), c));
        }
        c
    }

    fn bucket(&self, us: u64) -> u32 {
        // values are clamped into the histograms' range, which fits in a u32 (1 h in us)
        self.template.lowest_equivalent(us.clamp(1, HIST_MAX_US)) as u32
    }

    /// Counts one record; returns its class, or None for a record without a time or with one
    /// outside [1970, 9000) (it has no interval: the caller counts it as filtered).
    pub fn add(&mut self, r: &LogRecord) -> Option<CacheClass> {
        let t = r.time.filter(|t| (0..LATEST_US).contains(t))?;
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        let idx = t.div_euclid(self.opts.interval_us.max(1));
        let class = self.class_of(r.cache.get());
        let pop = r.pop().map(PopName::new);
        let target = match self.opts.split {
            Split::Whole => match self.name_list.first() {
                Some(_) => 0,
                None => self.name_index(""),
            },
            Split::Host => {
                let h = r.host.as_deref().unwrap_or(NONE);
                self.name_index(h)
            }
            Split::Pop => match pop {
                Some(p) => self.name_index(p.as_str()),
                None => self.name_index(NONE),
            },
        };
        let total = r.time_taken_us().map(|v| self.bucket(v));
        let ttfb = r.ttfb_us.map(|v| self.bucket(v));
        let error = if r.status == 0 {
            // the client went away before a status (CloudFront `000`)
            Some(ErrorKind::Reset)
        } else {
            ErrorKind::for_status(r.status)
        };
        let bytes = r.bytes.unwrap_or(0);
        // what the new entries cost, for the memory budget
        let count = |m: &mut Lat, v: Option<u32>| -> usize {
            let Some(v) = v else { return 0 };
            let n = m.len();
            *m.entry(v).or_default() += 1;
            (m.len() - n) * BUCKET_BYTES
        };
        let mut grew = 0;
        let cell = slot(&mut self.cells, (idx, target), CELL_BYTES, &mut grew);
        cell.classes[class.index()] += 1;
        cell.class_bytes[class.index()] = cell.class_bytes[class.index()].saturating_add(bytes);
        if let Some(e) = error {
            cell.errors[e.index()] += 1;
        }
        if r.status != 0 {
            match cell.statuses.iter_mut().find(|(k, _)| *k == r.status) {
                Some((_, c)) => *c += 1,
                None => {
                    cell.statuses.push((r.status, 1));
                    grew += 16;
                }
            }
        }
        if total.is_some() || ttfb.is_some() {
            let l = cell.lat_mut(class);
            grew += count(&mut l.1, total) + count(&mut l.2, ttfb);
        }
        if let Some(p) = pop {
            let pc = slot(&mut self.pop_counts, (target, p), POP_BYTES, &mut grew);
            pc.classes[class.index()] += 1;
            pc.class_bytes[class.index()] = pc.class_bytes[class.index()].saturating_add(bytes);
            pc.errors += u64::from(error.is_some());
            if total.is_some() || ttfb.is_some() {
                let l = self.pop_lat.entry((target, p, class)).or_default();
                grew += count(&mut l.0, total) + count(&mut l.1, ttfb);
            }
        }
        self.approx += grew;
        Some(class)
    }

    /// Adds another thread's tally (its targets matched by name).
    pub fn merge(&mut self, o: Tally) {
        let map: Vec<u32> = o.name_list.iter().map(|n| self.name_index(n)).collect();
        self.capped |= o.capped;
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        for ((t, p), c) in o.pop_counts {
            (self.pop_counts.entry((map[t as usize], p)).or_default()).add(&c);
        }
        for ((idx, t), c) in o.cells {
            self.cells.entry((idx, map[t as usize])).or_default().add(c);
        }
        for ((t, p, c), (total, ttfb)) in o.pop_lat {
            let mine = self.pop_lat.entry((map[t as usize], p, c)).or_default();
            add_lat(&mut mine.0, total);
            add_lat(&mut mine.1, ttfb);
        }
        self.approx += o.approx;
    }

    /// Counts the bytes held again (`held`) and keeps that as the running estimate.
    pub(crate) fn recount(&mut self) -> usize {
        self.approx = self.held();
        self.approx
    }

    /// Bytes held, as counted while adding (cheap; `held` counts them all again).
    pub(crate) fn approx_held(&self) -> usize {
        self.approx
    }

    /// Bytes held, roughly: the cells, their POPs and latency buckets.
    pub fn held(&self) -> usize {
        let lat = |l: &Lat| l.capacity() * 16;
        let cells: usize = (self.cells.values())
            .map(|c| {
                CELL_BYTES
                    + c.statuses.capacity() * 16
                    + c.lat
                        .iter()
                        .map(|(_, a, b)| 64 + lat(a) + lat(b))
                        .sum::<usize>()
            })
            .sum();
        let pops: usize = (self.pop_lat.values())
            .map(|(a, b)| 96 + lat(a) + lat(b))
            .sum();
        cells + pops + self.pop_counts.len() * POP_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{CacheStatus, LogRecord};
    use std::borrow::Cow;

    fn rec(
        t_s: i64,
        host: &str,
        cache: &str,
        pop: &str,
        taken_us: Option<u64>,
    ) -> LogRecord<'static> {
        LogRecord {
            method: Cow::Borrowed("GET"),
            host: Some(Cow::Owned(host.to_string())),
            target: Cow::Borrowed("/a"),
            status: 200,
            bytes: Some(100),
            time: Some(t_s * 1_000_000),
            cache: CacheStatus::Value(Some(Cow::Owned(cache.to_string()))),
            pop: Some(Cow::Owned(pop.to_string())),
            time_taken_us: taken_us,
            ttfb_us: None,
        }
    }

    #[test]
    fn threads_merge_to_one_tally() {
        let opts = ObserveOptions {
            interval_us: 3_600_000_000,
            split: Split::Host,
        };
        let recs = [
            rec(10, "a", "Hit", "FRA1", Some(1000)),
            rec(20, "b", "Miss", "FRA1", Some(50_000)),
            rec(3700, "a", "Miss", "LAX1", None),
            rec(3800, "a", "RefreshHit", "LAX1", Some(1000)),
        ];
        let mut one = Tally::new(opts.clone());
        for r in &recs {
            one.add(r);
        }
        // the same records split over two threads, in another order
        let (mut x, mut y) = (Tally::new(opts.clone()), Tally::new(opts));
        for r in [&recs[3], &recs[1]] {
            x.add(r);
        }
        for r in [&recs[2], &recs[0]] {
            y.add(r);
        }
        x.merge(y);
        let a1 = one.names["a"];
        let a2 = x.names["a"];
        for (k, c) in &one.cells {
            let other = &x.cells[&(k.0, if k.1 == a1 { a2 } else { x.names["b"] })];
            assert_eq!(c.classes, other.classes);
            assert_eq!(c.class_bytes, other.class_bytes);
            assert_eq!(c.lat.len(), other.lat.len());
        }
        assert_eq!(one.cells.len(), 3);
        let c = &one.cells[&(1, a1)];
        assert_eq!(c.classes[CacheClass::Miss.index()], 1);
        assert_eq!(c.classes[CacheClass::Revalidated.index()], 1);
        // 1 ms and 50 ms each in their own bucket, as a histogram keeps them
        let c = &one.cells[&(0, one.names["b"])];
        let h = &c.lat[0].1;
        assert_eq!(one.pop_counts.len(), 3);
        assert!(one.approx_held() > 0 && one.approx_held() <= 2 * one.held());
        assert_eq!(h.len(), 1);
        let v = *h.keys().next().unwrap() as u64;
        assert!((49_950..=50_000).contains(&v), "{v}");
        assert_eq!(one.pop_lat.len(), 3);
    }

    #[test]
    fn untimed_records_have_no_interval() {
        let mut t = Tally::new(ObserveOptions {
            interval_us: 1_000_000,
            split: Split::Whole,
        });
        let mut r = rec(1, "a", "Hit", "X", None);
        r.time = None;
        assert_eq!(t.add(&r), None);
        // before 1970 or from year 9000 on: no interval can be written for it
        for bad in [-1, LATEST_US, i64::MAX] {
            r.time = Some(bad);
            assert_eq!(t.add(&r), None);
        }
        r.time = Some(LATEST_US - 1);
        assert_eq!(t.add(&r), Some(CacheClass::Hit));
        assert_eq!(t.cells.len(), 1);
    }
}
