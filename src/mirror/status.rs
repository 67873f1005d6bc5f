//! The mirror's status endpoint: `/status` (JSON) and `/metrics` (Prometheus text), served from
//! a snapshot the mirror refreshes every second. Loopback by default.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub(crate) type Snapshot = Arc<Mutex<(String, String)>>;

/// A Prometheus label value as the text exposition format writes it: backslash, double quote
/// and line feed escaped (POP names come from CDN response headers).
pub(crate) fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Binds and serves in the background; the returned handle stops it when dropped.
pub async fn serve(
    addr: SocketAddr,
    snap: Snapshot,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let snap = snap.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let snap = snap.clone();
                    async move {
                        let (json, prom) = snap.lock().map(|s| s.clone()).unwrap_or_default();
                        let (ct, body, code) = match req.uri().path() {
                            "/status" => ("application/json", json, StatusCode::OK),
                            "/metrics" => ("text/plain; version=0.0.4", prom, StatusCode::OK),
                            _ => (
                                "text/plain",
                                "try /status or /metrics\n".to_string(),
                                StatusCode::NOT_FOUND,
                            ),
                        };
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        *r.status_mut() = code;
                        r.headers_mut()
                            .insert("content-type", ct.parse().expect("static"));
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_cannot_break_out_of_their_quotes() {
        assert_eq!(super::label_value("FRA"), "FRA");
        assert_eq!(
            super::label_value("x\"} 1\nevil{a=\"\\"),
            "x\\\"} 1\\nevil{a=\\\"\\\\"
        );
    }
}
