//! Thin entry point: parse the CLI, run the subcommand, print "error: ..." and map to an exit code.

use clap::Parser;
use edgeload::cli::{Cli, Command};
use edgeload::cmd::{self, EXIT_ERROR};

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Command::Run(a) => cmd::run::run(a),
        Command::Edge(a) => cmd::edge::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Extract(a) => cmd::extract::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Mirror(a) => cmd::mirror::run(a),
        Command::Upload(a) => cmd::s3::upload(a),
        Command::Download(a) => cmd::s3::download(a),
    };
    let code = match res {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
