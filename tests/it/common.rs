//! Helpers shared by the integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgeload::cache_status::Classifier;
use edgeload::cmd::execute::{Finished, Plan, execute};
use edgeload::edge::{EdgeConfig, EdgeHandle, Latency};
use edgeload::engine::client::ClientConfig;
use edgeload::engine::{Control, EngineConfig, Model, Target};
use edgeload::urls::{Order, UrlList};

pub fn fast_edge() -> EdgeConfig {
    EdgeConfig {
        hit_latency: Latency::fixed(Duration::ZERO),
        miss_latency: Latency::fixed(Duration::ZERO),
        ..EdgeConfig::default()
    }
}

pub fn start(cfg: EdgeConfig) -> EdgeHandle {
    edgeload::edge::start_local(cfg).expect("edge starts")
}

pub fn paths(n: usize) -> Arc<UrlList> {
    Arc::new(UrlList::from_paths((0..n).map(|i| format!("/img/{i}.jpg"))))
}

pub fn engine(base: &str, urls: Arc<UrlList>, model: Model) -> EngineConfig {
    EngineConfig {
        targets: vec![Target {
            name: "edge".into(),
            base: base.to_string(),
        }],
        urls,
        order: Order::Sequential,
        seed: 1,
        model,
        duration: None,
        requests: None,
        sweep: false,
        threads: 2,
        interval: Duration::from_secs(1),
        client: ClientConfig::default(),
        classifier: Classifier::default(),
        samples: false,
        grace: Duration::from_secs(2),
    }
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
