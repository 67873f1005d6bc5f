//! `edgeload observe`: flags -> the extraction's options with its tally on -> `observe::write`;
//! prints the hit ratio, the POPs, and what warming can still win.

use std::time::Duration;

use super::{EXIT_OK, UsageError, usage};
use crate::cli::{ExtractArgs, ObserveArgs};
use crate::extract::observe::{ObserveOptions, Split};
use crate::observe::{Observed, Settings};
use crate::results::summary::TargetSummary;

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn ms(v: f64, count: u64) -> String {
    if count == 0 {
        "-".into()
    } else {
        format!("{v:.1}")
    }
}

fn target_line(t: &TargetSummary) -> String {
    let r = t.responses.as_ref().unwrap_or(&t.all);
    let timed = r.corrected.total.count;
    format!(
        "  {:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>9}\n",
        crate::guard::quote::escape(&t.name),
        t.requests,
        pct(t.hit_ratio),
        pct(t.byte_hit_ratio),
        pct(Some(t.error_rate)),
        ms(r.corrected.total.p50, timed),
        ms(r.corrected.total.p99, timed),
    )
}

/// The terminal summary.
fn render(o: &Observed, top: usize) -> String {
    let s = &o.summary;
    let mut out = format!(
        "observed {} .. {}, intervals of {} s\n  {:<24} {:>11} {:>9} {:>10} {:>7} {:>9} {:>9}\n",
        s.started_at,
        s.ended_at,
        s.interval_s,
        "target",
        "requests",
        "hit",
        "byte hit",
        "errors",
        "p50 ms",
        "p99 ms"
    );
    for t in &s.targets {
        out += &target_line(t);
    }
    if o.folded > 0 {
        out += &format!("  ({} more names counted as _other)\n", o.folded);
    }
    for t in s.targets.iter().filter(|t| t.requests > 0) {
        let share = |n: u64| format!("{:.1}%", n as f64 * 100.0 / t.requests as f64);
        let mut st: Vec<(&String, &u64)> = t.status_codes.iter().collect();
        st.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let st: Vec<String> = (st.iter().take(6))
            .map(|(k, n)| format!("{k} {}", share(**n)))
            .collect();
        let er: Vec<String> = (t.errors_by_kind.iter())
            .map(|(k, n)| format!("{k} {}", share(*n)))
            .collect();
        out += &format!(
            "  {}: statuses {}{}\n",
            crate::guard::quote::escape(&t.name),
            st.join(", "),
            if er.is_empty() {
                String::new()
            } else {
                format!("; errors {}", er.join(", "))
            }
        );
    }
    for t in &s.targets {
        let mut pops: Vec<(&String, &crate::results::summary::PopSummary)> =
            t.pop_summaries.iter().collect();
        if pops.len() < 2 {
            continue;
        }
        pops.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        let list: Vec<String> = (pops.iter().take(8))
            .map(|(p, ps)| format!("{} {}", crate::guard::quote::escape(p), pct(ps.hit_ratio)))
            .collect();
        out += &format!(
            "  {} by POP (most requests first): {}\n",
            crate::guard::quote::escape(&t.name),
            list.join(", ")
        );
    }
    let m = &o.misses;
    out += &format!(
        "misses: {} on {} URLs, {:.1} MB; one-hit wonders (URLs requested once): {} of the misses, which no warming saves\n",
        m.misses,
        m.urls,
        m.bytes as f64 / 1e6,
        pct(m.one_hit_share)
    );
    out += &format!(
        "{}: the {} URLs that missed most ({} of the misses; at most --top-misses {top})\n",
        crate::results::MISSES,
        m.listed,
        pct((m.misses > 0).then(|| m.listed_misses as f64 / m.misses as f64)),
    );
    out
}

pub fn run(a: ObserveArgs) -> anyhow::Result<i32> {
    let interval = super::duration("--interval", &a.interval)?;
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(366 * 86_400) {
        return usage(format!("--interval {}: from 1s to 366d", a.interval));
    }
    let split = match a.split.as_str() {
        "none" => Split::Whole,
        "host" => Split::Host,
        "pop" => Split::Pop,
        s => return usage(format!("--split {s:?}: none, host or pop")),
    };
    if a.split_top == 0 {
        return usage("--split-top 0: at least 1".to_string());
    }
    let run_id = a.run_id.clone().unwrap_or_else(super::execute::new_run_id);
    crate::guard::names::label("--run-id", &run_id).map_err(UsageError)?;
    let region = a.region.clone().unwrap_or_else(|| "observed".into());
    crate::guard::names::label("--region", &region).map_err(UsageError)?;
    crate::guard::names::label("--name", &a.name).map_err(UsageError)?;
    let ex = ExtractArgs {
        logs: a.logs.clone(),
        output: a.out.join(crate::results::MISSES).display().to_string(),
        format: a.format.clone(),
        json_fields: a.json_fields.clone(),
        methods: a.methods.clone(),
        status: a.status.clone(),
        host: a.host.clone(),
        since: a.since.clone(),
        until: a.until.clone(),
        drop_query: a.drop_query,
        threads: a.threads,
        max_memory: a.max_memory.clone(),
        spill_dir: a.spill_dir.clone(),
        s3: a.s3.clone(),
        quiet: a.quiet,
        seed: 1,
        ..ExtractArgs::default()
    };
    let mut o = super::extract::options(&ex)?;
    o.observe = Some(ObserveOptions {
        interval_us: interval.as_micros().min(i64::MAX as u128) as i64,
        split,
    });
    // the spill folder goes beside the results: the directory must be there first
    std::fs::create_dir_all(&a.out)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", a.out.display())))?;
    let (extracted, secs) = super::extract::read(&ex, &o)?;
    let settings = Settings {
        dir: a.out.clone(),
        run_id,
        region,
        name: a.name.clone(),
        split,
        split_top: a.split_top,
        top_misses: a.top_misses,
        interval,
        scenario: serde_json::json!({
            "command": "observe",
            "interval": a.interval,
            "split": a.split,
            "format": a.format,
            "methods": a.methods,
            "status": a.status,
            "since": a.since,
            "until": a.until,
        }),
    };
    let observed = crate::observe::write(&extracted, &settings).map_err(|e| match e {
        crate::observe::ObserveError::Io(e) => anyhow::Error::new(e),
        e => UsageError(e.to_string()).into(),
    })?;
    if !a.quiet {
        eprint!("{}", super::extract::render(&extracted.stats, secs));
        eprint!("{}", render(&observed, a.top_misses));
        eprintln!(
            "wrote {} (`edgeload report {}` draws it, beside a load test's results)",
            observed.dir.display(),
            observed.dir.display()
        );
    }
    extracted.leak();
    Ok(EXIT_OK)
}
