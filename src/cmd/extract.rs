//! `edgeload extract`: flags -> filters; runs the extraction with a progress bar; writes the URL
//! list (and trace); prints what was kept, filtered and malformed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_OK, UsageError, usage};
use crate::cli::ExtractArgs;
use crate::extract::{Filters, Options, Progress, Stats, extract};
use crate::guard::atomic::AtomicFile;
use crate::logs::json::JsonFields;
use crate::logs::{Format, input, timefmt};

fn time_arg(flag: &str, s: &str) -> anyhow::Result<i64> {
    timefmt::iso(s)
        .or_else(|| timefmt::iso(&format!("{s}T00:00:00Z")))
        .ok_or_else(|| {
            UsageError(format!(
                "{flag} {s:?}: expected RFC 3339 (2024-03-12T10:00:00Z) or a date (2024-03-12)"
            ))
            .into()
        })
}

fn regex_arg(flag: &str, s: &Option<String>) -> anyhow::Result<Option<regex::Regex>> {
    s.as_deref()
        .map(|r| regex::Regex::new(r).map_err(|e| UsageError(format!("{flag} {r:?}: {e}")).into()))
        .transpose()
}

/// The log-reading flags `extract` and `mirror` share: format, JSON fields, statuses, sample.
pub(crate) fn log_input(
    format: &str,
    json_fields: &Option<String>,
    status_flag: &str,
    status: &str,
    sample: Option<f64>,
) -> anyhow::Result<(Option<Format>, JsonFields, Vec<u16>)> {
    let format = match format {
        "auto" => None,
        f => Some(
            f.parse::<Format>()
                .map_err(|e| UsageError(format!("--format: {e}")))?,
        ),
    };
    let json = match json_fields {
        Some(spec) => JsonFields::parse(spec).map_err(UsageError)?,
        None => JsonFields::default(),
    };
    // `all` among them: every status (an empty list)
    let every = status.split(',').any(|s| matches!(s.trim(), "all" | "*"));
    let statuses = (status.split(','))
        .filter(|_| !every)
        .map(|s| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| UsageError(format!("{status_flag}: {s:?} is not a status code")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = sample
        && !(s > 0.0 && s <= 1.0)
    {
        return usage(format!("--sample {s}: a share in (0, 1]"));
    }
    Ok((format, json, statuses))
}

pub(crate) fn options(a: &ExtractArgs) -> anyhow::Result<Options> {
    let (format, json, statuses) =
        log_input(&a.format, &a.json_fields, "--status", &a.status, a.sample)?;
    let methods: Vec<String> = (a.methods.split(','))
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    // `*` among them: every method (an empty list)
    let methods = if methods.iter().any(|m| m == "*") {
        Vec::new()
    } else {
        methods
    };
    Ok(Options {
        format,
        json: Arc::new(json),
        filters: Filters {
            methods,
            statuses,
            hosts: a.host.clone(),
            include: regex_arg("--include", &a.include)?,
            exclude: regex_arg("--exclude", &a.exclude)?,
            exts: a
                .ext
                .as_deref()
                .map(|e| {
                    e.split(',')
                        .map(|x| x.trim().trim_start_matches('.').to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default(),
            since: a
                .since
                .as_deref()
                .map(|s| time_arg("--since", s))
                .transpose()?,
            until: a
                .until
                .as_deref()
                .map(|s| time_arg("--until", s))
                .transpose()?,
            sample: a.sample,
            seed: a.seed,
        },
        observe: None,
        drop_query: a.drop_query,
        top: a.top,
        trace: a.trace.is_some(),
        threads: a
            .threads
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            })
            .max(1),
        examples: 5,
        block_size: 4 << 20,
        max_memory: match &a.max_memory {
            None => crate::extract::default_max_memory(),
            Some(s) => match super::edge::parse_bytes(s) {
                Ok(n) if n >= 8 << 20 => usize::try_from(n).unwrap_or(usize::MAX),
                Ok(_) => return usage(format!("--max-memory {s}: at least 8M")),
                Err(e) => return usage(format!("--max-memory: {e}")),
            },
        },
        spill_dir: Some(match &a.spill_dir {
            Some(d) => d.clone(),
            None if a.output == "-" => std::env::temp_dir(),
            None => match std::path::Path::new(&a.output).parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            },
        }),
    })
}

pub fn render(s: &Stats, secs: f64) -> String {
    let mut out = format!(
        "read {} files, {:.1} MB, {} lines in {:.2} s ({:.0} MB/s, {:.0} lines/s)\n  records {}, kept {}, distinct URLs {}\n",
        s.files,
        s.bytes as f64 / 1e6,
        s.lines,
        secs,
        s.bytes as f64 / 1e6 / secs.max(1e-9),
        s.lines as f64 / secs.max(1e-9),
        s.records,
        s.matched,
        s.distinct_urls
    );
    if s.spilled_bytes > 0 {
        out += &format!(
            "  past --max-memory: {:.1} MB of sorted runs written to disk and merged\n",
            s.spilled_bytes as f64 / 1e6
        );
    }
    if !s.filtered.is_empty() {
        let f: Vec<String> = s.filtered.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out += &format!("  filtered out: {}\n", f.join(", "));
    }
    if !s.malformed.is_empty() {
        out += &format!("  malformed: {}\n", s.malformed_total());
        for (k, m) in &s.malformed {
            out += &format!("    {k}: {}\n", m.count);
            for e in &m.examples {
                // the log's own bytes: escapes in a log must not reach the terminal
                out += &format!("      {}\n", crate::guard::quote::escape(e));
            }
        }
    }
    let mut formats: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in s.formats.values() {
        *formats.entry(f).or_default() += 1;
    }
    let f: Vec<String> = formats.iter().map(|(k, v)| format!("{k} x{v}")).collect();
    out += &format!("  formats: {}\n", f.join(", "));
    out
}

/// The inputs: local paths expanded; s3:// prefixes listed, skipping the objects whose names
/// date them outside --since/--until. The runtime (made at the first s3:// input) drives the
/// objects' transfers while the extraction reads them.
fn sources(
    a: &ExtractArgs,
    o: &Options,
    rt: &mut Option<tokio::runtime::Runtime>,
) -> anyhow::Result<Vec<input::Source>> {
    let mut out = Vec::new();
    for arg in &a.logs {
        if !arg.starts_with("s3://") {
            out.extend(
                input::expand(std::slice::from_ref(arg)).map_err(|e| UsageError(e.to_string()))?,
            );
            continue;
        }
        let url = crate::s3::S3Url::parse(arg).map_err(|e| UsageError(e.to_string()))?;
        let rt = match rt {
            Some(r) => r,
            None => rt.insert(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?,
            ),
        };
        let c = rt.block_on(crate::s3::client(&super::s3::options(&a.s3)?));
        let objects = rt
            .block_on(crate::s3::list_objects(&c, &url))
            .map_err(|e| UsageError(e.to_string()))?;
        // (folder markers are not objects to read)
        let objects: Vec<String> = (objects.into_iter().map(|(k, _)| k))
            .filter(|k| !k.ends_with('/'))
            .collect();
        let listed = objects.len();
        let mut skipped = 0;
        for key in objects {
            // an object is skipped only when its name's time is well outside the range: a CDN
            // delivers a line in a file named for a later time than its own
            let margin = input::name_time_margin(&key) * 1_000_000;
            if let Some(t) = input::name_time(&key).map(|s| s * 1_000_000)
                && (o.filters.since.is_some_and(|s| t + margin < s)
                    || o.filters.until.is_some_and(|u| t - margin >= u))
            {
                skipped += 1;
                continue;
            }
            out.push(crate::s3::log_source(
                rt.handle().clone(),
                c.clone(),
                &url.bucket,
                &key,
            ));
        }
        if listed == skipped {
            return usage(format!(
                "{arg}: no object to read ({listed} listed, {skipped} dated outside --since/--until)"
            ));
        }
        if !a.quiet && !a.json {
            eprintln!(
                "{arg}: {} objects to read, {skipped} skipped: their names date them outside --since/--until",
                listed - skipped
            );
        }
    }
    Ok(out)
}

/// Reads every log of `a` with `o`, with a progress spinner unless `--quiet`; returns the
/// extraction and the seconds it took.
pub(crate) fn read(
    a: &ExtractArgs,
    o: &Options,
) -> anyhow::Result<(crate::extract::Extracted, f64)> {
    let mut rt = None;
    let sources = sources(a, o, &mut rt)?;
    let progress = Progress::default();
    let start = Instant::now();
    let bar = (!a.quiet).then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        if let Some(b) = &bar {
            let (p, done) = (&progress, &done);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let secs = start.elapsed().as_secs_f64().max(1e-3);
                    let (by, li) = (
                        p.bytes.load(Ordering::Relaxed),
                        p.lines.load(Ordering::Relaxed),
                    );
                    b.set_message(format!(
                        "{:.0} MB, {} lines ({:.0} MB/s, {:.0} lines/s)",
                        by as f64 / 1e6,
                        li,
                        by as f64 / 1e6 / secs,
                        li as f64 / secs
                    ));
                    b.tick();
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        // the progress thread stops however the extraction ends (a panic included)
        struct Done<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _done = Done(&done);
        extract(&sources, o, &progress)
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let ex = result.map_err(|e| UsageError(e.to_string()))?;
    Ok((ex, start.elapsed().as_secs_f64()))
}

pub fn run(a: ExtractArgs) -> anyhow::Result<i32> {
    let o = options(&a)?;
    let (ex, secs) = read(&a, &o)?;
    if a.strict && ex.stats.malformed_total() > 0 {
        eprint!("{}", render(&ex.stats, secs));
        return usage(format!(
            "--strict: {} malformed lines",
            ex.stats.malformed_total()
        ));
    }
    if a.output == "-" {
        let out = std::io::stdout();
        ex.write_csv(out.lock(), o.threads)
            .context("writing URL list to stdout")?;
    } else {
        // written beside and renamed: a killed extract leaves no half list that `run` accepts
        let out = std::path::Path::new(&a.output);
        let mut w =
            AtomicFile::create(out).with_context(|| format!("cannot create {}", a.output))?;
        ex.write_csv(&mut w, o.threads)
            .with_context(|| format!("writing {}", a.output))?;
        w.commit()
            .with_context(|| format!("writing {}", a.output))?;
    }
    if let Some(t) = &a.trace {
        let mut w =
            AtomicFile::create(t).with_context(|| format!("cannot create {}", t.display()))?;
        ex.write_trace(&mut w)
            .with_context(|| format!("writing {}", t.display()))?;
        w.commit()
            .with_context(|| format!("writing {}", t.display()))?;
    }
    if a.json {
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&ex.stats).unwrap_or_default()
        );
    } else if !a.quiet {
        eprint!("{}", render(&ex.stats, secs));
        eprintln!(
            "wrote {} URLs to {}{}",
            ex.url_count(),
            a.output,
            a.trace
                .as_ref()
                .map(|t| format!(" and {} trace rows to {}", ex.trace_count(), t.display()))
                .unwrap_or_default()
        );
    }
    ex.leak();
    Ok(EXIT_OK)
}
