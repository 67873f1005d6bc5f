//! Integration tests, compiled into one binary. They start the embedded edge on loopback and run
//! the engine in-process (measurement truth) or the `edgeload` binary (exit codes, signals).

mod caches;
mod common;
mod errors;
mod extract;
mod formats;
mod gates;
mod h1;
mod h2;
mod measure;
mod mirror;
mod observe;
mod process;
mod report;
mod runners;
mod s3;
mod security;
mod tidy;
mod tls;
