//! `edgeload upload` and `download`, and the S3 steps of `run --upload` and `report s3://...`.

use std::path::{Path, PathBuf};

use super::{EXIT_OK, Interrupted, UsageError};
use crate::cli::{DownloadArgs, S3Args, UploadArgs};
use crate::s3::{self, S3Options, S3Url};

pub(crate) fn options(a: &S3Args) -> anyhow::Result<S3Options> {
    let attempt_timeout = super::duration("--s3-timeout", &a.s3_timeout)?;
    if attempt_timeout.is_zero() {
        return super::usage("--s3-timeout must be more than 0s");
    }
    if a.s3_attempts == 0 {
        return super::usage("--s3-attempts must be at least 1");
    }
    Ok(S3Options {
        endpoint: a.endpoint_url.clone(),
        region: a.s3_region.clone(),
        max_attempts: a.s3_attempts,
        attempt_timeout,
        static_credentials: None,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A future that resolves when the process gets SIGINT or SIGTERM (pending forever if neither
/// can be watched). The signals are watched from this call on, not from the first poll: call it
/// before the work starts (inside the runtime), so that a signal during the first steps of the
/// work is not missed.
#[cfg(unix)]
fn interrupted() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match watch {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

#[cfg(not(unix))]
fn interrupted() -> impl std::future::Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// `s` as one shell word.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && (s.bytes()).all(|b| b.is_ascii_alphanumeric() || b"/._-:=@%+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command that resumes an upload (objects already there are skipped).
fn retry_command(dir: &Path, url: &S3Url, a: &S3Args) -> String {
    let d = dir.display().to_string();
    let mut cmd = format!(
        "edgeload upload {} {}",
        shell_word(&d),
        shell_word(&url.to_string())
    );
    if let Some(e) = &a.endpoint_url {
        cmd += &format!(
            " --endpoint-url {}",
            shell_word(&crate::guard::redact::url(e))
        );
    }
    if let Some(r) = &a.s3_region {
        cmd += &format!(" --s3-region {}", shell_word(r));
    }
    format!(
        "the local results are intact in {}; retry with: {cmd}",
        dir.display()
    )
}

/// Uploads `dir`; on failure or Ctrl-C the message says the local copy is intact and how to
/// retry.
pub fn upload_dir(dir: &Path, dest: &str, a: &S3Args) -> anyhow::Result<s3::UploadReport> {
    let url = S3Url::parse(dest).map_err(|e| UsageError(e.to_string()))?;
    let opts = options(a)?;
    let rt = runtime()?;
    let retry = || retry_command(dir, &url, a);
    rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            r = async {
                let c = s3::client(&opts).await;
                s3::upload_dir(&c, dir, &url).await
            } => r.map_err(|e| anyhow::anyhow!(
                "upload failed: {}\n{}",
                crate::guard::redact::text(&e.to_string()),
                retry()
            )),
            _ = stop => Err(Interrupted(format!("upload interrupted\n{}", retry())).into()),
        }
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
pub(crate) fn download_to(
    src: &str,
    out: &Path,
    a: &S3Args,
) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let url = S3Url::parse(src).map_err(|e| UsageError(e.to_string()))?;
    let opts = options(a)?;
    let rt = runtime()?;
    rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            r = async {
                let c = s3::client(&opts).await;
                s3::download_run(&c, &url, out).await
            } => Ok(r?),
            _ = stop => Err(Interrupted(format!(
                "download of {src} interrupted: the regions downloaded and verified so far are in {}",
                out.display()
            )).into()),
        }
    })
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
