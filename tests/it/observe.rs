//! `observe`: the hit ratio read from a CDN's own logs, against ground truth (the embedded
//! edge's access log and its `/_edge/stats`; logs written with known hourly ratios), the warm
//! list it writes, and its refusals.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use edgeload::edge::{EdgeConfig, Latency, pop_of_path};
use edgeload::urls::Order;

use super::common::{
    assert_ok, assert_usage_error, closed, engine, fast_edge, paths, run, run_in, start,
};

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// class -> count, over every target of a summary
fn classes(s: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in s["targets"].as_array().unwrap() {
        for c in t["classes"].as_array().unwrap() {
            *out.entry(c["class"].as_str().unwrap().to_string())
                .or_default() += c["count"].as_u64().unwrap();
        }
    }
    out
}

/// misses.csv as (path, count) rows, in file order
fn miss_rows(dir: &Path) -> Vec<(String, u64)> {
    let mut r = csv::Reader::from_path(dir.join("misses.csv")).unwrap();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].to_string(), x[1].parse().unwrap())
        })
        .collect()
}

/// The edge's access log, read by `observe`, gives exactly what the edge counted: hits, edge
/// misses, shield hits, per POP; the misses list adds up to the edge's misses and warms a new
/// edge with exactly its URLs.
#[test]
fn observe_of_the_edge_log_is_the_edge_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("edge.log");
    let pops = "FRA,AMS,LHR";
    let edge = start(EdgeConfig {
        pop: pops.into(),
        // a small cache evicts, so paths miss again; the shield answers some edge misses
        capacity_objects: 150,
        shield: Some(Latency::fixed(Duration::from_millis(2))),
        hit_latency: Latency::fixed(Duration::from_millis(1)),
        miss_latency: Latency::fixed(Duration::from_millis(6)),
        access_log: Some(log.clone()),
        ..fast_edge()
    });
    let mut cfg = engine(&edge.base_url(), paths(300), closed(8));
    cfg.order = Order::Weighted;
    cfg.requests = Some(2400);
    run_in(&dir.path().join("run"), cfg);
    // then 40 paths requested once each: the one-hit wonders
    let once = std::sync::Arc::new(edgeload::urls::Paths::from_paths(
        (0..40).map(|i| format!("/once/{i}.png")),
    ));
    let mut cfg = engine(&edge.base_url(), once, closed(2));
    cfg.sweep = true;
    run_in(&dir.path().join("run2"), cfg);
    let st = edge.stats_with_paths(); // flushes the access log
    assert_eq!(st.requests, 2440);
    let counts = (st.hits, st.misses, st.shield_hits);
    assert!(counts.0 > 0 && counts.1 > 0 && counts.2 > 0, "{counts:?}");

    let o = run(
        &[
            "observe",
            log.to_str().unwrap(),
            "-o",
            "obs",
            "--interval",
            "1s",
            "-q",
        ],
        dir.path(),
    );
    assert_ok(&o);
    let s = summary(&dir.path().join("obs"));
    assert_eq!(s["rate"]["model"], "observed");
    let c = classes(&s);
    assert_eq!(c.get("hit").copied(), Some(st.hits));
    assert_eq!(c.get("miss").copied(), Some(st.misses));
    assert_eq!(c.get("shield_hit").copied(), Some(st.shield_hits));
    assert_eq!(c.values().sum::<u64>(), st.requests);
    let t = &s["targets"][0];
    let want = st.hits as f64 / (st.hits + st.misses + st.shield_hits) as f64;
    assert_eq!(t["hit_ratio"].as_f64(), Some(want));
    // the log's times: a hit took the edge 1 ms, a miss 6 ms (ms resolution, as CloudFront's)
    let class = |name: &str| {
        (t["classes"].as_array().unwrap().iter())
            .find(|c| c["class"] == name)
            .unwrap()
            .clone()
    };
    let hit_p50 = class("hit")["corrected"]["total"]["p50"].as_f64().unwrap();
    let miss_p50 = class("miss")["corrected"]["total"]["p50"].as_f64().unwrap();
    assert!((1.0..3.0).contains(&hit_p50), "{hit_p50}");
    assert!((6.0..9.0).contains(&miss_p50), "{miss_p50}");
    // per POP: the edge serves a path from one POP, so the paths' counts give each POP's requests
    let paths = st.paths.as_ref().unwrap();
    let mut per_pop: HashMap<&str, u64> = HashMap::new();
    for (p, n) in paths {
        *per_pop.entry(pop_of_path(pops, p)).or_default() += n;
    }
    for (pop, n) in &per_pop {
        assert_eq!(
            t["pop_summaries"][*pop]["requests"].as_u64(),
            Some(*n),
            "{pop}"
        );
    }
    // the misses: every edge miss (shield hits included), one-hit wonders = the 40 paths
    let rows = miss_rows(&dir.path().join("obs"));
    assert_eq!(
        rows.iter().map(|r| r.1).sum::<u64>(),
        st.misses + st.shield_hits
    );
    assert!(
        rows.windows(2).all(|w| w[0].1 >= w[1].1),
        "most misses first"
    );
    let m = &s["observe"]["misses"];
    // a path requested once missed (the shield had not seen it either)
    let once = paths.values().filter(|n| **n == 1).count() as u64;
    assert!(once >= 40);
    assert_eq!(m["one_hit_wonders"].as_u64(), Some(once));
    assert_eq!(m["misses"].as_u64(), Some(st.misses + st.shield_hits));

    // split by POP: one target per POP, the same counts
    let o = run(
        &[
            "observe",
            log.to_str().unwrap(),
            "-o",
            "bypop",
            "--split",
            "pop",
            "-q",
        ],
        dir.path(),
    );
    assert_ok(&o);
    let s = summary(&dir.path().join("bypop"));
    for t in s["targets"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        assert_eq!(t["requests"].as_u64(), per_pop.get(name).copied(), "{name}");
    }
    drop(edge);

    // the list warms a new edge with exactly its URLs
    let fresh = start(fast_edge());
    let o = run(
        &[
            "run",
            "obs/misses.csv",
            "-t",
            &format!("e={}", fresh.base_url()),
            "--sweep",
            "-c",
            "4",
            "-q",
            "-o",
            "warm",
        ],
        dir.path(),
    );
    assert_ok(&o);
    let got = fresh.stats_with_paths();
    let mut sent: Vec<&String> = got.paths.as_ref().unwrap().keys().collect();
    let mut listed: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    sent.sort();
    listed.sort();
    assert_eq!(sent, listed);
    assert_eq!(got.requests, rows.len() as u64);
}

/// An idle edge's access log is written out within seconds, without asking for its stats (a
/// reader tails it while a test or a demo runs).
#[test]
fn the_edge_log_is_written_out_while_the_edge_idles() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("edge.log");
    let edge = start(EdgeConfig {
        access_log: Some(log.clone()),
        ..fast_edge()
    });
    // (the body is an image: `get` reads it as text and gives None, the request is served)
    let _ = super::common::get(edge.addr.port(), "/idle/a.png");
    super::common::wait_for("the line in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\t/idle/a.png\t200\t"))
    });
}

/// Writes a gzipped CloudFront log: for hour h (0..6) and host a/b, `hits(h)` Hit and
/// `misses(h)` Miss lines, plus junk.
fn cloudfront_log(path: &Path, hits: impl Fn(u64) -> u64, misses: impl Fn(u64) -> u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    writeln!(w, "#Version: 1.0").unwrap();
    writeln!(w, "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs-uri-query x-edge-result-type time-taken x-host-header").unwrap();
    for h in 0..6u64 {
        for (host, pop) in [("a.example.com", "FRA56-P1"), ("b.example.com", "IAD89-C2")] {
            let mut line = |i: u64, kind: &str, status: u16| {
                writeln!(
                    w,
                    "2026-11-20\t{h:02}:{:02}:{:02}\t{pop}\t1000\t192.0.2.1\tGET\td1.cloudfront.net\t/p/{i}.jpg\t{status}\t-\t{kind}\t0.010\t{host}",
                    i % 60,
                    i % 59
                )
                .unwrap();
            };
            for i in 0..hits(h) {
                line(i, "Hit", 200);
            }
            for i in 0..misses(h) {
                line(1000 + h * 100 + i, "Miss", 200);
            }
            line(9999, "Error", 502);
        }
        // a truncated line and a junk line each hour
        writeln!(w, "2026-11-20\t{h:02}:30:00\tFRA56-P1\t10").unwrap();
        writeln!(w, "not a log line").unwrap();
    }
    w.finish().unwrap();
}

/// A week of logs reduced to hours: each hour's and host's ratio is the one written, read
/// through gzip, with bad lines counted (with their file and line) and the report drawing the
/// observed curve beside a load test's.
#[test]
fn hourly_ratio_per_host_from_a_cloudfront_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("E2ABC.2026-11-20-00.d1.gz");
    // the hit ratio climbs from 50 % to 100 % over six hours
    cloudfront_log(&log, |h| 10 * (h + 1), |h| 10 * (6 - h) - 10);
    let o = run(
        &[
            "observe",
            log.to_str().unwrap(),
            "-o",
            "obs",
            "--split",
            "host",
        ],
        dir.path(),
    );
    assert_ok(&o);
    let err = super::common::stderr(&o);
    assert!(err.contains("misses.csv"), "{err}");
    let mut tl = csv::Reader::from_path(dir.path().join("obs/timeline.csv")).unwrap();
    let mut seen = 0;
    for r in tl.deserialize::<HashMap<String, String>>() {
        let r = r.unwrap();
        let h = r["t_s"].parse::<f64>().unwrap() as u64 / 3600;
        let hits: u64 = r["hits"].parse().unwrap();
        let misses: u64 = r["misses"].parse().unwrap();
        assert_eq!((hits, misses), (10 * (h + 1), 10 * (6 - h) - 10), "{r:?}");
        assert_eq!(r["errors"], "1", "{r:?}");
        assert!(r["target"] == "a.example.com" || r["target"] == "b.example.com");
        seen += 1;
    }
    assert_eq!(seen, 12, "6 hours x 2 hosts");
    let s = summary(&dir.path().join("obs"));
    assert_eq!(s["interval_s"].as_f64(), Some(3600.0));
    assert_eq!(s["started_at"], "2026-11-20T00:00:00Z");
    // bad lines: counted in summary.json, shown with file:line on the terminal only (a log
    // line may hold a client's address)
    let bad = &s["observe"]["logs"]["malformed"];
    let total: u64 = (bad.as_object().unwrap().values())
        .map(|m| m.as_u64().unwrap())
        .sum();
    assert_eq!(total, 12, "{bad}");
    assert!(err.contains("E2ABC.2026-11-20-00.d1.gz:"), "{err}");
    let text = std::fs::read_to_string(dir.path().join("obs/summary.json")).unwrap();
    assert!(
        !text.contains("not a log line") && !text.contains(".gz"),
        "{text}"
    );
    // a load test beside it: the report holds both, the observed one by its model
    let edge = start(fast_edge());
    let mut cfg = engine(&edge.base_url(), paths(20), closed(2));
    cfg.requests = Some(100);
    run_in(&dir.path().join("run"), cfg);
    let o = run(
        &[
            "report",
            "obs",
            "run",
            "-o",
            "rep",
            "--time",
            "utc",
            "--mark",
            "2026-11-20T03:00:00Z=DNS switch",
        ],
        dir.path(),
    );
    assert_ok(&o);
    let svg =
        std::fs::read_to_string(dir.path().join("rep/plots/hit_ratio_over_time.svg")).unwrap();
    assert!(
        svg.contains("DNS switch at 03:00:00 UTC"),
        "the cutover moment is drawn"
    );
    let o = run(
        &[
            "report",
            "obs",
            "-o",
            "rep2",
            "--mark",
            "2026-11-20T03:00:00Z",
        ],
        dir.path(),
    );
    assert_usage_error(&o, &["--time utc"]);
    // a mark far from every run is said, not drawn (it would squeeze the runs into a sliver)
    let o = run(
        &[
            "report",
            "obs",
            "-o",
            "rep3",
            "--time",
            "utc",
            "--mark",
            "2020-01-01T00:00:00Z=old",
        ],
        dir.path(),
    );
    assert_ok(&o);
    assert!(super::common::stderr(&o).contains("outside the runs' time"));
    let svg =
        std::fs::read_to_string(dir.path().join("rep3/plots/hit_ratio_over_time.svg")).unwrap();
    assert!(!svg.contains("old at"));
    let md = std::fs::read_to_string(dir.path().join("rep/report.md")).unwrap();
    assert!(md.contains("observed"), "{md}");
    assert!(md.contains("a.example.com") && md.contains("b.example.com"));
    let svg =
        std::fs::read_to_string(dir.path().join("rep/plots/hit_ratio_over_time.svg")).unwrap();
    assert!(svg.contains("a.example.com"), "the observed curve is drawn");
}

/// Past the memory budget the misses list is the same bytes (the URL table spills as
/// `extract`'s does).
#[test]
fn the_misses_list_is_the_same_past_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    let mut rng = 7u64;
    for i in 0..150_000u64 {
        rng = edgeload::urls::mix(rng);
        let url = rng % 60_000;
        let cs = if rng >> 60 < 5 { "MISS" } else { "HIT" };
        writeln!(
            w,
            "1.2.3.4 - - [20/Nov/2026:10:{:02}:{:02} +0000] \"GET /u/{url}/x.jpg HTTP/1.1\" 200 {} \"-\" \"UA\" cs={cs}",
            (i / 60) % 60,
            i % 60,
            100 + url
        )
        .unwrap();
    }
    drop(w);
    let args = |out: &str, extra: &[&str]| {
        let mut v = vec!["observe", "access.log", "-o", out, "-q", "--run-id", "t"];
        v.extend_from_slice(extra);
        assert_ok(&run(&v, dir.path()));
    };
    args("big", &["--top-misses", "100000", "--threads", "2"]);
    args(
        "small",
        &[
            "--top-misses",
            "100000",
            "--max-memory",
            "8M",
            "--threads",
            "2",
        ],
    );
    args(
        "one",
        &[
            "--top-misses",
            "100000",
            "--threads",
            "1",
            "--interval",
            "1m",
        ],
    );
    args(
        "two",
        &[
            "--top-misses",
            "100000",
            "--threads",
            "2",
            "--interval",
            "1m",
        ],
    );
    // one thread or two: the same counts, interval by interval
    let read = |p: &str| std::fs::read(dir.path().join(p)).unwrap();
    assert!(read("one/timeline.csv") == read("two/timeline.csv"));
    assert!(read("one/misses.csv") == read("two/misses.csv"));
    assert_eq!(
        read("one/timeline.csv")
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        61,
        "an hour of minutes"
    );
    let big = std::fs::read(dir.path().join("big/misses.csv")).unwrap();
    let small = std::fs::read(dir.path().join("small/misses.csv")).unwrap();
    assert!(big.len() > 100_000);
    assert!(big == small, "the lists differ");
    let s = summary(&dir.path().join("small"));
    assert!(
        s["observe"]["logs"]["spilled_bytes"].as_u64().unwrap() > 0,
        "it spilled"
    );
    assert_eq!(
        s["observe"]["misses"],
        summary(&dir.path().join("big"))["observe"]["misses"]
    );
}

#[test]
fn bad_observe_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("untimed.log"),
        "#Fields: cs-method cs-uri-stem sc-status\nGET /a 200\n",
    )
    .unwrap();
    let o = run(&["observe", "untimed.log", "-o", "x"], dir.path());
    assert_usage_error(&o, &["no record with a time", "1 records read"]);
    let o = run(
        &["observe", "untimed.log", "-o", "x", "--split", "colo"],
        dir.path(),
    );
    assert_usage_error(&o, &["--split \"colo\"", "none, host or pop"]);
    let o = run(
        &["observe", "untimed.log", "-o", "x", "--interval", "10ms"],
        dir.path(),
    );
    assert_usage_error(&o, &["--interval 10ms", "from 1s to 366d"]);
    let o = run(
        &["observe", "untimed.log", "-o", "x", "--interval", "9000y"],
        dir.path(),
    );
    assert_usage_error(&o, &["--interval 9000y", "from 1s to 366d"]);
    let o = run(&["observe", "nothere.log", "-o", "x"], dir.path());
    assert_usage_error(&o, &["nothere.log"]);
    // a time in year 9999 is no interval: not counted, and no panic
    std::fs::write(
        dir.path().join("future.log"),
        "#Fields: date time cs-method cs-uri-stem sc-status\n9999-12-31 23:30:00 GET /a 200\n",
    )
    .unwrap();
    let o = run(&["observe", "future.log", "-o", "x"], dir.path());
    assert_usage_error(&o, &["no record with a time"]);
    // counts per interval past their share of --max-memory stop with an error, not a swap storm
    let mut many = String::new();
    for i in 0..12_000 {
        many += &format!(
            "h{}.example.com:443 1.2.3.4 - - [20/Nov/2026:10:{:02}:{:02} +0000] \"GET /a HTTP/1.1\" 200 1\n",
            i % 1000,
            i / 60 % 60,
            i % 60
        );
    }
    std::fs::write(dir.path().join("many.log"), many).unwrap();
    let o = run(
        &[
            "observe",
            "many.log",
            "-o",
            "m",
            "--split",
            "host",
            "--interval",
            "1s",
            "--max-memory",
            "8M",
        ],
        dir.path(),
    );
    assert_usage_error(&o, &["outgrew their share of --max-memory", "--interval"]);
    // a week of logs at one-second points is refused before anything is written
    std::fs::write(
        dir.path().join("long.log"),
        "1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] \"GET /a HTTP/1.1\" 200 1\n\
         1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"GET /a HTTP/1.1\" 200 1\n",
    )
    .unwrap();
    let o = run(
        &["observe", "long.log", "-o", "y", "--interval", "1s"],
        dir.path(),
    );
    assert_usage_error(&o, &["intervals of 1 s", "--interval"]);
    assert!(!dir.path().join("y/MANIFEST.json").exists());
}
