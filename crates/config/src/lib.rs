//! keepalived's configuration language, read so that a user's existing `keepalived.conf`
//! works unchanged, plus flotilla's `cluster { }` block: files → logical lines (lexer) →
//! keyword tree → typed, validated [`model::Config`], with every problem reported as
//! `path:line:col: error|warning: what, and why`. Pure: it reads files and nothing else, and
//! never acts on what it reads.

pub mod ast;
pub mod diag;
pub mod lexer;
pub mod lower;
pub mod model;
pub mod print;
pub mod quote;
pub mod source;
pub mod tree;

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod roundtrip;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::Config;
pub use source::{SourceMap, Span};

/// How to read a configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Selects `@ID` conditional lines, like keepalived's `--config-id`. keepalived defaults
    /// it to the first label of the host name; the CLI does the same.
    pub config_id: Option<String>,
    /// Unknown keywords and extra tokens are errors instead of warnings.
    pub strict: bool,
}

/// The result of reading a configuration: the model (as complete as the input allowed), the
/// files read and everything found wrong. The model must not be used when
/// [`Loaded::is_ok`] is false.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub sources: SourceMap,
    pub diagnostics: Diagnostics,
}

impl Loaded {
    /// True when no error was reported (warnings are allowed).
    pub fn is_ok(&self) -> bool {
        !self.diagnostics.has_errors()
    }

    /// All diagnostics rendered, one per line, in file order.
    pub fn report(&self) -> String {
        self.diagnostics.render(&self.sources)
    }
}

/// Reads and validates the configuration in `path` (with its includes).
pub fn load_file(path: &Path, opts: &LoadOptions) -> Loaded {
    let mut sources = SourceMap::new();
    let mut diagnostics = Diagnostics::new(opts.strict);
    let lines = lexer::read_file(path, &lex_options(opts), &mut sources, &mut diagnostics);
    finish(lines, sources, diagnostics)
}

/// Reads and validates configuration text; `name` is used in diagnostics and as the base for
/// relative includes (its directory).
pub fn load_str(name: &Path, text: &str, opts: &LoadOptions) -> Loaded {
    let mut sources = SourceMap::new();
    let mut diagnostics = Diagnostics::new(opts.strict);
    let lines = lexer::read_str(
        name,
        text,
        &lex_options(opts),
        &mut sources,
        &mut diagnostics,
    );
    finish(lines, sources, diagnostics)
}

/// Writes a model back as keepalived syntax; loading the text gives an equal model.
pub fn to_keepalived(config: &Config) -> String {
    lower::print(config)
}

fn lex_options(opts: &LoadOptions) -> lexer::LexOptions {
    lexer::LexOptions {
        config_id: opts.config_id.clone(),
        ..Default::default()
    }
}

fn finish(lines: Vec<ast::Line>, sources: SourceMap, mut diagnostics: Diagnostics) -> Loaded {
    let nodes = tree::build(lines, &mut diagnostics);
    let mut config = lower::lower(&nodes, &mut lower::Ctx::new(&mut diagnostics));
    config.shrink_to_fit();
    Loaded {
        config,
        sources,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lvs::CheckerKind;

    /// Every vector of the LVS half holds exactly what it has: a model kept for the life of
    /// the process must not carry the slots its vectors grew into.
    fn assert_tight(c: &Config) {
        let lvs = &c.lvs;
        assert_eq!(lvs.virtual_servers.capacity(), lvs.virtual_servers.len());
        for vs in &lvs.virtual_servers {
            assert_eq!(vs.real_servers.capacity(), vs.real_servers.len());
            for rs in &vs.real_servers {
                assert_eq!(rs.checkers.capacity(), rs.checkers.len());
                for ch in &rs.checkers {
                    if let CheckerKind::Http(h) = &ch.kind {
                        assert_eq!(h.urls.capacity(), h.urls.len());
                    }
                }
            }
        }
    }

    #[test]
    fn a_loaded_or_decoded_model_keeps_no_spare_room() {
        let text = "virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n    }\n  }\n  real_server 10.0.1.2 80 {\n    TCP_CHECK {\n    }\n  }\n  real_server 10.0.1.3 80 {\n    TCP_CHECK {\n    }\n  }\n}\n";
        let loaded = load_str(Path::new("t.conf"), text, &LoadOptions::default());
        assert!(loaded.is_ok(), "{}", loaded.report());
        assert_tight(&loaded.config);
        let json = serde_json::to_string(&loaded.config).expect("encodes");
        let mut decoded: Config = serde_json::from_str(&json).expect("decodes");
        decoded.shrink_to_fit();
        assert_tight(&decoded);
        assert_eq!(decoded, loaded.config);
    }
}
