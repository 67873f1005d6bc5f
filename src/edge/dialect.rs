//! The cache headers the simulated edge speaks, one dialect per CDN, so the classifier is tested
//! end to end on each.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Fastly,
    Cloudfront,
    Cloudflare,
    Akamai,
    Varnish,
    Nginx,
    Rfc9211,
    /// no cache header at all: the edge as a plain origin, behind a real cache in tests
    Origin,
}

impl Dialect {
    pub const ALL: [Dialect; 7] = [
        Dialect::Fastly,
        Dialect::Cloudfront,
        Dialect::Cloudflare,
        Dialect::Akamai,
        Dialect::Varnish,
        Dialect::Nginx,
        Dialect::Rfc9211,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Fastly => "fastly",
            Dialect::Cloudfront => "cloudfront",
            Dialect::Cloudflare => "cloudflare",
            Dialect::Akamai => "akamai",
            Dialect::Varnish => "varnish",
            Dialect::Nginx => "nginx",
            Dialect::Rfc9211 => "rfc9211",
            Dialect::Origin => "origin",
        }
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        (Dialect::ALL.into_iter().chain([Dialect::Origin]))
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown dialect {s:?} (fastly, cloudfront, cloudflare, akamai, varnish, nginx, rfc9211, origin)"))
    }
}

/// What the edge did, for the headers.
pub struct Served<'a> {
    pub hit: bool,
    /// an edge miss the shield tier answered from its cache
    pub shield_hit: bool,
    /// the 5xx fault: the edge failed this request
    pub error: bool,
    pub hits: u64,
    pub age_s: u64,
    pub pop: &'a str,
    pub request_no: u64,
    /// the request carried `Pragma: akamai-x-cache-on`
    pub akamai_debug: bool,
}

/// Header (name, value) pairs for one response.
pub fn headers(d: Dialect, s: &Served) -> Vec<(&'static str, String)> {
    let mut h = Vec::with_capacity(4);
    if d == Dialect::Origin {
        return h;
    }
    let pop = s.pop;
    let hm = |hit: &'static str, miss: &'static str| if s.hit { hit } else { miss };
    match d {
        Dialect::Fastly => {
            if !s.error {
                // shield first, edge last
                let v = if s.shield_hit {
                    "HIT, MISS"
                } else {
                    hm("HIT", "MISS")
                };
                h.push(("x-cache", v.to_string()));
                h.push(("x-cache-hits", s.hits.to_string()));
            }
            h.push((
                "x-served-by",
                format!("cache-{}{}-{}", pop.to_ascii_lowercase(), 19120, pop),
            ));
        }
        Dialect::Cloudfront => {
            let v = if s.error {
                "Error from cloudfront"
            } else {
                hm("Hit from cloudfront", "Miss from cloudfront")
            };
            h.push(("x-cache", v.to_string()));
            h.push(("x-amz-cf-pop", format!("{pop}56-P1")));
            h.push((
                "via",
                "1.1 0123456789abcdef.cloudfront.net (CloudFront)".to_string(),
            ));
        }
        Dialect::Cloudflare => {
            if !s.error {
                h.push(("cf-cache-status", hm("HIT", "MISS").to_string()));
            }
            h.push((
                "cf-ray",
                format!("{:016x}-{pop}", crate::urls::mix(s.request_no)),
            ));
        }
        Dialect::Akamai => {
            if s.akamai_debug && !s.error {
                let v = hm("TCP_MEM_HIT", "TCP_MISS");
                h.push((
                    "x-cache",
                    format!(
                        "{v} from a23-1-2-3.deploy.akamaitechnologies.com (AkamaiGHost/22.1.0)"
                    ),
                ));
                if s.shield_hit {
                    // the parent tier's answer
                    h.push((
                        "x-cache-remote",
                        "TCP_HIT from a96-7-8-9.deploy.akamaitechnologies.com (AkamaiGHost/22.1.0)"
                            .to_string(),
                    ));
                }
            }
        }
        Dialect::Varnish => {
            let id = 32768 + s.request_no * 2;
            let v = if s.hit && !s.error {
                format!("{id} {}", id - 1)
            } else {
                id.to_string()
            };
            h.push(("x-varnish", v));
            h.push(("via", "1.1 varnish (Varnish/7.1)".to_string()));
        }
        Dialect::Nginx => {
            if !s.error {
                h.push(("x-cache-status", hm("HIT", "MISS").to_string()));
            }
        }
        Dialect::Origin => {}
        Dialect::Rfc9211 => {
            if !s.error {
                let v = if s.hit {
                    format!(
                        "edgeload-{pop}; hit; ttl={}",
                        86400u64.saturating_sub(s.age_s)
                    )
                } else if s.shield_hit {
                    format!("edgeload-shield; hit, edgeload-{pop}; fwd=uri-miss; stored")
                } else {
                    format!("edgeload-{pop}; fwd=uri-miss; stored")
                };
                h.push(("cache-status", v));
            }
        }
    }
    if !s.error {
        h.push((
            "age",
            if s.hit {
                s.age_s.to_string()
            } else {
                "0".to_string()
            },
        ));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache_status::{CacheClass, Classifier};

    #[test]
    fn every_dialect_classifies_back() {
        let cl = Classifier::default();
        for d in Dialect::ALL {
            for (hit, shield_hit) in [(true, false), (false, false), (false, true)] {
                let s = Served {
                    hit,
                    shield_hit,
                    error: false,
                    hits: 3,
                    age_s: 5,
                    pop: "FRA",
                    request_no: 9,
                    akamai_debug: true,
                };
                let h = headers(d, &s);
                let pairs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (class, pop) = cl.classify(pairs.as_slice());
                let says_shield = matches!(d, Dialect::Fastly | Dialect::Akamai | Dialect::Rfc9211);
                let want = match (hit, shield_hit && says_shield) {
                    (true, _) => CacheClass::Hit,
                    (false, true) => CacheClass::ShieldHit,
                    (false, false) => CacheClass::Miss,
                };
                assert_eq!(class, want, "{d:?} hit={hit} {pairs:?}");
                if matches!(d, Dialect::Fastly | Dialect::Cloudflare) {
                    assert_eq!(pop, Some("FRA"), "{d:?}");
                }
            }
        }
    }
}
