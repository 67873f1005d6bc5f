//! Response headers -> cache class and POP: the built-in CDN dialect rules of DESIGN.md, plus the
//! scenario's own rules. Pure functions, table-tested.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What the CDN said it did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheClass {
    Hit,
    StaleHit,
    Revalidated,
    /// a miss at the edge answered by a shield (parent) tier's cache: no origin fetch
    ShieldHit,
    /// fetched from the origin
    Miss,
    Pass,
    Synthetic,
    Error,
    Unknown,
}

impl CacheClass {
    pub const ALL: [CacheClass; 9] = [
        CacheClass::Hit,
        CacheClass::StaleHit,
        CacheClass::Revalidated,
        CacheClass::ShieldHit,
        CacheClass::Miss,
        CacheClass::Pass,
        CacheClass::Synthetic,
        CacheClass::Error,
        CacheClass::Unknown,
    ];
    pub const COUNT: usize = 9;

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CacheClass::Hit => "hit",
            CacheClass::StaleHit => "stale_hit",
            CacheClass::Revalidated => "revalidated",
            CacheClass::ShieldHit => "shield_hit",
            CacheClass::Miss => "miss",
            CacheClass::Pass => "pass",
            CacheClass::Synthetic => "synthetic",
            CacheClass::Error => "error",
            CacheClass::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<CacheClass> {
        CacheClass::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Counted in the hit ratio's numerator.
    pub(crate) fn is_hit(self) -> bool {
        matches!(self, CacheClass::Hit | CacheClass::StaleHit)
    }

    /// Counted in the hit ratio's denominator (the edge's ratio: a shield hit is an edge miss).
    pub fn in_ratio(self) -> bool {
        matches!(
            self,
            CacheClass::Hit
                | CacheClass::StaleHit
                | CacheClass::Revalidated
                | CacheClass::ShieldHit
                | CacheClass::Miss
        )
    }
}

/// Hit ratio = (Hit + StaleHit) / (Hit + StaleHit + Revalidated + ShieldHit + Miss): the edge's
/// ratio; None without data.
pub fn hit_ratio(counts_by_class: &[u64; CacheClass::COUNT]) -> Option<f64> {
    let mut hits = 0u64;
    let mut den = 0u64;
    for c in CacheClass::ALL {
        let n = counts_by_class[c.index()];
        if c.is_hit() {
            hits += n;
        }
        if c.in_ratio() {
            den += n;
        }
    }
    (den > 0).then(|| hits as f64 / den as f64)
}

/// Read access to response headers (case-insensitive names); implemented for `http::HeaderMap`
/// and for slices of pairs (tests, log records).
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
    /// Calls `f` with each header's name (for the names seen on `unknown` responses).
    fn each_name(&self, f: &mut dyn FnMut(&str));
    /// `header` for a name known when compiling: a lookup with a name filter checks the bit
    /// computed once instead of hashing the name again (about ten of these a response).
    fn known(&self, name: &Name) -> Option<&str> {
        self.header(name.lower)
    }
}

/// A header name the classifier looks for: lowercase (letters, digits, '-'), with its
/// `name_bit`.
#[derive(Clone, Copy, Debug)]
pub struct Name {
    pub lower: &'static str,
    pub bit: u64,
}

impl Name {
    pub const fn new(lower: &'static str) -> Name {
        Name {
            lower,
            bit: name_bit(lower.as_bytes()),
        }
    }
}

/// The filter bit of a header name: length, first and last byte, case folded. Names equal
/// ignoring ASCII case get the same bit (`| 0x20` lowercases letters and keeps other bytes
/// that compare equal equal). A response's names OR-ed together are its filter.
pub const fn name_bit(name: &[u8]) -> u64 {
    let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
        return 1;
    };
    let key = name.len() as u64 | ((first | 0x20) as u64) << 16 | ((last | 0x20) as u64) << 24;
    1 << (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

const CACHE_STATUS: Name = Name::new("cache-status");
const X_CACHE: Name = Name::new("x-cache");
const CF_CACHE_STATUS: Name = Name::new("cf-cache-status");
const X_CACHE_STATUS: Name = Name::new("x-cache-status");
const CDN_CACHE: Name = Name::new("cdn-cache");
const X_CACHE_LOOKUP: Name = Name::new("x-cache-lookup");
const X_CACHE_REMOTE: Name = Name::new("x-cache-remote");
const VIA: Name = Name::new("via");
const X_VARNISH: Name = Name::new("x-varnish");
const AGE: Name = Name::new("age");
const X_SERVED_BY: Name = Name::new("x-served-by");
const X_AMZ_CF_POP: Name = Name::new("x-amz-cf-pop");
const CF_RAY: Name = Name::new("cf-ray");

impl Headers for reqwest::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
    fn each_name(&self, f: &mut dyn FnMut(&str)) {
        self.keys().for_each(|k| f(k.as_str()));
    }
}

impl Headers for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
    fn each_name(&self, f: &mut dyn FnMut(&str)) {
        self.iter().for_each(|(k, _)| f(k));
    }
}

/// Headers every response may carry that never say what a cache did: left out of the names
/// reported for `unknown` responses.
const NOT_CACHE_HEADERS: [&str; 12] = [
    "date",
    "content-length",
    "content-type",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "etag",
    "last-modified",
    "accept-ranges",
    "server",
    "vary",
    "cache-control",
];

/// At most this many names are kept per thread.
const UNKNOWN_NAMES_MAX: usize = 24;

thread_local! {
    /// Header names seen on this thread's `unknown` responses (lowercase, sorted, bounded).
    static UNKNOWN_NAMES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

thread_local! {
    static UNKNOWN_SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Notes the header names of an `unknown` response: of a thread's first 64 such responses, then
/// of one in 4096 (against a target that sends no cache header every response is unknown: the
/// names repeat, and the hot path must not pay for them each time).
fn note_unknown<H: Headers + ?Sized>(h: &H) {
    let n = UNKNOWN_SEEN.get();
    UNKNOWN_SEEN.set(n + 1);
    if n >= 64 && !n.is_multiple_of(4096) {
        return;
    }
    UNKNOWN_NAMES.with_borrow_mut(|names| {
        h.each_name(&mut |n| {
            let n = n.to_ascii_lowercase();
            if names.len() < UNKNOWN_NAMES_MAX
                && !NOT_CACHE_HEADERS.contains(&n.as_str())
                && let Err(i) = names.binary_search(&n)
            {
                names.insert(i, n);
            }
        })
    });
}

/// The header names this thread saw on responses it classified `unknown` (and forgets them):
/// what a user needs to write a rule, or to see that a header must be asked for.
pub fn take_unknown_names() -> Vec<String> {
    UNKNOWN_SEEN.set(0);
    UNKNOWN_NAMES.with_borrow_mut(std::mem::take)
}

/// A scenario rule: when `header` matches `pattern`, the class is `class`. Checked before built-ins.
#[derive(Clone, Debug)]
pub struct CustomRule {
    pub header: String,
    pub pattern: Regex,
    pub class: CacheClass,
}

/// A scenario rule naming the POP: the first capture group of `pattern` in `header` (the whole
/// match when it has none). Checked before the built-in POP headers.
#[derive(Clone, Debug)]
pub struct PopRule {
    pub header: String,
    pub pattern: Regex,
}

/// Classifies responses. Cheap to clone; shared read-only by all workers.
#[derive(Clone, Debug, Default)]
pub struct Classifier {
    pub rules: Vec<CustomRule>,
    pub pop_rules: Vec<PopRule>,
    /// `Age > 0` -> Hit, `Age: 0` -> Miss, when no other rule decided. Off by default: a guess.
    pub age_fallback: bool,
}

impl Classifier {
    pub fn classify<'h, H: Headers + ?Sized>(&self, h: &'h H) -> (CacheClass, Option<&'h str>) {
        let pop = self.custom_pop(h).or_else(|| pop_of(h));
        for r in &self.rules {
            if let Some(v) = h.header(&r.header)
                && r.pattern.is_match(v)
            {
                return (r.class, pop);
            }
        }
        let class = builtin_class(h, self.age_fallback);
        if class == CacheClass::Unknown {
            note_unknown(h);
        }
        (class, pop)
    }
}

impl Classifier {
    fn custom_pop<'h, H: Headers + ?Sized>(&self, h: &'h H) -> Option<&'h str> {
        self.pop_rules.iter().find_map(|r| {
            let v = h.header(&r.header)?;
            let c = r.pattern.captures(v)?;
            c.get(1).or_else(|| c.get(0)).map(|m| m.as_str())
        })
    }
}

fn builtin_class<H: Headers + ?Sized>(h: &H, age_fallback: bool) -> CacheClass {
    if let Some(c) = h.known(&CACHE_STATUS).and_then(rfc9211) {
        return c;
    }
    if let Some(c) = h.known(&X_CACHE).and_then(x_cache) {
        // Akamai's parent tier says what it did in X-Cache-Remote
        if c == CacheClass::Miss
            && (h.known(&X_CACHE_REMOTE).and_then(x_cache)).is_some_and(CacheClass::is_hit)
        {
            return CacheClass::ShieldHit;
        }
        return c;
    }
    if let Some(c) = h.known(&CF_CACHE_STATUS).and_then(cloudflare) {
        return c;
    }
    for name in [X_CACHE_STATUS, CDN_CACHE] {
        if let Some(c) = h.known(&name).and_then(token) {
            return c;
        }
    }
    if let Some(c) = h.known(&X_CACHE_LOOKUP).and_then(x_cache) {
        return c;
    }
    if let Some(v) = h.known(&X_VARNISH) {
        let ids = v.split_ascii_whitespace().count();
        if ids >= 2 {
            return CacheClass::Hit;
        }
        if ids == 1 {
            return CacheClass::Miss;
        }
    }
    if let Some(c) = h.known(&VIA).and_then(ats_via) {
        return c;
    }
    if age_fallback && let Some(age) = h.known(&AGE).and_then(|a| a.trim().parse::<u64>().ok()) {
        return if age > 0 {
            CacheClass::Hit
        } else {
            CacheClass::Miss
        };
    }
    CacheClass::Unknown
}

/// RFC 9211 `Cache-Status`: the last member (closest to the user) decides; a miss there that
/// an earlier member (a shield tier) answered from its cache is a shield hit.
pub fn rfc9211(v: &str) -> Option<CacheClass> {
    let mut members = v.rsplit(',');
    let last = rfc9211_member(members.next()?.trim())?;
    if last == CacheClass::Miss
        && members.any(|m| rfc9211_member(m.trim()).is_some_and(CacheClass::is_hit))
    {
        return Some(CacheClass::ShieldHit);
    }
    Some(last)
}

fn rfc9211_member(member: &str) -> Option<CacheClass> {
    let mut hit = false;
    let mut fwd = None;
    let mut ttl_negative = false;
    for param in member.split(';').skip(1) {
        let (k, val) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param.trim(), None),
        };
        match k.to_ascii_lowercase().as_str() {
            "hit" => hit = true,
            "fwd" => fwd = val,
            "ttl" => ttl_negative = val.is_some_and(|t| t.starts_with('-')),
            _ => {}
        }
    }
    if hit {
        return Some(if ttl_negative {
            CacheClass::StaleHit
        } else {
            CacheClass::Hit
        });
    }
    match fwd?.to_ascii_lowercase().as_str() {
        "stale" => Some(CacheClass::Revalidated),
        "bypass" | "method" | "request" => Some(CacheClass::Pass),
        _ => Some(CacheClass::Miss),
    }
}

/// `X-Cache` (and Squid's `X-Cache-Lookup`) as written by CloudFront, Akamai, Azure, Fastly,
/// KeyCDN, CDN77, Squid, Apache Traffic Server's xdebug and Varnish setups: a comma list whose
/// last member (the tier closest to the client) decides; a member is a status word, optionally
/// `from <host>` (Squid, Akamai, CloudFront), a Squid/Akamai `TCP_*` code (`TCP_MISS/200` too), or
/// a single token.
pub(crate) fn x_cache(v: &str) -> Option<CacheClass> {
    let mut members = v.rsplit(',');
    let last = x_cache_member(members.next()?.trim())?;
    // Fastly's list with shielding, shield first: `HIT, MISS` is an edge miss the shield
    // answered from its cache
    if last == CacheClass::Miss
        && members.any(|m| x_cache_member(m.trim()).is_some_and(CacheClass::is_hit))
    {
        return Some(CacheClass::ShieldHit);
    }
    Some(last)
}

fn x_cache_member(member: &str) -> Option<CacheClass> {
    let lower = member.to_ascii_lowercase();
    let first = lower.split_ascii_whitespace().next()?;
    if lower.ends_with("from cloudfront") {
        return Some(match first {
            "hit" => CacheClass::Hit,
            "refreshhit" => CacheClass::Revalidated,
            "miss" => CacheClass::Miss,
            "error" | "limitexceeded" | "capacityexceeded" => CacheClass::Error,
            "redirect" | "lambdageneratedresponse" | "functiongeneratedresponse" => {
                CacheClass::Synthetic
            }
            _ => CacheClass::Unknown,
        });
    }
    // "TCP_MISS/200": a Squid log code with its status
    let word = first.split('/').next().unwrap_or(first);
    if word.starts_with("tcp_") || word == "private_nostore" || word == "config_nocache" {
        return Some(tcp_code(word));
    }
    token(word)
}

/// Squid's and Akamai's `TCP_*` result codes.
fn tcp_code(word: &str) -> CacheClass {
    match word {
        "tcp_hit" | "tcp_mem_hit" | "tcp_ims_hit" | "tcp_inm_hit" | "tcp_negative_hit"
        | "tcp_offline_hit" => CacheClass::Hit,
        "tcp_refresh_hit" | "tcp_refresh_unmodified" => CacheClass::Revalidated,
        "tcp_refresh_fail_hit" | "tcp_refresh_fail_old" | "tcp_stale_hit" => CacheClass::StaleHit,
        "tcp_miss"
        | "tcp_refresh_miss"
        | "tcp_refresh_modified"
        | "tcp_refresh_fail_err"
        | "tcp_remote_hit"
        | "tcp_client_refresh_miss"
        | "tcp_swapfail_miss" => CacheClass::Miss,
        "tcp_denied" => CacheClass::Error,
        "tcp_tunnel" | "private_nostore" | "config_nocache" => CacheClass::Pass,
        _ => CacheClass::Unknown,
    }
}

/// Apache Traffic Server's `Via` cache codes (`insert_response_via_str` 2 or 3): in
/// `(ApacheTrafficServer/9.2 [cMsSfW])` the letter after `c` is the cache lookup (H fresh hit,
/// R fresh hit from RAM, S stale, A not acceptable, M miss, space: no lookup) and the one after
/// `s` the origin server's part (S served, N not modified, space: not contacted).
pub(crate) fn ats_via(v: &str) -> Option<CacheClass> {
    let at = v.rfind("ApacheTrafficServer")?;
    let codes = &v[at..];
    let codes = &codes[codes.find('[')? + 1..];
    let codes = &codes[..codes.find(']')?];
    // (tag, value) byte pairs from the start up to the detail part after ':' -- short form
    // `cMsSfW`, long form `uCcHs f p eN:t cCHp s ` (u C: the client sent a cookie)
    let pairs = codes.split(':').next().unwrap_or(codes).as_bytes();
    let after =
        |tag: u8| -> Option<u8> { pairs.chunks_exact(2).find(|p| p[0] == tag).map(|p| p[1]) };
    let server = after(b's');
    Some(match after(b'c')? {
        b'H' | b'R' => CacheClass::Hit,
        b'M' | b'A' => CacheClass::Miss,
        b'S' => match server {
            Some(b'N') => CacheClass::Revalidated,
            Some(b'S') => CacheClass::Miss,
            _ => CacheClass::StaleHit,
        },
        b' ' => CacheClass::Pass,
        _ => return None,
    })
}

/// Cloudflare `CF-Cache-Status`.
pub fn cloudflare(v: &str) -> Option<CacheClass> {
    Some(match v.trim().to_ascii_uppercase().as_str() {
        "HIT" => CacheClass::Hit,
        "UPDATING" | "STALE" => CacheClass::StaleHit,
        "REVALIDATED" => CacheClass::Revalidated,
        "MISS" | "EXPIRED" => CacheClass::Miss,
        "BYPASS" | "DYNAMIC" => CacheClass::Pass,
        "NONE" | "UNKNOWN" => CacheClass::Synthetic,
        _ => return None,
    })
}

/// A single cache token (nginx `$upstream_cache_status`, Bunny, KeyCDN, Traffic Server, the edge
/// of a Fastly list).
pub fn token(v: &str) -> Option<CacheClass> {
    let t = v.trim().to_ascii_uppercase();
    Some(match t.as_str() {
        // Apache Traffic Server (xdebug, header_rewrite %{CACHE}): hit-fresh, hit-stale, miss,
        // skipped (no lookup), none
        "HIT" | "HIT-FRESH" => CacheClass::Hit,
        "STALE" | "UPDATING" | "HIT-STALE" => CacheClass::StaleHit,
        "REVALIDATED" => CacheClass::Revalidated,
        "MISS" | "EXPIRED" => CacheClass::Miss,
        "BYPASS" | "PASS" | "SKIPPED" | "NONE" => CacheClass::Pass,
        "ERROR" => CacheClass::Error,
        "SYNTH" | "SYNTHETIC" => CacheClass::Synthetic,
        _ => return None,
    })
}

/// A cache status as a CDN's access log writes it -> class, by the rules of the response
/// headers that carry the same words: CloudFront's `x-edge-result-type` and
/// `x-edge-detailed-result-type` (as `X-Cache`), Fastly's `fastly_info.state` (`HIT-STALE`,
/// `MISS-CLUSTER`, `PASS-WAIT`...), Cloudflare's `CacheCacheStatus` (as `CF-Cache-Status`),
/// nginx's `$upstream_cache_status` and Traffic Server's (single tokens), Squid's and Akamai's
/// `TCP_*` codes, RFC 9211 `Cache-Status` values. `Unknown` when nothing matches.
pub fn log_class(v: &str) -> CacheClass {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    let class = match lower.as_str() {
        // CloudFront result types (x_cache_member's table for "... from cloudfront")
        "hit" => Some(CacheClass::Hit),
        "refreshhit" => Some(CacheClass::Revalidated),
        "originshieldhit" => Some(CacheClass::ShieldHit),
        "error" | "limitexceeded" | "capacityexceeded" => Some(CacheClass::Error),
        "redirect" | "lambdageneratedresponse" | "functiongeneratedresponse" => {
            Some(CacheClass::Synthetic)
        }
        // Cloudflare's values beyond CF-Cache-Status's
        "ignored" => Some(CacheClass::Pass),
        "stream_hit" => Some(CacheClass::Hit),
        _ => None,
    };
    if let Some(c) = class {
        return c;
    }
    if v.contains(';') {
        return rfc9211(v).unwrap_or(CacheClass::Unknown);
    }
    // Fastly's states: a base state, then -CLUSTER (clustering) and -WAIT (request collapsing)
    let mut state = lower.as_str();
    while let Some(s) = state
        .strip_suffix("-cluster")
        .or_else(|| state.strip_suffix("-wait"))
    {
        state = s;
    }
    match state {
        "hit-stale" => return CacheClass::StaleHit,
        "hit-synth" => return CacheClass::Synthetic,
        "hitpass" | "hit-pass" => return CacheClass::Pass,
        _ => {}
    }
    (cloudflare(state)
        .or_else(|| token(state))
        .or_else(|| x_cache(v)))
    .unwrap_or(CacheClass::Unknown)
}

/// The POP that answered, from the headers that name one.
pub(crate) fn pop_of<H: Headers + ?Sized>(h: &H) -> Option<&str> {
    if let Some(v) = h.known(&X_SERVED_BY) {
        let last = v.rsplit(',').next()?.trim();
        // "cache-fra19120-FRA": the POP code is the last dash-separated part.
        return Some(last.rsplit('-').next().unwrap_or(last));
    }
    if let Some(v) = h.known(&X_AMZ_CF_POP) {
        return Some(v.trim());
    }
    if let Some(v) = h.known(&CF_RAY) {
        return v.trim().rsplit_once('-').map(|(_, p)| p);
    }
    // Akamai names the edge server that answered: "TCP_HIT from a23-1-2-3.deploy.akamai...";
    // its first label stands for the POP
    if let Some(v) = h.known(&X_CACHE)
        && let Some((_, host)) = v.split_once(" from ")
        && host.contains("akamai")
    {
        return host.split(['.', ' ']).next().filter(|l| !l.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use CacheClass::*;

    fn c(pairs: &[(&str, &str)]) -> CacheClass {
        Classifier::default().classify(pairs).0
    }

    /// Each format's documented cache values, as the logs write them.
    #[test]
    fn log_values_follow_the_header_rules() {
        let table: &[(&str, CacheClass)] = &[
            // CloudFront x-edge-result-type / x-edge-detailed-result-type
            ("Hit", Hit),
            ("RefreshHit", Revalidated),
            ("Miss", Miss),
            ("OriginShieldHit", ShieldHit),
            ("LimitExceeded", Error),
            ("CapacityExceeded", Error),
            ("Error", Error),
            ("Redirect", Synthetic),
            ("FunctionGeneratedResponse", Synthetic),
            // Cloudflare CacheCacheStatus (lowercase)
            ("hit", Hit),
            ("miss", Miss),
            ("expired", Miss),
            ("updating", StaleHit),
            ("stale", StaleHit),
            ("revalidated", Revalidated),
            ("bypass", Pass),
            ("dynamic", Pass),
            ("ignored", Pass),
            ("none", Synthetic),
            // nginx $upstream_cache_status
            ("HIT", Hit),
            ("MISS", Miss),
            ("EXPIRED", Miss),
            ("STALE", StaleHit),
            ("UPDATING", StaleHit),
            ("REVALIDATED", Revalidated),
            ("BYPASS", Pass),
            // Fastly fastly_info.state
            ("HIT-STALE", StaleHit),
            ("HIT-SYNTH", Synthetic),
            ("HIT-CLUSTER", Hit),
            ("MISS-CLUSTER", Miss),
            ("MISS-WAIT", Miss),
            ("HIT-STALE-CLUSTER", StaleHit),
            ("PASS", Pass),
            ("PASS-WAIT-CLUSTER", Pass),
            ("HITPASS", Pass),
            ("ERROR", Error),
            // Squid / Akamai DataStream
            ("TCP_HIT", Hit),
            ("TCP_MISS/200", Miss),
            ("TCP_REFRESH_UNMODIFIED", Revalidated),
            // RFC 9211, as a log may copy the header
            ("edge; hit", Hit),
            ("edge; fwd=uri-miss", Miss),
            // nothing known
            ("", Unknown),
            ("-", Unknown),
            ("Wobble", Unknown),
        ];
        for (v, want) in table {
            assert_eq!(log_class(v), *want, "{v:?}");
        }
        // the same words give the same class in a header and in a log
        for (h, v) in [
            ("X-Cache", "Hit from cloudfront"),
            ("X-Cache", "RefreshHit from cloudfront"),
            ("X-Cache", "Miss from cloudfront"),
            ("CF-Cache-Status", "EXPIRED"),
            ("CF-Cache-Status", "UPDATING"),
            ("X-Cache-Status", "BYPASS"),
        ] {
            let word = v.split(' ').next().unwrap_or(v);
            assert_eq!(c(&[(h, v)]), log_class(word), "{h}: {v}");
        }
    }

    #[test]
    fn dialect_table() {
        let table: &[(&[(&str, &str)], CacheClass)] = &[
            (&[("Cache-Status", "edge; hit")], Hit),
            (
                &[("Cache-Status", "origin; fwd=uri-miss, edge; hit; ttl=-5")],
                StaleHit,
            ),
            (
                &[("Cache-Status", "edge; hit, cdn; fwd=uri-miss; stored")],
                ShieldHit,
            ),
            (
                &[("Cache-Status", "edge; fwd=stale; fwd-status=304")],
                Revalidated,
            ),
            (&[("Cache-Status", "edge; fwd=bypass")], Pass),
            (&[("Cache-Status", "edge; fwd=method")], Pass),
            (&[("X-Cache", "MISS, HIT")], Hit),
            // shielding: the shield's cache answered the edge's miss
            (&[("X-Cache", "HIT, MISS")], ShieldHit),
            (&[("X-Cache", "MISS, MISS")], Miss),
            (&[("X-Cache", "HIT, HIT")], Hit),
            (
                &[
                    ("X-Cache", "TCP_MISS from a1.deploy.akamaitechnologies.com"),
                    (
                        "X-Cache-Remote",
                        "TCP_HIT from a2.deploy.akamaitechnologies.com",
                    ),
                ],
                ShieldHit,
            ),
            (
                &[
                    ("X-Cache", "TCP_MISS from a1"),
                    ("X-Cache-Remote", "TCP_MISS from a2"),
                ],
                Miss,
            ),
            (
                &[("Cache-Status", "shield; hit, edge; fwd=uri-miss; stored")],
                ShieldHit,
            ),
            (&[("X-Cache", "MISS")], Miss),
            (&[("X-Cache", "Hit from cloudfront")], Hit),
            (&[("X-Cache", "RefreshHit from cloudfront")], Revalidated),
            (&[("X-Cache", "Miss from cloudfront")], Miss),
            (&[("X-Cache", "Error from cloudfront")], Error),
            (
                &[("X-Cache", "FunctionGeneratedResponse from cloudfront")],
                Synthetic,
            ),
            (&[("X-Cache", "Redirect from cloudfront")], Synthetic),
            (
                &[(
                    "X-Cache",
                    "TCP_MEM_HIT from a23-1-2-3.deploy.akamaitechnologies.com (AkamaiGHost/22.1)",
                )],
                Hit,
            ),
            (&[("X-Cache", "TCP_REFRESH_HIT from x")], Revalidated),
            (&[("X-Cache", "TCP_REFRESH_FAIL_HIT from x")], StaleHit),
            (&[("X-Cache", "TCP_MISS from x")], Miss),
            (&[("X-Cache", "TCP_DENIED from x")], Error),
            (&[("X-Cache", "TCP_REMOTE_HIT")], Miss),
            (&[("X-Cache", "PRIVATE_NOSTORE")], Pass),
            (&[("X-Cache", "EXPIRED")], Miss),
            // Squid: a status word and the host; X-Cache-Lookup when X-Cache says nothing
            (&[("X-Cache", "HIT from squid.example.com")], Hit),
            (&[("X-Cache", "MISS from squid.example.com:3128")], Miss),
            (
                &[("X-Cache-Lookup", "HIT from squid.example.com:3128")],
                Hit,
            ),
            (&[("X-Cache-Lookup", "MISS from squid:3128")], Miss),
            (
                &[
                    ("X-Cache", "MISS from child"),
                    ("X-Cache-Lookup", "HIT from child:3128"),
                ],
                Miss,
            ),
            (&[("X-Cache", "TCP_MISS/200 from squid")], Miss),
            (
                &[("X-Cache", "TCP_REFRESH_UNMODIFIED from squid")],
                Revalidated,
            ),
            (&[("X-Cache-Lookup", "TCP_MEM_HIT from x")], Hit),
            (&[("X-Cache", "TCP_TUNNEL")], Pass),
            // Apache Traffic Server: xdebug's X-Cache, header_rewrite's %{CACHE}, its Via codes
            (&[("X-Cache", "hit-fresh")], Hit),
            (&[("X-Cache", "hit-stale")], StaleHit),
            (&[("X-Cache", "miss")], Miss),
            (&[("X-Cache", "skipped")], Pass),
            (&[("X-Cache-Status", "hit-fresh")], Hit),
            (
                &[("Via", "http/1.1 ats (ApacheTrafficServer/9.2.9 [cMsSfW])")],
                Miss,
            ),
            (
                &[("Via", "http/1.1 ats (ApacheTrafficServer/9.2.9 [cHs f ])")],
                Hit,
            ),
            (
                &[("Via", "http/1.1 ats (ApacheTrafficServer/9.2.9 [cRs f ])")],
                Hit,
            ),
            (
                &[("Via", "http/1.1 ats (ApacheTrafficServer/9.2.9 [cSsNfU])")],
                Revalidated,
            ),
            (
                &[(
                    "Via",
                    "http/1.1 ats (ApacheTrafficServer/9.2.9 [uScHs f p eN:t cCHp s ])",
                )],
                Hit,
            ),
            (
                &[(
                    "Via",
                    "http/1.1 ats (ApacheTrafficServer/9.2.9 [uScMsSfWpSeN:t cCMp sS])",
                )],
                Miss,
            ),
            // the client sent a cookie (u C): the cache part is still read
            (
                &[(
                    "Via",
                    "http/1.1 ats (ApacheTrafficServer/9.2.9 [uCcHs f p eN:t cCHp s ])",
                )],
                Hit,
            ),
            (&[("Via", "x (ApacheTrafficServer/9 [c")], Unknown),
            (&[("Via", "x (ApacheTrafficServer/9 [é])")], Unknown),
            (&[("Via", "1.1 varnish (Varnish/7.1)")], Unknown),
            (&[("X-Cache", "frobnicated")], Unknown),
            (&[("X-Cache", "UPDATING")], StaleHit),
            (&[("CF-Cache-Status", "HIT")], Hit),
            (&[("CF-Cache-Status", "UPDATING")], StaleHit),
            (&[("CF-Cache-Status", "REVALIDATED")], Revalidated),
            (&[("CF-Cache-Status", "EXPIRED")], Miss),
            (&[("CF-Cache-Status", "DYNAMIC")], Pass),
            (&[("CF-Cache-Status", "NONE")], Synthetic),
            (&[("X-Cache-Status", "HIT")], Hit),
            (&[("X-Cache-Status", "STALE")], StaleHit),
            (&[("X-Cache-Status", "BYPASS")], Pass),
            (&[("CDN-Cache", "MISS")], Miss),
            (&[("X-Varnish", "32770 32768")], Hit),
            (&[("X-Varnish", "32770")], Miss),
            // Cache-Status wins over X-Cache; X-Cache wins over X-Varnish.
            (&[("X-Cache", "MISS"), ("Cache-Status", "edge; hit")], Hit),
            (&[("X-Varnish", "1 2"), ("X-Cache", "MISS")], Miss),
            (&[("Age", "30")], Unknown),
            (&[], Unknown),
        ];
        for (headers, want) in table {
            assert_eq!(c(headers), *want, "headers {headers:?}");
        }
    }

    #[test]
    fn age_fallback_only_when_enabled() {
        let cl = Classifier {
            age_fallback: true,
            ..Default::default()
        };
        assert_eq!(cl.classify(&[("Age", "30")][..]).0, Hit);
        assert_eq!(cl.classify(&[("Age", "0")][..]).0, Miss);
    }

    #[test]
    fn custom_rules_come_first() {
        let cl = Classifier {
            rules: vec![CustomRule {
                header: "x-my-cache".into(),
                pattern: Regex::new("^warm").unwrap(),
                class: Hit,
            }],
            ..Default::default()
        };
        assert_eq!(
            cl.classify(&[("X-My-Cache", "warm-1"), ("X-Cache", "MISS")][..])
                .0,
            Hit
        );
        assert_eq!(
            cl.classify(&[("X-My-Cache", "cold"), ("X-Cache", "MISS")][..])
                .0,
            Miss
        );
    }

    #[test]
    fn pops() {
        let p = |h: &[(&str, &str)]| pop_of(h).map(str::to_string);
        assert_eq!(
            p(&[(
                "X-Served-By",
                "cache-iad-kiad7000025-IAD, cache-fra19120-FRA"
            )])
            .as_deref(),
            Some("FRA")
        );
        assert_eq!(
            p(&[("X-Amz-Cf-Pop", "FRA56-P1")]).as_deref(),
            Some("FRA56-P1")
        );
        assert_eq!(
            p(&[("CF-Ray", "8f1a2b3c4d5e6f70-FRA")]).as_deref(),
            Some("FRA")
        );
        assert_eq!(p(&[("X-Cache", "HIT")]), None);
        assert_eq!(
            p(&[(
                "X-Cache",
                "TCP_MEM_HIT from a23-1-2-3.deploy.akamaitechnologies.com (AkamaiGHost/22.1)"
            )])
            .as_deref(),
            Some("a23-1-2-3")
        );
        assert_eq!(p(&[("X-Cache", "HIT from squid.example")]), None);
        // a scenario rule names the POP from any header, before the built-in ones
        let cl = Classifier {
            pop_rules: vec![PopRule {
                header: "x-edge-location".into(),
                pattern: Regex::new("^([A-Z]{3})[0-9]").unwrap(),
            }],
            ..Default::default()
        };
        let h = [
            ("X-Edge-Location", "LHR61-C2"),
            ("X-Amz-Cf-Pop", "FRA56-P1"),
        ];
        assert_eq!(cl.classify(&h[..]).1, Some("LHR"));
        assert_eq!(cl.classify(&h[1..]).1, Some("FRA56-P1"));
    }

    #[test]
    fn ratio_excludes_pass_and_errors() {
        let mut n = [0u64; CacheClass::COUNT];
        n[Hit.index()] = 6;
        n[StaleHit.index()] = 2;
        n[Miss.index()] = 1;
        n[Revalidated.index()] = 1;
        n[Pass.index()] = 100;
        n[Error.index()] = 100;
        assert_eq!(hit_ratio(&n), Some(0.8));
        assert_eq!(hit_ratio(&[0; CacheClass::COUNT]), None);
        // a shield hit is a miss at the edge
        n[ShieldHit.index()] = 10;
        assert_eq!(hit_ratio(&n), Some(8.0 / 20.0));
    }
}
