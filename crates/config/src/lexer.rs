//! Files → logical lines (keepalived.md §1.1–1.2). PROVISIONAL minimal version: comments,
//! double quotes and brace splitting only; the full lexer replaces it.

use std::path::Path;

use crate::ast::{Line, LineKind, Token};
use crate::diag::Diagnostics;
use crate::source::{FileId, SourceMap, Span};

/// What the lexer needs to know beyond the text.
#[derive(Debug, Clone, Default)]
pub struct LexOptions {
    /// Selects `@ID` conditional lines (`--config-id`).
    pub config_id: Option<String>,
}

/// Reads `path` and everything it includes into logical lines.
pub fn read_file(
    path: &Path,
    opts: &LexOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Vec<Line> {
    let file = sources.add(path);
    match std::fs::read_to_string(path) {
        Ok(text) => lex_text(file, &text, opts, diags),
        Err(e) => {
            diags.error_nowhere(format!("cannot read {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Lexes in-memory text registered as `name` (tests, fuzzing); includes are resolved
/// relative to the current directory.
pub fn read_str(
    name: &Path,
    text: &str,
    opts: &LexOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Vec<Line> {
    let file = sources.add(name);
    lex_text(file, text, opts, diags)
}

fn lex_text(file: FileId, text: &str, _opts: &LexOptions, _diags: &mut Diagnostics) -> Vec<Line> {
    let mut out = Vec::new();
    for (n, physical) in text.lines().enumerate() {
        let line_no = n as u32 + 1;
        let chars: Vec<char> = physical.chars().collect();
        let mut i = 0;
        let mut tokens: Vec<Token> = Vec::new();
        let mut raw_start: Option<usize> = None;
        let flush = |tokens: &mut Vec<Token>,
                     raw_start: &mut Option<usize>,
                     end: usize,
                     out: &mut Vec<Line>| {
            if let Some(st) = raw_start.take() {
                let raw: String = chars[st..end].iter().collect();
                let span = tokens.first().map(|t| t.span).unwrap_or(Span::new(
                    file,
                    line_no,
                    st as u32 + 1,
                ));
                out.push(Line {
                    kind: LineKind::Words,
                    tokens: std::mem::take(tokens),
                    raw: raw.trim_end().to_string(),
                    span,
                });
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '#' || c == '!' {
                break;
            }
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            if c == '{' || c == '}' {
                flush(&mut tokens, &mut raw_start, i, &mut out);
                out.push(Line {
                    kind: if c == '{' {
                        LineKind::Open
                    } else {
                        LineKind::Close
                    },
                    tokens: Vec::new(),
                    raw: c.to_string(),
                    span: Span::new(file, line_no, i as u32 + 1),
                });
                i += 1;
                continue;
            }
            raw_start.get_or_insert(i);
            let start = i;
            let mut text = String::new();
            let quoted = c == '"';
            if quoted {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    text.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() && !"{}\"#!".contains(chars[i]) {
                    text.push(chars[i]);
                    i += 1;
                }
            }
            tokens.push(Token {
                text,
                span: Span::new(file, line_no, start as u32 + 1),
                quoted,
            });
        }
        let end = i.min(chars.len());
        flush(&mut tokens, &mut raw_start, end, &mut out);
    }
    out
}
