//! Several runners for one plan (`run --runner K/N`) and the bundle a regional runner fetches
//! (`run --check --bundle DIR`): N runners send exactly the plan between them (ground truth:
//! the edge's per-path counts and the schedule's times), `report` merges them and shows each
//! one's send lag, and a bundle runs the same plan from its own folder.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use edgeload::engine::schedule::{Schedule, Stage};
use edgeload::engine::{Model, Share};
use edgeload::results::summary::Summary;
use edgeload::urls::Order;

use crate::common::*;

/// A ramp from 0 to 600 req/s over 1 s (300 requests): request j is due at sqrt(j / 300) s, so
/// a runner that took its own request numbers for the plan's would send all of its share in
/// the first 0.58 s.
fn ramp() -> Model {
    Model::Open {
        schedule: Schedule::new(&[Stage {
            from: 0.0,
            to: 600.0,
            duration: Duration::from_secs(1),
        }]),
        max_in_flight: 64,
    }
}

#[test]
fn runners_send_exactly_the_plan_between_them() {
    let urls = paths(40);
    let cfg = |base: &str, share: Share| {
        let mut c = engine(base, urls.clone(), ramp());
        c.order = Order::Shuffled;
        c.seed = 7;
        c.interval = Duration::from_millis(100);
        c.share = share;
        c
    };
    let dir = tempfile::tempdir().unwrap();
    let whole = start(fast_edge());
    let one = run_in(
        &dir.path().join("whole"),
        cfg(&whole.base_url(), Share::ALL),
    );
    assert_eq!(one.summary.rate.sent, 300);
    assert_eq!(one.summary.runner, None);

    let split = start(fast_edge());
    let base = split.base_url();
    let runs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3u64)
            .map(|k| {
                let (d, c) = (
                    dir.path().join(format!("r{k}")),
                    cfg(&base, Share { index: k, count: 3 }),
                );
                s.spawn(move || run_in(&d, c))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // the same URLs, as many times each: the union is the plan's URL sequence
    let (a, b) = (whole.stats_with_paths(), split.stats_with_paths());
    assert_eq!((a.requests, b.requests), (300, 300));
    assert_eq!(a.paths, b.paths);
    for (k, f) in runs.iter().enumerate() {
        let s = &f.summary;
        assert_eq!(
            s.runner.map(|r| (r.index, r.count)),
            Some((k as u64 + 1, 3))
        );
        assert_eq!((s.rate.sent, s.rate.planned_requests), (100, Some(100)));
        let rps = s.rate.intended_rps.unwrap();
        assert!((rps - 100.0).abs() < 1e-6, "{rps}");
        // at the plan's times: three quarters of the ramp's requests are due after 0.5 s
        let tl = std::fs::read(f.dir.join("timeline.csv")).unwrap();
        let rows = edgeload::results::timeline::read(&tl).unwrap();
        let late: u64 = rows
            .iter()
            .filter(|r| r.t_s >= 0.5 - 1e-9)
            .map(|r| r.requests)
            .sum();
        assert!(
            (70..=80).contains(&late),
            "runner {k}: {late} of 100 after 0.5 s"
        );
    }
}

fn write_urls(d: &Path, n: usize) {
    let text: String = (0..n).map(|i| format!("/img/{i}.jpg\n")).collect();
    std::fs::write(d.join("u.txt"), text).unwrap();
}

#[test]
fn a_regions_runners_merge_in_the_report_with_their_send_lag() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_urls(d, 30);
    let t = format!("e={}", edge.base_url());
    // refused before anything is sent
    for bad in ["0/2", "3/2", "1/0", "two", "1/2/3", "1/100000"] {
        let o = run(&["run", "u.txt", "-t", &t, "-n", "4", "--runner", bad], d);
        assert_usage_error(&o, &["--runner", "K/N"]);
    }
    let o = run(
        &[
            "run", "u.txt", "-t", &t, "-n", "4", "-c", "1", "--runner", "2/2",
        ],
        d,
    );
    assert_usage_error(&o, &["--concurrency 1 over 2 runners"]);
    assert_eq!(edge.stats().requests, 0);

    for k in ["1/2", "2/2"] {
        let out = format!("runs/eu-west-1/r{}", &k[..1]);
        let o = run(
            &[
                "run",
                "u.txt",
                "-t",
                &t,
                "--rate",
                "100",
                "-d",
                "1s",
                "--run-id",
                "R1",
                "--region",
                "eu-west-1",
                "--runner",
                k,
                "-o",
                &out,
                "-q",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let served = edge.stats().requests;
    assert_eq!(served, 100);
    let o = run(&["report", "runs", "-o", "rep", "--by", "runner"], d);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let merged = Summary::read(&d.join("rep/summary.json")).unwrap();
    let requests: u64 = merged.targets.iter().map(|t| t.requests).sum();
    assert_eq!(requests, served, "the region's runners merge exactly");
    let md = std::fs::read_to_string(d.join("rep/report.md")).unwrap();
    assert!(md.contains("send lag p99 / max"), "{md}");
    // one row per runner in the runs table, and a group per runner
    for k in [
        "| eu-west-1 | 1/2 |",
        "| eu-west-1 | 2/2 |",
        "runner 1/2",
        "runner 2/2",
    ] {
        assert!(md.contains(k), "{k:?} not in:\n{md}");
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn a_bundle_holds_what_the_scenario_names_and_runs_the_same_plan() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("lists")).unwrap();
    std::fs::create_dir_all(d.join("sc")).unwrap();
    write_urls(&d.join("lists"), 25);
    std::fs::write(
        d.join("sc/s.toml"),
        format!(
            "urls = \"../lists/u.txt\"\norder = \"shuffled\"\n[targets]\nedge = \"{}\"\n\
             [load]\nrate = 40\nduration = \"2s\"\n",
            edge.base_url()
        ),
    )
    .unwrap();
    let o = run(
        &["run", "--scenario", "sc/s.toml", "--check", "--bundle", "b"],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["duration_s"].as_f64(), Some(2.0));
    let b = d.join("b");
    let mut names: Vec<String> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["SHA256SUMS", "plan.json", "scenario.toml", "urls.csv"]
    );
    // the sums are sha256sum's format, and true
    let sums = std::fs::read_to_string(b.join("SHA256SUMS")).unwrap();
    let listed: HashMap<&str, &str> = sums
        .lines()
        .map(|l| {
            let (h, n) = l.split_once("  ").unwrap();
            (n, h)
        })
        .collect();
    assert_eq!(listed.len(), 3);
    for (n, h) in &listed {
        assert_eq!(*h, sha256_hex(&std::fs::read(b.join(n)).unwrap()), "{n}");
    }
    assert_eq!(
        std::fs::read(b.join("urls.csv")).unwrap(),
        std::fs::read(d.join("lists/u.txt")).unwrap()
    );
    // the runner's command line, from the bundle's own folder, plans the same
    let o = run(
        &["run", "--scenario", "scenario.toml", "urls.csv", "--check"],
        &b,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["requests_per_target", "urls", "duration_s"] {
        assert_eq!(again[k], plan[k], "{k}");
    }
    assert_eq!(again["plan"]["order"], "shuffled");

    // flags would not travel: refused
    let o = run(
        &[
            "run",
            "--scenario",
            "sc/s.toml",
            "--check",
            "--bundle",
            "b2",
            "--rate",
            "5",
        ],
        d,
    );
    assert_usage_error(&o, &["--bundle carries the scenario"]);
    assert!(!d.join("b2").exists());

    // a trace named by the scenario travels as trace.csv, with its speed
    std::fs::write(
        d.join("sc/t.csv"),
        "timestamp,path\n2026-11-26T12:00:00Z,/a.jpg\n2026-11-26T12:00:01Z,/b.jpg\n",
    )
    .unwrap();
    let trace_sc = format!(
        "trace = \"t.csv\"\nspeed = 4\n[targets]\nedge = \"{}\"\n",
        edge.base_url()
    );
    std::fs::write(d.join("sc/t.toml"), &trace_sc).unwrap();
    let o = run(
        &[
            "run",
            "--scenario",
            "sc/t.toml",
            "--check",
            "--bundle",
            "bt",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["plan"]["trace_speed"].as_f64(), Some(4.0));
    assert!(d.join("bt/trace.csv").exists() && !d.join("bt/urls.csv").exists());
    // a scenario's trace sets the pacing and the order: a load model beside it is a mistake
    std::fs::write(
        d.join("sc/t2.toml"),
        format!("{trace_sc}[load]\nrate = 10\n"),
    )
    .unwrap();
    let o = run(&["run", "--scenario", "sc/t2.toml", "--check"], d);
    assert_usage_error(&o, &["sc/t2.toml", "`trace`", "load.rate"]);
    assert_eq!(edge.stats().requests, 0);
}

#[test]
fn without_a_terminal_progress_is_a_plain_line_every_10_s() {
    // a runner's log (stderr to a file) shows the run going on, where a progress bar cannot
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_urls(d, 10);
    let t = format!("e={}", edge.base_url());
    let o = run(
        &[
            "run", "u.txt", "-t", &t, "-r", "20", "-d", "10.5s", "-o", "out",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().filter(|l| l.contains("req/s  p99")).collect();
    assert_eq!(lines.len(), 1, "{e}");
    assert!(lines[0].trim_start().starts_with("10s"), "{e}");
}
