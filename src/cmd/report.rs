//! `edgeload report`: loads results directories (and a baseline), builds the merged report,
//! prints the table and where the files went.

use super::{EXIT_OK, UsageError, usage};
use crate::cli::ReportArgs;
use crate::report::{self, ReportOptions};

pub fn run(a: ReportArgs) -> anyhow::Result<i32> {
    let by = a.by.parse().map_err(UsageError)?;
    let (runs, warnings) = report::load_all(&a.inputs).map_err(|e| UsageError(e.to_string()))?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if runs.is_empty() {
        return usage("no complete results directory to report on");
    }
    let baseline = if a.baseline.is_empty() {
        None
    } else {
        let (b, bw) = report::load_all(&a.baseline).map_err(|e| UsageError(e.to_string()))?;
        for w in &bw {
            eprintln!("warning: baseline: {w}");
        }
        if b.is_empty() {
            return usage("--baseline: no complete results directory");
        }
        Some(b)
    };
    let o = ReportOptions {
        out: a.out.clone(),
        by,
        plots: !a.no_plots,
        cutover: a.cutover,
    };
    let r = report::build(&runs, baseline.as_deref(), warnings, &o).map_err(anyhow::Error::msg)?;
    if a.json {
        println!(
            "{}",
            std::fs::read_to_string(a.out.join("summary.json")).unwrap_or_default()
        );
    }
    eprint!("{}", r.text);
    eprintln!(
        "{} results directories merged; report in {} (report.md, report.html{}, hgrm/, summary.json)",
        runs.len(),
        a.out.display(),
        if o.plots { ", plots/" } else { "" }
    );
    Ok(EXIT_OK)
}
