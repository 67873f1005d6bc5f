//! The terminal summary of one results set: per target and cache class, count, mean, stddev,
//! percentiles and max, hit ratio, errors, intended vs achieved rate, threshold verdicts.

use std::fmt::Write;

use crate::results::summary::{ClassSummary, Summary};

fn row(out: &mut String, c: &ClassSummary) {
    let t = &c.corrected.total;
    let _ = writeln!(
        out,
        "  {:<12}{:>9}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2} |{:>9.2}{:>9.2}",
        c.class,
        c.count,
        t.mean,
        t.stddev,
        t.p50,
        t.p90,
        t.p99,
        t.p999,
        t.max,
        c.service.total.p99,
        c.corrected.ttfb.p50,
    );
}

/// Above this share of `unknown` responses, the terminal and the report warn.
pub(crate) const UNKNOWN_WARN: f64 = 0.01;

/// The share of responses with no recognised cache status, and, above 1 %, what to do: the
/// header names seen on them (a rule can use one) and the header Akamai needs to be asked for.
pub(crate) fn unknown_warning(
    s: &Summary,
    t: &crate::results::summary::TargetSummary,
) -> Option<String> {
    let share = t.unknown_share.filter(|u| *u > 0.0)?;
    if share <= UNKNOWN_WARN {
        return Some(format!(
            "unknown cache status: {:.2}% of responses",
            share * 100.0
        ));
    }
    let seen = if s.unknown_headers.is_empty() {
        "none besides the usual".to_string()
    } else {
        s.unknown_headers.join(", ")
    };
    Some(format!(
        "WARNING: {:.1}% of {}'s responses carried no recognised cache status (headers seen on \
         them: {seen}); add a [cache] rule for the one that says HIT/MISS, or ask for it \
         (Akamai: -H 'Pragma: akamai-x-cache-on')",
        share * 100.0,
        t.name
    ))
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let r = &s.rate;
    let _ = writeln!(
        out,
        "run {} (region {}) {:.1} s, {} model{}",
        s.run_id,
        s.region,
        s.duration_s,
        r.model,
        if s.interrupted { ", INTERRUPTED" } else { "" }
    );
    match r.intended_rps {
        Some(i) => {
            let _ = writeln!(
                out,
                "  rate: intended {i:.1} req/s, achieved {:.1} req/s; sent {}, completed {}{}",
                r.achieved_rps,
                r.sent,
                r.completed,
                r.planned_requests
                    .map(|p| format!(" of {p} planned"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  rate: achieved {:.1} req/s; sent {}, completed {}",
                r.achieved_rps, r.sent, r.completed
            );
        }
    }
    if r.unsent > 0 {
        let _ = writeln!(
            out,
            "  UNSENT: {} requests were due before the end and never sent (the target or the \
             in-flight cap held them back)",
            r.unsent
        );
    }
    if let Some(l) = &r.send_lag {
        let _ = writeln!(
            out,
            "  send lag: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50, l.p99, l.max
        );
    }
    if r.fell_behind {
        let _ = writeln!(
            out,
            "  WARNING: the load generator FELL BEHIND its schedule; latencies are still timed from the intended send times, but the target saw less load than planned"
        );
    }
    if !s.tls_errors.is_empty() {
        let _ = writeln!(
            out,
            "  TLS handshakes failed: {} (a private CA: --cacert FILE; a staging edge: --insecure)",
            s.tls_errors.join("; ")
        );
    }
    if r.abandoned > 0 {
        let _ = writeln!(
            out,
            "  {} requests in flight were abandoned at the stop",
            r.abandoned
        );
    }
    for t in &s.targets {
        let _ = writeln!(out);
        let hr = t
            .hit_ratio
            .map(|h| format!("{:.1}%", h * 100.0))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "target {} {}: {} requests, hit ratio {hr}, errors {} ({:.2}%), {:.1} MB",
            t.name,
            t.base_url,
            t.requests,
            t.errors,
            t.error_rate * 100.0,
            t.bytes as f64 / 1e6
        );
        if let Some(w) = unknown_warning(s, t) {
            let _ = writeln!(out, "  {w}");
        }
        if t.retries > 0 {
            let _ = writeln!(
                out,
                "  retries: {} requests were sent again after a reused connection closed before \
                 answering ({:.2}% of requests; timed from the first send; --retries 0 to count \
                 them as errors)",
                t.retries,
                t.retries as f64 / t.requests.max(1) as f64 * 100.0
            );
        }
        let _ = writeln!(
            out,
            "  {:<12}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9} |{:>9}{:>9}",
            "class (ms)",
            "count",
            "mean",
            "stddev",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "svc p99",
            "ttfb p50"
        );
        for c in &t.classes {
            row(&mut out, c);
        }
        if t.classes.len() > 1 {
            row(&mut out, &t.all);
        }
        let c = &t.connections;
        if c.opened > 0 {
            let tls = if c.tls_handshakes > 0 {
                let params: Vec<&str> = c.tls.keys().map(String::as_str).collect();
                format!(
                    ", TLS handshake p50 {:.2} ms p99 {:.2} ms ({} of {} resumed; {})",
                    c.tls_handshake.p50,
                    c.tls_handshake.p99,
                    c.tls_resumed,
                    c.tls_handshakes,
                    params.join(", ")
                )
            } else {
                String::new()
            };
            let protocols: Vec<&str> = c.protocols.keys().map(String::as_str).collect();
            let dns = if c.dns.count > 0 {
                format!("DNS p50 {:.2} ms ({} lookups), ", c.dns.p50, c.dns.count)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  connections: {} opened ({}), {} requests on kept-alive ones; {dns}connect \
                 p50 {:.2} ms p99 {:.2} ms{tls}",
                c.opened,
                protocols.join(", "),
                c.reused,
                c.connect.p50,
                c.connect.p99
            );
        }
        if !t.pop_summaries.is_empty() {
            let mut pops: Vec<_> = t.pop_summaries.iter().collect();
            pops.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
            let shown: Vec<String> = (pops.iter().take(8))
                .map(|(p, s)| {
                    let hr = (s.hit_ratio)
                        .map(|h| format!("{:.1}%", h * 100.0))
                        .unwrap_or_else(|| "-".into());
                    format!(
                        "{p} {} req, hit {hr}, p99 {:.2} ms",
                        s.requests, s.all.corrected.total.p99
                    )
                })
                .collect();
            let more = pops.len().saturating_sub(8);
            let _ = writeln!(
                out,
                "  POPs: {}{}",
                shown.join("; "),
                if more > 0 {
                    format!("; +{more} more (report --by pop)")
                } else {
                    String::new()
                }
            );
        }
        if !t.errors_by_kind.is_empty() {
            let kinds: Vec<String> = t
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "  errors: {}", kinds.join(", "));
        }
        let codes: Vec<String> = t
            .status_codes
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        if !codes.is_empty() {
            let _ = writeln!(out, "  status: {}", codes.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "  (latencies in ms from the intended send time; svc = from the actual send)"
    );
    if !s.thresholds.is_empty() {
        let _ = writeln!(out);
        for th in &s.thresholds {
            let obs = th
                .observed
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{} {} [{}] observed {obs}{}",
                if th.passed { "PASS" } else { "FAIL" },
                th.expr,
                th.target,
                if th.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", th.note)
                }
            );
        }
        let _ = writeln!(out, "verdict: {}", s.verdict);
    }
    // names and POPs come from files and CDN headers: no terminal control gets through
    crate::guard::quote::escape_lines(&out).into_owned()
}
