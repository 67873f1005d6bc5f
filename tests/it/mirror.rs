//! `mirror`: following rotated logs without losing or repeating a line, contacting nothing but
//! the target, exact accounting under a flood, and warming a real Varnish until the gate passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgeload::cache_status::Classifier;
use edgeload::edge::{EdgeConfig, Latency};
use edgeload::engine::Target;
use edgeload::engine::client::ClientConfig;
use edgeload::extract::Filters;
use edgeload::logs::json::JsonFields;
use edgeload::mirror::window::Gate;
use edgeload::mirror::{self, Counters, Ending, Input, Mirror, MirrorConfig};

use crate::caches::Varnish;
use crate::common::*;

fn line(path: &str) -> String {
    format!(
        "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET {path} HTTP/1.1\" 200 5000 \"-\" \"Mozilla/5.0\"\n"
    )
}

fn config(base: &str, log: &Path) -> MirrorConfig {
    MirrorConfig {
        targets: vec![Target {
            name: "new".into(),
            base: base.into(),
        }],
        inputs: vec![Input::Follow {
            path: log.to_path_buf(),
            from_start: true,
        }],
        format: None,
        json: Arc::new(JsonFields::default()),
        filters: Filters {
            methods: vec!["GET".into(), "HEAD".into()],
            ..Filters::default()
        },
        rate: None,
        max_in_flight: 16,
        queue: 10_000,
        dedupe: None,
        client: ClientConfig::default(),
        classifier: Classifier::default(),
        window: Duration::from_secs(10),
        gate: None,
        max_duration: Some(Duration::from_secs(60)),
        out: None,
        run_id: "mirror-test".into(),
        region: "local".into(),
        status: None,
        progress_every: None,
        poll: Duration::from_millis(20),
    }
}

fn spawn(
    cfg: MirrorConfig,
) -> (
    Arc<AtomicBool>,
    Arc<Counters>,
    std::thread::JoinHandle<Mirror>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (s, c) = (stop.clone(), counters.clone());
    (
        stop,
        counters,
        std::thread::spawn(move || mirror::run(cfg, s, c).expect("mirror runs")),
    )
}

/// SIGTERM to a running mirror: it exits 130 (interrupted).
fn terminate(child: std::process::Child) {
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn append(p: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn rotation_by_rename_and_by_truncation_loses_and_repeats_nothing() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let (stop, counters, h) = spawn(config(&edge.base_url(), &log));
    let served = || edge.stats().requests;
    let batch = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| line(&format!("/r/{i}.jpg")))
            .collect::<String>()
    };

    append(&log, &batch(0, 50));
    wait_for("first batch", || served() == 50);
    // logrotate's default: rename, then the server writes a new file; the old one gets a last line
    let rotated: PathBuf = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, &batch(50, 5));
    append(&log, &batch(55, 20));
    wait_for("rotated batches", || served() == 75);
    assert_eq!(counters.follow.rotations.load(Ordering::Relaxed), 1);
    // copytruncate: the file is emptied in place
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    wait_for("truncation seen", || {
        counters.follow.truncations.load(Ordering::Relaxed) == 1
    });
    append(&log, &batch(75, 30));
    wait_for("after truncation", || served() == 105);
    stop.store(true, Ordering::Relaxed);
    let m = h.join().unwrap();
    assert_eq!(m.ending, Ending::Interrupted);
    let paths = edge.stats_with_paths().paths.unwrap();
    assert_eq!(paths.len(), 105);
    assert!(
        paths.values().all(|&n| n == 1),
        "a line was repeated: {paths:?}"
    );
    assert_eq!(counters.lines.load(Ordering::Relaxed), 105);
}

#[test]
fn only_the_target_is_contacted_and_no_forbidden_header_leaves() {
    let target = start(fast_edge());
    let other = start(fast_edge());
    let other_host = other.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut text = String::new();
    text += &line("/ok.jpg");
    text += &line(&format!("http://{other_host}/abs.jpg")); // absolute-form: its path only
    text += &line(&format!("//{other_host}/dbl.jpg"));
    text += &line(&format!("/@{other_host}/at.jpg"));
    text += &line("/a/../../up.jpg"); // would climb out of the base: never sent
    text += &format!(
        "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"CONNECT {other_host} HTTP/1.1\" 200 0 \"-\" \"x\"\n"
    );
    text += "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"POST /upload HTTP/1.1\" 200 0 \"-\" \"x\"\n";
    text += &format!(
        "{other_host} 203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"HEAD /vhost.jpg HTTP/1.1\" 200 0 \"-\" \"x\"\n"
    );
    std::fs::write(&log, text).unwrap();
    let (stop, counters, h) = spawn(config(&target.base_url(), &log));
    wait_for("all lines read", || {
        counters.lines.load(Ordering::Relaxed) == 8
    });
    wait_for("requests done", || target.stats().requests == 5);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(other.stats().requests, 0, "the other host was contacted");
    let s = target.stats_with_paths();
    let mut paths: Vec<String> = s.paths.unwrap().into_keys().collect();
    paths.sort();
    let want = [
        format!("//{other_host}/dbl.jpg"),
        format!("/@{other_host}/at.jpg"),
        "/abs.jpg".into(),
        "/ok.jpg".into(),
        "/vhost.jpg".into(),
    ];
    assert_eq!(paths, want);
    assert_eq!(counters.unsafe_target.load(Ordering::Relaxed), 1);
    let methods = s.methods.unwrap();
    assert_eq!(methods.get("GET"), Some(&4));
    assert_eq!(methods.get("HEAD"), Some(&1));
    assert_eq!(methods.len(), 2, "{methods:?}");
    let headers = s.headers.unwrap();
    for h in [
        "cookie",
        "authorization",
        "x-forwarded-for",
        "forwarded",
        "proxy-authorization",
    ] {
        assert!(!headers.contains_key(h), "{h} was sent: {headers:?}");
    }
    assert!(headers.contains_key("user-agent"));
    assert_eq!(
        counters.filtered.load(Ordering::Relaxed) + counters.malformed.load(Ordering::Relaxed),
        2
    ); // POST, CONNECT
}

#[test]
fn flood_drops_are_counted_exactly() {
    // a slow target (100 ms per request, 2 at a time) and 20,000 lines at once
    let edge = start(EdgeConfig {
        hit_latency: Latency::fixed(Duration::from_millis(100)),
        miss_latency: Latency::fixed(Duration::from_millis(100)),
        ..EdgeConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut text: String = (0..20_000)
        .map(|i| line(&format!("/f/{}.jpg", i % 500)))
        .collect();
    text += "garbage line\n";
    text += "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /404.jpg HTTP/1.1\" 404 0 \"-\" \"x\"\n";
    std::fs::write(&log, text).unwrap();
    let mut cfg = config(&edge.base_url(), &log);
    cfg.max_in_flight = 2;
    cfg.queue = 100;
    cfg.out = Some(dir.path().join("out"));
    let (stop, counters, h) = spawn(cfg);
    wait_for("all lines read", || {
        counters.lines.load(Ordering::Relaxed) == 20_002
    });
    stop.store(true, Ordering::Relaxed);
    let m = h.join().unwrap();
    let a = m.summary.mirror.clone().unwrap();
    let n = |k: &str| a[k].as_u64().unwrap();
    assert_eq!(n("lines"), 20_002);
    assert_eq!(
        n("lines"),
        n("accepted") + n("filtered") + n("malformed") + n("unsafe_target") + n("deduped")
    );
    assert_eq!((n("malformed"), n("filtered")), (1, 1));
    let t = &a["targets"][0];
    let tn = |k: &str| t[k].as_u64().unwrap();
    assert_eq!(n("accepted"), tn("enqueued") + tn("dropped"));
    assert_eq!(tn("enqueued"), tn("sent") + tn("unsent"));
    assert!(tn("dropped") > 19_000, "{t}");
    // what was sent is what the edge served (in-flight requests finish in the drain)
    assert_eq!(tn("sent"), edge.stats().requests);
    assert_eq!(
        m.summary.targets[0].requests + m.summary.rate.abandoned,
        tn("sent")
    );
    // and the results directory is complete
    let out = dir.path().join("out");
    edgeload::results::manifest::Manifest::read(&out)
        .unwrap()
        .verify(&out)
        .unwrap();
}

#[test]
fn warms_a_real_varnish_until_the_gate_passes() {
    let origin = start(EdgeConfig {
        miss_latency: Latency::fixed(Duration::from_millis(20)),
        hit_latency: Latency::fixed(Duration::ZERO),
        ..EdgeConfig::default()
    });
    let varnish = Varnish::start("mirror.vcl", origin.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let mut cfg = config(&format!("http://127.0.0.1:{}", varnish.port), &log);
    cfg.gate = Some(Gate {
        threshold: 0.8,
        hold_s: 2,
        min_samples: 200,
        per_pop: false,
    });
    cfg.window = Duration::from_secs(3);
    cfg.out = Some(dir.path().join("out"));
    let (stop, counters, h) = spawn(cfg);
    // a skewed stream: 2000 distinct images, Zipf-like, ~1000 lines/s
    let writer_stop = Arc::new(AtomicBool::new(false));
    let ws = writer_stop.clone();
    let log2 = log.clone();
    let writer = std::thread::spawn(move || {
        let mut x = 1u64;
        let deadline = Instant::now() + Duration::from_secs(40);
        while !ws.load(Ordering::Relaxed) && Instant::now() < deadline {
            let mut chunk = String::new();
            for _ in 0..50 {
                x = edgeload::urls::mix(x);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                let rank = (2000f64.powf(u)) as u64; // log-uniform ranks: a few hot, a long tail
                chunk += &line(&format!("/img/{rank}.jpg"));
            }
            append(&log2, &chunk);
            std::thread::sleep(Duration::from_millis(50)); // the traffic's pace, not a synchronisation
        }
    });
    let m = h.join().unwrap();
    writer_stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(stop);
    assert_eq!(m.ending, Ending::GatePassed, "{:?}", m.summary.mirror);
    let t = &m.summary.targets[0];
    let hits = t.class("hit").map(|c| c.count).unwrap_or(0);
    let misses = t.class("miss").map(|c| c.count).unwrap_or(0);
    assert!(hits + misses >= 200 && t.errors == 0, "{t:?}");
    assert!(counters.lines.load(Ordering::Relaxed) > 0);
    // Varnish's own counters agree with what the mirror saw
    assert_eq!(varnish.counter("MAIN.cache_hit"), hits, "hits");
    assert_eq!(varnish.counter("MAIN.cache_miss"), misses, "misses");
    // the warm-up curve: the ratio climbs from cold
    let rows = edgeload::results::timeline::read(
        &std::fs::read(dir.path().join("out/timeline.csv")).unwrap(),
    )
    .unwrap();
    let ratios: Vec<f64> = rows.iter().filter_map(|r| r.hit_ratio).collect();
    // (the last row is the drain after the gate: a few late misses; the peak tells the story)
    let best = ratios.iter().copied().fold(0.0, f64::max);
    assert!(ratios[0] < 0.8 && best >= 0.8, "{ratios:?}");
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

#[test]
fn syslog_input_status_endpoints_and_sigterm() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = format!("127.0.0.1:{}", free_port());
    let child = std::process::Command::new(bin())
        .args([
            "mirror",
            "--syslog",
            &format!("udp://127.0.0.1:{udp_port}"),
            "-t",
            &format!("new={}", edge.base_url()),
        ])
        .args(["--status", &status, "-o", "out", "-q"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the status endpoint", || {
        std::net::TcpStream::connect(&status).is_ok()
    });
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20 {
        let l = line(&format!("/s/{i}.png"));
        sock.send_to(
            format!("<190>Nov 26 12:00:00 web1 nginx: {}", l.trim_end()).as_bytes(),
            ("127.0.0.1", udp_port),
        )
        .unwrap();
    }
    wait_for("20 requests at the edge", || edge.stats().requests == 20);
    // the status snapshot refreshes every second
    wait_for("/status to count them", || {
        let v: serde_json::Value =
            serde_json::from_str(&http_get(&status, "/status")).unwrap_or_default();
        v["targets"][0]["requests"] == 20
    });
    let metrics = http_get(&status, "/metrics");
    assert!(
        metrics.contains("edgeload_mirror_requests_total{target=\"new\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgeload_mirror_lines_total 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edgeload_mirror_pop_hit_ratio{target=\"new\",pop=\"FRA\"}"),
        "{metrics}"
    );
    terminate(child);
    let out = dir.path().join("out");
    edgeload::results::manifest::Manifest::read(&out)
        .unwrap()
        .verify(&out)
        .unwrap();
    let s = edgeload::results::summary::Summary::read(&out.join("summary.json")).unwrap();
    assert!(s.interrupted);
    assert_eq!(s.mirror.unwrap()["lines"], 20);
    assert_eq!(s.targets[0].requests, 20);
}

#[test]
fn rotated_gz_files_are_read_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, line("/live.jpg")).unwrap();
    std::fs::write(dir.path().join("access.log.1"), line("/one.jpg")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("access.log.2.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(line("/two.jpg").as_bytes()).unwrap();
    gz.finish().unwrap();
    std::fs::write(dir.path().join("access.log.bak"), line("/not-rotation.jpg")).unwrap();
    assert_eq!(
        mirror::follow::rotated_files(&log),
        [
            dir.path().join("access.log.2.gz"),
            dir.path().join("access.log.1")
        ]
    );
    for (rotated, want) in [(false, 1u64), (true, 3)] {
        let edge = start(fast_edge());
        let mut cfg = config(&edge.base_url(), &log);
        if rotated {
            cfg.inputs.insert(0, Input::Rotated(log.clone()));
        }
        let (stop, counters, h) = spawn(cfg);
        wait_for("the lines", || {
            counters.lines.load(Ordering::Relaxed) == want && edge.stats().requests == want
        });
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
        let paths = edge.stats_with_paths().paths.unwrap();
        assert_eq!(paths.contains_key("/two.jpg"), rotated);
        assert!(!paths.contains_key("/not-rotation.jpg"));
    }
}

/// The mirror stops when asked (issue 17, item 9): SIGTERM with stdin idle ends it (the stdin
/// reader used to be joined, so it waited for the next line); the rate holds from the first
/// second (no burst of a second's worth at the start); after a --max-duration stop nothing more
/// leaves, so the edge saw exactly what the summary says was sent.
#[test]
fn mirror_stops_when_asked() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let target = format!("new={}", edge.base_url());
    let mut child = std::process::Command::new(bin())
        .args(["mirror", "--stdin", "-t", &target, "-q"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(line("/first.jpg").as_bytes()).unwrap();
    wait_for("the first request", || edge.stats().requests == 1);
    let t = Instant::now();
    terminate(child);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(stdin);

    let before = edge.stats().requests;
    let mut child = std::process::Command::new(bin())
        .args([
            "mirror",
            "--stdin",
            "-t",
            &target,
            "--rate",
            "10",
            "--max-duration",
            "2s",
        ])
        .args(["--json", "-q"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines: String = (0..200).map(|i| line(&format!("/r/{i}.jpg"))).collect();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(
        o.status.code(),
        Some(3),
        "--max-duration ends with the gate not reached"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sent = v["rate"]["sent"].as_u64().unwrap();
    // 10 per second, spaced: about 20 in 2 s (30 with the old burst), never more than 22
    assert!((12..=22).contains(&sent), "sent {sent}: {}", v["rate"]);
    assert_eq!(
        edge.stats().requests - before,
        sent,
        "the edge saw more than was sent"
    );
}
