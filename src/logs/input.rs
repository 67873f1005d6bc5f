//! Reading logs: files, directories (recursively), globs and `-` (stdin); gzip and zstd detected
//! by their magic bytes, not only by extension; blocks of whole lines for parallel parsing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// an object read as a stream (an S3 object; `s3` makes the opener)
    Remote(Remote),
}

/// Opens a remote object as a stream of its bytes.
pub type Opener = Arc<dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// A remote object: its name (`s3://bucket/key`) and how to open it.
#[derive(Clone)]
pub struct Remote {
    pub name: String,
    pub open: Opener,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for Remote {
    fn eq(&self, o: &Remote) -> bool {
        self.name == o.name
    }
}

impl Eq for Remote {}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".into(),
            Source::File(p) => p.display().to_string(),
            Source::Remote(r) => r.name.clone(),
        }
    }
}

/// How far a file's lines may lie from the time its name gives, in seconds: CloudFront and ALB
/// name a file for the hour or five minutes it covers (3 h covers late delivery); S3 server
/// access logs name it for its delivery, "within a few hours" of the requests, best effort.
pub fn name_time_margin(name: &str) -> i64 {
    match name_time(name) {
        Some(_)
            if name
                .rsplit('/')
                .next()
                .is_some_and(|b| b.splitn(7, '-').count() == 7) =>
        {
            24 * 3600
        }
        _ => 3 * 3600,
    }
}

/// The time a log file's name says it covers, in unix seconds (`--since`/`--until` skip whole
/// objects by it, `name_time_margin` away): CloudFront's `DIST.YYYY-MM-DD-HH.ID.gz`, ALB's
/// `..._YYYYMMDDTHHMMZ_...`, S3 server access logs' `YYYY-MM-DD-HH-MM-SS-ID`. None: a name in
/// no such form.
pub fn name_time(name: &str) -> Option<i64> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let num = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let at = |y, mo, d, h, mi, s| -> Option<i64> {
        let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
        let date =
            time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
                .ok()?;
        let t = time::Time::from_hms(
            u8::try_from(h).ok()?,
            u8::try_from(mi).ok()?,
            u8::try_from(s).ok()?,
        )
        .ok()?;
        Some(
            time::PrimitiveDateTime::new(date, t)
                .assume_utc()
                .unix_timestamp(),
        )
    };
    // ALB: a field of the form 20240312T1005Z between underscores
    if let Some(f) = base
        .split('_')
        .find(|f| f.len() == 14 && f.is_ascii() && f.as_bytes()[8] == b'T' && f.ends_with('Z'))
    {
        let (d, t) = (&f[..8], &f[9..13]);
        return at(
            num(&d[..4])?,
            num(&d[4..6])?,
            num(&d[6..8])?,
            num(&t[..2])?,
            num(&t[2..])?,
            0,
        );
    }
    // CloudFront: the second dot-separated field is YYYY-MM-DD-HH
    if let Some(f) = base.split('.').nth(1)
        && f.len() == 13
    {
        let p: Vec<&str> = f.split('-').collect();
        if let [y, mo, d, h] = p[..] {
            return at(num(y)?, num(mo)?, num(d)?, num(h)?, 0, 0);
        }
    }
    // S3 server access logs: YYYY-MM-DD-HH-MM-SS-UNIQUE
    let p: Vec<&str> = base.splitn(7, '-').collect();
    if let [y, mo, d, h, mi, s, _] = p[..]
        && y.len() == 4
    {
        return at(num(y)?, num(mo)?, num(d)?, num(h)?, num(mi)?, num(s)?);
    }
    None
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
        Source::Remote(r) => (r.open)().map_err(io)?,
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
    fn names_give_their_times() {
        let t = |s| name_time(s);
        // 2024-03-12T10:00:00Z
        let ten = 1_710_237_600;
        assert_eq!(t("logs/cf/E2ABCDEF.2024-03-12-10.a1b2c3d4.gz"), Some(ten));
        assert_eq!(
            t(
                "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/03/12/123456789012_elasticloadbalancing_us-east-1_app.my-lb.1a2b3c4d_20240312T1005Z_10.0.0.1_5x6y7z.log.gz"
            ),
            Some(ten + 300)
        );
        assert_eq!(
            t("s3logs/2024-03-12-10-00-07-1A2B3C4D5E6F7A8B"),
            Some(ten + 7)
        );
        for bad in [
            "access.log",
            "E2ABCDEF.2024-13-12-10.x.gz",
            "E2ABCDEF.2024-03-12-xx.x.gz",
            "a_20241312T1005Z_b",
            "2024-03-12-10-00-99-X",
            "a_20€123T1005Z_b",
            "E2.2024-03-1€-10.x.gz",
            "",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

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
