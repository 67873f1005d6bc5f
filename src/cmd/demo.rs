//! `edgeload demo`: an embedded edge, the bundled URL list, one cold run and one warm run, so a
//! newcomer sees misses at 100+ ms, hits at ~1 ms and the hit ratio climbing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::EXIT_OK;
use super::execute::{Plan, execute, new_run_id};
use crate::cli::DemoArgs;
use crate::edge::{self, EdgeConfig};
use crate::engine::schedule::Schedule;
use crate::engine::{Control, EngineConfig, Model, Target};
use crate::results::timeline;
use crate::urls::{Order, Paths};

/// 3,000 image paths with Zipf-distributed counts (scripts/gen-demo-urls.py).
pub(crate) const DEMO_URLS: &str = include_str!("../../scenarios/demo-urls.csv");

pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    if !(a.rate > 0.0 && a.rate <= 100_000.0) {
        return super::usage(format!(
            "--rate {}: between 0 and 100000 (exclusive of 0)",
            a.rate
        ));
    }
    let urls =
        Arc::new(Paths::read(DEMO_URLS.as_bytes(), "demo-urls.csv").context("bundled URL list")?);
    let tls = if a.https {
        let names = ["localhost", "127.0.0.1"].map(String::from);
        Some(edge::tls::EdgeTls::generate(&names).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    // the client trusts the edge's certificate, written beside the results
    let mut trust = crate::engine::tls::TlsOptions::default();
    if let Some(t) = &tls {
        std::fs::create_dir_all(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?;
        let f = a.out.join("edge-cert.pem");
        crate::guard::atomic::write(&f, t.cert_pem.as_bytes())
            .with_context(|| format!("cannot write {}", f.display()))?;
        trust.cacert.push(f);
    }
    let edge = edge::start_local(EdgeConfig {
        tls,
        ..EdgeConfig::default()
    })
    .context("cannot start the embedded edge")?;
    eprintln!(
        "demo: embedded edge at {} (LRU cache; misses wait 80-150 ms for the origin, hits ~1 ms)",
        edge.base_url()
    );
    eprintln!(
        "demo: replaying {} image URLs (Zipf-skewed, weighted by count) at {} req/s: cold, then warm\n",
        urls.len(),
        a.rate
    );
    let control = Control::default();
    let c = control.clone();
    super::on_signal(move || c.stop());
    let run_id = new_run_id();
    for (phase, secs) in [("cold", 8u64), ("warm", 5)] {
        let out = a.out.join(phase);
        let mut engine = EngineConfig::new(
            vec![Target {
                name: "edge".into(),
                base: edge.base_url(),
            }],
            urls.clone(),
            Model::Open {
                schedule: Schedule::constant(a.rate, Duration::from_secs(secs)),
                max_in_flight: 256,
            },
        );
        engine.client.tls = trust.clone();
        let plan = Plan {
            engine: EngineConfig {
                order: Order::Weighted,
                seed: if phase == "cold" { 1 } else { 2 },
                ..engine
            },
            out: out.clone(),
            run_id: format!("{run_id}-{phase}"),
            region: "local".into(),
            thresholds: Vec::new(),
            scenario: serde_json::json!({"demo": phase, "rate": a.rate, "seconds": secs}),
            progress: true,
            metrics: None,
        };
        let f = execute(plan, &control)?;
        eprintln!("== {phase} cache ==");
        eprint!("{}", crate::report::text::render(&f.summary));
        let tl = std::fs::read(f.dir.join(timeline::NAME)).context("reading timeline")?;
        let rows = timeline::read(&tl).context("parsing timeline")?;
        // the schedule's seconds only: the last partial interval holds just the slowest tail
        let ratios: Vec<String> = rows
            .iter()
            .filter(|r| r.t_s < secs as f64)
            .map(|r| {
                r.hit_ratio
                    .map(|h| format!("{:.0}%", h * 100.0))
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        eprintln!("  hit ratio per second: {}", ratios.join(" "));
        eprintln!("  results: {}\n", f.dir.display());
        if f.summary.interrupted {
            return Ok(super::EXIT_INTERRUPTED);
        }
    }
    let s = edge.stats();
    eprintln!(
        "edge ground truth: {} requests, {} hits, {} misses ({} objects cached)",
        s.requests, s.hits, s.misses, s.cached_objects
    );
    Ok(EXIT_OK)
}
