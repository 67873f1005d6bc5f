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
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
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
    match fast(line) {
        Some(r) => Line::Record(r),
        None => parse_inner(line).into(),
    }
}

/// The first of three bytes from `from` on, or None.
#[inline]
fn find3(b: &[u8], from: usize, x: u8, y: u8, z: u8) -> Option<usize> {
    memchr::memchr3(x, y, z, b.get(from..)?).map(|i| from + i)
}

/// The shape nearly every line of a combined/common log has, in one pass:
/// `addr ident user [dd/Mon/yyyy:hh:mm:ss +zzzz] "METHOD /target HTTP/x" status bytes...`
/// with no escapes in the request. Anything else (vhost, syslog prefix, absolute-form target,
/// escapes, odd spacing, malformed fields) returns None and goes through `parse_inner`, which
/// this must agree with on every line it accepts (tested on mutated lines).
#[inline]
fn fast(line: &str) -> Option<LogRecord<'_>> {
    let b = line.as_bytes();
    // the head: exactly three spaces before the first '[', the last right before it
    let i = memchr::memchr(b'[', b)?;
    if i == 0 || b[i - 1] != b' ' || b[0] == b'<' {
        return None;
    }
    // (a counting loop the compiler vectorises)
    if b[..i].iter().filter(|&&c| c == b' ').count() != 3 {
        return None;
    }
    // [time] of the fixed width (with its zone: every byte of it then checked by
    // timefmt::clf, so no ']' hides inside), then ` "`
    let t = b.get(i + 1..i + 30)?;
    if t[20] != b' ' || &t[26..29] != b"] \"" {
        return None;
    }
    let time = timefmt::clf(&line[i + 1..i + 27])?;
    // METHOD: 1-16 uppercase letters, one space
    let r0 = i + 30;
    let mut j = r0;
    while j < b.len() && b[j].is_ascii_uppercase() {
        j += 1;
    }
    if j == r0 || j - r0 > 16 || b.get(j) != Some(&b' ') || b.get(j + 1) != Some(&b'/') {
        return None;
    }
    // /target up to one space, then HTTP/... up to the closing quote; no quote or backslash
    let k = find3(b, j + 1, b' ', b'"', b'\\')?;
    if b[k] != b' ' || !b[k + 1..].starts_with(b"HTTP/") {
        return None;
    }
    let q = find3(b, k + 1, b' ', b'"', b'\\')?;
    if b[q] != b'"' {
        return None;
    }
    // status: three digits after any spaces, then a space or the end
    let mut s = q + 1;
    while s < b.len() && b[s] == b' ' {
        s += 1;
    }
    let st = b.get(s..s + 3)?;
    if !st.iter().all(u8::is_ascii_digit) || b.get(s + 3).is_some_and(|&c| c != b' ') {
        return None;
    }
    let status = st.iter().fold(0u16, |v, &c| v * 10 + u16::from(c - b'0'));
    // bytes: "-", digits (up to 19) or empty, then a space or the end
    let f = (s + 4).min(b.len());
    let mut e = f;
    let mut v = 0u64;
    while e < b.len() && b[e].is_ascii_digit() && e - f < 19 {
        v = v * 10 + u64::from(b[e] - b'0');
        e += 1;
    }
    let bytes = if e > f {
        Some(v)
    } else if b.get(f) == Some(&b'-') {
        e = f + 1;
        None
    } else {
        None
    };
    if e < b.len() && b[e] != b' ' {
        return None;
    }
    Some(LogRecord {
        method: Cow::Borrowed(&line[r0..j]),
        host: None,
        target: Cow::Borrowed(&line[j + 1..k]),
        status,
        bytes,
        time: Some(time),
        cache: CacheStatus::ClfTail(line.get(e + 1..).unwrap_or("")),
        pop: None,
        time_taken_us: None,
        ttfb_us: None,
    })
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
        pop: None,
        time_taken_us: None,
        ttfb_us: None,
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

    /// `fast` must agree with `parse_inner` on every line it accepts: seeded mutations of
    /// real-shaped lines (most of which still take the fast path, many of which do not).
    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let seeds = [
            "180.242.168.157 - - [12/Mar/2024:10:00:00 +0000] \"GET /img/pins/87671d/576140134_75x.webp HTTP/1.1\" 200 59051 \"https://www.example.com/\" \"Mozilla/5.0\"",
            "::1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?a=b%20c HTTP/1.0\" 304 -",
            "10.0.0.1 - - [01/Jan/1999:00:00:60 +1400] \"HEAD / HTTP/2.0\" 200 0 cs=HIT",
            "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a HTTP/1.1\" 200",
        ];
        let mut rng = 0x5eed_u64;
        let mut next = || {
            rng = crate::urls::mix(rng);
            rng
        };
        let (mut fast_lines, mut rounds) = (0, 0);
        for round in 0..60_000 {
            rounds += 1;
            let mut b = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 3) {
                let pos = (next() as usize) % (b.len() + 1);
                let alphabet = b" \"[]\\-:/0123456789HTxP+";
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 4 {
                    0 if pos < b.len() => b[pos] = c,
                    1 => b.insert(pos, c),
                    2 if pos < b.len() => {
                        b.remove(pos);
                    }
                    _ if next() % 4 == 0 => b.truncate(pos),
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&b);
            if let Some(f) = fast(&text) {
                fast_lines += 1;
                assert_eq!(Ok(f), parse_inner(&text), "{text}");
            }
        }
        // the test means something only if both paths ran often
        assert!(
            fast_lines > rounds / 3 && fast_lines < rounds,
            "{fast_lines} of {rounds}"
        );
    }
}
