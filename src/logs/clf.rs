//! nginx/Apache combined and common log lines, vhost and "host first" variants, both escaping
//! conventions (nginx `\x22`, Apache `\"`), and a syslog prefix as Fastly's log streaming adds.

use std::borrow::Cow;

use super::{
    CacheStatus, Line, LogRecord, Malformed, parse_bytes, parse_status, request_line,
    split_absolute, timefmt,
};

/// Removes `<134>2024-03-12T10:00:00Z cache-fra19120 loggername[12345]: ` and the like.
fn strip_syslog(line: &str) -> &str {
    if !line.starts_with('<') {
        return line;
    }
    // the log line proper starts after the tag's colon
    if let Some(i) = line.find("]: ") {
        return &line[i + 3..];
    }
    match line.find(": ") {
        Some(i) => &line[i + 2..],
        None => line,
    }
}

/// Finds the closing quote of a quoted field starting after the opening quote, honouring `\`;
/// also tells whether the field holds a backslash (it then needs unescaping).
fn closing_quote(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while let Some(j) = memchr::memchr2(b'"', b'\\', &b[i..]) {
        let k = i + j;
        if b[k] == b'"' {
            return Some((k, escaped));
        }
        escaped = true;
        i = k + 2;
        if i >= b.len() {
            return None;
        }
    }
    None
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Undoes the log's own escaping (`\xHH`, `\"`, `\\`) to get the bytes the client sent.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' if i + 3 < b.len() => {
                    if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                        out.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                b'"' | b'\\' => {
                    out.push(b[i + 1]);
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[inline]
pub fn parse(line: &str) -> Line<'_> {
    parse_inner(line).into()
}

/// The first `c` in a short field: a byte loop, cheaper than memchr's setup for the few
/// bytes of a status, a byte count or a client address.
fn find_short(s: &str, c: u8) -> Option<usize> {
    s.bytes().position(|b| b == c)
}

#[inline]
fn parse_inner(line: &str) -> Result<LogRecord<'_>, Malformed> {
    let line = strip_syslog(line);
    let b = line.as_bytes();
    // "addr ident user [time]" (3 fields before the bracket) or "vhost addr ident user [time]"
    let open = memchr::memchr(b'[', b).ok_or(Malformed::TooFewFields)?;
    if open == 0 || b[open - 1] != b' ' {
        return Err(Malformed::TooFewFields);
    }
    let head = &line[..open - 1];
    // a plain loop: memchr's setup costs more than the ~30 bytes it would scan
    let host = match head.bytes().filter(|&c| c == b' ').count() {
        2 => None,
        3 => {
            let h = &head[..find_short(head, b' ').unwrap_or(0)];
            match h.rsplit_once(':') {
                Some((name, port))
                    if !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) =>
                {
                    Some(name)
                }
                _ => Some(h),
            }
        }
        _ => return Err(Malformed::TooFewFields),
    };
    let rest = &line[open + 1..];
    let close = memchr::memchr(b']', rest.as_bytes()).ok_or(Malformed::BadTime)?;
    let time = timefmt::clf(&rest[..close]).ok_or(Malformed::BadTime)?;
    let rest = rest[close + 1..]
        .strip_prefix(" \"")
        .ok_or(Malformed::TooFewFields)?;
    let (q, escaped) = closing_quote(rest).ok_or(Malformed::UnterminatedQuote)?;
    let request = &rest[..q];
    let rest = rest[q + 1..].trim_start_matches(' ');
    let sp = find_short(rest, b' ').unwrap_or(rest.len());
    let status = parse_status(&rest[..sp])?;
    let rest = rest.get(sp + 1..).unwrap_or("");
    let sp = find_short(rest, b' ').unwrap_or(rest.len());
    let bytes = parse_bytes(&rest[..sp])?;
    let tail = rest.get(sp + 1..).unwrap_or("");
    let (method, target, host) = if !escaped {
        let (m, t) = request_line(request).ok_or(Malformed::BadRequestLine)?;
        let (abs_host, path) = split_absolute(t);
        (
            Cow::Borrowed(m),
            Cow::Borrowed(path),
            abs_host.or(host).map(Cow::Borrowed),
        )
    } else {
        let un = unescape(request);
        let (m, t) = request_line(&un).ok_or(Malformed::BadRequestLine)?;
        let (abs_host, path) = split_absolute(t);
        let h: Option<Cow<'_, str>> = match abs_host {
            Some(x) => Some(Cow::Owned(x.to_string())),
            None => host.map(Cow::Borrowed),
        };
        (Cow::Owned(m.to_string()), Cow::Owned(path.to_string()), h)
    };
    let cache = CacheStatus::ClfTail(tail);
    Ok(LogRecord {
        method,
        host,
        target,
        status,
        bytes,
        time: Some(time),
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> LogRecord<'_> {
        match parse(line) {
            Line::Record(r) => r,
            Line::Malformed(m) => panic!("{line}: {m:?}"),
            Line::Skip => panic!("skip"),
        }
    }
    fn bad(line: &str) -> Malformed {
        match parse(line) {
            Line::Malformed(m) => m,
            _ => panic!("accepted {line}"),
        }
    }

    #[test]
    fn doc_examples() {
        let r = rec(
            "67.43.156.13 - - [25/Oct/2016:14:49:34 +0200] \"GET /favicon.ico HTTP/1.1\" 404 571 \"http://localhost:8080/\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2840.59 Safari/537.36\"",
        );
        assert_eq!(
            (r.method.as_ref(), r.target.as_ref(), r.status, r.bytes),
            ("GET", "/favicon.ico", 404, Some(571))
        );
        assert_eq!(r.time, timefmt::iso("2016-10-25T12:49:34Z"));
        let r = rec(
            "www.example.com:443 198.51.100.7 - - [12/Mar/2024:10:00:01 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 \"-\" \"Mozilla/5.0 \\\"quoted\\\" UA\"",
        );
        assert_eq!(
            (r.target.as_ref(), r.host.as_deref()),
            ("/a?b=1", Some("www.example.com"))
        );
    }

    #[test]
    fn variants() {
        // common log format, bytes "-"
        let r =
            rec("::1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 -");
        assert_eq!((r.bytes, r.status), (None, 200));
        // IPv6 client, cache status extra
        let r = rec(
            "2001:db8::1 - - [12/Mar/2024:10:00:01 +0000] \"GET /i.webp HTTP/2.0\" 200 10 \"-\" \"UA\" rt=0.010 ut=\"0.009, 0.001\" cs=HIT",
        );
        assert_eq!(r.cache.get(), Some("HIT"));
        // absolute-form target
        let r = rec(
            "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET http://img.example.com/p.jpg?w=1 HTTP/1.1\" 200 5",
        );
        assert_eq!(
            (r.host.as_deref(), r.target.as_ref()),
            (Some("img.example.com"), "/p.jpg?w=1")
        );
        // nginx escaping of a quote in the path
        let r = rec(
            "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a\\x22b.jpg HTTP/1.1\" 200 5 \"-\" \"x\\x22y\"",
        );
        assert_eq!(r.target.as_ref(), "/a\"b.jpg");
        // Apache escaping
        let r = rec(
            "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a\\\"b.jpg HTTP/1.1\" 200 5 \"-\" \"x\"",
        );
        assert_eq!(r.target.as_ref(), "/a\"b.jpg");
        // Fastly syslog prefix, common log format
        let r = rec(
            "<134>2024-03-12T10:00:00Z cache-fra19120 loggername[12345]: 1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /f.png HTTP/1.1\" 200 99",
        );
        assert_eq!(r.target.as_ref(), "/f.png");
    }

    #[test]
    fn junk() {
        assert_eq!(
            bad("1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"-\" 400 0 \"-\" \"-\""),
            Malformed::BadRequestLine
        );
        assert_eq!(
            bad(
                "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"\\x16\\x03\\x01\\x00\\xA5\\x01\" 400 166 \"-\" \"-\""
            ),
            Malformed::BadRequestLine
        );
        assert_eq!(
            bad("1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /trunc"),
            Malformed::UnterminatedQuote
        );
        assert_eq!(bad("1.2.3.4 - - [12/Mar/2024:10:0"), Malformed::BadTime);
        assert_eq!(
            bad("1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 2000 1"),
            Malformed::BadStatus
        );
        assert_eq!(bad("garbage"), Malformed::TooFewFields);
        assert_eq!(
            bad("1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 12x"),
            Malformed::BadBytes
        );
    }
}
