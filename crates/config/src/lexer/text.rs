//! Character-level work on one logical line: every character keeps the column it had in its
//! physical line, so tokens point into the original text even after comments are cut,
//! definitions substituted and braces split.

/// A character of a logical line and its 1-based column (in characters) in the physical line
/// it came from. Characters produced by a substitution carry the column of the `$`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ch {
    pub c: char,
    pub col: u32,
}

pub(crate) type Text = Vec<Ch>;

/// A physical line as characters numbered from column 1.
pub(crate) fn from_line(line: &str) -> Text {
    line.chars()
        .zip(1u32..)
        .map(|(c, col)| Ch { c, col })
        .collect()
}

/// Characters of `s`, all placed at `col` (text that replaced a `$NAME`).
pub(crate) fn at_col(s: &str, col: u32) -> Text {
    s.chars().map(|c| Ch { c, col }).collect()
}

pub(crate) fn to_string(t: &[Ch]) -> String {
    t.iter().map(|ch| ch.c).collect()
}

/// Blanks as keepalived trims them (`isblank`).
pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Token separators, keepalived.md L3.
pub(crate) fn is_white(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c' | '\n' | '\r' | '\x0b')
}

pub(crate) fn trim(t: &[Ch]) -> &[Ch] {
    let start = t.iter().position(|ch| !is_blank(ch.c)).unwrap_or(t.len());
    let end = t
        .iter()
        .rposition(|ch| !is_blank(ch.c))
        .map_or(start, |e| e + 1);
    t.get(start..end.max(start)).unwrap_or(&[])
}

/// `(start, end)` of `t[from..]` without its leading and trailing blanks.
pub(crate) fn trim_range(t: &[Ch], from: usize) -> (usize, usize) {
    let mut s = from.min(t.len());
    while t.get(s).is_some_and(|ch| is_blank(ch.c)) {
        s += 1;
    }
    let mut e = t.len();
    while e > s && t.get(e - 1).is_some_and(|ch| is_blank(ch.c)) {
        e -= 1;
    }
    (s, e)
}

pub(crate) fn starts_with(t: &[Ch], prefix: &str) -> bool {
    let mut it = t.iter();
    prefix
        .chars()
        .all(|p| it.next().is_some_and(|ch| ch.c == p))
}

/// A line after [`decomment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decommented {
    pub text: Text,
    /// Column of a `"` that is never closed.
    pub unterminated_quote: Option<u32>,
}

/// Cuts the comment, turns `\#`/`\!` outside quotes into literal characters and trims blanks
/// (keepalived.md L2). A trailing `\` is kept, without the blanks before it: only a multiline
/// definition gives it meaning (L9, L13).
pub(crate) fn decomment(line: &[Ch]) -> Decommented {
    let line = trim(line);
    let mut out = Text::with_capacity(line.len());
    let mut quote: Option<u32> = None;
    let mut cont: Option<Ch> = None;
    let mut i = 0;
    while let Some(&ch) = line.get(i) {
        match ch.c {
            '"' => {
                quote = match quote {
                    Some(_) => None,
                    None => Some(ch.col),
                };
                out.push(ch);
                i += 1;
            }
            '\\' => match line.get(i + 1) {
                Some(&next) => {
                    if quote.is_none() && (next.c == '#' || next.c == '!') {
                        // The literal takes the backslash's column: that is where it was
                        // written.
                        out.push(Ch {
                            c: next.c,
                            col: ch.col,
                        });
                    } else {
                        out.push(ch);
                        out.push(next);
                    }
                    i += 2;
                }
                None => {
                    cont = Some(ch);
                    break;
                }
            },
            '#' | '!' if quote.is_none() => break,
            _ => {
                out.push(ch);
                i += 1;
            }
        }
    }
    while out.last().is_some_and(|ch| is_blank(ch.c)) {
        out.pop();
    }
    if let Some(b) = cont {
        out.push(b);
    }
    Decommented {
        text: out,
        unterminated_quote: quote,
    }
}

/// A word of a line before it becomes an `ast::Token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub col: u32,
    pub quoted: bool,
}

/// Splits a line into words (keepalived.md L3, L4): blanks separate, `"…"` groups and the
/// quotes are dropped, an unquoted word ends at a `"`, single quotes are ordinary. Returns
/// the column of an unmatched `"`; the words before it are kept, the rest of the line is not.
pub(crate) fn tokenize(t: &[Ch]) -> (Vec<Word>, Option<u32>) {
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while t.get(i).is_some_and(|ch| is_white(ch.c)) {
            i += 1;
        }
        let Some(&first) = t.get(i) else {
            return (words, None);
        };
        if first.c == '"' {
            let body = t.get(i + 1..).unwrap_or(&[]);
            let Some(len) = body.iter().position(|ch| ch.c == '"') else {
                return (words, Some(first.col));
            };
            words.push(Word {
                text: to_string(&body[..len]),
                col: first.col,
                quoted: true,
            });
            i += len + 2;
        } else {
            let start = i;
            while t.get(i).is_some_and(|ch| !is_white(ch.c) && ch.c != '"') {
                i += 1;
            }
            words.push(Word {
                text: to_string(&t[start..i]),
                col: first.col,
                quoted: false,
            });
        }
    }
}

/// Index of the brace that splits the line (keepalived.md L6): the first `{` or `}` outside
/// `"…"`. An unclosed `"` hides every brace after it.
pub(crate) fn find_brace(t: &[Ch]) -> Option<usize> {
    let mut i = 0;
    while let Some(ch) = t.get(i) {
        match ch.c {
            '{' | '}' => return Some(i),
            '"' => {
                let close = t.get(i + 1..)?.iter().position(|ch| ch.c == '"')?;
                i += close + 2;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> (String, Option<u32>) {
        let d = decomment(&from_line(s));
        (to_string(&d.text), d.unterminated_quote)
    }

    fn words(s: &str) -> Vec<(String, u32, bool)> {
        tokenize(&from_line(s))
            .0
            .into_iter()
            .map(|w| (w.text, w.col, w.quoted))
            .collect()
    }

    #[test]
    fn comments_end_the_line_outside_quotes() {
        // keepalived.md L2
        assert_eq!(dec("  router_id r1 # the id").0, "router_id r1");
        assert_eq!(dec("priority 1 ! bang").0, "priority 1");
        assert_eq!(
            dec(r#"router_id "my # router" # x"#).0,
            r#"router_id "my # router""#
        );
        assert_eq!(dec("# whole line").0, "");
        assert_eq!(dec("!").0, "");
    }

    #[test]
    fn escaped_comment_characters_are_literal_outside_quotes() {
        assert_eq!(dec(r"a\#b \!c").0, "a#b !c");
        assert_eq!(dec(r#""a\#b""#).0, r#""a\#b""#);
        assert_eq!(dec(r"a\xb").0, r"a\xb");
        let d = decomment(&from_line(r"x \#y"));
        assert_eq!(d.text[2], Ch { c: '#', col: 3 });
    }

    #[test]
    fn trailing_backslash_is_kept_without_blanks_before_it() {
        // keepalived.md L9, L13
        assert_eq!(dec("$X=a   \\").0, "$X=a\\");
        assert_eq!(dec("10.0.6.1/32 \\").0, "10.0.6.1/32\\");
    }

    #[test]
    fn unterminated_quote_is_reported_with_its_column() {
        assert_eq!(dec(r#"a "b # c"#), (r#"a "b # c"#.to_string(), Some(3)));
        // An escaped quote does not count.
        assert_eq!(dec(r#"a "b\"c""#).1, None);
    }

    #[test]
    fn tokens_follow_keepalived_quoting() {
        // keepalived.md L4
        assert_eq!(
            words(r#"a"b c" 'x y'"#),
            [
                ("a".into(), 1, false),
                ("b c".into(), 2, true),
                ("'x".into(), 8, false),
                ("y'".into(), 11, false)
            ]
        );
        assert_eq!(
            words("\tx\x0by"),
            [("x".into(), 2, false), ("y".into(), 4, false)]
        );
        assert_eq!(words(r#""""#), [(String::new(), 1, true)]);
        let (w, bad) = tokenize(&from_line(r#"notify "/bin/x a"#));
        assert_eq!(w.len(), 1);
        assert_eq!(bad, Some(8));
    }

    #[test]
    fn braces_outside_quotes_split() {
        // keepalived.md L6
        assert_eq!(find_brace(&from_line("a { b")), Some(2));
        assert_eq!(find_brace(&from_line(r#"a "{" }"#)), Some(6));
        assert_eq!(find_brace(&from_line(r#"a "{ }"#)), None);
        assert_eq!(find_brace(&from_line("}")), Some(0));
    }

    #[test]
    fn trim_handles_all_blank_and_empty() {
        assert!(trim(&from_line("   ")).is_empty());
        assert!(trim(&[]).is_empty());
        assert_eq!(to_string(trim(&from_line(" a b\t"))), "a b");
    }
}
