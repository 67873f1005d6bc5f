//! The built-in HTTP/1.1 client against a TCP peer that answers with exact bytes: every framing
//! a CDN may send (Content-Length, chunked with extensions and trailers, close-delimited, 1xx
//! interim, 304 with a length, HEAD), idle keep-alive connections closed by the server, broken
//! responses. Each case is also fetched through reqwest: the two clients must agree.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use edgeload::cache_status::{CacheClass, Classifier};
use edgeload::engine::client::{ClientConfig, ThreadClient};
use edgeload::measure::ErrorKind;

/// (status line and headers, body, close after it)
fn response(path: &str) -> (String, Vec<u8>, bool) {
    let ok = |h: &str, body: &[u8]| (format!("HTTP/1.1 200 OK\r\n{h}\r\n"), body.to_vec(), false);
    match path {
        "/cl" => ok("Content-Length: 5\r\nX-Cache: HIT\r\n", b"hello"),
        "/chunked" => ok(
            "Transfer-Encoding: chunked\r\nX-Cache: MISS\r\n",
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        "/close" => (
            "HTTP/1.1 200 OK\r\nConnection: close\r\nCF-Cache-Status: HIT\r\n\r\n".into(),
            b"abcdefg".to_vec(),
            true,
        ),
        "/interim" => (
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".into(),
            b"abc".to_vec(),
            false,
        ),
        "/not-modified" => (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nX-Cache: HIT\r\n\r\n".into(),
            Vec::new(),
            false,
        ),
        // the server drops the connection after answering, without saying so
        "/idle-close" => (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".into(),
            b"ok".to_vec(),
            true,
        ),
        "/big" => {
            let body = vec![b'x'; 300_000];
            (
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()),
                body,
                false,
            )
        }
        "/garbage" => ("NOT HTTP AT ALL\r\n\r\n".into(), Vec::new(), true),
        "/short" => (
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".into(),
            b"abc".to_vec(),
            true,
        ),
        _ => (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\n".into(),
            b"nope".to_vec(),
            false,
        ),
    }
}

/// Serves `response` on loopback, one thread per connection, keep-alive unless the response
/// closes; bytes are written a few at a time so the client sees heads split across reads.
fn serve() -> String {
    serve_on(TcpListener::bind("127.0.0.1:0").unwrap())
}

fn serve_on(l: TcpListener) -> String {
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        line.clear();
                    }
                    let path = first.split(' ').nth(1).unwrap_or("/").to_string();
                    let head_only = first.starts_with("HEAD ");
                    let (head, body, close) = response(&path);
                    let mut bytes = head.into_bytes();
                    if !head_only {
                        bytes.extend_from_slice(&body);
                    }
                    for piece in bytes.chunks(7) {
                        if s.write_all(piece).is_err() {
                            return;
                        }
                    }
                    if close {
                        return;
                    }
                }
            });
        }
    });
    // SocketAddr's Display brackets an IPv6 address, as a URL wants
    format!("http://{addr}")
}

#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    bytes: u64,
    class: CacheClass,
    error: Option<ErrorKind>,
    ttfb: bool,
}

/// A worker thread's runtime as the engine builds it: without tokio's time driver when every
/// target goes through the lean client (a lean request that used a tokio timer would panic).
fn runtime(lean: bool) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_io();
    if !lean {
        b.enable_time();
    }
    b.build().unwrap()
}

/// Runs `f` with the client's helper task and the thread's timer beside it, as the engine does.
async fn beside_watch<F: std::future::Future>(c: &ThreadClient, f: F) -> F::Output {
    let timer = edgeload::precise::LocalTimer::new().unwrap();
    let helpers = futures_util::future::join(c.watch(&timer), timer.drive());
    let (f, helpers) = (std::pin::pin!(f), std::pin::pin!(helpers));
    match futures_util::future::select(f, helpers).await {
        futures_util::future::Either::Left((out, _)) => out,
        futures_util::future::Either::Right(_) => unreachable!("the helpers never end"),
    }
}

fn fetch_all(base: &str, paths: &[&str], lean: bool, head: bool) -> Vec<Seen> {
    let cfg = ClientConfig {
        lean_http1: lean,
        method_head: head,
        timeout: std::time::Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let base_url = reqwest::Url::parse(base).unwrap();
    let rt = runtime(lean);
    rt.block_on(async {
        let c = ThreadClient::new(&cfg, Classifier::default(), 4, &[&base_url]).unwrap();
        let mut out = Vec::new();
        for p in paths {
            let url = base_url.join(p).unwrap();
            let o = beside_watch(&c, c.fetch(&url, std::time::Instant::now())).await;
            out.push(Seen {
                status: o.status,
                bytes: o.bytes,
                class: o.class,
                error: o.error,
                ttfb: o.headers_at.is_some(),
            });
        }
        out
    })
}

#[test]
fn lean_client_reads_every_framing_as_reqwest_does() {
    let base = serve();
    let paths = [
        "/cl",
        "/chunked",
        "/cl",
        "/close",
        "/interim",
        "/not-modified",
        "/idle-close",
        "/idle-close",
        "/big",
        "/missing",
        "/cl",
    ];
    let lean = fetch_all(&base, &paths, true, false);
    let want: Vec<(u16, u64, CacheClass)> = vec![
        (200, 5, CacheClass::Hit),
        (200, 11, CacheClass::Miss),
        (200, 5, CacheClass::Hit),
        (200, 7, CacheClass::Hit),
        (200, 3, CacheClass::Unknown),
        (304, 0, CacheClass::Hit),
        (200, 2, CacheClass::Unknown),
        (200, 2, CacheClass::Unknown),
        (200, 300_000, CacheClass::Unknown),
        (404, 4, CacheClass::Unknown),
        (200, 5, CacheClass::Hit),
    ];
    let got: Vec<(u16, u64, CacheClass)> =
        lean.iter().map(|s| (s.status, s.bytes, s.class)).collect();
    assert_eq!(got, want);
    assert!(lean.iter().all(|s| s.ttfb));
    assert_eq!(lean[9].error, Some(ErrorKind::Http4xx));
    assert!(
        lean.iter()
            .enumerate()
            .all(|(i, s)| i == 9 || s.error.is_none()),
        "{lean:?}"
    );
    // reqwest agrees; it is asked without /idle-close, where it may reuse the connection the
    // server closed and report a reset (the lean client retries once on a new connection)
    let same: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| *p != "/idle-close")
        .collect();
    assert_eq!(
        fetch_all(&base, &same, true, false),
        fetch_all(&base, &same, false, false)
    );
}

#[test]
fn lean_client_head_requests_and_broken_responses() {
    let base = serve();
    let head = fetch_all(&base, &["/cl", "/chunked", "/cl"], true, true);
    assert!(
        head.iter()
            .all(|s| s.status == 200 && s.bytes == 0 && s.error.is_none()),
        "{head:?}"
    );
    assert_eq!(
        head,
        fetch_all(&base, &["/cl", "/chunked", "/cl"], false, true)
    );
    let bad = fetch_all(&base, &["/garbage", "/short", "/cl"], true, false);
    assert_eq!(bad[0].error, Some(ErrorKind::Protocol), "{bad:?}");
    // a body cut short: the head arrived (TTFB kept), the request failed as a reset
    assert_eq!(
        (bad[1].status, bad[1].ttfb, bad[1].error),
        (200, true, Some(ErrorKind::Reset))
    );
    assert_eq!((bad[2].status, bad[2].error), (200, None));
    // nothing listens: a connect error
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let e = fetch_all(&dead, &["/cl"], true, false);
    assert_eq!(e[0].error, Some(ErrorKind::Connect));
}

#[test]
fn lean_client_reaches_an_ipv6_literal() {
    let l = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        // a container without IPv6: nothing to test here
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            eprintln!("skipped: no IPv6 loopback ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let base = serve_on(l);
    assert!(base.starts_with("http://[::1]:"), "{base}");
    let got = fetch_all(&base, &["/cl"], true, false);
    assert_eq!((got[0].status, got[0].bytes, got[0].error), (200, 5, None));
}

/// Serves one `Connection: close` response to the lean client, then hands the connection to
/// `then` on the server's thread and returns what it returns; the client's helper task
/// (`watch`, which closes connections after the server) runs until `then` returns.
fn close_response<T: Send + 'static>(
    then: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> T {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let mut w = s;
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        then(w)
    });
    let cfg = ClientConfig {
        timeout: std::time::Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let url = reqwest::Url::parse(&format!("{base}/x")).unwrap();
    let rt = runtime(true);
    let (o, seen) = rt.block_on(async {
        let c = ThreadClient::new(&cfg, Classifier::default(), 4, &[&url]).unwrap();
        let work = async {
            let o = c.fetch(&url, std::time::Instant::now()).await;
            let seen = tokio::task::spawn_blocking(move || server.join().unwrap());
            (o, seen.await.unwrap())
        };
        beside_watch(&c, work).await
    });
    assert_eq!((o.status, o.bytes, o.error), (200, 2, None));
    seen
}

/// A server that says `Connection: close` closes first: the client waits for its close, so
/// TIME_WAIT (a minute per connection, holding an ephemeral port) stays on the server's side.
#[test]
fn lean_client_lets_the_server_close_first() {
    use std::io::Read;
    let verdict = close_response(|mut w| {
        // the client has its response; it must not close before we do
        w.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let mut b = [0u8; 1];
        match w.read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => "client waited",
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => "client waited",
            Ok(0) => "client closed first",
            _ => "unexpected",
        }
        // dropping `w` closes our side: the client sees it and closes
    });
    assert_eq!(verdict, "client waited");
}

/// A server that says `Connection: close` and then keeps the connection open: the client
/// closes it itself after waiting `CLOSE_WAIT` (200 ms) and a watchdog tick, not never.
#[test]
fn lean_client_closes_when_the_server_does_not() {
    use std::io::Read;
    let (eof, after) = close_response(|mut w| {
        let t = std::time::Instant::now();
        w.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        let mut b = [0u8; 1];
        let r = w.read(&mut b);
        (matches!(r, Ok(0)), t.elapsed())
    });
    assert!(eof, "the client did not close the connection");
    // 200 ms, then up to one watchdog tick (50 ms for a 5 s timeout) and scheduling
    assert!(
        after >= std::time::Duration::from_millis(190) && after < std::time::Duration::from_secs(2),
        "closed after {after:?}"
    );
}

/// A connect that never completes (the listener's accept queue is full, so the kernel drops
/// the SYN) fails as a timeout after the connect timeout, not after the request timeout.
#[test]
fn lean_client_times_out_a_connect_that_hangs() {
    use std::os::fd::FromRawFd;
    // a listener with a backlog of 0 that never accepts: one connection fills its queue
    // SAFETY: plain socket calls on a descriptor we create and then hand to TcpListener
    let l = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&raw const a).cast(), len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        TcpListener::from_raw_fd(fd)
    };
    let addr = l.local_addr().unwrap();
    let timeout = std::time::Duration::from_millis(100);
    let _queued: Vec<_> = (0..2)
        .filter_map(|_| std::net::TcpStream::connect_timeout(&addr, timeout).ok())
        .collect();
    // the queue is full now when one more connect does not complete
    assert!(
        std::net::TcpStream::connect_timeout(&addr, timeout).is_err(),
        "the listener still accepts connections: no hanging connect to test"
    );
    let cfg = ClientConfig {
        timeout: std::time::Duration::from_secs(10),
        connect_timeout: std::time::Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let url = reqwest::Url::parse(&format!("http://{addr}/x")).unwrap();
    let rt = runtime(true);
    let o = rt.block_on(async {
        let c = ThreadClient::new(&cfg, Classifier::default(), 4, &[&url]).unwrap();
        beside_watch(&c, c.fetch(&url, std::time::Instant::now())).await
    });
    assert_eq!(o.error, Some(ErrorKind::Timeout));
    let took = o.done - o.sent;
    assert!(
        took >= std::time::Duration::from_millis(300) && took < std::time::Duration::from_secs(2),
        "the connect gave up after {took:?}"
    );
}

/// A retried request is timed from its first send: against an edge that takes 30 ms to answer
/// or to drop a reused connection, a request answered after a retry took two response times.
#[test]
fn a_retried_request_is_timed_from_its_first_send() {
    use edgeload::edge::{EdgeConfig, Faults, Latency};
    use std::time::Duration;
    let wait = Duration::from_millis(30);
    let edge = edgeload::edge::start_local(EdgeConfig {
        hit_latency: Latency::fixed(wait),
        miss_latency: Latency::fixed(wait),
        faults: Faults {
            drop_rate: 0.4,
            ..Faults::default()
        },
        ..EdgeConfig::default()
    })
    .unwrap();
    let cfg = ClientConfig {
        timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let base = reqwest::Url::parse(&edge.base_url()).unwrap();
    let outcomes = runtime(true).block_on(async {
        let c = ThreadClient::new(&cfg, Classifier::default(), 1, &[&base]).unwrap();
        let mut out = Vec::new();
        for i in 0..40 {
            let url = base.join(&format!("/img/{}.jpg", i % 5)).unwrap();
            out.push(beside_watch(&c, c.fetch(&url, std::time::Instant::now())).await);
        }
        out
    });
    let sent: u64 = outcomes.iter().map(|o| 1 + u64::from(o.retries)).sum();
    assert_eq!(sent, edge.stats().requests);
    let retried: Vec<_> = (outcomes.iter())
        .filter(|o| o.retries == 1 && o.error.is_none())
        .collect();
    assert!(!retried.is_empty(), "no request was retried");
    for o in &outcomes {
        let took = o.done - o.sent;
        if o.retries == 1 && o.error.is_none() {
            assert!(took >= 2 * wait, "a retried request took {took:?}");
        } else if o.error.is_none() {
            assert!(took >= wait, "{took:?}");
        }
    }
}
