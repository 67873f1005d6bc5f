//! Results directories -> merged model -> tables (terminal, report.md), plots (plots/*.svg,png),
//! report.html (self-contained), exports (.hgrm, merged summary.json). Uses `results` and
//! `cache_status`, never the engine's running parts.

mod doc;
pub mod export;
pub mod load;
pub mod model;
pub mod plots;
pub mod ready;
pub mod sparse;
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
    /// time plots: each run from its own start, or one UTC axis
    pub time: model::TimeAxis,
    /// (unix seconds, label): moments drawn across the time plots on the UTC axis
    pub marks: Vec<(f64, String)>,
}

pub struct Report {
    /// what the terminal shows
    pub text: String,
    pub markdown: String,
    pub groups: Vec<Group>,
    pub plot_specs: Vec<String>,
    pub warnings: Vec<String>,
    /// the cutover question, per target (also in readiness.json)
    pub readiness: ready::Readiness,
}

/// Warnings about runs whose responses carried no recognised cache status, above 1 %
/// (`text::unknown_warning`), one per region and target.
pub fn unknown_warnings(runs: &[RunData]) -> Vec<String> {
    let mut out = Vec::new();
    for r in runs {
        for t in &r.summary.targets {
            if t.unknown_share.is_some_and(|u| u > text::UNKNOWN_WARN)
                && let Some(w) = text::unknown_warning(&r.summary, t)
            {
                out.push(format!("{}: {w}", r.summary.region));
            }
        }
    }
    out
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
    // one step for every run's series: runs drawn together share their buckets (each run's
    // own would put different counts of its points into the plot's buckets)
    let step = dirs
        .iter()
        .filter_map(|d| {
            crate::results::summary::Summary::read(&d.join(crate::results::SUMMARY)).ok()
        })
        .map(|s| load::step_of_run(&s))
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
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
                    let r = load::load_dir(d, step);
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

fn metadata(runs: &[RunData]) -> doc::Table {
    use doc::{Align::*, Span, text};
    let mut rows = Vec::new();
    for r in runs {
        let s = &r.summary;
        let targets: Vec<&str> = s.targets.iter().map(|t| t.name.as_str()).collect();
        let mut achieved = vec![text(format!("{:.1}", s.rate.achieved_rps))];
        if s.rate.fell_behind {
            achieved.extend([text(" "), Span::Strong("fell behind".into())]);
        }
        let verdict = format!(
            "{}{}",
            s.verdict,
            if s.interrupted { " (interrupted)" } else { "" }
        );
        // the generator's own delay: an overloaded runner shows here, not in the target's latency
        let lag = (s.rate.send_lag.as_ref())
            .map(|l| format!("{:.1} / {:.1} ms", l.p99, l.max))
            .unwrap_or_else(|| "-".into());
        rows.push(vec![
            vec![text(s.region.as_str())],
            vec![text(s.runner.map_or("-".into(), |r| r.to_string()))],
            vec![text(s.run_id.as_str())],
            vec![text(targets.join(", "))],
            vec![text(s.started_at.as_str())],
            vec![text(format!("{:.1} s", s.duration_s))],
            vec![text(s.rate.model.to_string())],
            vec![text(
                (s.rate.intended_rps)
                    .map(|r| format!("{r:.1}"))
                    .unwrap_or_else(|| "-".into()),
            )],
            achieved,
            vec![text(lag)],
            // `--start-at`: a runner that booted late sends its share that much later
            vec![text(
                (s.scenario.get("late_start_s").and_then(|v| v.as_f64()))
                    .map_or("-".into(), |l| format!("{l:.1} s")),
            )],
            vec![text(verdict)],
        ]);
    }
    doc::Table {
        head: [
            "region",
            "runner",
            "run",
            "target(s)",
            "started (UTC)",
            "duration",
            "model",
            "intended req/s",
            "achieved req/s",
            "send lag p99 / max",
            "late start",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        align: vec![
            Left, Left, Left, Left, Left, Right, Left, Right, Right, Right, Right, Left,
        ],
        rows,
    }
}

/// Each run's connections per target (the built-in client counts them): protocol, how many
/// were opened and reused, TLS handshakes and what they negotiated, connect and handshake
/// times. Per run, not merged: the phase times are kept as percentiles only. `None` when no
/// run opened any (reqwest does not say).
fn connections(runs: &[RunData]) -> Option<doc::Table> {
    use doc::{Align::*, text};
    let mut rows = Vec::new();
    for r in runs {
        for t in &r.summary.targets {
            let c = &t.connections;
            if c.opened == 0 {
                continue;
            }
            let join = |m: &BTreeMap<String, u64>| {
                let v: Vec<String> = m.iter().map(|(k, n)| format!("{k} ({n})")).collect();
                if v.is_empty() {
                    "-".into()
                } else {
                    v.join(", ")
                }
            };
            let ms = |s: &crate::results::summary::Stats| {
                if s.count == 0 {
                    "-".to_string()
                } else {
                    format!("{:.2} / {:.2}", s.p50, s.p99)
                }
            };
            rows.push(vec![
                vec![text(format!("{} {}", r.summary.region, r.summary.run_id))],
                vec![text(t.name.as_str())],
                vec![text(join(&c.protocols))],
                vec![text(c.opened.to_string())],
                vec![text(c.reused.to_string())],
                vec![text(format!(
                    "{} ({} resumed)",
                    c.tls_handshakes, c.tls_resumed
                ))],
                vec![text(join(&c.tls))],
                vec![text(ms(&c.dns))],
                vec![text(ms(&c.connect))],
                vec![text(ms(&c.tls_handshake))],
            ]);
        }
    }
    (!rows.is_empty()).then(|| doc::Table {
        head: [
            "run",
            "target",
            "protocol (connections)",
            "opened",
            "requests on kept-alive",
            "TLS handshakes",
            "TLS version and suite",
            "DNS p50 / p99 (ms)",
            "connect p50 / p99 (ms)",
            "TLS handshake p50 / p99 (ms)",
        ]
        .map(String::from)
        .to_vec(),
        align: vec![
            Left, Left, Left, Right, Right, Right, Left, Right, Right, Right,
        ],
        rows,
    })
}

fn thresholds(runs: &[RunData]) -> Vec<Vec<doc::Span>> {
    use doc::{Span, text};
    let mut out = Vec::new();
    for r in runs {
        for t in &r.summary.thresholds {
            out.push(vec![
                if t.passed {
                    text("PASS")
                } else {
                    Span::Strong("FAIL".into())
                },
                text(format!(" {} ", r.summary.region)),
                Span::Code(t.expr.clone()),
                text(format!(
                    " [{}] observed {}{}",
                    t.target,
                    t.observed
                        .map(|v| format!("{v:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    if t.note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", t.note)
                    }
                )),
            ]);
        }
    }
    out
}

/// The plot specs: pure data, drawn by `plots::render`.
pub fn plot_specs(
    runs: &[RunData],
    cutover: f64,
    axis: model::TimeAxis,
) -> (Vec<LineSpec>, Vec<BarSpec>) {
    let mut lines = Vec::new();
    let lat = model::latency_over_time(runs, axis);
    let (x_label, x_utc) = match axis {
        model::TimeAxis::Start => ("time since start (s)".to_string(), None),
        model::TimeAxis::Utc => {
            let t0 = model::t0(runs);
            let day = time::OffsetDateTime::from_unix_timestamp(t0.floor() as i64)
                .map(|d| d.date().to_string())
                .unwrap_or_default();
            (format!("time (UTC, from {day})"), Some(t0))
        }
    };
    // one region: p50, p90, p99 per target; several: p50 and p99 per region and target
    let pcts: &[&str] = if model::regions(runs).len() > 1 {
        &["p50", "p99"]
    } else {
        &["p50", "p90", "p99"]
    };
    lines.push(LineSpec {
        file: "latency_over_time".into(),
        title: "Latency over time (corrected, total)".into(),
        x_label: x_label.clone(),
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
        x_utc,
        vlines: Vec::new(),
    });
    let rates = model::rates_over_time(runs, axis);
    let line = model::hit_ratio_threshold(runs).unwrap_or(cutover);
    lines.push(LineSpec {
        file: "hit_ratio_over_time".into(),
        title: "Cache hit ratio over time".into(),
        x_label: x_label.clone(),
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
        x_utc,
        vlines: Vec::new(),
    });
    lines.push(LineSpec {
        file: "throughput_errors".into(),
        title: "Throughput and errors over time".into(),
        x_label: x_label.clone(),
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
        x_utc,
        vlines: Vec::new(),
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
        x_utc: None,
        vlines: Vec::new(),
    });
    let by_region = model::groups(
        runs,
        By {
            run: false,
            region: true,
            runner: false,
            target: true,
            pop: false,
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
    let table = model::table_rows(runs, o.by);
    let (head, rows) = tables::main_rows(&table);
    let (dhead, drows) = tables::detail_rows(&table);

    // comparison: a baseline, or the two targets of one run
    let mut comparison = None;
    if let Some(base) = baseline {
        let by = By {
            run: false,
            region: false,
            runner: false,
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
                run: false,
                region: false,
                runner: false,
                target: false,
                pop: false,
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

    use doc::{Block, Section, Table};
    let section = |title: &str, blocks: Vec<Block>| Section {
        title: title.to_string(),
        blocks,
    };
    let readiness = ready::readiness(runs, o.cutover);
    let mut sections = vec![
        section("Readiness", readiness_blocks(&readiness)),
        section("Runs", vec![Block::Table(metadata(runs))]),
        section(
            "Latency (ms from the intended send time, body fully read)",
            vec![Block::Table(Table::plain(&head, &rows))],
        ),
        section(
            "Corrected and service time, total and TTFB (ms)",
            vec![Block::Table(Table::plain(&dhead, &drows))],
        ),
    ];
    if let Some((h, r)) = &comparison {
        // better and worse seen at a glance in HTML
        let mut t = Table::plain(h, r);
        for row in &mut t.rows {
            if let Some(cell) = row.last_mut()
                && let [doc::Span::Text(s)] = cell.as_slice()
            {
                let verdict = if s.ends_with(" better") {
                    Some(true)
                } else if s.ends_with(" worse") {
                    Some(false)
                } else {
                    None
                };
                if let Some(v) = verdict {
                    *cell = vec![doc::Span::Verdict(v, s.clone())];
                }
            }
        }
        sections.push(section(
            "Comparison (corrected total, ratio = second / first)",
            vec![Block::Table(t)],
        ));
    }
    if let Some(t) = connections(runs) {
        sections.push(section("Connections", vec![Block::Table(t)]));
    }
    let th = thresholds(runs);
    if !th.is_empty() {
        sections.push(section("Thresholds", vec![Block::List(th)]));
    }
    if !warnings.is_empty() {
        let items = warnings
            .iter()
            .map(|w| vec![doc::text(w.as_str())])
            .collect();
        sections.push(section("Warnings", vec![Block::List(items)]));
    }

    let mut svgs: Vec<(String, String)> = Vec::new();
    let mut plot_files = Vec::new();
    if o.plots {
        let pdir = o.out.join("plots");
        std::fs::create_dir_all(&pdir).map_err(io)?;
        let (mut lines, bars) = plot_specs(runs, o.cutover, o.time);
        for l in &mut lines {
            if let Some(origin) = l.x_utc {
                l.vlines = (o.marks.iter())
                    .map(|(t, label)| (t - origin, label.clone()))
                    .collect();
            }
        }
        for s in &lines {
            svgs.push((s.title.clone(), plots::render(&pdir, s)?));
            plot_files.push(s.file.clone());
        }
        for s in &bars {
            svgs.push((s.title.clone(), plots::render(&pdir, s)?));
            plot_files.push(s.file.clone());
        }
        sections.push(section("Plots", vec![Block::Plots(plot_files.clone())]));
    }
    let report = doc::Doc {
        title: "edgeload report".into(),
        sections,
    };
    let md = report.markdown();
    // every file appears whole or not at all
    let write = crate::guard::atomic::write;
    write(&o.out.join("report.md"), md.as_bytes()).map_err(io)?;
    write(&o.out.join("report.html"), report.html(&svgs).as_bytes()).map_err(io)?;

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
            export::hgrm(&g.hists[Metric::Total].dense()).as_bytes(),
        )
        .map_err(io)?;
    }
    let merged = merged_summary(runs);
    write(
        &o.out.join("summary.json"),
        &serde_json::to_vec_pretty(&merged).unwrap_or_default(),
    )
    .map_err(io)?;

    write(
        &o.out.join("readiness.json"),
        &serde_json::to_vec_pretty(&readiness).unwrap_or_default(),
    )
    .map_err(io)?;

    let mut text = readiness.lines();
    let _ = writeln!(text);
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
        readiness,
    })
}

/// The readiness section: a row a target, verdict first, then why a target is not ready.
fn readiness_blocks(r: &ready::Readiness) -> Vec<doc::Block> {
    use doc::{Align::*, Span, text};
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let place = |p: &Option<ready::Place>| {
        p.as_ref().map_or("-".to_string(), |p| {
            format!("{} {:.1}%", p.name, p.hit_ratio * 100.0)
        })
    };
    let rows = (r.targets.iter())
        .map(|t| {
            let passed = t.thresholds.iter().filter(|v| v.passed).count();
            vec![
                vec![text(t.target.as_str())],
                vec![Span::Verdict(
                    t.ready,
                    if t.ready { "READY" } else { "NOT READY" }.into(),
                )],
                vec![text(pct(t.hit_ratio))],
                vec![text(pct(t.hit_ratio_last))],
                vec![text(pct(Some(t.line)))],
                vec![text(ms(t.hit_p99_ms))],
                vec![text(ms(t.miss_p99_ms))],
                vec![text(
                    t.error_rate
                        .map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
                )],
                vec![if t.thresholds.is_empty() {
                    text("none given")
                } else {
                    Span::Verdict(
                        passed == t.thresholds.len(),
                        format!("{passed}/{} passed", t.thresholds.len()),
                    )
                }],
                vec![text(place(&t.worst_region))],
                vec![text(place(&t.worst_pop))],
            ]
        })
        .collect();
    let window = r.targets.iter().map(|t| t.window_s).fold(0.0, f64::max);
    let table = doc::Table {
        head: [
            "target",
            "verdict",
            "hit ratio",
            &format!("last {window:.0} s"),
            "line",
            "hit p99 (ms)",
            "miss p99 (ms)",
            "errors",
            "thresholds",
            "worst region",
            "worst POP",
        ]
        .map(String::from)
        .to_vec(),
        align: vec![
            Left, Left, Right, Right, Right, Right, Right, Right, Left, Left, Left,
        ],
        rows,
    };
    let mut out = vec![doc::Block::Table(table)];
    let mut reasons: Vec<Vec<Span>> = (r.targets.iter())
        .flat_map(|t| {
            t.reasons
                .iter()
                .map(move |why| vec![Span::Strong(t.target.clone()), text(format!(": {why}"))])
        })
        .collect();
    reasons.extend(r.reasons.iter().map(|why| {
        vec![
            Span::Verdict(false, "NOT READY".into()),
            text(format!(" {why}")),
        ]
    }));
    if !reasons.is_empty() {
        out.push(doc::Block::List(reasons));
    }
    out
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
        pop_totals: (r.pop_totals.iter())
            .filter(|(k, _)| k.0 == target)
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect(),
        over_time: r
            .over_time
            .iter()
            .filter(|p| &*p.target == target)
            .cloned()
            .collect(),
        timeline: r
            .timeline
            .iter()
            .filter(|t| &*t.target == target)
            .cloned()
            .collect(),
        start: r.start,
        step: r.step,
    }
}

/// The merged result in summary.json's shape: per target (all regions), per class.
pub(crate) fn merged_summary(runs: &[RunData]) -> crate::results::summary::Summary {
    use crate::measure::Series;

    use crate::results::summary::{ClassSummary, Summary, TargetSummary};
    let groups = model::groups(
        runs,
        By {
            run: false,
            region: false,
            runner: false,
            target: true,
            pop: false,
            class: true,
        },
    );
    let totals = model::groups(
        runs,
        By {
            run: false,
            region: false,
            runner: false,
            target: true,
            pop: false,
            class: false,
        },
    );
    let mut targets: BTreeMap<String, TargetSummary> = BTreeMap::new();
    let series = |g: &Group| Series {
        h: crate::measure::PerMetric(std::array::from_fn(|i| g.hists.0[i].dense())),
        bytes: g.bytes,
        n: g.requests,
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
        let mut retries = 0;
        // counts add; the phase times stay per run (report.md's Connections table)
        let mut conns = crate::results::summary::Connections::default();
        for t in runs
            .iter()
            .flat_map(|r| r.summary.targets.iter())
            .filter(|t| t.name == name)
        {
            retries += t.retries;
            let c = &t.connections;
            conns.opened += c.opened;
            conns.reused += c.reused;
            conns.tls_handshakes += c.tls_handshakes;
            conns.tls_resumed += c.tls_resumed;
            for (m, from) in [
                (&mut conns.by_address, &c.by_address),
                (&mut conns.tls, &c.tls),
                (&mut conns.protocols, &c.protocols),
            ] {
                for (k, v) in from {
                    *m.entry(k.clone()).or_insert(0) += v;
                }
            }
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
                // from the classes' bytes, below
                byte_hit_ratio: None,
                unknown_share: crate::results::summary::unknown_share(&g.classes),
                errors: g.errors.unwrap_or(0),
                error_rate: g.error_rate().unwrap_or(0.0),
                retries,
                connections: conns,
                errors_by_kind,
                status_codes,
                pops: BTreeMap::new(),
                pop_summaries: BTreeMap::new(),
                responses: None,
                all: ClassSummary::of("all", &series(g)),
                classes: Vec::new(),
            },
        );
    }
    let mut responded: BTreeMap<String, Series> = BTreeMap::new();
    for g in &groups {
        if let (Some(t), Some(c)) = (&g.key.target, &g.key.class)
            && let Some(ts) = targets.get_mut(t)
        {
            ts.classes.push(ClassSummary::of(c, &series(g)));
            if c != "error" {
                responded.entry(t.clone()).or_default().add(&series(g));
            }
        }
    }
    for (t, s) in responded {
        if let Some(ts) = targets.get_mut(&t) {
            ts.responses = Some(ClassSummary::of("responses", &s));
        }
    }
    for ts in targets.values_mut() {
        let mut bytes = [0u64; crate::cache_status::CacheClass::COUNT];
        for c in &ts.classes {
            if let Some(k) = crate::cache_status::CacheClass::parse(&c.class) {
                bytes[k.index()] = bytes[k.index()].saturating_add(c.bytes);
            }
        }
        ts.byte_hit_ratio = crate::cache_status::hit_ratio(&bytes);
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
        observe: None,
        // the runs' model when they share one (the first run's otherwise)
        rate: crate::results::summary::RateSummary {
            model: runs
                .first()
                .map(|r| r.summary.rate.model)
                .unwrap_or_default(),
            ..Default::default()
        },
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
        tls_errors: Vec::new(),
        unknown_headers: {
            let mut h: Vec<String> = (runs.iter())
                .flat_map(|r| r.summary.unknown_headers.iter().cloned())
                .collect();
            h.sort();
            h.dedup();
            h
        },
        mirror: None,
        runner: None,
    }
}
