//! Access logs -> URL list (and timed trace): reads sources in parallel, parses, filters,
//! dedupes by the percent-decoded path while keeping the bytes first seen, counts what was
//! dropped and why. Memory grows with distinct URLs (and with trace rows when a trace is asked
//! for), never with lines.

pub mod filter;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use crate::logs::input::{Blocks, Source};
use crate::logs::json::JsonFields;
use crate::logs::{Format, Line, Parser, detect};
use crate::urls::{UrlEntry, UrlList};
pub use filter::Filters;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Clone, Debug)]
pub struct Options {
    /// None: detect per file
    pub format: Option<Format>,
    pub json: Arc<JsonFields>,
    pub filters: Filters,
    pub drop_query: bool,
    pub top: Option<usize>,
    pub trace: bool,
    pub threads: usize,
    /// how many `file:line` examples to keep per malformed reason
    pub examples: usize,
    pub block_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            json: Arc::new(JsonFields::default()),
            filters: Filters::default(),
            drop_query: false,
            top: None,
            trace: false,
            threads: 2,
            examples: 5,
            block_size: 4 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Malformations {
    pub count: u64,
    /// `file:line: text` of the first few
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    /// lines that were records (not comments or blank)
    pub records: u64,
    pub matched: u64,
    pub filtered: BTreeMap<String, u64>,
    pub malformed: BTreeMap<String, Malformations>,
    /// file -> detected format
    pub formats: BTreeMap<String, String>,
    pub distinct_urls: u64,
}

impl Stats {
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().map(|m| m.count).sum()
    }
    fn merge(&mut self, o: Stats, examples: usize) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.records += o.records;
        self.matched += o.matched;
        for (k, v) in o.filtered {
            *self.filtered.entry(k).or_default() += v;
        }
        for (k, v) in o.malformed {
            let m = self.malformed.entry(k).or_default();
            m.count += v.count;
            for e in v.examples {
                if m.examples.len() < examples {
                    m.examples.push(e);
                }
            }
        }
        self.formats.extend(o.formats);
    }
}

struct Agg {
    key: u128,
    original: Box<str>,
    count: u64,
    bytes_sum: u64,
    bytes_n: u64,
    first: i64,
    last: i64,
}

/// One thread's results. URLs are keyed by the 128-bit XXH3 of their decoded form: the table
/// holds no pointers to chase, and a collision among even a billion URLs has odds of ~1e-20.
#[derive(Default)]
struct Local {
    index: Map<u128, u32>,
    aggs: Vec<Agg>,
    trace: Vec<(i64, u32)>,
    stats: Stats,
    /// filter reason -> count (kept out of `stats` so the hot path does not allocate)
    filtered: Vec<(&'static str, u64)>,
    key: Vec<u8>,
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The comparison key: percent-decoded, so `/a%20b` and `/a b` and `/a%2a` / `/a%2A` meet.
fn decode_into(s: &str, out: &mut Vec<u8>) {
    out.clear();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
}

impl Local {
    fn add(&mut self, target: &str, bytes: Option<u64>, time: Option<i64>, trace: bool) {
        let h = if memchr::memchr(b'%', target.as_bytes()).is_some() {
            let mut key = std::mem::take(&mut self.key);
            decode_into(target, &mut key);
            let h = xxhash_rust::xxh3::xxh3_128(&key);
            self.key = key;
            h
        } else {
            xxhash_rust::xxh3::xxh3_128(target.as_bytes())
        };
        let t = time.unwrap_or(i64::MIN);
        let idx = match self.index.get(&h) {
            Some(&i) => i,
            None => {
                let i = self.aggs.len() as u32;
                self.index.insert(h, i);
                self.aggs.push(Agg {
                    key: h,
                    original: target.into(),
                    count: 0,
                    bytes_sum: 0,
                    bytes_n: 0,
                    first: i64::MAX,
                    last: i64::MIN,
                });
                i
            }
        };
        let a = &mut self.aggs[idx as usize];
        a.count += 1;
        if let Some(b) = bytes {
            a.bytes_sum += b;
            a.bytes_n += 1;
        }
        if time.is_some() {
            // the spelling kept is the earliest one logged (ties: the smallest), whatever
            // order the threads read the blocks in
            if t < a.first || (t == a.first && *target < *a.original) {
                a.original = target.into();
            }
            a.first = a.first.min(t);
            a.last = a.last.max(t);
        }
        if trace && let Some(t) = time {
            self.trace.push((t, idx));
        }
    }

    fn malformed(&mut self, reason: &str, file: &str, line_no: u64, text: &str, examples: usize) {
        let m = self.stats.malformed.entry(reason.to_string()).or_default();
        m.count += 1;
        if m.examples.len() < examples {
            let mut t: String = text.chars().take(160).collect();
            if t.len() < text.len() {
                t.push_str("...");
            }
            m.examples.push(format!("{file}:{line_no}: {t}"));
        }
    }

    /// Parses a block of whole lines.
    fn block(
        &mut self,
        parser: &mut Parser,
        o: &Options,
        file: &str,
        file_no: u64,
        first_line: u64,
        data: &[u8],
    ) {
        let mut line_no = first_line;
        let mut start = 0usize;
        let ends =
            memchr::memchr_iter(b'\n', data).chain((!data.ends_with(b"\n")).then_some(data.len()));
        for end in ends {
            let raw = &data[start..end];
            start = end + 1;
            line_no += 1;
            if raw.is_empty() {
                continue;
            }
            self.stats.lines += 1;
            let text = match std::str::from_utf8(raw) {
                Ok(t) => std::borrow::Cow::Borrowed(t),
                Err(_) => String::from_utf8_lossy(raw),
            };
            match parser.parse(&text) {
                Line::Skip => {}
                Line::Malformed(m) => {
                    self.stats.records += 1;
                    self.malformed(m.as_str(), file, line_no, &text, o.examples);
                }
                Line::Record(r) => {
                    self.stats.records += 1;
                    if let Some(reason) = o.filters.check(&r, (file_no << 40) ^ line_no) {
                        match self.filtered.iter_mut().find(|(k, _)| *k == reason) {
                            Some((_, n)) => *n += 1,
                            None => self.filtered.push((reason, 1)),
                        }
                        continue;
                    }
                    self.stats.matched += 1;
                    let target = if o.drop_query {
                        filter::path_only(&r.target)
                    } else {
                        &r.target
                    };
                    self.add(target, r.bytes, r.time, o.trace);
                }
            }
        }
    }
}

/// The result of an extraction.
pub struct Extracted {
    pub list: UrlList,
    /// (unix microseconds, path), time-ordered; empty unless asked for
    pub trace: Vec<(i64, String)>,
    pub stats: Stats,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Input(#[from] crate::logs::input::InputError),
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

struct Job {
    parser: Parser,
    file: Arc<str>,
    file_no: u64,
    first_line: u64,
    data: Vec<u8>,
}

/// Live counters for a progress display.
#[derive(Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
}

pub fn extract(
    sources: &[Source],
    o: &Options,
    progress: &Progress,
) -> Result<Extracted, ExtractError> {
    let threads = o.threads.max(1);
    let readers = threads.min(sources.len()).max(1);
    let next_file = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<Job>(threads * 2);
    let rx = Mutex::new(rx);
    let results: Mutex<Vec<Local>> = Mutex::new(Vec::new());
    let error: Mutex<Option<ExtractError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = &rx;
            let results = &results;
            s.spawn(move || {
                let mut local = Local::default();
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => break,
                    };
                    let Ok(mut job) = job else { break };
                    local.block(
                        &mut job.parser,
                        o,
                        &job.file,
                        job.file_no,
                        job.first_line,
                        &job.data,
                    );
                }
                if let Ok(mut r) = results.lock() {
                    r.push(local);
                }
            });
        }
        for _ in 0..readers {
            let tx = tx.clone();
            let (next_file, results, error) = (&next_file, &results, &error);
            s.spawn(move || {
                let mut local = Local::default();
                loop {
                    let i = next_file.fetch_add(1, Ordering::Relaxed);
                    let Some(src) = sources.get(i) else { break };
                    if let Err(e) = read_source(src, i as u64, o, &tx, &mut local, progress)
                        && let Ok(mut slot) = error.lock()
                    {
                        slot.get_or_insert(e);
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.push(local);
                }
            });
        }
        drop(tx);
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        return Err(e);
    }
    let locals = results.into_inner().unwrap_or_default();
    Ok(merge(locals, o))
}

fn read_source(
    src: &Source,
    file_no: u64,
    o: &Options,
    tx: &mpsc::SyncSender<Job>,
    local: &mut Local,
    progress: &Progress,
) -> Result<(), ExtractError> {
    let name: Arc<str> = src.name().into();
    let r = crate::logs::input::open(src)?;
    let mut blocks = Blocks::new(r, o.block_size);
    let read_err = |source| ExtractError::Read {
        file: name.to_string(),
        source,
    };
    let mut first_line = 0u64;
    let mut parser: Option<Parser> = None;
    local.stats.files += 1;
    while let Some(data) = blocks.next_block().map_err(read_err)? {
        let lines =
            memchr::memchr_iter(b'\n', &data).count() as u64 + u64::from(!data.ends_with(b"\n"));
        progress
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        progress.lines.fetch_add(lines, Ordering::Relaxed);
        local.stats.bytes += data.len() as u64;
        let p = match &mut parser {
            Some(p) => p,
            None => {
                let sample = String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]);
                let format = o.format.or_else(|| detect(&sample));
                match format {
                    Some(f) => {
                        local
                            .stats
                            .formats
                            .insert(name.to_string(), f.as_str().to_string());
                        parser.insert(Parser::new(f, &o.json))
                    }
                    None => {
                        // not a log we know: every line counts as malformed, with examples
                        local
                            .stats
                            .formats
                            .insert(name.to_string(), "unrecognised".into());
                        let mut n = first_line;
                        for raw in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                            n += 1;
                            local.stats.lines += 1;
                            local.stats.records += 1;
                            local.malformed(
                                "unrecognised format",
                                &name,
                                n,
                                &String::from_utf8_lossy(raw),
                                o.examples,
                            );
                        }
                        first_line += lines;
                        continue;
                    }
                }
            }
        };
        if matches!(p, Parser::W3c(_)) {
            // stateful (#Fields): parse here, in order
            local.block(p, o, &name, file_no, first_line, &data);
        } else {
            let job = Job {
                parser: p.clone(),
                file: name.clone(),
                file_no,
                first_line,
                data,
            };
            if tx.send(job).is_err() {
                break;
            }
        }
        first_line += lines;
    }
    Ok(())
}

fn merge(locals: Vec<Local>, o: &Options) -> Extracted {
    let mut stats = Stats::default();
    let mut index: Map<u128, usize> = Map::default();
    let mut aggs: Vec<Agg> = Vec::new();
    let mut trace: Vec<(i64, usize)> = Vec::new();
    for mut l in locals {
        for (reason, n) in l.filtered.drain(..) {
            *l.stats.filtered.entry(reason.to_string()).or_default() += n;
        }
        stats.merge(std::mem::take(&mut l.stats), o.examples);
        // local index -> global index
        let mut remap = vec![0usize; l.aggs.len()];
        let mut keys: Vec<(u128, u32)> = l.index.drain().collect();
        keys.sort_by_key(|(_, i)| *i);
        for ((key, li), a) in keys.into_iter().zip(l.aggs) {
            let gi = match index.get(&key) {
                Some(&g) => {
                    let g_a = &mut aggs[g];
                    g_a.count += a.count;
                    g_a.bytes_sum += a.bytes_sum;
                    g_a.bytes_n += a.bytes_n;
                    if a.first < g_a.first || (a.first == g_a.first && a.original < g_a.original) {
                        g_a.first = a.first;
                        g_a.original = a.original;
                    }
                    g_a.last = g_a.last.max(a.last);
                    g
                }
                None => {
                    index.insert(key, aggs.len());
                    aggs.push(a);
                    aggs.len() - 1
                }
            };
            remap[li as usize] = gi;
        }
        trace.extend(l.trace.into_iter().map(|(t, i)| (t, remap[i as usize])));
    }
    stats.distinct_urls = aggs.len() as u64;
    // most requested first; ties by first appearance, then by key: deterministic whatever the
    // thread interleaving, and sorted on inline data (no string compares, no pointer chasing)
    let mut sorted: Vec<(std::cmp::Reverse<u64>, i64, u128, u32)> = aggs
        .iter()
        .enumerate()
        .map(|(i, a)| (std::cmp::Reverse(a.count), a.first, a.key, i as u32))
        .collect();
    sorted.sort_unstable();
    let mut order: Vec<usize> = sorted.into_iter().map(|(_, _, _, i)| i as usize).collect();
    if let Some(n) = o.top {
        order.truncate(n);
    }
    let ts = |t: i64| (t != i64::MAX && t != i64::MIN).then(|| crate::logs::timefmt::to_rfc3339(t));
    let list = UrlList {
        entries: order
            .iter()
            .map(|&i| {
                let a = &aggs[i];
                UrlEntry {
                    path: a.original.to_string(),
                    count: a.count,
                    bytes: (a.bytes_n > 0)
                        .then(|| (a.bytes_sum as f64 / a.bytes_n as f64).round() as u64),
                    first_seen: ts(a.first),
                    last_seen: ts(a.last),
                }
            })
            .collect(),
    };
    let mut out_trace = Vec::new();
    if o.trace {
        let keep: Option<Vec<bool>> = o.top.map(|_| {
            let mut k = vec![false; aggs.len()];
            for &i in &order {
                k[i] = true;
            }
            k
        });
        trace.retain(|(_, i)| keep.as_ref().is_none_or(|k| k[*i]));
        trace.sort_by_key(|(t, _)| *t);
        out_trace = trace
            .into_iter()
            .map(|(t, i)| (t, aggs[i].original.to_string()))
            .collect();
    }
    Extracted {
        list,
        trace: out_trace,
        stats,
    }
}

/// Writes a trace as CSV: `timestamp,path` (RFC 3339 UTC with microseconds).
pub fn write_trace<W: std::io::Write>(trace: &[(i64, String)], w: W) -> std::io::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(["timestamp", "path"])?;
    for (t, p) in trace {
        let secs = t.div_euclid(1_000_000);
        let micros = t.rem_euclid(1_000_000);
        let base = crate::logs::timefmt::to_rfc3339(secs * 1_000_000);
        let stamp = format!("{}.{micros:06}Z", base.trim_end_matches('Z'));
        wr.write_record([stamp.as_str(), p.as_str()])?;
    }
    wr.flush()
}

/// Reads a trace: rows of (unix microseconds, path), in file order.
pub fn read_trace<R: Read>(r: R, name: &str) -> Result<Vec<(i64, String)>, String> {
    let mut rdr = csv::Reader::from_reader(r);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{name}:{line}: {e}"))?;
        let (Some(ts), Some(path)) = (rec.get(0), rec.get(1)) else {
            return Err(format!("{name}:{line}: expected timestamp,path"));
        };
        let t = crate::logs::timefmt::iso(ts)
            .or_else(|| {
                ts.parse::<f64>()
                    .ok()
                    .and_then(crate::logs::timefmt::unix_any)
            })
            .ok_or_else(|| format!("{name}:{line}: bad timestamp {ts:?}"))?;
        let path = crate::urls::normalise_path(path)
            .ok_or_else(|| format!("{name}:{line}: not a path: {path:?}"))?;
        out.push((t, path));
    }
    if out.is_empty() {
        return Err(format!("{name}: the trace has no rows"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_key() {
        let mut k = Vec::new();
        decode_into("/a%20b%2A%2a%zz%", &mut k);
        assert_eq!(k, b"/a b**%zz%");
    }

    #[test]
    fn trace_round_trip() {
        let t = vec![
            (1_477_399_774_123_456, "/a.jpg?x=1".to_string()),
            (1_477_399_775_000_000, "/b,c.png".into()),
        ];
        let mut buf = Vec::new();
        write_trace(&t, &mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf).contains("2016-10-25T12:49:34.123456Z,/a.jpg?x=1"));
        assert_eq!(read_trace(buf.as_slice(), "t").unwrap(), t);
    }
}
