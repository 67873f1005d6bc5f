//! The load engine: worker threads (each a single-threaded tokio runtime with its own HTTP
//! client and recorder) pull request numbers from one atomic counter, wait for the intended send
//! time (open model) or send at once (closed model), and record; an aggregator thread of its
//! own merges finished intervals in order and hands them to a `measure::Sink` (the results
//! writer).

pub mod client;
mod failure;
pub mod h1;
mod h2;
pub mod recorder;
pub mod schedule;
pub mod tls;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;

use crate::cache_status::Classifier;
use crate::measure::{IntervalData, Sink};
use crate::urls::{Order, Paths, Picker};
use client::{Client, ClientConfig, ThreadClient};
use recorder::{Msg, Recorder};
use schedule::Schedule;

/// The defaults of a run, written once: `run` and `EngineConfig::new` use these (the client's
/// are `ClientConfig::default`).
pub mod defaults {
    use std::time::Duration;

    /// open model: most requests outstanding
    pub const MAX_IN_FLIGHT: usize = 512;
    /// a run without --duration, --requests or --sweep
    pub const DURATION: Duration = Duration::from_secs(10);
    /// an open run bounded by its count only: a schedule that outlasts any count
    pub const UNBOUNDED: Duration = Duration::from_secs(86_400 * 365);
    /// closed model with --requests or --sweep and no --concurrency
    pub const SWEEP_CONCURRENCY: usize = 32;
    pub const INTERVAL: Duration = Duration::from_secs(1);
    /// how long requests in flight may finish after a stop
    pub const GRACE: Duration = Duration::from_secs(2);
    pub(crate) const THREADS: usize = 2;
}

/// A CDN under test: a name (label in every output) and the base URL paths are appended to.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub base: String,
}

#[derive(Clone, Debug)]
pub enum Model {
    /// Requests at intended times from the schedule; at most `max_in_flight` outstanding.
    Open {
        schedule: Schedule,
        max_in_flight: usize,
    },
    /// `concurrency` workers, each sends, waits for the answer, thinks, repeats.
    Closed { concurrency: usize, think: Duration },
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub targets: Vec<Target>,
    pub urls: Arc<Paths>,
    pub order: Order,
    pub seed: u64,
    pub model: Model,
    /// closed model: stop sending after this long (the open model's schedule has its own end)
    pub duration: Option<Duration>,
    /// per target
    pub requests: Option<u64>,
    /// every URL exactly once per target
    pub sweep: bool,
    pub threads: usize,
    pub interval: Duration,
    pub client: ClientConfig,
    pub classifier: Classifier,
    pub samples: bool,
    /// after a stop, how long in-flight requests may finish before they are abandoned
    pub grace: Duration,
    /// which requests of the planned sequence this process sends (`run --runner K/N`)
    pub share: Share,
}

/// Which requests of the one planned sequence a runner sends: runner `index` (0-based) of
/// `count` sends requests `index`, `index + count`, `index + 2 count`, ... of each target, at
/// their intended times and with their URLs, so that N runners together send exactly the
/// planned schedule and URL order (`run --runner K/N`; one runner sends them all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub index: u64,
    pub count: u64,
}

impl Share {
    pub const ALL: Share = Share { index: 0, count: 1 };

    /// The planned request number of this runner's `local`-th request (None past u64).
    fn global(&self, local: u64) -> Option<u64> {
        local.checked_mul(self.count)?.checked_add(self.index)
    }

    /// How many of the planned requests `0..n` are this runner's.
    pub fn of(&self, n: u64) -> u64 {
        if n <= self.index {
            0
        } else {
            (n - self.index).div_ceil(self.count.max(1))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("target {target}: URL {url:?} is not valid: {err}")]
    BadUrl {
        target: String,
        url: String,
        err: String,
    },
    #[error("{0}")]
    Client(String),
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Unsupported(std::io::Error),
    #[error("writing results: {0}")]
    Sink(std::io::Error),
    #[error(
        "the machine ran out of open files during the run (EMFILE; the limit is {0}): the run \
         stopped, since what it would go on to record is the load generator's limit, not the \
         target's; lower --concurrency/--max-in-flight or raise the limit (ulimit -n)"
    )]
    OutOfFiles(String),
}

/// Stops a run from outside (Ctrl-C): `stop` ends sending; `abort` abandons in-flight requests.
#[derive(Clone)]
pub struct Control {
    stop: Arc<watch::Sender<bool>>,
    abort: Arc<watch::Sender<bool>>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            stop: Arc::new(watch::channel(false).0),
            abort: Arc::new(watch::channel(false).0),
        }
    }
}

impl Control {
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
    pub(crate) fn abort(&self) {
        self.abort.send_replace(true);
    }
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

/// What a finished run knows beyond its intervals.
#[derive(Debug)]
pub struct RunStats {
    pub started: SystemTime,
    pub elapsed: Duration,
    pub totals: IntervalData,
    pub intervals: u64,
    pub interrupted: bool,
    /// requests sent (all targets)
    pub sent: u64,
    /// in flight when the grace period ended, abandoned and not recorded
    pub abandoned: u64,
    /// planned requests (all targets), when the plan has a count
    pub planned: Option<u64>,
    pub intended_rate: Option<f64>,
    /// header names seen on responses classified `unknown` (every thread's, sorted)
    pub unknown_headers: Vec<String>,
    /// why TLS handshakes failed (distinct reasons, a few)
    pub tls_errors: Vec<String>,
}

struct Shared {
    cfg: EngineConfig,
    /// the targets' base URLs as given (userinfo included), for the clients' credentials
    bases: Vec<reqwest::Url>,
    /// the targets' base URLs without userinfo, for the samples' URLs
    plain: Vec<String>,
    picker: Picker,
    next: AtomicU64,
    sent: AtomicU64,
    abandoned: AtomicU64,
    /// a request failed for lack of open files: the run stops and ends in an error
    out_of_files: std::sync::atomic::AtomicBool,
    start: Instant,
    start_wall: SystemTime,
    deadline: Option<Instant>,
    /// some target goes through reqwest, whose timeouts need tokio's time driver
    reqwest: bool,
}

/// Joins base and path: `https://cdn/x` + `/a.jpg?w=1` -> `https://cdn/x/a.jpg?w=1`.
pub fn join_url(base: &str, path: &str) -> String {
    let b = base.trim_end_matches('/');
    if path.starts_with('/') {
        format!("{b}{path}")
    } else {
        format!("{b}/{path}")
    }
}

/// Checks a base URL: http(s), a host, no query or fragment.
pub fn check_base(base: &str) -> Result<(), String> {
    let shown = crate::guard::redact::url(base);
    let base = shown.as_ref();
    let u = reqwest::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{base:?}: scheme must be http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{base:?}: no host"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        // (not quoted whole: a query may hold a signature)
        let head = &base[..base.find(['?', '#']).unwrap_or(base.len())];
        return Err(format!("{head:?}: a base URL has no query or fragment"));
    }
    Ok(())
}

impl EngineConfig {
    /// A config with the defaults `run` uses when no flag says otherwise: sequential order,
    /// seed 1, no count or sweep limit, 2 threads, 1 s intervals, default client and
    /// classifier, no samples, 2 s grace.
    pub fn new(targets: Vec<Target>, urls: Arc<Paths>, model: Model) -> EngineConfig {
        EngineConfig {
            targets,
            urls,
            order: Order::Sequential,
            seed: 1,
            model,
            duration: None,
            requests: None,
            sweep: false,
            threads: defaults::THREADS,
            interval: defaults::INTERVAL,
            client: ClientConfig::default(),
            classifier: Classifier::default(),
            samples: false,
            grace: defaults::GRACE,
            share: Share::ALL,
        }
    }

    /// Requests planned per target, if the plan has a count.
    pub(crate) fn planned_per_target(&self) -> Option<u64> {
        let mut p: Option<u64> = None;
        if let Model::Open { schedule, .. } = &self.model {
            p = Some(schedule.planned_requests());
        }
        for lim in [self.requests, self.sweep.then_some(self.urls.len() as u64)]
            .into_iter()
            .flatten()
        {
            p = Some(p.map_or(lim, |x| x.min(lim)));
        }
        p.map(|n| self.share.of(n))
    }
}

/// What `check` found: the targets' base URLs as given and without userinfo, and whether some
/// target goes through reqwest.
struct Checked {
    bases: Vec<reqwest::Url>,
    plain: Vec<String>,
    reqwest: bool,
}

/// Everything that can make a run fail before it sends, checked without sending: the paths,
/// the targets and their credentials, headers, HTTP/2 settings, the trust store and --cacert
/// files, the open-file limit, the workers' timer. `run` starts with it; `run --check` stops
/// after it.
pub fn check_config(cfg: &EngineConfig) -> Result<(), EngineError> {
    check(cfg).map(drop)
}

fn check(cfg: &EngineConfig) -> Result<Checked, EngineError> {
    let mut bases = Vec::with_capacity(cfg.targets.len());
    let mut plain = Vec::with_capacity(cfg.targets.len());
    // the paths are the same for every target: checked once (a list `read` took was checked
    // as it was read; no URL is made)
    if let Some((p, why)) = cfg.urls.first_unsendable() {
        return Err(EngineError::BadUrl {
            target: cfg
                .targets
                .first()
                .map_or("", |t| t.name.as_str())
                .to_string(),
            url: p,
            err: why.to_string(),
        });
    }
    for t in &cfg.targets {
        let base = reqwest::Url::parse(&t.base).map_err(|err| EngineError::BadUrl {
            target: t.name.clone(),
            url: crate::guard::redact::url(&t.base).into_owned(),
            err: err.to_string(),
        })?;
        // one origin, one set of credentials (the lean client keeps them per origin)
        if let Some(o) = (cfg.targets.iter().zip(&bases)).find(|(_, b): &(_, &reqwest::Url)| {
            b.origin() == base.origin()
                && (b.username(), b.password()) != (base.username(), base.password())
        }) {
            return Err(EngineError::Client(format!(
                "targets {} and {} share an origin but not its credentials",
                o.0.name, t.name
            )));
        }
        // requests carry no userinfo: credentials go in a header (client::basic_auth); a path
        // (checked above: no dot segment, nothing to encode) appended to the base's own path
        // stays under it, byte for byte
        // (as the URL parser writes it: what the samples show is what went on the wire)
        let p = client::without_userinfo(&t.base);
        let p = reqwest::Url::parse(&p).map_or(p, |u| u.to_string());
        plain.push(p.trim_end_matches('/').to_string());
        bases.push(base);
    }
    // every origin once, without userinfo (which client serves it, TLS names)
    let origins: Vec<reqwest::Url> = (plain.iter())
        .filter_map(|p| reqwest::Url::parse(p).ok())
        .collect();
    // A bad header is an error before any thread starts. The reqwest client (TLS roots and all:
    // ~1 MB and many code pages) is built up front only when a target will need it.
    // Every URL of a target shares its origin: the first one tells (as in ThreadClient::new).
    client::default_headers(&cfg.client.headers).map_err(EngineError::Client)?;
    let reqwest = !cfg.client.lean_http1 || origins.iter().any(|u| !h1::H1::accepts(u));
    if reqwest {
        Client::new(&cfg.client, cfg.classifier.clone(), 1).map_err(EngineError::Client)?;
    }
    if let Some(n) = cfg.client.http2 {
        if !cfg.client.lean_http1 {
            return Err(EngineError::Client(
                "HTTP/2 by choice needs the built-in client (not --reqwest)".into(),
            ));
        }
        let in_flight = match &cfg.model {
            Model::Open { max_in_flight, .. } => *max_in_flight,
            Model::Closed { concurrency, .. } => *concurrency,
        };
        if n > in_flight.max(1) {
            return Err(EngineError::Client(format!(
                "--connections {n}: more than the requests in flight ({in_flight}); a \
                 connection would never carry one"
            )));
        }
        if n < cfg.threads.max(1) {
            return Err(EngineError::Client(format!(
                "--connections {n}: at least one a thread ({} threads; --threads {n} or fewer)",
                cfg.threads.max(1)
            )));
        }
    }
    // the trust store and --cacert files: read once, an error before any thread starts
    let https: Vec<&reqwest::Url> = (origins.iter()).filter(|u| u.scheme() == "https").collect();
    if cfg.client.lean_http1 && !https.is_empty() {
        tls::Trust::shared(&cfg.client.tls).map_err(EngineError::Client)?;
        for u in &https {
            if u.host_str().and_then(tls::server_name).is_none() {
                return Err(EngineError::Client(format!(
                    "{}: not a name TLS can check a certificate against",
                    crate::guard::redact::url(u.as_str())
                )));
            }
        }
    }
    // every connection is a file: make room for them all up front (a run short of files
    // turned every request into an instant `connect` error, in a tight loop)
    let per_target = match &cfg.model {
        Model::Open { max_in_flight, .. } => *max_in_flight,
        Model::Closed { concurrency, .. } => *concurrency,
    } as u64;
    let needed = per_target * cfg.targets.len() as u64 + 64 + 16 * cfg.threads as u64;
    crate::sys::open_files(needed).map_err(|(soft, hard)| {
        EngineError::Unsupported(std::io::Error::other(format!(
            "this run needs about {needed} open files (connections and the threads' own) and \
             the limit is {soft} (hard limit {hard}): lower --concurrency/--max-in-flight or \
             raise the limit (ulimit -n)"
        )))
    })?;
    // the workers pace on a timerfd: where there is none, say so before any thread starts
    drop(crate::sys::timerfd().map_err(EngineError::Unsupported)?);
    Ok(Checked {
        bases,
        plain,
        reqwest,
    })
}

/// Runs the load to its end (or until `control` stops it), feeding `sink` in order and calling
/// `on_interval` after each interval (progress display).
pub fn run(
    cfg: EngineConfig,
    control: &Control,
    sink: &mut (dyn Sink + Send),
    on_interval: &mut (dyn FnMut(&IntervalData, &IntervalData, Duration) + Send),
) -> Result<RunStats, EngineError> {
    let Checked {
        bases,
        plain,
        reqwest,
    } = check(&cfg)?;
    let picker = Picker::new(&cfg.urls, cfg.order, cfg.seed, cfg.sweep);
    let n_targets = cfg.targets.len();
    let threads = cfg.threads.max(1);
    let planned = cfg.planned_per_target().map(|p| p * n_targets as u64);
    let intended_rate = match &cfg.model {
        Model::Open { schedule, .. } => {
            Some(schedule.mean_rate() * n_targets as f64 / cfg.share.count.max(1) as f64)
        }
        Model::Closed { .. } => None,
    };
    let start = Instant::now() + Duration::from_millis(20); // let the threads come up first
    let start_wall = SystemTime::now() + Duration::from_millis(20);
    // when sending stops: the closed model's duration, the open model's schedule (a request
    // due before it but still waiting for a free slot then is never sent: counted as unsent)
    let deadline = match &cfg.model {
        Model::Closed { .. } => cfg.duration.map(|d| start + d),
        Model::Open { schedule, .. } => start.checked_add(schedule.duration()),
    };
    sink.begin(start_wall).map_err(EngineError::Sink)?;
    let shared = Arc::new(Shared {
        cfg,
        bases,
        plain,
        picker,
        next: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        abandoned: AtomicU64::new(0),
        out_of_files: std::sync::atomic::AtomicBool::new(false),
        start,
        start_wall,
        deadline,
        reqwest,
    });
    let (tx, rx) = mpsc::channel::<Msg>();
    // this run's own stop and abort: the caller's control (Ctrl-C) stops it too, and so does
    // the end of the run; the caller's is never changed here (demo runs twice with one)
    let run_ctl = Control::default();
    let mut handles = Vec::with_capacity(threads);
    for tid in 0..threads {
        let sh = shared.clone();
        let tx = tx.clone();
        let ctl = (control.clone(), run_ctl.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("edgeload-w{tid}"))
                .spawn(move || worker_thread(tid, threads, sh, tx, ctl))
                .map_err(EngineError::Thread)?,
        );
    }
    drop(tx);

    // Aggregate on a thread of its own, lowered for good (sys::background_thread): its
    // once-an-interval burst must not delay the workers, and nothing needs restoring after.
    let agg = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("edgeload-agg".into())
            .spawn_scoped(s, || {
                crate::sys::background_thread();
                let ctl = (control, &run_ctl);
                aggregate(rx, threads, n_targets, &shared, ctl, sink, on_interval)
            })
            .map_err(EngineError::Thread)?
            .join()
            .map_err(|_| EngineError::Thread(std::io::Error::other("the aggregator panicked")))
    });
    if !matches!(agg, Ok(Ok(_))) {
        // nothing would record what the workers send: stop them now
        run_ctl.stop();
        run_ctl.abort();
    }
    for h in handles {
        let _ = h.join();
    }
    let (totals, next_emit, (unknown_headers, tls_errors)) = agg??;
    if shared.out_of_files.load(Ordering::Relaxed) {
        let limit = crate::sys::open_files_limit().map_or("unknown".into(), |l| l.to_string());
        return Err(EngineError::OutOfFiles(limit));
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    Ok(RunStats {
        started: start_wall,
        elapsed,
        totals,
        intervals: next_emit,
        interrupted: control.is_stopped(),
        sent: shared.sent.load(Ordering::Relaxed),
        abandoned: shared.abandoned.load(Ordering::Relaxed),
        planned,
        intended_rate,
        unknown_headers,
        tls_errors,
    })
}

/// What the threads noted besides their numbers: header names seen on `unknown` responses, why
/// TLS handshakes failed.
type Notes = (Vec<String>, Vec<String>);

/// Emits interval k once every thread's watermark has passed it, in order, to the sink and
/// `on_interval`; aborts in-flight requests once a stop is older than the grace period.
/// Returns the run's totals and how many intervals were emitted.
fn aggregate(
    rx: mpsc::Receiver<Msg>,
    threads: usize,
    n_targets: usize,
    shared: &Shared,
    (user, run): (&Control, &Control),
    sink: &mut (dyn Sink + Send),
    on_interval: &mut (dyn FnMut(&IntervalData, &IntervalData, Duration) + Send),
) -> Result<(IntervalData, u64, Notes), EngineError> {
    let start = shared.start;
    let mut unknown = std::collections::BTreeSet::new();
    let mut tls_reasons = std::collections::BTreeSet::new();
    let mut watermarks = vec![0u64; threads];
    let mut pending: BTreeMap<u64, IntervalData> = BTreeMap::new();
    let mut totals = IntervalData::new(0, n_targets);
    let mut next_emit = 0u64;
    let mut max_seen: Option<u64> = None;
    let mut sink_err = None;
    let mut stop_seen_at: Option<Instant> = None;
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if shared.out_of_files.load(Ordering::Relaxed) {
            run.stop();
            run.abort();
        }
        // Ctrl-C, or the end of the run: sending stops; requests in flight get the grace
        if user.is_stopped() || shared.deadline.is_some_and(|d| Instant::now() >= d) {
            run.stop();
        }
        if run.is_stopped() {
            let at = *stop_seen_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= shared.cfg.grace {
                run.abort();
            }
        }
        match msg {
            None => continue,
            Some(Msg::UnknownNames(names)) => unknown.extend(names),
            Some(Msg::TlsReasons(r)) => tls_reasons.extend(r),
            Some(Msg::Samples(rows)) => {
                if sink_err.is_none()
                    && let Err(e) = sink.samples(&rows)
                {
                    sink_err = Some(e);
                    run.stop();
                }
            }
            Some(Msg::Interval {
                thread,
                data,
                watermark,
            }) => {
                if let Some(d) = data {
                    max_seen = Some(max_seen.map_or(d.idx, |m| m.max(d.idx)));
                    pending
                        .entry(d.idx)
                        .or_insert_with(|| IntervalData::new(d.idx, n_targets))
                        .add_sparse(&d);
                }
                watermarks[thread] = watermark;
                let low = watermarks.iter().copied().min().unwrap_or(0);
                let limit = if low == u64::MAX {
                    max_seen.map_or(0, |m| m + 1)
                } else {
                    low
                };
                while next_emit < limit {
                    let d = pending
                        .remove(&next_emit)
                        .unwrap_or_else(|| IntervalData::new(next_emit, n_targets));
                    totals.add(&d);
                    if sink_err.is_none()
                        && let Err(e) = sink.interval(&d, &totals)
                    {
                        sink_err = Some(e);
                        run.stop();
                    }
                    on_interval(&d, &totals, start.elapsed());
                    next_emit += 1;
                }
            }
        }
    }
    match sink_err {
        Some(e) => Err(EngineError::Sink(e)),
        None => Ok((
            totals,
            next_emit,
            (
                unknown.into_iter().collect(),
                tls_reasons.into_iter().take(8).collect(),
            ),
        )),
    }
}

/// `ctl`: the caller's control (its stop: Ctrl-C) and this run's (stop and abort).
fn worker_thread(
    tid: usize,
    threads: usize,
    sh: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    ctl: (Control, Control),
) {
    // The thread's own timers (pacing, the interval ticker, the lean client's watchdog) are
    // on its LocalTimer; tokio's time driver, which does bookkeeping on every park, is only
    // started for reqwest.
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_io();
    if sh.reqwest {
        builder.enable_time();
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(_) => return,
    };
    let cfg = &sh.cfg;
    let (local_workers, pool) = match &cfg.model {
        Model::Open { max_in_flight, .. } => {
            let n = (*max_in_flight).max(threads).div_ceil(threads);
            (n, n)
        }
        Model::Closed { concurrency, .. } => {
            // spread `concurrency` over the threads; the first ones take the remainder
            let n = concurrency / threads + usize::from(tid < concurrency % threads);
            (n, n)
        }
    };
    let labels = cfg.samples.then(|| {
        let total = match &cfg.model {
            Model::Open { max_in_flight, .. } => *max_in_flight,
            Model::Closed { concurrency, .. } => *concurrency,
        };
        (cfg.targets.iter().map(|t| t.name.clone()).collect(), total)
    });
    let mut rec = Recorder::new(
        tid,
        sh.start,
        sh.start_wall,
        cfg.interval,
        cfg.targets.len(),
        tx,
        labels,
    );
    if matches!(cfg.model, Model::Closed { .. }) {
        rec = rec.sent_as_intended();
    }
    let rec = RefCell::new(rec);
    let bases: Vec<&reqwest::Url> = sh.bases.iter().collect();
    // HTTP/2: this thread's share of the connections (the first threads take the remainder)
    let mut ccfg = cfg.client.clone();
    if let Some(n) = ccfg.http2 {
        ccfg.http2 = Some(n / threads + usize::from(tid < n % threads));
    }
    let client = match ThreadClient::new(&ccfg, cfg.classifier.clone(), pool, &bases) {
        Ok(c) => c,
        Err(_) => return, // checked before the threads started
    };
    // paced sends sleep on a timerfd in this runtime: no timer thread, no cross-thread wake
    crate::sys::precise_timer_slack();
    let Ok(timer) = rt.block_on(async { crate::precise::LocalTimer::new() }) else {
        return;
    };
    let local = Local {
        client,
        timer,
        rec,
        stopped: std::cell::Cell::new(false),
        sent: std::cell::Cell::new(0),
        in_flight: std::cell::Cell::new(0),
    };
    rt.block_on(async {
        // Every future of the thread in one FuturesUnordered, so that a wake-up polls only the
        // future it was for (a select polls all of its arms on every wake-up: the stop watcher's
        // Notify and the interval timers then re-registered their wakers once per request).
        let mut set: FuturesUnordered<Pin<Box<dyn Future<Output = Part> + '_>>> =
            FuturesUnordered::new();
        let (shr, loc) = (&*sh, &local);
        for w in 0..local_workers {
            let wid = w * threads + tid;
            set.push(Box::pin(async move {
                worker(shr, loc, wid).await;
                Part::Worker
            }));
        }
        // One watcher per thread, not a stop/abort select per request: on stop it wakes the
        // sleepers (they then see `stopped`); on abort it returns, and the loop below drops
        // the workers with their requests in flight.
        set.push(Box::pin(async {
            let (user, run) = &ctl;
            tokio::select! {
                _ = until_true(user.stop.subscribe()) => {}
                _ = until_true(run.stop.subscribe()) => {}
            }
            local.stopped.set(true);
            local.timer.wake_all();
            until_true(run.abort.subscribe()).await;
            sh.abandoned
                .fetch_add(local.in_flight.get(), Ordering::Relaxed);
            Part::Aborted
        }));
        set.push(Box::pin(async {
            let mut iv = local.timer.interval_at(sh.start, cfg.interval / 4);
            loop {
                // (a stop makes a tick early: advancing early is harmless)
                let now = iv.tick().await;
                local.rec.borrow_mut().advance(now);
            }
        }));
        set.push(Box::pin(async {
            local.timer.drive().await;
            Part::Helper
        }));
        set.push(Box::pin(async {
            local.client.watch(&local.timer).await;
            Part::Helper
        }));
        let mut workers = local_workers;
        while workers > 0 {
            match set.next().await {
                Some(Part::Worker) => workers -= 1,
                Some(Part::Helper) => {}
                Some(Part::Aborted) | None => break,
            }
        }
    });
    sh.sent.fetch_add(local.sent.get(), Ordering::Relaxed);
    let Local { client, rec, .. } = local;
    drop(client);
    rec.into_inner().finish();
}

/// Which of a thread's futures ended.
enum Part {
    Worker,
    /// the stop watcher, after an abort
    Aborted,
    /// the timer driver or the deadline watchdog (they run for as long as the thread)
    Helper,
}

/// What the workers of one thread share.
struct Local {
    client: ThreadClient,
    timer: crate::precise::LocalTimer,
    rec: RefCell<Recorder>,
    /// set by the thread's watcher when the run is stopped
    stopped: std::cell::Cell<bool>,
    /// requests this thread sent (added to the shared count when the thread ends)
    sent: std::cell::Cell<u64>,
    /// requests sent and not finished: abandoned if the run is aborted now
    in_flight: std::cell::Cell<u64>,
}

async fn until_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn worker(sh: &Shared, local: &Local, wid: usize) {
    let cfg = &sh.cfg;
    let nt = cfg.targets.len() as u64;
    let nurls = cfg.urls.len() as u64;
    loop {
        if local.stopped.get() {
            break;
        }
        let i = sh.next.fetch_add(1, Ordering::Relaxed);
        // this runner's request number -> the planned one (the schedule and the URL order are
        // functions of the planned number)
        let (t, Some(j)) = ((i % nt) as usize, cfg.share.global(i / nt)) else {
            break;
        };
        if cfg.requests.is_some_and(|n| j >= n) || (cfg.sweep && j >= nurls) {
            break;
        }
        // one clock read before the send (two after a wait): it is the send time
        let mut now = Instant::now();
        let mut intended = match &cfg.model {
            Model::Open { schedule, .. } => match schedule.send_time(j) {
                Some(d) => sh.start + d,
                None => break,
            },
            Model::Closed { .. } => {
                let at = now.max(sh.start);
                if sh.deadline.is_some_and(|d| at >= d) {
                    break;
                }
                at
            }
        };
        if intended > now {
            // a stop wakes every sleeper of the thread early
            local.timer.sleep_until(intended).await;
            if local.stopped.get() {
                break;
            }
            now = Instant::now();
            if matches!(cfg.model, Model::Closed { .. }) {
                // the closed model only waited for the start: it sends as soon as it can
                intended = now;
            }
        }
        // HTTP/2: a stream first; waiting for one is the generator's delay (send lag), not the
        // target's latency
        let permit = local.client.reserve(t).await;
        if permit.is_some() {
            now = Instant::now();
            if matches!(cfg.model, Model::Closed { .. }) {
                intended = now;
            }
        }
        if matches!(cfg.model, Model::Open { .. }) && sh.deadline.is_some_and(|d| now >= d) {
            break; // due before the end but not sent by then: unsent
        }
        let idx = sh.picker.pick(j);
        let path = cfg.urls.path(idx);
        local.sent.set(local.sent.get() + 1);
        if matches!(cfg.model, Model::Open { .. }) {
            local
                .rec
                .borrow_mut()
                .send_lag(now.saturating_duration_since(intended));
        }
        local.in_flight.set(local.in_flight.get() + 1);
        let out = local.client.fetch_path(t, path, now, permit).await;
        local.in_flight.set(local.in_flight.get() - 1);
        if failure::take_out_of_files() {
            // not a result: the aggregator stops the run and it ends in an error
            sh.out_of_files.store(true, Ordering::Relaxed);
            break;
        }
        local
            .rec
            .borrow_mut()
            .record(t, intended, (&sh.plain[t], path), wid, &out);
        if let Model::Closed { think, .. } = &cfg.model
            && !think.is_zero()
        {
            local.timer.sleep_until(Instant::now() + *think).await;
            if local.stopped.get() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod share_tests {
    use super::Share;

    #[test]
    fn runners_partition_the_planned_requests() {
        for n in [1u64, 2, 3, 7] {
            for planned in [0u64, 1, 2, 6, 10, 101] {
                let mut seen = vec![0u32; planned as usize];
                let mut total = 0;
                for k in 0..n {
                    let s = Share { index: k, count: n };
                    let mine = s.of(planned);
                    total += mine;
                    for local in 0..mine {
                        seen[s.global(local).unwrap() as usize] += 1;
                    }
                    // the next one is past the plan
                    assert!(s.global(mine).unwrap() >= planned);
                }
                assert_eq!(total, planned, "n {n} planned {planned}");
                assert!(seen.iter().all(|&c| c == 1), "n {n} planned {planned}");
            }
        }
        assert_eq!(Share::ALL.of(5), 5);
        assert_eq!(Share { index: 1, count: 2 }.global(u64::MAX), None);
    }
}
