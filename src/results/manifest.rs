//! MANIFEST.json: written last; lists every file of the results directory with its size and
//! sha256. Its presence means the directory is complete; `verify` checks it.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::summary::FORMAT_VERSION;

pub const NAME: &str = "MANIFEST.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub run_id: String,
    pub region: String,
    pub files: Vec<FileEntry>,
}

pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, hex::encode(h.finalize())))
}

impl Manifest {
    /// Hashes `files` (names relative to `dir`) and writes MANIFEST.json atomically.
    pub fn write(
        dir: &Path,
        run_id: &str,
        region: &str,
        files: &[&str],
    ) -> std::io::Result<Manifest> {
        let mut entries = Vec::new();
        for name in files {
            let (size, sha256) = sha256_file(&dir.join(name))?;
            entries.push(FileEntry {
                name: name.to_string(),
                size,
                sha256,
            });
        }
        let m = Manifest {
            format_version: FORMAT_VERSION,
            run_id: run_id.to_string(),
            region: region.to_string(),
            files: entries,
        };
        crate::guard::atomic::write(
            &dir.join(NAME),
            &serde_json::to_vec_pretty(&m).map_err(std::io::Error::other)?,
        )?;
        Ok(m)
    }

    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let p = dir.join(NAME);
        let bytes = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        Manifest::parse(&bytes, &p.display().to_string())
    }

    /// Parses a manifest read from `origin` (a path or an s3:// key, for messages): its version
    /// must be this edgeload's, and every name one of the results files (`super::FILES`), never
    /// a path: a manifest may come from anyone who can write under a run's S3 prefix.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("{origin} is not a valid manifest: {e}"))?;
        if !super::summary::READS_VERSIONS.contains(&m.format_version) {
            return Err(format!(
                "{origin} has format_version {}; this edgeload reads versions 1 to {FORMAT_VERSION} (upgrade edgeload)",
                m.format_version
            ));
        }
        for f in &m.files {
            crate::guard::names::results_file(&f.name, &super::FILES)
                .map_err(|e| format!("{origin} {e}"))?;
        }
        Ok(m)
    }

    /// Checks every listed file's size and sha256; returns the first mismatch.
    pub fn verify(&self, dir: &Path) -> Result<(), String> {
        for f in &self.files {
            let (size, sha) =
                sha256_file(&dir.join(&f.name)).map_err(|e| format!("{}: {e}", f.name))?;
            if size != f.size || sha != f.sha256 {
                return Err(format!(
                    "{}: size {size} sha256 {sha}, manifest says size {} sha256 {}",
                    f.name, f.size, f.sha256
                ));
            }
        }
        Ok(())
    }
}
