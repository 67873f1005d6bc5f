//! summary.json: the run's numbers per target x cache class, with the run's metadata. Versioned:
//! readers refuse a `format_version` they do not know.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::cache_status::{self, CacheClass};
use crate::engine::client::ErrorKind;
use crate::engine::recorder::{IntervalData, Metric, Series};

pub const FORMAT_VERSION: u32 = 1;

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
        "{path} has format_version {found}; this edgeload reads version {FORMAT_VERSION} (upgrade edgeload)"
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
                total: Stats::of(&s.h[Metric::Total as usize]),
                ttfb: Stats::of(&s.h[Metric::Ttfb as usize]),
            },
            service: Latencies {
                total: Stats::of(&s.h[Metric::TotalService as usize]),
                ttfb: Stats::of(&s.h[Metric::TtfbService as usize]),
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
    pub errors: u64,
    pub error_rate: f64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    /// POP -> class -> count
    pub pops: BTreeMap<String, BTreeMap<String, u64>>,
    /// every class merged
    pub all: ClassSummary,
    pub classes: Vec<ClassSummary>,
}

impl TargetSummary {
    pub fn class(&self, name: &str) -> Option<&ClassSummary> {
        if name == "all" {
            return Some(&self.all);
        }
        self.classes.iter().find(|c| c.class == name)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateSummary {
    /// "open" or "closed"
    pub model: String,
    /// requests per second the schedule asked for (open model, all targets)
    pub intended_rps: Option<f64>,
    /// requests completed per second of run time
    pub achieved_rps: f64,
    pub planned_requests: Option<u64>,
    pub sent: u64,
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
    /// "pass", "fail", or "none" (no thresholds)
    pub verdict: String,
    /// `mirror` runs: input accounting and the cutover gate
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
}

impl Summary {
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
        if found != FORMAT_VERSION as u64 {
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

/// Builds the per-target part of the summary from merged totals.
pub fn target_summaries(totals: &IntervalData, targets: &[(String, String)]) -> Vec<TargetSummary> {
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
            errors,
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
                        .filter(|k| c[k.index()] > 0)
                        .map(|k| (k.as_str().to_string(), c[k.index()]))
                        .collect();
                    (p.as_str().to_string(), m)
                })
                .collect(),
            all,
            classes,
        });
    }
    out
}
