//! Logical lines → keyword tree: a `{` line opens the block of the keyword line before it, a
//! `}` line closes the innermost block (keepalived.md §1.2 L6).

use crate::ast::{Block, Line, LineKind, Node};
use crate::diag::Diagnostics;
use crate::source::Span;

/// Builds the tree; reports stray and missing braces.
pub fn build(lines: Vec<Line>, diags: &mut Diagnostics) -> Vec<Node> {
    // Each open level: the nodes collected so far and where its `{` was.
    let mut stack: Vec<(Vec<Node>, Span)> = Vec::new();
    let mut current: Vec<Node> = Vec::new();
    for line in lines {
        match line.kind {
            LineKind::Words => {
                let mut tokens = line.tokens.into_iter();
                let Some(keyword) = tokens.next() else {
                    continue;
                };
                let rest = line
                    .raw
                    .get(raw_after_first_word(&line.raw)..)
                    .unwrap_or("")
                    .trim_start()
                    .to_string();
                current.push(Node {
                    keyword,
                    args: tokens.collect(),
                    rest,
                    block: None,
                });
            }
            LineKind::Open => match current.last() {
                Some(n) if n.block.is_none() => {
                    stack.push((std::mem::take(&mut current), line.span));
                }
                _ => {
                    diags.error(
                        line.span,
                        "'{' without a keyword before it; the block is ignored",
                    );
                    // Keep the depth consistent: parse the block and drop it.
                    stack.push((std::mem::take(&mut current), line.span));
                    if let Some((parent, _)) = stack.last_mut() {
                        parent.push(Node {
                            keyword: crate::ast::Token {
                                text: String::new(),
                                span: line.span,
                                quoted: false,
                            },
                            args: Vec::new(),
                            rest: String::new(),
                            block: None,
                        });
                    }
                }
            },
            LineKind::Close => match stack.pop() {
                Some((mut parent, open)) => {
                    let children = std::mem::take(&mut current);
                    match parent.last_mut() {
                        Some(owner) if owner.word().is_empty() => {
                            parent.pop();
                        }
                        Some(owner) => owner.block = Some(Block { open, children }),
                        None => {}
                    }
                    current = parent;
                }
                None => diags.error(line.span, "extra '}' with no open block"),
            },
        }
    }
    while let Some((mut parent, open)) = stack.pop() {
        diags.error(open, "this '{' is never closed");
        let children = std::mem::take(&mut current);
        if let Some(owner) = parent.last_mut() {
            owner.block = Some(Block { open, children });
        }
        current = parent;
    }
    current
}

/// Byte offset just after the first word of a raw line (honouring double quotes).
fn raw_after_first_word(raw: &str) -> usize {
    let s = raw.trim_start();
    let lead = raw.len() - s.len();
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            c if !in_quote && c.is_whitespace() => return lead + i,
            _ => {}
        }
    }
    raw.len()
}
