//! AWS Application Load Balancer access logs: space-separated, some fields quoted; new fields
//! are appended over time, so extra trailing fields are ignored.

use std::borrow::Cow;

use super::{
    CacheStatus, Line, LogRecord, Malformed, parse_bytes, parse_status, request_line,
    split_absolute, timefmt,
};

/// Splits on spaces, keeping `"quoted fields"` (with `\"` escapes) whole, quotes removed.
pub fn fields(line: &str, max: usize) -> Result<Vec<&str>, Malformed> {
    let mut out = Vec::with_capacity(max.min(32));
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < max {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            loop {
                if j >= b.len() {
                    return Err(Malformed::UnterminatedQuote);
                }
                match b[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            out.push(&line[start..j]);
            i = j + 1;
        } else if b[i] == b'[' {
            let end = line[i..].find(']').ok_or(Malformed::BadTime)? + i;
            out.push(&line[i + 1..end]);
            i = end + 1;
        } else {
            let end = line[i..].find(' ').map(|e| e + i).unwrap_or(b.len());
            out.push(&line[i..end]);
            i = end;
        }
    }
    Ok(out)
}

pub fn parse(line: &str) -> Line<'_> {
    parse_inner(line).into()
}

fn parse_inner(line: &str) -> Result<LogRecord<'_>, Malformed> {
    let f = fields(line, 14)?;
    if f.len() < 13 {
        return Err(Malformed::TooFewFields);
    }
    let time = timefmt::iso(f[1]).ok_or(Malformed::BadTime)?;
    // elb_status_code: what the client got ("-" when the connection closed first)
    let status = if f[8] == "-" { 0 } else { parse_status(f[8])? };
    let (method, target) = request_line(f[12]).ok_or(Malformed::BadRequestLine)?;
    let (host, path) = split_absolute(target);
    // the request's host keeps its port (":80"); drop it
    let host = host.map(|h| h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h));
    Ok(LogRecord {
        method: Cow::Borrowed(method),
        host: host.map(Cow::Borrowed),
        target: Cow::Borrowed(path),
        status,
        bytes: parse_bytes(f[11])?,
        time: Some(time),
        cache: CacheStatus::Value(None),
        pop: None,
        // the three processing times (s), -1 when the request did not reach a target
        time_taken_us: f[5..8]
            .iter()
            .try_fold(0u64, |a, t| Some(a.saturating_add(super::seconds_us(t)?))),
        ttfb_us: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_example() {
        let l = "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 2018-07-02T22:22:48.364000Z \"forward,redirect\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" extra1 extra2";
        let Line::Record(r) = parse(l) else { panic!() };
        assert_eq!(
            (r.method.as_ref(), r.target.as_ref(), r.status, r.bytes),
            ("GET", "/", 200, Some(366))
        );
        assert_eq!(r.host.as_deref(), Some("www.example.com"));
        assert_eq!(r.time, timefmt::iso("2018-07-02T22:23:00.186641Z"));
        let l2 = l.replace(
            "http://www.example.com:80/ ",
            "https://img.example.com:443/a/b.jpg?x=1 ",
        );
        let Line::Record(r) = parse(&l2) else {
            panic!()
        };
        assert_eq!(r.target.as_ref(), "/a/b.jpg?x=1");
        // no target answered: "-1" times, "-" status for a dropped connection
        let l3 = l.replace(" 0.000 0.001 0.000 200 200 ", " -1 -1 -1 - - ");
        let Line::Record(r) = parse(&l3) else {
            panic!()
        };
        assert_eq!(r.status, 0);
        assert!(matches!(
            parse("http 2018-07-02T22:23:00Z app/x"),
            Line::Malformed(Malformed::TooFewFields)
        ));
    }
}
