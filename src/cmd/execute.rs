//! Runs one planned load test end to end: engine -> results directory -> summary with
//! thresholds. Shared by `run` and `demo`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cache_status::{self, CacheClass};
use crate::engine::{self, Control, EngineConfig, Model};
use crate::measure::{IntervalData, Metric};
use crate::results::ResultsWriter;
use crate::results::summary::{LoadModel, RateSummary, RunMeta, Stats, Summary};
use crate::threshold::Threshold;

pub struct Plan {
    pub engine: EngineConfig,
    pub out: PathBuf,
    pub run_id: String,
    pub region: String,
    pub thresholds: Vec<Threshold>,
    /// the effective configuration, already redacted
    pub scenario: serde_json::Value,
    pub progress: bool,
    /// serve live Prometheus metrics (and /status JSON) here while the run lasts
    pub metrics: Option<std::net::SocketAddr>,
}

pub struct Finished {
    pub summary: Summary,
    pub dir: PathBuf,
}

/// Timestamp run ids sort by time: 20261126T120000Z-1a2b.
pub(crate) fn new_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let suffix =
        crate::urls::mix(now.unix_timestamp_nanos() as u64 ^ std::process::id() as u64) & 0xffff;
    format!("{}-{suffix:04x}", now.format(&fmt).unwrap_or_default())
}

fn live_line(
    d: &IntervalData,
    totals: &IntervalData,
    elapsed: Duration,
    interval: Duration,
) -> String {
    let n_t = d.n_targets();
    let reqs: u64 = d.targets.iter().map(|t| t.requests).sum();
    let errs: u64 = totals.targets.iter().map(|t| t.error_count()).sum();
    let mut classes = [0u64; CacheClass::COUNT];
    let mut p99 = 0u64;
    for ti in 0..n_t {
        for (a, b) in classes.iter_mut().zip(d.targets[ti].classes) {
            *a += b;
        }
        if let Some(s) = d.target_all(ti) {
            p99 = p99.max(s.h[Metric::Total].value_at_quantile(0.99));
        }
    }
    let hr = cache_status::hit_ratio(&classes)
        .map(|h| format!("{:.1}%", h * 100.0))
        .unwrap_or_else(|| "-".into());
    format!(
        "{:>5.0}s  {:>8.0} req/s  p99 {:>8.2} ms  hit {hr:>6}  errors {errs}",
        elapsed.as_secs_f64(),
        reqs as f64 / interval.as_secs_f64(),
        p99 as f64 / 1000.0
    )
}

/// How often the progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub fn execute(plan: Plan, control: &Control) -> anyhow::Result<Finished> {
    let cfg = plan.engine;
    let names: Vec<String> = cfg.targets.iter().map(|t| t.name.clone()).collect();
    let bases: Vec<(String, String)> = cfg
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.base.clone()))
        .collect();
    let interval = cfg.interval;
    let runner = (cfg.share.count > 1).then_some(crate::results::summary::Runner {
        index: cfg.share.index + 1,
        count: cfg.share.count,
    });
    let model = match &cfg.model {
        Model::Open { .. } => LoadModel::Open,
        Model::Closed { .. } => LoadModel::Closed,
    };
    let open_duration = match &cfg.model {
        Model::Open { schedule, .. } => Some(schedule.duration()),
        Model::Closed { .. } => None,
    };
    // before the results directory: an address in use leaves nothing behind
    let endpoint = match plan.metrics {
        Some(addr) => Some(
            crate::results::live::Endpoint::start(addr)
                .with_context(|| format!("cannot serve --metrics on {addr}"))?,
        ),
        None => None,
    };
    let mut writer = ResultsWriter::create(
        &plan.out,
        &plan.run_id,
        &plan.region,
        names.clone(),
        interval,
        cfg.samples,
    )
    .with_context(|| format!("cannot write results to {}", plan.out.display()))?;

    let bar = if plan.progress {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        Some(b)
    } else {
        None
    };
    let last_line = Arc::new(Mutex::new(String::new()));
    // no terminal (a runner's log, CI): the same line as plain text every PLAIN_EVERY instead
    let plain = plan.progress && !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut plain_next = PLAIN_EVERY;
    let mut on_interval = |d: &IntervalData, totals: &IntervalData, elapsed: Duration| {
        if plain && elapsed >= plain_next {
            eprintln!("{}", live_line(d, totals, elapsed, interval));
            while plain_next <= elapsed {
                plain_next += PLAIN_EVERY;
            }
        }
        if let Some(e) = &endpoint {
            let (json, prom) = crate::results::live::run_metrics(&names, d, totals, elapsed);
            e.publish(json, prom);
        }
        if let Some(b) = &bar {
            let line = live_line(d, totals, elapsed, interval);
            b.set_message(line.clone());
            if let Ok(mut l) = last_line.lock() {
                *l = line;
            }
        }
    };
    let stats =
        engine::run(cfg, control, &mut writer, &mut on_interval).context("load run failed")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let completed: u64 = stats.totals.targets.iter().map(|t| t.requests).sum();
    let elapsed = stats.elapsed.as_secs_f64();
    let lag = stats
        .totals
        .send_lag
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(Stats::of);
    let achieved = match open_duration {
        // the open model's rate is measured over its schedule (a slow tail is not a lower rate)
        Some(d) if !stats.interrupted && !d.is_zero() => completed as f64 / d.as_secs_f64(),
        _ => completed as f64 / elapsed.max(1e-9),
    };
    let fell_behind = model == LoadModel::Open
        && (lag.as_ref().is_some_and(|l| l.p99 > 10.0)
            || (!stats.interrupted
                && stats
                    .planned
                    .is_some_and(|p| (stats.sent as f64) < 0.99 * p as f64)));
    let rate = RateSummary {
        model,
        intended_rps: stats.intended_rate,
        achieved_rps: achieved,
        planned_requests: stats.planned,
        sent: stats.sent,
        unsent: match (model, stats.planned) {
            (LoadModel::Open, Some(p)) if !stats.interrupted => p.saturating_sub(stats.sent),
            _ => 0,
        },
        completed,
        abandoned: stats.abandoned,
        send_lag: lag,
        fell_behind,
    };
    let meta = RunMeta {
        run_id: &plan.run_id,
        region: &plan.region,
        scenario: plan.scenario,
        started: stats.started,
        ended: stats.started + stats.elapsed,
        interval,
        interrupted: stats.interrupted,
    };
    let mut summary = Summary::new(meta, rate, &stats.totals, &bases);
    summary.unknown_headers = stats.unknown_headers;
    summary.tls_errors = stats.tls_errors;
    summary.runner = runner;
    let results = (plan.thresholds.iter())
        .flat_map(|t| t.evaluate(&summary))
        .collect();
    let summary = summary.judged(results);
    writer
        .pops(&stats.totals, stats.elapsed)
        .with_context(|| format!("cannot write {}", crate::results::hlog::POPS))?;
    let dir = writer
        .finish(&summary)
        .with_context(|| format!("cannot finish results in {}", plan.out.display()))?;
    Ok(Finished { summary, dir })
}
