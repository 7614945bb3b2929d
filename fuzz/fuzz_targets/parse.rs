//! Arbitrary bytes through the whole configuration reader: lexer, tree and lowering must
//! never panic, whatever the input.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A directory that does not exist keeps `include` lines from reading real files.
    let _ = flotilla_config::load_str(
        Path::new("/nonexistent/fuzz/keepalived.conf"),
        &text,
        &flotilla_config::LoadOptions::default(),
    );
});
