//! Results -> human-readable tables (and, later, merged reports and plots).

pub mod text;
