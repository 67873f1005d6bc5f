//! `edgeload run`: flags over scenario over defaults -> a plan; executes it; prints the summary;
//! maps the verdict to the exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::execute::{Plan, execute, new_run_id};
use super::{EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLDS, UsageError, duration, usage};
use crate::cache_status::{Classifier, CustomRule, PopRule};
use crate::cli::RunArgs;
use crate::engine::client::ClientConfig;
use crate::engine::h1::Pin;
use crate::engine::schedule::{Schedule, Stage};
use crate::engine::{Control, EngineConfig, Model, Share, Target, check_base, defaults};
use crate::scenario::Scenario;
use crate::threshold::Threshold;
use crate::urls::{Order, Paths};

pub(crate) fn parse_target(s: &str, i: usize) -> anyhow::Result<Target> {
    let (name, base) = match s.split_once('=') {
        Some((n, b)) if !n.contains("://") => (n.trim().to_string(), b.trim().to_string()),
        _ => {
            let host = reqwest::Url::parse(s.trim())
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| format!("target{}", i + 1));
            (host, s.trim().to_string())
        }
    };
    check_target(&name, &base)?;
    Ok(Target { name, base })
}

fn check_target(name: &str, base: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return usage(format!(
            "target name {name:?}: use letters, digits, '-', '_' and '.' only"
        ));
    }
    check_base(base).map_err(|e| UsageError(format!("target {name}: {e}")))?;
    Ok(())
}

pub(crate) fn parse_header(h: &str) -> anyhow::Result<(String, String)> {
    match h.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        // the text is not quoted: a header without its colon may be a secret's value
        _ => usage(format!(
            "-H starting {:?}: expected \"Name: value\"",
            crate::guard::quote::escape(h.split([' ', '=']).next().unwrap_or_default())
        )),
    }
}

/// Builds the plan: flags over the scenario file over the defaults (written once, in the rooms
/// that own them: `engine::defaults`, `ClientConfig::default`), merged here, field by field, in
/// the small functions below; the result is validated and typed.
pub fn plan(a: &RunArgs) -> anyhow::Result<Plan> {
    let sc = match &a.scenario {
        Some(p) => Scenario::load(p).map_err(|e| UsageError(e.to_string()))?,
        None => Scenario::default(),
    };
    let targets = targets(a, &sc)?;
    let source = url_source(a, &sc)?;
    let order = order(a, &sc)?;
    let load = load(a, &sc, source.trace_times.as_deref())?;
    let (client, headers) = http(a, &sc)?;
    // a pin that names no target's host and port is a typo, not a pin
    for p in &client.pins {
        let bare = |h: &str| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        };
        let used = targets.iter().any(|t| {
            reqwest::Url::parse(&t.base).is_ok_and(|u| {
                u.host_str().is_some_and(|h| bare(h) == bare(&p.host))
                    && u.port_or_known_default() == Some(p.port)
            })
        });
        if !used {
            return usage(format!(
                "--connect-to/--resolve {}:{}: no target has this host and port",
                p.host, p.port
            ));
        }
    }
    let classifier = classifier(a, &sc);
    let thresholds = thresholds(a, &sc, &targets)?;
    let out = output(a, &sc)?;
    let mut threads = a.threads.or(sc.load.threads).unwrap_or_else(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        default_threads(cpus, &targets)
    });
    let mut client = client;
    if let Some(n) = client.http2 {
        // each thread has its own connections: at least one (0 from `http`: not given)
        let n = if n == 0 { threads } else { n };
        if n < threads && a.threads.or(sc.load.threads).is_some() {
            return usage(format!(
                "--connections {n} with --threads {threads}: each thread needs a connection of \
                 its own (fewer threads, or more connections)"
            ));
        }
        threads = threads.min(n);
        client.http2 = Some(n);
    }
    if !(1..=MAX_THREADS).contains(&threads) {
        return usage(format!("--threads {threads}: between 1 and {MAX_THREADS}"));
    }
    let seed = a.seed.or(sc.seed).unwrap_or(1);
    let share = runner(a.runner.as_deref())?;
    let mut model = load.model;
    if let Model::Closed { concurrency, .. } = &mut model {
        // the closed model has no schedule to deal: its workers are split instead
        let (c, n, k) = (*concurrency as u64, share.count, share.index);
        let mine = c / n + u64::from(k < c % n);
        if mine == 0 {
            return usage(format!(
                "--runner {}/{n}: --concurrency {c} over {n} runners leaves this one no worker",
                k + 1
            ));
        }
        *concurrency = mine as usize;
    }
    let scenario = serde_json::json!({
        "name": sc.name,
        "scenario_file": a.scenario.as_ref().map(|p| p.display().to_string()),
        "urls": source.path.display().to_string(),
        "url_count": source.urls.len(),
        "order": order.to_string(),
        "seed": seed,
        "targets": targets.iter().map(|t| serde_json::json!({"name": t.name, "base_url": crate::guard::redact::url(&t.base)})).collect::<Vec<_>>(),
        "model": model_echo(&model),
        "runner": (share.count > 1).then(|| serde_json::json!({"index": share.index + 1, "count": share.count})),
        "trace_speed": source.trace_times.as_ref().map(|_| a.speed.or(sc.speed).unwrap_or(1.0)),
        "stages": load.stages.as_ref().map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
        "duration_s": load.duration.map(|d| d.as_secs_f64()),
        "requests_per_target": load.requests,
        "sweep": load.sweep,
        "threads": threads,
        "headers": headers.iter().map(|(k, v)| {
            (k.clone(), serde_json::Value::String(crate::guard::redact::header_value(k, v).to_string()))
        }).collect::<serde_json::Map<_, _>>(),
        "timeout_ms": client.timeout.as_secs_f64() * 1e3,
        "keepalive": client.keepalive,
        "http2": client.http2.map(|n| serde_json::json!({ "connections": n })),
        "retries": client.retries,
        "tls": {
            "insecure": client.tls.insecure,
            "resume": client.tls.resume,
            "cacert": client.tls.cacert.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        },
        "pins": client.pins.iter().map(|p| serde_json::json!({
            "host": p.host, "port": p.port,
            "addrs": p.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "method": if client.method_head { "HEAD" } else { "GET" },
        "age_fallback": classifier.age_fallback,
        "custom_cache_rules": classifier.rules.len(),
        "thresholds": thresholds.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
        "interval_s": out.interval.as_secs_f64(),
    });
    if client.tls.insecure {
        eprintln!(
            "WARNING: --insecure: TLS certificates are NOT verified; anyone on the path can answer \
             for the target"
        );
    }
    Ok(Plan {
        engine: EngineConfig {
            targets,
            urls: Arc::new(source.urls),
            order,
            seed,
            model,
            duration: load.closed_duration,
            requests: load.requests,
            sweep: load.sweep,
            threads,
            interval: out.interval,
            client,
            classifier,
            samples: out.samples,
            grace: out.grace,
            share,
        },
        out: out.dir,
        run_id: out.run_id,
        region: out.region,
        thresholds,
        scenario,
        progress: !a.quiet,
        metrics: a.metrics,
    })
}

/// The highest rate per target `run` accepts: beyond it no machine keeps a schedule, and the
/// run would be a flood measuring the generator (`--stages 1e9/1s` sent 66k req/s for 15 s).
const MAX_RATE: f64 = 1_000_000.0;

/// More worker threads than this is a mistake, not a load test (each has a runtime and
/// histograms; 100000 exhausted the machine and panicked).
const MAX_THREADS: usize = 1024;

/// A duration that must be more than zero (`-d 0`, `--timeout 0s` are mistakes, not runs).
pub(crate) fn positive(flag: &str, d: Duration) -> anyhow::Result<Duration> {
    if d.is_zero() {
        return usage(format!("{flag} must be more than 0s"));
    }
    Ok(d)
}

/// `--target` flags, or the scenario's `[targets]`; names unique.
fn targets(a: &RunArgs, sc: &Scenario) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    if a.targets.is_empty() {
        for (name, base) in &sc.targets {
            check_target(name, base)?;
            targets.push(Target {
                name: name.clone(),
                base: base.clone(),
            });
        }
    } else {
        for (i, t) in a.targets.iter().enumerate() {
            targets.push(parse_target(t, i)?);
        }
    }
    if targets.is_empty() {
        return usage("no target: give --target NAME=BASE_URL (or [targets] in the scenario)");
    }
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].iter().any(|o| o.name == t.name) {
            return usage(format!("target name {:?} is given twice", t.name));
        }
    }
    Ok(targets)
}

/// Where the requests come from: a URL list, or a trace whose rows are both the URLs and their
/// send times (seconds from the first).
struct UrlSource {
    path: PathBuf,
    urls: Paths,
    trace_times: Option<Vec<f64>>,
}

/// The trace to replay: `--trace`, or the scenario's `trace` unless a URL list is given.
fn trace_path(a: &RunArgs, sc: &Scenario) -> Option<PathBuf> {
    match (&a.trace, &a.urls, &sc.trace) {
        (Some(t), ..) => Some(t.clone()),
        (None, None, Some(t)) => Some(sc.resolve(t)),
        _ => None,
    }
}

/// The scenario's own `trace` is replayed (no flag chose the list): its pacing is the trace's,
/// so the scenario may not also give a URL list, an order or a load model.
fn scenario_trace_conflicts(a: &RunArgs, sc: &Scenario) -> anyhow::Result<()> {
    if sc.trace.is_none() || a.trace.is_some() || a.urls.is_some() {
        return Ok(());
    }
    let l = &sc.load;
    let keys = [
        ("urls", sc.urls.is_some()),
        ("order", sc.order.is_some()),
        ("load.rate", l.rate.is_some()),
        ("load.stages", l.stages.is_some()),
        ("load.concurrency", l.concurrency.is_some()),
        ("load.sweep", l.sweep.is_some()),
    ];
    let given: Vec<&str> = keys.iter().filter(|k| k.1).map(|k| k.0).collect();
    if !given.is_empty() {
        let name = a
            .scenario
            .as_ref()
            .map_or("".into(), |p| p.display().to_string());
        return usage(format!(
            "scenario {name}: `trace` replays at the trace's own pacing and order: remove {}",
            given.join(", ")
        ));
    }
    Ok(())
}

fn url_source(a: &RunArgs, sc: &Scenario) -> anyhow::Result<UrlSource> {
    scenario_trace_conflicts(a, sc)?;
    if let Some(tp) = &trace_path(a, sc) {
        let f = std::fs::File::open(tp)
            .map_err(|e| UsageError(format!("cannot read trace {}: {e}", tp.display())))?;
        let mut rows =
            crate::extract::read_trace(std::io::BufReader::new(f), &tp.display().to_string())
                .map_err(UsageError)?;
        // an unsorted trace is sorted (stable: a timestamp's rows keep their order)
        rows.sort_by_key(|(t, _)| *t);
        let stamps: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        let times = Schedule::trace_offsets(&stamps);
        return Ok(UrlSource {
            path: tp.clone(),
            urls: Paths::from_paths(rows.iter().map(|(_, p)| p)),
            trace_times: Some(times),
        });
    }
    let path: PathBuf = match (&a.urls, &sc.urls) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => sc.resolve(p),
        (None, None) => {
            return usage("no URL list: give a file or --trace (or `urls = ...` in the scenario)");
        }
    };
    let urls = Paths::read_file(&path).map_err(|e| UsageError(e.to_string()))?;
    Ok(UrlSource {
        path,
        urls,
        trace_times: None,
    })
}

fn order(a: &RunArgs, sc: &Scenario) -> anyhow::Result<Order> {
    let trace = trace_path(a, sc).is_some();
    Ok(match &a.order {
        Some(_) if trace => return usage("--trace replays in trace order: no --order"),
        Some(o) => o.parse().map_err(UsageError)?,
        None if trace => Order::Sequential,
        None => sc.order.unwrap_or_default(),
    })
}

/// The load model and when the run ends.
struct Load {
    model: Model,
    /// the closed model's end in time (the open model's schedule has its own)
    closed_duration: Option<Duration>,
    /// the duration asked for (echoed)
    duration: Option<Duration>,
    requests: Option<u64>,
    sweep: bool,
    stages: Option<Vec<Stage>>,
}

fn load(a: &RunArgs, sc: &Scenario, trace_times: Option<&[f64]>) -> anyhow::Result<Load> {
    let run_duration = match &a.duration {
        Some(d) => Some(duration("--duration", d)?),
        None => sc.load.duration.map(|d| d.0),
    }
    .map(|d| positive("--duration (load.duration)", d))
    .transpose()?;
    let requests = a.requests.or(sc.load.requests);
    if requests == Some(0) {
        return usage("--requests (load.requests) must be at least 1");
    }
    let sweep = a.sweep || sc.load.sweep.unwrap_or(false);
    // a flag that chooses a model hides the scenario's other model
    let flag_model = a.rate.is_some() || a.stages.is_some() || a.concurrency.is_some();
    let stages: Option<Vec<Stage>> = match &a.stages {
        Some(s) => Some(
            s.split(',')
                .map(|x| x.parse::<Stage>())
                .collect::<Result<_, _>>()
                .map_err(|e| UsageError(format!("--stages: {e}")))?,
        ),
        None if flag_model => None,
        None => sc.load.stages.clone(),
    };
    let rate = a.rate.or(if flag_model { None } else { sc.load.rate });
    let concurrency = a.concurrency.or(if flag_model {
        None
    } else {
        sc.load.concurrency
    });
    let think = match &a.think {
        Some(t) => duration("--think", t)?,
        None => sc.load.think.map(|d| d.0).unwrap_or_default(),
    };
    let max_in_flight = a
        .max_in_flight
        .or(sc.load.max_in_flight)
        .unwrap_or(defaults::MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        return usage("--max-in-flight (load.max_in_flight) must be at least 1");
    }
    let bounded = requests.is_some() || sweep;
    let model = match (rate, &stages, concurrency) {
        _ if trace_times.is_some() => {
            if flag_model || sweep {
                return usage(
                    "--trace sets its own pacing: no --rate, --stages, --concurrency or --sweep",
                );
            }
            let speed = a.speed.or(sc.speed).unwrap_or(1.0);
            if !(speed > 0.0 && speed.is_finite()) {
                return usage(format!("--speed {speed}: must be > 0"));
            }
            // --duration cuts the trace (in replay time)
            let times = trace_times.unwrap_or_default();
            // (the schedule keeps a trace's times monotonic: so does the cut)
            let mut latest = f64::MIN;
            let keep = run_duration.map_or(times.len(), |d| {
                (times.iter())
                    .position(|&t| {
                        latest = latest.max(t);
                        latest / speed >= d.as_secs_f64()
                    })
                    .unwrap_or(times.len())
            });
            let schedule = Schedule::from_times(&times[..keep], speed);
            Model::Open {
                schedule: match run_duration {
                    Some(d) => schedule.lasting(d),
                    None => schedule,
                },
                max_in_flight,
            }
        }
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return usage(
                "choose one load model: --rate/--stages (open) or --concurrency (closed)",
            );
        }
        (Some(_), Some(_), None) => return usage("give --rate or --stages, not both"),
        (Some(r), None, None) => {
            if !(r > 0.0 && r <= MAX_RATE) {
                return usage(format!(
                    "--rate {r}: between 0 and {MAX_RATE} req/s per target"
                ));
            }
            // a count-bounded open run ends by its count; the schedule must not end it first
            let d = run_duration.unwrap_or(if bounded {
                defaults::UNBOUNDED
            } else {
                defaults::DURATION
            });
            Model::Open {
                schedule: Schedule::constant(r, d),
                max_in_flight,
            }
        }
        (None, Some(st), None) => Model::Open {
            schedule: Schedule::new(&cut_stages(st, run_duration)?),
            max_in_flight,
        },
        (None, None, c) => Model::Closed {
            concurrency: match c {
                Some(0) => return usage("--concurrency must be at least 1"),
                Some(c) => c,
                None if bounded => defaults::SWEEP_CONCURRENCY,
                None => {
                    return usage(
                        "choose a load model: --rate R (open), --stages S (open, ramps) or --concurrency N (closed)",
                    );
                }
            },
            think,
        },
    };
    let closed_duration = match &model {
        Model::Closed { .. } => run_duration.or((!bounded).then_some(defaults::DURATION)),
        Model::Open { .. } => None,
    };
    Ok(Load {
        duration: closed_duration.or(run_duration),
        model,
        closed_duration,
        requests,
        sweep,
        stages,
    })
}

/// How long sending lasts at most: the open model's schedule, the closed model's duration.
fn planned_duration(e: &EngineConfig) -> Option<Duration> {
    match &e.model {
        Model::Open { schedule, .. } => Some(schedule.duration()),
        Model::Closed { .. } => e.duration,
    }
}

/// `run --check --bundle DIR`: the scenario and the one list it runs, copied as they are, the
/// plan, and their SHA-256 sums (`sha256sum -c` reads them). A runner runs
/// `edgeload run --scenario scenario.toml urls.csv` (or `--trace trace.csv`): the same plan.
fn bundle(a: &RunArgs, plan: &serde_json::Value, json: &str, dir: &Path) -> anyhow::Result<()> {
    use sha2::Digest;
    // only the scenario and the list travel: a flag would be lost on the runner
    let carried = RunArgs {
        scenario: a.scenario.clone(),
        urls: a.urls.clone(),
        trace: a.trace.clone(),
        check: a.check,
        bundle: a.bundle.clone(),
        quiet: a.quiet,
        json: a.json,
        s3: a.s3.clone(),
        ..RunArgs::default()
    };
    if format!("{carried:?}") != format!("{a:?}") {
        return usage(
            "--bundle carries the scenario and its URL list (or trace) only: put the other \
             settings in the scenario file, or runners would run without them",
        );
    }
    let scenario = a.scenario.as_deref().context("--bundle needs --scenario")?;
    let list = PathBuf::from(plan["urls"].as_str().unwrap_or_default());
    let list_name = if plan["trace_speed"].is_null() {
        "urls.csv"
    } else {
        "trace.csv"
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| UsageError(format!("--bundle {}: {e}", dir.display())))?;
    let mut sums = String::new();
    let mut put = |name: &str, from: Option<&Path>, data: &[u8]| -> anyhow::Result<()> {
        let dest = dir.join(name);
        let mut h = sha2::Sha256::new();
        match from {
            Some(src) => {
                let mut f = std::fs::File::open(src)
                    .with_context(|| format!("cannot read {}", src.display()))?;
                let mut out = crate::guard::atomic::AtomicFile::create(&dest)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)
                        .with_context(|| format!("cannot read {}", src.display()))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    std::io::Write::write_all(&mut out, &buf[..n])
                        .with_context(|| format!("cannot write {}", dest.display()))?;
                }
                out.commit()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
            }
            None => {
                h.update(data);
                crate::guard::atomic::write(&dest, data)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
            }
        }
        sums.push_str(&format!("{}  {name}\n", hex::encode(h.finalize())));
        Ok(())
    };
    put("scenario.toml", Some(scenario), &[])?;
    put(list_name, Some(&list), &[])?;
    put("plan.json", None, format!("{json}\n").as_bytes())?;
    crate::guard::atomic::write(&dir.join("SHA256SUMS"), sums.as_bytes())
        .with_context(|| format!("cannot write {}", dir.join("SHA256SUMS").display()))?;
    Ok(())
}

/// `--runner K/N` (1-based K) -> the share of the planned requests this process sends.
fn runner(s: Option<&str>) -> anyhow::Result<Share> {
    let Some(s) = s else { return Ok(Share::ALL) };
    let bad = || {
        UsageError(format!(
            "--runner {s:?}: expected K/N with 1 <= K <= N <= {MAX_RUNNERS}, e.g. 2/4"
        ))
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if !(1..=n).contains(&k) || n > MAX_RUNNERS {
        return Err(bad().into());
    }
    Ok(Share {
        index: k - 1,
        count: n,
    })
}

/// More runners than this for one plan is a typo.
const MAX_RUNNERS: u64 = 10_000;

/// `--duration` cuts the stages short (the last one kept is cut in proportion).
fn cut_stages(st: &[Stage], run_duration: Option<Duration>) -> anyhow::Result<Vec<Stage>> {
    if st.is_empty() {
        return usage("--stages: no stages");
    }
    if let Some(s) = st.iter().find(|s| s.from.max(s.to) > MAX_RATE) {
        return usage(format!(
            "--stages {s}: more than {MAX_RATE} req/s per target is no rate one machine sends"
        ));
    }
    let mut st = st.to_vec();
    if let Some(d) = run_duration {
        let mut left = d;
        st.retain_mut(|s| {
            if left.is_zero() {
                return false;
            }
            if s.duration > left {
                let frac = left.as_secs_f64() / s.duration.as_secs_f64();
                s.to = s.from + (s.to - s.from) * frac;
                s.duration = left;
            }
            left = left.saturating_sub(s.duration);
            true
        });
    }
    Ok(st)
}

fn model_echo(m: &Model) -> serde_json::Value {
    match m {
        Model::Open {
            schedule,
            max_in_flight,
        } => serde_json::json!({
            "open": { "mean_rate_per_target": schedule.mean_rate(), "schedule_s": schedule.duration().as_secs_f64(), "max_in_flight": max_in_flight }
        }),
        Model::Closed { concurrency, think } => serde_json::json!({
            "closed": { "concurrency": concurrency, "think_ms": think.as_secs_f64() * 1e3 }
        }),
    }
}

/// The client settings, and the headers as given (for the echo, redacted there).
fn http(a: &RunArgs, sc: &Scenario) -> anyhow::Result<(ClientConfig, Vec<(String, String)>)> {
    let mut headers: Vec<(String, String)> = (sc.http.headers.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for h in &a.headers {
        let (k, v) = parse_header(h)?;
        headers.retain(|(ek, _)| !ek.eq_ignore_ascii_case(&k));
        headers.push((k, v));
    }
    crate::engine::client::default_headers(&headers)
        .map_err(|e| UsageError(format!("header: {e}")))?;
    let method_head = a.head
        || match sc.http.method.as_deref() {
            None | Some("GET") | Some("get") => false,
            Some("HEAD") | Some("head") => true,
            Some(m) => return usage(format!("http.method {m:?}: GET or HEAD only")),
        };
    let d = ClientConfig::default();
    let client = ClientConfig {
        timeout: positive(
            "--timeout (http.timeout)",
            match &a.timeout {
                Some(t) => duration("--timeout", t)?,
                None => sc.http.timeout.map_or(d.timeout, |t| t.0),
            },
        )?,
        connect_timeout: positive(
            "--connect-timeout (http.connect_timeout)",
            match &a.connect_timeout {
                Some(t) => duration("--connect-timeout", t)?,
                None => sc.http.connect_timeout.map_or(d.connect_timeout, |t| t.0),
            },
        )?,
        headers: headers.clone(),
        keepalive: !a.no_keepalive && sc.http.keepalive.unwrap_or(d.keepalive),
        method_head,
        lean_http1: !a.reqwest,
        tls: crate::engine::tls::TlsOptions {
            cacert: a.cacert.clone(),
            insecure: a.insecure,
            resume: match a.tls_resume.as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(v) => return usage(format!("--tls-resume {v:?}: on or off")),
            },
        },
        pins: pins(a, sc)?,
        http2: http2(a, sc)?,
        retries: match a.retries.or(sc.http.retries) {
            None => d.retries,
            Some(n @ (0 | 1)) => n,
            Some(n) => {
                return usage(format!(
                    "--retries (http.retries) {n}: 0 or 1 (only a request whose reused \
                     connection closed before answering is resent, and once)"
                ));
            }
        },
    };
    if client.http2.is_some()
        && let Some((k, _)) = headers.iter().find(|(k, _)| {
            let k = k.to_ascii_lowercase();
            [
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
                "upgrade",
                "te",
            ]
            .contains(&k.as_str())
        })
    {
        return usage(format!(
            "header {k:?} is HTTP/1.1's own: HTTP/2 forbids it (drop it, or drop --http2)"
        ));
    }
    Ok((client, headers))
}

/// `--connect-to` and `--resolve` (curl's forms), then the scenario's `[http]` ones for the
/// host and ports the flags do not pin; flags and reqwest do not mix.
fn pins(a: &RunArgs, sc: &Scenario) -> anyhow::Result<Vec<Pin>> {
    let mut out = Vec::new();
    for s in &a.connect_to {
        out.push(Pin::connect_to(s).map_err(|e| UsageError(format!("--connect-to {e}")))?);
    }
    for s in &a.resolve {
        out.push(Pin::resolve(s).map_err(|e| UsageError(format!("--resolve {e}")))?);
    }
    for p in sc.http.connect_to.iter().chain(&sc.http.resolve) {
        if !out
            .iter()
            .any(|o| o.port == p.port && o.host.eq_ignore_ascii_case(&p.host))
        {
            out.push(p.clone());
        }
    }
    if !out.is_empty() && a.reqwest {
        return usage("--connect-to and --resolve need the built-in client (not --reqwest)");
    }
    if a.reqwest && (a.insecure || !a.cacert.is_empty() || a.tls_resume.is_some()) {
        return usage(
            "--cacert, --insecure and --tls-resume need the built-in client (not --reqwest)",
        );
    }
    Ok(out)
}

/// `--http2` and `--connections` (or `[http] http2`, `connections`): `Some(0)` when the
/// connections are not given (`plan` makes it one a thread).
fn http2(a: &RunArgs, sc: &Scenario) -> anyhow::Result<Option<usize>> {
    let on = a.http2 || sc.http.http2.unwrap_or(false);
    let n = a.connections.or(sc.http.connections);
    if !on {
        return match n {
            Some(_) => usage("--connections (http.connections) is for HTTP/2: add --http2"),
            None => Ok(None),
        };
    }
    if a.reqwest {
        return usage("--http2 needs the built-in client (not --reqwest)");
    }
    if a.no_keepalive || sc.http.keepalive == Some(false) {
        return usage(
            "--http2 keeps its connections (many streams on each): not with --no-keepalive",
        );
    }
    match n {
        Some(0) => usage("--connections 0: at least one"),
        Some(n) => Ok(Some(n)),
        None => Ok(Some(0)),
    }
}

fn classifier(a: &RunArgs, sc: &Scenario) -> Classifier {
    Classifier {
        rules: (sc.cache.rules.iter())
            .map(|r| CustomRule {
                header: r.header.to_ascii_lowercase(),
                pattern: r.pattern.clone(),
                class: r.class,
            })
            .collect(),
        pop_rules: (sc.cache.pops.iter())
            .map(|r| PopRule {
                header: r.header.to_ascii_lowercase(),
                pattern: r.pattern.clone(),
            })
            .collect(),
        age_fallback: a.age_fallback || sc.cache.age_fallback.unwrap_or(false),
    }
}

/// The scenario's thresholds, then the flags'; each names a known target, if any.
fn thresholds(a: &RunArgs, sc: &Scenario, targets: &[Target]) -> anyhow::Result<Vec<Threshold>> {
    let mut thresholds = sc.thresholds.clone();
    for t in &a.thresholds {
        thresholds.push(t.parse::<Threshold>().map_err(UsageError)?);
    }
    for t in &thresholds {
        if let Some(name) = &t.target
            && !targets.iter().any(|x| &x.name == name)
        {
            return usage(format!(
                "threshold {:?} names unknown target {name:?}",
                t.text
            ));
        }
    }
    Ok(thresholds)
}

/// Where and how the results are written.
struct Output {
    dir: PathBuf,
    run_id: String,
    region: String,
    interval: Duration,
    samples: bool,
    grace: Duration,
}

fn output(a: &RunArgs, sc: &Scenario) -> anyhow::Result<Output> {
    let interval = match &a.interval {
        Some(i) => duration("--interval", i)?,
        None => sc.output.interval.map_or(defaults::INTERVAL, |d| d.0),
    };
    if interval < Duration::from_millis(10) {
        return usage("--interval must be at least 10ms");
    }
    let grace = match &a.grace {
        Some(g) => duration("--grace", g)?,
        None => defaults::GRACE,
    };
    let run_id = a.run_id.clone().unwrap_or_else(new_run_id);
    crate::guard::names::label("--run-id", &run_id).map_err(UsageError)?;
    let region = (a.region.clone())
        .or(sc.region.clone())
        .unwrap_or_else(|| "local".into());
    crate::guard::names::label("--region", &region).map_err(UsageError)?;
    let dir = match (&a.out, &sc.output.dir) {
        (Some(o), _) => o.clone(),
        (None, Some(d)) => sc.resolve(d),
        (None, None) => PathBuf::from("reports").join(&run_id),
    };
    Ok(Output {
        dir,
        run_id,
        region,
        interval,
        samples: a.samples || sc.output.samples.unwrap_or(false),
        grace,
    })
}

/// Worker threads when none are given: one per CPU, one fewer when every target is on this
/// machine's loopback, because the target then needs a core too. Against nginx on 2 cores at
/// 50k req/s, one thread instead of two halved the context switches per request (0.44 vs 0.93)
/// and lowered the send-lag p99 in each of three paired runs (2-39 ms vs 10-52 ms).
fn default_threads(cpus: usize, targets: &[Target]) -> usize {
    if targets.iter().all(|t| is_loopback(&t.base)) {
        cpus.saturating_sub(1).max(1)
    } else {
        cpus.max(1)
    }
}

/// Whether a base URL's host is this machine's loopback (127.0.0.0/8, ::1, localhost).
fn is_loopback(base: &str) -> bool {
    let Some(url) = reqwest::Url::parse(base).ok() else {
        return false;
    };
    // the URL parser has parsed IP addresses and lowercased domain names
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => false,
    }
}

/// Sleeps until `--start-at` (Ctrl-C still works); returns how late the start was, in seconds.
fn wait_start(at: &str, control: &Control) -> anyhow::Result<Option<f64>> {
    let t = crate::logs::timefmt::iso(at).ok_or_else(|| {
        UsageError(format!(
            "--start-at {at:?}: expected RFC 3339, e.g. 2026-11-26T12:00:00Z"
        ))
    })?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64
    };
    while now() < t && !control.is_stopped() {
        let left = Duration::from_micros((t - now()).max(0) as u64);
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    Ok(Some((now() - t) as f64 / 1e6))
}

pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    let mut plan = plan(&a)?;
    if let Some(u) = &a.upload {
        crate::s3::S3Url::parse(u).map_err(|e| UsageError(e.to_string()))?;
    }
    if a.check {
        crate::engine::check_config(&plan.engine).map_err(|e| UsageError(e.to_string()))?;
        // where the results will go: the nearest folder that exists must take a file
        let mut dir = plan.out.as_path();
        while !dir.exists() {
            dir = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
        }
        tempfile::tempfile_in(dir).map_err(|e| {
            UsageError(format!(
                "-o {}: cannot write in {}: {e}",
                plan.out.display(),
                dir.display()
            ))
        })?;
        if let Some(addr) = plan.metrics {
            std::net::TcpListener::bind(addr)
                .map_err(|e| UsageError(format!("--metrics {addr}: {e}")))?;
        }
        if let Some(at) = &a.start_at
            && crate::logs::timefmt::iso(at).is_none()
        {
            return usage(format!(
                "--start-at {at:?}: expected RFC 3339, e.g. 2026-11-26T12:00:00Z"
            ));
        }
        let e = &plan.engine;
        let planned = e.planned_per_target();
        // the plan (already redacted), for a launcher or a person to read
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "ok": true,
            "requests_per_target": planned,
            "targets": e.targets.len(),
            "urls": e.urls.len(),
            // how long sending lasts at most, when the plan says (the launcher's dead-man timer)
            "duration_s": planned_duration(e).map(|d| d.as_secs_f64()),
            "plan": plan.scenario,
        }))
        .context("plan to JSON")?;
        if let Some(dir) = &a.bundle {
            bundle(&a, &plan.scenario, &json, dir)?;
        }
        println!("{json}");
        if !a.quiet {
            eprintln!(
                "check: ok: {} target(s), {} URLs, {} requests per target{}",
                e.targets.len(),
                e.urls.len(),
                planned.map_or("(no count: until the duration ends)".into(), |n| n
                    .to_string()),
                if plan.thresholds.is_empty() {
                    String::new()
                } else {
                    format!(", {} threshold(s)", plan.thresholds.len())
                }
            );
        }
        return Ok(EXIT_OK);
    }
    let control = Control::default();
    let c = control.clone();
    super::on_signal(move || c.stop());
    if let Some(at) = &a.start_at {
        let late = wait_start(at, &control)?;
        if let serde_json::Value::Object(m) = &mut plan.scenario {
            m.insert("start_at".into(), serde_json::json!(at));
            m.insert("late_start_s".into(), serde_json::json!(late));
        }
        if control.is_stopped() {
            return Ok(EXIT_INTERRUPTED);
        }
    }
    let f = execute(plan, &control)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&f.summary).context("summary to JSON")?
        );
    }
    if !a.quiet {
        eprint!("{}", crate::report::text::render(&f.summary));
        eprintln!("results: {}", f.dir.display());
    }
    if let Some(u) = &a.upload {
        let r = super::s3::upload_dir(&f.dir, u, &a.s3)?;
        if !a.quiet {
            eprintln!(
                "uploaded {} files ({} already there) to {u}",
                r.uploaded.len(),
                r.skipped.len()
            );
        }
    }
    Ok(if f.summary.interrupted {
        EXIT_INTERRUPTED
    } else if f.summary.verdict == crate::results::summary::Verdict::Fail {
        EXIT_THRESHOLDS
    } else {
        EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(bases: &[&str]) -> Vec<Target> {
        (bases.iter().enumerate())
            .map(|(i, b)| Target {
                name: format!("t{i}"),
                base: b.to_string(),
            })
            .collect()
    }

    #[test]
    fn default_threads_leave_a_core_to_a_target_on_loopback() {
        let local = [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://[::1]:9000/img",
            "http://localhost:80",
            "https://edge.LOCALHOST",
        ];
        for b in local {
            assert_eq!(default_threads(4, &targets(&[b])), 3, "{b}");
        }
        assert_eq!(default_threads(1, &targets(&local)), 1);
        // one remote target among local ones: the generator gets every core
        for b in [
            "https://cdn.example.com",
            "http://10.0.0.1",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://128.0.0.1",
        ] {
            assert_eq!(
                default_threads(4, &targets(&["http://127.0.0.1:1", b])),
                4,
                "{b}"
            );
        }
    }
}
