//! Amazon S3 server access logs. The quoted Request-URI is preferred over Key (Key is
//! double-encoded for most operations); the HostHeader field, when present, is the host.

use std::borrow::Cow;

use super::alb::fields;
use super::{
    CacheStatus, Line, LogRecord, Malformed, parse_bytes, parse_status, request_line,
    split_absolute, timefmt,
};

pub fn parse(line: &str) -> Line<'_> {
    parse_inner(line).into()
}

fn parse_inner(line: &str) -> Result<LogRecord<'_>, Malformed> {
    let f = fields(line, 24)?;
    if f.len() < 13 {
        return Err(Malformed::TooFewFields);
    }
    let time = timefmt::clf(f[2]).ok_or(Malformed::BadTime)?;
    let (method, target) = request_line(f[8]).ok_or(Malformed::BadRequestLine)?;
    let (abs, path) = split_absolute(target);
    let status = parse_status(f[9])?;
    let host = f
        .get(22)
        .copied()
        .filter(|h| *h != "-" && !h.is_empty())
        .or(abs);
    Ok(LogRecord {
        method: Cow::Borrowed(method),
        host: host.map(Cow::Borrowed),
        target: Cow::Borrowed(path),
        status,
        bytes: parse_bytes(f[11])?,
        time: Some(time),
        cache: CacheStatus::Value(None),
        pop: None,
        // TotalTime: ms in flight from the server's view (from the first byte received)
        time_taken_us: (f.get(13))
            .and_then(|t| super::digits(t))
            .map(|ms| ms.saturating_mul(1000)),
        ttfb_us: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_shaped_line() {
        let l = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.OBJECT photos/cat%2Bdog.jpg \"GET /awsexamplebucket1/photos/cat+dog.jpg?versionId=1 HTTP/1.1\" 200 - 2662992 3462992 70 10 \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -";
        let Line::Record(r) = parse(l) else { panic!() };
        assert_eq!(
            r.target.as_ref(),
            "/awsexamplebucket1/photos/cat+dog.jpg?versionId=1"
        );
        assert_eq!((r.status, r.bytes), (200, Some(2662992)));
        assert_eq!(
            r.host.as_deref(),
            Some("awsexamplebucket1.s3.us-west-1.amazonaws.com")
        );
        assert_eq!(r.time, timefmt::iso("2019-02-06T00:00:38Z"));
    }
}
