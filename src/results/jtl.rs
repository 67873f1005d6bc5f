//! samples.jtl: one row per request in Apache JMeter's default CSV result columns, so JMeter
//! tooling (its listeners, dashboards, jtl parsers) keeps working. The engine's per-thread
//! recorder fills a `Row` per request into its batch; the results writer writes the batches.

use std::io::Write;

use crate::cache_status::CacheClass;
use crate::measure::ErrorKind;

/// One request as JMeter records it.
pub struct Row<'a> {
    /// wall-clock send time, ms since the epoch
    pub sent_ms: u128,
    pub elapsed_ms: u128,
    /// time to the response headers (JMeter's Latency), 0 without a response
    pub latency_ms: u128,
    pub target: &'a str,
    pub class: CacheClass,
    /// 0: no response
    pub status: u16,
    pub error: Option<ErrorKind>,
    pub bytes: u64,
    pub thread: usize,
    pub worker: usize,
    pub threads: usize,
    /// the URL requested (carries no userinfo: credentials are a header)
    pub url: &'a str,
    /// JMeter's Connect: the time to open the connection (TCP and TLS), 0 when one was reused
    pub connect_ms: u128,
}

impl Row<'_> {
    /// Appends the row in `HEADER`'s columns.
    pub fn write(&self, buf: &mut Vec<u8>) {
        let code = if self.status == 0 {
            String::new()
        } else {
            self.status.to_string()
        };
        let msg = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("");
        let failure = self.error.map(|e| e.as_str()).unwrap_or("");
        let _ = writeln!(
            buf,
            "{},{},{}/{},{code},{msg},edgeload {}-{},bin,{},{failure},{},0,{},{},{},{},0,{}",
            self.sent_ms,
            self.elapsed_ms,
            self.target,
            self.class.as_str(),
            self.thread + 1,
            self.worker + 1,
            self.error.is_none(),
            self.bytes,
            self.threads,
            self.threads,
            csv_field(self.url),
            self.latency_ms,
            self.connect_ms,
        );
    }
}

/// JMeter's default `jmeter.save.saveservice` CSV columns, in JMeter's order.
pub const HEADER: &str = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect";

/// Quotes a CSV field when it needs it (RFC 4180).
pub(crate) fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
