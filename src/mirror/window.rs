//! Sliding-window hit ratios per target and per POP, and the cutover gate (ratio held for a
//! whole hold period, with enough samples). Pure: time is passed in.

use std::collections::{BTreeMap, VecDeque};

use crate::cache_status::{self, CacheClass};

/// Counts by class in one-second buckets over the last `secs` seconds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    secs: u64,
    buckets: VecDeque<(u64, [u64; CacheClass::COUNT])>,
}

impl Window {
    pub fn new(secs: u64) -> Window {
        Window {
            secs: secs.max(1),
            buckets: VecDeque::new(),
        }
    }
    fn expire(&mut self, now_s: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s + self.secs <= now_s)
        {
            self.buckets.pop_front();
        }
    }
    pub fn record(&mut self, now_s: u64, class: CacheClass) {
        self.expire(now_s);
        match self.buckets.back_mut() {
            Some((s, c)) if *s == now_s => c[class.index()] += 1,
            _ => {
                let mut c = [0; CacheClass::COUNT];
                c[class.index()] = 1;
                self.buckets.push_back((now_s, c));
            }
        }
    }
    pub fn counts(&mut self, now_s: u64) -> [u64; CacheClass::COUNT] {
        self.expire(now_s);
        let mut out = [0; CacheClass::COUNT];
        for (_, c) in &self.buckets {
            for (a, b) in out.iter_mut().zip(c) {
                *a += b;
            }
        }
        out
    }
    /// (hit ratio, requests that count in it)
    pub fn ratio(&mut self, now_s: u64) -> (Option<f64>, u64) {
        let c = self.counts(now_s);
        let n = CacheClass::ALL
            .iter()
            .filter(|k| k.in_ratio())
            .map(|k| c[k.index()])
            .sum();
        (cache_status::hit_ratio(&c), n)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct TargetTrack {
    pub overall: Window,
    pub pops: BTreeMap<String, Window>,
    /// since when the gate condition has held
    pub since: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Gate {
    pub threshold: f64,
    pub hold_s: u64,
    pub min_samples: u64,
    pub per_pop: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    pub window_s: u64,
    pub targets: Vec<TargetTrack>,
}

impl Tracker {
    pub fn new(n_targets: usize, window_s: u64) -> Tracker {
        Tracker {
            window_s,
            targets: vec![
                TargetTrack {
                    overall: Window::new(window_s),
                    pops: BTreeMap::new(),
                    since: None,
                };
                n_targets
            ],
        }
    }

    pub fn record(&mut self, target: usize, pop: Option<&str>, class: CacheClass, now_s: u64) {
        let t = &mut self.targets[target];
        t.overall.record(now_s, class);
        if let Some(p) = pop {
            let w = self.window_s;
            t.pops
                .entry(p.to_string())
                .or_insert_with(|| Window::new(w))
                .record(now_s, class);
        }
    }

    /// Updates the gate's hold timers; true once every target has held the condition for
    /// `hold_s` seconds.
    pub fn gate(&mut self, g: &Gate, now_s: u64) -> bool {
        let mut all = true;
        for t in &mut self.targets {
            let (r, n) = t.overall.ratio(now_s);
            let mut ok = n >= g.min_samples && r.is_some_and(|r| r >= g.threshold);
            if ok && g.per_pop {
                for w in t.pops.values_mut() {
                    let (pr, pn) = w.ratio(now_s);
                    if pn > 0 && !pr.is_some_and(|r| r >= g.threshold) {
                        ok = false;
                    }
                }
            }
            if ok {
                let since = *t.since.get_or_insert(now_s);
                if now_s - since < g.hold_s {
                    all = false;
                }
            } else {
                t.since = None;
                all = false;
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CacheClass::*;

    #[test]
    fn window_slides() {
        let mut w = Window::new(10);
        for s in 0..10 {
            w.record(s, Miss);
        }
        for s in 10..20 {
            w.record(s, Hit);
            w.record(s, Pass); // outside the ratio
        }
        assert_eq!(w.ratio(19), (Some(1.0), 10));
        assert_eq!(w.ratio(25).1, 4);
        assert_eq!(w.ratio(40), (None, 0));
    }

    #[test]
    fn gate_needs_ratio_samples_and_hold() {
        let g = Gate {
            threshold: 0.8,
            hold_s: 5,
            min_samples: 10,
            per_pop: false,
        };
        let mut t = Tracker::new(1, 60);
        for s in 0..3 {
            for _ in 0..9 {
                t.record(0, Some("FRA"), Hit, s);
            }
            t.record(0, Some("FRA"), Miss, s);
        }
        assert!(!t.gate(&g, 2)); // condition holds since 2
        assert!(!t.gate(&g, 6));
        assert!(t.gate(&g, 7)); // held 5 s
        // a dip resets the hold
        for _ in 0..100 {
            t.record(0, None, Miss, 8);
        }
        assert!(!t.gate(&g, 8));
        assert_eq!(t.targets[0].since, None);
    }

    #[test]
    fn per_pop_gate() {
        let g = Gate {
            threshold: 0.8,
            hold_s: 0,
            min_samples: 1,
            per_pop: true,
        };
        let mut t = Tracker::new(1, 60);
        for _ in 0..90 {
            t.record(0, Some("FRA"), Hit, 1);
        }
        for _ in 0..10 {
            t.record(0, Some("IAD"), Miss, 1);
        }
        assert!(!t.gate(&g, 1), "overall 90% but IAD is cold");
        let g2 = Gate {
            per_pop: false,
            ..g
        };
        assert!(t.gate(&g2, 1));
    }
}
