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
/// The whole run's latency per POP (same format, one interval).
pub const POPS: &str = "pops.hlog";

pub fn tag(target: &str, class: &str, metric: &str, basis: &str) -> String {
    format!("target={target};class={class};metric={metric};basis={basis}")
}

/// A pops.hlog tag (POP names are plain: `PopName` keeps letters, digits, `.`, `_`, `-`).
pub(crate) fn pop_tag(target: &str, pop: &str, class: &str, metric: &str, basis: &str) -> String {
    format!("target={target};pop={pop};class={class};metric={metric};basis={basis}")
}

/// Parses a tag back into its key=value parts.
pub fn parse_tag(tag: &str) -> BTreeMap<&str, &str> {
    tag.split(';').filter_map(|kv| kv.split_once('=')).collect()
}

pub(crate) struct HlogWriter<W: Write> {
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
}

/// One interval histogram read back.
pub struct HlogInterval {
    pub tag: String,
    pub start: Duration,
    pub len: Duration,
    pub hist: Histogram<u64>,
}

/// Streams every interval of a log through `f` (HdrHistogram's own parser and deserializer);
/// `on_base` sees the BaseTime (or StartTime) first. Errors name the entry.
pub(crate) fn for_each_interval(
    bytes: &[u8],
    mut on_base: impl FnMut(Duration),
    mut f: impl FnMut(HlogInterval) -> Result<(), String>,
) -> Result<(), String> {
    let mut de = Deserializer::new();
    let mut raw = Vec::new();
    let mut have_base = false;
    for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
        match entry.map_err(|e| format!("entry {}: {e:?}", n + 1))? {
            LogEntry::BaseTime(t) => {
                have_base = true;
                on_base(t);
            }
            LogEntry::StartTime(t) => {
                if !have_base {
                    on_base(t);
                }
            }
            LogEntry::Interval(iv) => {
                raw.clear();
                base64::engine::general_purpose::STANDARD
                    .decode_vec(iv.encoded_histogram(), &mut raw)
                    .map_err(|e| format!("entry {}: bad base64: {e}", n + 1))?;
                let hist: Histogram<u64> = de
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| format!("entry {}: bad histogram: {e:?}", n + 1))?;
                f(HlogInterval {
                    tag: iv.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    start: iv.start_timestamp(),
                    len: iv.duration(),
                    hist,
                })
                .map_err(|e| format!("entry {}: {e}", n + 1))?;
            }
        }
    }
    Ok(())
}

/// Reads every interval of a log into memory (tests, small logs).
pub fn read_intervals(bytes: &[u8]) -> Result<(Option<Duration>, Vec<HlogInterval>), String> {
    let mut base = None;
    let mut out = Vec::new();
    for_each_interval(
        bytes,
        |b| base = Some(b),
        |iv| {
            out.push(iv);
            Ok(())
        },
    )?;
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

/// A reusable zlib inflater: a new decoder per histogram would allocate and clear its 32 KB
/// window each time, which dominated merging many small interval histograms.
pub(crate) struct Inflater {
    d: flate2::Decompress,
    buf: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            d: flate2::Decompress::new(true),
            buf: Vec::with_capacity(1 << 16),
        }
    }
}

impl Inflater {
    pub(crate) fn inflate(&mut self, comp: &[u8]) -> Result<&[u8], String> {
        self.d.reset(true);
        self.buf.clear();
        loop {
            let before_in = self.d.total_in() as usize;
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            let status = self
                .d
                .decompress_vec(
                    &comp[before_in..],
                    &mut self.buf,
                    flate2::FlushDecompress::Finish,
                )
                .map_err(|e| format!("bad DEFLATE data: {e}"))?;
            match status {
                flate2::Status::StreamEnd => return Ok(&self.buf),
                _ if self.d.total_in() as usize >= comp.len()
                    && self.buf.len() < self.buf.capacity() =>
                {
                    return Err("truncated DEFLATE data".into());
                }
                _ => {}
            }
        }
    }
}

/// One interval of a log, decoded sparsely: only the non-zero (value, count) pairs.
pub struct SparseInterval<'a> {
    pub tag: &'a str,
    pub start: Duration,
    pub len: Duration,
    pub counts: &'a [(u64, u64)],
}

/// The index -> value mapping of an HdrHistogram with these parameters (as the Java and Rust
/// implementations compute it).
struct Layout {
    half_mag: u32,
    half_count: u64,
    unit_mag: u32,
}

impl Layout {
    fn new(low: u64, sigfig: u32) -> Result<Layout, String> {
        if low == 0 || sigfig > 5 {
            return Err(format!(
                "unsupported histogram parameters (lowest {low}, digits {sigfig})"
            ));
        }
        let largest_single = 2 * 10u64.pow(sigfig);
        let count_mag = (largest_single as f64).log2().ceil() as u32;
        let half_mag = count_mag.max(1) - 1;
        Ok(Layout {
            half_mag,
            half_count: 1 << half_mag,
            unit_mag: 63 - low.leading_zeros(),
        })
    }
    fn value_for(&self, index: u64) -> u64 {
        let mut bucket = (index >> self.half_mag) as i64 - 1;
        let mut sub = (index & (self.half_count - 1)) + self.half_count;
        if bucket < 0 {
            sub -= self.half_count;
            bucket = 0;
        }
        sub << (bucket as u32 + self.unit_mag)
    }
}

fn varint(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for k in 0..9 {
        let byte = *b.get(*i).ok_or("truncated histogram payload")?;
        *i += 1;
        if k == 8 {
            // the ninth byte carries all 8 bits (HdrHistogram's LEB128 variant)
            v |= (byte as u64) << 56;
            return Ok(v);
        }
        v |= ((byte & 0x7f) as u64) << (7 * k);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Ok(v)
}

/// Decodes a V2 (optionally DEFLATE-compressed) histogram into non-zero (value, count) pairs,
/// without allocating the full counts array: what a merge of many intervals wants.
pub(crate) fn decode_sparse(
    raw: &[u8],
    scratch: &mut Inflater,
    out: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    out.clear();
    let be32 = |b: &[u8], at: usize| -> Result<u32, String> {
        b.get(at..at + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| "truncated histogram".to_string())
    };
    let be64 = |b: &[u8], at: usize| -> Result<u64, String> {
        b.get(at..at + 8)
            .map(|s| u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
            .ok_or_else(|| "truncated histogram".to_string())
    };
    // the cookie's 0x10 bit is the word size Java and Rust both write; accept either
    let body: &[u8] = match be32(raw, 0)? & 0xffff_ff0f {
        0x1c84_9304 => {
            let n = be32(raw, 4)? as usize;
            let comp = raw.get(8..8 + n).ok_or("truncated compressed histogram")?;
            scratch.inflate(comp)?
        }
        0x1c84_9303 => raw,
        c => return Err(format!("not a V2 histogram (cookie {c:#x})")),
    };
    if be32(body, 0)? & 0xffff_ff0f != 0x1c84_9303 {
        return Err("not a V2 histogram".into());
    }
    let payload_len = be32(body, 4)? as usize;
    let sigfig = be32(body, 12)?;
    let low = be64(body, 16)?;
    let layout = Layout::new(low, sigfig)?;
    let payload = body
        .get(40..40 + payload_len)
        .ok_or("truncated histogram payload")?;
    let mut i = 0usize;
    let mut index = 0u64;
    while i < payload.len() {
        let zz = varint(payload, &mut i)?;
        let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if n < 0 {
            index += n.unsigned_abs();
        } else {
            if n > 0 {
                out.push((layout.value_for(index), n as u64));
            }
            index += 1;
        }
    }
    Ok(())
}

/// Streams every interval of a log, sparsely decoded (see `decode_sparse`).
pub fn for_each_interval_sparse(
    bytes: &[u8],
    mut on_base: impl FnMut(Duration),
    mut f: impl FnMut(SparseInterval) -> Result<(), String>,
) -> Result<(), String> {
    let mut raw = Vec::new();
    let mut scratch = Inflater::default();
    let mut counts = Vec::new();
    let mut have_base = false;
    for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
        match entry.map_err(|e| format!("entry {}: {e:?}", n + 1))? {
            LogEntry::BaseTime(t) => {
                have_base = true;
                on_base(t);
            }
            LogEntry::StartTime(t) => {
                if !have_base {
                    on_base(t);
                }
            }
            LogEntry::Interval(iv) => {
                raw.clear();
                base64::engine::general_purpose::STANDARD
                    .decode_vec(iv.encoded_histogram(), &mut raw)
                    .map_err(|e| format!("entry {}: bad base64: {e}", n + 1))?;
                decode_sparse(&raw, &mut scratch, &mut counts)
                    .map_err(|e| format!("entry {}: {e}", n + 1))?;
                f(SparseInterval {
                    tag: iv.tag().map(|t| t.as_str()).unwrap_or(""),
                    start: iv.start_timestamp(),
                    len: iv.duration(),
                    counts: &counts,
                })
                .map_err(|e| format!("entry {}: {e}", n + 1))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_decoding_equals_the_crates_deserializer() {
        let mut h = crate::measure::new_hist();
        let mut x = 7u64;
        for _ in 0..10_000 {
            x = crate::urls::mix(x);
            h.record(1 + x % 5_000_000).unwrap();
        }
        h.record(3_600_000_000).unwrap();
        h.record_n(1, 17).unwrap();
        let mut raw = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut raw).unwrap();
        let (mut scratch, mut pairs) = (Inflater::default(), Vec::new());
        decode_sparse(&raw, &mut scratch, &mut pairs).unwrap();
        let mut back = crate::measure::new_hist();
        for (v, c) in &pairs {
            back.record_n(*v, *c).unwrap();
        }
        assert_eq!(back, h);
        assert_eq!(pairs.iter().map(|p| p.1).sum::<u64>(), h.len());
        assert!(decode_sparse(&raw[..raw.len() / 2], &mut scratch, &mut pairs).is_err());
    }
}
