//! Helpers shared by the crate's tests.

use std::path::PathBuf;

/// keepalived's sample configurations: `../shared/corpus/keepalived-samples` beside the
/// repository (CI places `shared` there), or `FLOTILLA_CORPUS` when set.
pub(crate) fn corpus_dir() -> PathBuf {
    match std::env::var_os("FLOTILLA_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/keepalived-samples"
        )),
    }
}
