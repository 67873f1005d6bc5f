//! HTTP/2 by choice (`--http2`): over TLS (ALPN h2) and over plain TCP (prior knowledge)
//! against the embedded edge, whose own counts say how many connections came and which
//! protocol every request used; many streams on one connection; faults the edge injected
//! counted as it counted them; Debian's nginx over TLS with http2, and without it (refused).

use std::time::Duration;

use edgeload::edge::{EdgeConfig, Faults, Latency};

use crate::common::*;
use crate::tls::{Nginx, https_edge, trust};

/// Exactly the connections asked for, spread over the threads, every request over HTTP/2, and
/// the edge's bytes, hits and misses: over TLS and over plain TCP. The report shows each run's
/// protocol and connections, and its merged summary adds them.
#[test]
fn http2_uses_exactly_the_connections_asked_for() {
    let runs = tempfile::tempdir().unwrap();
    for tls in [true, false] {
        let edge = if tls {
            https_edge(&["localhost"], "127.0.0.1:0".parse().unwrap())
        } else {
            start(fast_edge())
        };
        let dir = tempfile::tempdir().unwrap();
        let base = if tls {
            format!("https://localhost:{}", edge.addr.port())
        } else {
            edge.base_url()
        };
        let mut cfg = engine(&base, paths(50), closed(24));
        cfg.requests = Some(600);
        cfg.threads = 2;
        cfg.client.http2 = Some(3);
        if tls {
            cfg.client.tls = trust(dir.path(), edge.cert_pem().unwrap());
        }
        let t = run_in(&runs.path().join(format!("tls-{tls}")), cfg)
            .summary
            .targets[0]
            .clone();
        let truth = edge.stats();
        assert_eq!((t.requests, t.errors), (600, 0), "tls {tls}: {t:?}");
        assert_eq!((truth.requests, truth.h2_requests), (600, 600));
        assert_eq!(truth.connections, 3, "tls {tls}");
        let c = &t.connections;
        assert_eq!((c.opened, c.reused), (3, 597), "{c:?}");
        assert_eq!(c.protocols.get("HTTP/2"), Some(&3), "{c:?}");
        assert_eq!(c.tls_handshakes, if tls { 3 } else { 0 }, "{c:?}");
        // a thread looks "localhost" up until it knows its addresses (its first connects, at
        // once, may each look); an IP address is no lookup
        let lookups = if tls { 2..=3 } else { 0..=0 };
        assert!(lookups.contains(&c.dns.count), "{c:?}");
        let rows = edgeload::results::timeline::read(
            &std::fs::read(runs.path().join(format!("tls-{tls}/timeline.csv"))).unwrap(),
        )
        .unwrap();
        let sum = |f: fn(&edgeload::results::timeline::Row) -> u64| rows.iter().map(f).sum::<u64>();
        assert_eq!((sum(|r| r.connections), sum(|r| r.reused)), (3, 597));
        assert_eq!(t.bytes, truth.bytes);
        let class = |k: &str| {
            t.classes
                .iter()
                .find(|c| c.class == k)
                .map_or(0, |c| c.count)
        };
        assert_eq!((class("hit"), class("miss")), (truth.hits, truth.misses));
    }
    let (loaded, _) = edgeload::report::load_all(&[runs.path().to_path_buf()]).unwrap();
    let out = runs.path().join("report");
    let opts = edgeload::report::ReportOptions {
        out: out.clone(),
        by: "target,class".parse().unwrap(),
        plots: false,
        cutover: 0.8,
        time: Default::default(),
        marks: Vec::new(),
    };
    let r = edgeload::report::build(&loaded, None, Vec::new(), &opts).unwrap();
    assert!(r.markdown.contains("## Connections"), "{}", r.markdown);
    let rows: Vec<&str> = (r.markdown.lines())
        .filter(|l| l.contains("| HTTP/2 (3) | 3 | 597 |"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", r.markdown);
    // (a thread's second connection may resume its first one's session)
    assert!(
        rows.iter()
            .any(|l| l.contains("| 3 (") && l.contains(" resumed) | TLSv1\\_3 TLS13\\_")),
        "{rows:?}"
    );
    let merged = edgeload::results::summary::Summary::read(&out.join("summary.json")).unwrap();
    let c = &merged.targets[0].connections;
    assert_eq!((c.opened, c.tls_handshakes), (6, 3), "{c:?}");
    assert_eq!(c.protocols.get("HTTP/2"), Some(&6), "{c:?}");
}

/// Streams run at once on one connection: 32 requests in flight on a single connection to an
/// edge that takes 100 ms for each finish in about 100 ms, not 32 x 100 ms; and latency is
/// measured per stream (never under the edge's 100 ms).
#[test]
fn streams_of_one_connection_run_at_once_and_each_is_timed() {
    let edge = delayed_edge(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(64), closed(32));
    cfg.requests = Some(128);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    let t = run_in(dir.path(), cfg).summary.targets[0].clone();
    assert_eq!((t.requests, t.errors), (128, 0), "{t:?}");
    assert_eq!(edge.stats().connections, 1);
    assert_eq!(t.connections.opened, 1);
    let all = &t.all.corrected.total;
    assert!(all.min >= 100.0, "{all:?}");
    // four rounds of 32: with one stream at a time the last would wait 3.2 s
    assert!(all.max < 400.0, "{all:?}");
}

/// A server that allows 4 streams a connection: 16 workers on one connection take turns for
/// them, and the wait is the generator's, not the target's: every request's latency is the
/// edge's 100 ms, not up to 4 x 100 ms of queueing inside the client.
#[test]
fn waiting_for_a_stream_the_server_allows_is_not_the_targets_latency() {
    let edge = start(EdgeConfig {
        h2_streams: 4,
        faults: Faults {
            extra_delay: Duration::from_millis(100),
            ..Default::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(16), closed(16));
    cfg.requests = Some(48);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    let t = run_in(dir.path(), cfg).summary.targets[0].clone();
    assert_eq!((t.requests, t.errors), (48, 0), "{t:?}");
    assert_eq!(edge.stats().connections, 1);
    let all = &t.all.corrected.total;
    assert!(all.min >= 100.0 && all.max < 200.0, "{all:?}");
}

/// A connection that stops answering is given up: requests that time out with nothing
/// answered on their connection since they were sent make the next request open a new one
/// (HTTP/1.1 drops such a connection with its request).
#[test]
fn a_connection_that_stops_answering_is_replaced() {
    let edge = start(EdgeConfig {
        faults: Faults {
            stall_after: Some(10),
            stall: Duration::from_millis(600),
            ..Default::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(10), closed(2));
    cfg.requests = Some(40);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    cfg.client.timeout = Duration::from_millis(150);
    let t = run_in(dir.path(), cfg).summary.targets[0].clone();
    let timeouts = t.errors_by_kind.get("timeout").copied().unwrap_or(0);
    assert!(timeouts >= 1, "{t:?}");
    assert!(t.connections.opened >= 2, "{:?}", t.connections);
    assert_eq!(edge.stats().connections, t.connections.opened);
    // and once the stall is over the requests are answered again
    assert!(t.requests - t.errors >= 20, "{t:?}");
}

/// Faults over HTTP/2: a reset stream (the edge cuts the body) is a `reset`, a 503 an `http`
/// error, each as many as the edge injected; the connection outlives its streams' resets.
/// A stalled edge: requests end as timeouts at the deadline.
#[test]
fn faults_over_http2_are_counted_as_the_edge_injected_them() {
    let edge = start(EdgeConfig {
        faults: Faults {
            reset_rate: 0.1,
            error_rate: 0.1,
            ..Default::default()
        },
        ..fast_edge()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(40), closed(8));
    cfg.requests = Some(400);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    cfg.client.retries = 0;
    let t = run_in(&dir.path().join("a"), cfg).summary.targets[0].clone();
    let truth = edge.stats();
    assert_eq!(t.requests, 400);
    assert!(
        truth.resets_injected > 10 && truth.errors_injected > 10,
        "{truth:?}"
    );
    let kind = |k: &str| t.errors_by_kind.get(k).copied().unwrap_or(0);
    assert_eq!(kind("reset"), truth.resets_injected, "{t:?}");
    assert_eq!(t.status_codes.get("503"), Some(&truth.errors_injected));
    assert_eq!(truth.connections, 1, "a stream's reset kept the connection");

    let slow = start(EdgeConfig {
        hit_latency: Latency::fixed(Duration::from_millis(600)),
        miss_latency: Latency::fixed(Duration::from_millis(600)),
        ..EdgeConfig::default()
    });
    let mut cfg = engine(&slow.base_url(), paths(10), closed(4));
    cfg.requests = Some(8);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    cfg.client.timeout = Duration::from_millis(150);
    let t = run_in(&dir.path().join("b"), cfg).summary.targets[0].clone();
    assert_eq!(t.errors_by_kind.get("timeout"), Some(&8), "{t:?}");
    let e = &t.all.service.total;
    // (the histogram's resolution at 150 ms is 0.128 ms)
    assert!(e.min >= 149.8 && e.max < 200.0, "{e:?}");
}

/// Debian's nginx with `http2` on its TLS listener: every request over HTTP/2 as nginx's log
/// says, with the files' bytes; without `http2` nginx does not agree to h2 by ALPN, and that is
/// a `tls` error with its reason, not an HTTP/1.1 run under an HTTP/2 label.
#[test]
fn a_real_nginx_over_tls_and_http2() {
    let nginx = Nginx::start(true);
    let out = tempfile::tempdir().unwrap();
    let base = format!("https://localhost:{}", nginx.port);
    let mut cfg = engine(&base, paths(10), closed(16));
    cfg.requests = Some(200);
    cfg.threads = 2;
    cfg.client.http2 = Some(2);
    cfg.client.tls = trust(out.path(), &nginx.cert_pem);
    let t = run_in(&out.path().join("a"), cfg).summary.targets[0].clone();
    wait_for("nginx's access log", || {
        nginx.logged("HTTP/2.0\" 200 ") >= 200
    });
    assert_eq!((t.requests, t.errors), (200, 0), "{t:?}");
    assert_eq!(t.bytes, 20 * nginx.sizes);
    assert_eq!(t.connections.protocols.get("HTTP/2"), Some(&2));
    assert_eq!(nginx.logged("HTTP/2.0\" 200 "), 200);
    drop(nginx);

    let h1_only = Nginx::start(false);
    let base = format!("https://localhost:{}", h1_only.port);
    let mut cfg = engine(&base, paths(10), closed(2));
    cfg.requests = Some(4);
    cfg.threads = 1;
    cfg.client.http2 = Some(1);
    cfg.client.tls = trust(out.path(), &h1_only.cert_pem);
    let s = run_in(&out.path().join("b"), cfg).summary;
    assert_eq!(s.targets[0].errors_by_kind.get("tls"), Some(&4), "{s:?}");
    assert!(
        s.tls_errors.iter().any(|e| e.contains("HTTP/2")),
        "{:?}",
        s.tls_errors
    );
    assert_eq!(h1_only.logged("\" 200 "), 0);
}

/// The flags: `--connections` without `--http2`, with --reqwest or --no-keepalive, and fewer
/// connections than the threads asked for are refused; a scenario's `[http]` gives the same.
#[test]
fn http2_flags_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("u.txt"), "/a.jpg\n").unwrap();
    let run = |extra: &[&str]| {
        let (code, e) = run_flags(dir.path(), "http://127.0.0.1:9", extra);
        assert_eq!(code, Some(2), "{extra:?}: {e}");
        e
    };
    assert!(run(&["--connections", "4"]).contains("add --http2"));
    assert!(run(&["--http2", "--reqwest"]).contains("built-in client"));
    assert!(run(&["--http2", "--no-keepalive"]).contains("--no-keepalive"));
    assert!(run(&["--http2", "--connections", "1", "--threads", "2"]).contains("each thread"));
    assert!(run(&["--http2", "--connections", "0"]).contains("at least one"));
    let e = run(&["--http2", "-H", "Connection: keep-alive"]);
    assert!(e.contains("HTTP/1.1's own"), "{e}");
    let e = run(&["--http2", "--connections", "8", "-c", "4", "--threads", "1"]);
    assert!(e.contains("more than the requests in flight"), "{e}");
    std::fs::write(dir.path().join("s.toml"), "[http]\nconnections = 0\n").unwrap();
    let e = run(&["--scenario", "s.toml"]);
    assert!(e.contains("s.toml") && e.contains("line 2"), "{e}");
}
