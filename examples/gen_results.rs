//! Generates synthetic results directories for the report benchmark:
//! `cargo run --release --example gen_results -- OUT REGIONS SECONDS`.
//! Each region: one target, hit and miss classes, 1 s intervals, ~100 samples per interval.

use std::time::{Duration, UNIX_EPOCH};

use edgeload::cache_status::CacheClass;
use edgeload::measure::{IntervalData, Metric, Sink};
use edgeload::results::ResultsWriter;
use edgeload::results::summary::{RunMeta, Summary};
use edgeload::urls::mix;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/tmp/edgeload-report-bench"),
    );
    let regions: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3600);
    let names = [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-northeast-1",
        "sa-east-1",
        "ap-south-1",
        "ca-central-1",
        "af-south-1",
    ];
    for r in 0..regions {
        let region = names
            .get(r)
            .map(|s| s.to_string())
            .unwrap_or(format!("region-{r}"));
        let dir = out.join(&region);
        let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let mut w = ResultsWriter::create(
            &dir,
            "bench",
            &region,
            vec!["cdn".into()],
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        w.begin(start).unwrap();
        let mut totals = IntervalData::new(0, 1);
        let mut rng = r as u64;
        for idx in 0..secs {
            let mut d = IntervalData::new(idx, 1);
            for (class, base, n) in [
                (CacheClass::Hit, 2_000u64, 90u64),
                (CacheClass::Miss, 90_000, 10),
            ] {
                let s = d.series_mut(0, class);
                for _ in 0..n {
                    rng = mix(rng);
                    let v = base + rng % (base / 2);
                    for m in Metric::ALL {
                        s.h[m].record(v).unwrap();
                    }
                }
                s.bytes += n * 50_000;
                d.targets[0].requests += n;
                d.targets[0].classes[class.index()] += n;
            }
            totals.add(&d);
            w.interval(&d, &totals).unwrap();
        }
        let meta = RunMeta {
            run_id: "bench",
            region: &region,
            scenario: serde_json::json!({}),
            started: start,
            ended: start + Duration::from_secs(secs),
            interval: Duration::from_secs(1),
            interrupted: false,
        };
        let targets = [("cdn".into(), "https://cdn.example".into())];
        let s = Summary::new(meta, Default::default(), &totals, &targets);
        w.finish(&s).unwrap();
    }
    eprintln!("wrote {regions} regions x {secs} s to {}", out.display());
}
