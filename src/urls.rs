//! URL list files (read/write) and the order in which `run` walks them.
//!
//! Two forms are read, told apart by the first non-comment line:
//! - plain: one path per line (`/img/a.jpg?w=200`); blank lines and `#` comments are skipped;
//!   an absolute URL (`https://host/p`) contributes its path and query only;
//! - CSV, as `extract` writes it: a header `path,count[,bytes,first_seen,last_seen]`, then one row
//!   per distinct path, `count` being how often it was requested.
//!
//! Paths are kept byte for byte as written: they are the cache key. A path that an HTTP client
//! could not send as written, or that could leave a target's base path (`path_refusal`: a dot
//! segment, a backslash, a `#`, a control character) is refused with its file and line.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum UrlsError {
    #[error("cannot read URL list {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}: {text:?}")]
    Bad {
        path: String,
        line: u64,
        msg: &'static str,
        text: String,
    },
    #[error("URL list {path} has no URLs")]
    Empty { path: String },
}

/// One distinct path and what is known about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UrlEntry {
    pub path: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlList {
    pub entries: Vec<UrlEntry>,
}

pub const CSV_HEADER: &str = "path,count,bytes,first_seen,last_seen";

impl UrlList {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn from_paths<I: IntoIterator<Item = S>, S: Into<String>>(paths: I) -> UrlList {
        UrlList {
            entries: paths
                .into_iter()
                .map(|p| UrlEntry {
                    path: p.into(),
                    count: 1,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                })
                .collect(),
        }
    }

    pub fn read_file(path: &Path) -> Result<UrlList, UrlsError> {
        read_file(path, UrlList::read, UrlList::is_empty)
    }

    /// Reads either form; `name` is used in error messages.
    pub fn read<R: BufRead>(r: R, name: &str) -> Result<UrlList, UrlsError> {
        let mut entries = Vec::new();
        read_rows(r, name, true, &mut ListState::default(), 0, &mut |row| {
            entries.push(UrlEntry {
                path: row.path.to_string(),
                count: row.count,
                bytes: row.bytes,
                first_seen: row.first_seen.map(str::to_string),
                last_seen: row.last_seen.map(str::to_string),
            })
        })?;
        Ok(UrlList { entries })
    }

    /// Writes the CSV form (the one `extract` produces).
    pub fn write_csv<W: Write>(&self, w: W) -> std::io::Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record(CSV_HEADER.split(','))?;
        for e in &self.entries {
            let bytes = e.bytes.map(|b| b.to_string()).unwrap_or_default();
            wr.write_record([
                e.path.as_str(),
                &e.count.to_string(),
                &bytes,
                e.first_seen.as_deref().unwrap_or(""),
                e.last_seen.as_deref().unwrap_or(""),
            ])?;
        }
        wr.flush()
    }
}

/// The URL list as `run` holds it: every path in one buffer with an end offset each, and the
/// counts (for `--order weighted`) only when some count is not 1: about the paths' bytes plus 8
/// bytes a URL (16 with counts). Paths are kept in the form they go on the wire (`wire_form`).
/// `read` takes both forms of `UrlList::read` with the same errors, at millions of lines a
/// second (one reused line buffer, no allocation a line).
#[derive(Clone, Debug, Default)]
pub struct Paths {
    buf: String,
    ends: Vec<u64>,
    /// empty: every count is 1
    counts: Vec<u64>,
    /// the first path refused as written (`path_refusal`, or not a path), and why
    refused: Option<(String, &'static str)>,
    /// some path is kept as written because the URL parser refused it
    raw: bool,
}

/// Two lists are equal when they hold the same paths and counts (however they were made).
impl PartialEq for Paths {
    fn eq(&self, o: &Paths) -> bool {
        self.len() == o.len()
            && self.iter().eq(o.iter())
            && (0..self.len()).all(|i| self.count(i) == o.count(i))
    }
}

impl Paths {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// Path `i` (with its query), as sent.
    pub fn path(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }
    /// How often path `i` was requested (1 in a plain list).
    pub fn count(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(1)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.path(i))
    }

    /// The first path that cannot be sent, as written (by `path_refusal`, or not a path), or
    /// one the URL parser could not put in wire form, and why. (`read` refuses such lines as
    /// it reads; `from_paths` notes the first.)
    pub fn first_unsendable(&self) -> Option<(String, &'static str)> {
        if let Some((p, why)) = &self.refused {
            return Some((p.clone(), why));
        }
        if !self.raw {
            return None;
        }
        (self.iter().find(|p| !is_wire_form(p)))
            .map(|p| (p.to_string(), "cannot be sent as written"))
    }

    fn push(&mut self, path: &str, count: u64) {
        let (w, ok) = wire_form_of(path);
        self.raw |= !ok;
        self.buf.push_str(&w);
        self.ends.push(self.buf.len() as u64);
        if !self.counts.is_empty() {
            self.counts.push(count);
        } else if count != 1 {
            // the first count that is not 1: the ones before it were
            self.counts = vec![1; self.ends.len() - 1];
            self.counts.push(count);
        }
    }

    /// Paths with a count of 1 each (a trace, tests). Each is checked as written (before its
    /// wire form is made: the URL parser would resolve a dot segment or drop a fragment); the
    /// first refused is kept for `first_unsendable` (`run` refuses to start with it).
    pub fn from_paths<I: IntoIterator<Item = S>, S: AsRef<str>>(paths: I) -> Paths {
        let mut p = Paths::default();
        for s in paths {
            let s = s.as_ref();
            if p.refused.is_none() {
                let why = path_refusal(s).or_else(|| {
                    (!s.starts_with('/') || s.starts_with("//")).then_some("is not a path")
                });
                if let Some(why) = why {
                    p.refused = Some((s.to_string(), why));
                }
            }
            p.push(s, 1);
        }
        p
    }

    /// The paths and counts of a full list.
    #[cfg(test)]
    fn from_list(list: &UrlList) -> Paths {
        let mut p = Paths::default();
        for e in &list.entries {
            p.push(&e.path, e.count);
        }
        p
    }

    /// Reads a list file; a large one in parts of whole lines on every CPU, joined in order
    /// (the same paths, counts and errors as reading it from start to end).
    pub fn read_file(path: &Path) -> Result<Paths, UrlsError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Paths::read_file_in(path, threads, 8 << 20)
    }

    /// `read_file` in at most `threads` parts of at least `min_part` bytes.
    pub(crate) fn read_file_in(
        path: &Path,
        threads: usize,
        min_part: u64,
    ) -> Result<Paths, UrlsError> {
        let name = path.display().to_string();
        let io = |source| UrlsError::Io {
            path: name.clone(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let parts = threads.min((len / min_part.max(1)) as usize).max(1);
        if parts == 1 {
            return read_file(path, Paths::read, Paths::is_empty);
        }
        // part k: the lines that start in [cuts[k], cuts[k + 1])
        let mut cuts = vec![0u64];
        for k in 1..parts {
            let at = len * k as u64 / parts as u64;
            cuts.push(
                next_line(&f, at)
                    .map_err(io)?
                    .max(*cuts.last().unwrap_or(&0)),
            );
        }
        cuts.push(len);
        // the header (or its absence) is known before the parts start
        let mut head = ListState::default();
        read_rows(
            std::io::BufReader::new(std::io::Read::take(&f, 64 << 10)),
            &name,
            false,
            &mut head,
            0,
            &mut |_| {},
        )
        .ok();
        let read_part = |k: usize| -> Result<Paths, UrlsError> {
            // a handle of its own: a cloned one would share the file offset with the others
            let mut h = std::fs::File::open(path).map_err(io)?;
            std::io::Seek::seek(&mut h, std::io::SeekFrom::Start(cuts[k])).map_err(io)?;
            let r = std::io::BufReader::with_capacity(
                1 << 20,
                std::io::Read::take(h, cuts[k + 1] - cuts[k]),
            );
            let mut state = if k == 0 {
                ListState::default()
            } else {
                ListState {
                    csv: head.csv,
                    first: head.first,
                }
            };
            // room reserved up front (address space only until written): no copy as the part
            // grows; part 0 has room for every part's paths, which are joined onto it
            let mut out = Paths::default();
            let room = if k == 0 { len } else { cuts[k + 1] - cuts[k] };
            out.buf.reserve(usize::try_from(room).unwrap_or(0));
            read_rows(r, &name, false, &mut state, 0, &mut |row| {
                out.push(row.path, row.count)
            })?;
            Ok(out)
        };
        let done: Vec<Result<Paths, UrlsError>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..parts).map(|k| s.spawn(move || read_part(k))).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let total: usize = done.iter().flatten().map(|p| p.buf.len()).sum();
        let mut out: Option<Paths> = None;
        for (k, part) in done.into_iter().enumerate() {
            let part = match part {
                Ok(p) => p,
                // the first error in the file's order, its line counted from the file's start
                Err(UrlsError::Bad {
                    path,
                    line,
                    msg,
                    text,
                }) => {
                    let before = lines_before(&f, cuts[k]).map_err(io)?;
                    return Err(UrlsError::Bad {
                        path,
                        line: line + before,
                        msg,
                        text,
                    });
                }
                Err(e) => return Err(e),
            };
            match &mut out {
                None => {
                    let mut p = part;
                    p.buf.reserve_exact(total.saturating_sub(p.buf.len()));
                    out = Some(p);
                }
                Some(o) => o.append(part),
            }
        }
        let out = out.unwrap_or_default();
        if out.is_empty() {
            return Err(UrlsError::Empty { path: name });
        }
        Ok(out)
    }

    /// Appends the next part of a list.
    fn append(&mut self, o: Paths) {
        if !o.counts.is_empty() && self.counts.is_empty() {
            self.counts = vec![1; self.len()];
        }
        if !self.counts.is_empty() {
            if o.counts.is_empty() {
                self.counts.resize(self.len() + o.len(), 1);
            } else {
                self.counts.extend_from_slice(&o.counts);
            }
        }
        let base = self.buf.len() as u64;
        self.buf.push_str(&o.buf);
        self.ends.extend(o.ends.iter().map(|e| e + base));
        self.refused = self.refused.take().or(o.refused);
        self.raw |= o.raw;
    }

    /// Reads either form, as `UrlList::read` does (a CSV row's other columns skipped).
    pub fn read<R: BufRead>(r: R, name: &str) -> Result<Paths, UrlsError> {
        let mut out = Paths::default();
        // (every path passed path_refusal as written; push notes any the URL parser refused)
        read_rows(r, name, false, &mut ListState::default(), 0, &mut |row| {
            out.push(row.path, row.count)
        })?;
        Ok(out)
    }
}

/// Where the first line starting at or after `at` begins (the file's end if none does).
fn next_line(f: &std::fs::File, at: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = at.saturating_sub(1);
    loop {
        let n = crate::sys::read_at(f, &mut buf, pos)?;
        if n == 0 {
            return Ok(pos);
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
}

/// Lines in the file before `at` (an error's line number in a part that starts there).
fn lines_before(f: &std::fs::File, at: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut pos, mut n) = (0u64, 0u64);
    while pos < at {
        let want = (at - pos).min(buf.len() as u64) as usize;
        let got = crate::sys::read_at(f, &mut buf[..want], pos)?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        pos += got as u64;
    }
    Ok(n)
}

/// One path of a list, checked by `path_refusal`, with what the list says of it.
struct Row<'a> {
    path: &'a str,
    count: u64,
    bytes: Option<u64>,
    first_seen: Option<&'a str>,
    last_seen: Option<&'a str>,
}

/// Where a CSV header put its columns (`bytes`, `first_seen`, `last_seen`: when wanted).
#[derive(Clone, Copy)]
struct Cols {
    path: usize,
    count: Option<usize>,
    bytes: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
}

/// What a reader knows of a list from its first lines: whether a header came, and its columns.
#[derive(Clone, Copy)]
struct ListState {
    csv: Option<Cols>,
    /// no record line seen yet (the next one may be the header)
    first: bool,
}

impl Default for ListState {
    fn default() -> Self {
        ListState {
            csv: None,
            first: true,
        }
    }
}

/// Reads either form of a list (the module doc), calling `row` for each path; with `full` the
/// bytes, first_seen and last_seen columns are read too. A line at a time with memchr, no
/// allocation a line but for a CSV row with a quote (read by the csv crate). Errors name the
/// file and line.
fn read_rows<R: BufRead>(
    mut r: R,
    name: &str,
    full: bool,
    state: &mut ListState,
    mut lineno: u64,
    row: &mut dyn FnMut(Row<'_>),
) -> Result<(), UrlsError> {
    let mut raw = Vec::new();
    let ListState { csv, first } = state;
    loop {
        raw.clear();
        let n = read_line(&mut r, &mut raw).map_err(|source| UrlsError::Io {
            path: name.to_string(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        lineno += 1;
        let bad = |msg, text: &[u8]| UrlsError::Bad {
            path: name.to_string(),
            line: lineno,
            msg,
            text: String::from_utf8_lossy(text).into_owned(),
        };
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8", text))?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |msg| bad(msg, text.as_bytes());
        if *first {
            *first = false;
            if trimmed.starts_with("path,") || trimmed == "path" {
                let cols: Vec<&str> = trimmed.split(',').map(str::trim).collect();
                let at = |n: &str| cols.iter().position(|c| *c == n);
                let count = at("count");
                if count.is_none() && cols.len() > 1 {
                    return Err(bad("CSV header must have a count column"));
                }
                *csv = Some(Cols {
                    path: at("path").unwrap_or(0),
                    count,
                    bytes: at("bytes").filter(|_| full),
                    first_seen: at("first_seen").filter(|_| full),
                    last_seen: at("last_seen").filter(|_| full),
                });
                continue;
            }
        }
        let check = |p: &str| path_refusal(p).map_or(Ok(()), |why| Err(bad(why)));
        let Some(c) = &csv else {
            let p = path_of(trimmed).ok_or_else(|| bad("not a path or URL"))?;
            check(&p)?;
            row(Row {
                path: &p,
                count: 1,
                bytes: None,
                first_seen: None,
                last_seen: None,
            });
            continue;
        };
        // the fields up to the last column used
        let need = [c.count, c.bytes, c.first_seen, c.last_seen]
            .into_iter()
            .flatten()
            .fold(c.path, usize::max)
            + 1;
        let rec;
        let all: Vec<&str>;
        let mut few = [""; 8];
        let fields: &[&str] = if memchr::memchr(b'"', text.as_bytes()).is_some() {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            rec = (rdr.records().next())
                .and_then(Result::ok)
                .ok_or_else(|| bad("malformed CSV row"))?;
            all = rec.iter().collect();
            &all
        } else if need <= few.len() {
            let mut k = 0;
            for (i, f) in text.splitn(need + 1, ',').take(need).enumerate() {
                few[i] = f;
                k = i + 1;
            }
            &few[..k]
        } else {
            all = text.split(',').collect();
            &all
        };
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i).copied());
        // a column that is empty or "-" says nothing
        let opt = |i| get(i).filter(|v: &&str| !v.is_empty() && *v != "-");
        // (a row without the path column has no path; an empty one is no path)
        let path = get(Some(c.path)).ok_or_else(|| bad("row has no path"))?;
        let path = path_of(path).ok_or_else(|| bad("not a path or URL"))?;
        check(&path)?;
        let count = match get(c.count) {
            None => 1,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| bad("count is not a whole number"))?,
        };
        let bytes = match opt(c.bytes) {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse()
                    .map_err(|_| bad("bytes is not a whole number"))?,
            ),
        };
        row(Row {
            path: &path,
            count,
            bytes,
            first_seen: opt(c.first_seen),
            last_seen: opt(c.last_seen),
        });
    }
}

/// `BufRead::read_until(b'\n')` with the memchr crate's search (std's was a fifth of the
/// time of reading a list).
fn read_line<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(n);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                out.extend_from_slice(&buf[..=i]);
                r.consume(i + 1);
                return Ok(n + i + 1);
            }
            None => {
                let len = buf.len();
                out.extend_from_slice(buf);
                r.consume(len);
                n += len;
            }
        }
    }
}

/// Reads the list file at `path` with `read` (errors name the file); an empty list is an error.
fn read_file<T>(
    path: &Path,
    read: impl FnOnce(std::io::BufReader<std::fs::File>, &str) -> Result<T, UrlsError>,
    is_empty: impl Fn(&T) -> bool,
) -> Result<T, UrlsError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| UrlsError::Io {
        path: name.clone(),
        source,
    })?;
    let list = read(std::io::BufReader::with_capacity(1 << 20, f), &name)?;
    if is_empty(&list) {
        return Err(UrlsError::Empty { path: name });
    }
    Ok(list)
}

/// `normalise_path` without a copy when the input is already a path.
fn path_of(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    let t = s.trim();
    if t.starts_with('/') && !t.starts_with("//") {
        return Some(std::borrow::Cow::Borrowed(t));
    }
    normalise_path(t).map(std::borrow::Cow::Owned)
}

/// Whether every byte of `path` goes on the wire as written (what a URL parser would not
/// percent-encode): letters, digits and `-._~!$&()*+,;=:@/%?`.
pub(crate) fn is_wire_ready(path: &str) -> bool {
    path.bytes().all(|c| WIRE_READY[c as usize])
}

/// `is_wire_ready`'s bytes, as a table (a lookup a byte: URL lists are millions of lines).
const WIRE_READY: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"-._~!$&()*+,;=:@/%?";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `path` is already in its wire form (`wire_form` leaves it as it is).
pub(crate) fn is_wire_form(path: &str) -> bool {
    is_wire_ready(path) || wire_form(path) == path
}

/// `path` as it goes on the wire: as written when `is_wire_ready`, else as the URL parser
/// percent-encodes it (a space as %20, non-ASCII as its UTF-8 bytes), which is what every
/// HTTP client sends; as written when even the parser refuses it (`run` then refuses it).
pub(crate) fn wire_form(path: &str) -> std::borrow::Cow<'_, str> {
    wire_form_of(path).0
}

/// `wire_form`, and false when the parser refused the path (kept as written).
fn wire_form_of(path: &str) -> (std::borrow::Cow<'_, str>, bool) {
    if is_wire_ready(path) {
        return (std::borrow::Cow::Borrowed(path), true);
    }
    match url::Url::parse(&format!("http://x{path}")) {
        Ok(u) => (
            std::borrow::Cow::Owned(
                u[url::Position::BeforePath..url::Position::AfterQuery].to_string(),
            ),
            true,
        ),
        Err(_) => (std::borrow::Cow::Borrowed(path), false),
    }
}

/// Why a path cannot be sent as written, if it cannot: URL parsers resolve dot segments (`..`,
/// `.`, also spelt `%2e`) and read a backslash as `/`, so such a path could climb out of the
/// target's base path (`https://cdn/tenant-a` + `/../x` is `https://cdn/x`); a `#` starts a
/// fragment, which is never sent; control characters are dropped or break the request line.
/// Other bytes a request line cannot hold raw (a space, non-ASCII) are percent-encoded when sent.
pub fn path_refusal(path: &str) -> Option<&'static str> {
    let b = path.as_bytes();
    if let Some(&c) = (b.iter()).find(|&&c| c < 0x20 || c == 0x7f || c == b'#' || c == b'\\') {
        return Some(match c {
            b'#' => "has a '#': a fragment is never sent",
            b'\\' => "has a backslash, which URL parsers read as '/'",
            _ => "has a control character",
        });
    }
    let path_part = &b[..memchr::memchr(b'?', b).unwrap_or(b.len())];
    let mut start = 0;
    let ends = memchr::memchr_iter(b'/', path_part).chain(std::iter::once(path_part.len()));
    if ends.into_iter().any(|end| {
        let dot = is_dot_segment(&path_part[start..end]);
        start = end + 1;
        dot
    }) {
        return Some(
            "has a dot segment ('.' or '..', also as %2e), which could leave the base path",
        );
    }
    None
}

fn is_dot_segment(s: &[u8]) -> bool {
    let eq = |x: &[u8]| s.eq_ignore_ascii_case(x);
    match s.len() {
        1 => s == b".",
        2 => s == b"..",
        3 => eq(b"%2e"),
        4 => eq(b".%2e") || eq(b"%2e."),
        6 => eq(b"%2e%2e"),
        _ => false,
    }
}

/// `/p?q` stays as is; `http(s)://host[:port]/p?q` becomes `/p?q`; anything else is rejected.
pub fn normalise_path(s: &str) -> Option<String> {
    let s = s.trim();
    if s.starts_with('/') && !s.starts_with("//") {
        return Some(s.to_string());
    }
    for scheme in ["http://", "https://"] {
        if s.len() > scheme.len()
            && s.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        {
            let rest = &s[scheme.len()..];
            return Some(match rest.find(['/', '?']) {
                Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_string(),
                Some(i) => format!("/{}", &rest[i..]),
                None => "/".to_string(),
            });
        }
    }
    None
}

/// How `run` walks the list. Every order is a pure function of the request number, so workers
/// on any thread agree without sharing an RNG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// 0, 1, 2, ... cycling.
    #[default]
    Sequential,
    /// A seeded permutation, cycling: a sweep still visits every URL exactly once.
    Shuffled,
    /// Drawn with probability proportional to `count` (seeded).
    Weighted,
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Sequential => "sequential",
            Order::Shuffled => "shuffled",
            Order::Weighted => "weighted",
        })
    }
}

impl std::str::FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(Order::Sequential),
            "shuffled" | "shuffle" => Ok(Order::Shuffled),
            "weighted" => Ok(Order::Weighted),
            _ => Err(format!(
                "unknown order {s:?} (sequential, shuffled, weighted)"
            )),
        }
    }
}

/// splitmix64: a good, tiny, stateless mixer; `mix(seed ^ n)` is our per-request random number.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps request number -> index into the list.
#[derive(Clone, Debug)]
pub struct Picker {
    order: Order,
    n: u64,
    seed: u64,
    perm: Vec<u32>,
    /// weighted: Walker's alias table (a draw is one random number: a column and a coin)
    prob: Vec<u32>,
    alias: Vec<u32>,
}

impl Picker {
    pub fn new(list: &Paths, order: Order, seed: u64, sweep: bool) -> Picker {
        let n = list.len() as u64;
        let mut p = Picker {
            order,
            n,
            seed,
            perm: Vec::new(),
            prob: Vec::new(),
            alias: Vec::new(),
        };
        // A sweep visits each URL once: weighted drawing would repeat some and skip others, so a
        // weighted sweep goes in list order (extract sorts by count, hottest first).
        if sweep && order == Order::Weighted {
            p.order = Order::Sequential;
        }
        match p.order {
            Order::Sequential => {}
            Order::Shuffled => {
                p.perm = (0..n as u32).collect();
                for i in (1..p.perm.len()).rev() {
                    let j = (mix(seed ^ (i as u64).wrapping_mul(0x5851_F42D_4C95_7F2D))
                        % (i as u64 + 1)) as usize;
                    p.perm.swap(i, j);
                }
            }
            Order::Weighted => (p.prob, p.alias) = alias_table(list),
        }
        p
    }

    pub fn pick(&self, j: u64) -> usize {
        match self.order {
            Order::Sequential => (j % self.n) as usize,
            Order::Shuffled => self.perm[(j % self.n) as usize] as usize,
            Order::Weighted => {
                let r = mix(self.seed ^ mix(j));
                // the high half picks a column, the low half tosses its coin
                let col = (((r >> 32) * self.n) >> 32) as usize;
                if (r as u32) < self.prob[col] {
                    col
                } else {
                    self.alias[col] as usize
                }
            }
        }
    }
}

/// Vose's alias method over the counts (each at least 1): column i keeps itself with
/// probability prob[i] / 2^32 and gives the rest to alias[i]. (At most 2^32 URLs.)
fn alias_table(list: &Paths) -> (Vec<u32>, Vec<u32>) {
    let n = list.len();
    let total: f64 = (0..n).map(|i| list.count(i).max(1) as f64).sum();
    let mut scaled: Vec<f64> = (0..n)
        .map(|i| list.count(i).max(1) as f64 * n as f64 / total)
        .collect();
    let mut prob = vec![u32::MAX; n];
    let mut alias: Vec<u32> = (0..n as u32).collect();
    let (mut small, mut large): (Vec<u32>, Vec<u32>) =
        (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
    while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
        let (si, li) = (s as usize, l as usize);
        prob[si] = (scaled[si] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        alias[si] = l;
        scaled[li] -= 1.0 - scaled[si];
        if scaled[li] < 1.0 {
            large.pop();
            small.push(l);
        }
    }
    // what is left holds (up to rounding) a whole column: keeps itself always
    (prob, alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file read in parts on several threads gives what one reader gives: paths, counts (a
    /// count other than 1 only in a later part), header columns known to every part, quoted
    /// rows, CRLF; and the first bad line in the file's order, numbered from the file's start.
    #[test]
    fn a_file_read_in_parts_is_the_file_read_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("# made by hand\npath,count,bytes\n");
        let mut plain = String::new();
        for i in 0..3000u64 {
            let count = if i == 2500 { 7 } else { 1 };
            if i % 97 == 0 {
                csv += &format!("\"/q/{i},x.jpg\",{count},10\r\n");
            } else {
                csv += &format!("/p/{i}.jpg?w={},{count},\n", i % 5);
            }
            plain += &format!("/p/{i}.jpg\n");
        }
        for (name, text) in [("a.csv", &csv), ("b.txt", &plain)] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let once = Paths::read(text.as_bytes(), "x").unwrap();
            for threads in [2, 3, 7] {
                let parts = Paths::read_file_in(&p, threads, 1000).unwrap();
                assert!(parts == once, "{name} in {threads} parts");
                assert_eq!(parts.count(2500), if name == "a.csv" { 7 } else { 1 });
                assert_eq!(parts.buf, once.buf);
            }
        }
        // bad lines in two parts: the first in the file is reported, with its own line number
        let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
        lines[1800] = "/ok.jpg,many,1".into();
        lines[2900] = "/ok.jpg,also-bad,1".into();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, lines.join("\n")).unwrap();
        let once = Paths::read(lines.join("\n").as_bytes(), "x").unwrap_err();
        let parts = Paths::read_file_in(&p, 4, 1000).unwrap_err();
        let line = |e: &UrlsError| match e {
            UrlsError::Bad { line, .. } => *line,
            _ => 0,
        };
        assert_eq!((line(&once), line(&parts)), (1801, 1801), "{parts}");
    }

    #[test]
    fn paths_that_would_leave_the_base_or_change_on_the_wire_are_refused() {
        for ok in [
            "/a.jpg",
            "/a..b/c.jpg",
            "/.well-known/x",
            "/a/...",
            "/x.jpg?p=../../y",
            "/%2f..%2f/x",
            "/caf%C3%A9.jpg",
            "/a b.jpg",
        ] {
            assert_eq!(path_refusal(ok), None, "{ok}");
        }
        for bad in [
            "/../escape.jpg",
            "/a/../../b",
            "/%2e%2e/x.jpg",
            "/%2E./x",
            "/.%2e/x",
            "/a/./b",
            "/a/%2e",
            "/a/..",
            "/a\\..\\b",
            "/a.jpg#frag",
            "/a\tb.jpg",
            "/a\u{1b}[2J.jpg",
        ] {
            assert!(path_refusal(bad).is_some(), "{bad:?}");
        }
        let e = UrlList::read("/ok.jpg\n/../x.jpg\n".as_bytes(), "list.txt").unwrap_err();
        assert!(
            e.to_string().starts_with("list.txt:2: has a dot segment"),
            "{e}"
        );
        let e = UrlList::read("path,count\n/%2e%2e/y.jpg,3\n".as_bytes(), "u.csv").unwrap_err();
        assert!(e.to_string().starts_with("u.csv:2:"), "{e}");
    }

    #[test]
    fn plain_list_with_comments_and_urls() {
        let text =
            "# images\n/a.jpg\n\n  /b.png?w=1  \nhttps://cdn.example.com/c.webp?x=1\nhttp://h?q\n";
        let l = UrlList::read(text.as_bytes(), "t").unwrap();
        let paths: Vec<_> = l.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/a.jpg", "/b.png?w=1", "/c.webp?x=1", "/?q"]);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let err = UrlList::read("/a\nnot a path\n".as_bytes(), "list.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "list.txt:2: not a path or URL: \"not a path\""
        );
    }

    #[test]
    fn csv_round_trip() {
        let l = UrlList {
            entries: vec![
                UrlEntry {
                    path: "/a,b.jpg?x=\"1\"".into(),
                    count: 10,
                    bytes: Some(1234),
                    first_seen: Some("2024-03-12T10:00:01Z".into()),
                    last_seen: Some("2024-03-13T10:00:01Z".into()),
                },
                UrlEntry {
                    path: "/c%20d.png".into(),
                    count: 3,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                },
            ],
        };
        let mut buf = Vec::new();
        l.write_csv(&mut buf).unwrap();
        assert!(buf.starts_with(CSV_HEADER.as_bytes()));
        let back = UrlList::read(buf.as_slice(), "t").unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn csv_bad_count() {
        let err = UrlList::read("path,count\n/a,x\n".as_bytes(), "u.csv").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("u.csv:2: count is not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn shuffled_sweep_visits_each_once() {
        let l = Paths::from_paths((0..1000).map(|i| format!("/{i}")));
        let p = Picker::new(&l, Order::Shuffled, 7, true);
        let mut seen: Vec<usize> = (0..1000).map(|j| p.pick(j)).collect();
        assert_ne!(seen[..10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn weighted_follows_counts() {
        let mut l = UrlList::from_paths(["/hot", "/warm", "/cold"]);
        l.entries[0].count = 70;
        l.entries[1].count = 20;
        l.entries[2].count = 10;
        let p = Picker::new(&Paths::from_list(&l), Order::Weighted, 1, false);
        let mut n = [0u32; 3];
        for j in 0..100_000 {
            n[p.pick(j)] += 1;
        }
        assert!((69_000..71_000).contains(&n[0]), "{n:?}");
        assert!((19_000..21_000).contains(&n[1]), "{n:?}");
        assert!((9_000..11_000).contains(&n[2]), "{n:?}");
        // many paths, Zipf-like counts: each path's share within 5 sigma of its count's
        let counts: Vec<u64> = (1..=200u64).map(|k| 10_000 / k).collect();
        let l = UrlList {
            entries: (counts.iter().enumerate())
                .map(|(i, &c)| UrlEntry {
                    path: format!("/{i}"),
                    count: c,
                    bytes: None,
                    first_seen: None,
                    last_seen: None,
                })
                .collect(),
        };
        let p = Picker::new(&Paths::from_list(&l), Order::Weighted, 3, false);
        let draws = 2_000_000u64;
        let mut n = vec![0u64; counts.len()];
        for j in 0..draws {
            n[p.pick(j)] += 1;
        }
        let total: u64 = counts.iter().sum();
        for (i, (&got, &c)) in n.iter().zip(&counts).enumerate() {
            let want = draws as f64 * c as f64 / total as f64;
            assert!(
                (got as f64 - want).abs() <= 5.0 * want.sqrt() + 1.0,
                "{i}: {got} vs {want}"
            );
        }
    }

    /// The compact reader takes what the full one takes, to the same paths and counts (the
    /// other columns skipped, quoted rows, comments, URLs, CRLF), and refuses what it refuses
    /// with the same file:line message.
    #[test]
    fn compact_paths_read_as_the_full_list_does() {
        let inputs = [
            "# plain\n/a.jpg\n\nhttps://cdn.example.com/b.png?w=2\r\n  /c.webp  \n",
            "path,count,bytes,first_seen,last_seen\n/a.jpg,3,100,2024-01-01T00:00:00Z,-\n\
             \"/b,c.jpg\",2,,,\n/d.jpg,1,,,\n",
            "path,bytes,count\n/x.jpg,5,7\n/y.jpg?q=1,,1\n",
            "path\n/only.jpg\n",
        ];
        for text in inputs {
            let full = UrlList::read(text.as_bytes(), "f").unwrap();
            let compact = Paths::read(text.as_bytes(), "f").unwrap();
            assert_eq!(compact, Paths::from_list(&full), "{text}");
            assert_eq!(compact.len(), full.len());
        }
        let bad = [
            "/ok.jpg\n/../up.jpg\n",
            "/ok.jpg\nftp://x/y\n",
            "path,count\n/a.jpg,x\n",
            "path,count\n,1\n",
            "path,bytes\n/a.jpg,1\n",
            "/ok.jpg\n/a#frag\n",
            "count,path\n7,/x.jpg\n",
        ];
        for text in bad {
            let a = UrlList::read(text.as_bytes(), "f.csv")
                .unwrap_err()
                .to_string();
            let b = Paths::read(text.as_bytes(), "f.csv")
                .unwrap_err()
                .to_string();
            assert_eq!(a, b, "{text}");
        }
    }

    /// A path goes on the wire as written when it can, else as the URL parser encodes it.
    #[test]
    fn paths_are_kept_in_their_wire_form() {
        let p = Paths::from_paths(["/a.jpg?w=1&h=2", "/a b.jpg", "/caf\u{e9}.jpg?q=\"x\""]);
        assert_eq!(p.path(0), "/a.jpg?w=1&h=2");
        assert_eq!(p.path(1), "/a%20b.jpg");
        assert_eq!(p.path(2), "/caf%C3%A9.jpg?q=%22x%22");
        assert!(p.iter().all(is_wire_ready));
        assert_eq!(p.count(1), 1);
        assert_eq!(p.first_unsendable(), None);
        // checked as written, before the parser could resolve or drop anything (a trace)
        for (bad, why) in [
            ("/a b/../x.jpg", "dot segment"),
            ("/a b/%2e%2e/x", "dot segment"),
            ("/img/a.jpg#x", "'#'"),
            ("/a\\b.jpg", "backslash"),
            ("/a\tb.jpg", "control"),
            ("x.jpg", "not a path"),
        ] {
            let p = Paths::from_paths(["/ok.jpg", bad, "/ok2.jpg"]);
            let (path, got) = p.first_unsendable().expect(bad);
            assert!(path == bad && got.contains(why), "{bad}: {got}");
        }
    }
}
