//! A lean HTTP/1.1 client for `http://` and `https://` targets, the hot path of every run: one
//! request line and a header block built once per origin, a per-thread pool of keep-alive
//! connections (TLS by rustls, SNI from the URL, sessions resumed), responses parsed with
//! httparse in a reused buffer, bodies counted and dropped (Content-Length, chunked, or until
//! close). No allocation per request once the pool is warm. Addresses may be pinned
//! (`--connect-to`, `--resolve`). With `--http2` an origin's requests go over a few HTTP/2
//! connections instead (`h2.rs`), opened the same way. What this does not cover goes through
//! reqwest (`client.rs`).

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cache_status::{CacheClass, Classifier, Headers, Name, name_bit};
use crate::measure::{ErrorKind, Opened, Outcome, PopName};

const READ_CHUNK: usize = 16 << 10;
const MAX_HEADERS: usize = 96;
/// A response head larger than this is a protocol error.
const MAX_HEAD: usize = 256 << 10;
/// How long to wait for a server to close a connection it said it would close.
const CLOSE_WAIT: Duration = Duration::from_millis(200);

/// One origin (scheme, host, port): its pool and its header block.
pub(super) struct Origin {
    host: String,
    port: u16,
    /// https: the name sent as SNI and checked in the certificate
    tls: Option<rustls::pki_types::ServerName<'static>>,
    /// pinned addresses (`--connect-to`, `--resolve`), used in turn by new connections
    pinned: Vec<SocketAddr>,
    next_pin: std::cell::Cell<usize>,
    /// `Host: ...\r\n` + the configured headers + the final `\r\n`
    headers: Vec<u8>,
    idle: RefCell<Vec<Conn>>,
    /// the host's addresses, the last one that answered first (looked up once)
    addrs: RefCell<Vec<SocketAddr>>,
    /// `--http2`: the origin's HTTP/2 connections (its requests go there, not to `idle`)
    h2: Option<super::h2::Pool>,
}

struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    req: Vec<u8>,
}

/// A connection's byte stream: plain TCP or TLS over it.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where the next origin starts its turn over pinned addresses: each thread's client a step
/// further, so that kept-alive connections (one or two a thread) spread too.
static PIN_START: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Addresses pinned for a host and port (curl's `--connect-to` and `--resolve`).
#[derive(Clone, Debug, PartialEq)]
pub struct Pin {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<SocketAddr>,
}

impl Pin {
    /// `HOST:PORT:REST`, the host possibly `[v6]`; errors quote `s`.
    fn head<'a>(s: &'a str, form: &str) -> Result<(String, u16, &'a str), String> {
        let bad = || format!("{s:?}: {form}");
        let (host, rest) = match s.strip_prefix('[') {
            Some(r) => r.split_once("]:").ok_or_else(bad)?,
            None => s.split_once(':').ok_or_else(bad)?,
        };
        let (port, rest) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.to_string(), port, rest))
    }

    /// curl's `--connect-to HOST:PORT:ADDR:PORT2` (ADDR an address or a name, looked up now).
    pub fn connect_to(s: &str) -> Result<Pin, String> {
        const FORM: &str = "HOST:PORT:ADDR:PORT2";
        let (host, port, to) = Pin::head(s, FORM)?;
        let bad = || format!("{s:?}: {FORM}");
        let (addr, p2) = to.rsplit_once(':').ok_or_else(bad)?;
        let p2: u16 = p2.parse().map_err(|_| bad())?;
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(addr, p2))
            .map_err(|e| format!("{s:?}: {addr}: {e}"))?
            .take(1)
            .collect();
        if addrs.is_empty() {
            return Err(format!("{s:?}: {addr}: no address"));
        }
        Ok(Pin { host, port, addrs })
    }

    /// curl's `--resolve HOST:PORT:ADDR[,ADDR...]` (IP addresses; connections spread over them).
    pub fn resolve(s: &str) -> Result<Pin, String> {
        let (host, port, list) = Pin::head(s, "HOST:PORT:ADDR[,ADDR...]")?;
        let addrs = (list.split(','))
            .map(|x| {
                let ip = x.trim().trim_start_matches('[').trim_end_matches(']');
                ip.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, port))
                    .map_err(|_| format!("{s:?}: {x:?} is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pin { host, port, addrs })
    }
}

pub(crate) struct H1 {
    origins: Vec<Origin>,
    /// the configured headers as lines, to prefix each origin's Host
    base_headers: Vec<u8>,
    has_host: bool,
    keepalive: bool,
    timeout: Duration,
    connect_timeout: Duration,
    pool: usize,
    /// 0 or 1: a request on a reused connection closed before any answer is sent once more
    retries: u8,
    /// the thread's TLS config (https origins are served only with one)
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pins: Vec<Pin>,
    /// HTTP/2 connections per origin for this thread (`--http2`); 0: HTTP/1.1
    http2: usize,
    /// the headers every request carries, for HTTP/2 (a Host among them is `:authority`)
    h2_headers: reqwest::header::HeaderMap,
    pub(super) deadlines: Deadlines,
    /// connections the server is about to close, handed to `watch` to close after it
    closing: RefCell<Vec<Conn>>,
    /// wakes `watch` when `closing` gets one
    closing_waker: RefCell<Option<std::task::Waker>>,
    /// (read buffer, request buffer) of connections `watch` closed, for the next connects
    spare: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// The deadlines of one thread's requests (whole request, connect, the wait for a server's
/// close), enforced by one watchdog task (`H1::watch`) instead of a tokio timer each
/// (registering and clearing one was ~600 instructions a request, the largest single cost
/// after parsing).
#[derive(Default)]
pub(super) struct Deadlines {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

struct Slot {
    deadline: Option<Instant>,
    expired: bool,
    waker: Option<std::task::Waker>,
}

/// A request's slot in `Deadlines`, given back when the request ends or is dropped.
struct Armed<'a> {
    dl: &'a Deadlines,
    slot: usize,
}

impl Deadlines {
    /// `None`: a timeout too long to add to an Instant, that is none.
    fn arm(&self, deadline: Option<Instant>) -> Armed<'_> {
        let slot = {
            let mut slots = self.slots.borrow_mut();
            let armed = Slot {
                deadline,
                expired: false,
                waker: None,
            };
            match self.free.borrow_mut().pop() {
                Some(i) => {
                    slots[i] = armed;
                    i
                }
                None => {
                    slots.push(armed);
                    slots.len() - 1
                }
            }
        };
        Armed { dl: self, slot }
    }

    /// Runs `f` until it finishes (Some) or `deadline` passes (None); `None` as the deadline:
    /// no deadline. Checked by the watchdog like a request's deadline: no tokio timer to
    /// register and cancel (~900 instructions each; a new connection had two).
    pub(super) async fn within<F: Future>(
        &self,
        deadline: Option<Instant>,
        f: F,
    ) -> Option<F::Output> {
        let armed = self.arm(deadline);
        let mut f = std::pin::pin!(f);
        std::future::poll_fn(|cx| {
            if armed.expired(cx) {
                return std::task::Poll::Ready(None);
            }
            f.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// Expires every armed request whose deadline is not after `now` and wakes it.
    fn expire(&self, now: Instant) {
        let mut wake = Vec::new();
        for s in self.slots.borrow_mut().iter_mut() {
            if !s.expired && s.deadline.is_some_and(|d| d <= now) {
                s.expired = true;
                wake.extend(s.waker.take());
            }
        }
        // woken outside the borrow: a waker may run code that arms or drops a slot
        wake.into_iter().for_each(std::task::Waker::wake);
    }
}

impl Armed<'_> {
    /// Whether the deadline has passed; if not, `cx` is woken when it does.
    fn expired(&self, cx: &std::task::Context<'_>) -> bool {
        let mut slots = self.dl.slots.borrow_mut();
        let s = &mut slots[self.slot];
        if s.expired {
            return true;
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        false
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        let s = &mut self.dl.slots.borrow_mut()[self.slot];
        s.deadline = None;
        s.waker = None;
        self.dl.free.borrow_mut().push(self.slot);
    }
}

/// Headers of a parsed response, for the classifier, with a 64-bit filter of the names present:
/// the classifier asks for about ten names a response, most of them absent, and each absent
/// one then costs a hash and a bit test instead of a case-insensitive scan of every header.
struct Parsed<'a> {
    headers: &'a [httparse::Header<'a>],
    present: u64,
}

/// Whether header name `name` (tchar bytes, as httparse checked) is `lower` (lowercase letters,
/// digits and '-') ignoring ASCII case: a length test, then eight bytes at a time with the case
/// bit set. Setting 0x20 maps an uppercase letter to its lowercase and keeps '-' and digits;
/// the only other bytes it maps onto them are control bytes, which are not tchars. The
/// framing headers are looked for in every response, and `str::eq_ignore_ascii_case` (a call
/// a header, a byte loop on a match) was ~500 instructions a response.
#[inline]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let mut i = 0;
    while i + 8 <= name.len() {
        if word(&name[i..i + 8]) | 0x2020_2020_2020_2020 != word(&lower[i..i + 8]) {
            return false;
        }
        i += 8;
    }
    name[i..]
        .iter()
        .zip(&lower[i..])
        .all(|(&a, &b)| a | 0x20 == b)
}

impl<'a> Parsed<'a> {
    fn new(headers: &'a [httparse::Header<'a>]) -> Self {
        let present = headers
            .iter()
            .fold(0, |acc, h| acc | name_bit(h.name.as_bytes()));
        Parsed { headers, present }
    }

    /// The value of the first header whose name has filter bit `bit` and satisfies `is`.
    #[inline]
    fn lookup(&self, bit: u64, is: impl Fn(&[u8]) -> bool) -> Option<&'a str> {
        if self.present & bit == 0 {
            return None;
        }
        self.headers
            .iter()
            .find(|h| is(h.name.as_bytes()))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    }
}

impl Headers for Parsed<'_> {
    fn each_name(&self, f: &mut dyn FnMut(&str)) {
        self.headers.iter().for_each(|h| f(h.name));
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.lookup(name_bit(name.as_bytes()), |n| {
            n.eq_ignore_ascii_case(name.as_bytes())
        })
    }
    fn known(&self, name: &Name) -> Option<&str> {
        self.lookup(name.bit, |n| name_is(n, name.lower.as_bytes()))
    }
}

/// An I/O error's kind by the rule both stacks share (what it does not name: a reset).
pub(super) fn io_kind(e: &io::Error) -> ErrorKind {
    // a TLS alert or a bad record after the handshake
    if e.get_ref().is_some_and(|x| x.is::<rustls::Error>()) {
        return ErrorKind::Tls;
    }
    super::failure::from_io(e).unwrap_or(ErrorKind::Reset)
}

/// A response head, kept outside the request future so that a timeout or a failure in the
/// body still reports the TTFB, status and class that arrived.
#[derive(Clone, Copy)]
pub(super) struct Head {
    pub(super) at: Instant,
    pub(super) status: u16,
    pub(super) class: CacheClass,
    pub(super) pop: Option<PopName>,
}

/// What a request came to know as it went (both protocols): the head that arrived, its
/// retries, the connection it opened, whether it went on a kept-alive one; kept outside the
/// request's future, which a deadline may drop.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) head: std::cell::Cell<Option<Head>>,
    pub(super) retries: std::cell::Cell<u8>,
    pub(super) opened: std::cell::Cell<Option<Opened>>,
    pub(super) reused: std::cell::Cell<bool>,
}

impl Progress {
    /// The request ended with `error`, after whatever head arrived.
    pub(super) fn failed(&self, sent: Instant, error: ErrorKind) -> Outcome {
        let h = self.head.get();
        Outcome {
            sent,
            headers_at: h.map(|h| h.at),
            done: Instant::now(),
            status: h.map_or(0, |h| h.status),
            bytes: 0,
            class: h.map_or(CacheClass::Unknown, |h| h.class),
            pop: h.and_then(|h| h.pop),
            error: Some(error),
            retries: self.retries.get(),
            opened: self.opened.get(),
            reused: self.reused.get(),
        }
    }

    /// The whole answer arrived: `head`, then `bytes` of body.
    pub(super) fn answered(&self, sent: Instant, head: Head, bytes: u64) -> Outcome {
        Outcome {
            sent,
            headers_at: Some(head.at),
            done: Instant::now(),
            status: head.status,
            bytes,
            class: head.class,
            pop: head.pop,
            error: ErrorKind::for_status(head.status),
            retries: self.retries.get(),
            opened: self.opened.get(),
            reused: self.reused.get(),
        }
    }
}

/// What reading a response produced before the connection's fate is decided.
struct Response {
    head: Head,
    bytes: u64,
    reusable: bool,
    /// the response said the server closes the connection (`Connection: close`, HTTP/1.0)
    close: bool,
    /// the server's close was read already (a body delimited by it)
    at_eof: bool,
}

enum Failure {
    /// nothing came back on a reused connection: the server may have closed it while idle
    Stale,
    Io(io::Error),
    Protocol,
}

impl H1 {
    /// `headers`: the validated header map every request carries.
    pub fn new(
        headers: &reqwest::header::HeaderMap,
        keepalive: bool,
        timeout: Duration,
        connect_timeout: Duration,
        pool: usize,
        retries: u8,
    ) -> H1 {
        let mut base = Vec::new();
        for (k, v) in headers {
            base.extend_from_slice(k.as_str().as_bytes());
            base.extend_from_slice(b": ");
            base.extend_from_slice(v.as_bytes());
            base.extend_from_slice(b"\r\n");
        }
        if !keepalive {
            base.extend_from_slice(b"Connection: close\r\n");
        }
        base.extend_from_slice(b"\r\n");
        H1 {
            origins: Vec::new(),
            has_host: headers.contains_key(reqwest::header::HOST),
            http2: 0,
            h2_headers: headers.clone(),
            base_headers: base,
            keepalive,
            timeout,
            connect_timeout,
            pool,
            retries,
            tls: None,
            pins: Vec::new(),
            deadlines: Deadlines::default(),
            closing: RefCell::new(Vec::new()),
            closing_waker: RefCell::new(None),
            spare: RefCell::new(Vec::new()),
        }
    }

    /// The thread's helper for the requests: runs for as long as they do. It checks the request
    /// deadlines every timeout/100 (1 to 50 ms; a request that times out is reported as ending
    /// at its deadline, so the granularity shows in no latency), and closes the connections
    /// the server said it would close once the server has (`close_after_server`).
    pub async fn watch(&self, timer: &crate::precise::LocalTimer) {
        let tick = (self.timeout / 100).clamp(Duration::from_millis(1), Duration::from_millis(50));
        let mut iv = timer.interval_at(Instant::now() + tick, tick);
        let mut closers = futures_util::stream::FuturesUnordered::new();
        std::future::poll_fn(|cx| {
            for conn in self.closing.borrow_mut().drain(..) {
                closers.push(close_after_server(&self.deadlines, conn));
            }
            let mut w = self.closing_waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
            drop(w);
            while let std::task::Poll::Ready(Some(bufs)) = closers.poll_next_unpin(cx) {
                let mut spare = self.spare.borrow_mut();
                if spare.len() < self.pool.max(1) {
                    spare.push(bufs);
                }
            }
            // (a stopped run wakes every sleeper of the thread: an early check is harmless)
            while let std::task::Poll::Ready(now) = iv.poll_tick(cx) {
                self.deadlines.expire(now);
            }
            std::task::Poll::<()>::Pending
        })
        .await
    }

    pub(super) fn retries(&self) -> u8 {
        self.retries
    }
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }
    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether this client can serve `url`'s origin (http or https with a host and a port).
    pub fn accepts(url: &reqwest::Url) -> bool {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.port_or_known_default().is_some()
    }

    /// Serves https origins with this TLS config (set before `add_origin`).
    pub(crate) fn set_tls(&mut self, cfg: std::sync::Arc<rustls::ClientConfig>) {
        self.tls = Some(cfg);
    }

    /// HTTP/2 over `n` connections an origin (this thread's share) for the origins added after
    /// this: ALPN h2 over TLS, prior knowledge over plain TCP.
    pub(crate) fn set_http2(&mut self, n: usize) {
        self.http2 = n;
    }

    /// Pinned addresses for the origins added after this.
    pub(crate) fn set_pins(&mut self, pins: Vec<Pin>) {
        self.pins = pins;
    }

    /// Registers an origin, with the Basic auth its requests carry; URLs of other origins are
    /// not served by this client.
    pub(crate) fn add_origin(
        &mut self,
        url: &reqwest::Url,
        auth: Option<&reqwest::header::HeaderValue>,
    ) {
        if !H1::accepts(url) || self.origin(url).is_some() {
            return;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return;
        };
        let tls = match url.scheme() {
            "https" => match (&self.tls, super::tls::server_name(host)) {
                (Some(_), Some(name)) => Some(name),
                _ => return,
            },
            _ => None,
        };
        let mut headers = Vec::new();
        if !self.has_host {
            headers.extend_from_slice(b"Host: ");
            headers.extend_from_slice(host.as_bytes());
            if url.port().is_some() {
                headers.extend_from_slice(format!(":{port}").as_bytes());
            }
            headers.extend_from_slice(b"\r\n");
        }
        if let Some(a) = auth {
            headers.extend_from_slice(b"Authorization: ");
            headers.extend_from_slice(a.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        // (ends with the blank line that ends the head)
        headers.extend_from_slice(&self.base_headers);
        let bare = |h: &str| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        };
        let pinned = (self.pins.iter())
            .find(|p| p.port == port && bare(&p.host) == bare(host))
            .map(|p| p.addrs.clone())
            .unwrap_or_default();
        let h2 = (self.http2 > 0).then(|| {
            let mut h = self.h2_headers.clone();
            if let Some(a) = auth {
                h.insert(reqwest::header::AUTHORIZATION, a.clone());
            }
            super::h2::Pool::new(url, self.http2, h)
        });
        self.origins.push(Origin {
            host: host.to_string(),
            port,
            tls,
            pinned,
            // threads start their turns at different addresses
            next_pin: std::cell::Cell::new(
                PIN_START.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ),
            headers,
            idle: RefCell::new(Vec::new()),
            addrs: RefCell::new(Vec::new()),
            h2,
        });
    }

    /// The registered origin serving `url`, for `fetch`.
    pub fn origin(&self, url: &reqwest::Url) -> Option<usize> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let (host, port) = (url.host_str()?, url.port_or_known_default()?);
        self.origins
            .iter()
            .position(|o| o.port == port && o.host == host && o.tls.is_some() == tls)
    }

    async fn connect(&self, o: &Origin) -> Result<(Conn, Opened), ErrorKind> {
        let (stream, opened) = self.open(o).await?;
        // the buffers of a closed connection, if any (two allocations and frees a connection)
        // (`exchange` clears `buf` and `fetch` clears `req` before they are used)
        let (buf, req) = self
            .spare
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(READ_CHUNK), Vec::with_capacity(256)));
        Ok((Conn { stream, buf, req }, opened))
    }

    /// Opens a connection to `o`: its address (pinned, or looked up once and tried in turn),
    /// TCP, and TLS for https (ALPN h2 with `--http2`, which the server must agree to); all
    /// within one connect timeout.
    pub(super) async fn open(&self, o: &Origin) -> Result<(Stream, Opened), ErrorKind> {
        let pin = (!o.pinned.is_empty()).then(|| {
            let i = o.next_pin.get();
            o.next_pin.set(i.wrapping_add(1));
            o.pinned[i % o.pinned.len()]
        });
        let mut dns = None;
        if pin.is_none() && o.addrs.borrow().is_empty() {
            let looked = Instant::now();
            // an IPv6 literal is written [::1] in URLs and Host headers, bare for lookups
            let name = o.host.trim_start_matches('[').trim_end_matches(']');
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name, o.port))
                .await
                .map_err(|_| ErrorKind::Dns)?
                .collect();
            if found.is_empty() {
                return Err(ErrorKind::Dns);
            }
            *o.addrs.borrow_mut() = found;
            // (an IP address is no lookup)
            if name.parse::<std::net::IpAddr>().is_err() {
                dns = Some(looked.elapsed());
            }
        }
        // (by index, not a copy of the list: no allocation a connection)
        let n = if pin.is_some() {
            1
        } else {
            o.addrs.borrow().len()
        };
        let began = Instant::now();
        let deadline = began.checked_add(self.connect_timeout);
        // each address in turn (localhost may be ::1 first and the server on 127.0.0.1 only),
        // within one connect timeout; the one that answers is tried first next time
        let mut last = ErrorKind::Connect;
        let mut found = None;
        for i in 0..n {
            let addr = pin.unwrap_or_else(|| o.addrs.borrow()[i]);
            match self
                .deadlines
                .within(deadline, TcpStream::connect(addr))
                .await
            {
                Some(Ok(s)) => {
                    if i > 0 {
                        o.addrs.borrow_mut().swap(0, i);
                    }
                    found = Some((s, addr));
                    break;
                }
                Some(Err(e)) => {
                    last = match io_kind(&e) {
                        ErrorKind::Timeout => ErrorKind::Timeout,
                        _ => ErrorKind::Connect,
                    };
                }
                None => return Err(ErrorKind::Timeout),
            }
        }
        let Some((stream, addr)) = found else {
            return Err(last);
        };
        let _ = stream.set_nodelay(true);
        let connected = Instant::now();
        let mut opened = Opened {
            addr,
            dns,
            connect: connected - began,
            tls: None,
            resumed: false,
            tls_version: 0,
            tls_suite: 0,
            h2: o.h2.is_some(),
        };
        let stream = match (&o.tls, &self.tls) {
            (Some(name), Some(cfg)) => {
                let hs =
                    tokio_rustls::TlsConnector::from(cfg.clone()).connect(name.clone(), stream);
                match self.deadlines.within(deadline, hs).await {
                    Some(Ok(s)) => {
                        opened.tls = Some(connected.elapsed());
                        let c = s.get_ref().1;
                        opened.resumed = c.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                        opened.tls_version = c.protocol_version().map_or(0, u16::from);
                        opened.tls_suite = c
                            .negotiated_cipher_suite()
                            .map_or(0, |cs| u16::from(cs.suite()));
                        if o.h2.is_some() && c.alpn_protocol() != Some(b"h2") {
                            super::failure::tls_reason(
                                "the server did not agree to HTTP/2 (ALPN h2)".into(),
                            );
                            return Err(ErrorKind::Tls);
                        }
                        Stream::Tls(Box::new(s))
                    }
                    Some(Err(e)) => {
                        let refused = e.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>())
                            == Some(&rustls::Error::AlertReceived(
                                rustls::AlertDescription::NoApplicationProtocol,
                            ));
                        if o.h2.is_some() && refused {
                            super::failure::tls_reason(format!(
                                "the server did not agree to HTTP/2 (ALPN h2): {e}"
                            ));
                            return Err(ErrorKind::Tls);
                        }
                        return Err(super::failure::from_tls(&e));
                    }
                    None => return Err(ErrorKind::Timeout),
                }
            }
            _ => Stream::Plain(stream),
        };
        Ok((stream, opened))
    }

    /// Origin `o`'s HTTP/2 connections (`--http2`), whose streams are taken before a send.
    pub(crate) fn h2_pool(&self, o: usize) -> Option<&super::h2::Pool> {
        self.origins[o].h2.as_ref()
    }

    /// Sends one request for `prefix` + `path` (a base path, and a path with its query, both
    /// in their wire form) to origin `o` (from `origin`) and reads the whole response; over
    /// HTTP/2 on the stream `permit` reserved (one is reserved here when there is none).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch(
        &self,
        o: usize,
        prefix: &str,
        path: &str,
        head: bool,
        classifier: &Classifier,
        sent: Instant,
        permit: Option<super::h2::Permit<'_>>,
    ) -> Outcome {
        let o = &self.origins[o];
        if let Some(pool) = &o.h2 {
            let at = (sent, permit);
            return super::h2::fetch(self, o, pool, (prefix, path), head, classifier, at).await;
        }
        let p = Progress::default();
        let work = async {
            // a reused connection the server closed while idle gets `retries` (0 or 1) retries,
            // on a new connection; the request's time runs from the first send
            for attempt in 0..=self.retries {
                if attempt > 0 {
                    p.retries.set(attempt);
                }
                let pooled = if attempt == 0 {
                    o.idle.borrow_mut().pop()
                } else {
                    None
                };
                let reused = pooled.is_some();
                p.reused.set(reused);
                let mut conn = match pooled {
                    Some(c) => c,
                    None => {
                        let (c, how) = self.connect(o).await?;
                        p.opened.set(Some(how));
                        c
                    }
                };
                conn.req.clear();
                conn.req
                    .extend_from_slice(if head { b"HEAD " } else { b"GET " });
                conn.req.extend_from_slice(prefix.as_bytes());
                conn.req.extend_from_slice(path.as_bytes());
                conn.req.extend_from_slice(b" HTTP/1.1\r\n");
                conn.req.extend_from_slice(&o.headers);
                match exchange(&mut conn, head, reused, classifier, &p.head).await {
                    Ok(r) => {
                        if r.reusable && self.keepalive {
                            let mut idle = o.idle.borrow_mut();
                            if idle.len() < self.pool.max(1) {
                                idle.push(conn);
                            }
                        } else if (r.close || !self.keepalive) && !r.at_eof {
                            // closed by `watch` after the server's close; this request's time
                            // is taken before `watch` can run
                            self.closing.borrow_mut().push(conn);
                            if let Some(w) = self.closing_waker.borrow().as_ref() {
                                w.wake_by_ref();
                            }
                        }
                        return Ok(r);
                    }
                    Err(Failure::Stale) => continue,
                    Err(Failure::Io(e)) => return Err(io_kind(&e)),
                    Err(Failure::Protocol) => return Err(ErrorKind::Protocol),
                }
            }
            Err(ErrorKind::Reset)
        };
        let deadline = sent.checked_add(self.timeout);
        // pinned here: moved into `within`, the request's future (~3 KB with the parser's
        // headers) was copied once a request
        let work = std::pin::pin!(work);
        match self.deadlines.within(deadline, work).await {
            Some(Ok(r)) => p.answered(sent, r.head, r.bytes),
            Some(Err(kind)) => p.failed(sent, kind),
            None => super::failure::at_deadline(p.failed(sent, ErrorKind::Timeout), self.timeout),
        }
    }
}

/// Waits (at most `CLOSE_WAIT`) for the server to close a connection it said it would close,
/// then closes it. The side that closes first keeps the connection in TIME_WAIT for a minute:
/// closing first, a client without keep-alive would hold one of its ~28k ephemeral ports per
/// request and run out at a few hundred requests a second against a remote target, and pay
/// for the TIME_WAIT socket besides. ab waits the same way (it reads HTTP/1.0 responses to the
/// end). This runs in `H1::watch`, after the request was recorded.
async fn close_after_server(dl: &Deadlines, mut conn: Conn) -> (Vec<u8>, Vec<u8>) {
    let eof = async {
        loop {
            conn.buf.clear();
            if !matches!(fill(&mut conn).await, Ok(n) if n > 0) {
                break;
            }
        }
    };
    let _ = dl.within(Instant::now().checked_add(CLOSE_WAIT), eof).await;
    let Conn { stream, buf, req } = conn;
    drop(stream);
    (buf, req)
}

/// Reads more into `buf` (after what it holds); 0 at EOF.
async fn fill(conn: &mut Conn) -> io::Result<usize> {
    let len = conn.buf.len();
    if conn.buf.capacity() - len < READ_CHUNK / 2 {
        conn.buf.reserve(READ_CHUNK);
    }
    conn.stream
        .read_buf(&mut conn.buf)
        .await
        .inspect(|&n| debug_assert!(conn.buf.len() == len + n))
}

async fn exchange(
    conn: &mut Conn,
    head: bool,
    reused: bool,
    classifier: &Classifier,
    head_seen: &std::cell::Cell<Option<Head>>,
) -> Result<Response, Failure> {
    let stale = |e: io::Error| {
        if reused {
            Failure::Stale
        } else {
            Failure::Io(e)
        }
    };
    conn.stream.write_all(&conn.req).await.map_err(stale)?;
    if let Stream::Tls(_) = conn.stream {
        // rustls holds records it could not write yet
        conn.stream.flush().await.map_err(stale)?;
    }
    conn.buf.clear();
    let mut headers_at = None;
    // the head
    let mut need = true;
    let (status, head_len, length, chunked, close, class, pop) = loop {
        if need {
            // nothing at all came back: on a reused connection, worth one retry
            let nothing = headers_at.is_none();
            let n = fill(conn)
                .await
                .map_err(|e| if nothing { stale(e) } else { Failure::Io(e) })?;
            if n == 0 {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(if nothing {
                    stale(eof)
                } else {
                    Failure::Io(eof)
                });
            }
            headers_at.get_or_insert_with(Instant::now);
        }
        need = true;
        // uninitialised: writing 96 empty headers cost more than parsing nginx's eight
        let mut hs = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, &conn.buf, &mut hs)
        {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                if (100..200).contains(&status) && status != 101 {
                    // an interim response: drop it; the final one may be buffered already
                    conn.buf.drain(..len);
                    need = conn.buf.is_empty();
                    continue;
                }
                let h = Parsed::new(resp.headers);
                let mut length = None;
                let mut chunked = false;
                let mut close = resp.version == Some(0);
                for x in resp.headers.iter() {
                    let name = x.name.as_bytes();
                    if name_is(name, b"content-length") {
                        let v = std::str::from_utf8(x.value).ok().map(str::trim);
                        match v.and_then(|v| v.parse::<u64>().ok()) {
                            Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                            _ => return Err(Failure::Protocol),
                        }
                    } else if name_is(name, b"transfer-encoding") {
                        chunked = x
                            .value
                            .rsplit(|&c| c == b',')
                            .next()
                            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                    } else if name_is(name, b"connection") {
                        let v = x.value.trim_ascii();
                        if v.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if v.eq_ignore_ascii_case(b"keep-alive") {
                            close = false;
                        }
                    }
                }
                let (class, pop) = classifier.classify(&h);
                break (
                    status,
                    len,
                    length,
                    chunked,
                    close,
                    class,
                    pop.map(PopName::new),
                );
            }
            Ok(httparse::Status::Partial) if conn.buf.len() < MAX_HEAD => continue,
            _ => return Err(Failure::Protocol),
        }
    };
    let seen = Head {
        at: headers_at.unwrap_or_else(Instant::now),
        status,
        class,
        pop,
    };
    head_seen.set(Some(seen));
    // body bytes that came with the head
    let have = (conn.buf.len() - head_len) as u64;
    let no_body = head || status == 204 || status == 304;
    let (bytes, clean) = if no_body {
        (0, have == 0)
    } else if chunked {
        conn.buf.drain(..head_len);
        (read_chunked(conn).await?, conn.buf.is_empty())
    } else if let Some(n) = length {
        let (mut left, mut have) = (n, have);
        loop {
            if have >= left {
                break (n, have == left);
            }
            left -= have;
            conn.buf.clear();
            have = fill(conn).await.map_err(Failure::Io)? as u64;
            if have == 0 {
                return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    } else {
        // no length: the body ends with the connection (over TLS, a server that closes without
        // close_notify ends it too: rustls says UnexpectedEof, and there is no length to miss)
        let mut n = have;
        loop {
            conn.buf.clear();
            let k = match fill(conn).await {
                Ok(k) => k,
                Err(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        && matches!(conn.stream, Stream::Tls(_)) =>
                {
                    0
                }
                Err(e) => return Err(Failure::Io(e)),
            };
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        (n, false)
    };
    Ok(Response {
        head: seen,
        bytes,
        // bytes after the response (nothing was pipelined) mean the stream is out of step
        reusable: !close && clean,
        close,
        at_eof: !no_body && !chunked && length.is_none(),
    })
}

/// Reads a chunked body, returning its decoded length.
async fn read_chunked(conn: &mut Conn) -> Result<u64, Failure> {
    let mut total = 0u64;
    let eof = || Failure::Io(io::ErrorKind::UnexpectedEof.into());
    loop {
        // the size line
        let line_end = loop {
            if let Some(i) = memchr::memmem::find(&conn.buf, b"\r\n") {
                break i;
            }
            if conn.buf.len() > 4096 {
                return Err(Failure::Protocol);
            }
            if fill(conn).await.map_err(Failure::Io)? == 0 {
                return Err(eof());
            }
        };
        let line = &conn.buf[..line_end];
        let hex = line
            .split(|&c| c == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        let size = std::str::from_utf8(hex)
            .ok()
            .filter(|h| !h.is_empty() && h.len() <= 15)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or(Failure::Protocol)?;
        conn.buf.drain(..line_end + 2);
        if size == 0 {
            // trailers, then the empty line
            loop {
                if let Some(i) = memchr::memmem::find(&conn.buf, b"\r\n") {
                    let empty = i == 0;
                    conn.buf.drain(..i + 2);
                    if empty {
                        return Ok(total);
                    }
                    continue;
                }
                if conn.buf.len() > MAX_HEAD {
                    return Err(Failure::Protocol);
                }
                if fill(conn).await.map_err(Failure::Io)? == 0 {
                    return Err(eof());
                }
            }
        }
        total += size;
        // the data, then its CRLF
        let mut left = size;
        loop {
            let have = conn.buf.len() as u64;
            if have >= left {
                conn.buf.drain(..left as usize);
                break;
            }
            left -= have;
            conn.buf.clear();
            if fill(conn).await.map_err(Failure::Io)? == 0 {
                return Err(eof());
            }
        }
        while conn.buf.len() < 2 {
            if fill(conn).await.map_err(Failure::Io)? == 0 {
                return Err(eof());
            }
        }
        if conn.buf[..2] != *b"\r\n" {
            return Err(Failure::Protocol);
        }
        conn.buf.drain(..2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded pseudo-random sequence for the property tests.
    fn lcg(mut seed: u64) -> impl FnMut() -> usize {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        }
    }

    /// The name filter never hides a header: lookups equal a plain case-insensitive scan, for
    /// names in any case, present or not, colliding or not; so does the lookup of a known name.
    #[test]
    fn name_filter_agrees_with_scan() {
        let names = [
            "Server",
            "Date",
            "Content-Type",
            "Content-Length",
            "ETag",
            "Age",
            "X-Cache",
            "x-cache-status",
            "CF-Cache-Status",
            "Cache-Status",
            "X-Served-By",
            "x-amz-cf-pop",
            "CF-RAY",
            "X-Varnish",
            "cdn-cache",
            "Via",
            "a",
            "-",
            "X-1",
            "x-2",
        ];
        // the same names as the classifier's precomputed keys (lowercase, bit computed once)
        let keys: Vec<Name> = names
            .iter()
            .map(|n| Name::new(Box::leak(n.to_ascii_lowercase().into_boxed_str())))
            .collect();
        let mut next = lcg(7);
        for _ in 0..2000 {
            let n = next() % 10;
            let mut hs = Vec::new();
            for _ in 0..n {
                let name = names[next() % names.len()];
                let name = if next().is_multiple_of(2) {
                    name.to_ascii_uppercase()
                } else {
                    name.to_string()
                };
                hs.push(name);
            }
            let headers: Vec<httparse::Header> = hs
                .iter()
                .map(|n| httparse::Header {
                    name: n,
                    value: n.as_bytes(),
                })
                .collect();
            let p = Parsed::new(&headers);
            for q in names {
                let q = if next().is_multiple_of(2) {
                    q.to_ascii_lowercase()
                } else {
                    q.to_string()
                };
                let scan = headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(&q))
                    .map(|h| h.name);
                assert_eq!(p.header(&q), scan, "{q} in {hs:?}");
            }
            for k in &keys {
                let scan = headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(k.lower))
                    .map(|h| h.name);
                assert_eq!(p.known(k), scan, "{} in {hs:?}", k.lower);
            }
        }
        assert_eq!(Parsed::new(&[]).header("age"), None);
    }

    /// `name_is` equals `eq_ignore_ascii_case` on tchar names, at every length around the
    /// eight-byte steps.
    #[test]
    fn name_is_agrees_with_eq_ignore_ascii_case() {
        let targets: [&[u8]; 4] = [
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"te",
        ];
        let tchars: Vec<u8> = (0u8..=255)
            .filter(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c))
            .collect();
        let mut next = lcg(11);
        for _ in 0..20_000 {
            let t = targets[next() % targets.len()];
            // the target in random case, with now and then one byte changed
            let mut name: Vec<u8> = t
                .iter()
                .map(|&c| {
                    if next().is_multiple_of(2) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if next().is_multiple_of(2) {
                let i = next() % name.len();
                name[i] = tchars[next() % tchars.len()];
            }
            assert_eq!(name_is(&name, t), name.eq_ignore_ascii_case(t), "{name:?}");
        }
        assert!(name_is(b"Content-Length", b"content-length"));
        assert!(!name_is(b"Content-Lengt", b"content-length"));
        assert!(!name_is(b"Content_Length", b"content-length"));
    }
}
