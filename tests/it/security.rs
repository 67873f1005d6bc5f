//! The trust boundary, as an attacker and a careless user would try it (issue 15): secrets in
//! targets and headers, untrusted manifests, S3 endpoints that never answer, files edited after
//! a run, paths that climb out of a target's base, escapes in logs, labels as paths. Each test
//! is named after what it prevents.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

fn run_bin(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("AWS_ACCESS_KEY_ID", "GKtest")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_nowhere(secrets: &[&str], dirs: &[&Path], printed: &[&str]) {
    for d in dirs {
        for f in files(d) {
            let bytes = std::fs::read(&f).unwrap();
            let s = String::from_utf8_lossy(&bytes);
            for secret in secrets {
                assert!(!s.contains(secret), "{secret} in {}", f.display());
            }
        }
    }
    for p in printed {
        for secret in secrets {
            assert!(!p.contains(secret), "{secret} printed: {p}");
        }
    }
}

/// A server that answers every request with a small 200 and sends each request head (request
/// line and headers) down the channel.
fn capturing_server() -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let _ = tx.send(head);
                    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cache: HIT\r\n\r\nok";
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), rx)
}

/// A server that accepts connections and never answers; each accept is reported.
fn silent_server() -> (String, mpsc::Receiver<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(s) = s else { return };
            held.push(s);
            let _ = tx.send(());
        }
    });
    (format!("http://127.0.0.1:{}", addr.port()), rx)
}

/// A complete results directory made by the binary against the edge.
fn results_dir(parent: &Path, name: &str) -> PathBuf {
    let edge = start(fast_edge());
    std::fs::write(parent.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let o = run_bin(
        &[
            "run",
            "urls.txt",
            "-t",
            &format!("e={}", edge.base_url()),
            "-n",
            "4",
            "-c",
            "1",
            "-q",
            "-o",
            name,
        ],
        parent,
    );
    assert_ok(&o);
    parent.join(name)
}

#[test]
fn credentials_in_a_target_are_sent_as_basic_auth_by_both_clients_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n").unwrap();
    let (addr, heads) = capturing_server();
    // alice:s3cr@t, the @ percent-encoded in the URL as it must be
    let want = "Basic YWxpY2U6czNjckB0";
    for (i, extra) in [&[][..], &["--reqwest"][..]].iter().enumerate() {
        let out = format!("out{i}");
        let target = format!("c=http://alice:s3cr%40t@{addr}/tenant-a");
        let mut args = vec![
            "run",
            "urls.txt",
            "-t",
            &target,
            "-n",
            "2",
            "-c",
            "1",
            "--samples",
            "--json",
            "-o",
            &out,
        ];
        args.extend_from_slice(extra);
        let o = run_bin(&args, d);
        assert_ok(&o);
        for _ in 0..2 {
            let h = heads.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(
                h.starts_with("GET /tenant-a/a.jpg HTTP/1.1"),
                "{extra:?}: {h}"
            );
            let auth: Vec<&str> = (h.lines())
                .filter(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .collect();
            assert_eq!(auth.len(), 1, "{extra:?}: {h}");
            assert!(auth[0].ends_with(want), "{extra:?}: {h}");
        }
        let printed = text(&o);
        assert!(printed.contains("alice:REDACTED@"), "{printed}");
        assert_nowhere(&["s3cr"], &[&d.join(&out)], &[&printed]);
    }
}

#[test]
fn no_secret_reaches_any_output_of_run_mirror_or_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let edge = start(fast_edge());
    let (pw, key) = ("PaSSw0rdXYZ", "k3ySECRETvalue");
    let target = format!(
        "cdn={}",
        edge.base_url()
            .replace("http://", &format!("http://ops:{pw}@"))
    );
    let header = format!("X-Api-Key: {key}");
    std::fs::write(d.join("urls.txt"), "/a.jpg\n/b.jpg\n").unwrap();
    let run = run_bin(
        &[
            "run",
            "urls.txt",
            "-t",
            &target,
            "-H",
            &header,
            "-n",
            "6",
            "-c",
            "2",
            "--samples",
            "--json",
            "-o",
            "run",
        ],
        d,
    );
    assert_ok(&run);
    let log: String = (0..5)
        .map(|i| {
            format!(
                "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /m/{i}.jpg HTTP/1.1\" 200 5000 \"-\" \"UA\"\n"
            )
        })
        .collect();
    let before = edge.stats().requests;
    let mut child = Command::new(bin())
        .args([
            "mirror", "--stdin", "-t", &target, "-H", &header, "--json", "-o", "mirror",
        ])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    let mirror = child.wait_with_output().unwrap();
    assert_ok(&mirror);
    // the mirror sends with a password in its target (it used to drop every line)
    assert_eq!(edge.stats().requests - before, 5, "{}", text(&mirror));
    let report = run_bin(
        &["report", "run", "mirror", "-o", "report", "--no-plots"],
        d,
    );
    assert_ok(&report);
    assert_nowhere(
        &[pw, key],
        &[d],
        &[&text(&run), &text(&mirror), &text(&report)],
    );
    // and the password was there to leak: the outputs name the target with it redacted
    assert!(text(&run).contains("ops:REDACTED@"));
}

#[test]
fn a_manifest_naming_a_path_cannot_write_outside_the_output_folder() {
    // locally: upload reads only the known results files of its own folder
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let dir = results_dir(d, "r");
    std::fs::write(d.join("secret.txt"), "do not upload").unwrap();
    let m = std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&m).unwrap();
    v["files"][0]["name"] = "../secret.txt".into();
    std::fs::write(dir.join("MANIFEST.json"), v.to_string()).unwrap();
    refused_before_any_request(d, &["\"../secret.txt\"", "not a results file"]);
}

#[test]
fn an_edited_results_file_is_not_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let dir = results_dir(d, "r");
    let mut t = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("timeline.csv"))
        .unwrap();
    t.write_all(b"edited,after,the,run\n").unwrap();
    refused_before_any_request(d, &["does not match its MANIFEST.json", "timeline.csv"]);
}

/// `upload r` in `d` exits 2 naming `needles`, without a connection to S3.
fn refused_before_any_request(d: &Path, needles: &[&str]) {
    let (endpoint, accepted) = silent_server();
    let args = [
        "upload",
        "r",
        "s3://b/p/",
        "--endpoint-url",
        &endpoint,
        "--s3-region",
        "x",
    ];
    let o = run_bin(&args, d);
    let e = text(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    for n in needles {
        assert!(e.contains(n), "{n:?} in {e}");
    }
    assert!(accepted.try_recv().is_err(), "it connected to S3");
}

#[test]
fn an_s3_endpoint_that_never_answers_does_not_hang_upload_or_download() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    results_dir(d, "r");
    let (endpoint, accepted) = silent_server();
    let t = Instant::now();
    let o = run_bin(
        &[
            "upload",
            "r",
            "s3://b/p/",
            "--endpoint-url",
            &endpoint,
            "--s3-region",
            "x",
            "--s3-timeout",
            "1s",
            "--s3-attempts",
            "2",
        ],
        d,
    );
    let e = text(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(accepted.try_recv().is_ok(), "it never reached the server");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert!(e.contains("intact"), "{e}");
    assert!(
        e.contains(&format!(
            "retry with: edgeload upload r s3://b/p/ --endpoint-url {endpoint}"
        )),
        "{e}"
    );
    download_fails_in_time(d, &endpoint, "1s", Duration::from_secs(60));
}

/// `download s3://b/p/` from `endpoint` with `--s3-timeout timeout` exits 2 within `limit`;
/// returns what it printed.
fn download_fails_in_time(d: &Path, endpoint: &str, timeout: &str, limit: Duration) -> String {
    let t = Instant::now();
    let args = [
        "download",
        "s3://b/p/",
        "-o",
        "down",
        "--endpoint-url",
        endpoint,
        "--s3-region",
        "x",
        "--s3-timeout",
        timeout,
        "--s3-attempts",
        "1",
    ];
    let o = run_bin(&args, d);
    let e = text(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(t.elapsed() < limit, "{:?}", t.elapsed());
    e
}

#[test]
fn ctrl_c_during_run_upload_keeps_the_results_and_prints_the_retry_command() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let edge = start(fast_edge());
    std::fs::write(d.join("urls.txt"), "/a.jpg\n").unwrap();
    for signal in ["-INT", "-TERM"] {
        // a server of its own: an accept is this child's (a late retry of the first child's
        // must not pass for the second's upload)
        let (endpoint, accepted) = silent_server();
        let child = Command::new(bin())
            .args([
                "run",
                "urls.txt",
                "-t",
                &format!("e={}", edge.base_url()),
                "-n",
                "3",
                "-c",
                "1",
                "-q",
                "-o",
                "res",
                "--upload",
                "s3://b/runs/r1/local/",
                "--endpoint-url",
                &endpoint,
                "--s3-region",
                "x",
            ])
            .current_dir(d)
            .env("AWS_ACCESS_KEY_ID", "GKtest")
            .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // the upload is under way once the server has its connection
        accepted.recv_timeout(Duration::from_secs(30)).unwrap();
        let st = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{signal}: {e}");
        assert!(e.contains("upload interrupted"), "{e}");
        assert!(
            e.contains(&format!(
                "retry with: edgeload upload res s3://b/runs/r1/local/ --endpoint-url {endpoint}"
            )),
            "{e}"
        );
        let res = d.join("res");
        edgeload::results::manifest::Manifest::read(&res)
            .unwrap()
            .verify(&res)
            .unwrap();
    }
}

#[test]
fn paths_that_climb_out_of_the_base_are_never_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let edge = start(fast_edge());
    let t = format!("e={}/tenant-a", edge.base_url());
    for (i, bad) in [
        "/../escape.jpg",
        "/%2e%2e/x.jpg",
        "/a\tb.jpg",
        "/a.jpg#frag",
    ]
    .iter()
    .enumerate()
    {
        let f = format!("list{i}.txt");
        std::fs::write(d.join(&f), format!("/ok.jpg\n{bad}\n")).unwrap();
        let o = run_bin(&["run", &f, "-t", &t, "-n", "2", "-c", "1", "-q"], d);
        let e = text(&o);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {e}");
        assert!(e.contains(&format!("{f}:2:")), "{bad:?}: {e}");
    }
    assert_eq!(edge.stats().requests, 0);
    // what is sent goes under the base, byte for byte
    // (and what a request line cannot hold raw goes as every client sends it: encoded)
    std::fs::write(
        d.join("ok.txt"),
        "/a..b/%2F/c.jpg?x=../y\n/a b|c.jpg?q=\"caf\u{e9}\"\n",
    )
    .unwrap();
    let o = run_bin(&["run", "ok.txt", "-t", &t, "-n", "2", "-c", "1", "-q"], d);
    assert_ok(&o);
    let paths = edge.stats_with_paths().paths.unwrap();
    let mut got: Vec<&String> = paths.keys().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "/tenant-a/a%20b|c.jpg?q=%22caf%C3%A9%22",
            "/tenant-a/a..b/%2F/c.jpg?x=../y"
        ],
        "{paths:?}"
    );
    // the mirror counts such lines as unsafe and sends the rest
    let log: String = ["/../m.jpg", "/%2E%2E/n.jpg", "/fine.jpg"]
        .iter()
        .map(|p| {
            format!(
                "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET {p} HTTP/1.1\" 200 5000 \"-\" \"UA\"\n"
            )
        })
        .collect();
    std::fs::write(d.join("access.log"), log).unwrap();
    let mut child = Command::new(bin())
        .args(["mirror", "--stdin", "-t", &t, "--json", "-q"])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(d.join("access.log")).unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mirror"]["unsafe_target"], 2, "{v}");
    let paths = edge.stats_with_paths().paths.unwrap();
    assert!(paths.contains_key("/tenant-a/fine.jpg"), "{paths:?}");
    assert_eq!(paths.len(), 3, "{paths:?}");
}

#[test]
fn escapes_in_a_log_never_reach_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut log = String::new();
    log.push_str(
        "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /a.jpg HTTP/1.1\" 200 5 \"-\" \"UA\"\n",
    );
    log.push_str("\u{1b}]0;owned\u{7}\u{1b}[2J garbage \u{9b}31m\n");
    std::fs::write(d.join("access.log"), &log).unwrap();
    let o = run_bin(&["extract", "access.log", "-o", "urls.csv"], d);
    assert_ok(&o);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("access.log:2:"), "{e}");
    assert!(e.contains("\\x1b]0;owned\\x07"), "{e}");
    assert!(!e.contains('\u{1b}') && !e.contains('\u{7}') && !e.contains('\u{9b}'));
    // and the list it wrote is whole, with no temporary file beside it
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        std::fs::read_to_string(d.join("urls.csv"))
            .unwrap()
            .contains("/a.jpg,1")
    );
}

#[test]
fn labels_that_would_be_paths_or_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("urls.txt"), "/a.jpg\n").unwrap();
    for (flag, bad) in [
        ("--region", "../x"),
        ("--region", "eu\nwest"),
        ("--run-id", ".."),
        ("--run-id", "a/b"),
    ] {
        let o = run_bin(
            &[
                "run",
                "urls.txt",
                "-t",
                "e=http://127.0.0.1:9",
                "-n",
                "1",
                flag,
                bad,
            ],
            d,
        );
        let e = text(&o);
        assert_eq!(o.status.code(), Some(2), "{flag} {bad:?}: {e}");
        assert!(e.contains(flag) && e.contains("letters, digits"), "{e}");
        let o = run_bin(
            &["mirror", "--stdin", "-t", "e=http://127.0.0.1:9", flag, bad],
            d,
        );
        assert_eq!(
            o.status.code(),
            Some(2),
            "mirror {flag} {bad:?}: {}",
            text(&o)
        );
    }
}

/// An S3 endpoint that answers a listing with no regions, then sends a MANIFEST.json's headers
/// and trickles its body, one byte every 300 ms (at most 100): the SDK's timeouts end with the
/// headers, edgeload's deadline covers the body.
fn trickling_s3() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                if first.contains("list-type=2") {
                    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>";
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                        xml.len()
                    );
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
                for _ in 0..100 {
                    if s.write_all(b"{").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
    });
    format!("http://127.0.0.1:{}", addr.port())
}

#[test]
fn a_trickling_s3_body_does_not_hang_download() {
    let tmp = tempfile::tempdir().unwrap();
    let endpoint = trickling_s3();
    let e = download_fails_in_time(tmp.path(), &endpoint, "2s", Duration::from_secs(20));
    assert!(e.contains("did not arrive in time"), "{e}");
}
