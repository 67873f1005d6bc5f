//! The embedded simulated CDN edge: one POP with an LRU cache in front of a slow origin, real
//! cache headers in a chosen dialect, fault injection, and ground truth at `/_edge/stats`.
//! Runs as `edgeload edge` or in-process (`start`), which tests and `demo` use.

pub mod access_log;
pub mod cache;
pub mod dialect;
pub mod objects;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::urls::mix;
pub use dialect::Dialect;

/// A latency: fixed, or uniform in [lo, hi] (drawn per request from the seed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub lo: Duration,
    pub hi: Duration,
}

impl Latency {
    pub fn fixed(d: Duration) -> Latency {
        Latency { lo: d, hi: d }
    }
    pub fn sample(&self, r: u64) -> Duration {
        if self.hi <= self.lo {
            return self.lo;
        }
        let span = (self.hi - self.lo).as_nanos() as u64;
        self.lo + Duration::from_nanos(r % (span + 1))
    }
}

impl std::str::FromStr for Latency {
    type Err = String;
    /// `5ms` or `80ms..150ms`
    fn from_str(s: &str) -> Result<Latency, String> {
        let p = |x: &str| {
            humantime::parse_duration(x.trim()).map_err(|e| format!("bad latency {s:?}: {e}"))
        };
        match s.split_once("..") {
            Some((a, b)) => {
                let (lo, hi) = (p(a)?, p(b)?);
                if hi < lo {
                    return Err(format!("bad latency {s:?}: upper bound below lower"));
                }
                Ok(Latency { lo, hi })
            }
            None => Ok(Latency::fixed(p(s)?)),
        }
    }
}

/// Faults for tests; all off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Faults {
    /// added to every response
    pub extra_delay: Duration,
    /// when request number N (1-based) arrives, no response leaves for `stall` (all wait)
    pub stall_after: Option<u64>,
    pub stall: Duration,
    /// share of requests answered 503
    pub error_rate: f64,
    /// share of responses whose connection is reset halfway through the body
    pub reset_rate: f64,
    /// share of requests whose connection is closed before any byte of the answer, after the
    /// response time (a server closing a keep-alive connection as the request arrives)
    #[serde(default)]
    pub drop_rate: f64,
    /// slow bodies: pause this long between 16 KB chunks
    pub slow_body: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub dialect: Dialect,
    /// the POP named in the headers; a comma list spreads paths over several POPs (by a hash of
    /// the path, so a path always lands on the same one)
    pub pop: String,
    /// extra time a POP takes on every response it serves (a far or slow POP)
    pub pop_delay: Vec<(String, Duration)>,
    pub capacity_bytes: u64,
    pub capacity_objects: usize,
    pub hit_latency: Latency,
    pub miss_latency: Latency,
    /// a shield (parent) tier with a cache of its own (unbounded): an edge miss it holds is
    /// answered in this time, without an origin fetch
    pub shield: Option<Latency>,
    pub seed: u64,
    pub faults: Faults,
    /// serve https (HTTP/1.1 and h2 by ALPN) with this identity
    pub tls: Option<tls::EdgeTls>,
    /// HTTP/2: streams a connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)
    pub h2_streams: u32,
    /// write an access log here (CloudFront's layout, `access_log::FIELDS`)
    pub access_log: Option<std::path::PathBuf>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            dialect: Dialect::Fastly,
            pop: "FRA".into(),
            pop_delay: Vec::new(),
            capacity_bytes: 1 << 30,
            capacity_objects: usize::MAX,
            hit_latency: Latency::fixed(Duration::from_millis(1)),
            miss_latency: Latency {
                lo: Duration::from_millis(80),
                hi: Duration::from_millis(150),
            },
            shield: None,
            tls: None,
            h2_streams: 256,
            seed: 1,
            faults: Faults::default(),
            access_log: None,
        }
    }
}

/// Ground truth: what the edge served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeStats {
    pub requests: u64,
    pub hits: u64,
    /// edge misses fetched from the origin
    pub misses: u64,
    /// edge misses the shield tier answered from its cache
    #[serde(default)]
    pub shield_hits: u64,
    pub not_modified: u64,
    pub errors_injected: u64,
    pub resets_injected: u64,
    /// requests whose connection was closed with no answer (`drop_rate`)
    #[serde(default)]
    pub drops_injected: u64,
    /// TLS handshakes completed (https), and how many resumed a session
    #[serde(default)]
    pub tls_handshakes: u64,
    #[serde(default)]
    pub tls_resumed: u64,
    /// connections accepted, and requests that came over HTTP/2
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub h2_requests: u64,
    /// body bytes of responses started (a reset response counts what it announced)
    pub bytes: u64,
    pub cached_objects: u64,
    pub cached_bytes: u64,
    pub evictions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<HashMap<String, u64>>,
    /// request header names seen (lowercase) -> count; with `paths`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HashMap<String, u64>>,
    /// request methods seen; with `paths`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<HashMap<String, u64>>,
}

struct State {
    cfg: EdgeConfig,
    epoch: Instant,
    cache: Mutex<cache::Cache>,
    paths: Mutex<HashMap<String, u64>>,
    headers: Mutex<HashMap<String, u64>>,
    methods: Mutex<HashMap<String, u64>>,
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    shield_hits: AtomicU64,
    /// the shield tier's cache, when there is one
    shield: Option<Mutex<cache::Cache>>,
    not_modified: AtomicU64,
    errors: AtomicU64,
    resets: AtomicU64,
    drops: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    connections: AtomicU64,
    h2_requests: AtomicU64,
    bytes: AtomicU64,
    /// ns since epoch until which every response waits (the stall window)
    stall_until: AtomicU64,
    timer: crate::precise::PreciseTimer,
    log: Option<access_log::AccessLog>,
}

impl State {
    fn stats(&self, with_paths: bool) -> EdgeStats {
        // what the stats count is in the log too
        if let Some(l) = &self.log {
            l.flush();
        }
        let (objects, bytes, evictions) = {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            (c.len() as u64, c.bytes(), c.evictions)
        };
        EdgeStats {
            requests: self.requests.load(Ordering::SeqCst),
            hits: self.hits.load(Ordering::SeqCst),
            misses: self.misses.load(Ordering::SeqCst),
            shield_hits: self.shield_hits.load(Ordering::SeqCst),
            not_modified: self.not_modified.load(Ordering::SeqCst),
            errors_injected: self.errors.load(Ordering::SeqCst),
            resets_injected: self.resets.load(Ordering::SeqCst),
            drops_injected: self.drops.load(Ordering::SeqCst),
            tls_handshakes: self.tls_handshakes.load(Ordering::SeqCst),
            tls_resumed: self.tls_resumed.load(Ordering::SeqCst),
            connections: self.connections.load(Ordering::SeqCst),
            h2_requests: self.h2_requests.load(Ordering::SeqCst),
            bytes: self.bytes.load(Ordering::SeqCst),
            cached_objects: objects,
            cached_bytes: bytes,
            evictions,
            paths: with_paths.then(|| self.paths.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            headers: with_paths.then(|| {
                self.headers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            }),
            methods: with_paths.then(|| {
                self.methods
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            }),
        }
    }

    fn reset(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.headers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for a in [
            &self.requests,
            &self.hits,
            &self.misses,
            &self.shield_hits,
            &self.not_modified,
            &self.errors,
            &self.resets,
            &self.drops,
            &self.tls_handshakes,
            &self.tls_resumed,
            &self.connections,
            &self.h2_requests,
            &self.bytes,
        ] {
            a.store(0, Ordering::SeqCst);
        }
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(full(text.to_string()));
    *r.status_mut() = status;
    r
}

const CHUNK: u64 = 16 * 1024;

/// The one error `handle` returns: hyper then closes the connection without an answer.
fn dropped() -> std::io::Error {
    std::io::Error::other("injected drop")
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    let path = req.uri().path();
    if let Some(admin) = path.strip_prefix("/_edge/") {
        return Ok(match (req.method(), admin) {
            (&Method::GET, "stats") => {
                let with_paths = req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "paths=1"));
                let mut r = Response::new(full(
                    serde_json::to_vec(&st.stats(with_paths)).unwrap_or_default(),
                ));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().expect("static"));
                r
            }
            (&Method::POST, "reset") => {
                st.reset();
                plain(StatusCode::OK, "reset\n")
            }
            _ => plain(StatusCode::NOT_FOUND, "unknown admin endpoint\n"),
        });
    }
    *st.methods
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(req.method().to_string())
        .or_insert(0) += 1;
    {
        let mut h = st.headers.lock().unwrap_or_else(|e| e.into_inner());
        for name in req.headers().keys() {
            *h.entry(name.as_str().to_string()).or_insert(0) += 1;
        }
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "GET and HEAD only\n"));
    }
    let key = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if req.version() == hyper::Version::HTTP_2 {
        st.h2_requests.fetch_add(1, Ordering::SeqCst);
    }
    let r = mix(st.cfg.seed ^ mix(n));
    let f = &st.cfg.faults;
    if f.stall_after == Some(n) {
        let until = st.epoch.elapsed() + f.stall;
        st.stall_until
            .store(until.as_nanos() as u64, Ordering::SeqCst);
    }
    *st.paths
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.clone())
        .or_insert(0) += 1;
    let akamai_debug = req
        .headers()
        .get_all("pragma")
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("akamai-x-cache-on")));
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let arrived = Instant::now();
    let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
    let error = f.error_rate > 0.0 && unit(mix(r ^ 0xe)) < f.error_rate;
    let now = Instant::now();
    let cached = if error {
        None
    } else {
        st.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(&key, now)
    };
    let hit = cached.is_some();
    let (hits, age) = cached.unwrap_or((0, 0));
    // an edge miss goes to the shield tier first, when there is one
    let shield_hit = !hit
        && !error
        && (st.shield.as_ref()).is_some_and(|c| {
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            c.lookup(&key, now).is_some()
        });
    let pop = pop_of_path(&st.cfg.pop, &key);
    let pop_delay = (st.cfg.pop_delay.iter())
        .find(|(p, _)| p == pop)
        .map_or(Duration::ZERO, |(_, d)| *d);
    let wait = match (hit, shield_hit, st.cfg.shield) {
        (true, _, _) => st.cfg.hit_latency.sample(r),
        (false, true, Some(l)) => l.sample(r),
        _ => st.cfg.miss_latency.sample(r),
    } + f.extra_delay
        + pop_delay;
    if !wait.is_zero() {
        st.timer.sleep_until(arrived + wait).await;
    }
    // the stall window holds every response, whatever it was doing
    let until = Duration::from_nanos(st.stall_until.load(Ordering::SeqCst));
    if until > st.epoch.elapsed() {
        st.timer.sleep_until(st.epoch + until).await;
    }
    let log = |status: u16, bytes: u64, result: &str, detailed: &str| {
        if let Some(l) = &st.log {
            let host = (req.headers().get("host"))
                .and_then(|h| h.to_str().ok())
                .or(req.uri().host())
                .unwrap_or("");
            l.write(&access_log::Entry {
                at: std::time::SystemTime::now(),
                pop,
                bytes,
                method: req.method().as_str(),
                host,
                target: &key,
                status,
                result,
                detailed,
                taken: arrived.elapsed(),
            });
        }
    };
    if f.drop_rate > 0.0 && unit(mix(r ^ 0xd)) < f.drop_rate {
        st.drops.fetch_add(1, Ordering::SeqCst);
        log(0, 0, "Error", "Error");
        return Err(dropped());
    }
    let size = objects::object_size(&key);
    if !hit && !error {
        st.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(&key, size, Instant::now());
        if !shield_hit && let Some(c) = &st.shield {
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            c.insert(&key, size, Instant::now());
        }
    }
    let served = dialect::Served {
        hit,
        shield_hit,
        error,
        hits,
        age_s: age,
        pop,
        request_no: n,
        akamai_debug,
    };
    let headers = dialect::headers(st.cfg.dialect, &served);
    let mut resp = if error {
        st.errors.fetch_add(1, Ordering::SeqCst);
        plain(StatusCode::SERVICE_UNAVAILABLE, "injected fault\n")
    } else {
        if hit {
            st.hits.fetch_add(1, Ordering::SeqCst);
        } else if shield_hit {
            st.shield_hits.fetch_add(1, Ordering::SeqCst);
        } else {
            st.misses.fetch_add(1, Ordering::SeqCst);
        }
        let etag = objects::etag(&key);
        if inm.as_deref() == Some(etag.as_str()) {
            st.not_modified.fetch_add(1, Ordering::SeqCst);
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.headers_mut().insert("etag", etag.parse().expect("ascii"));
            r
        } else {
            let reset = f.reset_rate > 0.0 && unit(mix(r ^ 0x5)) < f.reset_rate;
            if reset {
                st.resets.fetch_add(1, Ordering::SeqCst);
            }
            if !head {
                st.bytes.fetch_add(size, Ordering::SeqCst);
            }
            let body = if head {
                full(Bytes::new())
            } else if reset || f.slow_body.is_some() {
                streamed(key.clone(), size, reset, f.slow_body)
            } else {
                full(objects::body_slice(&key, 0, size))
            };
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert("content-type", content_type(&key).parse().expect("static"));
            h.insert("content-length", size.into());
            h.insert("etag", etag.parse().expect("ascii"));
            h.insert(
                "cache-control",
                "public, max-age=86400".parse().expect("static"),
            );
            h.insert(
                "last-modified",
                "Tue, 12 Mar 2024 10:00:00 GMT".parse().expect("static"),
            );
            r
        }
    };
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    let status = resp.status().as_u16();
    let (result, detailed) = match (error, hit, shield_hit) {
        (true, _, _) => ("Error", "Error"),
        (_, true, _) => ("Hit", "Hit"),
        (_, _, true) => ("Miss", "OriginShieldHit"),
        _ => ("Miss", "Miss"),
    };
    let bytes = match status {
        _ if head => 0,
        200 => size,
        304 => 0,
        _ => "injected fault\n".len() as u64,
    };
    log(status, bytes, result, detailed);
    Ok(resp)
}

/// The POP of `pops` (a comma list) that serves `path`: the same one every time.
pub fn pop_of_path<'a>(pops: &'a str, path: &str) -> &'a str {
    let n = pops.split(',').count().max(1) as u64;
    let h = path
        .bytes()
        .fold(0x9e37_79b9u64, |h, b| crate::urls::mix(h ^ u64::from(b)));
    let i = (h % n) as usize;
    pops.split(',').nth(i).map_or(pops, str::trim)
}

fn content_type(path: &str) -> &'static str {
    let p = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
    match p.rsplit('.').next() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("gif") => "image/gif",
        _ => "image/jpeg",
    }
}

/// A body sent in 16 KB chunks, optionally slowly, optionally cut off halfway (a reset).
fn streamed(key: String, size: u64, reset: bool, pause: Option<Duration>) -> Body {
    let cut = if reset { size / 2 } else { size };
    let stream = futures_util::stream::unfold(0u64, move |sent| {
        let key = key.clone();
        async move {
            if sent >= cut {
                if reset && sent < size {
                    // the first half goes out before the connection ends: hyper writes what it
                    // buffered when the body is pending (and would drop it on the error)
                    tokio::task::yield_now().await;
                    // an error ends the connection without the rest of the announced body
                    return Some((Err(std::io::Error::other("injected reset")), size));
                }
                return None;
            }
            if let Some(p) = pause
                && sent > 0
            {
                tokio::time::sleep(p).await;
            }
            let end = (sent + CHUNK).min(cut);
            Some((Ok(Frame::data(objects::body_slice(&key, sent, end))), end))
        }
    });
    StreamBody::new(stream).boxed()
}

/// A running edge.
pub struct EdgeHandle {
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EdgeHandle {
    /// The PEM of the certificate an https edge serves (what a client must trust).
    pub fn cert_pem(&self) -> Option<&str> {
        self.state.cfg.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// http://ADDR, or https://ADDR for an https edge (its certificate must name the address)
    pub fn base_url(&self) -> String {
        match self.state.cfg.tls {
            None => format!("http://{}", self.addr),
            Some(_) => format!("https://{}", self.addr),
        }
    }
    pub fn stats(&self) -> EdgeStats {
        self.state.stats(false)
    }
    pub fn stats_with_paths(&self) -> EdgeStats {
        self.state.stats(true)
    }
    pub fn reset(&self) {
        self.state.reset();
    }
    pub fn shutdown(mut self) {
        self.stop();
    }
    fn stop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.state.log {
            l.flush();
        }
    }
}

impl Drop for EdgeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn new_state(cfg: EdgeConfig) -> std::io::Result<Arc<State>> {
    let cfg_log = cfg.access_log.clone();
    Ok(Arc::new(State {
        cache: Mutex::new(cache::Cache::new(cfg.capacity_bytes, cfg.capacity_objects)),
        shield: (cfg.shield.is_some()).then(|| Mutex::new(cache::Cache::new(u64::MAX, usize::MAX))),
        cfg,
        epoch: Instant::now(),
        paths: Mutex::new(HashMap::new()),
        headers: Mutex::new(HashMap::new()),
        methods: Mutex::new(HashMap::new()),
        requests: AtomicU64::new(0),
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        shield_hits: AtomicU64::new(0),
        not_modified: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        resets: AtomicU64::new(0),
        drops: AtomicU64::new(0),
        tls_handshakes: AtomicU64::new(0),
        tls_resumed: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        h2_requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        stall_until: AtomicU64::new(0),
        timer: crate::precise::PreciseTimer::new("edgeload-edge-timer")?,
        log: match &cfg_log {
            Some(p) => Some(access_log::AccessLog::create(p)?),
            None => None,
        },
    }))
}

/// How long a client has to finish its TLS handshake.
const TLS_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_on(listener: TcpListener, st: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    if st.log.is_some() {
        // the access log is written out every second, busy or idle (a reader tails it)
        let (st, mut sd) = (st.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Some(l) = &st.log {
                            l.flush();
                        }
                    }
                    _ = sd.wait_for(|v| *v) => break,
                }
            }
        });
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => break,
        };
        let Ok((stream, _)) = accepted else {
            // EMFILE and friends: back off instead of spinning
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        st.connections.fetch_add(1, Ordering::SeqCst);
        let st = st.clone();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            match st.cfg.tls.as_ref().map(|t| t.acceptor()) {
                None => serve_conn(stream, st, sd).await,
                Some(acceptor) => {
                    // a failed handshake (a client that does not trust us) just ends, and so
                    // does one that never finishes (a client that connects and says nothing)
                    let hs = tokio::time::timeout(TLS_ACCEPT_TIMEOUT, acceptor.accept(stream));
                    if let Ok(Ok(s)) = hs.await {
                        st.tls_handshakes.fetch_add(1, Ordering::SeqCst);
                        if s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                            st.tls_resumed.fetch_add(1, Ordering::SeqCst);
                        }
                        serve_conn(s, st, sd).await;
                    }
                }
            }
        });
    }
}

/// Serves one connection (plain or TLS) until it ends or the edge stops: HTTP/1.1, or HTTP/2
/// when the client opens with its preface (ALPN h2, or prior knowledge over plain TCP).
async fn serve_conn<IO>(io: IO, st: Arc<State>, mut sd: watch::Receiver<bool>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let streams = st.cfg.h2_streams;
    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
    let mut b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    b.http1().keep_alive(true);
    // as CDNs do: a stream window that an image fits in, many streams a connection
    b.http2()
        .max_concurrent_streams(streams)
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(16 << 20);
    let conn = b.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = sd.wait_for(|v| *v) => {}
    }
}

/// Starts an edge on its own thread and runtime (`threads` workers); returns once it listens.
pub fn start(cfg: EdgeConfig, addr: SocketAddr, threads: usize) -> std::io::Result<EdgeHandle> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let state = new_state(cfg)?;
    let (tx, rx) = watch::channel(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("edgeload-edge")
        .enable_all()
        .build()?;
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name("edgeload-edge".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(std_listener) {
                    Ok(l) => serve_on(l, st, rx).await,
                    Err(e) => eprintln!("edge: cannot listen: {e}"),
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        })?;
    Ok(EdgeHandle {
        addr,
        state,
        shutdown: tx,
        thread: Some(thread),
    })
}

/// Starts an edge on 127.0.0.1 with an OS-chosen port: what tests use.
pub fn start_local(cfg: EdgeConfig) -> std::io::Result<EdgeHandle> {
    start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)), 1)
}
