//! The cutover question, answered first in every report: per target (CDN), is its hit ratio
//! past the line, over the whole run and over its last window; how slow are hits and misses at
//! p99; how many errors; what each threshold says of the merged results; and where it is worst
//! (region, POP). Pure: computed from the loaded runs, rendered as a table, as terminal lines
//! and as JSON (`report --json`, readiness.json).

use serde::Serialize;

use super::load::RunData;
use super::model::{self, By};
use crate::cache_status::CacheClass;
use crate::measure::Metric;

/// The last window of a run: its last minute, or its last quarter when it is shorter.
const WINDOW_S: f64 = 60.0;

/// Errors past this share stop a target's cutover when no `error_rate` threshold was given.
const MAX_ERRORS: f64 = 0.01;

/// A POP answering less than this share of a target's requests is not named the worst.
const POP_SHARE: f64 = 0.01;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readiness {
    /// `--cutover`: the hit ratio line of a target without a `hit_ratio` threshold
    pub line: f64,
    /// every target is ready, and every threshold could be judged
    pub ready: bool,
    /// thresholds that could not be judged (unparseable, or naming no target of the runs)
    pub reasons: Vec<String>,
    pub targets: Vec<TargetReadiness>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReadiness {
    pub target: String,
    /// the hit ratio (over the last window when known) is past the line, every threshold on
    /// this target passed, and it answered
    pub ready: bool,
    pub requests: u64,
    /// the line its hit ratio is held to: its `hit_ratio >=` threshold, else `--cutover`
    pub line: f64,
    pub hit_ratio: Option<f64>,
    /// over each run's last window (`window_s`), runs added
    pub hit_ratio_last: Option<f64>,
    pub window_s: f64,
    pub hit_p99_ms: Option<f64>,
    pub miss_p99_ms: Option<f64>,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub thresholds: Vec<Verdict>,
    /// the region with the lowest hit ratio (several regions only)
    pub worst_region: Option<Place>,
    /// the POP with the lowest hit ratio among those that answered 1 % of the requests
    pub worst_pop: Option<Place>,
    /// why it is not ready, in words
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub expr: String,
    /// the target (or `target@POP`) judged
    pub on: String,
    pub passed: bool,
    pub observed: Option<f64>,
    /// why it failed without an observation
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Place {
    pub name: String,
    pub hit_ratio: f64,
    pub requests: u64,
}

/// A name from a results directory, as the terminal may show it (one line, no escapes).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    crate::guard::quote::escape(s)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The hit ratio over each run's last window, per target (runs added: the regions of one run).
fn last_window(runs: &[&RunData], target: &str) -> (Option<f64>, f64) {
    let (mut hits, mut misses, mut window) = (0u64, 0u64, 0.0f64);
    for r in runs {
        // whole steps (the timeline's resolution)
        let w = (WINDOW_S.min(r.summary.duration_s / 4.0) / r.step)
            .ceil()
            .max(1.0)
            * r.step;
        window = window.max(w);
        let from = r.summary.duration_s - w;
        for row in r.timeline.iter().filter(|t| &*t.target == target) {
            // a step that ends inside the window counts
            if row.t_s + r.step > from {
                hits += row.hits;
                misses += row.misses;
            }
        }
    }
    let ratio = (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
    (ratio, window)
}

/// The place (region or POP) of `target` with the lowest hit ratio among `groups`, when some
/// other does better.
fn worst(
    groups: &[model::Group],
    target: &str,
    name: impl Fn(&model::Group) -> Option<String>,
    min_requests: u64,
) -> Option<Place> {
    let places: Vec<Place> = groups
        .iter()
        .filter(|g| g.key.target.as_deref() == Some(target) && g.requests >= min_requests)
        .filter_map(|g| {
            Some(Place {
                name: name(g)?,
                hit_ratio: g.hit_ratio()?,
                requests: g.requests,
            })
        })
        .collect();
    let best = places.iter().map(|p| p.hit_ratio).fold(f64::MIN, f64::max);
    // one place, or all alike: none is the worst
    places
        .into_iter()
        .min_by(|a, b| a.hit_ratio.total_cmp(&b.hit_ratio))
        .filter(|w| w.hit_ratio < best)
}

/// Readiness of every target of the runs: the line is the runs' `hit_ratio` threshold, else
/// `cutover`; thresholds are the runs' own, judged again on the merged summary.
pub fn readiness(runs: &[RunData], cutover: f64) -> Readiness {
    use crate::threshold::{Kind, Op, Threshold};
    let merged = super::merged_summary(runs);
    let mut exprs: Vec<&str> = (runs.iter())
        .flat_map(|r| r.summary.thresholds.iter().map(|t| t.expr.as_str()))
        .collect();
    exprs.sort_unstable();
    exprs.dedup();
    let mut problems = Vec::new();
    let mut parsed: Vec<Threshold> = Vec::new();
    for e in exprs {
        match e.parse::<Threshold>() {
            Ok(t) => parsed.push(t),
            Err(why) => problems.push(format!("threshold {e} cannot be judged: {why}")),
        }
    }
    // a target's line: a hit_ratio floor of the runs on it (or on every target), else --cutover;
    // such thresholds are the line, judged below on the last window, not again here
    let floor = |t: &Threshold| {
        t.kind == Kind::HitRatio && t.pop.is_none() && matches!(t.op, Op::Ge | Op::Gt)
    };
    let line_of = |target: &str| {
        (parsed.iter())
            .filter(|t| floor(t) && t.target.as_deref().is_none_or(|n| n == target))
            .map(|t| t.value)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .unwrap_or(cutover)
    };
    let mut results: Vec<Verdict> = Vec::new();
    for t in parsed.iter().filter(|t| !floor(t)) {
        if t.pop.is_some() || t.kind == Kind::Rps {
            // per POP and rate: the merged summary keeps neither the POPs nor each run's own
            // span, so the runs' own verdicts stand (all must have passed)
            for r in runs {
                for v in r.summary.thresholds.iter().filter(|v| v.expr == t.text) {
                    results.push(Verdict {
                        expr: v.expr.clone(),
                        on: v.target.clone(),
                        passed: v.passed,
                        observed: v.observed,
                        note: v.note.clone(),
                    });
                }
            }
            continue;
        }
        results.extend(t.evaluate(&merged).into_iter().map(|r| Verdict {
            expr: r.expr,
            on: r.target,
            passed: r.passed,
            observed: r.observed,
            note: r.note,
        }));
    }
    let names = model::targets(runs);
    for v in &results {
        let on = v.on.split('@').next().unwrap_or_default();
        if !names.iter().any(|n| n == on) {
            problems.push(format!(
                "threshold {} names no target of the runs ({})",
                v.expr,
                if v.on.is_empty() { "none" } else { &v.on }
            ));
        }
    }
    problems.dedup();
    // the last window: of the latest run when several runs (a cold and a warm one) are merged
    let latest = runs
        .iter()
        .max_by(|a, b| a.start.total_cmp(&b.start))
        .map(|r| r.summary.run_id.as_str());
    let last_runs: Vec<&RunData> = runs
        .iter()
        .filter(|r| Some(r.summary.run_id.as_str()) == latest)
        .collect();
    let by = |region, target, pop, class| By {
        run: false,
        region,
        runner: false,
        target,
        pop,
        class,
    };
    let totals = model::groups(runs, by(false, true, false, false));
    let classes = model::groups(runs, by(false, true, false, true));
    let regions = model::groups(runs, by(true, true, false, false));
    let pops = model::groups(runs, by(false, true, true, false));
    let targets = model::targets(runs)
        .into_iter()
        .map(|target| {
            let total = totals
                .iter()
                .find(|g| g.key.target.as_deref() == Some(&target));
            let requests = total.map_or(0, |g| g.requests);
            let p99 = |class: CacheClass| {
                classes
                    .iter()
                    .find(|g| {
                        g.key.target.as_deref() == Some(&target)
                            && g.key.class.as_deref() == Some(class.as_str())
                    })
                    .filter(|g| !g.hists[Metric::Total].is_empty())
                    .map(|g| g.stats(Metric::Total).p99)
            };
            let hit_ratio = total.and_then(|g| g.hit_ratio());
            let (hit_ratio_last, window_s) = last_window(&last_runs, &target);
            let line = line_of(&target);
            let error_rate = total.and_then(|g| g.error_rate());
            let thresholds: Vec<Verdict> = (results.iter())
                .filter(|v| v.on.split('@').next() == Some(target.as_str()))
                .cloned()
                .collect();
            let mut reasons = Vec::new();
            if requests == 0 {
                reasons.push("no requests".to_string());
            }
            match hit_ratio_last.or(hit_ratio) {
                Some(h) if h >= line => {}
                Some(h) => reasons.push(format!(
                    "hit ratio {}{} below the line {}",
                    pct(h),
                    if hit_ratio_last.is_some() {
                        format!(" over the last {window_s:.0} s")
                    } else {
                        String::new()
                    },
                    pct(line)
                )),
                None => reasons.push("no response carried a cache status".to_string()),
            }
            for v in thresholds.iter().filter(|v| !v.passed) {
                reasons.push(format!(
                    "threshold {} failed on {} (observed {}{})",
                    v.expr,
                    v.on,
                    v.observed.map_or("nothing".into(), |o| format!("{o:.3}")),
                    if v.note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", v.note)
                    }
                ));
            }
            // errors are outside the hit ratio: past 1 %, they stop a cutover unless an
            // error_rate threshold of the runs says how many are fine
            let judged = |t: &Threshold| {
                t.kind == Kind::ErrorRate && t.target.as_deref().is_none_or(|n| n == target)
            };
            if let Some(e) = error_rate
                && e > MAX_ERRORS
                && !parsed.iter().any(judged)
            {
                reasons.push(format!(
                    "errors {:.2}% of requests (over {:.0}%, and no error_rate threshold)",
                    e * 100.0,
                    MAX_ERRORS * 100.0
                ));
            }
            let min_pop = (requests as f64 * POP_SHARE).ceil() as u64;
            TargetReadiness {
                ready: reasons.is_empty(),
                requests,
                hit_ratio,
                hit_ratio_last,
                window_s,
                hit_p99_ms: p99(CacheClass::Hit),
                miss_p99_ms: p99(CacheClass::Miss),
                errors: total.and_then(|g| g.errors).unwrap_or(0),
                error_rate,
                line,
                thresholds,
                worst_region: worst(&regions, &target, |g| g.key.region.clone(), 1),
                worst_pop: worst(&pops, &target, |g| g.key.pop.clone(), min_pop.max(1)),
                reasons,
                target,
            }
        })
        .collect::<Vec<_>>();
    Readiness {
        line: cutover,
        ready: problems.is_empty() && !targets.is_empty() && targets.iter().all(|t| t.ready),
        reasons: problems,
        targets,
    }
}

impl Readiness {
    /// One line a target, verdict first: what the terminal shows above the tables.
    pub fn lines(&self) -> String {
        let mut out = String::new();
        for t in &self.targets {
            let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1} ms"));
            let hr = |v: Option<f64>| v.map_or("-".into(), pct);
            let passed = t.thresholds.iter().filter(|v| v.passed).count();
            out += &format!(
                "{:<9}  {}: hit ratio {} (last {:.0} s: {}; line {}), hit p99 {}, miss p99 {}, errors {}{}{}{}\n",
                if t.ready { "READY" } else { "NOT READY" },
                esc(&t.target),
                hr(t.hit_ratio),
                t.window_s,
                hr(t.hit_ratio_last),
                pct(t.line),
                ms(t.hit_p99_ms),
                ms(t.miss_p99_ms),
                t.error_rate
                    .map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
                if t.thresholds.is_empty() {
                    String::new()
                } else {
                    format!(", thresholds {passed}/{} passed", t.thresholds.len())
                },
                t.worst_region.as_ref().map_or(String::new(), |p| format!(
                    ", worst region {} {}",
                    esc(&p.name),
                    pct(p.hit_ratio)
                )),
                t.worst_pop.as_ref().map_or(String::new(), |p| format!(
                    ", worst POP {} {}",
                    esc(&p.name),
                    pct(p.hit_ratio)
                )),
            );
            for r in &t.reasons {
                out += &format!("           - {}\n", esc(r));
            }
        }
        for r in &self.reasons {
            out += &format!("NOT READY  {}\n", esc(r));
        }
        out
    }
}
