//! Every access-log parser on arbitrary input: must never panic. The first byte picks the format.
#![no_main]

use std::sync::Arc;

use edgeload::logs::json::JsonFields;
use edgeload::logs::{Format, Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let formats = [Format::Combined, Format::W3c, Format::Alb, Format::S3, Format::Json];
    let mut p = Parser::new(formats[sel as usize % formats.len()], &Arc::new(JsonFields::default()));
    let text = String::from_utf8_lossy(rest);
    for line in text.split('\n') {
        let _ = p.parse(line);
    }
    let _ = edgeload::logs::detect(&text);
});
