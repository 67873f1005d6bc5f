//! The binary's contract: exit codes, messages that name the problem, Ctrl-C leaving a complete
//! results directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgeload::results::manifest::Manifest;
use edgeload::results::summary::Summary;

use crate::common::*;

#[test]
fn bad_input_exits_2_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n").unwrap();
    std::fs::write(d.join("empty.txt"), "# nothing here\n\n").unwrap();
    std::fs::write(d.join("bad.txt"), "/a.jpg\nimages/b.jpg\n").unwrap();
    std::fs::write(
        d.join("s.toml"),
        "urls = \"urls.txt\"\n[targets]\na = \"http://127.0.0.1:9\"\n[load]\nrate = 10\nburst = 5\n",
    )
    .unwrap();
    let t = "a=http://127.0.0.1:9";
    assert_usage_error(
        &run(&["run", "-s", "s.toml"], d),
        &["s.toml", "line 6", "burst"],
    );
    assert_usage_error(
        &run(&["run", "missing.txt", "-t", t, "-r", "1"], d),
        &["missing.txt"],
    );
    assert_usage_error(
        &run(&["run", "empty.txt", "-t", t, "-r", "1"], d),
        &["empty.txt", "no URLs"],
    );
    assert_usage_error(
        &run(&["run", "bad.txt", "-t", t, "-r", "1"], d),
        &["bad.txt:2", "images/b.jpg"],
    );
    assert_usage_error(
        &run(&["run", "urls.txt", "-t", "a=htp:/x", "-r", "1"], d),
        &["htp:/x"],
    );
    assert_usage_error(
        &run(&["run", "urls.txt", "-t", "a=ftp://h/", "-r", "1"], d),
        &["scheme"],
    );
    assert_usage_error(
        &run(
            &["run", "urls.txt", "-t", t, "-r", "1", "-d", "5 parsecs"],
            d,
        ),
        &["--duration"],
    );
    assert_usage_error(
        &run(
            &[
                "run",
                "urls.txt",
                "-t",
                t,
                "-r",
                "1",
                "--threshold",
                "p99<5",
            ],
            d,
        ),
        &["p99<5", "unit"],
    );
    assert_usage_error(&run(&["run", "urls.txt", "-t", t], d), &["load model"]);
    assert_usage_error(
        &run(&["run", "urls.txt", "-t", t, "-r", "5", "-c", "2"], d),
        &["one load model"],
    );
    assert_usage_error(
        &run(&["run", "urls.txt", "-t", t, "-r", "5", "-H", "nocolon"], d),
        &["nocolon"],
    );
    // nothing was written for runs that never started
    assert!(!d.join("reports").exists());
}

#[test]
fn failed_threshold_exits_1_and_says_which() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let t = format!("edge={}", edge.base_url());
    let o = run(
        &[
            "run",
            "urls.txt",
            "-t",
            &t,
            "-c",
            "2",
            "-n",
            "20",
            "--threshold",
            "hit_ratio>=0.99",
            "--threshold",
            "error_rate<1%",
            "-o",
            "out",
            "--json",
        ],
        d,
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("FAIL hit_ratio>=0.99 [edge] observed 0.900"),
        "{e}"
    );
    assert!(e.contains("PASS error_rate<1%"), "{e}");
    // --json: stdout is exactly summary.json
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["verdict"], "fail");
    assert_eq!(
        Summary::read(&d.join("out/summary.json")).unwrap().verdict,
        edgeload::results::summary::Verdict::Fail
    );
    // and a passing one exits 0
    let o = run(
        &[
            "run",
            "urls.txt",
            "-t",
            &t,
            "-c",
            "2",
            "-n",
            "4",
            "--threshold",
            "hit_ratio>=0.5",
            "-o",
            "out2",
            "-q",
        ],
        d,
    );
    assert_ok(&o);
    assert!(
        o.stderr.is_empty(),
        "--quiet prints nothing: {}",
        stderr(&o)
    );
}

#[test]
fn sigint_leaves_complete_results_and_exits_130() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n/c.jpg\n").unwrap();
    let t = format!("edge={}", edge.base_url());
    let child = Command::new(bin())
        .args([
            "run",
            "urls.txt",
            "-t",
            &t,
            "-r",
            "200",
            "-d",
            "60s",
            "-o",
            "out",
            "--interval",
            "100ms",
            "-q",
        ])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the run is under way: its timeline has rows
    let deadline = Instant::now() + Duration::from_secs(20);
    let timeline = d.join("out/timeline.csv");
    while std::fs::read_to_string(&timeline)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(Instant::now() < deadline, "run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    let out = d.join("out");
    Manifest::read(&out).unwrap().verify(&out).unwrap();
    let s = Summary::read(&out.join("summary.json")).unwrap();
    assert!(s.interrupted);
    assert_eq!(s.targets[0].requests, edge.stats().requests);
    assert!(s.targets[0].requests > 50 && s.targets[0].requests < 12_000);
}

/// `run --metrics`: while the run lasts, /metrics says how many requests completed, by class,
/// never more than the edge has served, with last-interval latency quantiles; the run's final
/// summary has at least as many.
#[test]
fn live_prometheus_metrics_while_a_run_lasts() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n/c.jpg\n").unwrap();
    let t = format!("edge={}", edge.base_url());
    let port = free_port();
    let child = Command::new(bin())
        .args([
            "run", "urls.txt", "-t", &t, "-r", "200", "-d", "60s", "-o", "out",
        ])
        .args(["--interval", "100ms", "-q", "--metrics"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let value = |text: &str, series: &str| -> Option<f64> {
        (text.lines()).find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    };
    let mut scraped = (String::new(), 0.0);
    wait_for("metrics with 100 requests", || {
        let Some((200, body)) = get(port, "/metrics") else {
            return false;
        };
        let n = value(&body, "edgeload_requests_total{target=\"edge\"}").unwrap_or(0.0);
        scraped = (body, n);
        n >= 100.0
    });
    let served = edge.stats().requests as f64;
    let (body, n) = scraped;
    assert!(n <= served, "{n} completed, {served} served");
    let classes: f64 = (body.lines())
        .filter(|l| l.starts_with("edgeload_responses_total{target=\"edge\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(classes, n, "{body}");
    let p99 = value(
        &body,
        "edgeload_latency_ms{target=\"edge\",quantile=\"0.99\"}",
    );
    assert!(p99.is_some_and(|v| v > 0.0 && v < 1000.0), "{body}");
    assert!(
        body.contains("# TYPE edgeload_requests_total counter"),
        "{body}"
    );
    let (status, json) = get(port, "/status").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["targets"][0]["name"], "edge");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let s = Summary::read(&d.join("out/summary.json")).unwrap();
    assert!(s.targets[0].requests as f64 >= n);
    // the endpoint ends with the run
    assert!(get(port, "/metrics").is_none());
}

/// Files run out during the run (the up-front check passed: other files were already open): the
/// run stops with a clear error and exit 2 instead of recording a tight loop of fake `connect`
/// errors as the target's.
#[test]
fn running_out_of_open_files_stops_the_run_with_an_error() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    // 150 files open (inherited, as a shell leaves them) under a limit of 200; the run needs 60
    // connections (its check asks for 60 + 64 + 16) and its own files: enough for the check,
    // 20 or so short for the run
    let script = format!(
        "ulimit -n 200; for i in $(seq 3 152); do eval \"exec $i</dev/null\"; done; \
         exec {} run urls.txt -t e={} -c 60 -d 10s --threads 1 -o out -q",
        bin(),
        edge.base_url()
    );
    let started = Instant::now();
    let o = Command::new("bash")
        .args(["-c", &script])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ran out of open files") && stderr(&o).contains("limit is 200"),
        "{}",
        stderr(&o)
    );
    // before its 10 s were up
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopped promptly"
    );
    // no complete results directory claims to be a measurement
    assert!(!d.join("out/MANIFEST.json").exists());
}

#[test]
fn edge_stats_endpoint_reports_ground_truth() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/x.jpg\n/y.png?w=2\n").unwrap();
    let t = format!("e={}", edge.base_url());
    let o = run(
        &[
            "run", "urls.txt", "-t", &t, "-c", "1", "-n", "6", "-o", "out", "-q",
        ],
        d,
    );
    assert_ok(&o);
    // ask the edge over HTTP, as an outside tool would
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(edge.addr).unwrap();
    write!(
        s,
        "GET /_edge/stats?paths=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["requests"], 6);
    assert_eq!(v["hits"], 4);
    assert_eq!(v["misses"], 2);
    assert_eq!(v["paths"]["/x.jpg"], 3);
    assert_eq!(v["paths"]["/y.png?w=2"], 3);
}

/// `run --check` validates everything a run needs and prints the plan, sending nothing: a good
/// scenario passes (exit 0, the plan as JSON), a bad path in its URL list, a missing --cacert
/// file, a bad --start-at fail with exit 2 and name the problem, and the edge counts nothing.
#[test]
fn check_validates_without_sending() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    std::fs::write(
        d.join("s.toml"),
        format!(
            "urls = \"urls.txt\"\n[targets]\nedge = \"{}\"\n[load]\nrate = 50\nduration = \"4s\"\n",
            edge.base_url()
        ),
    )
    .unwrap();
    let o = run(
        &[
            "run",
            "--scenario",
            "s.toml",
            "--check",
            "--threshold",
            "p99<100ms",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["ok"], true);
    assert_eq!(
        (plan["urls"].as_u64(), plan["requests_per_target"].as_u64()),
        (Some(2), Some(200))
    );
    assert!(stderr(&o).contains("1 threshold(s)"), "{}", stderr(&o));
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n/../c.jpg\n").unwrap();
    let o = run(&["run", "--scenario", "s.toml", "--check"], d);
    assert_usage_error(&o, &["urls.txt:3", "dot segment"]);
    std::fs::write(d.join("urls.txt"), "/a.jpg\n").unwrap();
    let https = format!("x=https://localhost:{}", edge.addr.port());
    let o = run(
        &[
            "run", "urls.txt", "-t", &https, "--cacert", "nope.pem", "-n", "1", "--check",
        ],
        d,
    );
    assert_usage_error(&o, &["nope.pem"]);
    let o = run(
        &[
            "run",
            "--scenario",
            "s.toml",
            "--check",
            "--start-at",
            "noon",
        ],
        d,
    );
    assert_usage_error(&o, &["--start-at"]);
    // where the results would go, and the metrics address, as a real run would need them
    std::fs::write(d.join("afile"), "").unwrap();
    let o = run(
        &["run", "--scenario", "s.toml", "--check", "-o", "afile/run"],
        d,
    );
    assert_usage_error(&o, &["-o afile/run", "cannot write"]);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(
        &["run", "--scenario", "s.toml", "--check", "--metrics", &addr],
        d,
    );
    assert_usage_error(&o, &["--metrics"]);
    assert_eq!(edge.stats().requests, 0);
    assert!(!d.join("results").exists() && !d.join("reports").exists());
}
