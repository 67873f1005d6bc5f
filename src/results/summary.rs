//! summary.json: the run's numbers per target x cache class, with the run's metadata. Versioned:
//! readers refuse a `format_version` they do not know.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::cache_status::{self, CacheClass};
use crate::measure::{ErrorKind, IntervalData, Metric, Series};

/// 2 added pops.hlog (per-POP latency) and `targets[].pop_summaries`; 1 is still read.
pub const FORMAT_VERSION: u32 = 2;
/// The versions this edgeload reads.
pub(crate) const READS_VERSIONS: std::ops::RangeInclusive<u32> = 1..=FORMAT_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid summary: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path} has format_version {found}; this edgeload reads versions 1 to {FORMAT_VERSION} (upgrade edgeload)"
    )]
    Version { path: String, found: u64 },
}

/// Latency statistics in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| ms(h.value_at_quantile(p));
        Stats {
            count: h.len(),
            mean: h.mean() / 1000.0,
            stddev: h.stdev() / 1000.0,
            min: ms(h.min()),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(h.max()),
        }
    }

    /// The statistic named as in thresholds: p50, p90, p95, p99, p99.9, mean, stddev, min, max.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" | "median" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "p99.9" | "p999" => self.p999,
            "mean" | "avg" => self.mean,
            "stddev" => self.stddev,
            "min" => self.min,
            "max" => self.max,
            _ => return None,
        })
    }
}

/// Total (body read) and TTFB (headers) latencies, from one basis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    pub total: Stats,
    pub ttfb: Stats,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    pub class: String,
    pub count: u64,
    pub bytes: u64,
    /// from the intended send time (corrected for coordinated omission)
    pub corrected: Latencies,
    /// from the actual send time
    pub service: Latencies,
}

impl ClassSummary {
    pub fn of(class: &str, s: &Series) -> ClassSummary {
        ClassSummary {
            class: class.to_string(),
            count: s.count(),
            bytes: s.bytes,
            corrected: Latencies {
                total: Stats::of(&s.h[Metric::Total]),
                ttfb: Stats::of(&s.h[Metric::Ttfb]),
            },
            service: Latencies {
                total: Stats::of(&s.h[Metric::TotalService]),
                ttfb: Stats::of(&s.h[Metric::TtfbService]),
            },
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub name: String,
    pub base_url: String,
    pub requests: u64,
    pub bytes: u64,
    pub hit_ratio: Option<f64>,
    /// the hit ratio in bytes: body bytes of hits over those of every class in the ratio
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_hit_ratio: Option<f64>,
    /// the share of responses whose cache status was not recognised (class `unknown`); None
    /// without a response
    #[serde(default)]
    pub unknown_share: Option<f64>,
    pub errors: u64,
    pub error_rate: f64,
    /// requests sent a second time on a new connection because a reused one closed before
    /// answering (`--retries`); each is one request in `requests`
    #[serde(default)]
    pub retries: u64,
    /// how connections were made (built-in client)
    #[serde(default)]
    pub connections: Connections,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    /// POP -> class -> count
    pub pops: BTreeMap<String, BTreeMap<String, u64>>,
    /// POP -> its requests, errors, hit ratio and latency per class
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pop_summaries: BTreeMap<String, PopSummary>,
    /// every class merged
    pub all: ClassSummary,
    /// every class but `error` merged (the requests that got a response): what a latency
    /// threshold without a class judges; None in summaries before format 2
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<ClassSummary>,
    pub classes: Vec<ClassSummary>,
}

/// A target's connections: opened, requests sent on a kept-alive one, TLS handshakes (and how
/// many resumed a session), and connections opened per address (pinning spreads them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    pub opened: u64,
    pub reused: u64,
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    pub by_address: BTreeMap<String, u64>,
    /// name lookups (a thread looks a host up until it knows its addresses: once, or once
    /// for each of its first connects in flight together; none for an IP address or a pin),
    /// TCP connect and TLS handshake times of the connections opened (ms)
    #[serde(default)]
    pub dns: Stats,
    #[serde(default)]
    pub connect: Stats,
    #[serde(default)]
    pub tls_handshake: Stats,
    /// handshakes per TLS version and cipher suite negotiated, e.g. "TLSv1_3
    /// TLS13_AES_256_GCM_SHA384"
    #[serde(default)]
    pub tls: BTreeMap<String, u64>,
    /// connections opened per protocol: "HTTP/1.1", "HTTP/2"
    #[serde(default)]
    pub protocols: BTreeMap<String, u64>,
}

/// "TLSv1_3 TLS13_AES_256_GCM_SHA384" from the IANA numbers of a version and a suite.
fn tls_params(version: u16, suite: u16) -> String {
    let v = rustls::ProtocolVersion::from(version);
    let s = rustls::CipherSuite::from(suite);
    format!(
        "{} {}",
        v.as_str()
            .map_or_else(|| format!("0x{version:04x}"), str::to_string),
        s.as_str()
            .map_or_else(|| format!("0x{suite:04x}"), str::to_string)
    )
}

/// What one POP answered of a target's requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PopSummary {
    pub requests: u64,
    pub errors: u64,
    pub hit_ratio: Option<f64>,
    pub all: ClassSummary,
    pub classes: Vec<ClassSummary>,
}

impl TargetSummary {
    /// The target as seen through one POP (its requests, errors, classes), named
    /// `target@POP`: what a per-POP threshold judges.
    pub fn pop_view(&self, pop: &str) -> Option<TargetSummary> {
        let p = self.pop_summaries.get(pop)?;
        let unknown = p.classes.iter().find(|c| c.class == "unknown");
        Some(TargetSummary {
            name: format!("{}@{pop}", self.name),
            base_url: self.base_url.clone(),
            requests: p.requests,
            bytes: p.all.bytes,
            hit_ratio: p.hit_ratio,
            unknown_share: (p.requests > 0)
                .then(|| unknown.map_or(0, |c| c.count) as f64 / p.requests as f64),
            errors: p.errors,
            error_rate: if p.requests > 0 {
                p.errors as f64 / p.requests as f64
            } else {
                0.0
            },
            all: p.all.clone(),
            // a POP is named by a response's headers: every request it counts got one
            responses: Some(p.all.clone()),
            classes: p.classes.clone(),
            ..TargetSummary::default()
        })
    }

    pub fn class(&self, name: &str) -> Option<&ClassSummary> {
        if name == "all" {
            return Some(&self.all);
        }
        self.classes.iter().find(|c| c.class == name)
    }
}

/// How the load was made: `open` (intended send times), `closed` (N workers), `mirror` (live
/// traffic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    #[default]
    Open,
    Closed,
    Mirror,
    /// read from a CDN's own access logs (`observe`): nothing was sent
    Observed,
}

impl std::fmt::Display for LoadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadModel::Open => "open",
            LoadModel::Closed => "closed",
            LoadModel::Mirror => "mirror",
            LoadModel::Observed => "observed",
        })
    }
}

/// The thresholds' (or the mirror gate's) verdict: `none` when there was nothing to judge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    #[default]
    None,
}

impl Verdict {
    /// Pass when every result passed, fail when one failed, none without results.
    pub fn of(results: &[ThresholdResult]) -> Verdict {
        if results.is_empty() {
            Verdict::None
        } else if results.iter().all(|r| r.passed) {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::None => "none",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateSummary {
    pub model: LoadModel,
    /// requests per second the schedule asked for (open model, all targets)
    pub intended_rps: Option<f64>,
    /// requests completed per second of run time
    pub achieved_rps: f64,
    pub planned_requests: Option<u64>,
    pub sent: u64,
    /// open model: requests due before the end that were never sent (the generator or the
    /// in-flight cap could not keep up: the coordinated-omission signal)
    #[serde(default)]
    pub unsent: u64,
    pub completed: u64,
    /// in flight when the run was stopped and the grace period ended
    pub abandoned: u64,
    /// open model: actual minus intended send time, ms
    pub send_lag: Option<Stats>,
    /// the generator could not keep to the schedule
    pub fell_behind: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    pub target: String,
    pub observed: Option<f64>,
    pub passed: bool,
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub format_version: u32,
    pub run_id: String,
    pub region: String,
    pub tool: Tool,
    /// the effective configuration, secrets redacted
    pub scenario: serde_json::Value,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub interval_s: f64,
    pub interrupted: bool,
    pub rate: RateSummary,
    pub targets: Vec<TargetSummary>,
    pub thresholds: Vec<ThresholdResult>,
    pub verdict: Verdict,
    /// response header names seen on responses classified `unknown` (what a rule could use)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_headers: Vec<String>,
    /// why TLS handshakes failed, when some did (a few distinct reasons)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_errors: Vec<String>,
    /// `mirror` runs: input accounting and the cutover gate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
    /// `observe`: what was read from the CDN's logs, and what warming can still win
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe: Option<serde_json::Value>,
    /// `run --runner K/N`: this directory is one of N runners' share of one plan (a region's
    /// runners merge into the region)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
}

/// Runner `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Runner {
    pub index: u64,
    pub count: u64,
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What every summary says of its run, whoever made it (`run`, `demo`, `mirror`).
pub struct RunMeta<'a> {
    pub run_id: &'a str,
    pub region: &'a str,
    /// the effective configuration, secrets already redacted
    pub scenario: serde_json::Value,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub interval: Duration,
    pub interrupted: bool,
}

/// RFC 3339 UTC, as every timestamp of the results directory.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Summary {
    /// The one way a summary is made: metadata, rate, and the per-target numbers of `totals`
    /// (`targets`: name and base URL, in target order; base URLs are redacted here). No
    /// thresholds yet (`judged` adds them).
    pub fn new(
        meta: RunMeta,
        rate: RateSummary,
        totals: &IntervalData,
        targets: &[(String, String)],
    ) -> Summary {
        Summary {
            format_version: FORMAT_VERSION,
            run_id: meta.run_id.to_string(),
            region: meta.region.to_string(),
            tool: Tool {
                name: "edgeload".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            scenario: meta.scenario,
            started_at: rfc3339(meta.started),
            ended_at: rfc3339(meta.ended),
            duration_s: (meta.ended.duration_since(meta.started))
                .unwrap_or_default()
                .as_secs_f64(),
            interval_s: meta.interval.as_secs_f64(),
            interrupted: meta.interrupted,
            rate,
            targets: target_summaries(totals, targets),
            thresholds: Vec::new(),
            verdict: Verdict::None,
            unknown_headers: Vec::new(),
            tls_errors: Vec::new(),
            mirror: None,
            observe: None,
            runner: None,
        }
    }

    /// With threshold results and the verdict they give.
    pub fn judged(mut self, results: Vec<ThresholdResult>) -> Summary {
        self.verdict = Verdict::of(&results);
        self.thresholds = results;
        self
    }

    pub fn target(&self, name: &str) -> Option<&TargetSummary> {
        self.targets.iter().find(|t| t.name == name)
    }

    pub fn read(path: &Path) -> Result<Summary, SummaryError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SummaryError::Io {
            path: p.clone(),
            source,
        })?;
        Self::from_json(&text, &p)
    }

    pub fn from_json(text: &str, path: &str) -> Result<Summary, SummaryError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|source| SummaryError::Json {
                path: path.to_string(),
                source,
            })?;
        let found = v
            .get("format_version")
            .and_then(|f| f.as_u64())
            .unwrap_or(0);
        if !u32::try_from(found).is_ok_and(|f| READS_VERSIONS.contains(&f)) {
            return Err(SummaryError::Version {
                path: path.to_string(),
                found,
            });
        }
        serde_json::from_value(v).map_err(|source| SummaryError::Json {
            path: path.to_string(),
            source,
        })
    }
}

/// Unknown responses over all responses (requests that failed before a response excluded).
pub fn unknown_share(classes: &[u64; CacheClass::COUNT]) -> Option<f64> {
    let responses: u64 = (CacheClass::ALL.iter())
        .filter(|c| **c != CacheClass::Error)
        .map(|c| classes[c.index()])
        .sum();
    (responses > 0).then(|| classes[CacheClass::Unknown.index()] as f64 / responses as f64)
}

/// Per POP of target `ti`: its counts and the latency of each class it answered (POPs past
/// `MAX_POPS` have counts only).
fn pop_summaries(
    totals: &IntervalData,
    ti: usize,
    counts: &crate::measure::TargetCounts,
) -> BTreeMap<String, PopSummary> {
    let mut out = BTreeMap::new();
    for (pop, c) in &counts.pops {
        let mine = (totals.pop_series.iter()).filter(|p| p.target == ti && p.pop == *pop);
        let mut all = Series::new();
        let mut classes = Vec::new();
        for c in CacheClass::ALL {
            for p in mine.clone().filter(|p| p.class == c) {
                all.add(&p.s);
                classes.push(ClassSummary::of(c.as_str(), &p.s));
            }
        }
        let requests = c.requests();
        out.insert(
            pop.as_str().to_string(),
            PopSummary {
                requests,
                errors: c.errors,
                hit_ratio: cache_status::hit_ratio(&c.classes),
                all: ClassSummary::of("all", &all),
                classes,
            },
        );
    }
    out
}

/// Builds the per-target part of the summary from merged totals.
fn target_summaries(totals: &IntervalData, targets: &[(String, String)]) -> Vec<TargetSummary> {
    let mut out = Vec::new();
    for (ti, (name, base)) in targets.iter().enumerate() {
        let counts = &totals.targets[ti];
        let classes: Vec<ClassSummary> = CacheClass::ALL
            .into_iter()
            .filter_map(|c| {
                totals
                    .series(ti, c)
                    .map(|s| ClassSummary::of(c.as_str(), s))
            })
            .collect();
        let all = totals
            .target_all(ti)
            .map(|s| ClassSummary::of("all", &s))
            .unwrap_or_else(|| ClassSummary {
                class: "all".into(),
                ..Default::default()
            });
        let errors = counts.error_count();
        out.push(TargetSummary {
            name: name.clone(),
            base_url: crate::guard::redact::url(base).into_owned(),
            requests: counts.requests,
            bytes: all.bytes,
            hit_ratio: cache_status::hit_ratio(&counts.classes),
            byte_hit_ratio: cache_status::hit_ratio(&std::array::from_fn(|i| {
                totals.series(ti, CacheClass::ALL[i]).map_or(0, |s| s.bytes)
            })),
            unknown_share: unknown_share(&counts.classes),
            errors,
            retries: counts.retries,
            connections: Connections {
                opened: counts.opened,
                reused: counts.reused,
                tls_handshakes: counts.tls_handshakes,
                tls_resumed: counts.tls_resumed,
                by_address: (counts.addrs.iter())
                    .map(|(a, n)| (a.to_string(), *n))
                    .collect(),
                dns: (totals.phases[ti].as_ref())
                    .map_or_else(Stats::default, |p| Stats::of(&p.dns)),
                connect: (totals.phases[ti].as_ref())
                    .map_or_else(Stats::default, |p| Stats::of(&p.connect)),
                tls_handshake: (totals.phases[ti].as_ref())
                    .map_or_else(Stats::default, |p| Stats::of(&p.tls)),
                tls: (counts.tls_params.iter())
                    .map(|((v, s), n)| (tls_params(*v, *s), *n))
                    .collect(),
                protocols: [
                    ("HTTP/1.1", counts.opened - counts.h2_opened),
                    ("HTTP/2", counts.h2_opened),
                ]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(p, n)| (p.to_string(), n))
                .collect(),
            },
            error_rate: if counts.requests > 0 {
                errors as f64 / counts.requests as f64
            } else {
                0.0
            },
            errors_by_kind: ErrorKind::ALL
                .into_iter()
                .filter(|k| counts.errors[k.index()] > 0)
                .map(|k| (k.as_str().to_string(), counts.errors[k.index()]))
                .collect(),
            status_codes: counts
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            pops: counts
                .pops
                .iter()
                .map(|(p, c)| {
                    let m = CacheClass::ALL
                        .into_iter()
                        .filter(|k| c.classes[k.index()] > 0)
                        .map(|k| (k.as_str().to_string(), c.classes[k.index()]))
                        .collect();
                    (p.as_str().to_string(), m)
                })
                .collect(),
            pop_summaries: pop_summaries(totals, ti, counts),
            responses: Some({
                let mut s = Series::new();
                for c in CacheClass::ALL
                    .into_iter()
                    .filter(|c| *c != CacheClass::Error)
                {
                    if let Some(x) = totals.series(ti, c) {
                        s.add(x);
                    }
                }
                ClassSummary::of("responses", &s)
            }),
            all,
            classes,
        });
    }
    out
}
