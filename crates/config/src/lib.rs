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
    let config = lower::lower(&nodes, &mut lower::Ctx::new(&mut diagnostics));
    Loaded {
        config,
        sources,
        diagnostics,
    }
}
