//! edgeload: load testing and cache warming for image CDNs.
//!
//! The rooms, their order (a room imports only rooms below it) and their invariants are in
//! ARCHITECTURE.md, which `tests/it/tidy.rs` keeps true.

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
pub mod observe;
pub mod precise;
pub mod report;
pub mod results;
pub mod s3;
pub mod scenario;
pub mod sys;
pub mod threshold;
pub mod urls;
