//! Thin entry point: parse the CLI, run the subcommand, print "error: ..." and map to an exit code.

use clap::Parser;
use edgeload::cli::{Cli, Command};
use edgeload::cmd::{self, EXIT_ERROR, EXIT_INTERRUPTED, Interrupted};

fn main() {
    edgeload::sys::release_startup_pages();
    let cli = Cli::parse();
    let res = match cli.cmd {
        Command::Run(a) => cmd::run::run(*a),
        Command::Edge(a) => cmd::edge::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Extract(a) => cmd::extract::run(a),
        Command::Observe(a) => cmd::observe::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Mirror(a) => cmd::mirror::run(a),
        Command::Upload(a) => cmd::s3::upload(a),
        Command::Download(a) => cmd::s3::download(a),
    };
    let code = match res {
        Ok(c) => c,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            eprintln!(
                "{}",
                edgeload::guard::quote::escape_lines(&format!("{e:#}"))
            );
            EXIT_INTERRUPTED
        }
        Err(e) => {
            // errors quote input (paths, log lines, URLs): no secret, no terminal control
            let msg = format!("{e:#}");
            let msg = edgeload::guard::redact::text(&msg);
            eprintln!("error: {}", edgeload::guard::quote::escape_lines(&msg));
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
