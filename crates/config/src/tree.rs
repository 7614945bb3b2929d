//! Logical lines → keyword tree: a `{` line opens the block of the keyword line before it, a
//! `}` line closes the innermost block (keepalived.md §1.2 L6).

use crate::ast::{Block, Line, LineKind, Node};
use crate::diag::Diagnostics;
use crate::source::Span;

/// Block nesting kept; keepalived's own grammar goes about six deep. Deeper blocks are
/// dropped so that nothing downstream (lowering, dropping the tree) recurses without bound.
const MAX_DEPTH: usize = 64;

/// Builds the tree; reports stray and missing braces.
pub fn build(lines: Vec<Line>, diags: &mut Diagnostics) -> Vec<Node> {
    // Each open level: the nodes collected so far and where its `{` was.
    let mut stack: Vec<(Vec<Node>, Span)> = Vec::new();
    let mut current: Vec<Node> = Vec::new();
    // Depth inside a block dropped for being too deep.
    let mut skipping = 0usize;
    for line in lines {
        if skipping > 0 {
            match line.kind {
                LineKind::Open => skipping += 1,
                LineKind::Close => skipping -= 1,
                LineKind::Words => {}
            }
            continue;
        }
        if line.kind == LineKind::Open && stack.len() >= MAX_DEPTH {
            diags.error(
                line.span,
                format!("blocks nested more than {MAX_DEPTH} deep; this block is ignored"),
            );
            skipping = 1;
            continue;
        }
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
                    let mut children = std::mem::take(&mut current);
                    // Blocks live until lowering ends: give back the growth slack.
                    children.shrink_to_fit();
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
        match parent.last_mut() {
            // The placeholder of a '{' without a keyword: its block is dropped, as at '}'.
            Some(owner) if owner.word().is_empty() => {
                parent.pop();
            }
            Some(owner) => owner.block = Some(Block { open, children }),
            None => {}
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::lexer::{LexOptions, read_str};
    use crate::source::SourceMap;

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut sources = SourceMap::new();
        let mut diags = Diagnostics::new(false);
        let lines = read_str(
            Path::new("t.conf"),
            text,
            &LexOptions::default(),
            &mut sources,
            &mut diags,
        );
        let nodes = build(lines, &mut diags);
        (nodes, diags)
    }

    /// `word(child child(…))` for a compact comparison.
    fn show(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let mut s = n
                    .words()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Some(b) = &n.block {
                    s.push_str(&format!("({})", show(&b.children)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn errors(d: &Diagnostics) -> Vec<(u32, u32, String)> {
        d.iter()
            .map(|x| {
                let s = x.span.unwrap_or_default();
                (s.line, s.col, x.message.clone())
            })
            .collect()
    }

    #[test]
    fn brace_on_the_keyword_line_with_content_after_it() {
        // keepalived.md L6
        let (n, d) = tree("vrrp_instance VI { state BACKUP\n priority 50 }\nnext");
        assert_eq!(
            show(&n),
            "vrrp_instance VI(state BACKUP, priority 50), next"
        );
        assert!(d.is_empty());
        assert_eq!(
            n[0].block.as_ref().map(|b| (b.open.line, b.open.col)),
            Some((1, 18))
        );
        assert_eq!(n[0].rest, "VI");
    }

    #[test]
    fn brace_on_its_own_line_and_one_line_blocks() {
        let (n, d) = tree("virtual_ipaddress\n{ 10.0.0.1 }\nx {\n10.0.0.2 }\ny { }");
        assert_eq!(show(&n), "virtual_ipaddress(10.0.0.1), x(10.0.0.2), y()");
        assert!(d.is_empty());
    }

    #[test]
    fn nested_blocks() {
        let (n, d) = tree(
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 { weight 2 HTTP_GET { url { path / } } }\n}",
        );
        assert_eq!(
            show(&n),
            // Only braces end a line (L7): `HTTP_GET` is an argument of `weight`, whose block it is.
            "virtual_server 10.0.0.1 80(real_server 10.0.1.1 80(weight 2 HTTP_GET(url(path /))))"
        );
        assert!(d.is_empty());
    }

    #[test]
    fn extra_close_is_an_error_and_parsing_goes_on() {
        let (n, d) = tree("a {\n}\n}\nb 1");
        assert_eq!(show(&n), "a(), b 1");
        assert_eq!(
            errors(&d),
            [(3, 1, "extra '}' with no open block".to_string())]
        );
    }

    #[test]
    fn missing_close_is_reported_at_the_open_brace() {
        let (n, d) = tree("a {\n  b {\n  c\n");
        assert_eq!(show(&n), "a(b(c))");
        assert_eq!(
            errors(&d),
            [
                (2, 5, "this '{' is never closed".to_string()),
                (1, 3, "this '{' is never closed".to_string())
            ]
        );
    }

    #[test]
    fn open_without_keyword_drops_its_block() {
        let (n, d) = tree("{ a }\nb\nc { } {\nd\n}\ne");
        assert_eq!(show(&n), "b, c(), e");
        assert_eq!(d.len(), 2);
        // Never closed either: no empty keyword is left behind.
        let (n, d) = tree("x\n{ y } {\nz");
        assert_eq!(show(&n), "x(y)");
        assert_eq!(d.len(), 2);
        assert!(n.iter().all(|n| !n.word().is_empty()));
    }

    #[test]
    fn runaway_nesting_is_cut_off() {
        let text = format!("{}x{}\nafter", "a {\n".repeat(10_000), "}\n".repeat(10_000));
        let (n, d) = tree(&text);
        assert_eq!(d.len(), 1);
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].word(), "after");
        let mut depth = 0;
        let mut at = &n[0];
        while let Some(child) = at.children().first() {
            depth += 1;
            at = child;
        }
        assert_eq!(depth, MAX_DEPTH);
    }

    #[test]
    fn rest_keeps_quotes_and_skips_a_quoted_keyword() {
        let (n, _) = tree("notify_master \"/bin/x a\" b\n\"quoted key\" v");
        assert_eq!(n[0].rest, "\"/bin/x a\" b");
        assert_eq!(n[1].rest, "v");
    }

    proptest::proptest! {
        /// Whatever the text, reading it never panics (the fuzz target does the same with
        /// raw bytes).
        #[test]
        fn any_text_loads_without_panic(text in "(?s).{0,400}") {
            let _ = crate::load_str(Path::new("/nonexistent/p.conf"), &text, &crate::LoadOptions::default());
        }

        #[test]
        fn config_like_text_loads_without_panic(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "\"", "'", "#", "!", "\\", "$A", "$A=", "${A}", "${_RANDOM 1 3}",
                    "~SEQ(i,3)", "~SEQx(i,1,2)", "~LST(v,a,b)", "~LST({a,b},{1,2})", "@x", "@^x",
                    "include ", "*.conf", "vrrp_instance", "VI", " ", "\n", "\t", "\r\n",
                    "\0", "é", "$M=\\\n", "(", ")", ",",
                ]),
                0..60,
            )
        ) {
            let text: String = parts.concat();
            let _ = crate::load_str(Path::new("/nonexistent/p.conf"), &text, &crate::LoadOptions::default());
        }
    }
}
