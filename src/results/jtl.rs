//! samples.jtl: one row per request in Apache JMeter's default CSV result columns, so JMeter
//! tooling (its listeners, dashboards, jtl parsers) keeps working. Rows are formatted by the
//! engine's per-thread recorder and written here in batches.

/// JMeter's default `jmeter.save.saveservice` CSV columns, in JMeter's order.
pub const HEADER: &str = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect";

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
