//! The live endpoint of a run or a mirror: `/status` (JSON) and `/metrics` (Prometheus text),
//! served from a snapshot the command refreshes every interval; and the run's metrics, rendered
//! from its last interval and its totals. Only target names, POPs and numbers: no URL, header
//! or credential is ever in it.

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

/// Binds and serves on the current runtime; the returned task serves until aborted.
pub async fn serve(
    addr: SocketAddr,
    snap: Snapshot,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(serve_listener(listener, snap)))
}

async fn serve_listener(listener: tokio::net::TcpListener, snap: Snapshot) {
    {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // out of files, most likely: back off instead of spinning a core
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
    }
}

/// The endpoint on a thread of its own (for `run`, whose threads are the engine's): bound when
/// this returns, stopped when dropped.
pub(crate) struct Endpoint {
    snapshot: Snapshot,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    pub fn start(addr: SocketAddr) -> std::io::Result<Endpoint> {
        let snapshot: Snapshot = Arc::new(Mutex::new((
            "{}".to_string(),
            "# no interval yet\n".to_string(),
        )));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let snap = snapshot.clone();
        let thread = std::thread::Builder::new()
            .name("edgeload-metrics".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(l) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let task = serve_listener(l, snap);
                    tokio::select! {
                        _ = task => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Endpoint {
            snapshot,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn publish(&self, json: String, prometheus: String) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = (json, prometheus);
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A run's live numbers: per target the counters so far (requests, responses by class, errors by
/// kind, retries, hit ratio) and the corrected total latency's quantiles over the last interval.
/// (status JSON, Prometheus text)
pub(crate) fn run_metrics(
    names: &[String],
    last: &crate::measure::IntervalData,
    totals: &crate::measure::IntervalData,
    elapsed: std::time::Duration,
) -> (String, String) {
    use crate::cache_status::{self, CacheClass};
    use crate::measure::{ErrorKind, Metric};
    const QUANTILES: [(&str, f64); 4] = [("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99), ("1", 1.0)];
    let t = |i: usize| &totals.targets[i];
    let target = |n: &String| format!("target=\"{}\"", label_value(n));
    // (labels, value) of every target, with `more` labels and values per target
    let per_target = |more: &dyn Fn(usize) -> Vec<(String, f64)>| -> Vec<(String, f64)> {
        (names.iter().enumerate())
            .flat_map(|(i, n)| {
                more(i)
                    .into_iter()
                    .map(move |(l, v)| (format!("{}{l}", target(n)), v))
            })
            .collect()
    };
    // the corrected total latency's quantiles over the last interval, ms
    let last_ms = |i: usize| -> Vec<Option<f64>> {
        let all = last.target_all(i);
        let h = (all.as_ref().map(|s| &s.h[Metric::Total])).filter(|h| !h.is_empty());
        (QUANTILES.iter())
            .map(|(_, at)| h.map(|h| h.value_at_quantile(*at) as f64 / 1000.0))
            .collect()
    };
    let mut p = String::new();
    family(
        &mut p,
        (
            "edgeload_elapsed_seconds",
            "gauge",
            "time since the run started",
        ),
        vec![(String::new(), elapsed.as_secs_f64())],
    );
    family(
        &mut p,
        ("edgeload_requests_total", "counter", "requests completed"),
        per_target(&|i| vec![(String::new(), t(i).requests as f64)]),
    );
    family(
        &mut p,
        (
            "edgeload_responses_total",
            "counter",
            "requests by cache class",
        ),
        per_target(&|i| {
            (CacheClass::ALL.iter())
                .filter(|c| t(i).classes[c.index()] > 0)
                .map(|c| {
                    (
                        format!(",class=\"{}\"", c.as_str()),
                        t(i).classes[c.index()] as f64,
                    )
                })
                .collect()
        }),
    );
    family(
        &mut p,
        (
            "edgeload_errors_total",
            "counter",
            "failed requests by kind",
        ),
        per_target(&|i| {
            (ErrorKind::ALL.iter())
                .filter(|k| t(i).errors[k.index()] > 0)
                .map(|k| {
                    (
                        format!(",kind=\"{}\"", k.as_str()),
                        t(i).errors[k.index()] as f64,
                    )
                })
                .collect()
        }),
    );
    family(
        &mut p,
        (
            "edgeload_retries_total",
            "counter",
            "requests resent after a reused connection closed",
        ),
        per_target(&|i| vec![(String::new(), t(i).retries as f64)]),
    );
    family(
        &mut p,
        (
            "edgeload_hit_ratio",
            "gauge",
            "hit ratio since the start (NaN before a classified response)",
        ),
        per_target(&|i| {
            let r = cache_status::hit_ratio(&t(i).classes);
            vec![(String::new(), r.unwrap_or(f64::NAN))]
        }),
    );
    family(
        &mut p,
        (
            "edgeload_latency_ms",
            "gauge",
            "corrected total latency over the last interval",
        ),
        per_target(&|i| {
            (QUANTILES.iter().zip(last_ms(i)))
                .map(|((q, _), v)| (format!(",quantile=\"{q}\""), v.unwrap_or(f64::NAN)))
                .collect()
        }),
    );
    let targets: Vec<serde_json::Value> = (names.iter().enumerate())
        .map(|(i, n)| {
            let q: serde_json::Map<String, serde_json::Value> = (QUANTILES.iter().zip(last_ms(i)))
                .map(|((q, _), v)| (q.to_string(), serde_json::json!(v)))
                .collect();
            serde_json::json!({
                "name": n, "requests": t(i).requests, "errors": t(i).error_count(),
                "retries": t(i).retries, "hit_ratio": cache_status::hit_ratio(&t(i).classes),
                "last_interval_latency_ms": q,
            })
        })
        .collect();
    let json = serde_json::json!({"elapsed_s": elapsed.as_secs_f64(), "targets": targets});
    (json.to_string(), p)
}

/// One metric family as one block: HELP and TYPE, then every sample, `{labels}` when there are.
fn family(p: &mut String, (name, kind, help): (&str, &str, &str), samples: Vec<(String, f64)>) {
    use std::fmt::Write;
    let _ = writeln!(p, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = if labels.is_empty() {
            writeln!(p, "{name} {v}")
        } else {
            writeln!(p, "{name}{{{labels}}} {v}")
        };
    }
}

#[cfg(test)]
mod tests {
    /// Every metric family is one block after its TYPE line, whatever the number of targets
    /// (the text format forbids a family in two places).
    #[test]
    fn families_are_contiguous() {
        use crate::measure::{ErrorKind, IntervalData, Outcome, record_into};
        let names = vec!["a".to_string(), "b".to_string()];
        let mut d = IntervalData::new(0, 2);
        let t0 = std::time::Instant::now();
        for t in 0..2 {
            let mut o = Outcome::failed(t0, ErrorKind::Timeout);
            o.done = t0 + std::time::Duration::from_millis(3);
            o.headers_at = Some(t0);
            record_into(&mut d, t, t0, &o);
        }
        let (_, prom) = super::run_metrics(&names, &d, &d, std::time::Duration::from_secs(1));
        let family = |l: &str| l.split(['{', ' ']).next().unwrap_or("").to_string();
        let mut seen: Vec<String> = Vec::new();
        for l in prom.lines().filter(|l| !l.starts_with('#')) {
            let f = family(l);
            if seen.last() != Some(&f) {
                assert!(!seen.contains(&f), "{f} in two places:\n{prom}");
                seen.push(f);
            }
        }
        assert!(seen.contains(&"edgeload_latency_ms".to_string()), "{prom}");
    }

    #[test]
    fn label_values_cannot_break_out_of_their_quotes() {
        assert_eq!(super::label_value("FRA"), "FRA");
        assert_eq!(
            super::label_value("x\"} 1\nevil{a=\"\\"),
            "x\\\"} 1\\nevil{a=\\\"\\\\"
        );
    }
}
