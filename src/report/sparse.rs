//! A histogram kept as its recorded buckets only: what the report holds per run and per
//! group, so that its memory grows with the buckets the latencies filled (a few hundred for a
//! CDN), not with the histogram's range (a dense 1 us..1 h histogram at 3 digits is ~180 KB).
//! Adding is exact: buckets are those of `measure::new_hist`, and a dense copy made from the
//! buckets holds the same counts, percentiles, mean, min and max.

use hdrhistogram::Histogram;

use crate::measure::new_hist;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sparse {
    /// (the bucket's lowest value, count), by value
    pairs: Vec<(u64, u64)>,
}

impl Sparse {
    pub(crate) fn of(h: &Histogram<u64>) -> Sparse {
        Sparse {
            pairs: h
                .iter_recorded()
                .map(|v| {
                    (
                        h.lowest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    )
                })
                .collect(),
        }
    }

    /// Adds another's counts, bucket by bucket.
    pub(crate) fn add(&mut self, o: &Sparse) {
        if o.pairs.is_empty() {
            return;
        }
        if self.pairs.is_empty() {
            self.pairs = o.pairs.clone();
            return;
        }
        let (a, b) = (std::mem::take(&mut self.pairs), &o.pairs);
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0, a[i].1 + b[j].1));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.pairs = out;
    }

    /// Records the counts into a dense histogram (of `new_hist`'s bounds).
    pub(crate) fn add_to(&self, h: &mut Histogram<u64>) {
        for &(v, c) in &self.pairs {
            // values came from a histogram of the same bounds: always in range
            let _ = h.record_n(v, c);
        }
    }

    /// A dense copy, for percentiles and exports.
    pub(crate) fn dense(&self) -> Histogram<u64> {
        let mut h = new_hist();
        self.add_to(&mut h);
        h
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.dense().value_at_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sparse sums equal dense sums: counts, percentiles, mean, min, max, all exact.
    #[test]
    fn sparse_sums_are_the_dense_sums() {
        let mut dense = new_hist();
        let mut sum = Sparse::default();
        for run in 0..5u64 {
            let mut h = new_hist();
            for i in 0..2000u64 {
                let v = 50 + (i * i * (run + 1)) % 3_000_000;
                h.record_n(v, 1 + i % 3).unwrap();
            }
            dense.add(&h).unwrap();
            sum.add(&Sparse::of(&h));
        }
        let back = sum.dense();
        assert_eq!(back.len(), dense.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(back.value_at_quantile(q), dense.value_at_quantile(q), "{q}");
        }
        assert_eq!((back.min(), back.max()), (dense.min(), dense.max()));
        assert_eq!(back.mean(), dense.mean());
        assert_eq!(back.stdev(), dense.stdev());
        assert_eq!(Sparse::of(&dense), sum);
        assert!(sum.pairs.len() < 6000, "{}", sum.pairs.len());
    }
}
