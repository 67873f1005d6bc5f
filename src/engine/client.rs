//! The engine's clients: the per-thread `ThreadClient` (the lean HTTP/1.1 client for `http://`,
//! reqwest for the rest), reqwest's `Client`, the request settings and headers, credentials.
//! Both stacks name failures and end timeouts by the rules of `failure.rs`.

use std::time::{Duration, Instant};

use super::failure;
use crate::cache_status::Classifier;
use crate::measure::{ErrorKind, Outcome, PopName};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub keepalive: bool,
    pub method_head: bool,
    /// plain-http targets through the lean HTTP/1.1 client rather than reqwest
    pub lean_http1: bool,
    /// how often (0 or 1) a request is sent again when a reused connection was closed before
    /// any byte of the answer came back (what browsers do; every retry is counted)
    pub retries: u8,
    /// TLS trust and resumption (built-in client)
    pub tls: super::tls::TlsOptions,
    /// addresses pinned per host and port (built-in client)
    pub pins: Vec<super::h1::Pin>,
    /// `--http2`: HTTP/2 over this many connections an origin (built-in client; the engine
    /// gives each thread its share); `None`: HTTP/1.1, a connection per request in flight
    pub http2: Option<usize>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            headers: Vec::new(),
            keepalive: true,
            method_head: false,
            lean_http1: true,
            retries: 1,
            tls: super::tls::TlsOptions::default(),
            pins: Vec::new(),
            http2: None,
        }
    }
}

pub(crate) fn user_agent() -> String {
    format!("edgeload/{} (+load test)", env!("CARGO_PKG_VERSION"))
}

/// The header set every request carries; validated here so the scenario gets a clear error.
pub fn default_headers(extra: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    h.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_str(&user_agent()).map_err(|e| e.to_string())?,
    );
    h.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
    );
    for (k, v) in extra {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("bad header name {k:?}"))?;
        let val = HeaderValue::from_str(v).map_err(|_| format!("bad value for header {k:?}"))?;
        h.insert(name, val);
    }
    Ok(h)
}

/// The credentials of a base URL's userinfo as a Basic `Authorization` value (RFC 7617; the
/// user name and password percent-decoded), unless `headers` already set one: the same rule for
/// the lean client and reqwest. The value is marked sensitive; URLs sent never carry userinfo.
pub fn basic_auth(base: &reqwest::Url, headers: &[(String, String)]) -> Option<HeaderValue> {
    if base.username().is_empty() && base.password().is_none() {
        return None;
    }
    if (headers.iter()).any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
        return None;
    }
    let dec = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let mut raw = dec(base.username());
    raw.push(b':');
    raw.extend(dec(base.password().unwrap_or_default()));
    use base64::Engine as _;
    let v = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&raw)
    );
    let mut h = HeaderValue::from_str(&v).ok()?;
    h.set_sensitive(true);
    Some(h)
}

/// A base URL without its userinfo (credentials go in a header, see `basic_auth`); returned as
/// given when it has none.
pub fn without_userinfo(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => base.to_string(),
    }
}

/// The engine's client, one per worker thread: the lean HTTP/1.1 path (`h1.rs`) for `http://`
/// origins, reqwest for `https://` and when `ClientConfig::lean_http1` is off.
pub struct ThreadClient {
    h1: Option<super::h1::H1>,
    /// built on first use: most runs never need it, and it costs a few MB (TLS roots, pool)
    inner: std::cell::OnceCell<Option<Client>>,
    cfg: ClientConfig,
    classifier: Classifier,
    pool: usize,
    /// Basic auth of the origins whose base URL had userinfo, for reqwest (the lean client
    /// keeps it in its origin's headers); empty for most runs
    auth: Vec<(reqwest::Url, HeaderValue)>,
    /// per target (as `bases` was given): where `fetch_path` sends
    routes: Vec<Route>,
}

/// A target's base, ready for paths: the lean client's origin and base path, or the base URL
/// (no userinfo) that reqwest's URLs are joined to.
struct Route {
    origin: Option<usize>,
    /// the base URL's path without its trailing '/' (wire form: the URL parser's)
    prefix: String,
    base: String,
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl ThreadClient {
    /// `bases`: the targets' base URLs (userinfo included: it becomes Basic auth).
    pub fn new(
        cfg: &ClientConfig,
        classifier: Classifier,
        pool: usize,
        bases: &[&reqwest::Url],
    ) -> Result<ThreadClient, String> {
        let headers = default_headers(&cfg.headers)?;
        let auth: Vec<(reqwest::Url, HeaderValue)> = (bases.iter())
            .filter_map(|b| basic_auth(b, &cfg.headers).map(|h| ((*b).clone(), h)))
            .collect();
        let h1 = if cfg.lean_http1 {
            let mut h = super::h1::H1::new(
                &headers,
                cfg.keepalive,
                cfg.timeout,
                cfg.connect_timeout,
                pool,
                cfg.retries,
            );
            if bases.iter().any(|b| b.scheme() == "https") {
                // this thread's own config (its own session cache) on the shared roots
                let h2 = cfg.http2.is_some();
                h.set_tls(super::tls::Trust::shared(&cfg.tls)?.client_config(h2));
            }
            h.set_pins(cfg.pins.clone());
            h.set_http2(cfg.http2.unwrap_or(0));
            for b in bases {
                h.add_origin(b, basic_auth(b, &cfg.headers).as_ref());
            }
            Some(h)
        } else {
            None
        };
        let routes = (bases.iter())
            .map(|b| {
                let base = without_userinfo(b.as_str());
                let plain = reqwest::Url::parse(&base).ok();
                Route {
                    origin: (h1.as_ref().zip(plain.as_ref())).and_then(|(h, u)| h.origin(u)),
                    prefix: plain
                        .as_ref()
                        .map_or("", |u| u.path())
                        .trim_end_matches('/')
                        .to_string(),
                    base,
                }
            })
            .collect();
        let c = ThreadClient {
            h1,
            inner: std::cell::OnceCell::new(),
            cfg: cfg.clone(),
            classifier,
            pool,
            auth,
            routes,
        };
        if bases.iter().any(|b| !c.lean(b)) {
            c.inner
                .set(Some(Client::new(cfg, c.classifier.clone(), pool)?))
                .ok();
        }
        Ok(c)
    }

    fn lean(&self, url: &reqwest::Url) -> bool {
        self.h1.as_ref().is_some_and(|h| h.origin(url).is_some())
    }

    /// The lean client's helper: enforces its request timeouts and closes connections after the
    /// server. Must run beside `fetch` (the engine runs it with the thread's other tasks);
    /// without it lean requests never time out. It ticks on `timer`, the thread's timer, whose
    /// `drive` must run too: the lean client uses no tokio timer.
    pub async fn watch(&self, timer: &crate::precise::LocalTimer) {
        match &self.h1 {
            Some(h) => h.watch(timer).await,
            None => std::future::pending().await,
        }
    }

    /// Over HTTP/2, a stream for target `t`'s next request, waiting for one when every
    /// connection has all the streams its server allows (call before reading the send time);
    /// `None` when the target does not go over HTTP/2.
    pub(crate) async fn reserve(&self, t: usize) -> Option<super::h2::Permit<'_>> {
        let (h, o) = (self.h1.as_ref()?, self.routes[t].origin?);
        Some(h.h2_pool(o)?.reserve().await)
    }

    /// Sends one request for target `t` (the index of its base in `new`'s `bases`) and `path`
    /// (with its query, in wire form: `urls::wire_form`); `sent` is the send time the caller
    /// just read (the clock is read once). The lean client builds the request from the parts;
    /// only reqwest needs a URL made for it.
    pub(crate) async fn fetch_path(
        &self,
        t: usize,
        path: &str,
        sent: Instant,
        permit: Option<super::h2::Permit<'_>>,
    ) -> Outcome {
        let r = &self.routes[t];
        if let (Some(h), Some(o)) = (&self.h1, r.origin) {
            let head = self.cfg.method_head;
            return h
                .fetch(o, &r.prefix, path, head, &self.classifier, sent, permit)
                .await;
        }
        match reqwest::Url::parse(&super::join_url(&r.base, path)) {
            Ok(u) => self.fetch_reqwest(&u, sent).await,
            Err(_) => Outcome::failed(sent, ErrorKind::Other),
        }
    }

    /// Sends one request; `sent` is the send time the caller just read (the clock is read once).
    pub async fn fetch(&self, url: &reqwest::Url, sent: Instant) -> Outcome {
        if let Some(h) = &self.h1
            && let Some(o) = h.origin(url)
        {
            let pq = &url[url::Position::BeforePath..url::Position::AfterQuery];
            return h
                .fetch(
                    o,
                    "",
                    pq,
                    self.cfg.method_head,
                    &self.classifier,
                    sent,
                    None,
                )
                .await;
        }
        self.fetch_reqwest(url, sent).await
    }

    async fn fetch_reqwest(&self, url: &reqwest::Url, sent: Instant) -> Outcome {
        let inner = self
            .inner
            .get_or_init(|| Client::new(&self.cfg, self.classifier.clone(), self.pool).ok());
        let auth = (self.auth.iter())
            .find(|(b, _)| same_origin(b, url))
            .map(|(_, h)| h);
        match inner {
            Some(c) => c.fetch_at(url, self.cfg.method_head, sent, auth).await,
            None => Outcome::failed(sent, ErrorKind::Other),
        }
    }
}

/// One reqwest client (its own connection pool); `Sync`, so a multi-threaded runtime can share it.
pub struct Client {
    http: reqwest::Client,
    classifier: Classifier,
    timeout: Duration,
}

impl Client {
    pub fn new(cfg: &ClientConfig, classifier: Classifier, pool: usize) -> Result<Client, String> {
        let mut b = reqwest::Client::builder()
            .default_headers(default_headers(&cfg.headers)?)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .no_proxy()
            .pool_max_idle_per_host(if cfg.keepalive { pool } else { 0 });
        if !cfg.keepalive {
            b = b.pool_idle_timeout(Duration::ZERO);
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Client {
            http,
            classifier,
            timeout: cfg.timeout,
        })
    }

    /// Sends one request and reads the whole body, counting bytes without keeping them; the
    /// method is chosen per request (the mirror replays HEAD as HEAD), `sent` is the send time
    /// the caller read, `auth` the target's Basic auth (`basic_auth`).
    pub async fn fetch_at(
        &self,
        url: &reqwest::Url,
        head: bool,
        sent: Instant,
        auth: Option<&HeaderValue>,
    ) -> Outcome {
        let mut req = if head {
            self.http.head(url.clone())
        } else {
            self.http.get(url.clone())
        };
        if let Some(a) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, a.clone());
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let o = Outcome::failed(sent, failure::from_reqwest(&e));
                return failure::at_deadline(o, self.timeout);
            }
        };
        let headers_at = Instant::now();
        let status = resp.status().as_u16();
        let (class, pop) = {
            let (c, p) = self.classifier.classify(resp.headers());
            (c, p.map(PopName::new))
        };
        let mut bytes = 0u64;
        let mut error = ErrorKind::for_status(status);
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => bytes += c.len() as u64,
                Ok(None) => break,
                Err(e) => {
                    error = Some(failure::from_reqwest(&e));
                    break;
                }
            }
        }
        let o = Outcome {
            sent,
            headers_at: Some(headers_at),
            done: Instant::now(),
            status,
            bytes,
            class,
            pop,
            error,
            // hyper's pool may resend a request it could not write; it does not say so
            retries: 0,
            // nor does it say when it opened a connection
            opened: None,
            reused: false,
        };
        failure::at_deadline(o, self.timeout)
    }
}
