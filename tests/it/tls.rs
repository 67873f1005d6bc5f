//! HTTPS through the built-in client against the embedded edge serving TLS (a certificate made
//! at start): trust by --cacert, a wrong CA failing as `tls`, one handshake per connection and
//! resumption as the edge counts them, pinning to two loopback addresses under one host name.

use std::path::Path;

use edgeload::edge::tls::EdgeTls;
use edgeload::edge::{EdgeConfig, EdgeHandle};
use edgeload::engine::h1::Pin;
use edgeload::engine::tls::TlsOptions;

use crate::common::*;

fn https_edge(names: &[&str], addr: std::net::SocketAddr) -> EdgeHandle {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    edgeload::edge::start(
        EdgeConfig {
            tls: Some(EdgeTls::generate(&names).unwrap()),
            ..fast_edge()
        },
        addr,
        1,
    )
    .unwrap()
}

fn trust(dir: &Path, pem: &str) -> TlsOptions {
    let f = dir.join(format!(
        "ca-{}.pem",
        pem.len() ^ pem.as_bytes()[40] as usize
    ));
    std::fs::write(&f, pem).unwrap();
    TlsOptions {
        cacert: vec![f],
        ..TlsOptions::default()
    }
}

#[test]
fn https_requests_with_keepalive_and_resumption_as_the_edge_counts_them() {
    let edge = https_edge(&["localhost"], "127.0.0.1:0".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    // kept alive: one connection (one handshake) per worker
    let mut cfg = engine(&edge.base_url(), paths(20), closed(2));
    cfg.requests = Some(100);
    cfg.client.tls = trust(dir.path(), edge.cert_pem().unwrap());
    let t = run_in(&dir.path().join("a"), cfg).summary.targets[0].clone();
    assert_eq!((t.requests, t.errors), (100, 0), "{t:?}");
    assert_eq!(edge.stats().requests, 100);
    let c = &t.connections;
    assert_eq!(c.tls_handshakes, edge.stats().tls_handshakes, "{c:?}");
    assert_eq!(c.opened + c.reused, 100, "{c:?}");
    assert!(c.opened <= 4, "{c:?}");
    // a new connection per request: a handshake each, the later ones resumed
    for resume in [true, false] {
        edge.reset();
        let mut cfg = engine(&edge.base_url(), paths(20), closed(1));
        cfg.requests = Some(30);
        cfg.client.keepalive = false;
        cfg.client.tls = TlsOptions {
            resume,
            ..trust(dir.path(), edge.cert_pem().unwrap())
        };
        let t = run_in(&dir.path().join(format!("b{resume}")), cfg)
            .summary
            .targets[0]
            .clone();
        let truth = edge.stats();
        assert_eq!((t.requests, t.errors), (30, 0), "{t:?}");
        let c = &t.connections;
        assert_eq!(
            (c.opened, c.tls_handshakes, truth.tls_handshakes),
            (30, 30, 30)
        );
        assert_eq!(c.tls_resumed, truth.tls_resumed, "{c:?} {truth:?}");
        if resume {
            assert!(c.tls_resumed >= 25, "{c:?}");
        } else {
            assert_eq!(c.tls_resumed, 0);
        }
    }
}

#[test]
fn a_certificate_from_another_ca_is_a_tls_error() {
    let edge = https_edge(&["localhost"], "127.0.0.1:0".parse().unwrap());
    let other = EdgeTls::generate(&["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(5), closed(1));
    cfg.requests = Some(5);
    cfg.client.tls = trust(dir.path(), &other.cert_pem);
    let t = run_in(dir.path(), cfg).summary.targets[0].clone();
    assert_eq!(t.errors_by_kind.get("tls"), Some(&5), "{t:?}");
    assert_eq!(edge.stats().requests, 0);
}

/// Two edges on 127.0.0.2 and 127.0.0.3, one port, one host name: `--resolve` spreads new
/// connections over both, and each edge's own count says where the requests went.
#[test]
fn pinned_addresses_share_the_connections() {
    let a = https_edge(&["cdn.test"], "127.0.0.2:0".parse().unwrap());
    let port = a.addr.port();
    let b = https_edge(&["cdn.test"], format!("127.0.0.3:{port}").parse().unwrap());
    // one certificate each: trust both
    let dir = tempfile::tempdir().unwrap();
    let both = format!("{}{}", a.cert_pem().unwrap(), b.cert_pem().unwrap());
    let mut cfg = engine(&format!("https://cdn.test:{port}"), paths(10), closed(1));
    cfg.requests = Some(40);
    cfg.client.keepalive = false;
    cfg.client.tls = trust(dir.path(), &both);
    cfg.client.pins = vec![Pin {
        host: "cdn.test".into(),
        port,
        addrs: vec![a.addr, b.addr],
    }];
    let t = run_in(dir.path(), cfg).summary.targets[0].clone();
    assert_eq!((t.requests, t.errors), (40, 0), "{t:?}");
    assert_eq!((a.stats().requests, b.stats().requests), (20, 20));
    let by = &t.connections.by_address;
    assert_eq!(by.get(&a.addr.to_string()), Some(&20), "{by:?}");
    assert_eq!(by.get(&b.addr.to_string()), Some(&20), "{by:?}");
}
