//! S3 against a real S3-compatible server on loopback (Garage, started here per test binary and
//! killed with it): upload, resume, checksum mismatch, incomplete regions, bad credentials, a
//! server that is down, and a simulated three-region run merged by `report s3://...`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use edgeload::s3::{self, S3Options, S3Url};

use crate::common::*;

const KEY_ID: &str = "GK0123456789abcdef01234567";
fn secret() -> String {
    "0".repeat(64)
}

struct Garage {
    _child: std::process::Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

fn garage() -> &'static Garage {
    static G: OnceLock<Garage> = OnceLock::new();
    G.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (rpc, api, admin) = (free_port(), free_port(), free_port());
        let secret_rpc: String = (0..64).map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char).collect();
        let conf = format!(
            "metadata_dir = \"{m}\"\ndata_dir = \"{da}\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret_rpc}\"\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{api}\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            m = d.join("meta").display(),
            da = d.join("data").display()
        );
        let cfg = d.join("garage.toml");
        std::fs::write(&cfg, conf).unwrap();
        let g = |args: &[&str]| {
            let o = Command::new("garage").arg("-c").arg(&cfg).args(args).output().expect("garage (scripts/test.sh installs it)");
            assert!(o.status.success(), "garage {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        // The server dies with this test process: PR_SET_PDEATHSIG fires when the *thread* that
        // spawned it ends, so a thread that lives as long as the process spawns it.
        let (tx, rx) = std::sync::mpsc::channel();
        let cfg2 = cfg.clone();
        std::thread::spawn(move || {
            let mut cmd = Command::new("garage");
            cmd.arg("-c").arg(&cfg2).arg("server").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let _ = tx.send(cmd.spawn().expect("garage (scripts/test.sh installs it)"));
            loop {
                std::thread::park();
            }
        });
        let child = rx.recv().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !Command::new("garage").arg("-c").arg(&cfg).arg("status").output().map(|o| o.status.success()).unwrap_or(false) {
            assert!(std::time::Instant::now() < deadline, "garage did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        let id = g(&["node", "id", "-q"]);
        g(&["layout", "assign", "-z", "dc1", "-c", "1G", &id.trim()[..64]]);
        g(&["layout", "apply", "--version", "1"]);
        g(&["key", "import", "--yes", "-n", "test", KEY_ID, &secret()]);
        g(&["bucket", "create", "results"]);
        g(&["bucket", "allow", "--read", "--write", "--owner", "results", "--key", "test"]);
        Garage {
            _child: child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{api}"),
        }
    })
}

fn opts(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.into()),
        region: Some("garage".into()),
        max_attempts: 3,
        static_credentials: Some((KEY_ID.into(), secret())),
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A small complete results directory from a real run against the edge.
fn results_dir(dir: &Path, region: &str) -> PathBuf {
    let edge = start(fast_edge());
    let mut cfg = engine(&edge.base_url(), paths(10), closed(2));
    cfg.requests = Some(40);
    let d = dir.join(region);
    let plan = edgeload::cmd::execute::Plan {
        engine: cfg,
        out: d.clone(),
        run_id: "s3test".into(),
        region: region.into(),
        thresholds: Vec::new(),
        scenario: serde_json::json!({}),
        progress: false,
        metrics: None,
    };
    edgeload::cmd::execute::execute(plan, &edgeload::engine::Control::default()).unwrap();
    d
}

#[test]
fn upload_resumes_downloads_verify_and_incomplete_regions_are_skipped() {
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let full = results_dir(tmp.path(), "us-east-1");
    // an interrupted copy: it lacks timeline.csv, so the upload refuses it
    let partial = tmp.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    for f in ["summary.json", "latency.hlog", "pops.hlog", "MANIFEST.json"] {
        std::fs::copy(full.join(f), partial.join(f)).unwrap();
    }
    let run = S3Url::parse("s3://results/it/runs/r1/").unwrap();
    let dest = run.join("us-east-1");
    let rt = rt();
    rt.block_on(async {
        let c = s3::client(&opts(&g.endpoint)).await;
        // a directory that does not match its manifest uploads nothing
        let e = s3::upload_dir(&c, &partial, &dest)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("timeline.csv") && e.contains("nothing uploaded"),
            "{e}"
        );
        let listed = |prefix: String| {
            let c = c.clone();
            async move {
                let r = c
                    .list_objects_v2()
                    .bucket("results")
                    .prefix(prefix)
                    .send()
                    .await;
                r.unwrap().key_count().unwrap_or(0)
            }
        };
        assert_eq!(listed(dest.prefix.clone()).await, 0);
        // an upload interrupted after two files: what is there is skipped when it resumes
        s3::upload_dir(&c, &full, &dest).await.unwrap();
        for f in ["timeline.csv", "MANIFEST.json"] {
            c.delete_object()
                .bucket("results")
                .key(dest.key(f))
                .send()
                .await
                .unwrap();
        }
        let r = s3::upload_dir(&c, &full, &dest).await.unwrap();
        assert_eq!(r.skipped, ["summary.json", "latency.hlog", "pops.hlog"]);
        assert_eq!(r.uploaded, ["timeline.csv", "MANIFEST.json"]);
        let r = s3::upload_dir(&c, &full, &dest).await.unwrap();
        assert_eq!(r.uploaded.len(), 0, "a second upload changes nothing");
        // a region whose upload never finished: files but no MANIFEST
        let half = run.join("eu-west-1");
        s3::upload_dir(&c, &full, &half).await.unwrap();
        (c.delete_object()
            .bucket("results")
            .key(half.key("MANIFEST.json")))
        .send()
        .await
        .unwrap();
        // download: the complete region, verified; the other skipped with a warning
        let out = tmp.path().join("down");
        let (dirs, warnings) = s3::download_run(&c, &run, &out).await.unwrap();
        assert_eq!(dirs, [out.join("us-east-1")]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("eu-west-1") && warnings[0].contains("MANIFEST"),
            "{warnings:?}"
        );
        for f in [
            "summary.json",
            "latency.hlog",
            "timeline.csv",
            "MANIFEST.json",
        ] {
            assert_eq!(
                std::fs::read(out.join("us-east-1").join(f)).unwrap(),
                std::fs::read(full.join(f)).unwrap(),
                "{f}"
            );
        }
        // a changed object is caught by its checksum
        c.put_object()
            .bucket("results")
            .key(dest.key("timeline.csv"))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"tampered"))
            .send()
            .await
            .unwrap();
        let e = s3::download_run(&c, &run, &tmp.path().join("down2"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeline.csv") && e.contains("sha256"), "{e}");
    });
}

#[test]
fn a_downloaded_manifest_naming_a_path_cannot_write_outside_the_output_folder() {
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let full = results_dir(tmp.path(), "us-east-1");
    let run = S3Url::parse("s3://results/it/runs/hostile/").unwrap();
    let dest = run.join("us-east-1");
    let out = tmp.path().join("a").join("b").join("down");
    rt().block_on(async {
        let c = s3::client(&opts(&g.endpoint)).await;
        s3::upload_dir(&c, &full, &dest).await.unwrap();
        let m = std::fs::read_to_string(full.join("MANIFEST.json")).unwrap();
        let (size, sha) =
            edgeload::results::manifest::sha256_file(&full.join("summary.json")).unwrap();
        // a runner's role may write anything under its prefix: a manifest naming paths
        for name in [
            "../../../escaped.json",
            "/tmp/edgeload-escaped.json",
            "sub/summary.json",
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&m).unwrap();
            v["files"][0] = serde_json::json!({"name": name, "size": size, "sha256": sha});
            c.put_object()
                .bucket("results")
                .key(dest.key("MANIFEST.json"))
                .body(aws_sdk_s3::primitives::ByteStream::from(
                    v.to_string().into_bytes(),
                ))
                .send()
                .await
                .unwrap();
            let e = s3::download_run(&c, &run, &out)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("us-east-1/MANIFEST.json")
                    && e.contains("region rejected")
                    && e.contains(name),
                "{e}"
            );
            assert!(!tmp.path().join("escaped.json").exists());
            assert!(!tmp.path().join("a").join("escaped.json").exists());
            assert!(!Path::new("/tmp/edgeload-escaped.json").exists());
            assert!(
                !out.join("us-east-1").exists(),
                "a rejected region wrote files"
            );
        }
    });
}

#[test]
fn large_files_go_up_in_parts_and_come_back_identical() {
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    std::fs::create_dir(&dir).unwrap();
    // 17 MB: over the multipart threshold, three 8 MB parts
    let big: Vec<u8> = (0..17 * 1024 * 1024u32)
        .map(|i| (edgeload::urls::mix(i as u64) & 0xff) as u8)
        .collect();
    assert!(big.len() as u64 > s3::MULTIPART_THRESHOLD);
    std::fs::write(dir.join("samples.jtl"), &big).unwrap();
    edgeload::results::manifest::Manifest::write(&dir, "big", "us-east-1", &["samples.jtl"])
        .unwrap();
    let dest = S3Url::parse("s3://results/it/runs/big/us-east-1/").unwrap();
    rt().block_on(async {
        let c = s3::client(&opts(&g.endpoint)).await;
        let r = s3::upload_dir(&c, &dir, &dest).await.unwrap();
        assert_eq!(r.uploaded, ["samples.jtl", "MANIFEST.json"]);
        // resumable for multipart objects too: the checksum travels as metadata
        let r = s3::upload_dir(&c, &dir, &dest).await.unwrap();
        assert_eq!(r.skipped, ["samples.jtl", "MANIFEST.json"]);
        let out = tmp.path().join("down");
        assert_eq!(
            s3::download_dir(&c, &dest, &out).await.unwrap(),
            Some(out.clone())
        );
        assert_eq!(std::fs::read(out.join("samples.jtl")).unwrap(), big);
    });
}

#[test]
fn wrong_credentials_and_a_dead_server_give_clear_errors_and_keep_the_local_copy() {
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let dir = results_dir(tmp.path(), "ap-southeast-1");
    let before: Vec<u8> = std::fs::read(dir.join("MANIFEST.json")).unwrap();
    let wrong_secret = "1".repeat(64);
    let run = |endpoint: &str, secret: &str| {
        Command::new(bin())
            .args(["upload"])
            .arg(&dir)
            .args([
                "s3://results/it/runs/r2/ap-southeast-1/",
                "--endpoint-url",
                endpoint,
                "--s3-region",
                "garage",
                "--s3-attempts",
                "3",
            ])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let o = run(&g.endpoint, &wrong_secret);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("upload failed") && e.contains("retry with"),
        "{e}"
    );
    assert!(
        e.to_lowercase().contains("signature")
            || e.contains("Forbidden")
            || e.contains("AccessDenied"),
        "{e}"
    );
    assert!(!e.contains(&wrong_secret), "the secret was printed");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let t = std::time::Instant::now();
    let o = run(&dead, &secret());
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("intact") && e.contains("summary.json"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(
        std::fs::read(dir.join("MANIFEST.json")).unwrap(),
        before,
        "local copy changed"
    );
    // and the good credentials work
    let o = run(&g.endpoint, &secret());
    assert_ok(&o);
}

#[test]
fn three_regions_start_together_upload_and_merge_from_s3() {
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("urls.txt"),
        (0..20)
            .map(|i| format!("/img/{i}.jpg\n"))
            .collect::<String>(),
    )
    .unwrap();
    let start_at = {
        let t = std::time::SystemTime::now() + Duration::from_secs(3);
        edgeload::results::summary::rfc3339(t)
    };
    let regions = [
        ("us-east-1", 10u64),
        ("eu-west-1", 40),
        ("ap-southeast-1", 80),
    ];
    let edges: Vec<_> = regions
        .iter()
        .map(|(_, ms)| delayed_edge(Duration::from_millis(*ms)))
        .collect();
    let children: Vec<_> = regions
        .iter()
        .zip(&edges)
        .map(|((r, _), e)| {
            Command::new(bin())
                .args([
                    "run",
                    "urls.txt",
                    "-t",
                    &format!("cdn={}", e.base_url()),
                    "-c",
                    "4",
                    "-n",
                    "60",
                ])
                .args([
                    "--run-id",
                    "multi",
                    "--region",
                    r,
                    "--start-at",
                    &start_at,
                    "-o",
                    &format!("local/{r}"),
                    "-q",
                ])
                .args([
                    "--upload",
                    &format!("s3://results/it/runs/multi/{r}/"),
                    "--endpoint-url",
                    &g.endpoint,
                    "--s3-region",
                    "garage",
                ])
                .env("AWS_ACCESS_KEY_ID", KEY_ID)
                .env("AWS_SECRET_ACCESS_KEY", secret())
                .current_dir(d)
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0));
    }
    // every region started within a moment of the common time
    for (r, _) in &regions {
        let s =
            edgeload::results::summary::Summary::read(&d.join(format!("local/{r}/summary.json")))
                .unwrap();
        let late = s.scenario["late_start_s"].as_f64().unwrap();
        assert!((0.0..0.5).contains(&late), "{r} started {late} s late");
    }
    let o = Command::new(bin())
        .args([
            "report",
            "s3://results/it/runs/multi/",
            "-o",
            "rep",
            "--by",
            "region",
            "--no-plots",
            "--json",
        ])
        .args(["--endpoint-url", &g.endpoint, "--s3-region", "garage"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", secret())
        .current_dir(d)
        .output()
        .unwrap();
    assert_ok(&o);
    let merged: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(merged["region"], "ap-southeast-1+eu-west-1+us-east-1");
    assert_eq!(
        merged["targets"][0]["requests"], 180,
        "the merged total is the sum"
    );
    // per region, the latency is the injected one
    let (runs, _) = edgeload::report::load_all(&[d.join("rep/downloaded/input-1")]).unwrap();
    let groups = edgeload::report::model::groups(&runs, "region".parse().unwrap());
    for (r, ms) in regions {
        let g = groups
            .iter()
            .find(|g| g.key.region.as_deref() == Some(r))
            .unwrap();
        let p50 = g.stats(edgeload::measure::Metric::Total).p50;
        assert!(
            p50 >= ms as f64 && p50 < ms as f64 * 1.1 + 2.0,
            "{r}: p50 {p50} for {ms} ms"
        );
    }
}

/// `extract s3://...` lists the prefix and streams the objects (gzip, several at once), with
/// exactly the result of extracting the same files from disk; objects whose CloudFront names
/// date them outside --since/--until (3 h margin) are not read at all: the one out of range
/// here holds only junk, and nothing malformed is counted.
#[test]
fn extract_streams_cloudfront_logs_from_s3_and_skips_objects_by_their_names() {
    use std::io::Write;
    let g = garage();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let fields = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query\n";
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for hour in 10..16 {
        let mut text = fields.to_string();
        for i in 0..300 {
            text += &format!(
                "2024-03-12\t{hour}:{:02}:{:02}\tLAX1\t{}\t192.0.2.1\tGET\td1.cloudfront.net\t/img/{}.jpg\t200\t-\tUA\t-\n",
                i / 60,
                i % 60,
                1000 + i,
                (i * 7 + hour) % 250
            );
        }
        let name = format!("E2ABC.2024-03-12-{hour}.{hour:04x}.gz");
        std::fs::write(local.join(&name), gz(&text)).unwrap();
        objects.push((format!("cf/{name}"), gz(&text)));
    }
    // two days earlier: would be counted as malformed if it were read
    objects.push((
        "cf/E2ABC.2024-03-10-10.dead.gz".into(),
        gz("junk\nmore junk\n"),
    ));
    rt().block_on(async {
        let c = s3::client(&opts(&g.endpoint)).await;
        for (k, body) in objects {
            c.put_object()
                .bucket("results")
                .key(k)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    });
    // extract with Garage's address and key
    let cmd = |args: &[&str]| {
        let mut c = Command::new(bin());
        c.arg("extract")
            .args(args)
            .args(["--endpoint-url", &g.endpoint, "--s3-region", "garage"])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret())
            .env_remove("AWS_PROFILE")
            .current_dir(tmp.path());
        c.output().unwrap()
    };
    let extract = |inputs: &[&str], out: &str| {
        let trace = format!("{out}.trace");
        let mut args = inputs.to_vec();
        args.extend([
            "-o",
            out,
            "--since",
            "2024-03-12",
            "--trace",
            &trace,
            "--json",
        ]);
        let o = cmd(&args);
        assert_ok(&o);
        let stats: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
        stats
    };
    let remote = extract(&["s3://results/cf/"], "remote.csv");
    let disk = extract(&["local"], "disk.csv");
    let read = |f: &str| std::fs::read(tmp.path().join(f)).unwrap();
    assert_eq!(read("remote.csv"), read("disk.csv"));
    assert_eq!(read("remote.csv.trace"), read("disk.csv.trace"));
    assert_eq!(remote["files"], 6, "{remote}");
    assert_eq!(remote["lines"], disk["lines"]);
    assert_eq!(remote["matched"], 1800, "{remote}");
    assert_eq!(remote["malformed"], serde_json::json!({}), "{remote}");
    // a prefix with nothing in range is an error that says so
    let o = cmd(&["s3://results/cf/", "--until", "2024-03-01", "-q"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("no object to read (7 listed, 7 dated outside"),
        "{e}"
    );
    // observe reads the same objects the same way: the same counts, interval by interval
    let observe = |input: &str, out: &str| {
        let o = Command::new(bin())
            .args([
                "observe",
                input,
                "-o",
                out,
                "--since",
                "2024-03-12",
                "--run-id",
                "t",
            ])
            .args(["--endpoint-url", &g.endpoint, "--s3-region", "garage", "-q"])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret())
            .env_remove("AWS_PROFILE")
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_ok(&o);
    };
    observe("s3://results/cf/", "obs-remote");
    observe("local", "obs-local");
    assert_eq!(
        read("obs-remote/timeline.csv"),
        read("obs-local/timeline.csv")
    );
    let s: serde_json::Value = serde_json::from_slice(&read("obs-remote/summary.json")).unwrap();
    assert_eq!(s["targets"][0]["requests"], 1800, "{s}");
    assert_eq!(s["targets"][0]["pops"]["LAX1"]["unknown"], 1800, "{s}");
}
