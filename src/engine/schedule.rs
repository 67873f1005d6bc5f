//! Intended send times for the open model: a pure function of the request number.
//!
//! A schedule is a list of stages, each a linear ramp of the arrival rate from `from` to `to`
//! requests per second over `duration` (`from == to` is a constant rate). Request `i` (0-based) is
//! due at the time `t` where the cumulative count `N(t) = ∫ rate` reaches `i`, so request 0 goes at
//! t = 0 and a constant rate r sends request i at i / r. Latency is measured from these times.

use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub from: f64,
    pub to: f64,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "bad stage {text:?}: {msg} (expected RATE/DURATION or FROM->TO/DURATION, e.g. 0->2000/60s)"
)]
pub struct StageError {
    pub text: String,
    pub msg: String,
}

impl std::str::FromStr for Stage {
    type Err = StageError;
    fn from_str(s: &str) -> Result<Stage, StageError> {
        let err = |msg: &str| StageError {
            text: s.to_string(),
            msg: msg.to_string(),
        };
        let (rates, dur) = s.trim().split_once('/').ok_or_else(|| err("no '/'"))?;
        let duration = humantime::parse_duration(dur.trim()).map_err(|e| err(&e.to_string()))?;
        let rate = |r: &str| -> Result<f64, StageError> {
            let v: f64 = r.trim().parse().map_err(|_| err("rate is not a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(err("rate must be >= 0"));
            }
            Ok(v)
        };
        let (from, to) = match rates.split_once("->") {
            Some((a, b)) => (rate(a)?, rate(b)?),
            None => {
                let r = rate(rates)?;
                (r, r)
            }
        };
        if duration.is_zero() {
            return Err(err("duration must be > 0"));
        }
        Ok(Stage { from, to, duration })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = humantime::format_duration(self.duration);
        if self.from == self.to {
            write!(f, "{}/{}", self.from, d)
        } else {
            write!(f, "{}->{}/{}", self.from, self.to, d)
        }
    }
}

#[derive(Clone, Debug)]
struct Segment {
    start: f64, // seconds
    len: f64,
    from: f64,
    to: f64,
    n0: f64, // cumulative count at segment start
}

/// The open-model schedule: rate stages, or explicit times (a replayed trace).
#[derive(Clone, Debug)]
pub struct Schedule {
    segs: Vec<Segment>,
    end: f64,
    total: f64,
    /// seconds from the start, ascending
    times: Option<std::sync::Arc<[f64]>>,
}

/// What a pacer says: wait this long before the next hit, or stop.
#[derive(Debug, PartialEq)]
pub enum Pace {
    Wait(Duration),
    Stop,
}

impl Schedule {
    pub fn new(stages: &[Stage]) -> Schedule {
        let mut segs = Vec::with_capacity(stages.len());
        let (mut t, mut n) = (0.0, 0.0);
        for s in stages {
            let len = s.duration.as_secs_f64();
            segs.push(Segment {
                start: t,
                len,
                from: s.from,
                to: s.to,
                n0: n,
            });
            t += len;
            n += (s.from + s.to) / 2.0 * len;
        }
        Schedule {
            segs,
            end: t,
            total: n,
            times: None,
        }
    }

    /// A trace's send times (seconds from the first request), divided by `speed`.
    /// A trace's send times in seconds from its first row, from its timestamps (unix us, in
    /// time order): requests that share a timestamp are spread evenly over its resolution (a
    /// log with whole seconds sends a second's 100 requests 10 ms apart, in their order, not
    /// all at once: a burst would make a CDN collapse them and distort hit ratio and misses).
    /// The resolution is the coarsest of 1 s, 1 ms and 1 us that every timestamp is a multiple
    /// of.
    pub fn trace_offsets(times_us: &[i64]) -> Vec<f64> {
        let Some(&t0) = times_us.first() else {
            return Vec::new();
        };
        let res = [1_000_000i64, 1_000, 1]
            .into_iter()
            .find(|r| times_us.iter().all(|t| t.rem_euclid(*r) == 0))
            .unwrap_or(1);
        let mut out = Vec::with_capacity(times_us.len());
        let mut i = 0;
        while i < times_us.len() {
            let t = times_us[i];
            let n = times_us[i..].iter().take_while(|&&x| x == t).count();
            for k in 0..n {
                let at = (t - t0) as f64 + res as f64 * k as f64 / n as f64;
                out.push(at / 1e6);
            }
            i += n;
        }
        out
    }

    pub fn from_times(offsets: &[f64], speed: f64) -> Schedule {
        let speed = if speed > 0.0 { speed } else { 1.0 };
        let mut times: Vec<f64> = offsets.iter().map(|t| (t / speed).max(0.0)).collect();
        // a trace is sorted; keep the schedule monotonic even if it was not
        for i in 1..times.len() {
            if times[i] < times[i - 1] {
                times[i] = times[i - 1];
            }
        }
        let last = times.last().copied().unwrap_or(0.0);
        let first = times.first().copied().unwrap_or(0.0);
        // the trace lasts one mean gap (at least a second) past its last request, as a
        // constant rate's schedule lasts one interval past its last: the run ends then, and a
        // last request sent a little late still goes (`lasting` sets the end a --duration says)
        let gap = if times.len() > 1 {
            (last - first) / (times.len() - 1) as f64
        } else {
            0.0
        };
        Schedule {
            segs: Vec::new(),
            end: last + gap.max(1.0),
            total: times.len() as f64,
            times: Some(times.into()),
        }
    }

    pub fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::new(&[Stage {
            from: rate,
            to: rate,
            duration,
        }])
    }

    /// The same schedule ending at `d` (a trace cut by --duration: its requests are due before).
    pub fn lasting(mut self, d: Duration) -> Schedule {
        self.end = d.as_secs_f64();
        self
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.end)
    }

    /// Requests the schedule plans in all (rounded up: request i is sent when N(t) >= i).
    pub fn planned_requests(&self) -> u64 {
        let t = self.total;
        if t <= 0.0 {
            0
        } else {
            (t - 1e-9).ceil() as u64
        }
    }

    /// Mean intended rate over the whole schedule.
    pub fn mean_rate(&self) -> f64 {
        if self.end > 0.0 {
            self.total / self.end
        } else {
            0.0
        }
    }

    /// When request `i` is due, from the start; None once the schedule has ended.
    pub(crate) fn send_time(&self, i: u64) -> Option<Duration> {
        if let Some(t) = &self.times {
            return t.get(i as usize).map(|s| Duration::from_secs_f64(*s));
        }
        let target = i as f64;
        for s in &self.segs {
            let n1 = s.n0 + (s.from + s.to) / 2.0 * s.len;
            if target >= n1 {
                continue;
            }
            let need = target - s.n0; // requests into this segment
            // N(τ) = from·τ + (to-from)·τ²/(2·len) = need
            let a = (s.to - s.from) / (2.0 * s.len);
            let b = s.from;
            let tau = if a.abs() < 1e-12 {
                need / b
            } else {
                let disc = b * b + 4.0 * a * need;
                (-b + disc.max(0.0).sqrt()) / (2.0 * a)
            };
            let tau = tau.clamp(0.0, s.len);
            return Some(Duration::from_secs_f64(s.start + tau));
        }
        None
    }

    /// vegeta's pacer interface: with `hits` sent and `elapsed` since the start, how long to wait.
    pub fn pace(&self, elapsed: Duration, hits: u64) -> Pace {
        match self.send_time(hits) {
            None => Pace::Stop,
            Some(t) => Pace::Wait(t.saturating_sub(elapsed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    #[test]
    fn constant_rate() {
        let s = Schedule::constant(2000.0, Duration::from_secs(5));
        assert_eq!(s.planned_requests(), 10_000);
        assert_eq!(s.send_time(0), Some(Duration::ZERO));
        assert!((ms(s.send_time(1).unwrap()) - 0.5).abs() < 1e-6);
        assert!((ms(s.send_time(9_999).unwrap()) - 4999.5).abs() < 1e-6);
        assert_eq!(s.send_time(10_000), None);
    }

    #[test]
    fn ramp_from_zero() {
        // 0 -> 100/s over 10 s: N(t) = 5 t², 500 requests.
        let s = Schedule::new(&["0->100/10s".parse().unwrap()]);
        assert_eq!(s.planned_requests(), 500);
        // N(t) = 125 at t = 5 s
        assert!((s.send_time(125).unwrap().as_secs_f64() - 5.0).abs() < 1e-9);
        assert!(s.send_time(499).unwrap() < Duration::from_secs(10));
        assert_eq!(s.send_time(500), None);
    }

    #[test]
    fn stages_chain() {
        let s = Schedule::new(&["0->2000/60s".parse().unwrap(), "2000/300s".parse().unwrap()]);
        assert_eq!(s.planned_requests(), 60_000 + 600_000);
        assert_eq!(s.duration(), Duration::from_secs(360));
        // first request of the plateau at exactly 60 s
        assert!((s.send_time(60_000).unwrap().as_secs_f64() - 60.0).abs() < 1e-9);
        let t = s.send_time(60_000 + 2000).unwrap().as_secs_f64();
        assert!((t - 61.0).abs() < 1e-9, "{t}");
    }

    #[test]
    fn times_are_monotonic() {
        let s = Schedule::new(&[
            "10->1000/3s".parse().unwrap(),
            "1000->0/2s".parse().unwrap(),
        ]);
        let mut last = Duration::ZERO;
        for i in 0..s.planned_requests() {
            let t = s.send_time(i).unwrap();
            assert!(t >= last, "request {i}");
            last = t;
        }
    }

    #[test]
    fn pacer() {
        let s = Schedule::constant(10.0, Duration::from_secs(1));
        assert_eq!(s.pace(Duration::ZERO, 0), Pace::Wait(Duration::ZERO));
        assert_eq!(
            s.pace(Duration::from_millis(50), 1),
            Pace::Wait(Duration::from_millis(50))
        );
        assert_eq!(
            s.pace(Duration::from_millis(500), 1),
            Pace::Wait(Duration::ZERO)
        );
        assert_eq!(s.pace(Duration::from_millis(999), 10), Pace::Stop);
    }

    #[test]
    fn requests_sharing_a_timestamp_are_spread_over_its_resolution() {
        let s = 1_000_000i64;
        // whole seconds: 4 requests in second 0, 1 in second 2
        let t = Schedule::trace_offsets(&[10 * s, 10 * s, 10 * s, 10 * s, 12 * s]);
        assert_eq!(t, [0.0, 0.25, 0.5, 0.75, 2.0]);
        // milliseconds: ties spread over 1 ms
        let t = Schedule::trace_offsets(&[5_000, 5_000, 6_000]);
        assert_eq!(t, [0.0, 0.0005, 0.001]);
        assert!(Schedule::trace_offsets(&[]).is_empty());
    }

    #[test]
    fn trace_times() {
        let s = Schedule::from_times(&[0.0, 0.5, 0.5, 2.0], 2.0);
        assert_eq!(s.planned_requests(), 4);
        assert_eq!(s.send_time(1), Some(Duration::from_millis(250)));
        assert_eq!(s.send_time(3), Some(Duration::from_secs(1)));
        assert_eq!(s.send_time(4), None);
        // one mean gap (1/3 s), at least a second, past the last request: 1 s + 1 s
        assert_eq!(s.duration(), Duration::from_secs(2));
        assert_eq!(
            s.lasting(Duration::from_secs(3)).duration(),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn stage_parse_errors() {
        assert!("2000".parse::<Stage>().is_err());
        assert!("x/10s".parse::<Stage>().is_err());
        assert!("-1/10s".parse::<Stage>().is_err());
        assert!("10/0s".parse::<Stage>().is_err());
        let st: Stage = "5->10/1m".parse().unwrap();
        assert_eq!(st.to_string(), "5->10/1m");
    }
}
