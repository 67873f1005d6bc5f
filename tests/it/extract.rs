//! `extract` end to end: logs with junk -> URL list and trace -> `run --trace` against the edge
//! replays exactly the kept requests.

use std::io::Write;
use std::process::Command;

use edgeload::urls::UrlList;

use crate::common::*;

fn combined(ts: &str, method: &str, path: &str, status: u16) -> String {
    format!(
        "203.0.113.9 - - [{ts} +0000] \"{method} {path} HTTP/1.1\" {status} 1234 \"-\" \"Mozilla/5.0\"\n"
    )
}

#[test]
fn extract_then_replay_trace_hits_exactly_the_kept_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // expected kept counts: /a.jpg x3 (one as %61.jpg, same URL decoded), /b.png?w=2 x2, /c.webp x1
    let mut log = String::new();
    log += &combined("12/Mar/2024:10:00:00", "GET", "/a.jpg", 200);
    log += &combined("12/Mar/2024:10:00:01", "GET", "/b.png?w=2", 200);
    log += &combined("12/Mar/2024:10:00:01", "POST", "/upload", 200); // method
    log += &combined("12/Mar/2024:10:00:02", "GET", "/a.jpg", 304);
    log += &combined("12/Mar/2024:10:00:02", "GET", "/missing.jpg", 404); // status
    log += "203.0.113.9 - - [12/Mar/2024:10:00:03 +0000] \"-\" 400 0 \"-\" \"-\"\n"; // junk request
    log += &combined("12/Mar/2024:10:00:03", "GET", "/%61.jpg", 200);
    log += "\\x16\\x03\\x01 garbage line\n";
    log += &combined("12/Mar/2024:10:00:04", "GET", "/b.png?w=2", 200);
    log += &combined("12/Mar/2024:10:00:04", "GET", "/c.webp", 200);
    log += "203.0.113.9 - - [12/Mar/2024:10:00:05 +0000] \"GET /trunc"; // truncated last line
    // half of it gzipped, in a directory, to read both
    std::fs::create_dir(d.join("logs")).unwrap();
    let cut = log[..log.len() / 2].rfind('\n').unwrap() + 1;
    std::fs::write(d.join("logs/access.log"), &log[..cut]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(d.join("logs/access.log.1.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&log.as_bytes()[cut..]).unwrap();
    gz.finish().unwrap();

    let o = Command::new(bin())
        .args([
            "extract",
            "logs",
            "-o",
            "urls.csv",
            "--trace",
            "trace.csv",
            "-q",
            "--json",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_ok(&o);
    let stats: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(stats["matched"], 6);
    assert_eq!(stats["filtered"]["method"], 1);
    assert_eq!(stats["filtered"]["status"], 1);
    assert_eq!(stats["malformed"]["bad request line"]["count"], 1);
    assert_eq!(stats["malformed"]["too few fields"]["count"], 1);
    assert_eq!(stats["malformed"]["unterminated quote"]["count"], 1);
    let ex = stats["malformed"]["unterminated quote"]["examples"][0]
        .as_str()
        .unwrap();
    assert!(
        ex.contains("access.log.1.gz:") && ex.contains("GET /trunc"),
        "{ex}"
    );

    let list = UrlList::read_file(&d.join("urls.csv")).unwrap();
    let got: Vec<(&str, u64)> = list
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.count))
        .collect();
    // sorted by count; the first spelling seen is kept
    assert_eq!(got, [("/a.jpg", 3), ("/b.png?w=2", 2), ("/c.webp", 1)]);
    assert_eq!(
        list.entries[0].first_seen.as_deref(),
        Some("2024-03-12T10:00:00Z")
    );
    assert_eq!(
        list.entries[0].last_seen.as_deref(),
        Some("2024-03-12T10:00:03Z")
    );
    assert_eq!(list.entries[0].bytes, Some(1234));

    // replay the trace 100x faster: the edge sees exactly the kept requests
    let edge = start(fast_edge());
    let t = format!("edge={}", edge.base_url());
    let o = Command::new(bin())
        .args([
            "run",
            "--trace",
            "trace.csv",
            "--speed",
            "100",
            "-t",
            &t,
            "-o",
            "out",
            "-q",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_ok(&o);
    let paths = edge.stats_with_paths().paths.unwrap();
    // the trace, like the list, uses the first spelling of each (decoded-equal) URL
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths["/a.jpg"], 3);
    assert_eq!(paths["/b.png?w=2"], 2);
    assert_eq!(paths["/c.webp"], 1);
    let s = edgeload::results::summary::Summary::read(&d.join("out/summary.json")).unwrap();
    // 4 s of log at 100x: 40 ms of schedule
    assert!(s.duration_s < 2.0, "{}", s.duration_s);
}

#[test]
fn cloudfront_out_of_order_records_make_a_sorted_trace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fields = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query\n";
    let row = |t: &str, p: &str, q: &str| {
        format!(
            "2019-12-04\t{t}\tLAX1\t392\t192.0.2.100\tGET\td1.cloudfront.net\t{p}\t200\t-\tUA\t{q}\n"
        )
    };
    let text = format!(
        "{fields}{}{}{}",
        row("21:02:31", "/late.jpg", "-"),
        row("21:02:29", "/early.jpg", "w=1"),
        row("21:02:30", "/mid.jpg", "-")
    );
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(d.join("E2.2019-12-04-21.abc.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    let o = Command::new(bin())
        .args([
            "extract",
            "E2.2019-12-04-21.abc.gz",
            "-o",
            "u.csv",
            "--trace",
            "t.csv",
            "-q",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert_ok(&o);
    let trace = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let paths: Vec<&str> = trace
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(paths, ["/early.jpg?w=1", "/mid.jpg", "/late.jpg"]);
}

#[test]
fn strict_mode_fails_on_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("a.log"),
        combined("12/Mar/2024:10:00:00", "GET", "/a.jpg", 200) + "junk\n",
    )
    .unwrap();
    let o = Command::new(bin())
        .args(["extract", "a.log", "-o", "u.csv", "--strict", "-q"])
        .current_dir(d)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("a.log:2: junk") && e.contains("--strict"), "{e}");
    let o = Command::new(bin())
        .args(["extract", "nope.log", "-q"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.log"));
}

/// Plain files are split into pieces parsed on any thread, with line numbers known only at the
/// end: the result (rows, counts, malformed examples with their file:line, trace, CSV bytes) must
/// not depend on the thread count or the piece size.
#[test]
fn same_result_whatever_the_threads_and_the_piece_size() {
    use edgeload::extract::{Options, Progress, extract};
    use edgeload::logs::input::Source;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let mut want_bad = Vec::new();
    for i in 0..3000u32 {
        let line_no = i + 1;
        let ts = format!("12/Mar/2024:10:{:02}:{:02}", i / 60 % 60, i % 60);
        match i % 97 {
            13 => {
                log.extend_from_slice(b"junk line\n");
                want_bad.push(line_no);
            }
            // not UTF-8: the piece holding it is checked line by line
            41 => log.extend_from_slice(
                format!(
                    "1.2.3.4 - - [{ts} +0000] \"GET /caf\u{e9}.jpg HTTP/1.1\" 200 5 \"-\" \"-\"\n"
                )
                .replace('\u{e9}', "\u{fffd}")
                .as_bytes(),
            ),
            42 => {
                let mut l = combined(&ts, "GET", "/latin1-X.jpg", 200).into_bytes();
                let x = l.iter().position(|&c| c == b'X').unwrap();
                l[x] = 0xe9;
                log.extend_from_slice(&l);
            }
            _ => {
                // a skewed mix with two spellings of the same URL
                let path = match i % 7 {
                    0 => "/a%2Ab.jpg".to_string(),
                    1 => "/a*b.jpg".to_string(),
                    _ => format!("/img/{}.webp?w={}", i % 50, i % 3),
                };
                log.extend_from_slice(combined(&ts, "GET", &path, 200).as_bytes());
            }
        }
    }
    let plain = dir.path().join("a.log");
    std::fs::write(&plain, &log).unwrap();
    let gz = dir.path().join("b.log.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(&log).unwrap();
    e.finish().unwrap();
    let sources = [Source::File(plain.clone()), Source::File(gz)];
    let run = |threads, block_size| {
        let o = Options {
            threads,
            block_size,
            trace: true,
            ..Options::default()
        };
        let ex = extract(&sources, &o, &Progress::default()).unwrap();
        let mut csv = Vec::new();
        ex.write_csv(&mut csv, threads).unwrap();
        (ex, csv)
    };
    let (one, one_csv) = run(1, 1 << 30);
    let (many, many_csv) = run(3, 700);
    assert_eq!(one.rows, many.rows);
    assert_eq!(one.stats, many.stats);
    assert_eq!(one.trace, many.trace);
    assert_eq!(one_csv, many_csv);
    // the fast writer writes what UrlList writes, and UrlList reads it back
    let mut via_list = Vec::new();
    one.list().write_csv(&mut via_list).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&one_csv),
        String::from_utf8_lossy(&via_list)
    );
    let back = UrlList::read(one_csv.as_slice(), "x").unwrap();
    assert_eq!(back, one.list());
    // 2 sources x (the bad lines), examples in file and line order with exact numbers
    let m = &many.stats.malformed;
    let total: u64 = m.values().map(|m| m.count).sum();
    assert_eq!(total, 2 * want_bad.len() as u64, "{m:?}");
    let ex = &m["too few fields"].examples;
    let name = plain.display().to_string();
    for (e, n) in ex.iter().zip(&want_bad) {
        assert!(e.starts_with(&format!("{name}:{n}: junk line")), "{e}");
    }
    // both spellings of /a*b.jpg meet; the earliest logged is kept
    let ab = many
        .rows
        .iter()
        .find(|r| r.path.contains(".jpg") && r.path.starts_with("/a"))
        .unwrap();
    assert_eq!(
        (&*ab.path, ab.count),
        (
            "/a%2Ab.jpg",
            2 * (0..3000u64)
                .filter(|i| ![13, 41, 42].contains(&(i % 97)) && i % 7 < 2)
                .count() as u64
        )
    );
    assert_eq!(many.stats.lines, 6000);
}

/// Paths that CSV must quote are written exactly as the csv crate writes them.
#[test]
fn fast_url_list_writer_quotes_like_the_csv_crate() {
    use edgeload::extract::{Options, Progress, extract};
    use edgeload::logs::input::Source;
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for p in [
        "/a,b.jpg",
        "/q\\\"uote.jpg",
        "/plain.jpg",
        "/sp%20ace.jpg",
        "/#hash.jpg",
        "/cr\\x0d.jpg",
    ] {
        log += &combined("12/Mar/2024:10:00:00", "GET", p, 200);
    }
    let f = dir.path().join("a.log");
    std::fs::write(&f, log).unwrap();
    let ex = extract(
        &[Source::File(f)],
        &Options::default(),
        &Progress::default(),
    )
    .unwrap();
    // a '#' and a control character cannot be sent as written: `run` would refuse them
    assert_eq!(ex.rows.len(), 4);
    assert_eq!(ex.stats.filtered.get("unsafe path"), Some(&2));
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    ex.write_csv(&mut fast, 2).unwrap();
    ex.list().write_csv(&mut slow).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&slow)
    );
    assert!(String::from_utf8_lossy(&fast).contains("\"/q\"\"uote.jpg\""));
}

/// A gzipped W3C log is parsed by its reader thread (the `#Fields` state is in order): its lines
/// count in the live progress like every other input's.
#[test]
fn w3c_lines_parsed_by_the_reader_count_in_the_progress() {
    use edgeload::extract::{Options, Progress, extract};
    use edgeload::logs::input::Source;
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        String::from("#Version: 1.0\n#Fields: date time cs-method cs-uri-stem sc-status\n");
    for i in 0..500 {
        log += &format!("2024-03-12\t10:00:{:02}\tGET\t/i/{i}.jpg\t200\n", i % 60);
    }
    let gz = dir.path().join("cf.log.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(log.as_bytes()).unwrap();
    e.finish().unwrap();
    let progress = Progress::default();
    let ex = extract(&[Source::File(gz)], &Options::default(), &progress).unwrap();
    assert_eq!(ex.rows.len(), 500);
    let lines = progress.lines.load(std::sync::atomic::Ordering::Relaxed);
    let bytes = progress.bytes.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((lines, bytes), (502, log.len() as u64));
}

/// Past `--max-memory` the list and the trace go to disk as sorted runs (more runs than are
/// merged at once, so they are merged in groups too), and come back byte for byte what the
/// in-memory path writes: ties in count and in first time, three spellings of one URL logged
/// in the same second, sizes missing on some, `--top`, a trace, plain and gzip input.
#[test]
fn past_the_memory_budget_the_output_is_the_same_bytes() {
    use edgeload::extract::{Options, Progress, extract};
    use edgeload::logs::input::Source;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for i in 0..24_000u64 {
        let sec = i / 40;
        let ts = format!(
            "12/Mar/2024:{:02}:{:02}:{:02}",
            10 + sec / 3600,
            sec / 60 % 60,
            sec % 60
        );
        let n = (i * 7919) % 6000;
        if n % 5 == 0 && i >= 12_000 {
            continue; // counts of 2 and 4: many ties
        }
        let bytes = if n % 17 == 0 {
            "-".to_string()
        } else {
            (100 + (i % 900)).to_string()
        };
        let star = if n % 11 == 0 && i % 2 == 0 {
            "%2A"
        } else {
            "*"
        };
        let mut push = |path: String| {
            lines.push(format!(
                "203.0.113.9 - - [{ts} +0000] \"GET {path} HTTP/1.1\" 200 {bytes} \"-\" \"UA\"\n"
            ))
        };
        push(format!("/p/{n}{star}x.jpg"));
        if n % 13 == 0 {
            push(format!("/p/{n}%2ax.jpg")); // another spelling, the same second
        }
    }
    let half = lines.len() / 2;
    let plain = dir.path().join("a.log");
    std::fs::write(&plain, lines[..half].concat()).unwrap();
    let gz = dir.path().join("b.log.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    e.write_all(lines[half..].concat().as_bytes()).unwrap();
    e.finish().unwrap();
    let sources = [Source::File(plain), Source::File(gz)];
    let spill_dir = dir.path().join("spill");
    std::fs::create_dir(&spill_dir).unwrap();
    let run = |max_memory, top| {
        let o = Options {
            threads: 2,
            block_size: 8192,
            trace: true,
            top,
            max_memory,
            spill_dir: Some(spill_dir.clone()),
            ..Options::default()
        };
        let ex = extract(&sources, &o, &Progress::default()).unwrap();
        let (mut csv, mut trace) = (Vec::new(), Vec::new());
        ex.write_csv(&mut csv, 2).unwrap();
        ex.write_trace(&mut trace).unwrap();
        let counts = (ex.url_count(), ex.trace_count());
        let mut stats = ex.stats.clone();
        let spilled = (ex.spilled(), stats.spilled_bytes);
        stats.spilled_bytes = 0;
        (csv, trace, counts, stats, spilled)
    };
    for top in [None, Some(700)] {
        let mem = run(usize::MAX, top);
        let disk = run(64 << 10, top);
        assert_eq!(mem.3.distinct_urls, 6000);
        assert_eq!(mem.4, (false, 0));
        assert!(disk.4.0 && disk.4.1 > 1 << 20, "{:?}", disk.4);
        assert_eq!(mem.2, disk.2, "top {top:?}");
        assert_eq!(mem.2.0, top.unwrap_or(6000) as u64);
        assert_eq!(mem.3, disk.3);
        assert!(mem.0 == disk.0, "top {top:?}: the lists differ");
        assert!(mem.1 == disk.1, "top {top:?}: the traces differ");
        // the spellings chose as in memory: the earliest logged, then the smallest
        let list = String::from_utf8(disk.0).unwrap();
        assert!(list.contains("/p/0%2Ax.jpg,"), "{}", &list[..200]);
    }
    // every run went with its result
    assert_eq!(std::fs::read_dir(&spill_dir).unwrap().count(), 0);
}

/// A spill folder that cannot be made is an error naming it, not a crash or a partial list.
#[test]
fn a_spill_folder_that_cannot_be_made_is_named() {
    use edgeload::extract::{Options, Progress, extract};
    use edgeload::logs::input::Source;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let text: String = (0..2000)
        .map(|i| combined("12/Mar/2024:10:00:00", "GET", &format!("/{i}.jpg"), 200))
        .collect();
    std::fs::write(&log, text).unwrap();
    let missing = dir.path().join("no/such/folder");
    let o = Options {
        max_memory: 1 << 10,
        spill_dir: Some(missing.clone()),
        ..Options::default()
    };
    let e = match extract(&[Source::File(log)], &o, &Progress::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("extracted without a spill folder"),
    };
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("--spill-dir"),
        "{e}"
    );
}
