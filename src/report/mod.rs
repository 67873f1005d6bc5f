//! Results directories -> merged model -> tables (terminal, report.md), plots (plots/*.svg,png),
//! report.html (self-contained), exports (.hgrm, merged summary.json). Uses `results` and
//! `cache_status`, never the engine's running parts.

pub mod export;
pub mod load;
pub mod model;
pub mod plots;
pub mod tables;
pub mod text;

use crate::measure::Metric;
use crate::results::summary::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use load::RunData;
use model::{By, Group};
use plots::{BarSpec, Line, LineSpec};

pub struct ReportOptions {
    pub out: PathBuf,
    pub by: By,
    pub plots: bool,
    /// hit-ratio line on the hit-ratio plot when no threshold in the runs names one
    pub cutover: f64,
}

pub struct Report {
    /// what the terminal shows
    pub text: String,
    pub markdown: String,
    pub groups: Vec<Group>,
    pub plot_specs: Vec<String>,
    pub warnings: Vec<String>,
}

/// Loads every results directory under `inputs`: (runs, warnings about skipped ones).
pub fn load_all(inputs: &[PathBuf]) -> Result<(Vec<RunData>, Vec<String>), load::LoadError> {
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    let mut dirs = Vec::new();
    for i in inputs {
        let found = load::find_dirs(i);
        if found.is_empty() {
            warnings.push(format!("{}: no results directory found", i.display()));
        }
        dirs.extend(found);
    }
    // one directory per thread at a time, results kept in input order
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(dirs.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut loaded: Vec<Option<Result<Result<RunData, String>, load::LoadError>>> =
        (0..dirs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut loaded);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(d) = dirs.get(i) else { break };
                    let r = load::load_dir(d);
                    if let Ok(mut sl) = slots.lock() {
                        sl[i] = Some(r);
                    }
                }
            });
        }
    });
    for r in loaded.into_iter().flatten() {
        match r? {
            Ok(r) => runs.push(r),
            Err(w) => warnings.push(w),
        }
    }
    Ok((runs, warnings))
}

fn metadata(runs: &[RunData]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| region | run | target(s) | started (UTC) | duration | model | intended req/s | achieved req/s | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---|---:|---:|---|");
    for r in runs {
        let s = &r.summary;
        let targets: Vec<&str> = s.targets.iter().map(|t| t.name.as_str()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} s | {} | {} | {:.1}{} | {}{} |",
            s.region,
            s.run_id,
            targets.join(", "),
            s.started_at,
            s.duration_s,
            s.rate.model,
            s.rate
                .intended_rps
                .map(|r| format!("{r:.1}"))
                .unwrap_or_else(|| "-".into()),
            s.rate.achieved_rps,
            if s.rate.fell_behind {
                " **fell behind**"
            } else {
                ""
            },
            s.verdict,
            if s.interrupted { " (interrupted)" } else { "" },
        );
    }
    out
}

fn thresholds(runs: &[RunData]) -> String {
    let mut out = String::new();
    for r in runs {
        for t in &r.summary.thresholds {
            let _ = writeln!(
                out,
                "- {} {} `{}` [{}] observed {}{}",
                if t.passed { "PASS" } else { "**FAIL**" },
                r.summary.region,
                t.expr,
                t.target,
                t.observed
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "-".into()),
                if t.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.note)
                }
            );
        }
    }
    out
}

/// The plot specs: pure data, drawn by `plots::render`.
pub fn plot_specs(runs: &[RunData], cutover: f64) -> (Vec<LineSpec>, Vec<BarSpec>) {
    let mut lines = Vec::new();
    let lat = model::latency_over_time(runs);
    // one region: p50, p90, p99 per target; several: p50 and p99 per region and target
    let pcts: &[&str] = if model::regions(runs).len() > 1 {
        &["p50", "p99"]
    } else {
        &["p50", "p90", "p99"]
    };
    lines.push(LineSpec {
        file: "latency_over_time".into(),
        title: "Latency over time (corrected, total)".into(),
        x_label: "time since start (s)".into(),
        y_label: "latency (ms)".into(),
        lines: lat
            .iter()
            .flat_map(|s| {
                pcts.iter().map(move |p| Line {
                    name: format!("{} {p}", s.name),
                    points: match *p {
                        "p50" => s.p50.clone(),
                        "p90" => s.p90.clone(),
                        _ => s.p99.clone(),
                    },
                })
            })
            .collect(),
        log_x: false,
        hline: None,
        y_min_zero: true,
    });
    let rates = model::rates_over_time(runs);
    let line = model::hit_ratio_threshold(runs).unwrap_or(cutover);
    lines.push(LineSpec {
        file: "hit_ratio_over_time".into(),
        title: "Cache hit ratio over time".into(),
        x_label: "time since start (s)".into(),
        y_label: "hit ratio".into(),
        lines: rates
            .iter()
            .map(|r| Line {
                name: r.target.clone(),
                points: r.hit_ratio.clone(),
            })
            .collect(),
        log_x: false,
        hline: Some((line, format!("cutover {:.0}%", line * 100.0))),
        y_min_zero: true,
    });
    lines.push(LineSpec {
        file: "throughput_errors".into(),
        title: "Throughput and errors over time".into(),
        x_label: "time since start (s)".into(),
        y_label: "per second".into(),
        lines: rates
            .iter()
            .flat_map(|r| {
                [
                    Line {
                        name: format!("{} req/s", r.target),
                        points: r.rps.clone(),
                    },
                    Line {
                        name: format!("{} errors/s", r.target),
                        points: r.errors_per_s.clone(),
                    },
                ]
            })
            .collect(),
        log_x: false,
        hline: None,
        y_min_zero: true,
    });
    let classes = model::class_hists(runs);
    lines.push(LineSpec {
        file: "latency_distribution".into(),
        title: "Latency by percentile (corrected, total)".into(),
        x_label: "percentile".into(),
        y_label: "latency (ms)".into(),
        lines: classes
            .iter()
            .map(|(c, h)| Line {
                name: c.clone(),
                points: model::distribution(h),
            })
            .collect(),
        log_x: true,
        hline: None,
        y_min_zero: true,
    });
    let by_region = model::groups(
        runs,
        By {
            region: true,
            target: true,
            class: false,
        },
    );
    let regions = model::regions(runs);
    let targets = model::targets(runs);
    let mut series = Vec::new();
    for t in &targets {
        for (pname, q) in [("p50", 0.5), ("p99", 0.99)] {
            let vals = regions
                .iter()
                .map(|r| {
                    by_region
                        .iter()
                        .find(|g| {
                            g.key.region.as_deref() == Some(r) && g.key.target.as_deref() == Some(t)
                        })
                        .filter(|g| !g.hists[Metric::Total].is_empty())
                        .map(|g| g.hists[Metric::Total].value_at_quantile(q) as f64 / 1000.0)
                        .unwrap_or(0.0)
                })
                .collect();
            series.push((format!("{t} {pname}"), vals));
        }
    }
    let bars = vec![BarSpec {
        file: "regions".into(),
        title: "p50 and p99 by region (corrected, total)".into(),
        y_label: "latency (ms)".into(),
        categories: regions,
        series,
    }];
    (lines, bars)
}

/// Builds everything into `o.out`. `baseline`: runs to compare against (A = baseline).
pub fn build(
    runs: &[RunData],
    baseline: Option<&[RunData]>,
    warnings: Vec<String>,
    o: &ReportOptions,
) -> Result<Report, String> {
    let io = |e: std::io::Error| format!("{}: {e}", o.out.display());
    std::fs::create_dir_all(&o.out).map_err(io)?;
    let groups = model::groups(runs, o.by);
    let (head, rows) = tables::main_rows(&groups);
    let (dhead, drows) = tables::detail_rows(&groups);

    // comparison: a baseline, or the two targets of one run
    let mut comparison = None;
    if let Some(base) = baseline {
        let by = By {
            region: false,
            ..o.by
        };
        let (a, b) = (model::groups(base, by), model::groups(runs, by));
        comparison = Some(tables::comparison_rows(
            &a,
            &b,
            "baseline (ms)",
            "this (ms)",
        ));
    } else {
        let ts = model::targets(runs);
        if ts.len() == 2 {
            let by = By {
                region: false,
                target: false,
                class: true,
            };
            let only = |name: &str| -> Vec<RunData> {
                runs.iter().map(|r| filter_target(r, name)).collect()
            };
            let (ra, rb) = (only(&ts[0]), only(&ts[1]));
            let (a, b) = (model::groups(&ra, by), model::groups(&rb, by));
            comparison = Some(tables::comparison_rows(
                &a,
                &b,
                &format!("{} (ms)", ts[0]),
                &format!("{} (ms)", ts[1]),
            ));
        }
    }

    let mut md = String::new();
    let _ = writeln!(md, "# edgeload report\n");
    let _ = writeln!(md, "## Runs\n\n{}", metadata(runs));
    let _ = writeln!(
        md,
        "## Latency (ms from the intended send time, body fully read)\n\n{}",
        tables::markdown(&head, &rows)
    );
    let _ = writeln!(
        md,
        "## Corrected and service time, total and TTFB (ms)\n\n{}",
        tables::markdown(&dhead, &drows)
    );
    if let Some((h, r)) = &comparison {
        let _ = writeln!(
            md,
            "## Comparison (corrected total, ratio = second / first)\n\n{}",
            tables::markdown(h, r)
        );
    }
    let th = thresholds(runs);
    if !th.is_empty() {
        let _ = writeln!(md, "## Thresholds\n\n{th}");
    }
    if !warnings.is_empty() {
        let _ = writeln!(md, "## Warnings\n");
        for w in &warnings {
            let _ = writeln!(md, "- {w}");
        }
        md.push('\n');
    }

    let mut svgs: Vec<(String, String)> = Vec::new();
    let mut plot_files = Vec::new();
    if o.plots {
        let pdir = o.out.join("plots");
        std::fs::create_dir_all(&pdir).map_err(io)?;
        let (lines, bars) = plot_specs(runs, o.cutover);
        for s in &lines {
            svgs.push((s.title.clone(), plots::render(&pdir, s)?));
            plot_files.push(s.file.clone());
        }
        for s in &bars {
            svgs.push((s.title.clone(), plots::render(&pdir, s)?));
            plot_files.push(s.file.clone());
        }
        let _ = writeln!(md, "## Plots\n");
        for f in &plot_files {
            let _ = writeln!(md, "![{f}](plots/{f}.svg)");
        }
    }
    // every file appears whole or not at all
    let write = crate::guard::atomic::write;
    write(&o.out.join("report.md"), md.as_bytes()).map_err(io)?;
    write(
        &o.out.join("report.html"),
        html(&md_to_sections(&md), &svgs).as_bytes(),
    )
    .map_err(io)?;

    // exports
    let edir = o.out.join("hgrm");
    std::fs::create_dir_all(&edir).map_err(io)?;
    for g in &groups {
        let name: String = g
            .key
            .label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        write(
            &edir.join(format!("{name}.hgrm")),
            export::hgrm(&g.hists[Metric::Total]).as_bytes(),
        )
        .map_err(io)?;
    }
    let merged = merged_summary(runs);
    write(
        &o.out.join("summary.json"),
        &serde_json::to_vec_pretty(&merged).unwrap_or_default(),
    )
    .map_err(io)?;

    let mut text = String::new();
    let _ = writeln!(text, "{}", tables::text(&head, &rows));
    if let Some((h, r)) = &comparison {
        let _ = writeln!(text, "{}", tables::text(h, r));
    }
    Ok(Report {
        text,
        markdown: md,
        groups,
        plot_specs: plot_files,
        warnings,
    })
}

/// A copy of a run restricted to one target (comparison of two targets of one run).
fn filter_target(r: &RunData, target: &str) -> RunData {
    let mut summary = r.summary.clone();
    summary.targets.retain(|t| t.name == target);
    RunData {
        dir: r.dir.clone(),
        summary,
        totals: r
            .totals
            .iter()
            .filter(|(k, _)| k.0 == target)
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect(),
        over_time: r
            .over_time
            .iter()
            .filter(|p| p.target == target)
            .cloned()
            .collect(),
        timeline: r
            .timeline
            .iter()
            .filter(|t| t.target == target)
            .cloned()
            .collect(),
        start: r.start,
    }
}

/// The merged result in summary.json's shape: per target (all regions), per class.
pub(crate) fn merged_summary(runs: &[RunData]) -> crate::results::summary::Summary {
    use crate::measure::Series;

    use crate::results::summary::{ClassSummary, Summary, TargetSummary};
    let groups = model::groups(
        runs,
        By {
            region: false,
            target: true,
            class: true,
        },
    );
    let totals = model::groups(
        runs,
        By {
            region: false,
            target: true,
            class: false,
        },
    );
    let mut targets: BTreeMap<String, TargetSummary> = BTreeMap::new();
    let series = |g: &Group| Series {
        h: g.hists.clone(),
        bytes: g.bytes,
    };
    for g in &totals {
        let name = g.key.target.clone().unwrap_or_default();
        let base_url = runs
            .iter()
            .flat_map(|r| r.summary.targets.iter())
            .find(|t| t.name == name)
            .map(|t| crate::guard::redact::url(&t.base_url).into_owned())
            .unwrap_or_default();
        let mut errors_by_kind = BTreeMap::new();
        let mut status_codes = BTreeMap::new();
        for t in runs
            .iter()
            .flat_map(|r| r.summary.targets.iter())
            .filter(|t| t.name == name)
        {
            for (k, v) in &t.errors_by_kind {
                *errors_by_kind.entry(k.clone()).or_insert(0) += v;
            }
            for (k, v) in &t.status_codes {
                *status_codes.entry(k.clone()).or_insert(0) += v;
            }
        }
        targets.insert(
            name.clone(),
            TargetSummary {
                name: name.clone(),
                base_url,
                requests: g.requests,
                bytes: g.bytes,
                hit_ratio: g.hit_ratio(),
                errors: g.errors.unwrap_or(0),
                error_rate: g.error_rate().unwrap_or(0.0),
                errors_by_kind,
                status_codes,
                pops: BTreeMap::new(),
                all: ClassSummary::of("all", &series(g)),
                classes: Vec::new(),
            },
        );
    }
    for g in &groups {
        if let (Some(t), Some(c)) = (&g.key.target, &g.key.class)
            && let Some(ts) = targets.get_mut(t)
        {
            ts.classes.push(ClassSummary::of(c, &series(g)));
        }
    }
    let mut run_ids: Vec<&str> = runs.iter().map(|r| r.summary.run_id.as_str()).collect();
    run_ids.sort();
    run_ids.dedup();
    let t0 = model::t0(runs);
    let t1 = runs
        .iter()
        .map(|r| r.start + r.summary.duration_s)
        .fold(f64::MIN, f64::max);
    Summary {
        format_version: crate::results::summary::FORMAT_VERSION,
        run_id: run_ids.join("+"),
        region: model::regions(runs).join("+"),
        tool: runs
            .first()
            .map(|r| r.summary.tool.clone())
            .unwrap_or_default(),
        scenario: serde_json::json!({"merged_from": runs.iter().map(|r| r.dir.display().to_string()).collect::<Vec<_>>()}),
        started_at: runs
            .iter()
            .map(|r| r.summary.started_at.clone())
            .min()
            .unwrap_or_default(),
        ended_at: runs
            .iter()
            .map(|r| r.summary.ended_at.clone())
            .max()
            .unwrap_or_default(),
        duration_s: (t1 - t0).max(0.0),
        interval_s: runs.first().map(|r| r.summary.interval_s).unwrap_or(1.0),
        interrupted: runs.iter().any(|r| r.summary.interrupted),
        rate: Default::default(),
        targets: targets.into_values().collect(),
        thresholds: runs
            .iter()
            .flat_map(|r| r.summary.thresholds.clone())
            .collect(),
        verdict: if runs.iter().any(|r| r.summary.verdict == Verdict::Fail) {
            Verdict::Fail
        } else if runs.iter().all(|r| r.summary.verdict == Verdict::None) {
            Verdict::None
        } else {
            Verdict::Pass
        },
        mirror: None,
    }
}

/// Splits report.md into (heading, body) sections for the HTML page.
fn md_to_sections(md: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            out.push((h.to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_table_to_html(body: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    let mut in_list = false;
    for line in body.lines() {
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            if !in_table {
                out.push_str("<table><tr>");
                for c in &cells {
                    let _ = write!(out, "<th>{}</th>", esc(c));
                }
                out.push_str("</tr>\n");
                in_table = true;
            } else {
                out.push_str("<tr>");
                for c in &cells {
                    let c = c.replace("**", "");
                    let _ = write!(out, "<td>{}</td>", esc(&c));
                }
                out.push_str("</tr>\n");
            }
        } else {
            if in_table {
                out.push_str("</table>\n");
                in_table = false;
            }
            if let Some(item) = line.strip_prefix("- ") {
                if !in_list {
                    out.push_str("<ul>");
                    in_list = true;
                }
                let _ = write!(
                    out,
                    "<li>{}</li>",
                    esc(&item.replace("**", "").replace('`', ""))
                );
            } else if in_list {
                out.push_str("</ul>\n");
                in_list = false;
            }
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out
}

/// One self-contained page: tables, inline SVG plots, no external resources.
fn html(sections: &[(String, String)], svgs: &[(String, String)]) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>edgeload report</title><style>\
body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:13px}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
th{background:#f3f3f3}h2{margin-top:1.5em}.plot{margin:1em 0}</style></head><body><h1>edgeload report</h1>\n",
    );
    for (h, body) in sections {
        if h == "Plots" {
            continue;
        }
        let _ = write!(out, "<h2>{}</h2>\n{}", esc(h), md_table_to_html(body));
    }
    if !svgs.is_empty() {
        out.push_str("<h2>Plots</h2>\n");
        for (title, svg) in svgs {
            let svg = svg.trim_start_matches(|c| c != '<');
            let svg = match svg.find("<svg") {
                Some(i) => &svg[i..],
                None => svg,
            };
            let _ = writeln!(
                out,
                "<div class=\"plot\" title=\"{}\">{svg}</div>",
                esc(title)
            );
        }
    }
    out.push_str("</body></html>\n");
    out
}
