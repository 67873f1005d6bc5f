//! The mirror: live access-log lines -> parse and filter -> bounded queue per target (full:
//! drop and count, never block the input) -> rate limit (governor) and in-flight cap -> the
//! engine's HTTP client -> sliding-window hit ratio per target and POP -> cutover gate.
//! Safe next to production: only the configured targets are contacted, GET/HEAD only, no
//! request headers taken from the log.

pub mod follow;
pub mod window;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use governor::{Quota, RateLimiter};
use tokio::sync::{Semaphore, mpsc};

use crate::cache_status::{self, Classifier};
use crate::engine::client::{Client, ClientConfig};
use crate::engine::{Target, join_url};
use crate::extract::Filters;
use crate::logs::json::JsonFields;
use crate::logs::{Format, Line, Parser, detect};
use crate::measure::{IntervalData, Sink, record_into};
use crate::results::ResultsWriter;
use crate::results::summary::{LoadModel, RateSummary, RunMeta, Summary, Verdict};
use window::{Gate, Tracker};

#[derive(Clone, Debug)]
pub enum Input {
    Follow {
        path: PathBuf,
        from_start: bool,
    },
    /// the rotated files next to a followed log, read once (plain, .gz, .zst)
    Rotated(PathBuf),
    Syslog(SocketAddr),
    Stdin,
}

#[derive(Clone, Debug)]
pub struct MirrorConfig {
    pub targets: Vec<Target>,
    pub inputs: Vec<Input>,
    pub format: Option<Format>,
    pub json: Arc<JsonFields>,
    pub filters: Filters,
    /// requests per second per target
    pub rate: Option<f64>,
    pub max_in_flight: usize,
    pub queue: usize,
    pub dedupe: Option<Duration>,
    pub client: ClientConfig,
    pub classifier: Classifier,
    pub window: Duration,
    pub gate: Option<Gate>,
    pub max_duration: Option<Duration>,
    pub out: Option<PathBuf>,
    pub run_id: String,
    pub region: String,
    pub status: Option<SocketAddr>,
    pub progress_every: Option<Duration>,
    pub poll: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    GatePassed,
    InputEnded,
    MaxDuration,
    Interrupted,
}

/// Input accounting: every line ends up in exactly one of these.
#[derive(Default)]
pub struct Counters {
    pub lines: AtomicU64,
    pub malformed: AtomicU64,
    pub filtered: AtomicU64,
    pub unsafe_target: AtomicU64,
    pub deduped: AtomicU64,
    /// accepted lines (each goes to every target's queue)
    pub accepted: AtomicU64,
    pub follow: follow::FollowEvents,
}

struct TargetQ {
    tx: mpsc::Sender<(reqwest::Url, bool)>,
    enqueued: AtomicU64,
    dropped: AtomicU64,
    base: reqwest::Url,
}

struct State {
    cur: IntervalData,
    totals: IntervalData,
    tracker: Tracker,
    writer: Option<ResultsWriter>,
    sent: Vec<u64>,
    in_flight: Vec<u64>,
}

pub struct Mirror {
    pub ending: Ending,
    pub summary: Summary,
    pub dir: Option<PathBuf>,
}

/// Builds the request URL from a logged path: the target's scheme, host and port only, under
/// its base path (`base` carries no userinfo: see `client::without_userinfo`).
pub(crate) fn safe_url(base: &reqwest::Url, path: &str) -> Option<reqwest::Url> {
    if !path.starts_with('/') || crate::urls::path_refusal(path).is_some() {
        return None;
    }
    let u = reqwest::Url::parse(&join_url(base.as_str(), path)).ok()?;
    let same = u.scheme() == base.scheme()
        && u.host_str() == base.host_str()
        && u.port_or_known_default() == base.port_or_known_default()
        && u.username().is_empty()
        && u.password().is_none()
        && u.path().starts_with(base.path().trim_end_matches('/'));
    same.then_some(u)
}

fn now_s(start: Instant) -> u64 {
    start.elapsed().as_secs()
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// The line handler shared by all inputs: parse, filter, dedupe, enqueue or drop.
struct Intake {
    cfg: Arc<MirrorConfig>,
    counters: Arc<Counters>,
    queues: Arc<Vec<TargetQ>>,
    parser: Option<Parser>,
    seen: HashMap<String, Instant>,
    n: u64,
}

impl Intake {
    fn line(&mut self, line: &str) {
        let c = &self.counters;
        c.lines.fetch_add(1, Ordering::Relaxed);
        self.n += 1;
        let line = follow::strip_syslog(line);
        if self.parser.is_none() {
            let f = self.cfg.format.or_else(|| detect(line));
            match f {
                Some(f) => self.parser = Some(Parser::new(f, &self.cfg.json)),
                None => {
                    c.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        let Some(p) = self.parser.as_mut() else {
            return;
        };
        let r = match p.parse(line) {
            Line::Record(r) => r,
            Line::Skip => {
                c.filtered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Line::Malformed(_) => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if !matches!(r.method.as_ref(), "GET" | "HEAD")
            || self.cfg.filters.check(&r, self.n).is_some()
        {
            c.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // the destination is always a configured target; the logged host never counts, and
        // the path stays under the target's base
        if !r.target.starts_with('/') || crate::urls::path_refusal(&r.target).is_some() {
            c.unsafe_target.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(win) = self.cfg.dedupe {
            let now = Instant::now();
            if self
                .seen
                .get(r.target.as_ref())
                .is_some_and(|t| now.duration_since(*t) < win)
            {
                c.deduped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if self.seen.len() > 200_000 {
                self.seen.retain(|_, t| now.duration_since(*t) < win);
            }
            self.seen.insert(r.target.to_string(), now);
        }
        c.accepted.fetch_add(1, Ordering::Relaxed);
        let head = r.method == "HEAD";
        for q in self.queues.iter() {
            // a full queue drops the line before any URL work: the input must keep up
            if q.tx.capacity() == 0 {
                q.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(u) = safe_url(&q.base, &r.target) else {
                // cannot happen for a path starting with '/': counted as dropped to keep the sums
                q.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            match q.tx.try_send((u, head)) {
                Ok(()) => q.enqueued.fetch_add(1, Ordering::Relaxed),
                Err(_) => q.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// Runs until the gate passes, the inputs end, `max_duration` passes or `stop` is set.
/// `counters` can be watched from outside while it runs.
pub fn run(
    cfg: MirrorConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> anyhow::Result<Mirror> {
    let cfg = Arc::new(cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg, stop, counters))
}

async fn run_async(
    cfg: Arc<MirrorConfig>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> anyhow::Result<Mirror> {
    let n_t = cfg.targets.len();
    let client = Arc::new(
        Client::new(&cfg.client, cfg.classifier.clone(), cfg.max_in_flight)
            .map_err(anyhow::Error::msg)?,
    );
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let names: Vec<String> = cfg.targets.iter().map(|t| t.name.clone()).collect();
    let mut writer = match &cfg.out {
        Some(dir) => Some(ResultsWriter::create(
            dir,
            &cfg.run_id,
            &cfg.region,
            names.clone(),
            Duration::from_secs(1),
            false,
        )?),
        None => None,
    };
    if let Some(w) = writer.as_mut() {
        w.begin(start_wall)?;
    }
    let state = Arc::new(Mutex::new(State {
        cur: IntervalData::new(0, n_t),
        totals: IntervalData::new(0, n_t),
        tracker: Tracker::new(n_t, secs(cfg.window)),
        writer,
        sent: vec![0; n_t],
        in_flight: vec![0; n_t],
    }));
    // queues and senders, one per target
    let mut queues = Vec::new();
    let mut senders = Vec::new();
    for (ti, t) in cfg.targets.iter().enumerate() {
        let (tx, mut rx) = mpsc::channel::<(reqwest::Url, bool)>(cfg.queue.max(1));
        // the base's userinfo becomes Basic auth (the same rule as `run`); URLs carry none
        let given = reqwest::Url::parse(&t.base)?;
        let auth = crate::engine::client::basic_auth(&given, &cfg.client.headers);
        let base = reqwest::Url::parse(&crate::engine::client::without_userinfo(&t.base))?;
        queues.push(TargetQ {
            tx,
            enqueued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            base,
        });
        let limiter = cfg
            .rate
            .and_then(|r| NonZeroU32::new(r.ceil() as u32))
            // spaced evenly from the start: no burst of a second's worth at once
            .map(|r| {
                let q = Quota::per_second(r).allow_burst(NonZeroU32::MIN);
                Arc::new(RateLimiter::direct(q))
            });
        let max = cfg.max_in_flight.max(1);
        let sem = Arc::new(Semaphore::new(max));
        let (client, state, stop) = (client.clone(), state.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            while let Some((url, head)) = rx.recv().await {
                if let Some(l) = &limiter {
                    l.until_ready().await;
                }
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                // once stopped, nothing more leaves: what is queued stays unsent (counted)
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(mut s) = state.lock() {
                    s.sent[ti] += 1;
                    s.in_flight[ti] += 1;
                }
                let (client, state, auth) = (client.clone(), state.clone(), auth.clone());
                tokio::spawn(async move {
                    let o = client
                        .fetch_at(&url, head, Instant::now(), auth.as_ref())
                        .await;
                    if let Ok(mut s) = state.lock() {
                        let class = record_into(&mut s.cur, ti, o.sent, &o);
                        let now = now_s(start);
                        s.tracker
                            .record(ti, o.pop.as_ref().map(|p| p.as_str()), class, now);
                        s.in_flight[ti] -= 1;
                    }
                    drop(permit);
                });
            }
            // wait for this target's requests in flight
            let _ = sem.acquire_many(max as u32).await;
        }));
    }
    let queues = Arc::new(queues);

    // inputs on their own threads
    let mut inputs = Vec::new();
    for input in cfg.inputs.clone() {
        // bind the syslog socket here: a port in use is an error now, and the socket listens
        // before the status endpoint answers
        let sock = match &input {
            Input::Syslog(addr) => Some(
                std::net::UdpSocket::bind(addr)
                    .map_err(|e| anyhow::anyhow!("--syslog {addr}: {e}"))?,
            ),
            _ => None,
        };
        let mut intake = Intake {
            cfg: cfg.clone(),
            counters: counters.clone(),
            queues: queues.clone(),
            parser: None,
            seen: HashMap::new(),
            n: 0,
        };
        let stop = stop.clone();
        let poll = cfg.poll;
        inputs.push(std::thread::spawn(move || -> std::io::Result<()> {
            match input {
                Input::Follow { path, from_start } => {
                    let counters = intake.counters.clone();
                    follow::follow(&path, from_start, stop, poll, &counters.follow, |l| {
                        intake.line(l)
                    })
                }
                Input::Syslog(_) => match sock {
                    Some(sock) => follow::syslog_udp(sock, stop, |l| intake.line(l)),
                    None => Ok(()),
                },
                Input::Rotated(path) => follow::read_rotated(&path, stop, |l| intake.line(l)),
                Input::Stdin => follow::stdin_lines(stop, |l| intake.line(l)),
            }
        }));
    }

    let status_snap = Arc::new(Mutex::new((String::from("{}"), String::new())));
    let _status = match cfg.status {
        Some(addr) => Some(crate::results::live::serve(addr, status_snap.clone()).await?),
        None => None,
    };

    // the ticker: rotate intervals, progress, status, gate
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_progress = Instant::now();
    let mut idx = 0u64;
    let ending = loop {
        tick.tick().await;
        idx += 1;
        let (gate_ok, snapshot) = {
            let mut guard = state
                .lock()
                .map_err(|_| anyhow::anyhow!("mirror state poisoned"))?;
            let s = &mut *guard;
            let done = std::mem::replace(&mut s.cur, IntervalData::new(idx, n_t));
            s.totals.add(&done);
            if let Some(w) = s.writer.as_mut() {
                w.interval(&done, &s.totals)?;
            }
            let now = now_s(start);
            let gate_ok = cfg.gate.as_ref().is_some_and(|g| s.tracker.gate(g, now));
            (
                gate_ok,
                snapshot(&cfg, s, &counters, &queues, now, start.elapsed()),
            )
        };
        if let Ok(mut st) = status_snap.lock() {
            *st = (snapshot.0.clone(), snapshot.1.clone());
        }
        if let Some(every) = cfg.progress_every
            && last_progress.elapsed() >= every
        {
            last_progress = Instant::now();
            eprintln!("{}", crate::guard::quote::escape(&snapshot.2));
        }
        if gate_ok {
            break Ending::GatePassed;
        }
        if stop.load(Ordering::Relaxed) {
            break Ending::Interrupted;
        }
        if cfg.max_duration.is_some_and(|m| start.elapsed() >= m) {
            break Ending::MaxDuration;
        }
        if inputs.iter().all(|h| h.is_finished()) {
            let idle = queues
                .iter()
                .all(|q| q.tx.capacity() == q.tx.max_capacity());
            let in_flight: u64 = state.lock().map(|s| s.in_flight.iter().sum()).unwrap_or(0);
            if idle && in_flight == 0 {
                break Ending::InputEnded;
            }
        }
    };
    // stop reading and sending, let what is in flight finish briefly, flush
    stop.store(true, Ordering::Relaxed);
    // the inputs see `stop` within a poll; stdin may sit in a read until its next line: it is
    // left behind (the process ends, and it only ever enqueues)
    let wait_inputs = Instant::now() + Duration::from_secs(1);
    while inputs.iter().any(|h| !h.is_finished()) && Instant::now() < wait_inputs {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for h in inputs.into_iter().filter(|h| h.is_finished()) {
        match h.join() {
            Ok(Err(e)) => eprintln!(
                "warning: input: {}",
                crate::guard::quote::escape(&e.to_string())
            ),
            Err(_) => eprintln!("warning: an input thread failed"),
            Ok(Ok(())) => {}
        }
    }
    let per_target: Vec<(u64, u64)> = queues
        .iter()
        .map(|q| {
            (
                q.enqueued.load(Ordering::Relaxed),
                q.dropped.load(Ordering::Relaxed),
            )
        })
        .collect();
    drop(queues);
    let drain = async {
        for s in senders {
            let _ = s.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    let mut guard = state
        .lock()
        .map_err(|_| anyhow::anyhow!("mirror state poisoned"))?;
    let s = &mut *guard;
    let done = std::mem::replace(&mut s.cur, IntervalData::new(idx + 1, n_t));
    s.totals.add(&done);
    if let Some(w) = s.writer.as_mut() {
        w.interval(&done, &s.totals)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bases: Vec<(String, String)> = cfg
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.base.clone()))
        .collect();
    let completed: u64 = s.totals.targets.iter().map(|t| t.requests).sum();
    let rate = RateSummary {
        model: LoadModel::Mirror,
        intended_rps: cfg.rate.map(|r| r * cfg.targets.len() as f64),
        achieved_rps: completed as f64 / elapsed.max(1e-9),
        planned_requests: None,
        sent: s.sent.iter().sum(),
        // queued (accepted) but not sent by the stop
        unsent: (per_target.iter().zip(&s.sent))
            .map(|((enq, _), sent)| enq.saturating_sub(*sent))
            .sum(),
        completed,
        abandoned: s.in_flight.iter().sum(),
        send_lag: None,
        fell_behind: false,
    };
    let targets_echo: Vec<serde_json::Value> = (bases.iter())
        .map(|(n, b)| serde_json::json!({"name": n, "base_url": crate::guard::redact::url(b)}))
        .collect();
    let meta = RunMeta {
        run_id: &cfg.run_id,
        region: &cfg.region,
        scenario: serde_json::json!({"mode": "mirror", "targets": targets_echo}),
        started: start_wall,
        ended: start_wall + start.elapsed(),
        interval: Duration::from_secs(1),
        interrupted: ending == Ending::Interrupted,
    };
    let mut summary = Summary::new(meta, rate, &s.totals, &bases);
    summary.verdict = match (&cfg.gate, ending) {
        (None, _) => Verdict::None,
        (Some(_), Ending::GatePassed) => Verdict::Pass,
        (Some(_), _) => Verdict::Fail,
    };
    summary.mirror = Some(accounting(&counters, s, ending, &per_target, &names));
    let dir = match s.writer.take() {
        Some(mut w) => {
            w.pops(&s.totals, start.elapsed())?;
            Some(w.finish(&summary)?)
        }
        None => None,
    };
    Ok(Mirror {
        ending,
        summary,
        dir,
    })
}

/// Where every line went: lines = accepted + filtered + malformed + unsafe + deduped, and per
/// target accepted = sent + dropped + unsent (left in the queue at the stop).
fn accounting(
    c: &Counters,
    s: &State,
    ending: Ending,
    per_target: &[(u64, u64)],
    names: &[String],
) -> serde_json::Value {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let targets: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (enq, dropped) = per_target[i];
            serde_json::json!({"name": n, "enqueued": enq, "dropped": dropped, "sent": s.sent[i], "unsent": enq.saturating_sub(s.sent[i])})
        })
        .collect();
    serde_json::json!({
        "targets": targets,
        "rotations": ld(&c.follow.rotations),
        "truncations": ld(&c.follow.truncations),
        "ending": format!("{ending:?}"),
        "lines": ld(&c.lines),
        "malformed": ld(&c.malformed),
        "filtered": ld(&c.filtered),
        "unsafe_target": ld(&c.unsafe_target),
        "deduped": ld(&c.deduped),
        "accepted": ld(&c.accepted),
        "sent_per_target": s.sent,
    })
}

/// (status JSON, Prometheus text, progress line)
fn snapshot(
    cfg: &MirrorConfig,
    s: &mut State,
    c: &Counters,
    q: &[TargetQ],
    now: u64,
    elapsed: Duration,
) -> (String, String, String) {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut targets = Vec::new();
    let mut prom = String::new();
    let mut line = format!("{:>6.0}s  lines {}", elapsed.as_secs_f64(), ld(&c.lines));
    prom += &format!(
        "# TYPE edgeload_mirror_lines_total counter\nedgeload_mirror_lines_total {}\n",
        ld(&c.lines)
    );
    prom += &format!(
        "edgeload_mirror_filtered_total {}\nedgeload_mirror_malformed_total {}\n",
        ld(&c.filtered) + ld(&c.unsafe_target) + ld(&c.deduped),
        ld(&c.malformed)
    );
    for (ti, t) in cfg.targets.iter().enumerate() {
        let tr = &mut s.tracker.targets[ti];
        let (ratio, n) = tr.overall.ratio(now);
        let tot = &s.totals.targets[ti];
        let errors = tot.error_count();
        let pops: Vec<serde_json::Value> = tr
            .pops
            .iter_mut()
            .map(|(p, w)| {
                let (r, n) = w.ratio(now);
                serde_json::json!({"pop": p, "hit_ratio": r, "samples": n})
            })
            .collect();
        let (dropped, enq) = (ld(&q[ti].dropped), ld(&q[ti].enqueued));
        let depth = q[ti].tx.max_capacity() - q[ti].tx.capacity();
        targets.push(serde_json::json!({
            "name": t.name, "hit_ratio": ratio, "window_samples": n, "requests": tot.requests,
            "hit_ratio_total": cache_status::hit_ratio(&tot.classes), "errors": errors, "dropped": dropped,
            "enqueued": enq, "queue_depth": depth, "in_flight": s.in_flight[ti], "pops": pops,
            "gate_held_s": tr.since.map(|x| now - x),
        }));
        let l = format!("target=\"{}\"", crate::results::live::label_value(&t.name));
        prom += &format!("edgeload_mirror_requests_total{{{l}}} {}\n", tot.requests);
        prom += &format!(
            "edgeload_mirror_hit_ratio{{{l}}} {}\n",
            ratio.unwrap_or(f64::NAN)
        );
        prom += &format!("edgeload_mirror_dropped_total{{{l}}} {dropped}\n");
        prom += &format!("edgeload_mirror_errors_total{{{l}}} {errors}\n");
        prom += &format!("edgeload_mirror_queue_depth{{{l}}} {depth}\n");
        for (p, w) in tr.pops.iter_mut() {
            let (r, _) = w.ratio(now);
            prom += &format!(
                "edgeload_mirror_pop_hit_ratio{{{l},pop=\"{}\"}} {}\n",
                crate::results::live::label_value(p),
                r.unwrap_or(f64::NAN)
            );
        }
        line += &format!(
            " | {} hit {} ({} in window) req {} drop {dropped} err {errors}",
            t.name,
            ratio
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
            n,
            tot.requests
        );
    }
    let json = serde_json::json!({
        "elapsed_s": elapsed.as_secs_f64(), "lines": ld(&c.lines), "malformed": ld(&c.malformed),
        "filtered": ld(&c.filtered), "unsafe_target": ld(&c.unsafe_target), "deduped": ld(&c.deduped),
        "accepted": ld(&c.accepted), "targets": targets,
    });
    (json.to_string(), prom, line)
}
