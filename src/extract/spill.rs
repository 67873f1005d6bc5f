//! Sorted runs on disk, for an extraction past its memory budget: records are written in their
//! order to files in a temporary folder and read back merged (a heap of the runs' heads), so
//! memory holds one read buffer a run, whatever the number of records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Runs merged at once at most, over all the parts merged at the same time; past that, runs
/// are merged into longer ones first (open files and read buffers stay bounded: 256 runs of
/// 128 KiB, 32 MiB, under the default limit of 1024 open files).
const FAN_IN_ALL: usize = 256;
#[cfg(test)]
const FAN_IN: usize = 64;

/// Read and write buffer of a run.
const BUF: usize = 128 << 10;

/// A record kept in runs: its sort key and its bytes.
pub(crate) trait Record: Sized {
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
    fn put(&self, out: &mut Vec<u8>);
    /// None at the end of the run
    fn get(r: &mut Bytes) -> io::Result<Option<Self>>;
    /// bytes held on the heap besides the record itself
    fn heap(&self) -> usize {
        0
    }
}

/// The folder of runs, removed with its contents when dropped.
pub(crate) struct Spill {
    dir: tempfile::TempDir,
    next: AtomicUsize,
    /// bytes written to runs so far
    pub(crate) written: AtomicU64,
    /// key ranges the runs are cut into, merged a thread each
    pub(crate) parts: usize,
}

/// One run: a file of records in their order.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    path: PathBuf,
}

impl Spill {
    /// A new folder inside `parent` (hidden, named for what it is).
    pub(crate) fn new(parent: &Path, parts: usize) -> io::Result<Spill> {
        let dir = tempfile::Builder::new()
            .prefix(".edgeload-spill-")
            .tempdir_in(parent)?;
        Ok(Spill {
            dir,
            next: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            parts: parts.clamp(1, 16),
        })
    }

    #[cfg(test)]
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new run, written record by record in their order.
    pub(crate) fn writer(&self) -> io::Result<RunWriter<'_>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("run-{n}"));
        Ok(RunWriter {
            w: BufWriter::with_capacity(BUF, std::fs::File::create(&path)?),
            spill: self,
            path,
            buf: Vec::with_capacity(256),
            bytes: 0,
        })
    }

    /// Writes records, already in their order, as a run.
    pub(crate) fn write<T: Record>(&self, records: impl IntoIterator<Item = T>) -> io::Result<Run> {
        let mut w = self.writer()?;
        for r in records {
            w.push(&r)?;
        }
        w.finish()
    }

    /// At most a fan-in of runs holding the same records: the first ones merged in groups.
    /// (For a merge that runs beside one in every other part.)
    pub(crate) fn compact<T: Record>(&self, runs: Vec<Run>) -> io::Result<Vec<Run>> {
        self.compact_to::<T>(runs, (FAN_IN_ALL / self.parts).clamp(8, 64))
    }

    /// `compact` for a merge that runs alone (the output's): all the fan-in.
    pub(crate) fn compact_alone<T: Record>(&self, runs: Vec<Run>) -> io::Result<Vec<Run>> {
        self.compact_to::<T>(runs, FAN_IN_ALL)
    }

    fn compact_to<T: Record>(&self, mut runs: Vec<Run>, fan_in: usize) -> io::Result<Vec<Run>> {
        while runs.len() > fan_in {
            let group: Vec<Run> = runs.drain(..fan_in).collect();
            let mut w = self.writer()?;
            for r in Merged::<T>::open(&group)? {
                w.push(&r?)?;
            }
            runs.push(w.finish()?);
            for r in group {
                let _ = std::fs::remove_file(&r.path);
            }
        }
        Ok(runs)
    }

    /// Runs merged into one ordered stream (compacted first), beside a merge in every part.
    pub(crate) fn merge<T: Record>(&self, runs: Vec<Run>) -> io::Result<Merged<T>> {
        Merged::open(&self.compact::<T>(runs)?)
    }

    /// Runs merged into one ordered stream, alone.
    pub(crate) fn merge_alone<T: Record>(&self, runs: Vec<Run>) -> io::Result<Merged<T>> {
        Merged::open(&self.compact_alone::<T>(runs)?)
    }
}

/// A run being written.
pub(crate) struct RunWriter<'s> {
    w: BufWriter<std::fs::File>,
    spill: &'s Spill,
    path: PathBuf,
    buf: Vec<u8>,
    bytes: u64,
}

impl RunWriter<'_> {
    pub(crate) fn push<T: Record>(&mut self, r: &T) -> io::Result<()> {
        self.buf.clear();
        r.put(&mut self.buf);
        self.w.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<Run> {
        self.w.flush()?;
        self.spill.written.fetch_add(self.bytes, Ordering::Relaxed);
        Ok(Run { path: self.path })
    }
}

/// A run's reader with the little-endian helpers records decode with.
pub(crate) struct Bytes {
    r: BufReader<std::fs::File>,
}

impl Bytes {
    /// The next `N` bytes; None at a clean end of the run (no byte of the record read).
    pub(crate) fn first<const N: usize>(&mut self) -> io::Result<Option<[u8; N]>> {
        let mut b = [0u8; N];
        let mut got = 0;
        while got < N {
            match self.r.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(b))
    }

    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn i64(&mut self) -> io::Result<i64> {
        self.u64().map(|v| v as i64)
    }

    /// A length-prefixed string (as `put_str` wrote it).
    pub(crate) fn string(&mut self) -> io::Result<Box<str>> {
        let mut n = [0u8; 4];
        self.r.read_exact(&mut n)?;
        let mut b = vec![0u8; u32::from_le_bytes(n) as usize];
        self.r.read_exact(&mut b)?;
        String::from_utf8(b)
            .map(String::into_boxed_str)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Runs merged: records in their order (equal keys: the earlier run's first).
pub(crate) struct Merged<T: Record> {
    runs: Vec<(Bytes, Option<T>)>,
    heads: BinaryHeap<Reverse<(T::Key, usize)>>,
}

impl<T: Record> Merged<T> {
    fn open(runs: &[Run]) -> io::Result<Merged<T>> {
        let mut m = Merged {
            runs: Vec::with_capacity(runs.len()),
            heads: BinaryHeap::with_capacity(runs.len()),
        };
        for (i, run) in runs.iter().enumerate() {
            let mut b = Bytes {
                r: BufReader::with_capacity(BUF, std::fs::File::open(&run.path)?),
            };
            let head = T::get(&mut b)?;
            if let Some(h) = &head {
                m.heads.push(Reverse((h.key(), i)));
            }
            m.runs.push((b, head));
        }
        Ok(m)
    }
}

impl<T: Record> Iterator for Merged<T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        let Reverse((_, i)) = self.heads.pop()?;
        let (b, head) = &mut self.runs[i];
        let out = head.take()?;
        match T::get(b) {
            Ok(Some(n)) => {
                self.heads.push(Reverse((n.key(), i)));
                *head = Some(n);
            }
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(out))
    }
}

/// Records gathered up to a memory budget, then sorted and written as a run.
pub(crate) struct Sorter<'s, T: Record> {
    spill: &'s Spill,
    buf: Vec<T>,
    bytes: usize,
    budget: usize,
    runs: Vec<Run>,
    pub(crate) records: u64,
}

impl<'s, T: Record> Sorter<'s, T> {
    pub(crate) fn new(spill: &'s Spill, budget: usize) -> Self {
        Sorter {
            spill,
            buf: Vec::new(),
            bytes: 0,
            budget: budget.max(1),
            runs: Vec::new(),
            records: 0,
        }
    }

    pub(crate) fn push(&mut self, r: T) -> io::Result<()> {
        // what is held: the records and their heaps (the buffer's spare capacity, at most as
        // much again, is kept for the next run)
        self.bytes += r.heap();
        self.buf.push(r);
        self.records += 1;
        if self.bytes + self.buf.len() * std::mem::size_of::<T>() >= self.budget {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.buf.sort_unstable_by_key(T::key);
        // drained, not dropped: the next run reuses the allocation
        let run = self.spill.write(self.buf.drain(..))?;
        self.runs.push(run);
        self.bytes = 0;
        Ok(())
    }

    /// Every record written; the runs, to be merged (`Spill::merge`).
    pub(crate) fn finish(mut self) -> io::Result<Vec<Run>> {
        self.flush()?;
        Ok(self.runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Pair(u64, Box<str>);

    impl Record for Pair {
        type Key = u64;
        fn key(&self) -> u64 {
            self.0
        }
        fn put(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0.to_le_bytes());
            put_str(out, &self.1);
        }
        fn get(r: &mut Bytes) -> io::Result<Option<Self>> {
            let Some(k) = r.first::<8>()? else {
                return Ok(None);
            };
            Ok(Some(Pair(u64::from_le_bytes(k), r.string()?)))
        }
        fn heap(&self) -> usize {
            self.1.len()
        }
    }

    /// Many small runs (more than FAN_IN, so merged in groups first) come back as one sorted
    /// stream holding every record; the folder goes with the spill.
    #[test]
    fn runs_past_the_fan_in_merge_back_in_order() {
        let parent = tempfile::tempdir().unwrap();
        let spill = Spill::new(parent.path(), 1).unwrap();
        let mut s = Sorter::new(&spill, 2000);
        let n = 20_000u64;
        for i in 0..n {
            let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 5000;
            s.push(Pair(k, format!("/{i}").into())).unwrap();
        }
        let runs = s.finish().unwrap();
        // runs of about budget / record size (~70 records), never one a record once the
        // buffer's capacity has grown past the budget
        assert!(
            runs.len() > FAN_IN && runs.len() < 600,
            "{} runs",
            runs.len()
        );
        let out: Vec<Pair> = spill
            .merge::<Pair>(runs)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(out.len() as u64, n);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut names: Vec<&str> = out.iter().map(|p| &*p.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len() as u64, n);
        let dir = spill.path().to_path_buf();
        assert!(dir.exists());
        drop(spill);
        assert!(!dir.exists());
    }

    /// A run cut short (a full disk, a truncated file) is an error, not a shorter list.
    #[test]
    fn a_truncated_run_is_an_error() {
        let parent = tempfile::tempdir().unwrap();
        let spill = Spill::new(parent.path(), 1).unwrap();
        let run = spill
            .write((0..10u64).map(|i| Pair(i, "/abc".into())))
            .unwrap();
        let len = std::fs::metadata(&run.path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&run.path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let r: io::Result<Vec<Pair>> = spill.merge::<Pair>(vec![run]).unwrap().collect();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
