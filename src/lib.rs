//! edgeload: load testing and cache warming for image CDNs.
//!
//! Rooms (see DESIGN.md): `cli` and `cmd` wire things together; `engine` sends and measures;
//! `results` writes the results directory; `report` renders it; `edge` is the simulated CDN;
//! `urls`, `cache_status`, `scenario` and `threshold` are pure helpers; `guard` is the trust
//! boundary (redaction, names from untrusted input, quoting, atomic files).

pub mod cache_status;
pub mod cli;
pub mod cmd;
pub mod edge;
pub mod engine;
pub mod extract;
pub mod guard;
pub mod logs;
pub mod measure;
pub mod mirror;
pub mod precise;
pub mod report;
pub mod results;
pub mod s3;
pub mod scenario;
pub mod sys;
pub mod threshold;
pub mod urls;
