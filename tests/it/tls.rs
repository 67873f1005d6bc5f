//! HTTPS through the built-in client against the embedded edge serving TLS (a certificate made
//! at start): trust by --cacert, a wrong CA failing as `tls`, one handshake per connection and
//! resumption as the edge counts them, pinning to two loopback addresses under one host name.

use std::path::Path;

use edgeload::edge::tls::EdgeTls;
use edgeload::edge::{EdgeConfig, EdgeHandle};
use edgeload::engine::h1::Pin;
use edgeload::engine::tls::TlsOptions;

use crate::common::*;

/// An https edge on `addr` whose certificate names `names` and the address's IP.
pub(crate) fn https_edge(names: &[&str], addr: std::net::SocketAddr) -> EdgeHandle {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.push(addr.ip().to_string());
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

pub(crate) fn trust(dir: &Path, pem: &str) -> TlsOptions {
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
        // every connection's connect and handshake times, and per interval in the timeline
        assert_eq!((c.connect.count, c.tls_handshake.count), (30, 30), "{c:?}");
        // what was negotiated: TLS 1.3 (rustls on both sides), one suite
        assert_eq!(c.tls.len(), 1, "{c:?}");
        let (params, n) = c.tls.iter().next().unwrap();
        assert!(
            params.starts_with("TLSv1_3 TLS13_") && *n == 30,
            "{params} {n}"
        );
        assert!(c.tls_handshake.min > 0.0, "{c:?}");
        let rows = edgeload::results::timeline::read(
            &std::fs::read(dir.path().join(format!("b{resume}/timeline.csv"))).unwrap(),
        )
        .unwrap();
        assert_eq!(rows.iter().map(|r| r.connections).sum::<u64>(), 30);
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
    let s = run_in(dir.path(), cfg).summary;
    let t = &s.targets[0];
    assert_eq!(t.errors_by_kind.get("tls"), Some(&5), "{t:?}");
    assert_eq!(edge.stats().requests, 0);
    // and why, once
    assert!(
        s.tls_errors.len() == 1 && s.tls_errors[0].contains("certificate"),
        "{:?}",
        s.tls_errors
    );
}

/// Pins and TLS flags that would be ignored are refused: a pin naming no target (a typo, or
/// an IPv6 host written differently), TLS settings with --reqwest.
#[test]
fn pins_and_tls_flags_that_would_be_ignored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("u.txt"), "/a.jpg\n").unwrap();
    let run = |extra: &[&str]| run_flags(dir.path(), "https://cdn.test:8443", extra);
    let (code, e) = run(&["--resolve", "cdn.test:443:127.0.0.1"]);
    assert!(
        code == Some(2) && e.contains("no target has this host and port"),
        "{e}"
    );
    let (code, e) = run(&["--connect-to", "cdn.test:8443:[::1]"]);
    assert!(code == Some(2) && e.contains("--connect-to"), "{e}");
    let (code, e) = run(&["--resolve", "cdn.test:8443:not-an-ip"]);
    assert!(code == Some(2) && e.contains("not an IP address"), "{e}");
    let (code, e) = run(&["--reqwest", "--insecure"]);
    assert!(code == Some(2) && e.contains("built-in client"), "{e}");
    let (code, e) = run(&["--tls-resume", "maybe"]);
    assert!(code == Some(2) && e.contains("on or off"), "{e}");
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

    // the same from a scenario file, through the binary; a bad pin there names its line
    a.reset();
    b.reset();
    let ca = dir.path().join("both.pem");
    std::fs::write(&ca, &both).unwrap();
    std::fs::write(dir.path().join("u.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let scenario = |resolve: &str| {
        std::fs::write(
            dir.path().join("s.toml"),
            format!(
                "[targets]\ncdn = \"https://cdn.test:{port}\"\n\n[http]\nkeepalive = false\n\
                 resolve = [\"{resolve}\"]\n"
            ),
        )
        .unwrap();
        std::process::Command::new(bin())
            .args([
                "run",
                "u.txt",
                "--scenario",
                "s.toml",
                "-n",
                "10",
                "-c",
                "1",
                "-q",
            ])
            .args(["--cacert", ca.to_str().unwrap(), "-o", "out"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = scenario(&format!("cdn.test:{port}:127.0.0.2,127.0.0.3"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!((a.stats().requests, b.stats().requests), (5, 5));
    let o = scenario(&format!("cdn.test:{port}:127.0.0.2,nowhere"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("s.toml") && e.contains("line 6") && e.contains("not an IP address"),
        "{e}"
    );
}

/// Debian's nginx serving ten files (1,000 to 7,300 bytes) over https with a certificate for
/// localhost, HTTP/2 too when `http2`; killed when dropped.
pub(crate) struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
    pub port: u16,
    pub cert_pem: String,
    /// the ten files' bytes together
    pub sizes: u64,
}

impl Nginx {
    pub(crate) fn start(http2: bool) -> Nginx {
        let work = tempfile::tempdir().unwrap();
        let d = work.path();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(d.join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        std::fs::create_dir_all(d.join("www/img")).unwrap();
        let mut sizes = 0u64;
        for i in 0..10u64 {
            let body = vec![b'x'; (1000 + i * 700) as usize];
            sizes += body.len() as u64;
            std::fs::write(d.join(format!("www/img/{i}.jpg")), body).unwrap();
        }
        let port = free_port();
        let dir = d.to_str().unwrap();
        // (Debian 12's nginx 1.22 takes `http2` on the listen line)
        let h2 = if http2 { " http2" } else { "" };
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off; master_process off; worker_processes 1; pid {dir}/nginx.pid;
                 error_log {dir}/error.log; events {{ worker_connections 64; }}
                 http {{ access_log {dir}/access.log; client_body_temp_path {dir};
                   proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir};
                   scgi_temp_path {dir};
                   ssl_protocols TLSv1.2 TLSv1.3;
                   server {{ listen 127.0.0.1:{port} ssl{h2}; ssl_certificate {dir}/cert.pem;
                     ssl_certificate_key {dir}/key.pem; root {dir}/www; }} }}"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("nginx")
            .args(["-c", &format!("{dir}/nginx.conf"), "-p", dir])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx-light; scripts/test.sh installs it)");
        wait_for("nginx to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nginx {
            child,
            dir: work,
            port,
            cert_pem: ck.cert.pem(),
            sizes,
        }
    }

    /// Lines of nginx's access log that contain `pat`.
    pub(crate) fn logged(&self, pat: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(pat)).count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real TLS server: Debian's nginx serving files over https. Every request answered with the
/// file's bytes, nginx's access log counts them, and keep-alive keeps one handshake a worker.
#[test]
fn a_real_nginx_over_tls() {
    let nginx = Nginx::start(false);
    let out = tempfile::tempdir().unwrap();
    let mut cfg = engine(
        &format!("https://localhost:{}", nginx.port),
        paths(10),
        closed(2),
    );
    cfg.requests = Some(100);
    cfg.client.tls = trust(out.path(), &nginx.cert_pem);
    let t = run_in(out.path(), cfg).summary.targets[0].clone();
    // nginx logs a request as it ends, a moment after the client has it all
    wait_for("nginx's access log", || nginx.logged("\" 200 ") >= 100);
    assert_eq!((t.requests, t.errors), (100, 0), "{t:?}");
    assert_eq!(t.status_codes.get("200"), Some(&100));
    assert_eq!(t.bytes, 10 * nginx.sizes);
    let c = &t.connections;
    assert!(c.opened <= 4 && c.tls_handshakes == c.opened, "{c:?}");
    assert_eq!(c.protocols.get("HTTP/1.1"), Some(&c.opened), "{c:?}");
    // what was negotiated, as OpenSSL's s_client would say it
    assert!(
        c.tls.len() == 1 && c.tls.keys().all(|k| k.starts_with("TLSv1_3 TLS13_")),
        "{c:?}"
    );
    assert_eq!(nginx.logged("\" 200 "), 100);
}
