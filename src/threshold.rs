//! Pass/fail thresholds: `[TARGET:][CLASS.][ttfb.][service.]STAT OP VALUE[us|ms|s]`,
//! `[TARGET:]hit_ratio OP X`, `[TARGET:]error_rate OP X`, `[TARGET:]rps OP X`.
//! Latency thresholds use the corrected total time unless `ttfb`/`service` say otherwise.
//! Evaluated on a summary, so `report` can re-check merged results the same way.

use crate::cache_status::CacheClass;
use crate::results::summary::{Summary, TargetSummary, ThresholdResult};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    HitRatio,
    ErrorRate,
    Rps,
    Latency {
        class: String,
        ttfb: bool,
        service: bool,
        stat: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub target: Option<String>,
    pub kind: Kind,
    pub op: Op,
    /// latency in ms; ratios as fractions
    pub value: f64,
}

const STATS: [&str; 11] = [
    "p50", "p90", "p95", "p99", "p99.9", "p999", "mean", "stddev", "min", "max", "median",
];

impl std::str::FromStr for Threshold {
    type Err = String;
    fn from_str(text: &str) -> Result<Threshold, String> {
        let bad = |why: &str| format!("bad threshold {text:?}: {why}");
        let s = text.trim();
        let pos = s
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison (<, <=, >, >=)"))?;
        let (lhs, rest) = s.split_at(pos);
        let (op, rhs) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else {
            (Op::Gt, &rest[1..])
        };
        let lhs = lhs.trim();
        let (target, metric) = match lhs.split_once(':') {
            Some((t, m)) => (Some(t.trim().to_string()), m.trim()),
            None => (None, lhs),
        };
        let rhs = rhs.trim();
        let kind = match metric {
            "hit_ratio" => Kind::HitRatio,
            "error_rate" => Kind::ErrorRate,
            "rps" => Kind::Rps,
            _ => {
                // the stat is the tail (it may contain a dot: p99.9)
                let stat = STATS
                    .iter()
                    .filter(|st| metric == **st || metric.ends_with(&format!(".{st}")))
                    .max_by_key(|st| st.len())
                    .ok_or_else(|| bad("unknown statistic (p50 p90 p95 p99 p99.9 mean stddev min max, hit_ratio, error_rate, rps)"))?;
                let head = metric[..metric.len() - stat.len()].trim_end_matches('.');
                let (mut class, mut ttfb, mut service) = ("all".to_string(), false, false);
                for part in head.split('.').filter(|p| !p.is_empty()) {
                    match part {
                        "ttfb" => ttfb = true,
                        "total" => ttfb = false,
                        "service" => service = true,
                        "corrected" => service = false,
                        "all" => class = "all".into(),
                        c => {
                            class = CacheClass::parse(c)
                                .ok_or_else(|| bad(&format!("unknown cache class {c:?}")))?
                                .as_str()
                                .to_string()
                        }
                    }
                }
                Kind::Latency {
                    class,
                    ttfb,
                    service,
                    stat: stat.to_string(),
                }
            }
        };
        let value = if let Kind::Latency { .. } = kind {
            let (num, mult) = if let Some(n) = rhs.strip_suffix("us") {
                (n, 0.001)
            } else if let Some(n) = rhs.strip_suffix("ms") {
                (n, 1.0)
            } else if let Some(n) = rhs.strip_suffix('s') {
                (n, 1000.0)
            } else {
                return Err(bad("latency needs a unit (us, ms, s)"));
            };
            num.trim()
                .parse::<f64>()
                .map_err(|_| bad("value is not a number"))?
                * mult
        } else {
            let (num, mult) = match rhs.strip_suffix('%') {
                Some(n) => (n, 0.01),
                None => (rhs, 1.0),
            };
            num.trim()
                .parse::<f64>()
                .map_err(|_| bad("value is not a number"))?
                * mult
        };
        Ok(Threshold {
            text: text.trim().to_string(),
            target,
            kind,
            op,
            value,
        })
    }
}

impl Threshold {
    fn observe(&self, t: &TargetSummary, duration_s: f64) -> Option<f64> {
        match &self.kind {
            Kind::HitRatio => t.hit_ratio,
            Kind::ErrorRate => (t.requests > 0).then_some(t.error_rate),
            Kind::Rps => (duration_s > 0.0).then(|| t.requests as f64 / duration_s),
            Kind::Latency {
                class,
                ttfb,
                service,
                stat,
            } => {
                let c = t.class(class).filter(|c| c.count > 0)?;
                let lat = if *service { &c.service } else { &c.corrected };
                let st = if *ttfb { &lat.ttfb } else { &lat.total };
                if st.count == 0 {
                    return None;
                }
                st.get(stat)
            }
        }
    }

    /// One result per target it applies to. No samples (e.g. no misses at all) passes, noted.
    pub fn evaluate(&self, s: &Summary) -> Vec<ThresholdResult> {
        let targets: Vec<&TargetSummary> = match &self.target {
            Some(name) => s.targets.iter().filter(|t| &t.name == name).collect(),
            None => s.targets.iter().collect(),
        };
        if targets.is_empty() {
            return vec![ThresholdResult {
                expr: self.text.clone(),
                target: self.target.clone().unwrap_or_default(),
                observed: None,
                passed: false,
                note: "no such target".into(),
            }];
        }
        targets
            .into_iter()
            .map(|t| {
                let observed = self.observe(t, s.duration_s);
                let (passed, note) = match observed {
                    Some(v) => (self.op.holds(v, self.value), String::new()),
                    None => (true, "no samples".to_string()),
                };
                ThresholdResult {
                    expr: self.text.clone(),
                    target: t.name.clone(),
                    observed,
                    passed,
                    note,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let t: Threshold = "miss.p99<150ms".parse().unwrap();
        assert_eq!(
            t.kind,
            Kind::Latency {
                class: "miss".into(),
                ttfb: false,
                service: false,
                stat: "p99".into()
            }
        );
        assert_eq!((t.op, t.value), (Op::Lt, 150.0));
        let t: Threshold = "fastly:hit.ttfb.service.p99.9 <= 0.02s".parse().unwrap();
        assert_eq!(t.target.as_deref(), Some("fastly"));
        assert_eq!(
            t.kind,
            Kind::Latency {
                class: "hit".into(),
                ttfb: true,
                service: true,
                stat: "p99.9".into()
            }
        );
        assert_eq!((t.op, t.value), (Op::Le, 20.0));
        let t: Threshold = "hit_ratio>=0.9".parse().unwrap();
        assert_eq!((t.kind, t.op, t.value), (Kind::HitRatio, Op::Ge, 0.9));
        let t: Threshold = "error_rate < 1%".parse().unwrap();
        assert_eq!((t.kind, t.value), (Kind::ErrorRate, 0.01));
        let t: Threshold = "p99<2s".parse().unwrap();
        assert!(matches!(t.kind, Kind::Latency { ref class, .. } if class == "all"));
    }

    #[test]
    fn rejects_with_reason() {
        for (s, why) in [
            ("p99 150ms", "no comparison"),
            ("miss.p98<1ms", "unknown statistic"),
            ("warm.p99<1ms", "unknown cache class"),
            ("p99<150", "needs a unit"),
            ("hit_ratio>=x", "not a number"),
        ] {
            let e = s.parse::<Threshold>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains(s), "{s}: {e}");
        }
    }
}
