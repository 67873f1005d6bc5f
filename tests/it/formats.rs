//! The results directory's formats, read back: summary.json and MANIFEST round-trip, latency.hlog
//! through HdrHistogram's own reader agrees with summary.json, samples.jtl has JMeter's header.

use std::time::Duration;

use edgeload::edge::{EdgeConfig, Latency};
use edgeload::measure::HIST_MAX_US;
use edgeload::results::hlog;
use edgeload::results::manifest::Manifest;
use edgeload::results::summary::{Stats, Summary};
use edgeload::results::{jtl, timeline};

use crate::common::*;

#[test]
fn results_directory_round_trips() {
    let edge = start(EdgeConfig {
        hit_latency: Latency::fixed(Duration::from_millis(1)),
        miss_latency: Latency {
            lo: Duration::from_millis(5),
            hi: Duration::from_millis(15),
        },
        ..EdgeConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(100), closed(8));
    cfg.duration = Some(Duration::from_millis(1500));
    cfg.interval = Duration::from_millis(250);
    cfg.samples = true;
    let f = run_in(dir.path(), cfg);
    let d = dir.path();

    // summary.json: what was written is what we had
    let back = Summary::read(&d.join("summary.json")).unwrap();
    assert_eq!(back, f.summary);
    assert_eq!(back.run_id, "test-run");
    assert_eq!(back.region, "test-region");

    // MANIFEST.json: every file, verified
    let m = Manifest::read(d).unwrap();
    let names: Vec<_> = m.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "summary.json",
            "latency.hlog",
            "pops.hlog",
            "timeline.csv",
            "samples.jtl"
        ]
    );
    // pops.hlog: per POP, the same totals as the summary's
    let pops = std::fs::read(d.join("pops.hlog")).unwrap();
    let totals = edgeload::results::hlog::read_totals(&pops).unwrap();
    let tag = "target=edge;pop=FRA;class=hit;metric=total;basis=corrected";
    let fra = &back.targets[0].pop_summaries["FRA"];
    let hits = fra.classes.iter().find(|c| c.class == "hit").unwrap();
    assert_eq!(totals[tag].len(), hits.count);
    assert_eq!(fra.requests, back.targets[0].requests);
    m.verify(d).unwrap();
    assert_eq!(m.run_id, "test-run");
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    std::fs::write(d.join("timeline.csv"), "tampered").unwrap();
    assert!(m.verify(d).unwrap_err().contains("timeline.csv"));

    // latency.hlog via hdrhistogram's interval log reader: same percentiles as summary.json
    let bytes = std::fs::read(d.join(hlog::NAME)).unwrap();
    let totals = hlog::read_totals(&bytes).unwrap();
    let t = &back.targets[0];
    for c in &t.classes {
        for (metric, basis, want) in [
            ("total", "corrected", &c.corrected.total),
            ("total", "service", &c.service.total),
            ("ttfb", "corrected", &c.corrected.ttfb),
            ("ttfb", "service", &c.service.ttfb),
        ] {
            let tag = hlog::tag("edge", &c.class, metric, basis);
            let h = totals.get(&tag).unwrap_or_else(|| panic!("no {tag}"));
            assert_eq!(h.high(), HIST_MAX_US);
            assert_eq!(&Stats::of(h), want, "{tag}");
        }
    }
    let (base, ivs) = hlog::read_intervals(&bytes).unwrap();
    assert!(base.is_some());
    assert!(ivs.iter().all(|iv| iv.len == Duration::from_millis(250)));
    assert!(ivs.len() >= 6, "{} intervals", ivs.len());

    // samples.jtl: JMeter's header, one row per request
    let text = std::fs::read_to_string(d.join("samples.jtl")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(jtl::HEADER));
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, t.requests);
    assert!(rows.iter().all(|r| r.len() == 17));
    assert!(
        rows.iter()
            .any(|r| &r[2] == "edge/hit" && &r[3] == "200" && &r[7] == "true")
    );
}

#[test]
fn timeline_has_a_row_per_interval_including_idle_ones() {
    // every response held for 1.2 s: the intervals in between complete nothing
    let edge = delayed_edge(Duration::from_millis(1200));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = engine(&edge.base_url(), paths(4), closed(4));
    cfg.requests = Some(8);
    cfg.interval = Duration::from_millis(200);
    run_in(dir.path(), cfg);
    let rows = timeline::read(&std::fs::read(dir.path().join(timeline::NAME)).unwrap()).unwrap();
    let idx: Vec<u64> = rows.iter().map(|r| (r.t_s / 0.2).round() as u64).collect();
    assert_eq!(
        idx,
        (0..rows.len() as u64).collect::<Vec<_>>(),
        "no interval missing"
    );
    assert!(
        rows.iter().filter(|r| r.requests == 0).count() >= 8,
        "{rows:?}"
    );
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), 8);
    assert!(
        rows.iter()
            .all(|r| r.run_id == "test-run" && r.region == "test-region")
    );
}

#[test]
fn newer_format_version_is_refused_clearly() {
    let e = Summary::from_json(r#"{"format_version": 99}"#, "x/summary.json").unwrap_err();
    assert!(e.to_string().contains("format_version 99"), "{e}");
}
