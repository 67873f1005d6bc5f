//! Which HTTP/2 client the engine is built on, by measurement: the `h2` crate used directly
//! (what `src/engine/h2.rs` does) against hyper's HTTP/2 client connection (which wraps the
//! same crate), side by side in one process against the embedded edge over h2c: 2
//! connections, 64 requests in flight, a ~4 KB object, client thread CPU per request (the
//! edge runs on threads of its own), alternating, medians of REPS runs.
//! `cargo run --release --example h2_choice -- [REQUESTS] [REPS]`

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;

const CONNS: usize = 2;
const IN_FLIGHT: usize = 64;

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` on a current-thread runtime; returns the thread's CPU time and the wall time.
fn measure<F: std::future::Future<Output = u64>>(f: F) -> (Duration, Duration, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (c0, w0) = (thread_cpu(), Instant::now());
    let n = rt.block_on(f);
    (thread_cpu() - c0, w0.elapsed(), n)
}

async fn with_h2(addr: std::net::SocketAddr, uri: http::Uri, requests: u64) -> u64 {
    let mut sends = Vec::new();
    for _ in 0..CONNS {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(4 << 20)
            .initial_connection_window_size(64 << 20)
            .handshake::<_, Bytes>(tcp)
            .await
            .expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sends.push(send);
    }
    in_flight(requests, move |k| {
        let send = sends[k % CONNS].clone();
        let uri = uri.clone();
        async move {
            let mut req = http::Request::new(());
            *req.uri_mut() = uri;
            let mut s = send.ready().await.expect("ready");
            let (resp, _) = s.send_request(req, true).expect("send");
            let mut body = resp.await.expect("response").into_body();
            let mut bytes = 0u64;
            while let Some(c) = body.data().await {
                let c = c.expect("data");
                bytes += c.len() as u64;
                let _ = body.flow_control().release_capacity(c.len());
            }
            bytes
        }
    })
    .await
}

async fn with_hyper(addr: std::net::SocketAddr, uri: http::Uri, requests: u64) -> u64 {
    let mut sends = Vec::new();
    for _ in 0..CONNS {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let (send, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(64 << 20)
                .handshake::<_, http_body_util::Empty<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
                .await
                .expect("hyper handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sends.push(send);
    }
    in_flight(requests, move |k| {
        let mut send = sends[k % CONNS].clone();
        let uri = uri.clone();
        async move {
            let mut req = http::Request::new(http_body_util::Empty::<Bytes>::new());
            *req.uri_mut() = uri;
            send.ready().await.expect("ready");
            let resp = send.send_request(req).await.expect("response");
            let mut body = resp.into_body();
            let mut bytes = 0u64;
            while let Some(f) = body.frame().await {
                if let Ok(d) = f.expect("frame").into_data() {
                    bytes += d.len() as u64;
                }
            }
            bytes
        }
    })
    .await
}

/// `IN_FLIGHT` loops on this thread, each sending requests (`one(k)` makes the k-th loop's
/// next one) until `requests` were sent in all; the bytes they read.
async fn in_flight<F, Fut>(requests: u64, one: F) -> u64
where
    F: Fn(usize) -> Fut + 'static,
    Fut: std::future::Future<Output = u64> + 'static,
{
    let left = std::rc::Rc::new(std::cell::Cell::new(requests));
    let one = std::rc::Rc::new(one);
    let local = tokio::task::LocalSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..IN_FLIGHT {
        let (left, one) = (left.clone(), one.clone());
        tasks.spawn_local_on(
            async move {
                let mut bytes = 0u64;
                while left.get() > 0 {
                    left.set(left.get() - 1);
                    bytes += one(k).await;
                }
                bytes
            },
            &local,
        );
    }
    local
        .run_until(async {
            let mut total = 0;
            while let Some(b) = tasks.join_next().await {
                total += b.expect("task");
            }
            total
        })
        .await
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let requests: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let edge = edgeload::edge::start(
        edgeload::edge::EdgeConfig {
            hit_latency: edgeload::edge::Latency::fixed(Duration::ZERO),
            miss_latency: edgeload::edge::Latency::fixed(Duration::ZERO),
            ..Default::default()
        },
        "127.0.0.1:0".parse().expect("address"),
        1,
    )
    .expect("edge");
    let path = (0..)
        .map(|i| format!("/img/{i}.jpg"))
        .find(|p| (3500..4700).contains(&edgeload::edge::objects::object_size(p)))
        .expect("a ~4 KB object");
    let uri: http::Uri = format!("http://{}{path}", edge.addr).parse().expect("uri");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        for (name, out) in [("h2", &mut a), ("hyper", &mut b)] {
            let (cpu, wall, bytes) = match name {
                "h2" => measure(with_h2(edge.addr, uri.clone(), requests)),
                _ => measure(with_hyper(edge.addr, uri.clone(), requests)),
            };
            assert!(bytes > 0);
            let us = cpu.as_secs_f64() * 1e6 / requests as f64;
            println!(
                "{name:6} {requests} requests in {:.2} s: {us:.2} us CPU/request",
                wall.as_secs_f64()
            );
            out.push(us);
        }
    }
    let (ma, mb) = (median(a), median(b));
    println!(
        "median client CPU per request: h2 crate {ma:.2} us, hyper {mb:.2} us (hyper / h2 = {:.2})",
        mb / ma
    );
}
