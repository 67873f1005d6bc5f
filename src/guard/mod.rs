//! The trust boundary: what edgeload does to data it did not write itself, or must not show.
//! Redaction of secrets for every output (`redact`), the names that may become file names and
//! S3 keys (`names`), quoting of untrusted text for a terminal (`quote`), and files that appear
//! whole or not at all (`atomic`). A leaf: it imports no other room.

pub mod atomic;
pub mod names;
pub mod quote;
pub mod redact;
