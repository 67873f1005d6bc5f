//! The report's tables, as Markdown (report.md, pull requests, wikis) and as aligned text for
//! the terminal: JMeter's aggregate-report columns plus what JMeter lacks.

use std::fmt::Write;

use super::model::Group;
use crate::measure::Metric;
use crate::results::summary::Stats;

fn opt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.2}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

/// Header and rows of the main table (corrected total latency, ms); (label, group) from
/// `model::table_rows`.
pub(crate) fn main_rows(groups: &[(String, Group)]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let head = vec![
        "group",
        "samples",
        "mean",
        "stddev",
        "min",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
        "req/s",
        "KB/s",
        "error %",
        "hit ratio",
    ];
    let rows = groups
        .iter()
        .map(|(label, g)| {
            let s = g.stats(Metric::Total);
            vec![
                label.clone(),
                s.count.to_string(),
                ms(s.mean),
                ms(s.stddev),
                ms(s.min),
                ms(s.p50),
                ms(s.p90),
                ms(s.p95),
                ms(s.p99),
                ms(s.p999),
                ms(s.max),
                format!("{:.1}", g.rps()),
                format!("{:.1}", g.kb_per_s()),
                opt_pct(g.error_rate()),
                if g.key.class.is_some() {
                    "-".into()
                } else {
                    opt_pct(g.hit_ratio())
                },
            ]
        })
        .collect();
    (head, rows)
}

/// p50/p99/p99.9 of each of the four latencies (corrected/service x total/TTFB).
pub(crate) fn detail_rows(groups: &[(String, Group)]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head = vec!["group".to_string()];
    for (m, b) in Metric::ALL.map(Metric::tag_parts) {
        for p in ["p50", "p99", "p99.9"] {
            head.push(format!("{m} {b} {p}"));
        }
    }
    let rows = groups
        .iter()
        .map(|(label, g)| {
            let mut r = vec![label.clone()];
            for m in Metric::ALL {
                let s: Stats = g.stats(m);
                r.extend([ms(s.p50), ms(s.p99), ms(s.p999)]);
            }
            r
        })
        .collect();
    (head, rows)
}

pub fn text<H: AsRef<str>>(head: &[H], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.as_ref().len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "{c:<width$}", width = w[0]);
            } else {
                let _ = write!(out, "  {c:>width$}", width = w[i]);
            }
        }
        out.push('\n');
    };
    line(head.iter().map(|h| h.as_ref()).collect(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// A vs B per group key and percentile, with the ratio B/A.
pub(crate) fn comparison_rows(
    a: &[Group],
    b: &[Group],
    a_name: &str,
    b_name: &str,
) -> (Vec<String>, Vec<Vec<String>>) {
    type Pick = fn(&Stats) -> f64;
    let ps: [(&str, Pick); 5] = [
        ("p50", |s| s.p50),
        ("p90", |s| s.p90),
        ("p99", |s| s.p99),
        ("p99.9", |s| s.p999),
        ("max", |s| s.max),
    ];
    let head: Vec<String> = ["group", "percentile", a_name, b_name, "ratio"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    for ga in a {
        let Some(gb) = b.iter().find(|g| g.key == ga.key) else {
            continue;
        };
        let (sa, sb) = (ga.stats(Metric::Total), gb.stats(Metric::Total));
        for (name, f) in ps {
            let (x, y) = (f(&sa), f(&sb));
            // latency: lower is better; within 5 % is the same
            // (an empty side, 0 ms, is no measurement: no ratio)
            let ratio = if x > 0.0 && y > 0.0 {
                // judged on the ratio as shown
                let r = (y / x * 100.0).round() / 100.0;
                let word = if r < 0.95 {
                    " better"
                } else if r > 1.05 {
                    " worse"
                } else {
                    ""
                };
                format!("{r:.2}x{word}")
            } else {
                "-".into()
            };
            rows.push(vec![ga.key.label(), name.to_string(), ms(x), ms(y), ratio]);
        }
    }
    (head, rows)
}
