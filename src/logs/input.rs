//! Reading logs: files, directories (recursively), globs and `-` (stdin); gzip and zstd detected
//! by their magic bytes, not only by extension; blocks of whole lines for parallel parsing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{pattern:?}: bad glob pattern: {msg}")]
    Glob { pattern: String, msg: String },
    #[error("{pattern:?} matches no file")]
    NoMatch { pattern: String },
}

/// A log source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<(), InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
        {
            out.push(Source::File(p));
        }
    }
    Ok(())
}

/// Expands the command line's inputs, in order.
pub fn expand(args: &[String]) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let p = Path::new(a);
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(Source::File(p.to_path_buf()));
        } else if a.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(a)
                .map_err(|e| InputError::Glob {
                    pattern: a.clone(),
                    msg: e.to_string(),
                })?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(InputError::NoMatch { pattern: a.clone() });
            }
            matched.sort();
            out.extend(matched.into_iter().map(Source::File));
        } else {
            return Err(InputError::Io {
                path: a.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such file or directory"),
            });
        }
    }
    Ok(out)
}

/// Opens a source, decompressing gzip (also multi-member) and zstd by magic bytes.
pub fn open(src: &Source) -> Result<Box<dyn Read + Send>, InputError> {
    let name = src.name();
    let io = |source| InputError::Io {
        path: name.clone(),
        source,
    };
    let raw: Box<dyn Read + Send> = match src {
        Source::Stdin => Box::new(io::stdin()),
        Source::File(p) => Box::new(File::open(p).map_err(io)?),
    };
    let mut br = BufReader::with_capacity(1 << 16, raw);
    let head = br.fill_buf().map_err(io)?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(br).map_err(io)?)
    } else {
        Box::new(br)
    })
}

/// Reads whole lines in blocks of about `size` bytes. The last line may lack its newline
/// (a truncated file); it is still returned.
pub struct Blocks<R: Read> {
    r: R,
    size: usize,
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> Blocks<R> {
    pub fn new(r: R, size: usize) -> Self {
        Blocks {
            r,
            size,
            carry: Vec::new(),
            eof: false,
        }
    }

    /// The next block of whole lines, or None at the end.
    pub fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        let want = self.size.max(buf.len() + 1);
        buf.reserve(want.saturating_sub(buf.len()));
        while !self.eof && buf.len() < self.size {
            let start = buf.len();
            buf.resize(start + (self.size - start).max(64 * 1024), 0);
            let n = loop {
                match self.r.read(&mut buf[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(start + n);
            if n == 0 {
                self.eof = true;
            }
        }
        if self.eof {
            return Ok((!buf.is_empty()).then_some(buf));
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(i) => {
                self.carry = buf[i + 1..].to_vec();
                buf.truncate(i + 1);
                Ok(Some(buf))
            }
            None => {
                // a line longer than the block: keep reading into it
                self.carry = buf;
                self.size *= 2;
                self.next_block()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn blocks_keep_lines_whole() {
        let text: String =
            (0..1000).map(|i| format!("line {i}\n")).collect::<String>() + "truncated";
        let mut b = Blocks::new(text.as_bytes(), 100);
        let mut all = Vec::new();
        while let Some(block) = b.next_block().unwrap() {
            assert!(block.ends_with(b"\n") || block.ends_with(b"truncated"));
            all.extend(block);
        }
        assert_eq!(all, text.as_bytes());
    }

    #[test]
    fn gzip_and_zstd_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"a\nb\n";
        let gz = dir.path().join("log.txt"); // no .gz extension on purpose
        let mut e =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap();
        let zs = dir.path().join("log2");
        std::fs::write(&zs, zstd::encode_all(&text[..], 1).unwrap()).unwrap();
        for p in [gz, zs] {
            let mut s = String::new();
            open(&Source::File(p))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s.as_bytes(), text);
        }
        let got = expand(&[dir.path().display().to_string()]).unwrap();
        assert_eq!(got.len(), 2);
        let e = expand(&[dir.path().join("*.nothing").display().to_string()]).unwrap_err();
        assert!(e.to_string().contains("matches no file"));
    }
}
