//! Measurement truth: the numbers edgeload records against what the edge actually served.

use std::time::Duration;

use edgeload::edge::{Dialect, EdgeConfig, Faults, Latency};
use edgeload::engine::Model;
use edgeload::engine::schedule::Schedule;

use crate::common::*;

#[test]
fn counts_match_edge_ground_truth_for_every_dialect() {
    for dialect in Dialect::ALL {
        let edge = start(EdgeConfig {
            dialect,
            ..fast_edge()
        });
        let dir = tempfile::tempdir().unwrap();
        // 100 distinct paths, 3 passes: 100 misses then 200 hits, whatever the interleaving
        let mut cfg = engine(&edge.base_url(), paths(100), closed(4));
        cfg.requests = Some(300);
        if dialect == Dialect::Akamai {
            cfg.client
                .headers
                .push(("Pragma".into(), "akamai-x-cache-on".into()));
        }
        let f = run_in(dir.path(), cfg);
        let truth = edge.stats();
        let t = &f.summary.targets[0];
        let count = |c: &str| t.class(c).map(|c| c.count).unwrap_or(0);
        assert_eq!(truth.requests, 300, "{dialect:?}");
        assert_eq!(t.requests, truth.requests, "{dialect:?}");
        assert_eq!(count("hit"), truth.hits, "{dialect:?} {t:?}");
        assert_eq!(count("miss"), truth.misses, "{dialect:?} {t:?}");
        assert_eq!(count("unknown"), 0, "{dialect:?}");
        assert_eq!(t.bytes, truth.bytes, "{dialect:?}");
        assert_eq!(t.errors, 0);
        assert!((t.hit_ratio.unwrap() - truth.hits as f64 / 300.0).abs() < 1e-12);
    }
}

/// A shield tier's answers are kept apart from origin fetches where the CDN says so (Fastly's
/// two-token X-Cache, Akamai's X-Cache-Remote, RFC 9211's member list): the edge's counts of
/// shield hits and origin fetches are edgeload's, and `miss` holds only the origin's latency.
#[test]
fn shield_hits_are_apart_from_origin_fetches() {
    for dialect in [Dialect::Fastly, Dialect::Akamai, Dialect::Rfc9211] {
        let edge = start(EdgeConfig {
            dialect,
            // the edge keeps 10 objects; the shield keeps them all
            capacity_objects: 10,
            hit_latency: Latency::fixed(Duration::ZERO),
            shield: Some(Latency::fixed(Duration::from_millis(20))),
            miss_latency: Latency::fixed(Duration::from_millis(100)),
            ..EdgeConfig::default()
        });
        let dir = tempfile::tempdir().unwrap();
        // 40 images in order, twice: the second pass finds them evicted at the edge, held by
        // the shield
        let mut cfg = engine(&edge.base_url(), paths(40), closed(1));
        cfg.requests = Some(80);
        cfg.client
            .headers
            .push(("Pragma".into(), "akamai-x-cache-on".into()));
        let t = run_in(dir.path(), cfg).summary.targets[0].clone();
        let truth = edge.stats();
        let class = |c: &str| t.class(c).cloned().unwrap_or_default();
        assert_eq!((truth.misses, truth.shield_hits), (40, 40), "{truth:?}");
        assert_eq!(class("miss").count, truth.misses, "{dialect:?}");
        assert_eq!(class("shield_hit").count, truth.shield_hits, "{dialect:?}");
        // an edge miss either way: the edge's hit ratio is 0
        assert_eq!(t.hit_ratio, Some(0.0));
        let (miss, shield) = (
            class("miss").corrected.total,
            class("shield_hit").corrected.total,
        );
        assert!(miss.min >= 100.0, "{dialect:?} miss {miss:?}");
        assert!(
            shield.max < 100.0 && shield.min >= 20.0,
            "{dialect:?} shield {shield:?}"
        );
    }
}

#[test]
fn latency_truth_fixed_50ms_delay() {
    let edge = delayed_edge(Duration::from_millis(50));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(50), closed(8));
    cfg.requests = Some(200);
    let f = run_in(dir.path(), cfg);
    let all = &f.summary.targets[0].all;
    assert_eq!(all.count, 200);
    for (name, p50) in [
        ("service", all.service.total.p50),
        ("corrected", all.corrected.total.p50),
        ("ttfb", all.service.ttfb.p50),
    ] {
        let err = (p50 - 50.0).abs() / 50.0;
        eprintln!("{name} p50 {p50:.3} ms, error {:.2}%", err * 100.0);
        assert!(err < 0.02, "{name} p50 {p50} ms is not within 2% of 50 ms");
    }
    assert!(
        all.service.total.min >= 50.0,
        "nothing can be faster than the delay"
    );
}

#[test]
fn coordinated_omission_stall_shows_in_corrected_not_service() {
    // 500 req/s for 4 s through 4 connections; at request 500 (~1 s) the edge stalls for 1 s.
    let edge = start(EdgeConfig {
        faults: Faults {
            stall_after: Some(500),
            stall: Duration::from_secs(1),
            ..Faults::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = engine(
        &edge.base_url(),
        paths(100),
        Model::Open {
            schedule: Schedule::constant(500.0, Duration::from_secs(4)),
            max_in_flight: 4,
        },
    );
    let f = run_in(dir.path(), cfg);
    let all = &f.summary.targets[0].all;
    assert_eq!(all.count, 2000);
    eprintln!(
        "corrected p99 {:.1} ms, service p99 {:.1} ms, send lag p99 {:?}",
        all.corrected.total.p99, all.service.total.p99, f.summary.rate.send_lag
    );
    assert!(
        all.corrected.total.p99 >= 500.0,
        "corrected p99 {}",
        all.corrected.total.p99
    );
    assert!(
        all.service.total.p99 < 100.0,
        "service p99 {}",
        all.service.total.p99
    );
    // the four stuck requests waited the whole stall: service max sees it
    assert!(all.service.total.max >= 900.0);
    assert!(
        f.summary.rate.fell_behind,
        "the generator was held back and must say so"
    );
}

#[test]
fn open_model_rate_2000_for_5s() {
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    let cfg = engine(
        &edge.base_url(),
        paths(500),
        Model::Open {
            schedule: Schedule::constant(2000.0, Duration::from_secs(5)),
            max_in_flight: 256,
        },
    );
    let f = run_in(dir.path(), cfg);
    let served = edge.stats().requests;
    eprintln!(
        "served {served}, achieved {:.1} req/s, lag {:?}",
        f.summary.rate.achieved_rps, f.summary.rate.send_lag
    );
    assert!((9_900..=10_100).contains(&served), "served {served}");
    assert_eq!(f.summary.targets[0].requests, served);
    assert!((f.summary.rate.achieved_rps - 2000.0).abs() < 20.0);
    // the run lasted about 5 s: not faster (bursting) and not much slower
    assert!(
        f.summary.duration_s >= 4.99 && f.summary.duration_s < 5.5,
        "{}",
        f.summary.duration_s
    );
}

#[test]
fn two_targets_get_the_same_list() {
    let a = start(fast_edge());
    let b = start(EdgeConfig {
        dialect: Dialect::Cloudfront,
        miss_latency: Latency::fixed(Duration::from_millis(20)),
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&a.base_url(), paths(40), closed(4));
    cfg.targets.push(edgeload::engine::Target {
        name: "cf".into(),
        base: b.base_url(),
    });
    cfg.sweep = true;
    let f = run_in(dir.path(), cfg);
    let (sa, sb) = (a.stats_with_paths(), b.stats_with_paths());
    assert_eq!(sa.requests, 40);
    assert_eq!(sb.requests, 40);
    assert_eq!(sa.paths, sb.paths);
    assert!(
        sa.paths.unwrap().values().all(|&n| n == 1),
        "a sweep requests each URL once"
    );
    let cf = f.summary.target("cf").unwrap();
    assert_eq!(cf.class("miss").unwrap().count, 40);
    assert!(cf.class("miss").unwrap().service.total.min >= 20.0);
    assert_eq!(cf.pops.keys().collect::<Vec<_>>(), ["FRA56-P1"]);
}

/// Latency per POP, against an edge whose paths land on two POPs and whose AMS adds 200 ms:
/// each POP's counts are the edge's, AMS's latency is its own, a per-POP threshold fails on AMS
/// alone, and `report --by pop` shows the same split from the results directory.
#[test]
fn per_pop_latency_thresholds_and_report() {
    let edge = start(EdgeConfig {
        pop: "FRA,AMS".into(),
        pop_delay: vec![("AMS".into(), Duration::from_millis(200))],
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let urls = paths(60);
    let ams = (0..60)
        .filter(|i| edgeload::edge::pop_of_path("FRA,AMS", &format!("/img/{i}.jpg")) == "AMS")
        .count() as u64;
    assert!(ams > 10 && ams < 50, "{ams} of 60 paths on AMS");
    let mut cfg = engine(&edge.base_url(), urls, closed(4));
    cfg.requests = Some(180);
    let s = run_in(dir.path(), cfg).summary;
    let t = &s.targets[0];
    let (fra, am) = (&t.pop_summaries["FRA"], &t.pop_summaries["AMS"]);
    assert_eq!((am.requests, fra.requests), (3 * ams, 180 - 3 * ams));
    assert!(am.all.corrected.total.min >= 200.0, "{:?}", am.all);
    // (p90, not max: with the whole suite running on 2 cores, one FRA request in ~100 was once
    // held 200 ms by the machine itself)
    assert!(fra.all.corrected.total.p90 < 50.0, "{:?}", fra.all);
    assert_eq!(am.hit_ratio, Some(2.0 / 3.0));
    let judge = |expr: &str| -> Vec<(String, bool)> {
        let th: edgeload::threshold::Threshold = expr.parse().unwrap();
        (th.evaluate(&s).into_iter())
            .map(|r| (r.target, r.passed))
            .collect()
    };
    // every POP on its own: the target's p99 over both would hide nothing here, but the
    // promise is per POP
    assert_eq!(
        judge("@*:p99<100ms"),
        [
            ("edge@AMS".to_string(), false),
            ("edge@FRA".to_string(), true)
        ]
    );
    assert_eq!(
        judge("edge@FRA:miss.p99<100ms"),
        [("edge@FRA".to_string(), true)]
    );
    assert_eq!(
        judge("@LHR:hit_ratio>=0.5"),
        [("edge@LHR".to_string(), false)]
    );
    assert!(
        "@FRA;x:p99<1ms"
            .parse::<edgeload::threshold::Threshold>()
            .is_err()
    );
    // the report, from the results directory
    let (runs, _) = edgeload::report::load_all(&[dir.path().to_path_buf()]).unwrap();
    let by: edgeload::report::model::By = "pop".parse().unwrap();
    let groups = edgeload::report::model::groups(&runs, by);
    let g = |p: &str| {
        groups
            .iter()
            .find(|g| g.key.pop.as_deref() == Some(p))
            .unwrap()
    };
    assert_eq!(
        (g("AMS").requests, g("FRA").requests),
        (3 * ams, 180 - 3 * ams)
    );
    let p50 = |p: &str| g(p).stats(edgeload::measure::Metric::Total).p50;
    assert!(p50("AMS") >= 200.0 && p50("FRA") < 200.0);
    // the report's table by POP and class: each POP's classes once, under its own total
    let out = dir.path().join("report");
    let opts = edgeload::report::ReportOptions {
        out: out.clone(),
        by: "pop,class".parse().unwrap(),
        plots: false,
        cutover: 0.8,
        time: Default::default(),
        marks: Vec::new(),
    };
    let r = edgeload::report::build(&runs, None, Vec::new(), &opts).unwrap();
    // the readiness block names the POP with the lower hit ratio, as the groups have it
    let (a, f) = (g("AMS").hit_ratio().unwrap(), g("FRA").hit_ratio().unwrap());
    let want = if a < f {
        Some("AMS")
    } else if f < a {
        Some("FRA")
    } else {
        None
    };
    assert_eq!(
        r.readiness.targets[0]
            .worst_pop
            .as_ref()
            .map(|p| p.name.as_str()),
        want,
        "AMS {a} FRA {f}"
    );
    // (after the readiness lines, the table)
    let labels: Vec<&str> = (r
        .text
        .lines()
        .skip_while(|l| !l.starts_with("group"))
        .skip(1))
    .take_while(|l| !l.trim().is_empty())
    .map(|l| l.split("  ").next().unwrap_or("").trim())
    .collect();
    assert_eq!(
        labels,
        [
            "AMS / hit",
            "AMS / miss",
            "AMS / all",
            "FRA / hit",
            "FRA / miss",
            "FRA / all",
            "TOTAL"
        ],
        "{}",
        r.text
    );
}
