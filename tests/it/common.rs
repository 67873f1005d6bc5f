//! Helpers shared by the integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgeload::cmd::execute::{Finished, Plan, execute};
use edgeload::edge::{EdgeConfig, EdgeHandle, Latency};
use edgeload::engine::{Control, EngineConfig, Model, Target};
use edgeload::urls::Paths;

pub fn fast_edge() -> EdgeConfig {
    EdgeConfig {
        hit_latency: Latency::fixed(Duration::ZERO),
        miss_latency: Latency::fixed(Duration::ZERO),
        ..EdgeConfig::default()
    }
}

/// An edge that holds every response for `delay` on top of `fast_edge`.
pub fn delayed_edge(delay: Duration) -> EdgeHandle {
    start(EdgeConfig {
        faults: edgeload::edge::Faults {
            extra_delay: delay,
            ..Default::default()
        },
        ..fast_edge()
    })
}

pub fn start(cfg: EdgeConfig) -> EdgeHandle {
    edgeload::edge::start_local(cfg).expect("edge starts")
}

pub fn paths(n: usize) -> Arc<Paths> {
    Arc::new(Paths::from_paths((0..n).map(|i| format!("/img/{i}.jpg"))))
}

pub fn engine(base: &str, urls: Arc<Paths>, model: Model) -> EngineConfig {
    let target = Target {
        name: "edge".into(),
        base: base.to_string(),
    };
    EngineConfig::new(vec![target], urls, model)
}

pub fn closed(n: usize) -> Model {
    Model::Closed {
        concurrency: n,
        think: Duration::ZERO,
    }
}

pub fn run_in(dir: &Path, cfg: EngineConfig) -> Finished {
    let plan = Plan {
        engine: cfg,
        out: dir.to_path_buf(),
        run_id: "test-run".into(),
        region: "test-region".into(),
        thresholds: Vec::new(),
        scenario: serde_json::json!({}),
        progress: false,
        metrics: None,
    };
    execute(plan, &Control::default()).expect("run succeeds")
}

/// `edgeload ARGS` in `cwd`, to its end.
pub fn run(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit 2, no panic, and the message names every needle.
pub fn assert_usage_error(o: &std::process::Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "expected {n:?} in: {e}");
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_edgeload")
}

/// A port nothing listens on right now (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The command exited 0; its stderr is shown when it did not.
/// `edgeload run u.txt -t e=TARGET -n 1 -q EXTRA...` in `dir` (which holds u.txt): its exit
/// code and stderr, for the tests of flags that are refused before anything is sent.
pub fn run_flags(dir: &Path, target: &str, extra: &[&str]) -> (Option<i32>, String) {
    let o = std::process::Command::new(bin())
        .args([
            "run",
            "u.txt",
            "-t",
            &format!("e={target}"),
            "-n",
            "1",
            "-q",
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

pub fn assert_ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Polls `cond` every 10 ms until it holds; fails the test after 30 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// GET `path` from `port` on loopback over a fresh HTTP/1.0 connection (a body never chunked):
/// (status, body).
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
