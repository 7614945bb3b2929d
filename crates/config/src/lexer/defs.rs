//! `$NAME=VALUE` definitions and their substitution (keepalived.md L11–L13), with the
//! built-ins `_PWD`, `_INSTANCE`, `_RANDOM`, `_ENV`, `_HASH` and `_BANG`.

use std::collections::HashMap;

use super::text::{Ch, Text, at_col, is_blank, to_string};

/// Substitutions on one line before it is taken for a definition that refers to itself.
const MAX_SUBSTITUTIONS: usize = 1_000;
/// Longest line (and the multiline lines it brings) substitution may build.
const MAX_EXPANDED_CHARS: usize = 1 << 16;
/// Characters substitution may move in one load. Each substitution rewrites its line, so a
/// definition that grows itself costs its line squared; this bounds what `~SEQ` repetitions
/// of such a line can cost (fuzzing found 10+ minute loads without it).
const SUBSTITUTION_BUDGET: usize = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
    Env,
    Hash,
    Bang,
}

#[derive(Debug, Clone)]
enum Def {
    /// A multiline value separates its lines with `\n`.
    Text {
        value: String,
        multiline: bool,
    },
    Builtin(Builtin),
}

/// A `$NAME=VALUE` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    pub name: String,
    pub value: String,
    /// The value ends in `\`: the following lines belong to it (L13).
    pub multiline: bool,
}

/// What the built-in definitions need from the lexer.
pub(crate) struct Context<'a> {
    /// `${_PWD}`: the directory of the file being read.
    pub pwd: &'a str,
    /// `${_INSTANCE}`.
    pub instance: &'a str,
}

/// The result of substituting definitions on one line.
#[derive(Debug, Default)]
pub(crate) struct Expanded {
    pub text: Text,
    /// Lines that a multiline definition adds after this one, in order.
    pub more_lines: Vec<Text>,
    pub changed: bool,
    /// Misused built-ins: column of the `$` and what is wrong. The reference is kept as
    /// written.
    pub problems: Vec<(u32, String)>,
    /// Substitution did not converge (a definition refers to itself) or grew too large.
    pub runaway: bool,
    /// This expansion used up the load's [`SUBSTITUTION_BUDGET`]; later ones do nothing.
    pub exhausted: bool,
}

struct Match {
    end: usize,
    value: String,
}

/// The definitions known at this point of the configuration.
#[derive(Debug)]
pub(crate) struct Defs {
    map: HashMap<String, Def>,
    rng: u64,
    /// What is left of [`SUBSTITUTION_BUDGET`].
    budget: usize,
}

impl Defs {
    /// The built-in definitions, with `_RANDOM` seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let map = [
            ("_PWD", Builtin::Pwd),
            ("_INSTANCE", Builtin::Instance),
            ("_RANDOM", Builtin::Random),
            ("_ENV", Builtin::Env),
            ("_HASH", Builtin::Hash),
            ("_BANG", Builtin::Bang),
        ]
        .into_iter()
        .map(|(n, b)| (n.to_string(), Def::Builtin(b)))
        .collect();
        Defs {
            map,
            // xorshift must not start from zero.
            rng: seed | 1,
            budget: SUBSTITUTION_BUDGET,
        }
    }

    /// Defines or redefines `name` (L11: redefinition is allowed, also of a built-in).
    pub(crate) fn set(&mut self, name: &str, value: &str, multiline: bool) {
        self.map.insert(
            name.to_string(),
            Def::Text {
                value: value.to_string(),
                multiline,
            },
        );
    }

    /// Adds a continuation line to the multiline definition `name` (L13); `more` says the
    /// line ended in `\`, so yet another follows.
    pub(crate) fn append(&mut self, name: &str, line: &str, more: bool) {
        if let Some(Def::Text { value, .. }) = self.map.get_mut(name) {
            // keepalived skips blank continuation lines but keeps a blank last one.
            if !line.is_empty() || !more {
                value.push_str(line);
                if more {
                    value.push('\n');
                }
            }
        }
    }

    /// Replaces `$NAME` and `${NAME}` references (L12). Replaced text is scanned again at
    /// once, so definitions may use definitions; an undefined name stays as written.
    pub(crate) fn expand(&mut self, text: Text, ctx: &Context<'_>) -> Expanded {
        let mut out = Expanded {
            text,
            ..Expanded::default()
        };
        if self.budget == 0 {
            return out;
        }
        let mut count = 0usize;
        let mut more_chars = 0usize;
        let mut i = 0;
        while i + 1 < out.text.len() {
            if out.text[i].c != '$' {
                i += 1;
                continue;
            }
            let col = out.text[i].col;
            let Some(m) = self.lookup(&out.text, i, ctx, &mut out.problems) else {
                i += 1;
                continue;
            };
            count += 1;
            let mut pieces = m.value.split('\n');
            let first = pieces.next().unwrap_or("");
            let rest: Vec<Text> = pieces.map(|p| at_col(p, col)).collect();
            more_chars += rest.iter().map(Vec::len).sum::<usize>();
            let cost = out.text.len() + first.len() + more_chars;
            if cost > self.budget {
                self.budget = 0;
                out.exhausted = true;
                out.runaway = true;
                return out;
            }
            self.budget -= cost;
            if count > MAX_SUBSTITUTIONS
                || out.text.len() + first.len() > MAX_EXPANDED_CHARS
                || more_chars > MAX_EXPANDED_CHARS
            {
                out.runaway = true;
                return out;
            }
            // A nested multiline definition's lines come before the outer one's remaining
            // lines, as keepalived stacks them.
            out.more_lines.splice(0..0, rest);
            out.text.splice(i..m.end, at_col(first, col));
            out.changed = true;
            if first.trim_start_matches(is_blank).starts_with('~') {
                // keepalived stops substituting once a value brings in a `~SEQ`/`~LST`: its
                // own variables are not defined yet.
                break;
            }
        }
        out
    }

    /// The definition referenced by the `$` at `i`, if any.
    fn lookup(
        &mut self,
        t: &[Ch],
        i: usize,
        ctx: &Context<'_>,
        problems: &mut Vec<(u32, String)>,
    ) -> Option<Match> {
        let col = t.get(i)?.col;
        let mut j = i + 1;
        let braced = t.get(j)?.c == '{';
        if braced {
            j += 1;
        }
        let name_start = j;
        let first = t.get(j)?.c;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        while t.get(j).is_some_and(|ch| is_name_char(ch.c)) {
            j += 1;
        }
        let name = to_string(&t[name_start..j]);
        let mut params: Vec<String> = Vec::new();
        if braced {
            // `${NAME p1 p2}`: only built-ins take parameters.
            let mut cur = String::new();
            let mut last_blank = false;
            while let Some(ch) = t.get(j).filter(|ch| is_blank(ch.c) || is_name_char(ch.c)) {
                last_blank = is_blank(ch.c);
                if last_blank {
                    if !cur.is_empty() {
                        params.push(std::mem::take(&mut cur));
                    }
                } else {
                    cur.push(ch.c);
                }
                j += 1;
            }
            if !cur.is_empty() {
                params.push(cur);
            }
            if (!params.is_empty() && last_blank) || t.get(j)?.c != '}' {
                return None;
            }
            j += 1;
        } else if let Some(ch) = t.get(j)
            && !(is_blank(ch.c) || ch.c == ',' || ch.c == ')')
        {
            return None;
        }
        let at_end = j == t.len();
        let value = match self.map.get(&name)? {
            Def::Text { value, multiline } => {
                // A multiline value can only stand at the end of a line (L13).
                if !params.is_empty() || (*multiline && !at_end) {
                    return None;
                }
                value.clone()
            }
            Def::Builtin(b) => {
                let b = *b;
                match self.builtin(b, &params, ctx) {
                    Ok(v) => v,
                    Err(msg) => {
                        problems.push((col, msg));
                        return None;
                    }
                }
            }
        };
        Some(Match { end: j, value })
    }

    fn builtin(
        &mut self,
        b: Builtin,
        params: &[String],
        ctx: &Context<'_>,
    ) -> Result<String, String> {
        let no_params = |v: &str| {
            if params.is_empty() {
                Ok(v.to_string())
            } else {
                Err("this built-in definition takes no parameters".to_string())
            }
        };
        match b {
            Builtin::Pwd => no_params(ctx.pwd),
            Builtin::Instance => no_params(ctx.instance),
            Builtin::Hash => no_params("#"),
            Builtin::Bang => no_params("!"),
            Builtin::Env => match params {
                [var] => Ok(std::env::var(var).unwrap_or_default()),
                _ => Err("${_ENV VAR} takes exactly one variable name".to_string()),
            },
            Builtin::Random => {
                if params.len() > 2
                    || params
                        .iter()
                        .any(|p| !p.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(
                        "${_RANDOM [min [max]]} takes at most two decimal numbers".to_string()
                    );
                }
                let num = |i: usize, default: u64| -> Result<u64, String> {
                    params.get(i).map_or(Ok(default), |p| {
                        p.parse::<u64>()
                            .map_err(|_| format!("${{_RANDOM}} bound {p} is too large"))
                    })
                };
                let min = num(0, 0)?;
                // keepalived reports reversed bounds and uses the minimum.
                let max = num(1, 32767)?.max(min);
                let span = u128::from(max - min) + 1;
                let r = u128::from(self.next_random()) % span;
                Ok((u128::from(min) + r).to_string())
            }
        }
    }

    /// xorshift64: `_RANDOM` needs variety, not quality.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses a `$NAME=VALUE` line (L11): no blank before `=`, blanks after it skipped, a
/// trailing `\` starts a multiline definition (L13).
pub(crate) fn parse_definition(t: &[Ch]) -> Option<Definition> {
    if t.first()?.c != '$' {
        return None;
    }
    let first = t.get(1)?.c;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    // Only the name is looked at before deciding, so a long line that is no definition
    // costs little.
    let eq = 1 + t[1..].iter().position(|ch| !is_name_char(ch.c))?;
    if t[eq].c != '=' {
        return None;
    }
    let name = to_string(&t[1..eq]);
    let value = to_string(&t[eq + 1..]);
    let value = value.trim_start_matches(is_blank);
    match value.strip_suffix('\\') {
        Some(v) => {
            let v = v.trim_end_matches(is_blank);
            Some(Definition {
                name,
                value: if v.is_empty() {
                    String::new()
                } else {
                    format!("{v}\n")
                },
                multiline: true,
            })
        }
        None => Some(Definition {
            name,
            value: value.to_string(),
            multiline: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::from_line;
    use super::*;

    const CTX: Context<'static> = Context {
        pwd: "/etc/keepalived",
        instance: "lb1",
    };

    fn expand(defs: &mut Defs, s: &str) -> String {
        to_string(&defs.expand(from_line(s), &CTX).text)
    }

    #[test]
    fn definitions_parse_per_keepalived() {
        // keepalived.md L11
        let d = parse_definition(&from_line("$VIP=  10.0.0.1 dev eth0")).expect("definition");
        assert_eq!(
            (d.name.as_str(), d.value.as_str(), d.multiline),
            ("VIP", "10.0.0.1 dev eth0", false)
        );
        assert_eq!(
            parse_definition(&from_line("$E=")).map(|d| d.value),
            Some(String::new())
        );
        assert!(parse_definition(&from_line("$X =1")).is_none());
        assert!(parse_definition(&from_line("$1X=1")).is_none());
        assert!(parse_definition(&from_line("$X")).is_none());
        let m = parse_definition(&from_line("$M=a b \\")).expect("multiline");
        assert_eq!((m.value.as_str(), m.multiline), ("a b\n", true));
        let m = parse_definition(&from_line("$M=\\")).expect("multiline");
        assert_eq!((m.value.as_str(), m.multiline), ("", true));
    }

    #[test]
    fn substitution_is_recursive_and_leaves_unknown_names() {
        // keepalived.md L12
        let mut d = Defs::new(1);
        d.set("A", "1", false);
        d.set("B", "$A,${A}", false);
        assert_eq!(expand(&mut d, "x $B $C ${A}y $A/z"), "x 1,1 $C 1y $A/z");
        assert_eq!(expand(&mut d, "f($A,$A)"), "f(1,1)");
    }

    #[test]
    fn substituted_text_takes_the_dollar_column() {
        let mut d = Defs::new(1);
        d.set("V", "ab cd", false);
        let e = d.expand(from_line("k $V"), &CTX);
        let cols: Vec<u32> = e.text.iter().map(|c| c.col).collect();
        assert_eq!(cols, [1, 2, 3, 3, 3, 3, 3]);
    }

    #[test]
    fn builtins() {
        let mut d = Defs::new(7);
        assert_eq!(
            expand(&mut d, "${_PWD} ${_INSTANCE} ${_HASH}${_BANG} $_HASH"),
            "/etc/keepalived lb1 #! #"
        );
        for _ in 0..50 {
            let v: u64 = expand(&mut d, "${_RANDOM 5 7}").parse().expect("number");
            assert!((5..=7).contains(&v));
        }
        let e = d.expand(from_line("${_RANDOM x}"), &CTX);
        assert_eq!(to_string(&e.text), "${_RANDOM x}");
        assert_eq!(e.problems.len(), 1);
        assert_eq!(expand(&mut d, "${_RANDOM 9 3}"), "9");
        // PATH is set in any test environment; only check that it is substituted.
        assert!(!expand(&mut d, "${_ENV PATH}").contains("_ENV"));
        assert_eq!(d.expand(from_line("${_ENV}"), &CTX).problems.len(), 1);
        d.set("_HASH", "h", false);
        assert_eq!(expand(&mut d, "$_HASH"), "h");
    }

    #[test]
    fn multiline_values_expand_only_at_line_end() {
        // keepalived.md L13
        let mut d = Defs::new(1);
        d.set("M", "a\nb\nc", true);
        let e = d.expand(from_line("x $M"), &CTX);
        assert_eq!(to_string(&e.text), "x a");
        let more: Vec<String> = e.more_lines.iter().map(|t| to_string(t)).collect();
        assert_eq!(more, ["b", "c"]);
        assert_eq!(expand(&mut d, "$M y"), "$M y");
    }

    #[test]
    fn self_reference_is_cut_off() {
        let mut d = Defs::new(1);
        d.set("A", "$A $A", false);
        assert!(d.expand(from_line("$A"), &CTX).runaway);
    }
}
