//! The four latencies kept per request: total or TTFB, from the intended send (corrected for
//! coordinated omission) or from the actual send (service time).

/// The four latencies kept per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// intended send -> body fully read (corrected for coordinated omission)
    Total,
    /// actual send -> body fully read
    TotalService,
    /// intended send -> response headers
    Ttfb,
    /// actual send -> response headers
    TtfbService,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Total,
        Metric::TotalService,
        Metric::Ttfb,
        Metric::TtfbService,
    ];
    /// The hlog tag parts: (metric, basis).
    pub fn tag_parts(self) -> (&'static str, &'static str) {
        match self {
            Metric::Total => ("total", "corrected"),
            Metric::TotalService => ("total", "service"),
            Metric::Ttfb => ("ttfb", "corrected"),
            Metric::TtfbService => ("ttfb", "service"),
        }
    }
    /// The metric an hlog tag's `metric=` and `basis=` name.
    pub fn from_tag_parts(metric: &str, basis: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.tag_parts() == (metric, basis))
    }
}

/// One value per metric, indexed by `Metric` (never by a bare number).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerMetric<T>(pub [T; 4]);

impl<T> PerMetric<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.0.iter_mut()
    }
    /// (metric, value) pairs in `Metric::ALL` order.
    pub fn each(&self) -> impl Iterator<Item = (Metric, &T)> {
        Metric::ALL.into_iter().zip(self.0.iter())
    }
    pub(crate) fn map_mut<U>(&mut self, f: impl FnMut(&mut T) -> U) -> PerMetric<U> {
        PerMetric(self.0.each_mut().map(f))
    }
}

impl<'a, T> IntoIterator for &'a PerMetric<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> std::ops::Index<Metric> for PerMetric<T> {
    type Output = T;
    fn index(&self, m: Metric) -> &T {
        &self.0[m as usize]
    }
}

impl<T> std::ops::IndexMut<Metric> for PerMetric<T> {
    fn index_mut(&mut self, m: Metric) -> &mut T {
        &mut self.0[m as usize]
    }
}
