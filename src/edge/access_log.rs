//! The edge's access log (`edge --access-log FILE`): CloudFront's standard log layout (W3C,
//! tab-separated, a `#Fields` header, `-` for empty), so that `observe` reads what the edge
//! served exactly as it reads a real CDN's logs. One line a request, written before its
//! response leaves (a response cut later by a fault is logged as sent); written out every
//! second (busy or idle), on `/_edge/stats` and on shutdown. `/_edge/reset` does not touch it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The fields, in order (CloudFront's names; a subset of its standard log's fields).
pub(crate) const FIELDS: &str = "date time x-edge-location sc-bytes cs-method cs(Host) cs-uri-stem sc-status cs-uri-query x-edge-result-type time-taken time-to-first-byte x-edge-detailed-result-type";

/// What one request's line says.
pub(crate) struct Entry<'a> {
    pub at: SystemTime,
    pub pop: &'a str,
    pub bytes: u64,
    pub method: &'a str,
    pub host: &'a str,
    /// path and query, as requested
    pub target: &'a str,
    /// 0: the connection was dropped with no answer (CloudFront's `000`)
    pub status: u16,
    /// `Hit`, `Miss`, `Error` (x-edge-result-type)
    pub result: &'a str,
    /// the result type, or `OriginShieldHit` for an edge miss the shield answered
    pub detailed: &'a str,
    /// from the request's arrival to its response's headers
    pub taken: Duration,
}

pub(crate) struct AccessLog {
    w: Mutex<(BufWriter<File>, Instant)>,
}

/// Bytes outside printable ASCII percent-encoded: a field never holds a tab, a space or a
/// newline. `%` stays: a request target is already percent-encoded, and the log keeps it as
/// requested, so that a list made from the log requests the same URL.
fn encode(s: &str, out: &mut Vec<u8>) {
    if s.is_empty() {
        out.push(b'-');
        return;
    }
    for &b in s.as_bytes() {
        if b.is_ascii_graphic() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

impl AccessLog {
    pub(crate) fn create(path: &Path) -> std::io::Result<AccessLog> {
        let f = File::create(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("--access-log {}: {e}", path.display()))
        })?;
        let mut w = BufWriter::new(f);
        writeln!(w, "#Version: 1.0")?;
        writeln!(w, "#Fields: {FIELDS}")?;
        w.flush()?;
        Ok(AccessLog {
            w: Mutex::new((w, Instant::now())),
        })
    }

    pub(crate) fn write(&self, e: &Entry) {
        let us =
            e.at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
        let stamp = crate::logs::timefmt::to_rfc3339(us);
        let (date, time) = stamp.split_once('T').unwrap_or((&stamp, "00:00:00"));
        let time = time.get(..8).unwrap_or(time);
        let (stem, query) = match e.target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (e.target, ""),
        };
        let mut line = Vec::with_capacity(160);
        line.extend_from_slice(date.as_bytes());
        line.push(b'\t');
        line.extend_from_slice(time.as_bytes());
        for (i, f) in [e.pop, "", e.method, e.host, stem, "", query, e.result]
            .into_iter()
            .enumerate()
        {
            line.push(b'\t');
            match i {
                1 => line.extend_from_slice(e.bytes.to_string().as_bytes()),
                5 => line.extend_from_slice(format!("{:03}", e.status).as_bytes()),
                _ => encode(f, &mut line),
            }
        }
        let secs = format!("{:.3}", e.taken.as_secs_f64());
        for f in [secs.as_str(), secs.as_str(), e.detailed] {
            line.push(b'\t');
            line.extend_from_slice(f.as_bytes());
        }
        line.push(b'\n');
        let mut g = self.w.lock().unwrap_or_else(|p| p.into_inner());
        let _ = g.0.write_all(&line);
        if g.1.elapsed() >= Duration::from_secs(1) {
            let _ = g.0.flush();
            g.1 = Instant::now();
        }
    }

    pub(crate) fn flush(&self) {
        let mut g = self.w.lock().unwrap_or_else(|p| p.into_inner());
        let _ = g.0.flush();
        g.1 = Instant::now();
    }
}
