//! Extraction past its memory budget: the threads' tables and trace rows go to disk as sorted
//! runs (`spill`), are merged by key (the same rules as in memory: counts add, the earliest
//! spelling wins), sorted again into the list's order, and streamed to the output. The result
//! is byte for byte the in-memory one; memory holds the budget, one buffer a run, and `--top`'s
//! rows.

use std::io;

use super::spill::{Bytes, Record, Run, Sorter, Spill, put_str};
use super::table::Slot;
use super::{Row, absorb};

/// A distinct URL as a thread counted it (key order).
pub(super) struct Entry(pub Slot, pub Box<str>);

impl Record for Entry {
    type Key = u128;
    fn key(&self) -> u128 {
        self.0.key
    }
    fn put(&self, out: &mut Vec<u8>) {
        let s = &self.0;
        out.extend_from_slice(&s.key.to_le_bytes());
        for v in [
            s.count,
            s.bytes_sum,
            s.bytes_n,
            s.first as u64,
            s.last as u64,
            u64::from(s.requests),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str(out, &self.1);
    }
    fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
        let Some(k) = r.first::<16>()? else {
            return Ok(None);
        };
        let slot = Slot {
            key: u128::from_le_bytes(k),
            count: r.u64()?,
            bytes_sum: r.u64()?,
            bytes_n: r.u64()?,
            first: r.i64()?,
            last: r.i64()?,
            requests: r.u64()? as u32,
            original: 0,
        };
        Ok(Some(Entry(slot, r.string()?)))
    }
    fn heap(&self) -> usize {
        self.1.len() + 32
    }
}

impl Record for Row {
    type Key = (std::cmp::Reverse<u64>, i64, u128);
    fn key(&self) -> Self::Key {
        self.order()
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.push(u8::from(self.bytes.is_some()));
        for v in [
            self.count,
            self.bytes.unwrap_or(0),
            self.first as u64,
            self.last as u64,
            u64::from(self.requests),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str(out, &self.path);
    }
    fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
        let Some(k) = r.first::<16>()? else {
            return Ok(None);
        };
        let key = u128::from_le_bytes(k);
        let has_bytes = r.first::<1>()?.ok_or(io::ErrorKind::UnexpectedEof)?[0] == 1;
        let count = r.u64()?;
        let bytes = Some(r.u64()?).filter(|_| has_bytes);
        let (first, last) = (r.i64()?, r.i64()?);
        let requests = r.u64()? as u32;
        Ok(Some(Row {
            path: r.string()?,
            count,
            bytes,
            first,
            last,
            requests,
            key,
        }))
    }
    fn heap(&self) -> usize {
        self.path.len() + 32
    }
}

/// A trace row before its spelling is known: (key, unix microseconds, place in the log).
pub(super) struct TraceKey(pub u128, pub i64, pub u64);

impl Record for TraceKey {
    type Key = (u128, i64, u64);
    fn key(&self) -> Self::Key {
        (self.0, self.1, self.2)
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        out.extend_from_slice(&self.1.to_le_bytes());
        out.extend_from_slice(&self.2.to_le_bytes());
    }
    fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
        let Some(k) = r.first::<16>()? else {
            return Ok(None);
        };
        Ok(Some(TraceKey(u128::from_le_bytes(k), r.i64()?, r.u64()?)))
    }
}

/// A trace row with its URL list spelling, in time order (then the log's order).
pub(super) struct TraceRow(pub i64, pub u64, pub Box<str>);

impl Record for TraceRow {
    type Key = (i64, u64);
    fn key(&self) -> Self::Key {
        (self.0, self.1)
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        out.extend_from_slice(&self.1.to_le_bytes());
        put_str(out, &self.2);
    }
    fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
        let Some(t) = r.first::<8>()? else {
            return Ok(None);
        };
        Ok(Some(TraceRow(i64::from_le_bytes(t), r.u64()?, r.string()?)))
    }
    fn heap(&self) -> usize {
        self.2.len() + 32
    }
}

/// A kept URL's key and spelling, in key order: what trace rows are joined with.
struct Spelling(u128, Box<str>);

impl Record for Spelling {
    type Key = u128;
    fn key(&self) -> u128 {
        self.0
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        put_str(out, &self.1);
    }
    fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
        let Some(k) = r.first::<16>()? else {
            return Ok(None);
        };
        Ok(Some(Spelling(u128::from_le_bytes(k), r.string()?)))
    }
}

/// The result kept on disk: the list's rows (unless `--top` kept them in memory) and the trace,
/// as runs in their order, merged again each time they are written.
pub(crate) struct Spilled {
    pub(super) spill: Spill,
    /// None: the rows are in `Extracted::rows`
    pub(super) rows: Option<(Vec<Run>, u64)>,
    pub(super) trace: (Vec<Run>, u64),
}

impl Spilled {
    pub(super) fn rows(&self) -> io::Result<Option<impl Iterator<Item = io::Result<Row>>>> {
        match &self.rows {
            None => Ok(None),
            Some((runs, _)) => Ok(Some(self.spill.merge_alone::<Row>(runs.clone())?)),
        }
    }

    pub(super) fn trace(&self) -> io::Result<impl Iterator<Item = io::Result<TraceRow>>> {
        self.spill.merge_alone::<TraceRow>(self.trace.0.clone())
    }
}

/// Runs by key range, so that they are merged on several threads: part `p` of `n` holds the
/// keys whose top four bits `b` have `b * n / 16 == p` (the table's shards, in order).
#[derive(Default)]
pub(super) struct Parts {
    pub entries: Vec<Vec<Run>>,
    pub trace: Vec<Vec<Run>>,
}

fn part_of(key: u128, n: usize) -> usize {
    (key >> 124) as usize * n / 16
}

impl Parts {
    pub(super) fn ensure(&mut self, n: usize) {
        self.entries
            .resize_with(n.max(self.entries.len()), Vec::new);
        self.trace.resize_with(n.max(self.trace.len()), Vec::new);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.iter().chain(&self.trace).all(Vec::is_empty)
    }

    pub(super) fn extend(&mut self, o: Parts) {
        self.ensure(o.entries.len().max(o.trace.len()));
        for (i, r) in o.entries.into_iter().enumerate() {
            self.entries[i].extend(r);
        }
        for (i, r) in o.trace.into_iter().enumerate() {
            self.trace[i].extend(r);
        }
    }

    /// Writes a table's entries (in key order) as one run a part.
    pub(super) fn write_table(&mut self, spill: &Spill, t: super::table::Table) -> io::Result<()> {
        self.ensure(spill.parts);
        write_parts(
            spill,
            &mut self.entries,
            t.into_sorted().map(|(s, p)| Entry(s, p)),
        )
    }

    /// Writes trace rows (`(time, place, key)`, any order) as one run a part.
    pub(super) fn write_trace(
        &mut self,
        spill: &Spill,
        mut rows: Vec<(i64, u64, u128)>,
    ) -> io::Result<()> {
        // keys as the table stores them (0 is 1)
        rows.sort_unstable_by_key(|&(t, pos, k)| (k.max(1), t, pos));
        let rows = rows
            .into_iter()
            .map(|(t, pos, k)| TraceKey(k.max(1), t, pos));
        self.ensure(spill.parts);
        write_parts(spill, &mut self.trace, rows)
    }
}

/// Writes records in key order as one run a part, into `parts` (one list of runs a part).
fn write_parts<T: Record + Keyed>(
    spill: &Spill,
    parts: &mut [Vec<Run>],
    records: impl Iterator<Item = T>,
) -> io::Result<()> {
    let mut cur: Option<(usize, super::spill::RunWriter)> = None;
    for r in records {
        let p = part_of(r.url(), spill.parts);
        if cur.as_ref().is_none_or(|(q, _)| *q != p) {
            if let Some((q, w)) = cur.take() {
                parts[q].push(w.finish()?);
            }
            cur = Some((p, spill.writer()?));
        }
        if let Some((_, w)) = &mut cur {
            w.push(&r)?;
        }
    }
    if let Some((q, w)) = cur {
        parts[q].push(w.finish()?);
    }
    Ok(())
}

/// Records that belong to a URL's key.
trait Keyed {
    fn url(&self) -> u128;
}

impl Keyed for Entry {
    fn url(&self) -> u128 {
        self.0.key
    }
}

impl Keyed for TraceKey {
    fn url(&self) -> u128 {
        self.0
    }
}

/// One part's entries merged by key (equal keys absorbed as in memory), sorted into the list's
/// order; with `spellings`, the URLs' keys and spellings in key order too.
fn rows_of(
    spill: &Spill,
    entries: Vec<Run>,
    spellings: bool,
    budget: usize,
) -> io::Result<(Vec<Run>, Option<Run>, u64)> {
    let mut order: Sorter<Row> = Sorter::new(spill, budget);
    let mut spelled = spellings.then(|| spill.writer()).transpose()?;
    let mut emit = |s: Slot, path: Box<str>| -> io::Result<()> {
        if let Some(w) = &mut spelled {
            w.push(&Spelling(s.key, path.clone()))?;
        }
        order.push(Row::new(s, path))
    };
    let mut cur: Option<(Slot, Box<str>)> = None;
    for e in spill.merge::<Entry>(entries)? {
        let Entry(slot, path) = e?;
        match &mut cur {
            Some((s, p)) if s.key == slot.key => {
                absorb(s, p, slot, path);
            }
            _ => {
                if let Some((s, p)) = cur.replace((slot, path)) {
                    emit(s, p)?;
                }
            }
        }
    }
    if let Some((s, p)) = cur {
        emit(s, p)?;
    }
    let distinct = order.records;
    let spelled = spelled.map(|w| w.finish()).transpose()?;
    Ok((order.finish()?, spelled, distinct))
}

/// One part's trace rows given their URL's spelling (rows of URLs not in the list dropped),
/// sorted into time order.
fn trace_of(
    spill: &Spill,
    trace: Vec<Run>,
    spellings: impl Iterator<Item = io::Result<Spelling>>,
    budget: usize,
) -> io::Result<(Vec<Run>, u64)> {
    let mut out: Sorter<TraceRow> = Sorter::new(spill, budget);
    let mut spellings = spellings.peekable();
    for t in spill.merge::<TraceKey>(trace)? {
        let TraceKey(key, time, pos) = t?;
        // both in key order: move the spellings up to this key
        let path = loop {
            match spellings.peek() {
                Some(Ok(s)) if s.0 < key => {
                    spellings.next();
                }
                Some(Ok(s)) if s.0 == key => break Some(s.1.clone()),
                Some(Err(_)) => {
                    return Err(spellings
                        .next()
                        .and_then(Result::err)
                        .unwrap_or_else(|| io::Error::other("spelling run")));
                }
                _ => break None,
            }
        };
        // no spelling: the URL is not in the list (--top)
        if let Some(path) = path {
            out.push(TraceRow(time, pos, path))?;
        }
    }
    let n = out.records;
    Ok((out.finish()?, n))
}

/// Runs `f` on each part on its own thread; the results in part order.
fn each_part<I: Send, O: Send>(
    inputs: Vec<I>,
    f: impl Fn(I) -> io::Result<O> + Sync,
) -> io::Result<Vec<O>> {
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs.into_iter().map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Merges the threads' runs into the result, a thread a part: rows by key (absorbing equal
/// keys), then into the list's order; trace rows joined with their URL's spelling, then into
/// time order. Returns the rows kept in memory (`--top`), the distinct URL count, and the rest
/// on disk.
pub(super) fn finish(
    spill: Spill,
    mut parts: Parts,
    top: Option<usize>,
    want_trace: bool,
    budget: usize,
) -> io::Result<(Vec<Row>, u64, Spilled)> {
    let n = spill.parts;
    parts.ensure(n);
    // without --top every URL is kept: their spellings in key order, for the trace's join
    let spellings = want_trace && top.is_none();
    let done = each_part(parts.entries, |e| rows_of(&spill, e, spellings, budget / n))?;
    let mut order = Vec::new();
    let mut spelled = Vec::new();
    let mut distinct = 0;
    for (runs, s, d) in done {
        order.extend(runs);
        spelled.push(s);
        distinct += d;
    }
    let order = spill.compact_alone::<Row>(order)?;
    let (rows, on_disk) = match top {
        Some(n) => {
            let rows = spill
                .merge_alone::<Row>(order)?
                .take(n)
                .collect::<io::Result<Vec<Row>>>()?;
            (rows, None)
        }
        None => (Vec::new(), Some((order, distinct))),
    };
    let mut trace = (Vec::new(), 0);
    if want_trace {
        let mut kept: Vec<Spelling> = rows
            .iter()
            .map(|r| Spelling(r.key, r.path.clone()))
            .collect();
        kept.sort_unstable_by_key(|s| s.0);
        let kept = &kept;
        let inputs: Vec<(Vec<Run>, Option<Run>)> = parts.trace.into_iter().zip(spelled).collect();
        let done = each_part(inputs, |(t, s)| match s {
            Some(s) => trace_of(&spill, t, spill.merge::<Spelling>(vec![s])?, budget / n),
            None => {
                let kept = kept.iter().map(|s| Ok(Spelling(s.0, s.1.clone())));
                trace_of(&spill, t, kept, budget / n)
            }
        })?;
        for (runs, k) in done {
            trace.0.extend(runs);
            trace.1 += k;
        }
        trace.0 = spill.compact_alone::<TraceRow>(trace.0)?;
    }
    Ok((
        rows,
        distinct,
        Spilled {
            spill,
            rows: on_disk,
            trace,
        },
    ))
}
