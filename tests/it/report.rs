//! `report`: exact merging, the golden report.md, the plot data, and clear errors for
//! incomplete or foreign results directories.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use edgeload::cache_status::CacheClass;
use edgeload::measure::{IntervalData, Metric, Sink, new_hist};
use edgeload::report::model::{self, By};
use edgeload::report::{self, ReportOptions};
use edgeload::results::ResultsWriter;
use edgeload::results::hlog;
use edgeload::results::summary::{RunMeta, Stats, Summary};

use crate::common::*;

fn opts(out: &Path, plots: bool) -> ReportOptions {
    ReportOptions {
        out: out.to_path_buf(),
        by: "region,target,class".parse().unwrap(),
        plots,
        cutover: 0.8,
        time: Default::default(),
        marks: Vec::new(),
    }
}

#[test]
fn merged_percentiles_equal_one_histogram_of_all_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for (region, delay) in [("us-east-1", 5u64), ("eu-west-1", 30)] {
        let edge = delayed_edge(Duration::from_millis(delay));
        let mut cfg = engine(&edge.base_url(), paths(20), closed(4));
        cfg.requests = Some(120);
        let d = dir.path().join("run").join(region);
        let plan = edgeload::cmd::execute::Plan {
            engine: cfg,
            out: d.clone(),
            run_id: "r1".into(),
            region: region.into(),
            thresholds: Vec::new(),
            scenario: serde_json::json!({}),
            progress: false,
            metrics: None,
        };
        edgeload::cmd::execute::execute(plan, &edgeload::engine::Control::default()).unwrap();
        dirs.push(d);
    }
    let (runs, warnings) = report::load_all(&[dir.path().join("run")]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(runs.len(), 2);
    // one histogram holding both regions' samples, straight from their logs
    let mut all = new_hist();
    for d in &dirs {
        for (tag, h) in hlog::read_totals(&std::fs::read(d.join("latency.hlog")).unwrap()).unwrap()
        {
            if tag.ends_with("metric=total;basis=corrected") {
                all.add(&h).unwrap();
            }
        }
    }
    let by = By {
        target: true,
        ..By::NONE
    };
    let g = model::groups(&runs, by);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].requests, 240);
    assert_eq!(g[0].stats(Metric::Total), Stats::of(&all));
    // and the regions stay apart when asked
    let by_region = model::groups(&runs, "region".parse().unwrap());
    let p50: Vec<f64> = by_region
        .iter()
        .map(|g| g.stats(edgeload::measure::Metric::Total).p50)
        .collect();
    assert!(p50[0] >= 30.0 && p50[1] >= 5.0 && p50[1] < 30.0, "{p50:?}"); // eu-west-1 sorts first
    // the report's merged summary.json carries the same numbers
    let out = dir.path().join("report");
    report::build(&runs, None, warnings, &opts(&out, false)).unwrap();
    let merged = Summary::read(&out.join("summary.json")).unwrap();
    assert_eq!(merged.targets[0].all.corrected.total, Stats::of(&all));
    assert_eq!(merged.region, "eu-west-1+us-east-1");
}

/// A results directory built from fixed numbers: the golden report's input.
fn synthetic(dir: &Path, region: &str, scale: u64) {
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let names = vec!["fastly".to_string(), "akamai".to_string()];
    let mut w = ResultsWriter::create(
        dir,
        "golden",
        region,
        names.clone(),
        Duration::from_secs(1),
        false,
    )
    .unwrap();
    w.begin(start).unwrap();
    let mut totals = IntervalData::new(0, 2);
    for idx in 0..4u64 {
        let mut d = IntervalData::new(idx, 2);
        for t in 0..2usize {
            for (class, base) in [(CacheClass::Hit, 1_000u64), (CacheClass::Miss, 100_000)] {
                let n = if class == CacheClass::Hit {
                    80 + idx * 5
                } else {
                    20 - idx * 5
                };
                let s = d.series_mut(t, class);
                for i in 0..n {
                    let v = (base + i * 37 * scale + t as u64 * 500) * (1 + idx / 3);
                    for m in Metric::ALL {
                        let v = if matches!(m, Metric::Ttfb | Metric::TtfbService) {
                            v / 2
                        } else {
                            v
                        };
                        s.h[m].record(v.max(1)).unwrap();
                    }
                }
                s.bytes += n * 40_000;
                s.n += n;
                d.targets[t].requests += n;
                d.targets[t].classes[class.index()] += n;
            }
        }
        totals.add(&d);
        w.interval(&d, &totals).unwrap();
    }
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
    let meta = RunMeta {
        run_id: "golden",
        region,
        scenario: serde_json::json!({}),
        started: start,
        ended: start + Duration::from_secs(4),
        interval: Duration::from_secs(1),
        interrupted: false,
    };
    let targets = [
        ("fastly".into(), "https://f.example".into()),
        ("akamai".into(), "https://a.example".into()),
    ];
    let mut s = Summary::new(meta, Default::default(), &totals, &targets);
    s.tool.version = "test".into();
    assert_eq!(
        (s.started_at.as_str(), s.ended_at.as_str(), s.duration_s),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:04Z", 4.0)
    );
    w.finish(&s).unwrap();
}

#[test]
fn golden_report_md() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(&dir.path().join("us-east-1"), "us-east-1", 1);
    synthetic(&dir.path().join("ap-southeast-1"), "ap-southeast-1", 3);
    let (runs, w) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let out = dir.path().join("report");
    let r = report::build(&runs, None, w, &opts(&out, false)).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &r.markdown).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .expect("tests/golden/report.md (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        r.markdown, want,
        "report.md differs from tests/golden/report.md"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        want
    );
    // two targets in one run: the comparison table is there
    assert!(want.contains("## Comparison"));
    // the default grouping splits classes; each region and target then has a row with its
    // classes merged, with the hit ratio and error share, and a TOTAL row closes the table:
    // 350 hits and 50 misses per region and target (see `synthetic`)
    let row = |label: &str| -> Vec<String> {
        let line = (r.text.lines())
            .find(|l| l.starts_with(&format!("{label} ")))
            .unwrap_or_else(|| panic!("no row {label:?} in\n{}", r.text));
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    for label in ["us-east-1 / fastly / all", "ap-southeast-1 / akamai / all"] {
        let r = row(label);
        assert_eq!(
            (r[1].as_str(), &r[13][..], &r[14][..]),
            ("400", "0.00%", "87.50%"),
            "{r:?}"
        );
    }
    let total = row("TOTAL");
    assert_eq!(
        (total[1].as_str(), &total[13][..], &total[14][..]),
        ("1600", "0.00%", "87.50%"),
        "{total:?}"
    );
    assert_eq!(row("us-east-1 / fastly / hit")[14], "-");
    // the .hgrm export per group
    let hgrm = std::fs::read_to_string(out.join("hgrm/us-east-1___fastly___hit.hgrm")).unwrap();
    assert!(
        hgrm.contains("Percentile") && hgrm.contains("#[Max"),
        "{hgrm}"
    );
}

#[test]
fn plot_series_follow_the_data() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(&dir.path().join("us-east-1"), "us-east-1", 1);
    synthetic(&dir.path().join("eu-west-1"), "eu-west-1", 3);
    let (runs, _) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let (lines, bars) = report::plot_specs(&runs, 0.8, Default::default());
    let get = |f: &str| lines.iter().find(|l| l.file == f).unwrap();
    // latency over time: per region and target (percentiles do not add), p50 and p99, 4 intervals;
    // the slowdown at t=3 is visible
    let lat = get("latency_over_time");
    assert_eq!(lat.lines.len(), 8);
    for l in &lat.lines {
        assert_eq!(
            l.points.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0, 3.0],
            "{}",
            l.name
        );
    }
    let p99 = &lat
        .lines
        .iter()
        .find(|l| l.name == "us-east-1 fastly p99")
        .unwrap()
        .points;
    assert!(p99[3].1 > p99[2].1 * 1.5, "{p99:?}");
    // hit ratio over time: both regions summed: hits 80+5i of 100 per region and target
    let hr = get("hit_ratio_over_time");
    assert_eq!(hr.hline.as_ref().unwrap().0, 0.8);
    let fastly = &hr.lines.iter().find(|l| l.name == "fastly").unwrap().points;
    assert_eq!(
        fastly.iter().map(|p| p.1).collect::<Vec<_>>(),
        [0.80, 0.85, 0.90, 0.95]
    );
    // throughput: 2 regions x 100 requests per second
    let tp = get("throughput_errors");
    assert!(
        tp.lines
            .iter()
            .find(|l| l.name == "akamai req/s")
            .unwrap()
            .points
            .iter()
            .all(|p| p.1 == 200.0)
    );
    // distribution: x = 1/(1-q) grows, latency never falls
    let dist = get("latency_distribution");
    for l in &dist.lines {
        assert!(
            l.points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{}",
            l.name
        );
    }
    // regions: bars equal the groups' percentiles
    let b = &bars[0];
    assert_eq!(b.categories, ["eu-west-1", "us-east-1"]);
    let groups = model::groups(&runs, "region,target".parse().unwrap());
    let g = groups
        .iter()
        .find(|g| {
            g.key.region.as_deref() == Some("eu-west-1")
                && g.key.target.as_deref() == Some("fastly")
        })
        .unwrap();
    let s = b.series.iter().find(|s| s.0 == "fastly p99").unwrap();
    assert_eq!(
        s.1[0],
        g.hists[edgeload::measure::Metric::Total].value_at_quantile(0.99) as f64 / 1000.0
    );
    // and they draw (SVG always; PNG too where a font is installed)
    let out = dir.path().join("report");
    let r = report::build(&runs, None, Vec::new(), &opts(&out, true)).unwrap();
    assert_eq!(r.plot_specs.len(), 5);
    for f in &r.plot_specs {
        assert!(out.join("plots").join(format!("{f}.svg")).exists());
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(!html.contains("src=\"http"), "self-contained");
}

#[test]
fn incomplete_and_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synthetic(&d.join("good"), "us-east-1", 1);
    synthetic(&d.join("nomanifest"), "eu-west-1", 1);
    std::fs::remove_file(d.join("nomanifest/MANIFEST.json")).unwrap();
    let (runs, warnings) = report::load_all(&[d.to_path_buf()]).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("nomanifest") && warnings[0].contains("MANIFEST.json"),
        "{warnings:?}"
    );

    // truncated hlog: named
    synthetic(&d.join("trunc"), "x", 1);
    let p = d.join("trunc/latency.hlog");
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 2).unwrap();
    let e = report::load_all(&[d.join("trunc")])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("latency.hlog") && e.contains("truncated"), "{e}");

    // a newer format: named, with the version
    let set_version = |dir: &Path, from: u32, to: u32| {
        for f in ["summary.json", "MANIFEST.json"] {
            let p = dir.join(f);
            let text = std::fs::read_to_string(&p).unwrap();
            let (a, b) = (
                format!("\"format_version\": {from}"),
                format!("\"format_version\": {to}"),
            );
            assert!(text.contains(&a), "{f}: {text}");
            std::fs::write(&p, text.replace(&a, &b)).unwrap();
        }
    };
    synthetic(&d.join("newer"), "x", 1);
    set_version(&d.join("newer"), 2, 3);
    let e = report::load_all(&[d.join("newer")])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("format_version 3"), "{e}");
    // the previous version (1: no pops.hlog, no pop_summaries) is still read
    synthetic(&d.join("older"), "x", 1);
    set_version(&d.join("older"), 2, 1);
    let (runs, _) = report::load_all(&[d.join("older")]).unwrap();
    assert_eq!(runs[0].summary.format_version, 1);
    assert_eq!(runs[0].summary.targets[0].requests, 400);

    // the binary: no complete directory -> exit 2 with the reason
    let o = std::process::Command::new(bin())
        .args(["report", "nomanifest", "-o", "r"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("warning") && e.contains("no complete results"),
        "{e}"
    );
}

/// A results directory of `secs` 1-s intervals, 10-16 hits each; the requests per second.
fn long_run(d: &Path, region: &str, secs: u64) -> Vec<u64> {
    long_run_at(d, region, secs, 0)
}

/// `long_run`, starting `later` seconds after the synthetic runs.
fn long_run_at(d: &Path, region: &str, secs: u64, later: u64) -> Vec<u64> {
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600 + later);
    let names = vec!["cdn".to_string()];
    let mut w =
        ResultsWriter::create(d, "long", region, names, Duration::from_secs(1), false).unwrap();
    w.begin(start).unwrap();
    let mut totals = IntervalData::new(0, 1);
    let mut per_sec = Vec::new();
    for idx in 0..secs {
        let mut d = IntervalData::new(idx, 1);
        let n = 10 + idx % 7;
        let s = d.series_mut(0, CacheClass::Hit);
        for i in 0..n {
            for m in Metric::ALL {
                s.h[m].record(1_000 + i * 100 + idx).unwrap();
            }
        }
        s.n += n;
        d.targets[0].requests += n;
        d.targets[0].classes[CacheClass::Hit.index()] += n;
        per_sec.push(n);
        totals.add(&d);
        w.interval(&d, &totals).unwrap();
    }
    let meta = RunMeta {
        run_id: "long",
        region,
        scenario: serde_json::json!({}),
        started: start,
        ended: start + Duration::from_secs(secs),
        interval: Duration::from_secs(1),
        interrupted: false,
    };
    let s = Summary::new(
        meta,
        Default::default(),
        &totals,
        &[("cdn".into(), "https://c.example".into())],
    );
    w.finish(&s).unwrap();
    per_sec
}

/// A run longer than a plot is wide keeps one point per step of several intervals (memory grows
/// with the plot, not with the run's length), and the steps add up exactly: every request is
/// in the throughput line, every sample in the merged histogram.
#[test]
fn a_long_run_is_kept_in_steps_and_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let secs = 3000u64;
    let per_sec = long_run(&dir.path().join("us-east-1"), "us-east-1", secs);
    // a shorter region (1500 s: steps of 2 s alone) is kept at the longer one's step, so that
    // the plot's buckets hold the same seconds of both
    let short = long_run(&dir.path().join("eu-west-1"), "eu-west-1", 1500);
    let (runs, _) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(runs.iter().map(|r| r.step).collect::<Vec<_>>(), [3.0, 3.0]);
    let r = runs.iter().find(|r| r.region() == "us-east-1").unwrap();
    // 3000 intervals, at most 1200 points: steps of 3 s
    assert_eq!(r.step, 3.0);
    assert_eq!(r.over_time.len(), 1000);
    assert_eq!(r.timeline.len(), 1000);
    let total: u64 = per_sec.iter().sum();
    assert_eq!(r.timeline.iter().map(|t| t.requests).sum::<u64>(), total);
    let (lines, _) = report::plot_specs(&runs, 0.8, Default::default());
    let both = |k: usize| -> u64 {
        let s = |v: &[u64]| {
            v.get(k * 3..(k * 3 + 3).min(v.len()))
                .map_or(0, |x| x.iter().sum())
        };
        s(&per_sec) + s(&short)
    };
    let tp = lines
        .iter()
        .find(|l| l.file == "throughput_errors")
        .unwrap();
    let rps = &tp
        .lines
        .iter()
        .find(|l| l.name == "cdn req/s")
        .unwrap()
        .points;
    assert_eq!(rps.len(), 1000);
    for (k, p) in rps.iter().enumerate() {
        assert_eq!(
            (p.0, p.1),
            (k as f64 * 3.0, both(k) as f64 / 3.0),
            "step {k}"
        );
    }
    // the merged histogram holds every sample: its percentiles are one histogram's of them all
    let g = model::groups(&runs, By::NONE).pop().unwrap();
    let mut all = new_hist();
    for v in [&per_sec, &short] {
        for (idx, n) in v.iter().enumerate() {
            for i in 0..*n {
                all.record(1_000 + i * 100 + idx as u64).unwrap();
            }
        }
    }
    let st = g.stats(Metric::Total);
    assert_eq!(st.count, total + short.iter().sum::<u64>());
    assert_eq!(st, Stats::of(&all));
}

/// The readiness block judges each target against the line on its last window (the last
/// quarter of a 4-s run: its last second, 95 % hits) as well as overall (87.5 %), re-judges the
/// runs' thresholds on the merged results, names the worst region, and says why not.
#[test]
fn readiness_answers_the_cutover_question_per_target() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(&dir.path().join("us-east-1"), "us-east-1", 1);
    synthetic(&dir.path().join("eu-west-1"), "eu-west-1", 3);
    let (mut runs, _) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let r = report::ready::readiness(&runs, 0.9);
    assert!(r.ready, "{r:?}");
    let fastly = r.targets.iter().find(|t| t.target == "fastly").unwrap();
    assert_eq!(fastly.hit_ratio, Some(0.875));
    assert_eq!(fastly.hit_ratio_last, Some(0.95));
    assert_eq!(fastly.window_s, 1.0);
    assert_eq!(fastly.requests, 800);
    // both regions had the same ratio: neither is named the worst
    assert_eq!(fastly.worst_region, None);
    // the p99s are the merged groups' own
    let g = model::groups(
        &runs,
        By {
            target: true,
            class: true,
            ..By::NONE
        },
    );
    let miss = g
        .iter()
        .find(|g| {
            g.key.target.as_deref() == Some("fastly") && g.key.class.as_deref() == Some("miss")
        })
        .unwrap();
    assert_eq!(fastly.miss_p99_ms, Some(miss.stats(Metric::Total).p99));
    // a line past the last window's ratio: not ready, and why
    let r = report::ready::readiness(&runs, 0.96);
    assert!(!r.ready);
    assert!(
        r.targets[0].reasons[0].contains("95.0% over the last 1 s below the line 96.0%"),
        "{:?}",
        r.targets[0].reasons
    );
    // a threshold of one run is judged again on the merged results: only its target fails
    runs[0]
        .summary
        .thresholds
        .push(edgeload::results::summary::ThresholdResult {
            expr: "fastly:miss.p99<50ms".into(),
            target: "fastly".into(),
            observed: None,
            passed: true,
            note: String::new(),
        });
    let r = report::ready::readiness(&runs, 0.9);
    let by = |n: &str| r.targets.iter().find(|t| t.target == n).unwrap();
    assert!(!by("fastly").ready && by("akamai").ready, "{r:?}");
    assert_eq!(by("fastly").thresholds.len(), 1);
    assert!(!by("fastly").thresholds[0].passed);
    assert!(
        by("fastly").reasons[0].starts_with("threshold fastly:miss.p99<50ms failed"),
        "{:?}",
        by("fastly").reasons
    );
    // a hit_ratio floor on one target is that target's line, judged on its last window; a
    // threshold on a target the runs do not have cannot be judged: not ready, and said
    for (expr, target) in [
        ("akamai:hit_ratio>=0.96", "akamai"),
        ("fastyl:p99<1s", "fastyl"),
    ] {
        runs[1]
            .summary
            .thresholds
            .push(edgeload::results::summary::ThresholdResult {
                expr: expr.into(),
                target: target.into(),
                observed: None,
                passed: false,
                note: String::new(),
            });
    }
    let r = report::ready::readiness(&runs, 0.9);
    let by = |n: &str| r.targets.iter().find(|t| t.target == n).unwrap();
    assert_eq!((by("akamai").line, by("fastly").line), (0.96, 0.9));
    assert!(!by("akamai").ready, "{r:?}");
    assert!(
        by("akamai").thresholds.is_empty(),
        "the floor is the line, not a threshold"
    );
    assert!(!r.ready);
    assert_eq!(
        r.reasons,
        ["threshold fastyl:p99<1s names no target of the runs (fastyl)"]
    );
    // the report opens with it; the terminal's first line is a verdict
    let out = dir.path().join("rep");
    let rep = report::build(&runs, None, Vec::new(), &opts(&out, false)).unwrap();
    assert!(
        rep.text.starts_with("READY      akamai:") || rep.text.starts_with("NOT READY  "),
        "{}",
        rep.text
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.starts_with("# edgeload report\n\n## Readiness\n"),
        "{md}"
    );
    assert!(md.contains("| fastly | **NOT READY** |"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<span class=\"fail\">NOT READY</span>"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("readiness.json")).unwrap()).unwrap();
    assert_eq!(json["ready"], false);
}

/// Two runs (a cold one, then a warm one an hour later) side by side: `--by run` groups them
/// apart, and the time plots draw each run's lines from its own start, named by run.
#[test]
fn runs_side_by_side_by_run_and_from_their_own_starts() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(&dir.path().join("cold"), "us-east-1", 1);
    let warm = long_run_at(&dir.path().join("warm"), "us-east-1", 20, 3600);
    let (runs, _) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let by: By = "run".parse().unwrap();
    let groups = model::groups(&runs, by);
    let counts: Vec<(String, u64)> = groups.iter().map(|g| (g.key.label(), g.requests)).collect();
    assert_eq!(
        counts,
        [
            ("golden".to_string(), 800),
            ("long".to_string(), warm.iter().sum())
        ]
    );
    assert!(
        "runs"
            .parse::<By>()
            .unwrap_err()
            .contains("(run, region, runner, target, pop, class)")
    );
    let (lines, _) = report::plot_specs(&runs, 0.8, Default::default());
    let get = |f: &str| lines.iter().find(|l| l.file == f).unwrap();
    let lat = get("latency_over_time");
    let first_x = |name: &str| {
        lat.lines
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "{name}: {:?}",
                    lat.lines.iter().map(|l| &l.name).collect::<Vec<_>>()
                )
            })
            .points[0]
            .0
    };
    // the warm run started an hour later, and is drawn from its own start
    assert_eq!(first_x("long cdn p50"), 0.0);
    assert_eq!(first_x("golden fastly p50"), 0.0);
    let tp = get("throughput_errors");
    let warm_rps = &tp
        .lines
        .iter()
        .find(|l| l.name == "long cdn req/s")
        .unwrap()
        .points;
    assert_eq!(warm_rps.len(), 20);
    assert_eq!(warm_rps[0], (0.0, warm[0] as f64));
    // --time utc: one clock axis, each run where it started (the warm one an hour later)
    let (lines, _) = report::plot_specs(&runs, 0.8, "utc".parse().unwrap());
    let lat = lines
        .iter()
        .find(|l| l.file == "latency_over_time")
        .unwrap();
    let first = |name: &str| lat.lines.iter().find(|l| l.name == name).unwrap().points[0].0;
    assert_eq!(first("golden fastly p50"), 0.0);
    assert_eq!(first("long cdn p50"), 3600.0);
    assert_eq!(lat.x_utc, Some(model::t0(&runs)));
    assert!(
        lat.x_label.starts_with("time (UTC, from 20"),
        "{}",
        lat.x_label
    );
    assert!("local".parse::<model::TimeAxis>().is_err());
}

/// Debian's Chromium, headless, with nothing that would reach the network.
fn chromium(page: &Path, extra: &[&str], profile: &Path) -> std::process::Output {
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)")
}

#[test]
fn report_html_renders_every_plot_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(&dir.path().join("us-east-1"), "us-east-1", 1);
    synthetic(&dir.path().join("ap-southeast-1"), "ap-southeast-1", 3);
    let (runs, w) = report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let out = dir.path().join("report");
    report::build(&runs, None, w, &opts(&out, true)).unwrap();
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let plots = html.matches("<div class=\"plot\"").count();
    assert!(plots >= 3, "{plots} plots");
    // one file, nothing fetched: no external reference
    for bad in ["src=\"http", "href=\"http", "url(http", "<script src"] {
        assert!(!html.contains(bad), "{bad}");
    }
    let o = chromium(&page, &["--dump-dom"], &dir.path().join("profile"));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    let dom = String::from_utf8_lossy(&o.stdout);
    // the browser parsed every plot as SVG, each with its hover points
    assert_eq!(dom.matches("<svg").count(), plots, "{log}");
    let points = dom.matches("<circle class=\"pt\"").count();
    assert!(points > 10, "{points} hover points");
    // each point's tooltip is the title inside its circle
    assert!(
        dom.contains("</title></circle>") && dom.contains(" ms at "),
        "hover text"
    );
    // the top links to every section
    let sections = dom.matches("<h2 id=\"s").count();
    assert!(sections >= 5, "{sections} sections");
    for i in 0..sections {
        assert!(
            dom.contains(&format!("<a href=\"#s{i}\">")),
            "no link to section {i}"
        );
    }
    // nothing on the page's console (an error, a blocked fetch)
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "{console:?}");
    // and it draws them: the page's screenshot holds much more than the same report's
    // without plots (a plot that failed to render is white)
    let bare = dir.path().join("bare");
    report::build(&runs, None, Vec::new(), &opts(&bare, false)).unwrap();
    let shot = |page: &Path, name: &str| {
        let png = dir.path().join(format!("{name}.png"));
        let o = chromium(
            page,
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1200,4000",
            ],
            &dir.path().join(format!("profile-{name}")),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0)
    };
    let (with, without) = (
        shot(&page, "plots"),
        shot(&bare.join("report.html"), "bare"),
    );
    // (here: 386 KB against 268 KB; the plots in the 4000-pixel window add ~120 KB)
    assert!(
        with > without + 80_000,
        "screenshot {with} bytes with plots, {without} without"
    );
}
