//! `~SEQ(var, [start,] [step,] end)`, `~SEQx(…)` and `~LST(…)` (keepalived.md L14): the
//! rest of the line is repeated with `$var` set to each value in turn.

use super::text::{Ch, Text, is_blank, to_string, trim};

/// A malformed `~SEQ`/`~LST`, with the column where it goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct SeqError {
    pub col: u32,
    pub message: String,
}

/// `~SEQ(var, …)` before its numbers are read: they may still contain `$definitions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeqHead {
    pub hex: bool,
    pub var: String,
    /// The text between the comma after the variable and the `)`.
    pub params: Text,
    pub rest: Text,
}

/// A running `~SEQ`: the value to produce next and the text to repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeqRun {
    pub var: String,
    pub next: i64,
    pub step: i64,
    pub last: i64,
    pub hex: bool,
    pub text: Text,
}

impl SeqRun {
    pub(crate) fn value(&self) -> String {
        if self.hex {
            format!("{:x}", self.next)
        } else {
            self.next.to_string()
        }
    }

    /// The run after this value, or `None` when this was the last.
    pub(crate) fn advance(mut self) -> Option<SeqRun> {
        let next = self.next.checked_add(self.step)?;
        if (self.step > 0 && next > self.last) || (self.step < 0 && next < self.last) {
            return None;
        }
        self.next = next;
        Some(self)
    }
}

/// A running `~LST`: its variables, the value sets and which set comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LstRun {
    pub vars: Vec<String>,
    pub sets: Vec<Vec<String>>,
    pub next: usize,
    pub text: Text,
}

impl LstRun {
    /// Each variable with its value in the current set.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&str, &str)> {
        let set = self.sets.get(self.next);
        self.vars.iter().enumerate().map(move |(i, v)| {
            (
                v.as_str(),
                set.and_then(|s| s.get(i)).map_or("", String::as_str),
            )
        })
    }

    pub(crate) fn advance(mut self) -> Option<LstRun> {
        self.next += 1;
        (self.next < self.sets.len()).then_some(self)
    }
}

struct Cursor<'a> {
    t: &'a [Ch],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.t.get(self.i).map(|ch| ch.c)
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
    }

    /// Column of the current character (one past the end at the end of the line).
    fn col(&self) -> u32 {
        match self.t.get(self.i) {
            Some(ch) => ch.col,
            None => self.t.last().map_or(1, |ch| ch.col.saturating_add(1)),
        }
    }

    fn err(&self, what: &str, message: impl Into<String>) -> SeqError {
        SeqError {
            col: self.col(),
            message: format!("invalid {what}: {}", message.into()),
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), SeqError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what, format!("expected '{c}'")))
        }
    }

    /// A word up to a blank or one of `stops`.
    fn word(&mut self, stops: &str) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| !is_blank(c) && !stops.contains(c))
        {
            self.i += 1;
        }
        to_string(&self.t[start..self.i])
    }

    fn name(&mut self, what: &str) -> Result<String, SeqError> {
        let col = self.col();
        let name = self.word(",})");
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(name)
        } else {
            Err(SeqError {
                col,
                message: format!("invalid {what}: '{name}' is not a variable name"),
            })
        }
    }
}

/// Reads `~SEQ(var, …)` / `~SEQx(var, …)` up to its `)`.
pub(crate) fn parse_seq_head(t: &[Ch]) -> Result<SeqHead, SeqError> {
    let mut c = Cursor { t, i: 4 };
    let hex = c.peek() == Some('x');
    if hex {
        c.i += 1;
    }
    let what = if hex { "~SEQx" } else { "~SEQ" };
    c.skip_blanks();
    c.expect('(', what)?;
    c.skip_blanks();
    let var = c.name(what)?;
    c.skip_blanks();
    c.expect(',', what)?;
    let start = c.i;
    let Some(len) = t[start..].iter().position(|ch| ch.c == ')') else {
        return Err(c.err(what, "missing ')'"));
    };
    Ok(SeqHead {
        hex,
        var,
        params: t[start..start + len].to_vec(),
        rest: trim(&t[start + len + 1..]).to_vec(),
    })
}

/// The numbers of a `~SEQ`, already substituted: `end`, `start, end` or `start, step, end`;
/// a missing step is 1 or -1 towards `end`.
pub(crate) fn seq_run(head: SeqHead, params: &str) -> Result<SeqRun, String> {
    let what = if head.hex { "~SEQx" } else { "~SEQ" };
    let nums = params
        .split(',')
        .map(|p| {
            parse_long(p.trim_matches(is_blank))
                .ok_or_else(|| format!("invalid {what}: '{}' is not a number", p.trim()))
        })
        .collect::<Result<Vec<i64>, String>>()?;
    let (start, step, last) = match nums[..] {
        [end] => (
            if end < 0 { -1 } else { 1 },
            if end < 1 { -1 } else { 1 },
            end,
        ),
        [start, end] => (start, if start <= end { 1 } else { -1 }, end),
        [start, step, end] => {
            if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                return Err(format!(
                    "invalid {what}: step {step} never goes from {start} to {end}"
                ));
            }
            (start, step, end)
        }
        _ => {
            return Err(format!(
                "invalid {what}: expected 1 to 3 numbers after the variable"
            ));
        }
    };
    if head.hex && (start < 0 || last < 0) {
        return Err("invalid ~SEQx: only positive numbers can be written in hex".to_string());
    }
    Ok(SeqRun {
        var: head.var,
        next: start,
        step,
        last,
        hex: head.hex,
        text: head.rest,
    })
}

/// A C `strtol(…, 0)` number: sign, then `0x` hex, `0` octal or decimal; nothing may follow.
fn parse_long(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (digits, radix) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (h, 16)
        } else if body.len() > 1 && body.starts_with('0') {
            (&body[1..], 8)
        } else {
            (body, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Reads `~LST(var, v1, v2…)` or `~LST({a,b}, {1,2}, …)`; missing values in a set are empty.
pub(crate) fn parse_lst(t: &[Ch]) -> Result<LstRun, SeqError> {
    const WHAT: &str = "~LST";
    let mut c = Cursor { t, i: 4 };
    c.skip_blanks();
    c.expect('(', WHAT)?;
    c.skip_blanks();
    let braced = c.peek() == Some('{');
    if braced {
        c.i += 1;
        c.skip_blanks();
    }
    let mut vars = Vec::new();
    loop {
        vars.push(c.name(WHAT)?);
        c.skip_blanks();
        match c.peek() {
            Some('}') if braced => {
                c.i += 1;
                c.skip_blanks();
                break;
            }
            Some(',') if !braced => break,
            Some(',') => {
                c.i += 1;
                c.skip_blanks();
            }
            _ => return Err(c.err(WHAT, "expected ',' or '}' after a variable")),
        }
    }
    c.expect(',', WHAT)?;
    c.skip_blanks();
    let mut sets = Vec::new();
    loop {
        let braced = c.peek() == Some('{');
        if braced {
            c.i += 1;
            c.skip_blanks();
        }
        let mut values = Vec::new();
        loop {
            values.push(c.word(",})"));
            c.skip_blanks();
            match c.peek() {
                Some('}') if braced => {
                    c.i += 1;
                    c.skip_blanks();
                    break;
                }
                Some(',' | ')') if !braced => break,
                Some(',') if braced => {
                    if values.len() >= vars.len() {
                        return Err(c.err(WHAT, "more values than variables"));
                    }
                    c.i += 1;
                    c.skip_blanks();
                }
                _ => return Err(c.err(WHAT, "expected ',' or the end of the value set")),
            }
        }
        values.resize(vars.len(), String::new());
        sets.push(values);
        match c.peek() {
            Some(')') => {
                c.i += 1;
                break;
            }
            Some(',') => {
                c.i += 1;
                c.skip_blanks();
            }
            _ => return Err(c.err(WHAT, "expected ',' or ')' after a value")),
        }
    }
    Ok(LstRun {
        vars,
        sets,
        next: 0,
        text: trim(t.get(c.i..).unwrap_or(&[])).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::text::from_line;
    use super::*;

    fn values(line: &str) -> Result<(Vec<String>, String), String> {
        let head = parse_seq_head(&from_line(line)).map_err(|e| e.message)?;
        let params = to_string(&head.params);
        let mut run = Some(seq_run(head, &params)?);
        let text = run.as_ref().map(|r| to_string(&r.text)).unwrap_or_default();
        let mut out = Vec::new();
        while let Some(r) = run {
            out.push(r.value());
            run = r.advance();
        }
        Ok((out, text))
    }

    #[test]
    fn seq_forms_and_inferred_step() {
        // keepalived.md L14
        assert_eq!(
            values("~SEQ(i, 3) x $i").map(|v| v.0),
            Ok(vec!["1".into(), "2".into(), "3".into()])
        );
        assert_eq!(values("~SEQ(i, 3) x $i").map(|v| v.1), Ok("x $i".into()));
        assert_eq!(
            values("~SEQ(i,0)").map(|v| v.0),
            Ok(vec!["1".into(), "0".into()])
        );
        assert_eq!(
            values("~SEQ(i,-2)").map(|v| v.0),
            Ok(vec!["-1".into(), "-2".into()])
        );
        assert_eq!(
            values("~SEQ(i, 5, 3)").map(|v| v.0),
            Ok(vec!["5".into(), "4".into(), "3".into()])
        );
        assert_eq!(
            values("~SEQ(i, 1, 4, 10)").map(|v| v.0),
            Ok(vec!["1".into(), "5".into(), "9".into()])
        );
        assert_eq!(
            values("~SEQx(i, 9, 0x0b)").map(|v| v.0),
            Ok(vec!["9".into(), "a".into(), "b".into()])
        );
        assert_eq!(
            values(&format!("~SEQ(i, {}, {}, {})", i64::MAX - 1, 5, i64::MAX)).map(|v| v.0.len()),
            Ok(1)
        );
    }

    #[test]
    fn malformed_seq_is_an_error_with_a_column() {
        let e = parse_seq_head(&from_line("~SEQ i,1)")).expect_err("no (");
        assert_eq!(e.col, 6);
        assert!(parse_seq_head(&from_line("~SEQ(i,1")).is_err());
        assert!(parse_seq_head(&from_line("~SEQ(1i,1)")).is_err());
        assert!(values("~SEQ(i, 1, -1, 5)").is_err());
        assert!(values("~SEQ(i, 1, 0, 5)").is_err());
        assert!(values("~SEQ(i, a)").is_err());
        assert!(values("~SEQ(i, 1,2,3,4)").is_err());
        assert!(values("~SEQx(i, -3)").is_err());
    }

    fn lst(line: &str) -> Result<Vec<Vec<(String, String)>>, SeqError> {
        let mut run = Some(parse_lst(&from_line(line))?);
        let mut out = Vec::new();
        while let Some(r) = run {
            out.push(
                r.bindings()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            );
            run = r.advance();
        }
        Ok(out)
    }

    #[test]
    fn lst_forms() {
        let one = lst("~LST(v, a, b) x").expect("simple");
        assert_eq!(
            one,
            vec![
                vec![("v".into(), "a".into())],
                vec![("v".into(), "b".into())]
            ]
        );
        let two = lst("~LST({n, ip}, {a, 1}, {b}, c) x").expect("sets");
        assert_eq!(
            two,
            vec![
                vec![("n".into(), "a".into()), ("ip".into(), "1".into())],
                vec![("n".into(), "b".into()), ("ip".into(), String::new())],
                vec![("n".into(), "c".into()), ("ip".into(), String::new())],
            ]
        );
        assert_eq!(
            to_string(&parse_lst(&from_line("~LST(v,a)  rest  ")).expect("ok").text),
            "rest"
        );
    }

    #[test]
    fn malformed_lst_is_an_error() {
        assert!(lst("~LST(v)").is_err());
        assert!(lst("~LST({a}, {1, 2})").is_err());
        assert!(lst("~LST(v, a").is_err());
        assert!(lst("~LST v, a)").is_err());
        assert!(lst("~LST({a b}, 1)").is_err());
    }
}
