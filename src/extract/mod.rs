//! Access logs -> URL list (and timed trace): reads sources in parallel, parses, filters,
//! dedupes by the percent-decoded path while keeping the bytes first seen, counts what was
//! dropped and why. Memory grows with distinct URLs (and with trace rows when a trace is asked
//! for), never with lines.

mod bounded;
pub mod filter;
pub mod observe;
mod spill;
mod table;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use crate::logs::input::{Blocks, Source};
use crate::logs::json::JsonFields;
use crate::logs::{Format, Line, Malformed, Parser, detect};
use crate::urls::{UrlEntry, UrlList};
pub use filter::Filters;
use table::{SHARDS, Shard, Slot, Table, prefetch};

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
    /// plain files are split into pieces of about this size; streams are read in blocks of it
    pub block_size: usize,
    /// bytes the distinct URLs and trace rows may hold; past it, sorted runs spill to disk
    pub max_memory: usize,
    /// where runs spill (a hidden folder is made in it); None: the system's temporary folder
    pub spill_dir: Option<std::path::PathBuf>,
    /// `observe`: tally cache classes per interval as well, and count each URL's misses (its
    /// `count`) and requests (`requests`) instead of its requests
    pub observe: Option<observe::ObserveOptions>,
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
            max_memory: usize::MAX,
            spill_dir: None,
            observe: None,
        }
    }
}

/// The default memory budget: a quarter of the machine's memory, at most 1 GiB.
pub fn default_max_memory() -> usize {
    let quarter = crate::sys::physical_memory().map_or(usize::MAX, |m| m / 4);
    quarter.min(1 << 30)
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Malformations {
    pub count: u64,
    /// `file:line: text` of the first few, in file and line order
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
    /// bytes written to disk past the memory budget (0: it all fit)
    pub spilled_bytes: u64,
}

impl Stats {
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().map(|m| m.count).sum()
    }
}

/// The spelling kept is the earliest one logged (ties, and untimed logs: the smallest), so the
/// result does not depend on which thread read which piece first.
/// Returns the spelling not kept.
fn absorb(
    into: &mut Slot,
    into_original: &mut Box<str>,
    o: Slot,
    o_original: Box<str>,
) -> Box<str> {
    into.count += o.count;
    into.bytes_sum += o.bytes_sum;
    into.bytes_n += o.bytes_n;
    into.last = into.last.max(o.last);
    into.requests = into.requests.saturating_add(o.requests);
    if o.first < into.first || (o.first == into.first && o_original < *into_original) {
        into.first = o.first;
        std::mem::replace(into_original, o_original)
    } else {
        o_original
    }
}

/// A kept record waiting, with its slot prefetched, for its batch to be counted.
struct Pending<'d> {
    key: u128,
    target: Cow<'d, str>,
    bytes: Option<u64>,
    time: Option<i64>,
    /// where the line is: file and byte offset, increasing in the log's order
    pos: u64,
    /// `observe`: the edge missed (miss or shield hit: what warming the edge can save)
    miss: bool,
}

impl Pending<'_> {
    fn into_owned(self) -> Pending<'static> {
        Pending {
            key: self.key,
            target: Cow::Owned(self.target.into_owned()),
            bytes: self.bytes,
            time: self.time,
            pos: self.pos,
            miss: self.miss,
        }
    }
}

/// Lines parsed ahead of their table update: enough to hide a memory latency.
const BATCH: usize = 16;

/// Bytes of a piece checked for UTF-8 and parsed together (fits in L2).
const WINDOW: usize = 64 << 10;

/// A malformed line kept as an example; its line number is relative to its piece until the
/// pieces' line counts are known.
struct Example {
    reason: &'static str,
    file: u32,
    piece: u32,
    line: u64,
    text: String,
}

/// One thread's results. Counters are small vectors of static reasons so the hot path does not
/// allocate.
#[derive(Default)]
struct Local {
    table: Table,
    /// (time, position in the log, key): sorted by time, then in the log's order
    trace: Vec<(i64, u64, u128)>,
    lines: u64,
    records: u64,
    matched: u64,
    bytes: u64,
    filtered: Vec<(&'static str, u64)>,
    malformed: Vec<(&'static str, u64)>,
    examples: Vec<Example>,
    /// (file, piece) -> lines in it
    piece_lines: Vec<((u32, u32), u64)>,
    formats: Vec<(u32, &'static str)>,
    key: Vec<u8>,
    /// the table and trace rows written to disk when they outgrew the budget
    runs: bounded::Parts,
    /// `observe`: the per-interval tally
    tally: Option<observe::Tally>,
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

fn bump(v: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    match v.iter_mut().find(|(k, _)| *k == reason) {
        Some((_, n)) => *n += 1,
        None => v.push((reason, 1)),
    }
}

/// Where a piece of input is in its file.
#[derive(Clone, Copy)]
struct At {
    file: u32,
    piece: u32,
    /// byte offset of the piece in the (decompressed) file
    offset: u64,
}

const UNRECOGNISED: &str = "unrecognised format";

fn parse<'x>(p: Option<&mut Parser>, text: &'x str) -> Line<'x> {
    match p {
        Some(p) => p.parse(text),
        None => Line::Malformed(Malformed::TooFewFields),
    }
}

impl Local {
    /// Memory held by the distinct URLs and trace rows.
    fn held(&self) -> usize {
        self.table.bytes() + self.trace.len() * std::mem::size_of::<(i64, u64, u128)>()
    }

    /// Writes the table (in key order) and the trace rows (by key, then time) as runs, and
    /// starts afresh.
    fn spill(&mut self, spill: &spill::Spill) -> std::io::Result<()> {
        self.runs
            .write_table(spill, std::mem::take(&mut self.table))?;
        self.runs
            .write_trace(spill, std::mem::take(&mut self.trace))
    }

    fn key(&mut self, target: &str) -> u128 {
        if memchr::memchr(b'%', target.as_bytes()).is_some() {
            let mut key = std::mem::take(&mut self.key);
            decode_into(target, &mut key);
            let h = xxhash_rust::xxh3::xxh3_128(&key);
            self.key = key;
            h
        } else {
            xxhash_rust::xxh3::xxh3_128(target.as_bytes())
        }
    }

    fn count(&mut self, batch: &mut Vec<Pending>, trace: bool, observe: bool) {
        for p in batch.drain(..) {
            let target: &str = &p.target;
            let (s, original) = self.table.slot(p.key, target);
            if observe {
                s.requests = s.requests.saturating_add(1);
            }
            if !observe || p.miss {
                s.count += 1;
                if let Some(b) = p.bytes {
                    s.bytes_sum += b;
                    s.bytes_n += 1;
                }
            }
            let t = p.time.unwrap_or(i64::MAX);
            if t < s.first || (t == s.first && *target < **original) {
                s.first = t;
                *original = target.into();
            }
            if let Some(t) = p.time {
                s.last = s.last.max(t);
                if trace {
                    self.trace.push((t, p.pos, p.key));
                }
            }
        }
    }

    /// One parsed line: counted as malformed or filtered, or returned to be counted.
    #[allow(clippy::too_many_arguments)]
    fn line<'x>(
        &mut self,
        parsed: Line<'x>,
        unrecognised: bool,
        text: &str,
        o: &Options,
        at: At,
        from: usize,
        line: u64,
        shown: &mut Vec<(&'static str, u64)>,
    ) -> Option<Pending<'x>> {
        match parsed {
            Line::Skip => None,
            Line::Malformed(m) => {
                self.records += 1;
                let reason = if unrecognised {
                    UNRECOGNISED
                } else {
                    m.as_str()
                };
                bump(&mut self.malformed, reason);
                let n = match shown.iter().position(|(k, _)| *k == reason) {
                    Some(i) => i,
                    None => {
                        shown.push((reason, 0));
                        shown.len() - 1
                    }
                };
                if (shown[n].1 as usize) < o.examples {
                    shown[n].1 += 1;
                    let mut t: String = text.chars().take(160).collect();
                    if t.len() < text.len() {
                        t.push_str("...");
                    }
                    self.examples.push(Example {
                        reason,
                        file: at.file,
                        piece: at.piece,
                        line,
                        text: t,
                    });
                }
                None
            }
            Line::Record(r) => {
                self.records += 1;
                // sampling is keyed by file and byte offset: stable whatever the split
                let n = (u64::from(at.file) << 40) ^ (at.offset + from as u64);
                if let Some(reason) = o.filters.check(&r, n) {
                    bump(&mut self.filtered, reason);
                    return None;
                }
                let mut miss = false;
                if let Some(oo) = &o.observe {
                    let tally = self
                        .tally
                        .get_or_insert_with(|| observe::Tally::new(oo.clone()));
                    match tally.add(&r) {
                        Some(c) => {
                            miss = matches!(
                                c,
                                crate::cache_status::CacheClass::Miss
                                    | crate::cache_status::CacheClass::ShieldHit
                            )
                        }
                        None => {
                            bump(&mut self.filtered, "no timestamp (or not in 1970..9000)");
                            return None;
                        }
                    }
                }
                // `run` refuses a list holding a path that could leave a target's base
                if crate::urls::path_refusal(&r.target).is_some() {
                    let reason = match o.observe {
                        Some(_) => "unsafe path (counted, not in misses.csv)",
                        None => "unsafe path",
                    };
                    bump(&mut self.filtered, reason);
                    return None;
                }
                self.matched += 1;
                let target = match r.target {
                    t if !o.drop_query => t,
                    Cow::Borrowed(t) => Cow::Borrowed(filter::path_only(t)),
                    Cow::Owned(t) => Cow::Owned(filter::path_only(&t).to_string()),
                };
                let key = self.key(&target);
                self.table.prefetch(key);
                Some(Pending {
                    key,
                    target,
                    bytes: r.bytes,
                    time: r.time,
                    pos: n,
                    miss,
                })
            }
        }
    }

    /// Parses a piece of whole lines; `parser` None: a file in no format we know, every line
    /// is malformed.
    fn block(
        &mut self,
        mut parser: Option<&mut Parser>,
        o: &Options,
        at: At,
        data: &[u8],
        progress: &Progress,
    ) {
        let mut line = 0u64;
        // examples kept per reason in this piece: the first `examples` of each
        let mut shown: Vec<(&'static str, u64)> = Vec::new();
        let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
        let unrecognised = parser.is_none();
        // windows of whole lines small enough to stay in cache between the UTF-8 check, the
        // newline scan and the parse; a window that is not UTF-8 is checked line by line
        let mut ws = 0usize;
        while ws < data.len() {
            let we = match data.get(ws + WINDOW..) {
                Some(rest) => {
                    memchr::memchr(b'\n', rest).map_or(data.len(), |i| ws + WINDOW + i + 1)
                }
                None => data.len(),
            };
            let win = &data[ws..we];
            // simdutf8: the check reads every byte of every log; it is several times std's speed
            let whole = simdutf8::basic::from_utf8(win).ok();
            let mut start = 0usize;
            let ends =
                memchr::memchr_iter(b'\n', win).chain((!win.ends_with(b"\n")).then_some(win.len()));
            for end in ends {
                let (from, raw) = (start, &win[start..end]);
                start = end + 1;
                line += 1;
                if raw.is_empty() {
                    continue;
                }
                self.lines += 1;
                let off = ws + from;
                let pending = match whole {
                    Some(w) => {
                        let text = &w[from..end];
                        let parsed = parse(parser.as_deref_mut(), text);
                        self.line(parsed, unrecognised, text, o, at, off, line, &mut shown)
                    }
                    None => {
                        let text = String::from_utf8_lossy(raw);
                        let parsed = parse(parser.as_deref_mut(), &text);
                        self.line(parsed, unrecognised, &text, o, at, off, line, &mut shown)
                            .map(Pending::into_owned)
                    }
                };
                if let Some(p) = pending {
                    batch.push(p);
                    if batch.len() == BATCH {
                        self.count(&mut batch, o.trace, o.observe.is_some());
                    }
                }
            }
            ws = we;
        }
        self.count(&mut batch, o.trace, o.observe.is_some());
        self.piece_lines.push(((at.file, at.piece), line));
        progress.lines.fetch_add(line, Ordering::Relaxed);
        progress
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
    }
}

/// One distinct URL of the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// as first logged
    pub path: Box<str>,
    pub count: u64,
    /// mean of the logged sizes
    pub bytes: Option<u64>,
    /// unix microseconds; MAX / MIN when the log had no times
    pub first: i64,
    pub last: i64,
    /// `observe`: every request of the URL (`count` is its misses); 0 for `extract`
    pub requests: u32,
    key: u128,
}

impl Row {
    fn new(s: Slot, path: Box<str>) -> Row {
        Row {
            path,
            count: s.count,
            bytes: (s.bytes_n > 0).then(|| (s.bytes_sum as f64 / s.bytes_n as f64).round() as u64),
            first: s.first,
            last: s.last,
            requests: s.requests,
            key: s.key,
        }
    }

    /// most requested first; ties by first appearance, then by key: deterministic whatever the
    /// thread interleaving, and on inline data (no string compares)
    fn order(&self) -> (std::cmp::Reverse<u64>, i64, u128) {
        (std::cmp::Reverse(self.count), self.first, self.key)
    }

    fn time(t: i64) -> Option<i64> {
        (t != i64::MAX && t != i64::MIN).then_some(t)
    }

    /// This row as a URL list entry.
    pub fn entry(&self) -> UrlEntry {
        let ts = |t| Row::time(t).map(crate::logs::timefmt::to_rfc3339);
        UrlEntry {
            path: self.path.to_string(),
            count: self.count,
            bytes: self.bytes,
            first_seen: ts(self.first),
            last_seen: ts(self.last),
        }
    }

    /// The row as `UrlList::write_csv` writes it (a test holds the two to the same bytes).
    fn push_csv(&self, out: &mut Vec<u8>, stamp: &mut [crate::logs::timefmt::Stamper; 2]) {
        let p = self.path.as_bytes();
        if memchr::memchr3(b',', b'"', b'\n', p).is_some() || memchr::memchr(b'\r', p).is_some() {
            out.push(b'"');
            for &c in p {
                if c == b'"' {
                    out.push(b'"');
                }
                out.push(c);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(p);
        }
        let mut n = itoa::Buffer::new();
        out.push(b',');
        out.extend_from_slice(n.format(self.count).as_bytes());
        out.push(b',');
        if let Some(b) = self.bytes {
            out.extend_from_slice(n.format(b).as_bytes());
        }
        for (t, st) in [self.first, self.last].into_iter().zip(stamp) {
            out.push(b',');
            if let Some(t) = Row::time(t) {
                st.push(t, out);
            }
        }
        out.push(b'\n');
    }
}

/// The result of an extraction.
pub struct Extracted {
    /// most requested first; empty when the list went to disk (`spilled`, without `--top`)
    pub rows: Vec<Row>,
    /// (unix microseconds, path), time-ordered; empty unless asked for, or when spilled
    pub trace: Vec<(i64, String)>,
    pub stats: Stats,
    /// spellings merged away, kept to be freed with the result
    _spare: Vec<Vec<Box<str>>>,
    /// past the memory budget: the rows and trace on disk, written from there
    spilled: Option<bounded::Spilled>,
    /// `observe`: every thread's tally, merged (None when no record was counted)
    pub tally: Option<observe::Tally>,
}

impl Extracted {
    /// The list (from memory: not for a list that went to disk).
    pub fn list(&self) -> UrlList {
        UrlList {
            entries: self.rows.iter().map(Row::entry).collect(),
        }
    }

    /// The list went to disk: it outgrew `--max-memory`.
    pub fn spilled(&self) -> bool {
        self.spilled.is_some()
    }

    /// URLs in the list.
    pub fn url_count(&self) -> u64 {
        match self.spilled.as_ref().and_then(|s| s.rows.as_ref()) {
            Some((_, n)) => *n,
            None => self.rows.len() as u64,
        }
    }

    /// Rows in the trace.
    pub fn trace_count(&self) -> u64 {
        match &self.spilled {
            Some(s) => s.trace.1,
            None => self.trace.len() as u64,
        }
    }

    /// Removes the spill folder; the rest is left to the process's exit (a quarter of a million
    /// URLs need not be freed one by one on the way out).
    pub fn leak(mut self) {
        drop(self.spilled.take());
        std::mem::forget(self);
    }

    /// The rows, read back from disk, of a list that went there (None: in memory).
    fn disk_rows(
        &self,
    ) -> std::io::Result<Option<impl Iterator<Item = std::io::Result<Row>> + '_>> {
        Ok(self
            .spilled
            .as_ref()
            .map(|s| s.rows())
            .transpose()?
            .flatten())
    }

    /// Calls `f` with every row in the list's order (from disk for a list that went there);
    /// `f` returns false to stop.
    pub fn each_row(&self, mut f: impl FnMut(&Row) -> bool) -> std::io::Result<()> {
        if let Some(rows) = self.disk_rows()? {
            for r in rows {
                if !f(&r?) {
                    break;
                }
            }
            return Ok(());
        }
        for r in &self.rows {
            if !f(r) {
                break;
            }
        }
        Ok(())
    }

    /// Writes the URL list CSV (the format `run` reads, see `UrlList`), formatting rows on
    /// `threads` threads.
    pub fn write_csv<W: std::io::Write>(&self, mut w: W, threads: usize) -> std::io::Result<()> {
        w.write_all(crate::urls::CSV_HEADER.as_bytes())?;
        w.write_all(b"\n")?;
        if let Some(rows) = self.disk_rows()? {
            let (mut out, mut stamp) = (Vec::with_capacity(1 << 20), Default::default());
            for r in rows {
                r?.push_csv(&mut out, &mut stamp);
                if out.len() >= 1 << 20 {
                    w.write_all(&out)?;
                    out.clear();
                }
            }
            w.write_all(&out)?;
            return w.flush();
        }
        let per = self.rows.len().div_ceil(threads.max(1)).max(1);
        let bufs: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .rows
                .chunks(per)
                .map(|rows| {
                    s.spawn(move || {
                        let mut out = Vec::with_capacity(rows.len() * 96);
                        let mut stamp = Default::default();
                        for (i, r) in rows.iter().enumerate() {
                            // the paths are scattered over the heap: fetch ahead
                            if let Some(ahead) = rows.get(i + 8) {
                                prefetch(ahead.path.as_ptr());
                            }
                            r.push_csv(&mut out, &mut stamp);
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for b in bufs {
            w.write_all(&b)?;
        }
        w.flush()
    }
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
    #[error(
        "past --max-memory, writing sorted runs to {dir} failed: {reason} (--spill-dir chooses another folder)"
    )]
    Spill { dir: String, reason: String },
    #[error(
        "observe: the counts per interval outgrew their share of --max-memory ({max_mb} MB): choose a longer --interval, fewer targets (--split none), or a larger --max-memory"
    )]
    Tally { max_mb: usize },
}

/// A block read from a stream (gzip, zstd, stdin), sent to the workers.
struct Job {
    parser: Option<Parser>,
    at: At,
    data: Vec<u8>,
}

/// A piece of a plain file: the lines that start in `range`. Read with positioned reads into
/// the worker's buffer, not memory-mapped: a log truncated while it is read (copytruncate
/// rotation) gives short reads here, where a mapping would kill the process with SIGBUS.
struct Piece<'a> {
    parser: Option<Parser>,
    file: u32,
    index: u32,
    handle: &'a std::fs::File,
    range: std::ops::Range<u64>,
    /// the file's length when it was opened
    len: u64,
}

/// The longest line a plain file's piece reads past its end: a longer one (a crash dump, a
/// file of NULs) is cut there and counted as one (malformed) line.
const MAX_LINE: u64 = 1 << 20;

/// Reads up to `n` bytes at `off` into `buf[at..]` and returns how many came: fewer at the end
/// of the file (or of a file that shrank meanwhile). `buf` only grows (zeroed once), so a
/// worker's buffer is not cleared again for every piece.
fn read_at(
    f: &std::fs::File,
    off: u64,
    n: u64,
    buf: &mut Vec<u8>,
    at: usize,
) -> std::io::Result<usize> {
    let want = at + n as usize;
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut got = 0usize;
    while at + got < want {
        let dst = &mut buf[at + got..want];
        match crate::sys::read_at(f, dst, off + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Piece<'_> {
    fn parse(
        &self,
        local: &mut Local,
        o: &Options,
        progress: &Progress,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let (start, end) = (self.range.start, self.range.end);
        // from the byte before the piece: whether a line starts at `start` shows there
        let from = start.saturating_sub(1);
        let mut len = read_at(self.handle, from, end - from, buf, 0)?;
        // the first line that starts in the piece; none (a piece inside a long line): empty
        let begin = if start == 0 {
            Some(0)
        } else {
            memchr::memchr(b'\n', &buf[..len])
                .map(|i| i + 1)
                .filter(|&b| b < len)
        };
        let Some(begin) = begin else {
            let at = At {
                file: self.file,
                piece: self.index,
                offset: start,
            };
            local.block(None, o, at, &[], progress);
            return Ok(());
        };
        // the last line that starts in the piece runs to its newline (or MAX_LINE past the
        // piece: a longer line is cut there, and no later piece starts a line inside it)
        let limit = end.saturating_add(MAX_LINE).min(self.len);
        while len > 0 && buf[len - 1] != b'\n' && from + (len as u64) < limit {
            let want = (limit - from - len as u64).min(64 << 10);
            let got = read_at(self.handle, from + len as u64, want, buf, len)?;
            if got == 0 {
                break; // the file shrank
            }
            match memchr::memchr(b'\n', &buf[len..len + got]) {
                Some(i) => len += i + 1,
                None => len += got,
            }
        }
        let at = At {
            file: self.file,
            piece: self.index,
            offset: from + begin as u64,
        };
        let mut parser = self.parser.clone();
        local.block(parser.as_mut(), o, at, &buf[begin..len], progress);
        #[cfg(test)]
        if let Some(hook) = &progress.after_piece {
            hook();
        }
        Ok(())
    }
}

/// Live counters for a progress display.
#[derive(Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
    /// tests: runs after each piece of a plain file
    #[cfg(test)]
    after_piece: Option<Box<dyn Fn() + Sync>>,
}

fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

fn detect_format(o: &Options, data: &[u8]) -> Option<Format> {
    o.format.or_else(|| {
        let sample = String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]);
        detect(&sample)
    })
}

/// Splits a plain file into pieces of about `size` bytes (each takes the lines that start in it).
fn split<'a>(
    handle: &'a std::fs::File,
    len: u64,
    size: u64,
    file: u32,
    parser: Option<Parser>,
) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < len {
        let end = start.saturating_add(size).min(len);
        out.push(Piece {
            parser: parser.clone(),
            file,
            index: out.len() as u32,
            handle,
            range: start..end,
            len,
        });
        start = end;
    }
    out
}

/// Extracts from every source. Plain files are split into pieces that the worker threads take
/// from a shared counter and read with positioned reads: no reader thread. Compressed files,
/// stdin and W3C logs (stateful: `#Fields`, parsed in order) are read by reader threads into
/// blocks sent to the same workers.
pub fn extract(
    sources: &[Source],
    o: &Options,
    progress: &Progress,
) -> Result<Extracted, ExtractError> {
    let threads = o.threads.max(1);
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let mut plain: Vec<(u32, std::fs::File, u64, Option<Parser>)> = Vec::new();
    let mut streamed: Vec<u32> = Vec::new();
    let mut stats = Stats {
        files: sources.len() as u64,
        ..Stats::default()
    };
    for (i, src) in sources.iter().enumerate() {
        let Source::File(p) = src else {
            streamed.push(i as u32);
            continue;
        };
        let io = |source| crate::logs::input::InputError::Io {
            path: names[i].clone(),
            source,
        };
        let f = std::fs::File::open(p).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len == 0 {
            continue;
        }
        let mut head = Vec::new();
        let got = read_at(&f, 0, len.min(64 << 10), &mut head, 0).map_err(io)?;
        head.truncate(got);
        if is_compressed(&head) {
            streamed.push(i as u32);
            continue;
        }
        let format = detect_format(o, &head);
        let parser = format.map(|f| Parser::new(f, &o.json));
        if matches!(parser, Some(Parser::W3c(_))) {
            streamed.push(i as u32);
            continue;
        }
        stats.bytes += len;
        stats.formats.insert(
            names[i].clone(),
            format.map_or(UNRECOGNISED, Format::as_str).to_string(),
        );
        plain.push((i as u32, f, len, parser));
    }
    let mut pieces: Vec<Piece> = Vec::new();
    for (file, f, len, parser) in &plain {
        pieces.extend(split(
            f,
            *len,
            o.block_size.max(1) as u64,
            *file,
            parser.clone(),
        ));
    }
    // objects over the network wait on their transfers: more of them at once
    let remote = streamed
        .iter()
        .any(|&i| matches!(sources[i as usize], Source::Remote(_)));
    let readers = (if remote { threads * 4 } else { threads }).min(streamed.len());
    // `observe`: a quarter for the tallies, half for the URL tables
    let (tables, tallies) = match o.observe {
        Some(_) => (o.max_memory / 2, o.max_memory / 4),
        None => (o.max_memory / 4 * 3, 0),
    };
    let budget = Budget {
        // a quarter is left for what is not counted: read buffers, allocator slack; a reader
        // holds a table only for W3C logs (the others go to the parse threads); at least an
        // empty table's 1 MiB, so that a thread with nothing in it does not spill
        share: (tables / (threads + readers.min(threads))).max(1 << 20),
        tally: Mutex::new(None),
        tally_share: (tallies / 4 / (threads + readers.min(threads))).max(1 << 20),
        tally_max: tallies.max(1 << 20),
        parts: threads,
        dir: o.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
        spill: OnceLock::new(),
        failed: AtomicBool::new(false),
    };
    let next_piece = AtomicUsize::new(0);
    let next_stream = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<Job>(threads * 2);
    let rx = Mutex::new(rx);
    let results: Mutex<Vec<Local>> = Mutex::new(Vec::new());
    let error: Mutex<Option<ExtractError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (rx, results, pieces, next_piece) = (&rx, &results, &pieces, &next_piece);
            let (error, names, budget) = (&error, &names, &budget);
            s.spawn(move || {
                let mut local = Local::default();
                let mut buf = Vec::new();
                while let Some(p) = pieces.get(next_piece.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(source) = p.parse(&mut local, o, progress, &mut buf)
                        && let Ok(mut slot) = error.lock()
                    {
                        slot.get_or_insert(ExtractError::Read {
                            file: names[p.file as usize].clone(),
                            source,
                        });
                    }
                    if budget.check(&mut local, error).is_err() {
                        break;
                    }
                }
                drop(buf);
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => break,
                    };
                    let Ok(mut job) = job else { break };
                    // after a failed spill the blocks are drained unread (readers must not block)
                    if !budget.failed.load(Ordering::Relaxed) {
                        local.block(job.parser.as_mut(), o, job.at, &job.data, progress);
                        let _ = budget.check(&mut local, error);
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.push(local);
                }
            });
        }
        for _ in 0..readers {
            let tx = tx.clone();
            let (next_stream, results, error, streamed, names, budget) =
                (&next_stream, &results, &error, &streamed, &names, &budget);
            s.spawn(move || {
                let mut local = Local::default();
                while let Some(&file) = streamed.get(next_stream.fetch_add(1, Ordering::Relaxed)) {
                    if budget.failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = &names[file as usize];
                    if let Err(e) = read_stream(
                        &sources[file as usize],
                        name,
                        file,
                        o,
                        &tx,
                        &mut local,
                        progress,
                        budget,
                    ) && let Ok(mut slot) = error.lock()
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
    // the logs are read: their files are closed before the merge opens its runs
    drop(pieces);
    drop(plain);
    let locals = results.into_inner().unwrap_or_default();
    merge(locals, stats, &names, o, budget)
}

/// The memory budget the threads share: each holds its share of distinct URLs and trace rows,
/// then writes them to disk (the folder made when first needed).
struct Budget {
    share: usize,
    /// key ranges merged in parallel at the end
    parts: usize,
    dir: std::path::PathBuf,
    spill: OnceLock<Result<spill::Spill, String>>,
    /// a spill failed: the threads stop reading
    failed: AtomicBool,
    /// `observe`: the threads' tallies, merged here when one outgrows `tally_share`; past
    /// `tally_max` the observation stops
    tally: Mutex<Option<observe::Tally>>,
    tally_share: usize,
    tally_max: usize,
}

impl Budget {
    fn spill(&self) -> Result<&spill::Spill, ExtractError> {
        self.spill
            .get_or_init(|| spill::Spill::new(&self.dir, self.parts).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|reason| ExtractError::Spill {
                dir: self.dir.display().to_string(),
                reason: reason.clone(),
            })
    }

    fn spill_all(&self, local: &mut Local) -> Result<(), ExtractError> {
        let s = self.spill()?;
        local.spill(s).map_err(|e| ExtractError::Spill {
            dir: self.dir.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Merges a thread's tally into the shared one when it outgrew its share; an error past
    /// the tallies' budget.
    fn flush_tally(&self, local: &mut Local) -> Result<(), ExtractError> {
        if local
            .tally
            .as_ref()
            .is_none_or(|t| t.approx_held() <= self.tally_share)
        {
            return Ok(());
        }
        let Some(t) = local.tally.take() else {
            return Ok(());
        };
        let mut g = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        let all = match g.as_mut() {
            Some(all) => {
                all.merge(t);
                all
            }
            None => g.insert(t),
        };
        // the running estimate only grows (merged entries are counted twice): counted again
        // when it says the budget is past
        if all.approx_held() > self.tally_max && all.recount() > self.tally_max {
            self.failed.store(true, Ordering::Relaxed);
            return Err(ExtractError::Tally {
                max_mb: self.tally_max >> 20,
            });
        }
        Ok(())
    }

    /// Spills `local` when it holds more than its share; a failure is kept in `error`.
    fn check(&self, local: &mut Local, error: &Mutex<Option<ExtractError>>) -> Result<(), ()> {
        if let Err(e) = self.flush_tally(local) {
            self.failed.store(true, Ordering::Relaxed);
            if let Ok(mut slot) = error.lock() {
                slot.get_or_insert(e);
            }
            return Err(());
        }
        if local.held() <= self.share {
            return Ok(());
        }
        let r = self.spill_all(local);
        crate::sys::trim_heap();
        r.map_err(|e| {
            self.failed.store(true, Ordering::Relaxed);
            if let Ok(mut slot) = error.lock() {
                slot.get_or_insert(e);
            }
        })
    }
}

/// Reads a compressed file or stdin in blocks of whole lines and sends them to the workers
/// (W3C is parsed here, in order).
#[allow(clippy::too_many_arguments)]
fn read_stream(
    src: &Source,
    name: &str,
    file: u32,
    o: &Options,
    tx: &mpsc::SyncSender<Job>,
    local: &mut Local,
    progress: &Progress,
    budget: &Budget,
) -> Result<(), ExtractError> {
    let r = crate::logs::input::open(src)?;
    let mut blocks = Blocks::new(r, o.block_size);
    let read_err = |source| ExtractError::Read {
        file: name.to_string(),
        source,
    };
    let mut parser: Option<Option<Parser>> = None;
    let (mut piece, mut offset) = (0u32, 0u64);
    while let Some(data) = blocks.next_block().map_err(read_err)? {
        if budget.failed.load(Ordering::Relaxed) {
            break; // a spill failed: the extraction stops
        }
        local.bytes += data.len() as u64;
        let p = parser.get_or_insert_with(|| {
            let format = detect_format(o, &data);
            local
                .formats
                .push((file, format.map_or(UNRECOGNISED, Format::as_str)));
            format.map(|f| Parser::new(f, &o.json))
        });
        let at = At {
            file,
            piece,
            offset,
        };
        piece += 1;
        offset += data.len() as u64;
        if let Some(p @ Parser::W3c(_)) = p {
            // stateful: parsed here, in order (and counted in the progress here)
            local.block(Some(p), o, at, &data, progress);
            // a failure stops every thread (`check` does the same for the parse threads)
            let stop = |e: ExtractError| {
                budget.failed.store(true, Ordering::Relaxed);
                e
            };
            budget.flush_tally(local).map_err(stop)?;
            if local.held() > budget.share {
                budget.spill_all(local).map_err(stop)?;
            }
            continue;
        }
        let job = Job {
            parser: p.clone(),
            at,
            data,
        };
        if tx.send(job).is_err() {
            break;
        }
    }
    Ok(())
}

fn merge(
    locals: Vec<Local>,
    mut stats: Stats,
    names: &[String],
    o: &Options,
    budget: Budget,
) -> Result<Extracted, ExtractError> {
    // where each piece starts, in lines, once every piece has been counted
    let mut pieces: Vec<((u32, u32), u64)> = locals
        .iter()
        .flat_map(|l| l.piece_lines.iter().copied())
        .collect();
    pieces.sort_unstable();
    let mut first_line: HashMap<(u32, u32), u64> = HashMap::with_capacity(pieces.len());
    let mut run = (u32::MAX, 0u64);
    for ((file, piece), lines) in pieces {
        if run.0 != file {
            run = (file, 0);
        }
        first_line.insert((file, piece), run.1);
        run.1 += lines;
    }
    let mut examples: Vec<(u32, u64, &'static str, String)> = Vec::new();
    let mut tables: Vec<Table> = Vec::with_capacity(locals.len());
    let mut trace: Vec<(i64, u64, u128)> = Vec::new();
    let mut runs = bounded::Parts::default();
    let mut tally: Option<observe::Tally> = budget
        .tally
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    for l in locals {
        runs.extend(l.runs);
        stats.lines += l.lines;
        stats.records += l.records;
        stats.matched += l.matched;
        stats.bytes += l.bytes;
        for (k, n) in l.filtered {
            *stats.filtered.entry(k.to_string()).or_default() += n;
        }
        for (k, n) in l.malformed {
            stats.malformed.entry(k.to_string()).or_default().count += n;
        }
        for (f, fmt) in l.formats {
            stats
                .formats
                .insert(names[f as usize].clone(), fmt.to_string());
        }
        for e in l.examples {
            let line = first_line.get(&(e.file, e.piece)).copied().unwrap_or(0) + e.line;
            examples.push((e.file, line, e.reason, e.text));
        }
        tables.push(l.table);
        trace.extend(l.trace);
        if let Some(t) = l.tally {
            match &mut tally {
                Some(a) => a.merge(t),
                None => tally = Some(t),
            }
        }
    }
    examples.sort_unstable();
    for (file, line, reason, text) in examples {
        let m = stats.malformed.entry(reason.to_string()).or_default();
        if m.examples.len() < o.examples {
            m.examples
                .push(format!("{}:{line}: {text}", names[file as usize]));
        }
    }
    // what the in-memory result would hold at its peak: the tables, the rows made of them, the
    // trace rows and their spellings
    let entries: usize = tables.iter().map(Table::len).sum();
    let table_bytes: usize = tables.iter().map(Table::bytes).sum();
    let path = table_bytes.saturating_sub(entries * 64) / entries.max(1);
    let trace_row = std::mem::size_of::<(i64, u64, u128)>()
        + if o.trace {
            std::mem::size_of::<(i64, String)>() + path
        } else {
            0
        };
    let estimate = table_bytes + entries * std::mem::size_of::<Row>() + trace.len() * trace_row;
    if !runs.is_empty() || estimate > o.max_memory {
        let failed = |e: std::io::Error| ExtractError::Spill {
            dir: budget.dir.display().to_string(),
            reason: e.to_string(),
        };
        let spill = match budget.spill.into_inner() {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(failed(std::io::Error::other(e))),
            None => spill::Spill::new(&budget.dir, budget.parts).map_err(failed)?,
        };
        for t in tables {
            runs.write_table(&spill, t).map_err(failed)?;
        }
        runs.write_trace(&spill, trace).map_err(failed)?;
        crate::sys::trim_heap();
        let (rows, distinct, spilled) =
            bounded::finish(spill, runs, o.top, o.trace, o.max_memory / 2).map_err(failed)?;
        stats.distinct_urls = distinct;
        stats.spilled_bytes = spilled.spill.written.load(Ordering::Relaxed);
        return Ok(Extracted {
            rows,
            trace: Vec::new(),
            stats,
            _spare: Vec::new(),
            spilled: Some(spilled),
            tally,
        });
    }
    let (mut rows, spare) = merge_tables(tables, o.threads.max(1));
    stats.distinct_urls = rows.len() as u64;
    if let Some(n) = o.top {
        rows.truncate(n);
    }
    let mut out_trace = Vec::new();
    if o.trace {
        let index: HashMap<u128, usize> =
            rows.iter().enumerate().map(|(i, r)| (r.key, i)).collect();
        trace.retain(|(_, _, k)| index.contains_key(&(*k).max(1)));
        // by time, and within a timestamp in the log's order (the order users sent them)
        trace.sort_unstable();
        out_trace = trace
            .into_iter()
            .map(|(t, _, k)| (t, rows[index[&k.max(1)]].path.to_string()))
            .collect();
    }
    Ok(Extracted {
        rows,
        trace: out_trace,
        stats,
        _spare: spare,
        spilled: None,
        tally,
    })
}

/// Merges the threads' tables shard by shard on `threads` threads, each shard's rows sorted
/// there, then merges the sorted shards (keys are unique, so the order is total).
fn merge_tables(tables: Vec<Table>, threads: usize) -> (Vec<Row>, Vec<Vec<Box<str>>>) {
    let mut parts: Vec<Vec<Shard>> = (0..SHARDS).map(|_| Vec::new()).collect();
    for t in tables {
        for (i, shard) in t.shards.into_iter().enumerate() {
            parts[i].push(shard);
        }
    }
    let queue = Mutex::new(parts);
    let runs: Mutex<Vec<Vec<Row>>> = Mutex::new(Vec::new());
    let spare: Mutex<Vec<Vec<Box<str>>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let Some(parts) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let (mut run, lost) = merge_shard(parts);
                    run.sort_unstable_by_key(Row::order);
                    if let Ok(mut r) = runs.lock() {
                        r.push(run);
                    }
                    if let Ok(mut s) = spare.lock() {
                        s.push(lost);
                    }
                }
            });
        }
    });
    let rows = merge_runs_split(runs.into_inner().unwrap_or_default(), threads);
    (rows, spare.into_inner().unwrap_or_default())
}

/// `merge_runs` in two halves on two threads: the runs are cut at the median of the largest
/// one (shards by hash share their distribution, so that is about the median of all), the
/// lower parts merged here and the upper ones on another thread.
fn merge_runs_split(mut runs: Vec<Vec<Row>>, threads: usize) -> Vec<Row> {
    let Some(big) = runs.iter().max_by_key(|r| r.len()) else {
        return Vec::new();
    };
    if threads < 2 || big.len() < 4096 {
        return merge_runs(runs);
    }
    let cut = big[big.len() / 2].order();
    let upper: Vec<Vec<Row>> = runs
        .iter_mut()
        .map(|r| {
            let at = r.partition_point(|x| x.order() < cut);
            r.split_off(at)
        })
        .collect();
    let (mut lower, upper) = std::thread::scope(|s| {
        let h = s.spawn(|| merge_runs(upper));
        let lower = merge_runs(runs);
        (
            lower,
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    lower.extend(upper);
    lower
}

/// One sorted list from sorted runs (a heap of the runs' heads).
fn merge_runs(runs: Vec<Vec<Row>>) -> Vec<Row> {
    use std::cmp::Reverse;
    let mut out = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    let mut runs: Vec<std::iter::Peekable<std::vec::IntoIter<Row>>> =
        runs.into_iter().map(|r| r.into_iter().peekable()).collect();
    let mut heads = std::collections::BinaryHeap::with_capacity(runs.len());
    for (i, r) in runs.iter_mut().enumerate() {
        if let Some(row) = r.peek() {
            heads.push(Reverse((row.order(), i)));
        }
    }
    while let Some(Reverse((_, i))) = heads.pop() {
        if let Some(row) = runs[i].next() {
            out.push(row);
        }
        if let Some(row) = runs[i].peek() {
            heads.push(Reverse((row.order(), i)));
        }
    }
    out
}

/// The shard's rows, and the spellings that lost (freed with the result: one by one here,
/// they cost the merge a third of its time in the allocator).
fn merge_shard(mut parts: Vec<Shard>) -> (Vec<Row>, Vec<Box<str>>) {
    // the largest part absorbs the others
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let mut parts = parts.into_iter();
    let mut base = parts.next().unwrap_or_default();
    let mut batch: Vec<(Slot, Box<str>)> = Vec::with_capacity(BATCH);
    let mut spare = Vec::new();
    for p in parts {
        spare.reserve(p.len());
        let mut entries = p.into_entries();
        loop {
            // as when counting lines: prefetch a batch's slots before touching them
            batch.extend(entries.by_ref().take(BATCH));
            if batch.is_empty() {
                break;
            }
            for (s, _) in &batch {
                base.prefetch(s.key);
            }
            for (slot, original) in batch.drain(..) {
                spare.extend(merge_entry(&mut base, slot, original));
            }
        }
    }
    let rows = base
        .into_entries()
        .map(|(s, path)| Row::new(s, path))
        .collect();
    (rows, spare)
}

/// Adds one entry of another table to `base`; returns the spelling that lost, if any.
fn merge_entry(base: &mut Shard, slot: Slot, original: Box<str>) -> Option<Box<str>> {
    let mut new = Some(original);
    let (into, into_original) = base.slot_with(slot.key, || new.take().unwrap_or_default());
    match new {
        // new here: the slot as it is
        None => {
            *into = Slot {
                original: into.original,
                ..slot
            };
            None
        }
        Some(original) => Some(absorb(into, into_original, slot, original)),
    }
}

impl Extracted {
    /// Writes the trace as CSV (see `write_trace`).
    pub fn write_trace<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        match &self.spilled {
            Some(s) => trace_csv(s.trace()?.map(|r| r.map(|r| (r.0, r.2))), w),
            None => write_trace(&self.trace, w),
        }
    }
}

/// Writes a trace as CSV: `timestamp,path` (RFC 3339 UTC with microseconds).
pub fn write_trace<W: std::io::Write>(trace: &[(i64, String)], w: W) -> std::io::Result<()> {
    trace_csv(trace.iter().map(|(t, p)| Ok((*t, p.as_str()))), w)
}

fn trace_csv<W: std::io::Write, P: AsRef<str>>(
    rows: impl Iterator<Item = std::io::Result<(i64, P)>>,
    w: W,
) -> std::io::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record(["timestamp", "path"])?;
    for row in rows {
        let (t, p) = row?;
        let secs = t.div_euclid(1_000_000);
        let micros = t.rem_euclid(1_000_000);
        let base = crate::logs::timefmt::to_rfc3339(secs * 1_000_000);
        let stamp = format!("{}.{micros:06}Z", base.trim_end_matches('Z'));
        wr.write_record([stamp.as_str(), p.as_ref()])?;
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

    /// A line far longer than a piece (a crash dump, a file of NULs) is read once, up to
    /// MAX_LINE past its piece, by the piece it starts in; the pieces inside it read nothing
    /// more (each used to read to the line's end: quadratic time, memory of threads x file).
    #[test]
    fn a_huge_line_is_cut_once_not_read_by_every_piece() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        let line = "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /a.jpg HTTP/1.1\" 200 5 \"-\" \"UA\"\n";
        let mut text = line.to_string();
        text.push_str(&"x".repeat(3 << 20));
        text.push('\n');
        text.push_str(line);
        std::fs::write(&p, text).unwrap();
        for threads in [1, 2] {
            let o = Options {
                threads,
                block_size: 4096,
                ..Options::default()
            };
            let ex = extract(&[Source::File(p.clone())], &o, &Progress::default()).unwrap();
            assert_eq!(ex.stats.lines, 3, "{:?}", ex.stats);
            assert_eq!(ex.rows.len(), 1);
            assert_eq!(ex.rows[0].count, 2);
            assert_eq!(ex.stats.malformed_total(), 1);
        }
    }

    /// copytruncate rotation while extract reads the log: the rest of the file is gone, and
    /// extract reports what it read (a memory-mapped read died of SIGBUS here).
    #[test]
    fn a_log_truncated_while_extract_reads_it_does_not_kill_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        let line = "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /a.jpg HTTP/1.1\" 200 5 \"-\" \"UA\"\n";
        std::fs::write(&p, line.repeat(2000)).unwrap();
        let truncated = std::sync::atomic::AtomicBool::new(false);
        let path = p.clone();
        let progress = Progress {
            after_piece: Some(Box::new(move || {
                if !truncated.swap(true, Ordering::SeqCst) {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
            })),
            ..Progress::default()
        };
        let o = Options {
            threads: 1,
            block_size: 4096,
            ..Options::default()
        };
        let ex = extract(&[Source::File(p)], &o, &progress).unwrap();
        // the first piece (4 KB: 47 whole lines and the one that starts in it) was read
        let first = 4096 / line.len() as u64 + 1;
        assert_eq!(ex.stats.lines, first, "{:?}", ex.stats);
        assert_eq!(ex.rows.len(), 1);
        assert_eq!(ex.rows[0].count, first);
    }

    /// Merging sorted runs, in one piece or cut in two halves on two threads, gives what one
    /// sort of all the rows gives (many equal counts and times: the key decides).
    #[test]
    fn merged_runs_equal_one_sort() {
        let mut rng = 3u64;
        let mut all = Vec::new();
        let mut runs: Vec<Vec<Row>> = (0..16).map(|_| Vec::new()).collect();
        for i in 0..40_000u64 {
            rng = crate::urls::mix(rng);
            let row = Row {
                path: format!("/{i}").into(),
                count: 1 + rng % 7,
                bytes: None,
                first: (rng >> 8) as i64 % 3,
                last: 0,
                requests: 0,
                key: u128::from(crate::urls::mix(i)) << 64 | u128::from(i),
            };
            runs[(rng >> 40) as usize % 16].push(row.clone());
            all.push(row);
        }
        all.sort_unstable_by_key(Row::order);
        for r in &mut runs {
            r.sort_unstable_by_key(Row::order);
        }
        assert_eq!(merge_runs(runs.clone()), all);
        assert_eq!(merge_runs_split(runs, 2), all);
        assert!(merge_runs_split(Vec::new(), 2).is_empty());
    }

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
