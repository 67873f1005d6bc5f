//! Helpers shared by the integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgeload::cmd::execute::{Finished, Plan, execute};
use edgeload::edge::{EdgeConfig, EdgeHandle, Latency};
use edgeload::engine::{Control, EngineConfig, Model, Target};
use edgeload::urls::UrlList;

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

pub fn paths(n: usize) -> Arc<UrlList> {
    Arc::new(UrlList::from_paths((0..n).map(|i| format!("/img/{i}.jpg"))))
}

pub fn engine(base: &str, urls: Arc<UrlList>, model: Model) -> EngineConfig {
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
    };
    execute(plan, &Control::default()).expect("run succeeds")
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
