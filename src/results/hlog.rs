//! latency.hlog: HdrHistogram's standard V2 interval log (base64 of V2+DEFLATE histograms), one
//! tag per series: `target=NAME;class=CLASS;metric=total|ttfb;basis=corrected|service`.
//! Values are microseconds; `Interval_Max` is in milliseconds (divisor 1000), so HdrHistogram's
//! own HistogramLogProcessor reads it with `-outputValueUnitRatio 1000`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

pub const NAME: &str = "latency.hlog";

pub fn tag(target: &str, class: &str, metric: &str, basis: &str) -> String {
    format!("target={target};class={class};metric={metric};basis={basis}")
}

/// Parses a tag back into its key=value parts.
pub fn parse_tag(tag: &str) -> BTreeMap<&str, &str> {
    tag.split(';').filter_map(|kv| kv.split_once('=')).collect()
}

pub struct HlogWriter<W: Write> {
    w: W,
    ser: V2DeflateSerializer,
    buf: Vec<u8>,
    text: String,
}

impl<W: Write> HlogWriter<W> {
    pub fn new(mut w: W, start: SystemTime, run_id: &str, region: &str) -> std::io::Result<Self> {
        let secs = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        writeln!(
            w,
            "#edgeload {} run_id={run_id} region={region}",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(w, "#values in microseconds; Interval_Max in milliseconds")?;
        writeln!(w, "#[StartTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(w, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(
            w,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter {
            w,
            ser: V2DeflateSerializer::new(),
            buf: Vec::new(),
            text: String::new(),
        })
    }

    /// `start` is the interval's offset from BaseTime.
    pub fn write(
        &mut self,
        tag: &str,
        start: Duration,
        len: Duration,
        h: &Histogram<u64>,
    ) -> std::io::Result<()> {
        self.buf.clear();
        self.text.clear();
        self.ser
            .serialize(h, &mut self.buf)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        base64::engine::general_purpose::STANDARD.encode_string(&self.buf, &mut self.text);
        writeln!(
            self.w,
            "Tag={tag},{:.3},{:.3},{:.3},{}",
            start.as_secs_f64(),
            len.as_secs_f64(),
            h.max() as f64 / 1000.0,
            self.text
        )
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// One interval histogram read back.
pub struct HlogInterval {
    pub tag: String,
    pub start: Duration,
    pub len: Duration,
    pub hist: Histogram<u64>,
}

/// Reads every interval of a log (HdrHistogram's own parser and deserializer).
pub fn read_intervals(bytes: &[u8]) -> Result<(Option<Duration>, Vec<HlogInterval>), String> {
    let mut de = Deserializer::new();
    let mut out = Vec::new();
    let mut base = None;
    for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
        match entry.map_err(|e| format!("latency.hlog entry {}: {e:?}", n + 1))? {
            LogEntry::BaseTime(t) => base = Some(t),
            LogEntry::StartTime(t) => {
                base.get_or_insert(t);
            }
            LogEntry::Interval(iv) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(iv.encoded_histogram())
                    .map_err(|e| format!("latency.hlog entry {}: bad base64: {e}", n + 1))?;
                let hist: Histogram<u64> = de
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| format!("latency.hlog entry {}: bad histogram: {e:?}", n + 1))?;
                out.push(HlogInterval {
                    tag: iv.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    start: iv.start_timestamp(),
                    len: iv.duration(),
                    hist,
                });
            }
        }
    }
    Ok((base, out))
}

/// Sums every tag's intervals: the whole run's histogram per series.
pub fn read_totals(bytes: &[u8]) -> Result<BTreeMap<String, Histogram<u64>>, String> {
    let (_, ivs) = read_intervals(bytes)?;
    let mut m: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for iv in ivs {
        match m.get_mut(&iv.tag) {
            Some(h) => h.add(&iv.hist).map_err(|e| format!("{}: {e:?}", iv.tag))?,
            None => {
                m.insert(iv.tag, iv.hist);
            }
        }
    }
    Ok(m)
}
