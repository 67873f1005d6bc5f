//! No gate passes on no data (issue 17, item 1): thresholds judged against what the embedded
//! edge knows it served.

use std::path::Path;
use std::process::{Command, Output};

use edgeload::edge::EdgeConfig;
use edgeload::edge::dialect::Dialect;

use crate::common::*;

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
    let o = Command::new(bin())
        .args(&args)
        .current_dir(d)
        .output()
        .unwrap();
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
        let o = Command::new(bin())
            .args(base)
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {e}");
        assert!(
            e.contains(needle) && !e.contains("panicked"),
            "{extra:?}: {e}"
        );
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
        let o = Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}
