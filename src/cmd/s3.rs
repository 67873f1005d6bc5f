//! `edgeload upload` and `download`, and the S3 steps of `run --upload` and `report s3://...`.

use std::path::{Path, PathBuf};

use super::{EXIT_OK, UsageError};
use crate::cli::{DownloadArgs, S3Args, UploadArgs};
use crate::s3::{self, S3Options, S3Url};

pub fn options(a: &S3Args) -> S3Options {
    S3Options {
        endpoint: a.endpoint_url.clone(),
        region: a.s3_region.clone(),
        max_attempts: a.s3_attempts,
        static_credentials: None,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Uploads `dir`; on failure the message says the local copy is intact and how to retry.
pub fn upload_dir(dir: &Path, dest: &str, a: &S3Args) -> anyhow::Result<s3::UploadReport> {
    let url = S3Url::parse(dest).map_err(|e| UsageError(e.to_string()))?;
    let rt = runtime()?;
    rt.block_on(async {
        let c = s3::client(&options(a)).await;
        s3::upload_dir(&c, dir, &url).await
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "upload failed: {e}\nthe local results are intact in {}; retry with: edgeload upload {} {url}",
            dir.display(),
            dir.display()
        )
    })
}

pub fn upload(a: UploadArgs) -> anyhow::Result<i32> {
    let r = upload_dir(&a.dir, &a.dest, &a.s3)?;
    eprintln!(
        "uploaded {} files, {} already there (same size and sha256) to {}",
        r.uploaded.len(),
        r.skipped.len(),
        a.dest
    );
    Ok(EXIT_OK)
}

/// Downloads every complete region under `src` into `out`: (directories, warnings).
pub fn download_to(
    src: &str,
    out: &Path,
    a: &S3Args,
) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let url = S3Url::parse(src).map_err(|e| UsageError(e.to_string()))?;
    let rt = runtime()?;
    Ok(rt.block_on(async {
        let c = s3::client(&options(a)).await;
        s3::download_run(&c, &url, out).await
    })?)
}

pub fn download(a: DownloadArgs) -> anyhow::Result<i32> {
    let (dirs, warnings) = download_to(&a.src, &a.out, &a.s3)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for d in &dirs {
        eprintln!("downloaded and verified {}", d.display());
    }
    if dirs.is_empty() {
        return super::usage(format!("{}: no complete results directory", a.src));
    }
    Ok(EXIT_OK)
}
