//! Pass/fail thresholds: `[TARGET][@POP]:[CLASS.][ttfb.][service.]STAT OP VALUE[us|ms|s]`,
//! `[TARGET][@POP]:hit_ratio OP X`, `... error_rate OP X`, `... rps OP X`. `@POP` judges what
//! that POP answered; `@*` judges every POP on its own (the worst one decides).
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
    /// judge one POP's responses (`*`: each POP's)
    pub pop: Option<String>,
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
        let (target, pop) = match target.as_deref().map(|t| t.split_once('@')) {
            Some(Some((t, p))) => {
                let p = p.trim();
                let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
                if p.is_empty() || (p != "*" && !p.chars().all(plain)) {
                    return Err(bad(
                        "after @ comes a POP name (letters, digits, . _ -) or *",
                    ));
                }
                let t = t.trim();
                ((!t.is_empty()).then(|| t.to_string()), Some(p.to_string()))
            }
            _ => (target.filter(|t| !t.is_empty()), None),
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
        // values no measurement can meet or fail meaningfully
        if !value.is_finite() || value < 0.0 {
            return Err(bad("the value must be a finite number, not negative"));
        }
        if matches!(kind, Kind::HitRatio | Kind::ErrorRate) && value > 1.0 {
            return Err(bad("a ratio is between 0 and 1 (0% and 100%)"));
        }
        Ok(Threshold {
            text: text.trim().to_string(),
            target,
            pop,
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
            // what the target served, not what it refused
            Kind::Rps => (duration_s > 0.0).then(|| successes(t) as f64 / duration_s),
            Kind::Latency {
                class,
                ttfb,
                service,
                stat,
            } => {
                // without a class: the requests that got a response (the failures' own timing
                // is judged by error_rate, not mixed into the latency)
                let c = match (class.as_str(), &t.responses) {
                    ("all", Some(r)) => r,
                    _ => t.class(class)?,
                };
                let c = Some(c).filter(|c| c.count > 0)?;
                let lat = if *service { &c.service } else { &c.corrected };
                let st = if *ttfb { &lat.ttfb } else { &lat.total };
                if st.count == 0 {
                    return None;
                }
                st.get(stat)
            }
        }
    }

    /// Whether a threshold without an observation passes, and why: never on no data. A run
    /// without a successful response fails every threshold; `hit_ratio` needs classified
    /// responses; a class with no samples (no misses at all) passes only beside successful,
    /// classified responses of other classes.
    fn without_observation(&self, t: &TargetSummary) -> (bool, String) {
        if successes(t) == 0 {
            return (false, "no successful response".into());
        }
        let classified = classified(t);
        match &self.kind {
            Kind::HitRatio => (
                false,
                format!(
                    "no response carried a recognised cache status ({} unknown): add a rule or the header the CDN needs",
                    class_count(t, CacheClass::Unknown)
                ),
            ),
            Kind::Latency { class, .. } if class != "all" && classified > 0 => (
                true,
                format!("no {class} samples among {classified} classified responses"),
            ),
            Kind::Latency { class, .. } if class != "all" => (
                false,
                format!("no {class} samples, and no response carried a recognised cache status"),
            ),
            _ => (false, "no samples".into()),
        }
    }

    /// One result per target it applies to. No data never passes (see `without_observation`).
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
        let Some(pop) = &self.pop else {
            return (targets.into_iter())
                .map(|t| self.judge(t, s.duration_s))
                .collect();
        };
        let mut out = Vec::new();
        for t in targets {
            // with @*, a POP past the histogram cap (counted, its latency not kept) is not
            // judged on latency
            let latency = matches!(self.kind, Kind::Latency { .. });
            let views: Vec<TargetSummary> = (t.pop_summaries.iter())
                .filter(|(p, s)| *p == pop || pop == "*" && !(latency && s.all.count == 0))
                .map(|(p, _)| p)
                .filter_map(|p| t.pop_view(p))
                .collect();
            if views.is_empty() {
                out.push(ThresholdResult {
                    expr: self.text.clone(),
                    target: format!("{}@{pop}", t.name),
                    observed: None,
                    passed: false,
                    note: if pop == "*" {
                        "no response named its POP".into()
                    } else {
                        format!("no response came from POP {pop}")
                    },
                });
            }
            out.extend(views.iter().map(|v| self.judge(v, s.duration_s)));
        }
        out
    }

    /// The result for one target (or one POP's view of it).
    fn judge(&self, t: &TargetSummary, duration_s: f64) -> ThresholdResult {
        let observed = self.observe(t, duration_s);
        let (passed, note) = match observed {
            Some(_) if successes(t) == 0 => (false, "no successful response".into()),
            Some(v) => (self.op.holds(v, self.value), String::new()),
            None => self.without_observation(t),
        };
        ThresholdResult {
            expr: self.text.clone(),
            target: t.name.clone(),
            observed,
            passed,
            note,
        }
    }
}

/// Requests that got a response without an error (no failure, no 4xx/5xx status).
fn successes(t: &TargetSummary) -> u64 {
    t.requests.saturating_sub(t.errors)
}

fn class_count(t: &TargetSummary, c: CacheClass) -> u64 {
    t.class(c.as_str()).map_or(0, |s| s.count)
}

/// Responses whose cache status was recognised (every class but `unknown` and `error`).
fn classified(t: &TargetSummary) -> u64 {
    (CacheClass::ALL.into_iter())
        .filter(|c| !matches!(c, CacheClass::Unknown | CacheClass::Error))
        .map(|c| class_count(t, c))
        .sum()
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
            ("p99<NaNms", "finite"),
            ("p99<-5ms", "not negative"),
            ("hit_ratio>=1.5", "between 0 and 1"),
            ("error_rate<150%", "between 0 and 1"),
        ] {
            let e = s.parse::<Threshold>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains(s), "{s}: {e}");
        }
    }
}
