//! `edgeload report`: loads results directories (and a baseline), builds the merged report,
//! prints the table and where the files went.

use std::path::PathBuf;

use anyhow::Context;

use super::{EXIT_OK, UsageError, usage};
use crate::cli::ReportArgs;
use crate::report::{self, ReportOptions};

/// Local paths as they are; s3:// inputs are downloaded (and verified) first: a second source
/// feeding the same local loader, not a second code path.
fn resolve(
    inputs: &[String],
    a: &ReportArgs,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        if inp.starts_with("s3://") {
            let base = a
                .download_dir
                .clone()
                .unwrap_or_else(|| a.out.join("downloaded"));
            let dest = base.join(format!("input-{}", i + 1));
            let (_, w) = super::s3::download_to(inp, &dest, &a.s3)?;
            warnings.extend(w);
            out.push(dest);
        } else {
            out.push(PathBuf::from(inp));
        }
    }
    Ok(out)
}

pub fn run(a: ReportArgs) -> anyhow::Result<i32> {
    let by = a.by.parse().map_err(UsageError)?;
    // (flags checked before anything is downloaded)
    let time = a.time.parse().map_err(UsageError)?;
    let mut s3_warnings = Vec::new();
    let inputs = resolve(&a.inputs, &a, &mut s3_warnings)?;
    let (runs, mut warnings) = report::load_all(&inputs).map_err(|e| UsageError(e.to_string()))?;
    s3_warnings.append(&mut warnings);
    s3_warnings.extend(report::unknown_warnings(&runs));
    let warnings = s3_warnings;
    for w in &warnings {
        eprintln!("warning: {}", crate::guard::quote::escape(w));
    }
    if runs.is_empty() {
        return usage("no complete results directory to report on");
    }
    let baseline = if a.baseline.is_empty() {
        None
    } else {
        let mut bw = Vec::new();
        let base_inputs = resolve(&a.baseline, &a, &mut bw)?;
        let (b, mut bw2) = report::load_all(&base_inputs).map_err(|e| UsageError(e.to_string()))?;
        bw.append(&mut bw2);
        for w in &bw {
            eprintln!("warning: baseline: {}", crate::guard::quote::escape(w));
        }
        if b.is_empty() {
            return usage("--baseline: no complete results directory");
        }
        Some(b)
    };
    let mut marks = Vec::new();
    for m in &a.mark {
        let (t, label) = m.split_once('=').unwrap_or((m, "cutover"));
        let Some(us) = crate::logs::timefmt::iso(t.trim()) else {
            return usage(format!(
                "--mark {m:?}: expected TIME[=LABEL], TIME in RFC 3339 (2026-11-20T10:00:00Z)"
            ));
        };
        // a flag's text, drawn into SVG: printable characters only
        let label: String = label.chars().filter(|c| !c.is_control()).take(60).collect();
        // far from the runs it would squeeze them into a sliver of the plot
        let t0 = crate::report::model::t0(&runs);
        let t1 = (runs.iter())
            .map(|r| r.start + r.summary.duration_s)
            .fold(t0, f64::max);
        let (t, margin) = (us as f64 / 1e6, (t1 - t0).max(60.0) * 0.25);
        if t < t0 - margin || t > t1 + margin {
            eprintln!(
                "warning: --mark {}: outside the runs' time ({} .. {}), not drawn",
                crate::guard::quote::escape(m),
                crate::logs::timefmt::to_rfc3339((t0 * 1e6) as i64),
                crate::logs::timefmt::to_rfc3339((t1 * 1e6) as i64)
            );
            continue;
        }
        marks.push((t, label));
    }
    if !marks.is_empty() && time != crate::report::model::TimeAxis::Utc {
        return usage("--mark draws on the UTC axis: add --time utc".to_string());
    }
    let o = ReportOptions {
        out: a.out.clone(),
        by,
        plots: !a.no_plots,
        cutover: if (0.0..=1.0).contains(&a.cutover) {
            a.cutover
        } else {
            return usage(format!(
                "--cutover {}: a hit ratio between 0 and 1",
                a.cutover
            ));
        },
        time,
        marks,
    };
    let r = report::build(&runs, baseline.as_deref(), warnings, &o).map_err(anyhow::Error::msg)?;
    if a.json {
        // the merged summary, with the readiness block added (for CI to post)
        let path = a.out.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "readiness".into(),
                serde_json::to_value(&r.readiness).unwrap_or_default(),
            );
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    eprint!("{}", crate::guard::quote::escape_lines(&r.text));
    eprintln!(
        "{} results directories merged; report in {} (report.md, report.html{}, hgrm/, summary.json, readiness.json)",
        runs.len(),
        a.out.display(),
        if o.plots { ", plots/" } else { "" }
    );
    Ok(EXIT_OK)
}
