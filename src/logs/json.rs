//! NDJSON access logs: Cloudflare Logpush `http_requests` by default, or any JSON log (Fastly
//! custom formats) with `--json-fields url=...,status=...,method=...,time=...,host=...`.

use std::borrow::Cow;

use serde_json::Value;

use super::{CacheStatus, Line, LogRecord, Malformed, split_absolute, timefmt};

/// Which JSON keys hold what. Each role may list alternatives, tried in order.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonFields {
    pub url: Vec<String>,
    pub method: Vec<String>,
    pub status: Vec<String>,
    pub time: Vec<String>,
    pub host: Vec<String>,
    pub bytes: Vec<String>,
    pub cache: Vec<String>,
    pub pop: Vec<String>,
    /// the server's time for the request: seconds, or ms / us when the key ends in `Ms`/`_ms`
    /// or `Us`/`_us`
    pub time_taken: Vec<String>,
    /// time to first byte, in the same units
    pub ttfb: Vec<String>,
}

fn v(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

impl Default for JsonFields {
    fn default() -> Self {
        JsonFields {
            url: v(&["ClientRequestURI", "url", "uri", "request_uri", "path"]),
            method: v(&["ClientRequestMethod", "method", "request_method"]),
            status: v(&["EdgeResponseStatus", "status", "status_code"]),
            time: v(&["EdgeStartTimestamp", "timestamp", "time", "@timestamp"]),
            host: v(&["ClientRequestHost", "host"]),
            bytes: v(&[
                "EdgeResponseBytes",
                "bytes",
                "body_bytes_sent",
                "resp_body_size",
            ]),
            cache: v(&["CacheCacheStatus", "cache_status", "fastly_cache"]),
            pop: v(&["EdgeColoCode", "pop", "fastly_pop", "server_datacenter"]),
            time_taken: v(&["time_taken", "request_time", "time_elapsed_us"]),
            ttfb: v(&["EdgeTimeToFirstByteMs", "ttfb_ms", "time_to_first_byte"]),
        }
    }
}

impl JsonFields {
    /// `url=req_url,status=code`: the named roles use exactly these keys.
    pub fn parse(spec: &str) -> Result<JsonFields, String> {
        let mut f = JsonFields::default();
        for kv in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (role, key) = kv
                .split_once('=')
                .ok_or_else(|| format!("--json-fields: {kv:?} is not ROLE=KEY"))?;
            let slot = match role.trim() {
                "url" => &mut f.url,
                "method" => &mut f.method,
                "status" => &mut f.status,
                "time" => &mut f.time,
                "host" => &mut f.host,
                "bytes" => &mut f.bytes,
                "cache" => &mut f.cache,
                "pop" => &mut f.pop,
                "time_taken" => &mut f.time_taken,
                "ttfb" => &mut f.ttfb,
                r => {
                    return Err(format!(
                        "--json-fields: unknown role {r:?} (url, method, status, time, host, bytes, cache, pop, time_taken, ttfb)"
                    ));
                }
            };
            *slot = vec![key.trim().to_string()];
        }
        Ok(f)
    }
}

fn pick<'v>(o: &'v serde_json::Map<String, Value>, names: &[String]) -> Option<&'v Value> {
    names.iter().find_map(|n| o.get(n)).filter(|v| !v.is_null())
}

/// A duration field in us: its key's suffix names the unit (`Ms`/`_ms`, `Us`/`_us`), else
/// seconds. A number or a numeric string; negative or unreadable values are left out.
fn duration_us(o: &serde_json::Map<String, Value>, names: &[String]) -> Option<u64> {
    let (key, v) = names
        .iter()
        .find_map(|n| o.get(n).filter(|v| !v.is_null()).map(|v| (n, v)))?;
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let per_unit = if key.ends_with("Ms") || key.ends_with("_ms") {
        1e3
    } else if key.ends_with("Us") || key.ends_with("_us") {
        1.0
    } else {
        1e6
    };
    (x.is_finite() && x >= 0.0).then(|| (x * per_unit).round().min(u64::MAX as f64) as u64)
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn parse<'a>(f: &JsonFields, line: &'a str) -> Line<'a> {
    parse_inner(f, line).into()
}

fn parse_inner<'a>(f: &JsonFields, line: &'a str) -> Result<LogRecord<'a>, Malformed> {
    let v: Value = serde_json::from_str(line).map_err(|_| Malformed::BadJson)?;
    let o = v.as_object().ok_or(Malformed::BadJson)?;
    let url = pick(o, &f.url)
        .and_then(Value::as_str)
        .ok_or(Malformed::MissingField)?;
    let (abs_host, path) = split_absolute(url);
    if !path.starts_with('/') {
        return Err(Malformed::BadRequestLine);
    }
    let status = match pick(o, &f.status) {
        Some(s) => u16::try_from(as_u64(s).ok_or(Malformed::BadStatus)?)
            .map_err(|_| Malformed::BadStatus)?,
        None => return Err(Malformed::MissingField),
    };
    let time = match pick(o, &f.time) {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_f64()
                .and_then(timefmt::unix_any)
                .ok_or(Malformed::BadTime)?,
        ),
        Some(Value::String(s)) => Some(
            timefmt::iso(s)
                .or_else(|| s.parse::<f64>().ok().and_then(timefmt::unix_any))
                .ok_or(Malformed::BadTime)?,
        ),
        Some(_) => return Err(Malformed::BadTime),
    };
    let host = pick(o, &f.host)
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(abs_host.map(str::to_string));
    Ok(LogRecord {
        method: Cow::Owned(
            pick(o, &f.method)
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_string(),
        ),
        host: host.map(Cow::Owned),
        target: Cow::Owned(path.to_string()),
        status,
        bytes: pick(o, &f.bytes).and_then(as_u64),
        time,
        cache: CacheStatus::Value(
            pick(o, &f.cache)
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_string())),
        ),
        pop: pick(o, &f.pop)
            .and_then(Value::as_str)
            .map(|s| Cow::Owned(s.to_string())),
        time_taken_us: duration_us(o, &f.time_taken),
        ttfb_us: duration_us(o, &f.ttfb),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(f: &JsonFields, l: &'a str) -> LogRecord<'a> {
        match parse(f, l) {
            Line::Record(r) => r,
            Line::Malformed(m) => panic!("{l}: {m:?}"),
            Line::Skip => panic!(),
        }
    }

    #[test]
    fn cloudflare_each_timestamp_style() {
        let f = JsonFields::default();
        let want = timefmt::iso("2022-05-25T13:25:26Z");
        for ts in [
            "1653485126000000000",
            "1653485126",
            "\"2022-05-25T13:25:26Z\"",
            "1653485126000",
            "\"1653485126\"",
        ] {
            let l = format!(
                "{{\"ClientRequestHost\":\"www.example.com\",\"ClientRequestMethod\":\"GET\",\"ClientRequestURI\":\"/img/a.png?v=2\",\"EdgeResponseStatus\":200,\"CacheCacheStatus\":\"hit\",\"EdgeColoCode\":\"FRA\",\"EdgeStartTimestamp\":{ts}}}"
            );
            let r = rec(&f, &l);
            assert_eq!(r.time, want, "{ts}");
            assert_eq!(
                (
                    r.target.as_ref(),
                    r.status,
                    r.host.as_deref(),
                    r.cache.get()
                ),
                ("/img/a.png?v=2", 200, Some("www.example.com"), Some("hit"))
            );
        }
    }

    #[test]
    fn custom_fields() {
        let f = JsonFields::parse("url=req.url,status=resp_status").unwrap();
        let r = rec(
            &f,
            r#"{"req.url":"https://img.example.com/x.jpg","resp_status":"304","time":"2024-03-12T10:00:00Z"}"#,
        );
        assert_eq!(
            (r.target.as_ref(), r.status, r.host.as_deref()),
            ("/x.jpg", 304, Some("img.example.com"))
        );
        assert!(JsonFields::parse("color=red").is_err());
        assert!(matches!(
            parse(&f, "{\"req.url\":\"/a\""),
            Line::Malformed(Malformed::BadJson)
        ));
        assert!(matches!(
            parse(&f, "{\"resp_status\":200}"),
            Line::Malformed(Malformed::MissingField)
        ));
    }
}
