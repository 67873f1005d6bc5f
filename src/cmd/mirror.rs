//! `edgeload mirror`: flags -> mirror config; runs until the gate passes, the input ends, the
//! time runs out or a signal arrives; maps that to the exit code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::execute::new_run_id;
use super::run::{parse_header, parse_target};
use super::{EXIT_GATE_NOT_REACHED, EXIT_INTERRUPTED, EXIT_OK, UsageError, duration, usage};
use crate::cache_status::Classifier;
use crate::cli::MirrorArgs;
use crate::engine::client::ClientConfig;
use crate::extract::Filters;
use crate::mirror::window::Gate;
use crate::mirror::{self, Ending, Input, MirrorConfig};

fn at_least_1(flag: &str, n: usize) -> anyhow::Result<usize> {
    if n == 0 {
        return usage(format!("{flag} must be at least 1"));
    }
    Ok(n)
}

pub fn config(a: &MirrorArgs) -> anyhow::Result<MirrorConfig> {
    let mut inputs: Vec<Input> = Vec::new();
    for p in &a.follow {
        if a.rotated {
            inputs.push(Input::Rotated(p.clone()));
        }
        inputs.push(Input::Follow {
            path: p.clone(),
            from_start: a.from_start,
        });
    }
    if let Some(s) = &a.syslog {
        inputs.push(Input::Syslog(
            mirror::follow::parse_syslog_addr(s).map_err(UsageError)?,
        ));
    }
    if a.stdin {
        inputs.push(Input::Stdin);
    }
    if inputs.is_empty() {
        return usage("no input: give --follow FILE, --syslog udp://HOST:PORT or --stdin");
    }
    if a.targets.is_empty() {
        return usage("no target: give --target NAME=BASE_URL");
    }
    let targets = a
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| parse_target(t, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (format, json, statuses) = super::extract::log_input(
        &a.format,
        &a.json_fields,
        "--status-codes",
        &a.status_codes,
        a.sample,
    )?;
    if let Some(r) = a.rate
        && !(r >= 1.0 && r.is_finite())
    {
        return usage(format!("--rate {r}: at least 1 request per second"));
    }
    let gate = match a.until_hit_ratio {
        Some(t) if (0.0..=1.0).contains(&t) => Some(Gate {
            threshold: t,
            hold_s: duration("--hold", &a.hold)?.as_secs(),
            min_samples: a.min_samples,
            per_pop: a.per_pop,
        }),
        Some(t) => return usage(format!("--until-hit-ratio {t}: between 0 and 1")),
        None => None,
    };
    let mut headers = Vec::new();
    for h in &a.headers {
        headers.push(parse_header(h)?);
    }
    let run_id = a.run_id.clone().unwrap_or_else(new_run_id);
    crate::guard::names::label("--run-id", &run_id).map_err(UsageError)?;
    let region = a.region.clone().unwrap_or_else(|| "local".into());
    crate::guard::names::label("--region", &region).map_err(UsageError)?;
    crate::engine::client::default_headers(&headers)
        .map_err(|e| UsageError(format!("header: {e}")))?;
    Ok(MirrorConfig {
        targets,
        inputs,
        format,
        json: Arc::new(json),
        filters: Filters {
            methods: vec!["GET".into(), "HEAD".into()],
            statuses,
            exts: a
                .ext
                .as_deref()
                .map(|e| {
                    e.split(',')
                        .map(|x| x.trim().trim_start_matches('.').to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default(),
            sample: a.sample,
            seed: a.seed,
            ..Filters::default()
        },
        rate: a.rate,
        max_in_flight: at_least_1("--max-in-flight", a.max_in_flight)?,
        queue: at_least_1("--queue", a.queue)?,
        dedupe: a
            .dedupe
            .as_deref()
            .map(|d| duration("--dedupe", d))
            .transpose()?,
        client: ClientConfig {
            timeout: match &a.timeout {
                Some(t) => super::run::positive("--timeout", duration("--timeout", t)?)?,
                None => ClientConfig::default().timeout,
            },
            headers,
            ..ClientConfig::default()
        },
        classifier: Classifier::default(),
        window: duration("--window", &a.window)?,
        gate,
        max_duration: a
            .max_duration
            .as_deref()
            .map(|d| duration("--max-duration", d))
            .transpose()?,
        out: a.out.clone(),
        run_id,
        region,
        status: a.status,
        progress_every: (!a.quiet)
            .then(|| duration("--progress", &a.progress))
            .transpose()?,
        poll: Duration::from_millis(50),
    })
}

pub fn run(a: MirrorArgs) -> anyhow::Result<i32> {
    let cfg = config(&a)?;
    let has_gate = cfg.gate.is_some();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    super::on_signal(move || s.store(true, Ordering::Relaxed));
    let m = mirror::run(cfg, stop, Arc::new(mirror::Counters::default()))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&m.summary).unwrap_or_default()
        );
    }
    if !a.quiet {
        eprintln!("mirror ended: {:?}", m.ending);
        eprint!("{}", crate::report::text::render(&m.summary));
        if let Some(d) = &m.dir {
            eprintln!("results: {}", d.display());
        }
    }
    Ok(match m.ending {
        Ending::GatePassed => EXIT_OK,
        Ending::Interrupted => EXIT_INTERRUPTED,
        Ending::MaxDuration => EXIT_GATE_NOT_REACHED,
        Ending::InputEnded if has_gate => EXIT_GATE_NOT_REACHED,
        Ending::InputEnded => EXIT_OK,
    })
}
