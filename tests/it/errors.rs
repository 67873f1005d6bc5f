//! Error kinds, against the edge's fault injection and a closed port.

use edgeload::edge::{Dialect, EdgeConfig, Faults};

use crate::common::*;

#[test]
fn injected_503s_are_http_5xx_errors() {
    let edge = start(EdgeConfig {
        dialect: Dialect::Cloudfront,
        faults: Faults {
            error_rate: 0.3,
            ..Faults::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(20), closed(4));
    cfg.requests = Some(400);
    let f = run_in(dir.path(), cfg);
    let truth = edge.stats();
    let t = &f.summary.targets[0];
    assert!(
        truth.errors_injected > 60 && truth.errors_injected < 180,
        "{truth:?}"
    );
    assert_eq!(
        t.errors_by_kind.get("http_5xx").copied(),
        Some(truth.errors_injected)
    );
    assert_eq!(
        t.status_codes.get("503").copied(),
        Some(truth.errors_injected)
    );
    // CloudFront says "Error from cloudfront": the cache class is error, outside the hit ratio
    assert_eq!(
        t.class("error").map(|c| c.count),
        Some(truth.errors_injected)
    );
    let hits = t.class("hit").map(|c| c.count).unwrap_or(0);
    assert_eq!(hits, truth.hits);
    let ratio = t.hit_ratio.unwrap();
    assert!((ratio - truth.hits as f64 / (truth.hits + truth.misses) as f64).abs() < 1e-12);
}

#[test]
fn resets_mid_body_are_reset_errors() {
    let edge = start(EdgeConfig {
        faults: Faults {
            reset_rate: 1.0,
            ..Faults::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(10), closed(2));
    cfg.requests = Some(30);
    let f = run_in(dir.path(), cfg);
    let t = &f.summary.targets[0];
    assert_eq!(edge.stats().resets_injected, 30);
    assert_eq!(t.errors, 30, "{:?}", t.errors_by_kind);
    assert_eq!(
        t.errors_by_kind.get("reset").copied(),
        Some(30),
        "{:?}",
        t.errors_by_kind
    );
    // the cut is in the body: every response's head arrived (and nothing was resent)
    assert_eq!(t.status_codes.get("200").copied(), Some(30));
    assert_eq!((edge.stats().requests, t.retries), (30, 0));
    // byte for byte: a raw client gets the head and part of the announced body, then the end
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(edge.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET /img/big-1.jpg HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    let head_end = text.find("\r\n\r\n").expect("the head arrived") + 4;
    let length: usize = (text[..head_end].lines())
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .trim()
        .parse()
        .unwrap();
    let body = got.len() - head_end;
    assert!(body > 0 && body < length, "{body} of {length} body bytes");
}

/// A server that closes a reused connection as a request arrives: the request is sent once
/// more on a new connection (as browsers do), and counted; the edge's own count of requests
/// is edgeload's requests plus its retries. `--retries 0` makes them errors instead.
#[test]
fn retries_are_counted_and_can_be_turned_off() {
    for retries in [1u8, 0] {
        let edge = start(EdgeConfig {
            faults: Faults {
                drop_rate: 0.2,
                ..Faults::default()
            },
            ..fast_edge()
        });
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = engine(&edge.base_url(), paths(50), closed(2));
        cfg.client.retries = retries;
        cfg.requests = Some(400);
        let f = run_in(dir.path(), cfg);
        let truth = edge.stats();
        let t = &f.summary.targets[0];
        assert_eq!(t.requests, 400);
        assert!(truth.drops_injected > 40, "{truth:?}");
        assert_eq!(truth.requests, t.requests + t.retries, "{t:?}");
        // each drop is an error unless it was retried (a retry runs on a new connection; a
        // drop there is an error too)
        assert_eq!(truth.drops_injected, t.errors + t.retries, "{t:?}");
        if retries == 0 {
            assert_eq!(t.retries, 0);
        } else {
            assert!(t.retries > 20, "{t:?}");
        }
        // the timeline counts the same retries
        let rows = edgeload::results::timeline::read(
            &std::fs::read(dir.path().join("timeline.csv")).unwrap(),
        )
        .unwrap();
        assert_eq!(rows.iter().map(|r| r.retries).sum::<u64>(), t.retries);
    }
}

#[test]
fn closed_port_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&format!("http://127.0.0.1:{port}"), paths(5), closed(2));
    cfg.requests = Some(10);
    let f = run_in(dir.path(), cfg);
    let t = &f.summary.targets[0];
    assert_eq!(t.requests, 10);
    assert_eq!(
        t.errors_by_kind.get("connect").copied(),
        Some(10),
        "{:?}",
        t.errors_by_kind
    );
    assert_eq!(t.hit_ratio, None);
}

#[test]
fn slow_body_hits_the_timeout() {
    let edge = start(EdgeConfig {
        faults: Faults {
            slow_body: Some(std::time::Duration::from_millis(200)),
            ..Faults::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    // a path whose object is larger than one 16 KB chunk, so the body pauses
    let big = (0..1000)
        .map(|i| format!("/img/{i}.jpg"))
        .find(|p| edgeload::edge::objects::object_size(p) > 40_000)
        .unwrap();
    let urls = std::sync::Arc::new(edgeload::urls::Paths::from_paths([big]));
    let mut cfg = engine(&edge.base_url(), urls, closed(1));
    cfg.requests = Some(2);
    cfg.client.timeout = std::time::Duration::from_millis(100);
    let f = run_in(dir.path(), cfg);
    let t = &f.summary.targets[0];
    assert_eq!(
        t.errors_by_kind.get("timeout").copied(),
        Some(2),
        "{:?}",
        t.errors_by_kind
    );
    // headers arrived before the timeout: TTFB is recorded for the failed requests
    assert_eq!(t.all.service.ttfb.count, 2);
    // a timed-out request ends at its deadline, whatever the watchdog's tick (HDR: 3 digits)
    let total = &t.all.service.total;
    assert!(
        (99.9..=100.1).contains(&total.min) && (99.9..=100.1).contains(&total.max),
        "{total:?}"
    );
}

/// Runs `cfg` (2 threads) with its own control, stops it once the edge has seen `n` requests,
/// and checks that the run ended within `limit` of the stop, marked interrupted.
fn stop_after(
    edge: &edgeload::edge::EdgeHandle,
    n: u64,
    dir: &std::path::Path,
    mut cfg: edgeload::engine::EngineConfig,
    limit: std::time::Duration,
) -> edgeload::cmd::execute::Finished {
    use std::time::{Duration, Instant};
    cfg.threads = 2;
    let control = edgeload::engine::Control::default();
    let plan = edgeload::cmd::execute::Plan {
        engine: cfg,
        out: dir.to_path_buf(),
        run_id: "stop-test".into(),
        region: "test-region".into(),
        thresholds: Vec::new(),
        scenario: serde_json::json!({}),
        progress: false,
        metrics: None,
    };
    let c = control.clone();
    let h = std::thread::spawn(move || edgeload::cmd::execute::execute(plan, &c).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while edge.stats().requests < n {
        assert!(Instant::now() < deadline, "requests never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped = Instant::now();
    control.stop();
    let f = h.join().unwrap();
    assert!(
        stopped.elapsed() < limit,
        "stop took {:?}",
        stopped.elapsed()
    );
    assert!(f.summary.interrupted);
    f
}

/// A stop must end a paced run at once, not when each worker's next send comes due (the
/// workers sleep on the thread's timer; the stop wakes them).
#[test]
fn stop_wakes_workers_sleeping_until_their_next_send() {
    use std::time::Duration;
    let edge = start(fast_edge());
    let dir = tempfile::tempdir().unwrap();
    // one request now, the next in 20 s
    let cfg = engine(
        &edge.base_url(),
        paths(4),
        edgeload::engine::Model::Open {
            schedule: edgeload::engine::schedule::Schedule::constant(0.05, Duration::from_secs(60)),
            max_in_flight: 4,
        },
    );
    // a grace period longer than the test: only waking the sleepers ends it in time
    let mut cfg = cfg;
    cfg.grace = Duration::from_secs(30);
    let f = stop_after(&edge, 1, dir.path(), cfg, Duration::from_secs(3));
    assert_eq!(f.summary.targets[0].requests, 1);
    assert_eq!(edge.stats().requests, 1);
}

/// Requests still in flight when the grace period ends are abandoned, counted, not recorded.
#[test]
fn abort_after_grace_abandons_the_requests_in_flight() {
    use std::time::Duration;
    let edge = delayed_edge(Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(8), closed(6));
    cfg.grace = Duration::from_millis(300);
    let f = stop_after(&edge, 6, dir.path(), cfg, Duration::from_secs(5));
    assert_eq!(f.summary.rate.abandoned, 6);
    assert_eq!(f.summary.targets[0].requests, 0);
}
