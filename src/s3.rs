//! Upload and download results directories to S3 (or an S3-compatible store). Knows files,
//! sizes and sha256 checksums, nothing of histograms. MANIFEST.json goes up last, so a region
//! whose manifest is present is complete; a re-run skips objects already there with the same
//! size and sha256 (resumable); the local directory is never touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};

const MANIFEST: &str = "MANIFEST.json";
/// Files above this go up in parts.
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;
const PART: usize = 8 << 20;
/// A server that accepts and never answers must not hang a command: connect and read-stall
/// limits, and one for a whole attempt (an 8 MB part on a slow link fits in it).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{0:?} is not an s3:// URL (s3://BUCKET/PREFIX/)")]
    BadUrl(String),
    #[error("{path}: {msg}")]
    Local { path: String, msg: String },
    #[error("s3://{bucket}/{key}: {msg}")]
    Remote {
        bucket: String,
        key: String,
        msg: String,
    },
    #[error("{dir} has no MANIFEST.json: the run is not complete, nothing uploaded")]
    Incomplete { dir: String },
    #[error("s3://{bucket}/{key}: not found")]
    NotFound { bucket: String, key: String },
    #[error("{dir}: {msg}; nothing uploaded")]
    Modified { dir: String, msg: String },
    #[error("s3://{bucket}/{key}: region rejected: {msg}")]
    Untrusted {
        bucket: String,
        key: String,
        msg: String,
    },
    #[error("s3://{bucket}/{key}: downloaded {got}, the manifest says {want}")]
    Mismatch {
        bucket: String,
        key: String,
        got: String,
        want: String,
    },
}

/// `s3://bucket/prefix/` split; the prefix has no leading slash and ends with one (or is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url, S3Error> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error::BadUrl(s.to_string()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || prefix.contains("//") {
            return Err(S3Error::BadUrl(s.to_string()));
        }
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
    pub fn join(&self, sub: &str) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            prefix: format!("{}{}/", self.prefix, sub.trim_matches('/')),
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// S3-compatible endpoint (also AWS_ENDPOINT_URL): path-style, checksums only when required
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub max_attempts: u32,
    /// the longest one attempt of a request may take (zero: `ATTEMPT_TIMEOUT`)
    pub attempt_timeout: Duration,
    /// explicit (access key, secret): tests; otherwise the standard chain
    pub static_credentials: Option<(String, String)>,
}

/// The standard AWS credential chain (environment, profile, SSO, IMDSv2 instance role).
pub async fn client(o: &S3Options) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &o.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let endpoint = o
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    if let Some(e) = &endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some((id, secret)) = &o.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "edgeload-static",
        ));
    }
    let conf = loader.load().await;
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(o.max_attempts.max(1))
        .with_initial_backoff(Duration::from_millis(200));
    let attempt = if o.attempt_timeout.is_zero() {
        ATTEMPT_TIMEOUT
    } else {
        o.attempt_timeout
    };
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(attempt))
        .read_timeout(READ_TIMEOUT.min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * o.max_attempts.max(1) + Duration::from_secs(10))
        .build();
    let mut b = aws_sdk_s3::config::Builder::from(&conf)
        .retry_config(retry)
        .timeout_config(timeouts);
    if endpoint.is_some() {
        b = b
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    Client::from_conf(b.build())
}

fn remote(bucket: &str, key: &str, e: impl std::error::Error) -> S3Error {
    S3Error::Remote {
        bucket: bucket.to_string(),
        key: key.to_string(),
        msg: format!("{}", DisplayErrorContext(e)),
    }
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[derive(Debug, Default, PartialEq)]
pub struct UploadReport {
    pub uploaded: Vec<String>,
    pub skipped: Vec<String>,
}

/// Uploads a complete results directory; MANIFEST.json last.
pub async fn upload_dir(c: &Client, dir: &Path, dest: &S3Url) -> Result<UploadReport, S3Error> {
    let local = |p: &Path, msg: String| S3Error::Local {
        path: p.display().to_string(),
        msg,
    };
    if !dir.join(MANIFEST).exists() {
        return Err(S3Error::Incomplete {
            dir: dir.display().to_string(),
        });
    }
    let m = crate::results::manifest::Manifest::read(dir).map_err(|e| local(dir, e))?;
    // every file as its manifest says, before anything goes up: a file edited after the run
    // would make every later download of the run fail
    m.verify(dir).map_err(|msg| S3Error::Modified {
        dir: dir.display().to_string(),
        msg: format!("does not match its {MANIFEST}: {msg}"),
    })?;
    let mut names: Vec<(String, Option<String>)> = (m.files.iter())
        .map(|f| (f.name.clone(), Some(f.sha256.clone())))
        .collect();
    names.push((MANIFEST.to_string(), None));
    let mut report = UploadReport::default();
    for (name, want) in names {
        let path = dir.join(&name);
        let data = std::fs::read(&path).map_err(|e| local(&path, e.to_string()))?;
        let sum = sha256(&data);
        if want.is_some_and(|w| w != sum) {
            return Err(S3Error::Modified {
                dir: dir.display().to_string(),
                msg: format!("{name} changed during the upload"),
            });
        }
        let key = dest.key(&name);
        // already there with the same size and checksum: skip (a resumed upload)
        if let Ok(h) = c.head_object().bucket(&dest.bucket).key(&key).send().await
            && h.content_length() == Some(data.len() as i64)
            && h.metadata()
                .and_then(|m| m.get("sha256"))
                .is_some_and(|s| *s == sum)
        {
            report.skipped.push(name);
            continue;
        }
        if data.len() as u64 > MULTIPART_THRESHOLD {
            multipart(c, &dest.bucket, &key, &data, &sum).await?;
        } else {
            c.put_object()
                .bucket(&dest.bucket)
                .key(&key)
                .metadata("sha256", &sum)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| remote(&dest.bucket, &key, e))?;
        }
        report.uploaded.push(name);
    }
    Ok(report)
}

async fn multipart(
    c: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    sum: &str,
) -> Result<(), S3Error> {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .metadata("sha256", sum)
        .send()
        .await
        .map_err(|e| remote(bucket, key, e))?;
    let id = up.upload_id().unwrap_or_default().to_string();
    let mut parts = Vec::new();
    let result: Result<(), S3Error> = async {
        for (i, chunk) in data.chunks(PART).enumerate() {
            let n = i as i32 + 1;
            let r = c
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| remote(bucket, key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(r.e_tag().map(str::to_string))
                    .build(),
            );
        }
        c.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| remote(bucket, key, e))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = c
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .send()
            .await;
    }
    result
}

/// The longest a response body may take to arrive: the SDK's timeouts end with the headers.
fn body_deadline(c: &Client) -> Duration {
    (c.config().timeout_config())
        .and_then(|t| t.operation_attempt_timeout())
        .unwrap_or(ATTEMPT_TIMEOUT)
}

/// Reads an object whose size is known (from a manifest): a different Content-Length fails
/// before the body is read, so a hostile listing cannot make us hold a huge object.
async fn get(c: &Client, bucket: &str, key: &str, max: u64) -> Result<Vec<u8>, S3Error> {
    let o = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                S3Error::NotFound {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }
            } else {
                remote(bucket, key, e)
            }
        })?;
    let len = o.content_length().unwrap_or(-1);
    if len < 0 || len as u64 > max {
        return Err(S3Error::Mismatch {
            bucket: bucket.to_string(),
            key: key.to_string(),
            got: format!("{len} bytes announced"),
            want: format!("at most {max} bytes"),
        });
    }
    let body = tokio::time::timeout(body_deadline(c), o.body.collect())
        .await
        .map_err(|_| S3Error::Remote {
            bucket: bucket.to_string(),
            key: key.to_string(),
            msg: "the body did not arrive in time (--s3-timeout)".into(),
        })?
        .map_err(|e| remote(bucket, key, e))?;
    Ok(body.into_bytes().to_vec())
}

/// Every page of a listing under `url`'s prefix (with `delimiter`: one level), each handed to
/// `each`. A server that hands back the token it was given, or a token on a last page, ends it.
async fn list_pages(
    c: &Client,
    url: &S3Url,
    delimiter: Option<&str>,
    mut each: impl FnMut(&aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output),
) -> Result<(), S3Error> {
    let mut token: Option<String> = None;
    loop {
        let asked = token.clone();
        let r = c
            .list_objects_v2()
            .bucket(&url.bucket)
            .prefix(&url.prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| remote(&url.bucket, &url.prefix, e))?;
        each(&r);
        match r.next_continuation_token() {
            Some(t) if r.is_truncated() == Some(true) && asked.as_deref() != Some(t) => {
                token = Some(t.to_string())
            }
            _ => return Ok(()),
        }
    }
}

/// Every object under a prefix (all depths) as (key, size), in key order.
pub async fn list_objects(c: &Client, url: &S3Url) -> Result<Vec<(String, u64)>, S3Error> {
    let mut out = Vec::new();
    list_pages(c, url, None, |r| {
        for o in r.contents() {
            if let Some(k) = o.key() {
                out.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
    })
    .await?;
    out.sort();
    Ok(out)
}

/// An object read as a stream from a thread outside the runtime: each chunk waits at most
/// `READ_TIMEOUT` (a stalled transfer is an error, not a hang).
struct ObjectReader {
    rt: tokio::runtime::Handle,
    body: ByteStream,
    chunk: bytes::Bytes,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            // the timer is made inside the runtime (a reader thread is outside it)
            let body = &mut self.body;
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(READ_TIMEOUT, body.next()).await });
            match next {
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no data for {} s", READ_TIMEOUT.as_secs()),
                    ));
                }
                Ok(None) => return Ok(0),
                Ok(Some(Err(e))) => {
                    return Err(std::io::Error::other(format!("{}", DisplayErrorContext(e))));
                }
                Ok(Some(Ok(b))) => self.chunk = b,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// An object as a log source for `extract`: opened when a reader thread gets to it. `rt` must
/// be a multi-threaded runtime (its workers drive the transfer while a reader blocks).
pub fn log_source(
    rt: tokio::runtime::Handle,
    c: Client,
    bucket: &str,
    key: &str,
) -> crate::logs::input::Source {
    let (b, k) = (bucket.to_string(), key.to_string());
    // a key is anyone's bytes: shown escaped wherever the source is named
    let name = format!("s3://{bucket}/{}", crate::guard::quote::escape(key));
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let o = rt
            .block_on(c.get_object().bucket(&b).key(&k).send())
            .map_err(|e| std::io::Error::other(format!("{}", DisplayErrorContext(e))))?;
        Ok(Box::new(ObjectReader {
            rt: rt.clone(),
            body: o.body,
            chunk: bytes::Bytes::new(),
        }))
    };
    crate::logs::input::Source::Remote(crate::logs::input::Remote {
        name,
        open: std::sync::Arc::new(open),
    })
}

/// The folders directly under a prefix (`.../runs/RUN_ID/REGION/`, `.../REGION/runner-K/`).
pub(crate) async fn list_regions(c: &Client, run: &S3Url) -> Result<Vec<String>, S3Error> {
    let mut out = Vec::new();
    list_pages(c, run, Some("/"), |r| {
        for p in r.common_prefixes() {
            if let Some(p) = p.prefix() {
                let name = p.strip_prefix(run.prefix.as_str()).unwrap_or(p);
                out.push(name.trim_end_matches('/').to_string());
            }
        }
    })
    .await?;
    out.sort();
    Ok(out)
}

/// Downloads one results directory, verifying each file against MANIFEST.json. `Ok(None)`: the
/// manifest is missing (an incomplete region).
pub async fn download_dir(
    c: &Client,
    src: &S3Url,
    dest: &Path,
) -> Result<Option<PathBuf>, S3Error> {
    let mkey = src.key(MANIFEST);
    // a manifest is a few hundred bytes; 1 MB is plenty
    let mbytes = match get(c, &src.bucket, &mkey, 1 << 20).await {
        Ok(b) => b,
        Err(S3Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let m = crate::results::manifest::Manifest::parse(&mbytes, MANIFEST).map_err(|msg| {
        S3Error::Untrusted {
            bucket: src.bucket.clone(),
            key: mkey.clone(),
            msg,
        }
    })?;
    std::fs::create_dir_all(dest).map_err(|e| S3Error::Local {
        path: dest.display().to_string(),
        msg: e.to_string(),
    })?;
    for f in &m.files {
        let key = src.key(&f.name);
        let data = get(c, &src.bucket, &key, f.size).await?;
        let sum = sha256(&data);
        if data.len() as u64 != f.size || sum != f.sha256 {
            return Err(S3Error::Mismatch {
                bucket: src.bucket.clone(),
                key,
                got: format!("{} bytes sha256 {sum}", data.len()),
                want: format!("{} bytes sha256 {}", f.size, f.sha256),
            });
        }
        let p = dest.join(&f.name);
        crate::guard::atomic::write(&p, &data).map_err(|e| S3Error::Local {
            path: p.display().to_string(),
            msg: e.to_string(),
        })?;
    }
    let p = dest.join(MANIFEST);
    crate::guard::atomic::write(&p, &mbytes).map_err(|e| S3Error::Local {
        path: p.display().to_string(),
        msg: e.to_string(),
    })?;
    Ok(Some(dest.to_path_buf()))
}

/// Downloads every complete region of a run (or the single directory `src` names); regions
/// without a manifest are reported as warnings.
pub async fn download_run(
    c: &Client,
    src: &S3Url,
    dest: &Path,
) -> Result<(Vec<PathBuf>, Vec<String>), S3Error> {
    let mut dirs = Vec::new();
    let mut warnings = Vec::new();
    let regions = list_regions(c, src).await?;
    if regions.is_empty() {
        match download_dir(c, src, dest).await? {
            Some(d) => dirs.push(d),
            None => warnings.push(format!(
                "{src}: no results (no region folders, no {MANIFEST})"
            )),
        }
        return Ok((dirs, warnings));
    }
    // a folder name from the listing becomes a local folder: a label, never `..` or a path
    let checked = |what: &str, at: &S3Url, name: &str| {
        crate::guard::names::label(what, name).map_err(|msg| S3Error::Untrusted {
            bucket: at.bucket.clone(),
            key: format!("{}{name}/", at.prefix),
            msg,
        })
    };
    for r in regions {
        checked("region folder", src, &r)?;
        let sub = src.join(&r);
        if let Some(d) = download_dir(c, &sub, &dest.join(&r)).await? {
            dirs.push(d);
            continue;
        }
        // a region of several runners (`runs/RUN/REGION/runner-K/`): each its own directory
        let runners = list_regions(c, &sub).await?;
        if runners.is_empty() {
            warnings.push(format!(
                "{sub}: no {MANIFEST} (region missing or upload incomplete): skipped"
            ));
        }
        for k in runners {
            checked("runner folder", &sub, &k)?;
            let one = sub.join(&k);
            match download_dir(c, &one, &dest.join(&r).join(&k)).await? {
                Some(d) => dirs.push(d),
                None => warnings.push(format!(
                    "{one}: no {MANIFEST} (runner failed or upload incomplete): skipped"
                )),
            }
        }
    }
    Ok((dirs, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://bucket/a/runs/r1").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.prefix.as_str()),
            ("bucket", "a/runs/r1/")
        );
        assert_eq!(u.key("summary.json"), "a/runs/r1/summary.json");
        assert_eq!(
            u.join("us-east-1").to_string(),
            "s3://bucket/a/runs/r1/us-east-1/"
        );
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert!(S3Url::parse("http://b/x").is_err());
        assert!(S3Url::parse("s3:///x").is_err());
    }
}
