//! Diagnostics: every problem found in a configuration, with its position, so that one run
//! reports all of them (`path:line:col: error|warning: what, and why`).

use std::fmt;

use crate::source::{SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding. `span` is `None` only for problems that have no place in a file (the main
/// file cannot be opened, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Option<Span>,
    pub message: String,
}

impl Diagnostic {
    /// Renders the diagnostic as `path:line:col: severity: message`.
    pub fn render(&self, sources: &SourceMap) -> String {
        match self.span {
            Some(span) => format!(
                "{}: {}: {}",
                sources.locate(span),
                self.severity,
                self.message
            ),
            None => format!("{}: {}", self.severity, self.message),
        }
    }
}

/// Collected diagnostics of one load.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// With `strict`, findings that are normally warnings about keywords flotilla does not
    /// know become errors.
    pub strict: bool,
}

impl Diagnostics {
    pub fn new(strict: bool) -> Self {
        Diagnostics {
            items: Vec::new(),
            strict,
        }
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Error, Some(span), message.into());
    }

    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Warning, Some(span), message.into());
    }

    /// A warning that `--strict` turns into an error (unknown keywords, extra tokens).
    pub fn strict_warning(&mut self, span: Span, message: impl Into<String>) {
        let severity = if self.strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        self.push(severity, Some(span), message.into());
    }

    pub fn error_nowhere(&mut self, message: impl Into<String>) {
        self.push(Severity::Error, None, message.into());
    }

    fn push(&mut self, severity: Severity, span: Option<Span>, message: String) {
        self.items.push(Diagnostic {
            severity,
            span,
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Diagnostics in file order (file, line, column), positionless ones first; stable for
    /// findings at the same place.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut v = self.items.clone();
        v.sort_by_key(|d| d.span);
        v
    }

    /// Every diagnostic rendered on its own line, in file order.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        for d in self.sorted() {
            out.push_str(&d.render(sources));
            out.push('\n');
        }
        out
    }
}
