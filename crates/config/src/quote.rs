//! Shell-like word splitting for script keywords (`script`, `notify*`, `misc_path`,
//! `quorum_up`, …), keepalived.md §1.2 L5: both quote kinds group and concatenate with
//! neighbouring text; with `escapes`, backslash escapes are decoded.

/// Why a script string could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("missing terminating {0} quote")]
    Unterminated(char),
    #[error("a backslash at the end escapes nothing")]
    TrailingBackslash,
}

/// Splits `src` into words. Without `escapes`, a backslash and the character after it are kept
/// as written (the first, line-level pass); with it, `\n \t \xHH \NNN \cC …` are decoded and
/// any other escaped character stands for itself.
pub fn split_quoted(src: &str, escapes: bool) -> Result<Vec<String>, QuoteError> {
    let mut words = Vec::new();
    let mut chars = src.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| is_blank(*c)) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (_, '\\') => {
                    chars.next();
                    let Some(e) = chars.next() else {
                        return Err(QuoteError::TrailingBackslash);
                    };
                    if escapes {
                        word.push(decode_escape(e, &mut chars));
                    } else {
                        word.push('\\');
                        word.push(e);
                    }
                }
                (Some(q), c) if c == q => {
                    chars.next();
                    quote = None;
                }
                (Some(_), c) => {
                    chars.next();
                    word.push(c);
                }
                (None, '"' | '\'') => {
                    chars.next();
                    quote = Some(c);
                }
                (None, c) if is_blank(c) => break,
                (None, c) => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        if let Some(q) = quote {
            return Err(QuoteError::Unterminated(q));
        }
        words.push(word);
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn decode_escape(e: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    match e {
        'x' if rest.peek().is_some_and(|c| c.is_ascii_hexdigit()) => {
            let mut v = 0u32;
            for _ in 0..2 {
                match rest.peek().and_then(|c| c.to_digit(16)) {
                    Some(d) => {
                        v = v * 16 + d;
                        rest.next();
                    }
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\u{fffd}')
        }
        'c' if rest.peek().is_some() => {
            let c = rest.next().map(|c| c as u32 & 0x1f).unwrap_or(0);
            char::from_u32(c).unwrap_or('\u{fffd}')
        }
        '0'..='7' => {
            let mut v = e as u32 - '0' as u32;
            for _ in 0..2 {
                match rest.peek().and_then(|c| c.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        rest.next();
                    }
                    None => break,
                }
            }
            char::from_u32(v & 0xff).unwrap_or('\u{fffd}')
        }
        'a' => '\x07',
        'b' => '\x08',
        'E' => '\x1b',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        other => other,
    }
}

/// Writes `argv` back as one script string that [`split_quoted`] with `escapes` turns into the
/// same words. Words that need it are single-quoted; characters the line-level lexer would act
/// on even inside double quotes (`"`, `#`, `!`, `$`, `~`, braces) and control characters are
/// written as `\xHH`, so the result is safe inside a double-quoted config token.
pub fn join_quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty() && w.chars().all(is_plain);
            if plain {
                return w.clone();
            }
            let mut s = String::from("'");
            for c in w.chars() {
                match c {
                    '\\' | '\'' => {
                        s.push('\\');
                        s.push(c);
                    }
                    '"' | '#' | '!' | '$' | '~' | '{' | '}' | '@' => {
                        s.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c if c.is_ascii_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
                    c => s.push(c),
                }
            }
            s.push('\'');
            s
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_plain(c: char) -> bool {
    (c.is_ascii_alphanumeric() || "/._-+=:,%^&*()[]<>?|;".contains(c)) && !c.is_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str, e: bool) -> Vec<String> {
        split_quoted(s, e).unwrap_or_default()
    }

    #[test]
    fn quotes_group_and_concatenate() {
        assert_eq!(words(r#"a "b c" d'e f'g"#, true), ["a", "b c", "de fg"]);
        assert_eq!(words(r#"'it''s'"#, true), ["its"]);
        assert_eq!(words("  x\t y ", true), ["x", "y"]);
    }

    #[test]
    fn escapes_decode_only_when_asked() {
        assert_eq!(words(r"a\tb \x41 \101 \q", true), ["a\tb", "A", "A", "q"]);
        assert_eq!(words(r"a\tb", false), [r"a\tb"]);
        assert_eq!(words(r#""a\"b""#, true), ["a\"b"]);
    }

    #[test]
    fn bad_strings_are_errors() {
        assert_eq!(
            split_quoted("'abc", true),
            Err(QuoteError::Unterminated('\''))
        );
        assert_eq!(
            split_quoted("abc\\", true),
            Err(QuoteError::TrailingBackslash)
        );
    }

    proptest::proptest! {
        #[test]
        fn join_then_split_is_identity(argv in proptest::collection::vec(".{0,12}", 1..5)) {
            let joined = join_quoted(&argv);
            proptest::prop_assert_eq!(split_quoted(&joined, true), Ok(argv));
        }
    }
}
