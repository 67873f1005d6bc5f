//! Which log records are replayed: method, status, host, path include/exclude, extension,
//! time window, sampling. Each rejection has a reason, counted in the summary.

use regex::Regex;

use crate::logs::LogRecord;
use crate::urls::mix;

#[derive(Clone, Debug)]
pub struct Filters {
    pub methods: Vec<String>,
    pub statuses: Vec<u16>,
    pub hosts: Vec<String>,
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
    /// lowercase, without dots
    pub exts: Vec<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// keep this share of matching requests (deterministic per seed)
    pub sample: Option<f64>,
    pub seed: u64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            methods: vec!["GET".into()],
            statuses: vec![200, 304],
            hosts: Vec::new(),
            include: None,
            exclude: None,
            exts: Vec::new(),
            since: None,
            until: None,
            sample: None,
            seed: 1,
        }
    }
}

pub(crate) fn path_only(target: &str) -> &str {
    target.split_once('?').map(|(p, _)| p).unwrap_or(target)
}

pub fn extension(target: &str) -> Option<&str> {
    let p = path_only(target);
    let name = p.rsplit('/').next().unwrap_or(p);
    name.rsplit_once('.').map(|(_, e)| e)
}

impl Filters {
    /// None to keep the record, or the reason it is filtered out. `n` is a stable number of the
    /// record (file and line) for sampling.
    pub fn check(&self, r: &LogRecord, n: u64) -> Option<&'static str> {
        let method = r.method.as_bytes();
        // exact first: logs write methods in upper case, as the default filter does; an empty
        // list keeps every method (and every status)
        if !self.methods.is_empty()
            && !self.methods.iter().any(|m| {
                let m = m.as_bytes();
                m == method || m.eq_ignore_ascii_case(method)
            })
        {
            return Some("method");
        }
        if !self.statuses.is_empty() && !self.statuses.contains(&r.status) {
            return Some("status");
        }
        if !self.hosts.is_empty() {
            let h = r.host.as_deref().unwrap_or("");
            if !self.hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                return Some("host");
            }
        }
        if let Some(t) = r.time {
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return Some("time window");
            }
        } else if self.since.is_some() || self.until.is_some() {
            return Some("time window");
        }
        if !self.exts.is_empty() {
            match extension(&r.target) {
                Some(e) if self.exts.iter().any(|x| x.eq_ignore_ascii_case(e)) => {}
                _ => return Some("extension"),
            }
        }
        if let Some(re) = &self.include
            && !re.is_match(&r.target)
        {
            return Some("include");
        }
        if let Some(re) = &self.exclude
            && re.is_match(&r.target)
        {
            return Some("exclude");
        }
        if let Some(s) = self.sample {
            let u = (mix(self.seed ^ mix(n)) >> 11) as f64 / (1u64 << 53) as f64;
            if u >= s {
                return Some("sample");
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn rec(method: &'static str, target: &'static str, status: u16) -> LogRecord<'static> {
        LogRecord {
            method: Cow::Borrowed(method),
            host: Some(Cow::Borrowed("img.example.com")),
            target: Cow::Borrowed(target),
            status,
            bytes: None,
            time: Some(1_000_000),
            cache: crate::logs::CacheStatus::Value(None),
            pop: None,
            time_taken_us: None,
            ttfb_us: None,
        }
    }

    #[test]
    fn reasons() {
        let f = Filters {
            exts: vec!["jpg".into(), "webp".into()],
            exclude: Some(Regex::new("^/private/").unwrap()),
            ..Filters::default()
        };
        assert_eq!(f.check(&rec("GET", "/a.JPG?w=1", 200), 0), None);
        assert_eq!(f.check(&rec("POST", "/a.jpg", 200), 0), Some("method"));
        assert_eq!(f.check(&rec("GET", "/a.jpg", 206), 0), Some("status"));
        assert_eq!(f.check(&rec("GET", "/a.png", 200), 0), Some("extension"));
        assert_eq!(f.check(&rec("GET", "/dir.v2/a", 200), 0), Some("extension"));
        assert_eq!(
            f.check(&rec("GET", "/private/a.jpg", 304), 0),
            Some("exclude")
        );
        let f = Filters {
            hosts: vec!["other.example.com".into()],
            ..Filters::default()
        };
        assert_eq!(f.check(&rec("GET", "/a", 200), 0), Some("host"));
        let f = Filters {
            since: Some(2_000_000),
            ..Filters::default()
        };
        assert_eq!(f.check(&rec("GET", "/a", 200), 0), Some("time window"));
    }

    #[test]
    fn sampling_is_seeded_and_proportional() {
        let f = Filters {
            sample: Some(0.1),
            ..Filters::default()
        };
        let r = rec("GET", "/a", 200);
        let kept = (0..100_000).filter(|&n| f.check(&r, n).is_none()).count();
        assert!((9_500..10_500).contains(&kept), "{kept}");
        let again = (0..100_000).filter(|&n| f.check(&r, n).is_none()).count();
        assert_eq!(kept, again);
    }
}
