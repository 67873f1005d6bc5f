//! W3C extended log lines laid out by the latest `#Fields` directive: CloudFront standard logs
//! (tab-separated, percent-encoded values) and IIS/generic W3C (space-separated, `+` for spaces).

use std::borrow::Cow;

use super::{CacheStatus, Line, LogRecord, Malformed, parse_bytes, split_absolute, timefmt};

/// Column positions of the fields we use.
#[derive(Debug, Default, PartialEq)]
pub struct Layout {
    pub n: usize,
    date: Option<usize>,
    time: Option<usize>,
    method: Option<usize>,
    stem: Option<usize>,
    query: Option<usize>,
    uri: Option<usize>,
    status: Option<usize>,
    bytes: Option<usize>,
    host: Option<usize>,
    host_header: Option<usize>,
    cache: Option<usize>,
    detailed: Option<usize>,
    pop: Option<usize>,
    time_taken: Option<usize>,
    ttfb: Option<usize>,
    /// CloudFront's layout (an `x-edge-*` field): `time-taken` in seconds, not IIS's ms
    cloudfront: bool,
}

impl Layout {
    /// From the text after `#Fields:`.
    pub fn new(fields: &str) -> Layout {
        let names: Vec<&str> = fields.split_whitespace().collect();
        let pos = |want: &[&str]| {
            names
                .iter()
                .position(|n| want.iter().any(|w| n.eq_ignore_ascii_case(w)))
        };
        Layout {
            n: names.len(),
            date: pos(&["date"]),
            time: pos(&["time"]),
            method: pos(&["cs-method"]),
            stem: pos(&["cs-uri-stem"]),
            query: pos(&["cs-uri-query"]),
            uri: pos(&["cs-uri"]),
            status: pos(&["sc-status"]),
            bytes: pos(&["sc-bytes"]),
            host: pos(&["cs(Host)", "cs-host"]),
            host_header: pos(&["x-host-header"]),
            cache: pos(&["x-edge-result-type"]),
            detailed: pos(&["x-edge-detailed-result-type"]),
            pop: pos(&["x-edge-location", "s-computername"]),
            time_taken: pos(&["time-taken"]),
            ttfb: pos(&["time-to-first-byte"]),
            cloudfront: names.iter().any(|n| n.starts_with("x-edge-")),
        }
    }
}

/// `time-taken`: seconds with a fraction in CloudFront's logs, whole milliseconds in IIS's.
fn w3c_time(t: &str, cloudfront: bool) -> Option<u64> {
    if cloudfront {
        super::seconds_us(t)
    } else {
        super::digits(t).map(|ms| ms.saturating_mul(1000))
    }
}

pub fn parse<'a>(l: &Layout, line: &'a str) -> Line<'a> {
    parse_inner(l, line).into()
}

fn parse_inner<'a>(l: &Layout, line: &'a str) -> Result<LogRecord<'a>, Malformed> {
    let tabs = line.contains('\t');
    let mut cols: [&str; 48] = [""; 48];
    let mut n = 0;
    let mut push = |c: &'a str| {
        if n < cols.len() {
            cols[n] = c;
        }
        n += 1;
    };
    if tabs {
        line.split('\t').for_each(&mut push);
    } else {
        line.split(' ')
            .filter(|s| !s.is_empty())
            .for_each(&mut push);
    }
    let get = |i: Option<usize>| i.filter(|&i| i < n && i < cols.len()).map(|i| cols[i]);
    let need = [l.stem.or(l.uri), l.status]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    if n <= need || l.stem.or(l.uri).is_none() {
        return Err(Malformed::TooFewFields);
    }
    let dash = |v: Option<&'a str>| v.filter(|s| !s.is_empty() && *s != "-");
    let status = match get(l.status) {
        Some("000") => 0,
        Some(s) => s.parse().map_err(|_| Malformed::BadStatus)?,
        None => return Err(Malformed::MissingField),
    };
    let time = match (get(l.date), get(l.time)) {
        (Some(d), Some(t)) => Some(timefmt::w3c(d, t).ok_or(Malformed::BadTime)?),
        _ => None,
    };
    let (host_abs, target): (Option<&str>, Cow<'a, str>) = match get(l.stem) {
        Some(stem) => {
            let t = match dash(get(l.query)) {
                Some(q) => Cow::Owned(format!("{stem}?{q}")),
                None => Cow::Borrowed(stem),
            };
            (None, t)
        }
        None => {
            let (h, p) = split_absolute(get(l.uri).unwrap_or("/"));
            (h, Cow::Borrowed(p))
        }
    };
    if !target.starts_with('/') {
        return Err(Malformed::MissingField);
    }
    let host = dash(get(l.host_header))
        .or(dash(get(l.host)))
        .or(host_abs)
        .map(Cow::Borrowed);
    Ok(LogRecord {
        method: Cow::Borrowed(get(l.method).unwrap_or("GET")),
        host,
        target,
        status,
        bytes: parse_bytes(get(l.bytes).unwrap_or("-"))?,
        time,
        // the detailed type says more only for an edge miss the Origin Shield answered
        cache: CacheStatus::Value(
            (dash(get(l.detailed)).filter(|d| *d == "OriginShieldHit"))
                .or(dash(get(l.cache)))
                .map(Cow::Borrowed),
        ),
        pop: dash(get(l.pop)).map(Cow::Borrowed),
        // CloudFront writes seconds (`0.001`); IIS writes milliseconds (an integer)
        time_taken_us: dash(get(l.time_taken)).and_then(|t| w3c_time(t, l.cloudfront)),
        ttfb_us: dash(get(l.ttfb)).and_then(super::seconds_us),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Format, Line, Parser, json::JsonFields};
    use std::sync::Arc;

    const CF_FIELDS: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
    const CF_LINE: &str = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-";

    fn parser() -> Parser {
        Parser::new(Format::W3c, &Arc::new(JsonFields::default()))
    }

    #[test]
    fn cloudfront_doc_example() {
        let mut p = parser();
        assert!(matches!(p.parse("#Version: 1.0"), Line::Skip));
        assert!(matches!(p.parse(CF_FIELDS), Line::Skip));
        let Line::Record(r) = p.parse(CF_LINE) else {
            panic!()
        };
        assert_eq!(
            (r.method.as_ref(), r.target.as_ref(), r.status, r.bytes),
            ("GET", "/index.html", 200, Some(392))
        );
        assert_eq!(r.host.as_deref(), Some("d111111abcdef8.cloudfront.net"));
        assert_eq!(r.cache.get(), Some("Hit"));
        assert_eq!(r.time, super::timefmt::iso("2019-12-04T21:02:31Z"));
        // query joined, status 000, truncated last record
        let l = CF_LINE
            .replace("\t/index.html\t200\t", "\t/a%20b.jpg\t000\t")
            .replacen("\t-\t-\tHit", "\tw=1&h=2\t-\tHit", 1);
        let Line::Record(r) = p.parse(&l) else {
            panic!()
        };
        assert_eq!((r.target.as_ref(), r.status), ("/a%20b.jpg?w=1&h=2", 0));
        assert!(matches!(
            p.parse("2019-12-04\t21:02:31\tLAX1\t392"),
            Line::Malformed(_)
        ));
    }

    #[test]
    fn iis_with_fields_change_mid_file() {
        let mut p = parser();
        assert!(matches!(
            p.parse("/items.htm 200"),
            Line::Malformed(super::Malformed::NoFieldsHeader)
        ));
        p.parse("#Software: Microsoft Internet Information Services 6.0");
        p.parse("#Fields: date time c-ip cs-username s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-bytes cs(User-Agent) cs(Cookie) cs(Referer)");
        let Line::Record(r) = p.parse("2007-4-11 15:53:49 201.235.121.101 - 131.21.230.15 80 GET /items.htm - 200 878 Mozilla/4.0+(compatible;+MSIE+5.0;+Windows+95;+DigExt) - http://www.ccc.com/link.htm") else { panic!() };
        assert_eq!(
            (r.target.as_ref(), r.status, r.bytes),
            ("/items.htm", 200, Some(878))
        );
        p.parse("#Fields: time cs-method cs-uri-stem sc-status date");
        let Line::Record(r) = p.parse("10:00:00 GET /new.png 304 2024-01-02") else {
            panic!()
        };
        assert_eq!((r.target.as_ref(), r.status), ("/new.png", 304));
        assert_eq!(r.time, super::timefmt::iso("2024-01-02T10:00:00Z"));
    }
}
