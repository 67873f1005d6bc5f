//! Access-log formats -> `LogRecord`: nginx/Apache (combined, common, vhost, syslog-prefixed as
//! Fastly streams it), CloudFront and generic W3C/IIS (`#Fields`), ALB, S3 server access logs,
//! NDJSON (Cloudflare Logpush, custom Fastly JSON). Reading plain/.gz/.zst and detecting the
//! format per file live here too. Parsers borrow from the line; nothing here knows about URLs lists.

pub mod alb;
pub mod clf;
pub mod input;
pub mod json;
pub mod s3log;
pub mod timefmt;
pub mod w3c;

use std::borrow::Cow;
use std::sync::Arc;

/// One request as a log recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord<'a> {
    pub method: Cow<'a, str>,
    /// the Host the client asked for, when the format records it
    pub host: Option<Cow<'a, str>>,
    /// path and query as requested (origin-form; an absolute-form target is reduced to it)
    pub target: Cow<'a, str>,
    /// 0 when the client went away before a status (CloudFront `000`)
    pub status: u16,
    pub bytes: Option<u64>,
    /// unix microseconds, UTC
    pub time: Option<i64>,
    /// the cache status the log recorded (CloudFront result type, Cloudflare CacheCacheStatus...)
    pub cache: CacheStatus<'a>,
    /// the POP (edge location) that answered, where the format names one (CloudFront
    /// `x-edge-location`, Cloudflare `EdgeColoCode`); nginx's `pop=` is in the tail (`pop()`)
    pub pop: Option<Cow<'a, str>>,
    /// the server's own time for the request, us (CloudFront `time-taken`, ALB's three
    /// processing times added, S3 `TotalTime`); nginx's `rt=` is in the tail (`time_taken_us()`)
    pub time_taken_us: Option<u64>,
    /// the server's time to the response's first byte, us (CloudFront `time-to-first-byte`,
    /// Cloudflare `EdgeTimeToFirstByteMs`)
    pub ttfb_us: Option<u64>,
}

impl LogRecord<'_> {
    /// The POP: the format's field, or a combined line's `pop=` tail field.
    pub fn pop(&self) -> Option<&str> {
        match (&self.pop, &self.cache) {
            (Some(p), _) => Some(p),
            (None, CacheStatus::ClfTail(tail)) => tail_field(tail, "pop="),
            _ => None,
        }
    }

    /// The server's time: the format's field, or a combined line's `rt=` (nginx
    /// `$request_time`, seconds).
    pub fn time_taken_us(&self) -> Option<u64> {
        match (self.time_taken_us, &self.cache) {
            (Some(t), _) => Some(t),
            (None, CacheStatus::ClfTail(tail)) => tail_field(tail, "rt=").and_then(seconds_us),
            _ => None,
        }
    }
}

/// The value of `key` (`cs=`, with its `=`) among a combined line's space-separated tail
/// fields, unquoted; None when absent, empty or `-`. The key must start a field.
fn tail_field<'t>(tail: &'t str, key: &str) -> Option<&'t str> {
    // from each `=` or quote: a tail holds a few, and a searcher built per call cost more than
    // the parse. Quoted strings (the referer, the user agent: the client's own text) are
    // skipped whole, so a client cannot write a `cs=HIT` of its own into the line.
    let b = tail.as_bytes();
    let name = key.strip_suffix('=').unwrap_or(key).as_bytes();
    let mut i = 0;
    // where the last quoted string ended: a field may follow it without a space (`"UA"cs=HIT`)
    let mut after_quote = usize::MAX;
    while let Some(j) = memchr::memchr2(b'"', b'=', &b[i..]) {
        let at = i + j;
        if b[at] == b'"' {
            i = quoted_end(b, at + 1)?;
            after_quote = i;
            continue;
        }
        i = at + 1;
        let Some(s) = at.checked_sub(name.len()) else {
            continue;
        };
        // a byte loop: `==` on slices calls memcmp, dear for two bytes
        if !b[s..at].iter().zip(name).all(|(x, y)| x == y)
            || (s > 0 && b[s - 1] != b' ' && s != after_quote)
        {
            continue; // another field, or inside one (`xcs=`)
        }
        let v = if b.get(at + 1) == Some(&b'"') {
            &tail[at + 2..quoted_end(b, at + 2)? - 1]
        } else {
            let end = memchr::memchr(b' ', &b[at + 1..]).map_or(b.len(), |k| at + 1 + k);
            &tail[at + 1..end]
        };
        return (!v.is_empty() && v != "-").then_some(v);
    }
    None
}

/// The index just past the quote that closes a string starting at `from` (Apache escapes a
/// quote as `\"`, nginx as `\x22`); None when it is not closed.
fn quoted_end(b: &[u8], from: usize) -> Option<usize> {
    let mut k = from;
    loop {
        let p = k + memchr::memchr2(b'"', b'\\', b.get(k..)?)?;
        if b[p] == b'\\' {
            k = p + 2;
            continue;
        }
        return Some(p + 1);
    }
}

/// Seconds as written in logs (`0.001`, `12`, `1.5e-3` refused) -> us; None for `-`, negative
/// or unreadable values, and past an hour's histogram range only clamped later.
pub(crate) fn seconds_us(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1e6).round() as u64)
}

/// A record's cache status. nginx's `cs=` field is looked for in the line's tail only when
/// asked: extraction never needs it, and the search costs more than the rest of the parse.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheStatus<'a> {
    Value(Option<Cow<'a, str>>),
    /// the text after a combined line's byte count
    ClfTail(&'a str),
}

impl CacheStatus<'_> {
    pub fn get(&self) -> Option<&str> {
        match self {
            CacheStatus::Value(v) => v.as_deref(),
            CacheStatus::ClfTail(tail) => tail_field(tail, "cs="),
        }
    }
}

/// Why a line was not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Malformed {
    TooFewFields,
    BadTime,
    BadStatus,
    BadBytes,
    UnterminatedQuote,
    BadRequestLine,
    BadJson,
    MissingField,
    NoFieldsHeader,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TooFewFields => "too few fields",
            Malformed::BadTime => "bad timestamp",
            Malformed::BadStatus => "bad status",
            Malformed::BadBytes => "bad byte count",
            Malformed::UnterminatedQuote => "unterminated quote",
            Malformed::BadRequestLine => "bad request line",
            Malformed::BadJson => "bad JSON",
            Malformed::MissingField => "missing field",
            Malformed::NoFieldsHeader => "W3C line before any #Fields header",
        }
    }
}

pub enum Line<'a> {
    Record(LogRecord<'a>),
    /// comments, directives, blank lines
    Skip,
    Malformed(Malformed),
}

impl<'a> From<Result<LogRecord<'a>, Malformed>> for Line<'a> {
    #[inline]
    fn from(r: Result<LogRecord<'a>, Malformed>) -> Line<'a> {
        match r {
            Ok(r) => Line::Record(r),
            Err(m) => Line::Malformed(m),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nginx/Apache combined, common, vhost; an optional syslog prefix (Fastly)
    Combined,
    /// W3C extended with `#Fields` (CloudFront standard logs, IIS, others)
    W3c,
    Alb,
    S3,
    /// NDJSON; field names from `JsonFields` (Cloudflare's by default)
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::W3c => "w3c",
            Format::Alb => "alb",
            Format::S3 => "s3",
            Format::Json => "json",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "combined" | "common" | "nginx" | "apache" | "clf" | "fastly" => Format::Combined,
            "w3c" | "iis" | "cloudfront" => Format::W3c,
            "alb" => Format::Alb,
            "s3" => Format::S3,
            "json" | "ndjson" | "cloudflare" => Format::Json,
            _ => {
                return Err(format!(
                    "unknown log format {s:?} (auto, combined, cloudfront, w3c, alb, s3, cloudflare, json)"
                ));
            }
        })
    }
}

/// Which line a parser is reading: stateless formats ignore it; W3C needs its `#Fields` layout.
#[derive(Clone)]
pub enum Parser {
    Combined,
    W3c(Option<Arc<w3c::Layout>>),
    Alb,
    S3,
    Json(Arc<json::JsonFields>),
}

impl Parser {
    pub fn new(f: Format, json: &Arc<json::JsonFields>) -> Parser {
        match f {
            Format::Combined => Parser::Combined,
            Format::W3c => Parser::W3c(None),
            Format::Alb => Parser::Alb,
            Format::S3 => Parser::S3,
            Format::Json => Parser::Json(json.clone()),
        }
    }

    /// Parses one line (without its newline).
    #[inline]
    pub fn parse<'a>(&mut self, line: &'a str) -> Line<'a> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.bytes().all(|c| c.is_ascii_whitespace()) {
            return Line::Skip;
        }
        match self {
            Parser::Combined => clf::parse(line),
            Parser::W3c(layout) => {
                if let Some(rest) = line.strip_prefix('#') {
                    if let Some(f) = rest.strip_prefix("Fields:") {
                        *layout = Some(Arc::new(w3c::Layout::new(f)));
                    }
                    return Line::Skip;
                }
                match layout {
                    Some(l) => w3c::parse(l, line),
                    None => Line::Malformed(Malformed::NoFieldsHeader),
                }
            }
            Parser::Alb => alb::parse(line),
            Parser::S3 => s3log::parse(line),
            Parser::Json(f) => json::parse(f, line),
        }
    }
}

/// Guesses a file's format from its first lines; None when nothing looks like a log.
pub fn detect(sample: &str) -> Option<Format> {
    for line in sample.lines().take(50) {
        let l = line.trim_start();
        if l.is_empty() {
            continue;
        }
        if l.starts_with("#Version")
            || l.starts_with("#Fields")
            || l.starts_with("#Software")
            || l.starts_with("#Date")
        {
            return Some(Format::W3c);
        }
        if l.starts_with('#') {
            continue;
        }
        if l.starts_with('{') {
            return Some(Format::Json);
        }
        if l.starts_with('<') {
            return Some(Format::Combined); // syslog prefix (Fastly, nginx syslog)
        }
        let mut it = l.split(' ');
        let first = it.next().unwrap_or("");
        let second = it.next().unwrap_or("");
        if ["http", "https", "h2", "grpcs", "ws", "wss"].contains(&first)
            && timefmt::iso(second).is_some()
        {
            return Some(Format::Alb);
        }
        if let Some(br) = l.find(" [") {
            let before = l[..br].split(' ').count();
            if before == 2 && l[br..].contains("] ") {
                return Some(Format::S3);
            }
            if before == 3 || before == 4 {
                return Some(Format::Combined);
            }
        }
    }
    None
}

/// Splits `http://host:port/p?q` into (host, `/p?q`); origin-form targets pass through.
pub(crate) fn split_absolute(target: &str) -> (Option<&str>, &str) {
    for scheme in ["http://", "https://"] {
        if target.len() > scheme.len()
            && target.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        {
            let rest = &target[scheme.len()..];
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let host = &rest[..end];
            let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
            let path = &rest[end..];
            return (Some(host), if path.is_empty() { "/" } else { path });
        }
    }
    (None, target)
}

/// Without leading and trailing ASCII spaces; a byte loop (the generic `trim_matches` costs
/// more than the rest of the request-line parse).
fn trim_spaces(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Parses `METHOD TARGET [PROTOCOL]`.
pub(crate) fn request_line(r: &str) -> Option<(&str, &str)> {
    let b = r.as_bytes();
    let m_end = b.iter().position(|&c| c == b' ')?;
    let method = &r[..m_end];
    let rest = trim_spaces(&r[m_end + 1..]);
    let t_end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
    let target = &rest[..t_end];
    let tail = trim_spaces(&rest[t_end..]);
    let proto = (!tail.is_empty()).then_some(tail);
    if target.is_empty()
        || proto.is_some_and(|p| p.bytes().any(|c| c == b' '))
        || method.is_empty()
        || method.len() > 16
        || !method.bytes().all(|c| c.is_ascii_uppercase())
    {
        return None;
    }
    if let Some(p) = proto
        && !p.starts_with("HTTP/")
    {
        return None;
    }
    if !(target.starts_with('/')
        || target.starts_with("http://")
        || target.starts_with("https://")
        || target == "*")
    {
        return None;
    }
    Some((method, target))
}

/// Decimal digits only (no sign, no spaces), without overflow; hand-written as it runs twice a
/// line.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

pub(crate) fn parse_status(s: &str) -> Result<u16, Malformed> {
    match digits(s) {
        Some(v) if s.len() == 3 => Ok(v as u16),
        _ => Err(Malformed::BadStatus),
    }
}

pub fn parse_bytes(s: &str) -> Result<Option<u64>, Malformed> {
    if s == "-" || s.is_empty() {
        return Ok(None);
    }
    // 20 digits may still fit a u64: let the slow path decide
    digits(s)
        .or_else(|| {
            s.parse()
                .ok()
                .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
        })
        .map(Some)
        .ok_or(Malformed::BadBytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        let cases = [
            (
                "67.43.156.13 - - [25/Oct/2016:14:49:34 +0200] \"GET /favicon.ico HTTP/1.1\" 404 571 \"-\" \"UA\"",
                Format::Combined,
            ),
            (
                "www.example.com:443 198.51.100.7 - - [12/Mar/2024:10:00:01 +0000] \"GET /a HTTP/1.1\" 200 1 \"-\" \"UA\"",
                Format::Combined,
            ),
            (
                "<134>2024-03-12T10:00:00Z cache-fra19120 l[1]: 1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a HTTP/1.1\" 200 1",
                Format::Combined,
            ),
            ("#Version: 1.0\n#Fields: date time\n", Format::W3c),
            (
                "http 2018-07-02T22:23:00.186641Z app/x 1.2.3.4:1 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl\"",
                Format::Alb,
            ),
            (
                "79a5 awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a5 3E57 REST.GET.OBJECT k \"GET /awsexamplebucket1/k HTTP/1.1\" 200 - 113 113 7 - \"-\" \"S3Console\"",
                Format::S3,
            ),
            ("{\"ClientRequestURI\":\"/a\"}", Format::Json),
        ];
        for (s, want) in cases {
            assert_eq!(detect(s), Some(want), "{s}");
        }
        assert_eq!(detect("hello world\n"), None);
    }

    /// What `observe` reads of each format: cache status, POP and the server's times, from
    /// samples laid out as each vendor documents its fields.
    #[test]
    fn edge_fields_of_each_format() {
        let json = Arc::new(json::JsonFields::default());
        let rec = |f: Format,
                   pre: &[&str],
                   line: &str|
         -> (Option<String>, Option<String>, Option<u64>, Option<u64>) {
            let mut p = Parser::new(f, &json);
            for l in pre {
                p.parse(l);
            }
            match p.parse(line) {
                Line::Record(r) => (
                    r.cache.get().map(str::to_string),
                    r.pop().map(str::to_string),
                    r.time_taken_us(),
                    r.ttfb_us,
                ),
                _ => panic!("{line}"),
            }
        };
        // CloudFront's documented example: LAX1, Hit, time-taken and time-to-first-byte 0.001
        let cf = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
        let line = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla\t-\t-\tMiss\tSOX4==\td111111abcdef8.cloudfront.net\thttps\t23\t0.152\t-\tTLSv1.2\tECDHE\tMiss\tHTTP/2.0\t-\t-\t11040\t0.034\tOriginShieldHit\ttext/html\t78\t-\t-";
        assert_eq!(
            rec(Format::W3c, &[cf], line),
            (
                Some("OriginShieldHit".into()),
                Some("LAX1".into()),
                Some(152_000),
                Some(34_000)
            )
        );
        // IIS: time-taken in whole milliseconds
        assert_eq!(
            rec(
                Format::W3c,
                &["#Fields: date time cs-method cs-uri-stem sc-status time-taken"],
                "2024-01-02 10:00:00 GET /a.png 200 15"
            ),
            (None, None, Some(15_000), None)
        );
        // Cloudflare Logpush: CacheCacheStatus, EdgeColoCode, EdgeTimeToFirstByteMs
        assert_eq!(
            rec(
                Format::Json,
                &[],
                r#"{"ClientRequestURI":"/img/a.png","EdgeResponseStatus":200,"CacheCacheStatus":"hit","EdgeColoCode":"FRA","EdgeTimeToFirstByteMs":12,"EdgeStartTimestamp":1653485126000000000}"#
            ),
            (Some("hit".into()), Some("FRA".into()), None, Some(12_000))
        );
        // nginx with the common additions after the user agent
        assert_eq!(
            rec(
                Format::Combined,
                &[],
                r#"1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] "GET /a.jpg HTTP/1.1" 200 99 "-" "UA" rt=0.012 ut="0.010" cs=MISS pop=fra1"#
            ),
            (Some("MISS".into()), Some("fra1".into()), Some(12_000), None)
        );
        // the client's own text (referer, user agent) cannot say what the server did
        assert_eq!(
            rec(
                Format::Combined,
                &[],
                r#"1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] "GET /a.jpg HTTP/1.1" 200 99 "http://x/?a=1 cs=HIT" "UA \" cs=HIT pop=Q1 rt=0" rt=0.5 ut="0.4 1" cs=MISS"#
            ),
            (Some("MISS".into()), None, Some(500_000), None)
        );
        // a field right after a quoted one, with no space between
        assert_eq!(
            rec(
                Format::Combined,
                &[],
                r#"1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] "GET /a.jpg HTTP/1.1" 200 99 "-" "UA"cs=STALE"#
            ),
            (Some("STALE".into()), None, None, None)
        );
        // a key inside another field is not the field
        assert_eq!(
            rec(
                Format::Combined,
                &[],
                r#"1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] "GET /a.jpg HTTP/1.1" 200 99 "-" "UA" xcs=HIT"#
            ),
            (None, None, None, None)
        );
        // Fastly's syslog stream with a cache state in the tail
        assert_eq!(
            rec(
                Format::Combined,
                &[],
                r#"<134>2024-03-12T10:00:00Z cache-fra19120 l[1]: 1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] "GET /a HTTP/1.1" 200 1 cs=HIT-STALE"#
            ),
            (Some("HIT-STALE".into()), None, None, None)
        );
        // ALB: the three processing times added; -1 (no target) leaves it out
        let alb = "http 2018-07-02T22:23:00.186641Z app/x 1.2.3.4:1 10.0.0.1:80 0.000 0.001 0.002 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl\"";
        assert_eq!(rec(Format::Alb, &[], alb), (None, None, Some(3000), None));
        let alb = alb.replace(" 0.000 0.001 0.002 ", " -1 -1 -1 ");
        assert_eq!(rec(Format::Alb, &[], &alb), (None, None, None, None));
        // S3 server access logs: TotalTime (ms)
        let s3 = "79a5 bucket [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a5 3E57 REST.GET.OBJECT k \"GET /bucket/k HTTP/1.1\" 200 - 113 113 7 5 \"-\" \"S3Console\"";
        assert_eq!(rec(Format::S3, &[], s3), (None, None, Some(7000), None));
    }

    #[test]
    fn absolute_targets() {
        assert_eq!(split_absolute("http://h:80/a?b"), (Some("h:80"), "/a?b"));
        assert_eq!(split_absolute("https://u:p@h"), (Some("h"), "/"));
        assert_eq!(split_absolute("/x"), (None, "/x"));
        assert_eq!(request_line("GET /a HTTP/1.1"), Some(("GET", "/a")));
        assert_eq!(request_line("GET /a"), Some(("GET", "/a")));
        assert_eq!(request_line("-"), None);
        assert_eq!(request_line("\\x16\\x03\\x01\\x02\\x00\\x01\\x00"), None);
        assert_eq!(request_line("GET a b c"), None);
    }

    #[test]
    fn regression_multibyte_before_scheme_length_does_not_panic() {
        // found by parsers_never_panic_on_mutated_lines: slicing at byte 7 split a '\u{fffd}'
        assert_eq!(
            split_absolute("/bucket\u{fffd}k"),
            (None, "/bucket\u{fffd}k")
        );
        assert_eq!(crate::urls::normalise_path("http\u{fffd}://x"), None);
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// A cheap, always-on stand-in for the fuzz targets (fuzz/): seeded mutations of real-shaped
    /// lines through every parser must never panic.
    #[test]
    fn parsers_never_panic_on_mutated_lines() {
        let seeds = [
            "67.43.156.13 - - [25/Oct/2016:14:49:34 +0200] \"GET /favicon.ico HTTP/1.1\" 404 571 \"http://localhost:8080/\" \"Mozilla\"",
            "<134>2024-03-12T10:00:00Z cache-fra19120 l[1]: 1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a\\x22 HTTP/1.1\" 200 1 cs=HIT",
            "#Fields: date time cs-method cs-uri-stem cs-uri-query sc-status sc-bytes",
            "2019-12-04\t21:02:31\tGET\t/index.html\t-\t200\t392",
            "http 2018-07-02T22:23:00.186641Z app/x 1.2.3.4:1 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl\"",
            "79a5 bucket [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a5 3E57 REST.GET.OBJECT k \"GET /bucket/k HTTP/1.1\" 200 - 113 113 7 - \"-\" \"S3\" - h SigV4 c AuthHeader host TLSv1.2",
            "{\"ClientRequestURI\":\"/a\",\"EdgeResponseStatus\":200,\"EdgeStartTimestamp\":1653485126000000000}",
        ];
        let json = Arc::new(json::JsonFields::default());
        let formats = [
            Format::Combined,
            Format::W3c,
            Format::Alb,
            Format::S3,
            Format::Json,
        ];
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng = crate::urls::mix(rng);
            rng
        };
        for round in 0..20_000 {
            let seed = seeds[round % seeds.len()].as_bytes();
            let mut b = seed.to_vec();
            for _ in 0..(next() % 6) {
                let pos = (next() as usize) % (b.len() + 1);
                match next() % 4 {
                    0 if pos < b.len() => b[pos] = next() as u8,
                    1 => b.insert(pos, b" \"[]\\%#\t{}:-0"[(next() % 13) as usize]),
                    2 if pos < b.len() => {
                        b.remove(pos);
                    }
                    _ => b.truncate(pos),
                }
            }
            let text = String::from_utf8_lossy(&b);
            let _ = detect(&text);
            for f in formats {
                let mut p = Parser::new(f, &json);
                if f == Format::W3c {
                    p.parse(
                        "#Fields: date time cs-method cs-uri-stem cs-uri-query sc-status sc-bytes",
                    );
                }
                let _ = p.parse(&text);
            }
        }
    }
}
