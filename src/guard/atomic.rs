//! Files that appear whole or not at all: written to a temporary file beside the destination,
//! flushed and synced, then renamed over it. A command killed mid-write (SIGINT, SIGTERM, a full
//! disk) leaves the previous file, or none, never a truncated one that a later step accepts.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn with_path(p: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// A file being written; `commit` puts it in place. Dropped without `commit`, it disappears.
pub struct AtomicFile {
    inner: Inner,
    dest: PathBuf,
}

enum Inner {
    Temp(BufWriter<tempfile::NamedTempFile>),
    /// the destination is no regular file (a symlink such as /dev/stdout, a FIFO): written
    /// through, as the user asked, not replaced
    Direct(BufWriter<std::fs::File>),
}

impl AtomicFile {
    pub fn create(dest: &Path) -> std::io::Result<AtomicFile> {
        if dest
            .symlink_metadata()
            .is_ok_and(|m| !m.file_type().is_file())
        {
            let f = std::fs::File::create(dest).map_err(|e| with_path(dest, e))?;
            return Ok(AtomicFile {
                inner: Inner::Direct(BufWriter::with_capacity(1 << 16, f)),
                dest: dest.to_path_buf(),
            });
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(".tmp");
        // the mode a plain create would give (0666 less the umask), not a temp file's 0600
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = b.tempfile_in(dir).map_err(|e| with_path(dest, e))?;
        Ok(AtomicFile {
            inner: Inner::Temp(BufWriter::with_capacity(1 << 16, tmp)),
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> std::io::Result<()> {
        let dest = self.dest;
        match self.inner {
            Inner::Direct(mut w) => w.flush().map_err(|e| with_path(&dest, e)),
            Inner::Temp(w) => {
                let tmp = w
                    .into_inner()
                    .map_err(|e| with_path(&dest, e.into_error()))?;
                tmp.as_file().sync_all().map_err(|e| with_path(&dest, e))?;
                tmp.persist(&dest).map_err(|e| with_path(&dest, e.error))?;
                Ok(())
            }
        }
    }

    fn w(&mut self) -> &mut dyn Write {
        match &mut self.inner {
            Inner::Temp(w) => w,
            Inner::Direct(w) => w,
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.w().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w().flush()
    }
}

/// Writes `data` to `dest` atomically.
pub fn write(dest: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(data).map_err(|e| with_path(dest, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_write_leaves_the_old_file_and_no_partial_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("urls.csv");
        write(&p, b"path,count\n/a.jpg,1\n").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"path,count\n/b.j").unwrap();
            f.flush().unwrap();
            // the writer dies here (no commit)
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"path,count\n/a.jpg,1\n");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("urls.csv")]);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn files_get_the_usual_mode_and_links_are_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write(&p, b"{}").unwrap();
        let plain = d.path().join("b.json");
        std::fs::write(&plain, b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&plain));
        let link = d.path().join("link.csv");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        write(&link, b"through").unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&plain).unwrap(), b"through");
    }

    #[test]
    fn errors_name_the_destination() {
        let e = write(Path::new("/nonexistent-dir/x.csv"), b"x").unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/x.csv"), "{e}");
    }
}
