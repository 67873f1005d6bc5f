//! Numbers a cutover can rest on (issue 17): no gate passes on no data, the run ends when it
//! says, settings that make no run are refused; judged against what the embedded edge served.

use std::path::Path;
use std::process::{Command, Output};

use edgeload::edge::EdgeConfig;
use edgeload::edge::dialect::Dialect;

use crate::common::*;

/// The binary with `args` in `d`.
fn edgeload(d: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(d)
        .output()
        .unwrap()
}

/// The binary, given `args` then `more` in `d`, refuses them: exit 2, naming `needle`.
fn refused(d: &Path, args: &[&str], more: &[&str], needle: &str) {
    let all: Vec<&str> = args.iter().chain(more).copied().collect();
    let o = edgeload(d, &all);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{all:?}: {e}");
    assert!(
        e.contains(needle) && !e.contains("panicked"),
        "{all:?}: {e}"
    );
}

/// The command exited 0 and printed summary.json: parsed.
fn json_ok(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn run_json(
    d: &Path,
    target: &str,
    thresholds: &[&str],
    extra: &[&str],
) -> (Output, serde_json::Value) {
    let mut args = vec![
        "run", "urls.txt", "-t", target, "-c", "2", "-n", "20", "--json", "-q",
    ];
    for t in thresholds {
        args.extend(["--threshold", t]);
    }
    args.extend_from_slice(extra);
    let o = edgeload(d, &args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_default();
    (o, v)
}

fn verdicts(v: &serde_json::Value) -> Vec<(String, bool, String)> {
    (v["thresholds"].as_array().unwrap().iter())
        .map(|t| {
            (
                t["expr"].as_str().unwrap().to_string(),
                t["passed"].as_bool().unwrap(),
                t["note"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn hit_ratio_fails_when_no_response_carried_a_cache_status() {
    // Akamai answers with X-Cache only when asked (Pragma): every response is `unknown`
    let edge = start(EdgeConfig {
        dialect: Dialect::Akamai,
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let t = format!("e={}", edge.base_url());
    let (o, v) = run_json(dir.path(), &t, &["hit_ratio>=0.9", "miss.p99<150ms"], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(edge.stats().requests, 20);
    let r = verdicts(&v);
    assert!(!r[0].1 && r[0].2.contains("20 unknown"), "{r:?}");
    assert!(!r[1].1 && r[1].2.contains("no response carried"), "{r:?}");
    assert_eq!(v["verdict"], "fail");
    // unknown is visible (item 2): its share in summary.json, a warning on the terminal and
    // in the report, with the header names seen on those responses
    assert_eq!(v["targets"][0]["unknown_share"], 1.0, "{}", v["targets"][0]);
    assert!(v["unknown_headers"].is_array() || v.get("unknown_headers").is_none());
    let o = edgeload(
        dir.path(),
        &[
            "run", "urls.txt", "-t", &t, "-c", "1", "-n", "4", "-o", "unk",
        ],
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("WARNING: 100.0% of e's responses carried no recognised cache status")
            && e.contains("Pragma: akamai-x-cache-on"),
        "{e}"
    );
    let o = edgeload(dir.path(), &["report", "unk", "-o", "rep", "--no-plots"]);
    assert_ok(&o);
    let md = std::fs::read_to_string(dir.path().join("rep/report.md")).unwrap();
    assert!(
        md.contains("## Warnings") && md.contains("no recognised cache status"),
        "{md}"
    );
    // asked properly, the same edge passes
    let (o, v) = run_json(
        dir.path(),
        &t,
        &["hit_ratio>=0.5"],
        &["-H", "Pragma: akamai-x-cache-on"],
    );
    assert_eq!(o.status.code(), Some(0), "{v}");
}

#[test]
fn nothing_passes_when_every_connection_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n").unwrap();
    let t = format!("e=http://127.0.0.1:{}", free_port());
    let (o, v) = run_json(dir.path(), &t, &["p99<100ms", "rps>5", "hit.p99<1s"], &[]);
    assert_eq!(o.status.code(), Some(1), "{v}");
    for (expr, passed, note) in verdicts(&v) {
        assert!(!passed, "{expr} passed");
        assert_eq!(note, "no successful response", "{expr}");
    }
}

/// A latency threshold without a class judges the requests that got a response; the failures
/// are judged by error_rate. The edge stalls every response for 600 ms from request 100, so
/// the requests sent then time out (at 100 ms) before any response: their 100 ms are in the
/// class `error` (and in `all`, whose p99 they make 100 ms), not in what `p99<100ms` judges
/// (every response came within the timeout, by construction).
#[test]
fn latency_thresholds_without_a_class_judge_responses_only() {
    let edge = start(EdgeConfig {
        faults: edgeload::edge::Faults {
            stall_after: Some(100),
            stall: std::time::Duration::from_millis(600),
            ..Default::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let t = format!("e={}", edge.base_url());
    let o = edgeload(
        dir.path(),
        &[
            "run",
            "urls.txt",
            "-t",
            &t,
            "-c",
            "4",
            "-n",
            "400",
            "--timeout",
            "100ms",
            "--json",
            "-q",
            "--threshold",
            "p99<100ms",
            "--threshold",
            "error_rate<1%",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{v} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tg = &v["targets"][0];
    let timeouts = tg["errors_by_kind"]["timeout"].as_u64().unwrap_or(0);
    assert!(timeouts >= 8, "{tg}");
    // the errors' time is in `all`, not in the responses
    assert!(tg["all"]["corrected"]["total"]["p99"].as_f64().unwrap() >= 100.0);
    assert!(
        tg["responses"]["corrected"]["total"]["p99"]
            .as_f64()
            .unwrap()
            < 100.0,
        "{tg}"
    );
    assert_eq!(tg["responses"]["count"].as_u64(), Some(400 - timeouts));
    let r = verdicts(&v);
    assert!(r[0].1, "p99<100ms judges responses: {r:?}");
    assert!(!r[1].1, "error_rate<1% fails: {r:?}");
}

#[test]
fn a_class_without_samples_passes_only_beside_classified_responses() {
    // a warm edge: every response a hit, so no misses at all (good news, and said so)
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let t = format!("e={}", edge.base_url());
    let _ = run_json(dir.path(), &t, &[], &[]);
    let (o, v) = run_json(dir.path(), &t, &["miss.p99<150ms", "rps>1"], &[]);
    assert_eq!(o.status.code(), Some(0), "{v}");
    let r = verdicts(&v);
    assert!(
        r[0].1 && r[0].2 == "no miss samples among 20 classified responses",
        "{r:?}"
    );
    // rps counts successful responses: 20 of them
    let rps = v["thresholds"][1]["observed"].as_f64().unwrap();
    let want = 20.0 / v["duration_s"].as_f64().unwrap();
    assert!((rps - want).abs() < 1e-9, "{rps} {want}");
}

/// Settings that make no run are errors naming the flag, not silent substitutes or panics
/// (issue 17, item 7, in part).
#[test]
fn settings_that_make_no_run_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n").unwrap();
    let t = format!("e=http://127.0.0.1:{}", free_port());
    let base = ["run", "urls.txt", "-t", t.as_str()];
    for (extra, needle) in [
        (&["-r", "10", "-d", "0"][..], "--duration"),
        (&["-c", "1", "-n", "0"][..], "--requests"),
        (&["-c", "1", "--timeout", "0s"][..], "--timeout"),
        (
            &["-c", "1", "--connect-timeout", "0s"][..],
            "--connect-timeout",
        ),
        (&["-r", "10", "--max-in-flight", "0"][..], "--max-in-flight"),
        (&["-c", "1", "--threads", "0"][..], "--threads"),
        (&["-c", "1", "--threads", "100000"][..], "--threads"),
    ] {
        refused(dir.path(), &base, extra, needle);
    }
    for (args, needle) in [
        (
            &["mirror", "--stdin", "-t", t.as_str(), "--queue", "0"][..],
            "--queue",
        ),
        (
            &[
                "mirror",
                "--stdin",
                "-t",
                t.as_str(),
                "--max-in-flight",
                "0",
            ][..],
            "--max-in-flight",
        ),
        (&["demo", "--rate", "0"][..], "--rate"),
    ] {
        refused(dir.path(), args, &[], needle);
    }
}

/// At the duration, sending stops: requests due but held back by the in-flight cap are counted
/// as unsent, requests in flight get the grace, and the run is not "interrupted". Before, the
/// open model sent every planned request however late (`--rate 200 -d 2s --max-in-flight 5`
/// against a slow target took 4.1 s), and a trace ignored `-d`.
#[test]
fn the_run_ends_when_it_says() {
    let edge = delayed_edge(std::time::Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let t = format!("e={}", edge.base_url());
    let started = std::time::Instant::now();
    let o = edgeload(
        d,
        &[
            "run",
            "urls.txt",
            "-t",
            &t,
            "-r",
            "200",
            "-d",
            "2s",
            "--max-in-flight",
            "5",
            "--grace",
            "1s",
            "--json",
            "-q",
        ],
    );
    let took = started.elapsed();
    let v = json_ok(&o);
    let r = &v["rate"];
    let (sent, unsent) = (r["sent"].as_u64().unwrap(), r["unsent"].as_u64().unwrap());
    // 5 slots of 200 ms for 2 s: about 50 sent, the rest of the 400 never
    assert!((40..=60).contains(&sent), "{r}");
    assert_eq!(sent + unsent, 400, "{r}");
    assert_eq!(edge.stats().requests, sent, "the edge saw what was sent");
    assert_eq!(v["interrupted"], false);
    assert!(took < std::time::Duration::from_millis(3500), "{took:?}");

    // a trace of 20 s, cut by -d 2s: the requests due in the first 2 s, then the end
    let rows: String = (0..20)
        .map(|i| format!("{},/t/{i}.jpg\n", 1_767_225_600 + i))
        .collect();
    std::fs::write(d.join("trace.csv"), format!("timestamp,path\n{rows}")).unwrap();
    let before = edge.stats().requests;
    let started = std::time::Instant::now();
    let o = edgeload(
        d,
        &[
            "run",
            "--trace",
            "trace.csv",
            "-t",
            &t,
            "-d",
            "2s",
            "--json",
            "-q",
        ],
    );
    let v = json_ok(&o);
    assert_eq!(v["rate"]["planned_requests"], 2, "{}", v["rate"]);
    assert_eq!(edge.stats().requests - before, 2);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn impossible_rates_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n").unwrap();
    for extra in [&["--stages", "1e9/1s"][..], &["-r", "5e6"][..]] {
        let run = ["run", "urls.txt", "-t", "e=http://127.0.0.1:9"];
        refused(dir.path(), &run, extra, "1000000");
    }
}

/// A run short of open files is refused up front (it turned every request into an instant
/// `connect` error, in a tight loop, and exited 0); a soft limit below the hard one is raised.
#[test]
fn a_run_needs_its_open_files_up_front() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("urls.txt"), "/a.jpg\n").unwrap();
    let sh = |limit: &str, conc: &str| {
        let cmd = format!(
            "ulimit {limit} 256 && exec '{}' run urls.txt -t e={} -c {conc} -n {conc} -q",
            bin(),
            edge.base_url()
        );
        Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = sh("-n", "3000");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("open files") && e.contains("ulimit -n"), "{e}");
    assert_eq!(edge.stats().requests, 0);
    // only the soft limit low: raised, and the run goes
    let o = sh("-Sn", "300");
    assert_ok(&o);
    assert_eq!(edge.stats().requests, 300);
}

/// A trace keeps the log's spacing (issue 17, item 8): extract keeps the log's order within a
/// timestamp (it sorted by URL hash), run sorts an unsorted trace and spreads the requests that
/// share a timestamp evenly over its resolution (they all left at once).
#[test]
fn a_trace_keeps_the_logs_order_and_spacing() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // extract: ten lines in one second, in a known order (z, y, x, ...)
    let names: Vec<String> = (0..10)
        .map(|i| format!("/{}.jpg", (b'z' - i) as char))
        .collect();
    let log: String = names
        .iter()
        .map(|p| {
            format!(
                "203.0.113.7 - - [01/Jan/2026:00:00:00 +0000] \"GET {p} HTTP/1.1\" 200 5 \"-\" \"UA\"\n"
            )
        })
        .collect();
    std::fs::write(d.join("access.log"), log).unwrap();
    assert_ok(&edgeload(
        d,
        &[
            "extract",
            "access.log",
            "-o",
            "u.csv",
            "--trace",
            "t.csv",
            "-q",
        ],
    ));
    let trace = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let order: Vec<&str> = trace
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    assert_eq!(order, names, "{trace}");
    // run: a later row first (unsorted), then the ten of one second
    let mut rows = String::from("timestamp,path\n1767225601,/late.jpg\n");
    for p in &names {
        rows += &format!("1767225600,{p}\n");
    }
    std::fs::write(d.join("trace.csv"), rows).unwrap();
    let t = format!("e={}", edge.base_url());
    let args = [
        "run",
        "--trace",
        "trace.csv",
        "-t",
        &t,
        "--samples",
        "-o",
        "out",
        "-q",
    ];
    assert_ok(&edgeload(d, &args));
    let jtl = std::fs::read_to_string(d.join("out/samples.jtl")).unwrap();
    let mut sent: Vec<(u64, String)> = jtl
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let url = f[13].rsplit('/').next().unwrap_or_default();
            (f[0].parse().unwrap(), format!("/{url}"))
        })
        .collect();
    sent.sort();
    let urls: Vec<&str> = sent.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(
        &urls[..10],
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(urls[10], "/late.jpg");
    // spread over the second: 100 ms apart, not one burst
    let span = sent[9].0 - sent[0].0;
    assert!((850..=1000).contains(&span), "{sent:?}");
    assert!(sent[10].0 - sent[0].0 >= 990, "{sent:?}");
}
