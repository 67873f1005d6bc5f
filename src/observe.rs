//! `observe`: a CDN's own access logs -> the hit ratio it really had, as a results directory
//! that `report` draws beside a load test's or a mirror's. Per interval and target (the whole
//! log, a host or a POP): requests by cache class and their bytes, statuses, errors, POPs, and
//! the log's own latencies (CloudFront `time-taken` and `time-to-first-byte`...). Beside them,
//! the URLs that missed most (`misses.csv`, a URL list `run --sweep` and `mirror` warm) and
//! the share of misses no warming can save: URLs requested once (one-hit wonders).
//!
//! The counting happens in `extract`'s pass over the logs (its readers, its bounded memory);
//! this room turns the tally into the results directory's files.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cache_status::CacheClass;
use crate::extract::Extracted;
use crate::extract::observe::{Cell, Lat, OTHER, PopCell, Split, Tally};
use crate::measure::{IntervalData, Metric, PopCounts, PopName, Sink, TargetCounts};
use crate::results::summary::{LoadModel, RateSummary, RunMeta, Summary};
use crate::results::{MISSES, ResultsWriter};
use crate::urls::UrlList;

/// What `observe` writes, and where.
#[derive(Clone, Debug)]
pub struct Settings {
    pub dir: PathBuf,
    pub run_id: String,
    pub region: String,
    /// the target's name when the whole log is one target
    pub name: String,
    pub split: Split,
    /// with a split: the targets with the most requests kept apart, the rest as `_other`
    pub split_top: usize,
    /// rows of misses.csv
    pub top_misses: usize,
    pub interval: Duration,
    /// the effective settings, for summary.json
    pub scenario: serde_json::Value,
}

/// The misses that warming could save, and those it could not.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Misses {
    /// edge misses (classes `miss` and `shield_hit`) of URLs a load test may send
    pub misses: u64,
    /// their bytes (the logged response sizes)
    pub bytes: u64,
    /// distinct URLs with at least one miss
    pub urls: u64,
    /// misses of URLs requested exactly once in the logs: no warming saves them
    pub one_hit_wonders: u64,
    /// `one_hit_wonders` over `misses`
    pub one_hit_share: Option<f64>,
    /// rows written to misses.csv, and the misses and bytes they account for
    pub listed: u64,
    pub listed_misses: u64,
    pub listed_bytes: u64,
}

pub struct Observed {
    pub dir: PathBuf,
    pub summary: Summary,
    pub misses: Misses,
    /// target names folded into `_other` (past `split_top`)
    pub folded: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(
        "no record with a time in the logs ({records} records read): nothing to observe (is the format right? --format)"
    )]
    Empty { records: u64 },
    #[error(
        "the logs span {intervals} intervals of {interval_s} s, from {first} to {last} (more than {max}): choose a longer --interval, or --since/--until (a stray old or future line stretches the span)"
    )]
    TooLong {
        intervals: i64,
        interval_s: f64,
        max: i64,
        first: String,
        last: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// At most this many intervals in one observation (a week of minutes is 10 080).
const MAX_INTERVALS: i64 = 200_000;

/// A name from the logs (a host, a POP) made safe for tags, file names and tables: ASCII
/// letters, digits and `.-_:` kept, anything else `_`, at most 100 bytes.
fn safe_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The targets: (names, the target of each tally name, how many names were folded). Whole:
/// one target named `name`. Split: names that read the same once made safe (hosts without
/// case) are one; the `split_top` with the most requests (ties by name) are kept, the rest
/// folded into `_other`.
fn targets(t: &Tally, s: &Settings) -> (Vec<String>, Vec<usize>, usize) {
    if s.split == Split::Whole {
        return (vec![s.name.clone()], vec![0; t.name_list.len()], 0);
    }
    // names as they will read (made safe; hosts without case), their requests added up
    let keys: Vec<String> = (t.name_list.iter())
        .map(|n| {
            let mut k = safe_name(n);
            if s.split == Split::Host {
                k.make_ascii_lowercase(); // host names do not care about case
            }
            k
        })
        .collect();
    let mut requests: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, n), c) in &t.cells {
        *requests.entry(&keys[*n as usize]).or_default() += c.requests();
    }
    let mut order: Vec<(&str, u64)> = requests.into_iter().filter(|(k, _)| *k != OTHER).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let kept = order.len().min(s.split_top.max(1));
    let folded = order.len() - kept;
    let mut names: Vec<String> = order[..kept].iter().map(|(k, _)| k.to_string()).collect();
    let mut map: Vec<usize> = (keys.iter())
        .map(|k| names.iter().position(|x| x == k).unwrap_or(usize::MAX))
        .collect();
    if map.contains(&usize::MAX) {
        names.push(OTHER.to_string());
        let other = names.len() - 1;
        for m in &mut map {
            if *m == usize::MAX {
                *m = other;
            }
        }
    }
    (names, map, folded)
}

/// A log's times into a series: a log has no schedule, so the time it gives is the request's
/// from its arrival, and corrected and service are the same (as for a closed-model run).
fn record(s: &mut crate::measure::Series, total: &Lat, ttfb: &Lat) {
    for (m, lat) in [
        (Metric::Total, total),
        (Metric::TotalService, total),
        (Metric::Ttfb, ttfb),
        (Metric::TtfbService, ttfb),
    ] {
        for (&v, &n) in lat {
            s.h[m].saturating_record_n(u64::from(v), n);
        }
    }
}

/// Adds one cell's counts and latencies into target `t` of `d`.
fn fill(d: &mut IntervalData, t: usize, c: &Cell) {
    let tc = TargetCounts {
        requests: c.requests(),
        classes: c.classes,
        errors: c.errors,
        statuses: c.statuses.clone(),
        ..TargetCounts::default()
    };
    d.targets[t].add(&tc);
    for class in CacheClass::ALL {
        let n = c.classes[class.index()];
        if n == 0 {
            continue;
        }
        let s = d.series_mut(t, class);
        s.n += n;
        s.bytes = s.bytes.saturating_add(c.class_bytes[class.index()]);
        if let Some((_, total, ttfb)) = c.lat.iter().find(|l| l.0 == class) {
            record(s, total, ttfb);
        }
    }
}

/// The whole log's POPs: their counts per target (most requests first, so that the POPs past
/// the counted names' limit are the least busy ones) and their series (counts, bytes and
/// latencies per class, for the busiest POPs up to `IntervalData`'s limit).
fn fill_pops(d: &mut IntervalData, tally: &Tally, names: &[usize]) {
    let mut pops: HashMap<(usize, PopName), PopCell> = HashMap::new();
    for ((nt, p), c) in &tally.pop_counts {
        pops.entry((names[*nt as usize], *p)).or_default().add(c);
    }
    let mut pops: Vec<((usize, PopName), PopCell)> = pops.into_iter().collect();
    pops.sort_by(|((ta, pa), a), ((tb, pb), b)| {
        (ta.cmp(tb))
            .then_with(|| (b.classes.iter().sum::<u64>()).cmp(&a.classes.iter().sum::<u64>()))
            .then_with(|| pa.as_str().cmp(pb.as_str()))
    });
    for ((t, pop), pc) in &pops {
        let counts = PopCounts {
            classes: pc.classes,
            errors: pc.errors,
        };
        d.targets[*t].add(&TargetCounts {
            pops: vec![(*pop, counts)],
            ..TargetCounts::default()
        });
        for class in CacheClass::ALL {
            let n = pc.classes[class.index()];
            if n == 0 {
                continue;
            }
            let Some(s) = d.pop_series_mut(*t, *pop, class) else {
                break; // past the POPs that get series
            };
            s.n += n;
            s.bytes = s.bytes.saturating_add(pc.class_bytes[class.index()]);
        }
    }
    for ((nt, p, c), (tot, ttfb)) in &tally.pop_lat {
        let t = names[*nt as usize];
        let Some(s) = (d.pop_series.iter_mut())
            .find(|s| s.target == t && s.pop == *p && s.class == *c)
            .map(|s| &mut s.s)
        else {
            continue; // a POP without a series: counted, not timed
        };
        record(s, tot, ttfb);
    }
}

/// Counts the misses over every URL of the extraction and writes the `top` that missed most
/// to `dir/misses.csv`.
fn misses(ex: &Extracted, dir: &std::path::Path, top: usize) -> std::io::Result<Misses> {
    let mut m = Misses::default();
    let mut list = UrlList::default();
    ex.each_row(|r| {
        // most misses first: past the first URL without one there is none
        if r.count == 0 {
            return false;
        }
        let e = r.entry();
        let bytes = e.bytes.unwrap_or(0).saturating_mul(r.count);
        m.misses += r.count;
        m.bytes = m.bytes.saturating_add(bytes);
        m.urls += 1;
        if r.requests == 1 {
            m.one_hit_wonders += r.count;
        }
        if list.entries.len() < top {
            m.listed += 1;
            m.listed_misses += r.count;
            m.listed_bytes = m.listed_bytes.saturating_add(bytes);
            list.entries.push(e);
        }
        true
    })?;
    m.one_hit_share = (m.misses > 0).then(|| m.one_hit_wonders as f64 / m.misses as f64);
    let path = dir.join(MISSES);
    let mut w = crate::guard::atomic::AtomicFile::create(&path)?;
    list.write_csv(&mut w)?;
    w.commit()?;
    Ok(m)
}

fn at(idx: i64, interval: Duration) -> SystemTime {
    let us = i128::from(idx) * interval.as_micros() as i128;
    match u64::try_from(us) {
        Ok(us) => SystemTime::UNIX_EPOCH + Duration::from_micros(us),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// Writes the results directory of an extraction made with `Options::observe`.
pub fn write(ex: &Extracted, s: &Settings) -> Result<Observed, ObserveError> {
    let Some(tally) = ex.tally.as_ref().filter(|t| !t.cells.is_empty()) else {
        return Err(ObserveError::Empty {
            records: ex.stats.records,
        });
    };
    let (names, map, folded) = targets(tally, s);
    let (lo, hi) = (tally.cells.keys()).fold((i64::MAX, i64::MIN), |(lo, hi), (i, _)| {
        (lo.min(*i), hi.max(*i))
    });
    let span = hi.saturating_sub(lo).saturating_add(1);
    if span > MAX_INTERVALS {
        return Err(ObserveError::TooLong {
            intervals: span,
            interval_s: s.interval.as_secs_f64(),
            max: MAX_INTERVALS,
            first: crate::logs::timefmt::to_rfc3339(tally.first),
            last: crate::logs::timefmt::to_rfc3339(tally.last),
        });
    }
    let mut by_idx: BTreeMap<i64, Vec<(usize, &Cell)>> = BTreeMap::new();
    for ((i, n), c) in &tally.cells {
        by_idx.entry(*i).or_default().push((map[*n as usize], c));
    }
    let started = at(lo, s.interval);
    let ended = at(hi + 1, s.interval);
    let mut w = ResultsWriter::create(
        &s.dir,
        &s.run_id,
        &s.region,
        names.clone(),
        s.interval,
        false,
    )?;
    w.begin(started)?;
    let mut whole: Vec<Cell> = vec![Cell::default(); names.len()];
    for idx in lo..=hi {
        let mut d = IntervalData::new((idx - lo) as u64, names.len());
        if let Some(cells) = by_idx.get(&idx) {
            // the same order whatever the hash map's: the sums do not care, the POP lists do
            let mut cells = cells.clone();
            cells.sort_by_key(|(t, c)| (*t, std::cmp::Reverse(c.requests())));
            for (t, c) in cells {
                fill(&mut d, t, c);
                whole[t].add(c.clone());
            }
        }
        w.interval(&d, &d)?;
    }
    let mut totals = IntervalData::new(0, names.len());
    for (t, c) in whole.iter().enumerate() {
        fill(&mut totals, t, c);
    }
    fill_pops(&mut totals, tally, &map);
    let elapsed = ended.duration_since(started).unwrap_or_default();
    w.pops(&totals, elapsed)?;
    let m = misses(ex, w.dir(), s.top_misses)?;
    w.add_file(MISSES);
    let requests: u64 = totals.targets.iter().map(|t| t.requests).sum();
    let rate = RateSummary {
        model: LoadModel::Observed,
        achieved_rps: requests as f64 / elapsed.as_secs_f64().max(1e-9),
        sent: requests,
        completed: requests,
        ..RateSummary::default()
    };
    let targets: Vec<(String, String)> = names.iter().map(|n| (n.clone(), String::new())).collect();
    let mut summary = Summary::new(
        RunMeta {
            run_id: &s.run_id,
            region: &s.region,
            scenario: s.scenario.clone(),
            started,
            ended,
            interval: s.interval,
            interrupted: false,
        },
        rate,
        &totals,
        &targets,
    );
    summary.observe = Some(serde_json::json!({
        "interval_s": s.interval.as_secs_f64(),
        "split": match s.split {
            Split::Whole => "none",
            Split::Host => "host",
            Split::Pop => "pop",
        },
        "folded_into_other": folded,
        // a thread counted names past its limit as _other: which ones depends on the order read
        "names_capped": tally.capped,
        // counts only: the malformed lines' examples (client addresses, query strings) and the
        // file names stay on the terminal
        "logs": {
            "files": ex.stats.files,
            "bytes": ex.stats.bytes,
            "lines": ex.stats.lines,
            "records": ex.stats.records,
            "filtered": &ex.stats.filtered,
            "malformed": (ex.stats.malformed.iter())
                .map(|(k, m)| (k.clone(), m.count))
                .collect::<BTreeMap<String, u64>>(),
            "formats": (ex.stats.formats.values())
                .fold(BTreeMap::<&str, u64>::new(), |mut m, f| {
                    *m.entry(f.as_str()).or_default() += 1;
                    m
                }),
            "distinct_urls": ex.stats.distinct_urls,
            "spilled_bytes": ex.stats.spilled_bytes,
        },
        "misses": &m,
    }));
    let dir = w.finish(&summary)?;
    Ok(Observed {
        dir,
        summary,
        misses: m,
        folded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_logs_are_made_safe() {
        assert_eq!(safe_name("img.example.com:443"), "img.example.com:443");
        assert_eq!(safe_name("a b\n<c>"), "a_b__c_");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name(&"x".repeat(300)).len(), 100);
    }

    /// Names are merged (case, unsafe bytes) before they are ranked: `A.com` and `a.com` are
    /// one host with 60 requests, ahead of `b.com`'s 50.
    #[test]
    fn targets_rank_names_once_merged() {
        use crate::extract::observe::ObserveOptions;
        use crate::logs::{CacheStatus, LogRecord};
        use std::borrow::Cow;
        let mut t = Tally::new(ObserveOptions {
            interval_us: 1_000_000,
            split: Split::Host,
        });
        for (host, n) in [("A.com", 30), ("a.com", 30), ("b.com", 50), ("_other", 99)] {
            for i in 0..n {
                t.add(&LogRecord {
                    method: Cow::Borrowed("GET"),
                    host: Some(Cow::Borrowed(host)),
                    target: Cow::Borrowed("/x"),
                    status: 200,
                    bytes: None,
                    time: Some(i * 1_000_000),
                    cache: CacheStatus::Value(None),
                    pop: None,
                    time_taken_us: None,
                    ttfb_us: None,
                });
            }
        }
        let s = Settings {
            dir: PathBuf::new(),
            run_id: "r".into(),
            region: "g".into(),
            name: "n".into(),
            split: Split::Host,
            split_top: 1,
            top_misses: 1,
            interval: Duration::from_secs(1),
            scenario: serde_json::Value::Null,
        };
        let (names, map, folded) = targets(&t, &s);
        assert_eq!(names, ["a.com", OTHER]);
        assert_eq!(folded, 1, "b.com");
        let of = |h: &str| map[t.name_list.iter().position(|n| &**n == h).unwrap()];
        assert_eq!(
            (of("A.com"), of("a.com"), of("b.com"), of("_other")),
            (0, 0, 1, 1)
        );
    }

    #[test]
    fn interval_starts_before_1970_do_not_wrap() {
        assert_eq!(at(-5, Duration::from_secs(3600)), SystemTime::UNIX_EPOCH);
        assert_eq!(
            at(2, Duration::from_secs(3600)),
            SystemTime::UNIX_EPOCH + Duration::from_secs(7200)
        );
    }
}
