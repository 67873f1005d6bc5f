//! Real caches that Debian ships, each in front of the embedded edge as a counting origin
//! (dialect `origin`: no cache header of its own): Varnish saying "HIT from <host>" the way
//! Squid does, nginx `proxy_cache` with `$upstream_cache_status`, Apache Traffic Server with
//! xdebug's `X-Cache` and with its `Via` codes. edgeload's hit and miss counts must equal the
//! cache's own statistics and the origin's count of requests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use edgeload::edge::{Dialect, EdgeConfig, EdgeHandle};
use edgeload::results::summary::TargetSummary;

use crate::common::*;

fn dir_of_configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/caches")
}

/// The config file `name` of tests/caches with its placeholders filled in.
fn config(name: &str, fill: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(dir_of_configs().join(name)).unwrap();
    for (k, v) in fill {
        text = text.replace(k, v);
    }
    text
}

fn origin() -> EdgeHandle {
    start(EdgeConfig {
        dialect: Dialect::Origin,
        ..fast_edge()
    })
}

/// `n` distinct images requested once (the misses), then, once `settle` has seen the cache
/// store them, twice more (the hits), in order, with `headers`. Every response must be
/// classified and most of the repeats must be hits: (hits, misses) over all of them.
fn run_through(
    base: &str,
    first: usize,
    n: usize,
    headers: &[(&str, &str)],
    settle: impl Fn(),
) -> (u64, u64) {
    let mut total = (0, 0);
    for (pass, requests) in [(1, n), (2, 2 * n)] {
        if pass == 2 {
            settle();
        }
        let dir = tempfile::tempdir().unwrap();
        let urls = std::sync::Arc::new(edgeload::urls::Paths::from_paths(
            (first..first + n).map(|i| format!("/img/{i}.jpg")),
        ));
        let mut cfg = engine(base, urls, closed(2));
        cfg.requests = Some(requests as u64);
        cfg.client.headers = (headers.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = run_in(dir.path(), cfg).summary;
        let t = &s.targets[0];
        assert_eq!((t.requests, t.errors), (requests as u64, 0), "{t:?}");
        assert_eq!(
            t.unknown_share,
            Some(0.0),
            "every response classified (headers seen on the others: {:?}): {t:?}",
            s.unknown_headers
        );
        let (hits, misses) = (count(t, "hit"), count(t, "miss"));
        assert_eq!(hits + misses, t.requests, "{t:?}");
        total = (total.0 + hits, total.1 + misses);
    }
    assert!(
        total.1 >= n as u64 && total.0 >= 2 * n as u64 - 5,
        "{total:?}"
    );
    total
}

fn count(t: &TargetSummary, class: &str) -> u64 {
    t.class(class).map_or(0, |c| c.count)
}

/// A child process killed and reaped when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Varnish {
    _child: Killed,
    workdir: tempfile::TempDir,
    pub port: u16,
}

impl Varnish {
    /// varnishd with tests/caches/`vcl` in front of `origin_port`.
    pub fn start(vcl: &str, origin_port: u16) -> Varnish {
        let workdir = tempfile::tempdir().unwrap();
        let vcl_path = workdir.path().join("test.vcl");
        let origin_port = origin_port.to_string();
        std::fs::write(&vcl_path, config(vcl, &[("ORIGIN_PORT", &origin_port)])).unwrap();
        let port = free_port();
        let child = Command::new("varnishd")
            .args(["-F", "-j", "none", "-n"])
            .arg(workdir.path().join("n"))
            .args(["-a", &format!("127.0.0.1:{port}"), "-f"])
            .arg(&vcl_path)
            .args(["-s", "malloc,64m", "-p", "default_ttl=3600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("varnishd (Debian package varnish; scripts/test.sh installs it)");
        let v = Varnish {
            _child: Killed(child),
            workdir,
            port,
        };
        wait_for("varnish to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        v
    }

    pub fn counter(&self, name: &str) -> u64 {
        let o = Command::new("varnishstat")
            .args(["-1", "-j", "-n"])
            .arg(self.workdir.path().join("n"))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // Varnish 6.5+ nests counters under "counters"
        let c = v.get("counters").unwrap_or(&v);
        c[name]["value"]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in varnishstat"))
    }
}

#[test]
fn varnish_saying_hit_from_host_as_squid_does() {
    let origin = origin();
    let varnish = Varnish::start("squid-style.vcl", origin.addr.port());
    let base = format!("http://127.0.0.1:{}", varnish.port);
    let (hits, misses) = run_through(&base, 0, 60, &[], || {});
    assert_eq!(hits, varnish.counter("MAIN.cache_hit"));
    assert_eq!(misses, varnish.counter("MAIN.cache_miss"));
    assert_eq!(misses, origin.stats().requests);
}

#[test]
fn nginx_proxy_cache_with_upstream_cache_status() {
    let origin = origin();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap();
    std::fs::create_dir_all(work.path().join("tmp")).unwrap();
    let port = free_port();
    let conf = work.path().join("nginx.conf");
    let (port_s, origin_s) = (port.to_string(), origin.addr.port().to_string());
    let text = config(
        "nginx.conf",
        &[("DIR", dir), ("ORIGIN_PORT", &origin_s), ("PORT", &port_s)],
    );
    std::fs::write(&conf, text).unwrap();
    let _nginx = Killed(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .args(["-p", dir])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx-light; scripts/test.sh installs it)"),
    );
    wait_for("nginx to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (hits, misses) = run_through(&format!("http://127.0.0.1:{port}"), 0, 60, &[], || {});
    assert_eq!(misses, origin.stats().requests);
    // nginx's own record: its access log, one $upstream_cache_status per request (written as
    // each request ends, so it may trail the last response by a moment)
    let log = work.path().join("access.log");
    let tally = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let n = |w: &str| text.lines().filter(|l| l.starts_with(w)).count() as u64;
        (n("HIT "), n("MISS "), text.lines().count() as u64)
    };
    wait_for("nginx's access log", || tally().2 == 180);
    assert_eq!(tally(), (hits, misses, 180));
}

struct TrafficServer {
    _child: Killed,
    _dir: tempfile::TempDir,
    port: u16,
}

impl TrafficServer {
    fn start(origin_port: u16) -> TrafficServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["etc", "log", "run", "cache", "var"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // ATS does not create its cache file
        std::fs::File::create(d.join("cache/cache.db"))
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let port = free_port();
        let (port_s, origin_s) = (port.to_string(), origin_port.to_string());
        let fill = [
            ("DIR", d.to_str().unwrap()),
            ("ORIGIN_PORT", origin_s.as_str()),
            ("PORT", port_s.as_str()),
        ];
        std::fs::write(d.join("runroot.yaml"), config("ats/runroot.yaml", &fill)).unwrap();
        for f in [
            "records.config",
            "storage.config",
            "ip_allow.yaml",
            "remap.config",
            "plugin.config",
        ] {
            std::fs::write(d.join("etc").join(f), config(&format!("ats/{f}"), &fill)).unwrap();
        }
        let child = Command::new("traffic_server")
            .env("TS_RUNROOT", d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("traffic_server (Debian package trafficserver; scripts/test.sh installs it)");
        let ts = TrafficServer {
            _child: Killed(child),
            _dir: dir,
            port,
        };
        // ATS itself answering, not only a port open (it keeps running when it cannot bind)
        wait_for("traffic server's /_stats", || {
            get(port, "/_stats").is_some_and(|(s, b)| s == 200 && b.contains("proxy.process"))
        });
        ts
    }

    /// Objects written to the cache so far.
    fn writes(&self) -> u64 {
        self.stat("proxy.process.http.cache_writes")
    }

    fn stat(&self, name: &str) -> u64 {
        let Some((200, body)) = get(self.port, "/_stats") else {
            return 0;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["global"][name]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// (fresh hits, cold misses) from the cache's own statistics
    fn counters(&self) -> (u64, u64) {
        let Some((200, body)) = get(self.port, "/_stats") else {
            return (u64::MAX, u64::MAX);
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let n = |k: &str| {
            v["global"][k]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX)
        };
        (
            n("proxy.process.http.cache_hit_fresh"),
            n("proxy.process.http.cache_miss_cold"),
        )
    }
}

#[test]
fn apache_traffic_server_by_xdebug_and_by_via() {
    let origin = origin();
    let ats = TrafficServer::start(origin.addr.port());
    let base = format!("http://127.0.0.1:{}", ats.port);
    // asked for X-Cache (xdebug answers hit-fresh / miss), then on other images with no
    // header asked for: the Via codes ([cHs f ], [cMsSfW]) are all there is
    // the hits are asked for once Traffic Server has written the objects (it writes after
    // answering; until then a repeat is one more miss)
    let ats = &ats;
    let written = |n: u64| move || wait_for("traffic server's cache writes", || ats.writes() >= n);
    let asked = run_through(&base, 0, 40, &[("X-Debug", "X-Cache")], written(40));
    let via = run_through(&base, 1000, 40, &[], written(80));
    let ours = (asked.0 + via.0, asked.1 + via.1);
    assert_eq!(ours.1, origin.stats().requests);
    // the statistics are synced every 100 ms: give them up to 10 s to agree
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ats.counters() != ours && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(ats.counters(), ours, "traffic server's (hits, misses)");
}
