//! Results directories -> the merged model: groups (by region, target, class as asked) whose
//! histograms are the exact sums of the runs' interval histograms, plus the series the plots
//! draw. Pure data: tables, plots and exports all read from here.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::load::RunData;
use super::sparse::Sparse;
use crate::cache_status::{self, CacheClass};
use crate::measure::{Metric, PerMetric, new_hist};
use crate::results::summary::Stats;

/// Which keys group the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct By {
    /// the run (its id): a cold and a warm run side by side
    pub run: bool,
    pub region: bool,
    /// a region's runners (`run --runner K/N`) one by one
    pub runner: bool,
    pub target: bool,
    /// the POP that answered (responses that named none are left out of these groups)
    pub pop: bool,
    pub class: bool,
}

impl By {
    pub const NONE: By = By {
        run: false,
        region: false,
        runner: false,
        target: false,
        pop: false,
        class: false,
    };
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        let mut b = By::NONE;
        for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match k {
                "run" => b.run = true,
                "region" => b.region = true,
                "runner" => b.runner = true,
                "target" => b.target = true,
                "pop" => b.pop = true,
                "class" => b.class = true,
                _ => {
                    return Err(format!(
                        "--by: unknown key {k:?} (run, region, runner, target, pop, class)"
                    ));
                }
            }
        }
        Ok(b)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub run: Option<String>,
    pub region: Option<String>,
    pub runner: Option<String>,
    pub target: Option<String>,
    pub pop: Option<String>,
    pub class: Option<String>,
}

impl Key {
    pub fn label(&self) -> String {
        let parts: Vec<&str> = [
            &self.run,
            &self.region,
            &self.runner,
            &self.target,
            &self.pop,
            &self.class,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" / ")
        }
    }
}

#[derive(Clone)]
pub struct Group {
    pub key: Key,
    pub hists: PerMetric<Sparse>,
    pub requests: u64,
    pub bytes: u64,
    /// None when the grouping splits classes (errors are counted per target)
    pub errors: Option<u64>,
    pub classes: [u64; CacheClass::COUNT],
    pub start: f64,
    pub end: f64,
}

impl Group {
    fn new(key: Key) -> Group {
        Group {
            key,
            hists: PerMetric(Default::default()),
            requests: 0,
            bytes: 0,
            errors: Some(0),
            classes: [0; CacheClass::COUNT],
            start: f64::MAX,
            end: f64::MIN,
        }
    }
    pub fn stats(&self, metric: Metric) -> Stats {
        Stats::of(&self.hists[metric].dense())
    }
    pub fn span(&self) -> f64 {
        (self.end - self.start).max(1e-9)
    }
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.span()
    }
    pub(crate) fn kb_per_s(&self) -> f64 {
        self.bytes as f64 / 1000.0 / self.span()
    }
    pub fn error_rate(&self) -> Option<f64> {
        self.errors.map(|e| {
            if self.requests > 0 {
                e as f64 / self.requests as f64
            } else {
                0.0
            }
        })
    }
    pub fn hit_ratio(&self) -> Option<f64> {
        cache_status::hit_ratio(&self.classes)
    }
}

fn key_of(by: By, r: &RunData, target: &str, pop: &str, class: &str) -> Key {
    Key {
        run: by.run.then(|| r.summary.run_id.clone()),
        region: by.region.then(|| r.region().to_string()),
        runner: by.runner.then(|| match r.summary.runner {
            Some(n) => format!("runner {n}"),
            None => "runner 1/1".into(),
        }),
        target: by.target.then(|| target.to_string()),
        pop: by.pop.then(|| pop.to_string()),
        class: by.class.then(|| class.to_string()),
    }
}

/// Merges runs into groups: histograms add, counts add.
pub fn groups(runs: &[RunData], by: By) -> Vec<Group> {
    let mut m: BTreeMap<Key, Group> = BTreeMap::new();
    for r in runs {
        let end = r.start + r.summary.duration_s;
        if by.pop {
            pop_groups(&mut m, r, by);
            continue;
        }
        for ((target, class, mi), h) in &r.totals {
            let k = key_of(by, r, target, "", class);
            let g = m.entry(k.clone()).or_insert_with(|| Group::new(k));
            g.hists[*mi].add(h);
        }
        for t in &r.summary.targets {
            for c in &t.classes {
                count_class(
                    &mut m,
                    key_of(by, r, &t.name, "", &c.class),
                    c,
                    (r.start, end),
                );
            }
            if !by.class {
                let k = key_of(by, r, &t.name, "", "");
                if let Some(g) = m.get_mut(&k)
                    && let Some(e) = g.errors.as_mut()
                {
                    *e += t.errors;
                }
            }
        }
    }
    let mut out: Vec<Group> = m.into_values().collect();
    if by.class {
        for g in &mut out {
            g.errors = None;
        }
    }
    out
}

/// Adds one class's counts of a run (its span `(start, end)`) to the group `k`.
fn count_class(
    m: &mut BTreeMap<Key, Group>,
    k: Key,
    c: &crate::results::summary::ClassSummary,
    (start, end): (f64, f64),
) {
    let g = m.entry(k.clone()).or_insert_with(|| Group::new(k));
    g.requests += c.count;
    g.bytes += c.bytes;
    if let Some(cl) = CacheClass::parse(&c.class) {
        g.classes[cl.index()] += c.count;
    }
    g.start = g.start.min(start);
    g.end = g.end.max(end);
}

/// The groups of one run by POP: histograms from pops.hlog, counts from the summary's POPs.
fn pop_groups(m: &mut BTreeMap<Key, Group>, r: &RunData, by: By) {
    let end = r.start + r.summary.duration_s;
    for ((target, pop, class, mi), h) in &r.pop_totals {
        let k = key_of(by, r, target, pop, class);
        let g = m.entry(k.clone()).or_insert_with(|| Group::new(k));
        g.hists[*mi].add(h);
    }
    for t in &r.summary.targets {
        for (pop, p) in &t.pop_summaries {
            for c in &p.classes {
                count_class(m, key_of(by, r, &t.name, pop, &c.class), c, (r.start, end));
            }
            if !by.class
                && let Some(e) =
                    (m.get_mut(&key_of(by, r, &t.name, pop, ""))).and_then(|g| g.errors.as_mut())
            {
                *e += p.errors;
            }
        }
    }
}

/// The rows of the main table: the groups, and when they split classes a row per region and
/// target with its classes merged (where the hit ratio and error share live), then a `TOTAL`
/// row over everything when there is more than one group. (label, group) in table order.
pub(crate) fn table_rows(runs: &[RunData], by: By) -> Vec<(String, Group)> {
    let groups = groups(runs, by);
    let mut out: Vec<(String, Group)> = Vec::new();
    let parts = if by.class {
        let subtotals = self::groups(runs, By { class: false, ..by });
        let one = subtotals.len() == 1;
        for sub in subtotals {
            let same = |g: &&Group| {
                g.key.run == sub.key.run
                    && g.key.region == sub.key.region
                    && g.key.target == sub.key.target
                    && g.key.pop == sub.key.pop
            };
            out.extend((groups.iter().filter(same)).map(|g| (g.key.label(), g.clone())));
            // the only region and target: its row is the total
            let label = if one {
                "TOTAL".to_string()
            } else {
                format!("{} / all", sub.key.label())
            };
            out.push((label, sub));
        }
        if one {
            return out;
        }
        out.iter().filter(|(l, _)| l.ends_with(" / all")).count()
    } else {
        out.extend(groups.into_iter().map(|g| (g.key.label(), g)));
        out.len()
    };
    if parts > 1
        && let Some(t) = self::groups(runs, By::NONE).pop()
    {
        out.push(("TOTAL".into(), t));
    }
    out
}

/// A time series point: seconds since the earliest run start.
pub(crate) type Point = (f64, f64);

pub struct LatencySeries {
    /// the target, or "region target" when several regions ran
    pub name: String,
    pub p50: Vec<Point>,
    pub p90: Vec<Point>,
    pub p99: Vec<Point>,
}

pub fn t0(runs: &[RunData]) -> f64 {
    runs.iter().map(|r| r.start).fold(f64::MAX, f64::min)
}

pub fn targets(runs: &[RunData]) -> Vec<String> {
    let mut t: Vec<String> = runs
        .iter()
        .flat_map(|r| r.summary.targets.iter().map(|t| t.name.clone()))
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Where time plots put their runs: each run id from its own start (a cold and a warm run side
/// by side), or every run on one UTC axis (`report --time utc`: what an operator lines up with
/// the CDN's own dashboards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeAxis {
    #[default]
    Start,
    Utc,
}

impl std::str::FromStr for TimeAxis {
    type Err = String;
    fn from_str(s: &str) -> Result<TimeAxis, String> {
        match s {
            "start" => Ok(TimeAxis::Start),
            "utc" => Ok(TimeAxis::Utc),
            _ => Err(format!("--time {s:?}: start or utc")),
        }
    }
}

/// Where each run's line starts and what it is called. Runs of one id (the regions of one
/// run) share one time axis from their earliest start; several ids (a cold and a warm run)
/// are drawn side by side, each from its own start, their lines named by run id; on the UTC
/// axis every run starts where it started.
struct Lines<'a> {
    /// run id -> the earliest start of its regions; None: one run id
    starts: Option<BTreeMap<&'a str, f64>>,
    t0: f64,
    utc: bool,
}

impl<'a> Lines<'a> {
    fn of(runs: &'a [RunData], axis: TimeAxis) -> Lines<'a> {
        let mut starts: BTreeMap<&str, f64> = BTreeMap::new();
        for r in runs {
            let s = starts.entry(r.summary.run_id.as_str()).or_insert(r.start);
            *s = s.min(r.start);
        }
        Lines {
            starts: (starts.len() > 1).then_some(starts),
            t0: t0(runs),
            utc: axis == TimeAxis::Utc,
        }
    }

    /// The origin of `r`'s time axis.
    fn origin(&self, r: &RunData) -> f64 {
        if self.utc {
            return self.t0;
        }
        (self.starts.as_ref())
            .and_then(|s| s.get(r.summary.run_id.as_str()).copied())
            .unwrap_or(self.t0)
    }

    /// `name` (a target, or a region and target) prefixed with the run id when runs differ.
    fn name(&self, r: &RunData, name: String) -> String {
        match self.starts {
            Some(_) => format!("{} {name}", r.summary.run_id),
            None => name,
        }
    }
}

pub fn regions(runs: &[RunData]) -> Vec<String> {
    let mut t: Vec<String> = runs.iter().map(|r| r.region().to_string()).collect();
    t.sort();
    t.dedup();
    t
}

/// The step the rates are drawn at: the longest run's (each run's points cover a whole one).
fn interval_of(runs: &[RunData]) -> f64 {
    runs.iter()
        .map(|r| r.step)
        .filter(|i| *i > 0.0)
        .fold(0.0, f64::max)
        .clamp(1e-3, 3600.0)
}

/// Corrected total latency percentiles per interval and target (classes merged). Percentiles
/// do not add, so with several regions each region keeps its own line.
pub fn latency_over_time(runs: &[RunData], axis: TimeAxis) -> Vec<LatencySeries> {
    let lines = Lines::of(runs, axis);
    let multi = regions(runs).len() > 1;
    let mut out: BTreeMap<String, LatencySeries> = BTreeMap::new();
    for r in runs {
        let t0 = lines.origin(r);
        for p in &r.over_time {
            let name = lines.name(
                r,
                if multi {
                    format!("{} {}", r.region(), p.target)
                } else {
                    p.target.to_string()
                },
            );
            let s = out.entry(name.clone()).or_insert_with(|| LatencySeries {
                name,
                p50: Vec::new(),
                p90: Vec::new(),
                p99: Vec::new(),
            });
            let x = p.start - t0;
            s.p50.push((x, p.p50));
            s.p90.push((x, p.p90));
            s.p99.push((x, p.p99));
        }
    }
    let mut v: Vec<LatencySeries> = out.into_values().collect();
    for s in &mut v {
        for pts in [&mut s.p50, &mut s.p90, &mut s.p99] {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
    v
}

pub(crate) struct RateSeries {
    pub target: String,
    /// hit ratio per bucket (buckets with no ratio-relevant request are left out)
    pub hit_ratio: Vec<Point>,
    pub rps: Vec<Point>,
    pub errors_per_s: Vec<Point>,
}

/// From the timelines: hit ratio, throughput and errors over time per target, regions summed
/// (per run and target when several runs are drawn side by side).
pub(crate) fn rates_over_time(runs: &[RunData], axis: TimeAxis) -> Vec<RateSeries> {
    let lines = Lines::of(runs, axis);
    let iv = interval_of(runs);
    // (line, bucket) -> (hits, misses, requests, errors)
    let mut per: BTreeMap<(String, i64), (u64, u64, u64, u64)> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        let t0 = lines.origin(r);
        for row in &r.timeline {
            let b = ((r.start + row.t_s - t0) / iv).round() as i64;
            let name = lines.name(r, row.target.to_string());
            if !names.contains(&name) {
                names.push(name.clone());
            }
            let e = per.entry((name, b)).or_default();
            e.0 += row.hits;
            e.1 += row.misses;
            e.2 += row.requests;
            e.3 += row.errors;
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|t| {
            let mut s = RateSeries {
                target: t.clone(),
                hit_ratio: Vec::new(),
                rps: Vec::new(),
                errors_per_s: Vec::new(),
            };
            let mut counts: Vec<u64> = per
                .range((t.clone(), i64::MIN)..=(t.clone(), i64::MAX))
                .map(|(_, v)| v.2)
                .collect();
            counts.sort_unstable();
            let median = counts.get(counts.len() / 2).copied().unwrap_or(0);
            for ((tt, b), (h, m, n, e)) in per.range((t.clone(), i64::MIN)..=(t.clone(), i64::MAX))
            {
                if tt != &t {
                    continue;
                }
                let x = *b as f64 * iv;
                // a bucket with a handful of requests (the slow tail after the last send) says
                // nothing about the ratio: leave it out of the ratio line
                if h + m > 0 && *n * 20 >= median {
                    s.hit_ratio.push((x, *h as f64 / (h + m) as f64));
                }
                s.rps.push((x, *n as f64 / iv));
                s.errors_per_s.push((x, *e as f64 / iv));
            }
            s
        })
        .collect()
}

/// HDR-style percentile distribution: (1/(1-q), latency ms), for the log-scaled x axis.
pub(crate) fn distribution(h: &Histogram<u64>) -> Vec<Point> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        out.push((1.0 / (1.0 - q), v.value_iterated_to() as f64 / 1000.0));
    }
    out
}

/// Merged corrected-total histogram per class (all regions and targets): the distribution plot.
pub(crate) fn class_hists(runs: &[RunData]) -> BTreeMap<String, Histogram<u64>> {
    let mut m: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for r in runs {
        for ((_, class, mi), h) in &r.totals {
            if *mi == Metric::Total {
                h.add_to(m.entry(class.clone()).or_insert_with(new_hist));
            }
        }
    }
    m
}

/// Threshold values on hit_ratio found in the runs' summaries (the cutover line).
pub(crate) fn hit_ratio_threshold(runs: &[RunData]) -> Option<f64> {
    runs.iter()
        .flat_map(|r| r.summary.thresholds.iter())
        .filter_map(|t| t.expr.parse::<crate::threshold::Threshold>().ok())
        .find(|t| t.kind == crate::threshold::Kind::HitRatio)
        .map(|t| t.value)
}
