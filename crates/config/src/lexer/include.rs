//! `include GLOB` and its checking variants (keepalived.md L15): which files a pattern names.

use std::path::{Path, PathBuf};

use crate::diag::Severity;

/// Alternatives one pattern may expand to before it is refused.
const MAX_BRACE_ALTERNATIVES: usize = 1024;

/// The checks of `includer`/`includem`/`includew`/`includeb`/`includea`; plain `include` has
/// none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checks {
    /// Every match must be a readable regular file.
    pub readable: bool,
    /// A pattern must match something.
    pub matched: bool,
    /// A wildcard pattern must match something.
    pub wildcard: bool,
    /// Every `{…}` alternative must match something.
    pub braces: bool,
}

/// An include line: its checks and pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Include {
    pub checks: Checks,
    pub pattern: String,
}

/// Recognises `include PATTERN` and the `include[rmwba] PATTERN` variants; the pattern is the
/// rest of the line, as keepalived takes it. Surrounding double quotes are removed, where
/// keepalived would look for a file name with quotes in it.
pub(crate) fn parse(line: &str) -> Option<Include> {
    let rest = line.strip_prefix("include")?;
    let mut chars = rest.chars();
    let first = chars.next()?;
    let (checks, pattern) = if first.is_whitespace() {
        (Checks::default(), chars.as_str())
    } else {
        let second = chars.next()?;
        if !second.is_whitespace() {
            return None;
        }
        let all = Checks {
            readable: true,
            matched: true,
            wildcard: true,
            braces: true,
        };
        let checks = match first {
            'r' => Checks {
                readable: true,
                ..Checks::default()
            },
            'm' => Checks {
                readable: true,
                matched: true,
                ..Checks::default()
            },
            'w' => Checks {
                braces: false,
                ..all
            },
            'b' => Checks {
                readable: true,
                braces: true,
                ..Checks::default()
            },
            'a' => all,
            _ => return None,
        };
        (checks, chars.as_str())
    };
    let pattern = pattern.trim_matches([' ', '\t']);
    let pattern = pattern
        .strip_prefix('"')
        .and_then(|p| p.strip_suffix('"'))
        .unwrap_or(pattern);
    Some(Include {
        checks,
        pattern: pattern.to_string(),
    })
}

/// Expands `{a,b}` alternatives, nested ones too, in order (glob's `GLOB_BRACE`). A `{`
/// without its `}` is literal; a backslash protects the next character. `None` when the
/// pattern expands to more than [`MAX_BRACE_ALTERNATIVES`].
pub(crate) fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    // Depth-first with an explicit stack, alternatives pushed in reverse so they come out in
    // order; an explicit stack cannot overflow on a pattern of many groups.
    let mut stack = vec![pattern.to_string()];
    let mut steps = 0usize;
    while let Some(p) = stack.pop() {
        steps += 1;
        if steps > MAX_BRACE_ALTERNATIVES * 8 || out.len() > MAX_BRACE_ALTERNATIVES {
            return None;
        }
        match brace_group(&p) {
            None => out.push(p),
            Some((open, close, commas)) => {
                let (prefix, inner, suffix) = (&p[..open], &p[open + 1..close], &p[close + 1..]);
                let mut alts = Vec::with_capacity(commas.len() + 1);
                let mut from = 0;
                for c in commas {
                    let at = c - open - 1;
                    alts.push(inner.get(from..at).unwrap_or(""));
                    from = at + 1;
                }
                alts.push(inner.get(from..).unwrap_or(""));
                for alt in alts.iter().rev() {
                    stack.push(format!("{prefix}{alt}{suffix}"));
                }
            }
        }
    }
    (out.len() <= MAX_BRACE_ALTERNATIVES).then_some(out)
}

/// The first `{` that has a matching `}`: byte offsets of both and of the top-level commas
/// between them.
fn brace_group(p: &str) -> Option<(usize, usize, Vec<usize>)> {
    let bytes = p.as_bytes();
    let mut start = 0;
    loop {
        let open = start + find_unescaped(&bytes[start..], b'{')?;
        let mut depth = 0usize;
        let mut commas = Vec::new();
        let mut i = open + 1;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'\\' => i += 1,
                b'{' => depth += 1,
                b'}' if depth == 0 => return Some((open, i, commas)),
                b'}' => depth -= 1,
                b',' if depth == 0 => commas.push(i),
                _ => {}
            }
            i += 1;
        }
        // Unclosed: this `{` is literal; a later one may still be a group.
        start = open + 1;
    }
}

fn find_unescaped(bytes: &[u8], want: u8) -> Option<usize> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == want {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The files an include names, and what was wrong.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub files: Vec<PathBuf>,
    pub problems: Vec<(Severity, String)>,
}

/// Resolves `inc` relative to `dir`, the including file's directory (keepalived `chdir`s
/// there). Matches of each alternative are sorted; directories and other non-files are
/// skipped.
pub(crate) fn resolve(inc: &Include, dir: &Path) -> Resolved {
    let mut r = Resolved::default();
    let checks = inc.checks;
    let strict = |on: bool| {
        if on {
            Severity::Error
        } else {
            Severity::Warning
        }
    };
    let Some(alternatives) = expand_braces(&inc.pattern) else {
        r.problems.push((
            Severity::Error,
            format!(
                "include '{}' expands to more than {MAX_BRACE_ALTERNATIVES} patterns",
                inc.pattern
            ),
        ));
        return r;
    };
    let mut reported_missing = false;
    for alt in &alternatives {
        let wild = alt.contains(['*', '?', '[']);
        let before = r.files.len();
        if wild {
            let pattern = if Path::new(alt).is_absolute() {
                alt.clone()
            } else {
                format!("{}/{alt}", glob::Pattern::escape(&dir.to_string_lossy()))
            };
            match glob::glob(&pattern) {
                Err(e) => {
                    r.problems.push((
                        Severity::Error,
                        format!("include pattern '{alt}' is not valid: {}", e.msg),
                    ));
                    continue;
                }
                Ok(paths) => {
                    let mut found = Vec::new();
                    for p in paths {
                        match p {
                            Ok(p) => found.push(p),
                            Err(e) if checks.readable => r.problems.push((
                                Severity::Error,
                                format!(
                                    "include '{}': cannot read {}",
                                    inc.pattern,
                                    e.path().display()
                                ),
                            )),
                            Err(_) => {}
                        }
                    }
                    found.sort();
                    for p in found {
                        add_file(&mut r, p, checks, false);
                    }
                }
            }
        } else {
            let p = dir.join(alt);
            match std::fs::metadata(&p) {
                Ok(_) => add_file(&mut r, p, checks, true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    reported_missing = true;
                    r.problems.push((
                        Severity::Error,
                        format!("included file {} does not exist", p.display()),
                    ));
                }
                Err(e) => r.problems.push((
                    Severity::Error,
                    format!("cannot access included file {}: {e}", p.display()),
                )),
            }
        }
        if wild && r.files.len() == before && alternatives.len() > 1 && checks.braces {
            r.problems.push((
                Severity::Error,
                format!(
                    "include '{}': alternative '{alt}' matches no file",
                    inc.pattern
                ),
            ));
        }
    }
    if r.files.is_empty() && !reported_missing {
        // keepalived says nothing here; a pattern that silently matches nothing is a common
        // way to lose half a configuration, so flotilla warns at least.
        r.problems.push((
            strict(checks.matched || checks.wildcard),
            format!("include '{}' matches no file", inc.pattern),
        ));
    }
    r
}

fn add_file(r: &mut Resolved, p: PathBuf, checks: Checks, named: bool) {
    let meta = match std::fs::metadata(&p) {
        Ok(m) => m,
        Err(e) => {
            r.problems.push((
                Severity::Error,
                format!("cannot access included file {}: {e}", p.display()),
            ));
            return;
        }
    };
    let severity = if checks.readable {
        Severity::Error
    } else {
        Severity::Warning
    };
    if !meta.is_file() {
        // A wildcard that also matches a sub-directory is normal: skip it quietly.
        if named || checks.readable {
            r.problems.push((
                severity,
                format!("{} is not a regular file: not included", p.display()),
            ));
        }
        return;
    }
    if is_executable(&meta) {
        r.problems.push((
            severity,
            format!(
                "{} is executable: keepalived does not include executable files",
                p.display()
            ),
        ));
        return;
    }
    r.files.push(p);
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_keywords() {
        let i = parse("include  /etc/k/*.conf").expect("include");
        assert_eq!(
            (i.pattern.as_str(), i.checks),
            ("/etc/k/*.conf", Checks::default())
        );
        assert!(parse("includer x").expect("r").checks.readable);
        assert!(parse("includea x").expect("a").checks.braces);
        assert_eq!(
            parse(r#"include "a b.conf""#).map(|i| i.pattern),
            Some("a b.conf".into())
        );
        assert!(parse("include").is_none());
        assert!(parse("includex y").is_none());
        assert!(parse("included y").is_none());
        assert!(parse("include_check read").is_none());
    }

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(
            expand_braces("a{b,c}d"),
            Some(vec!["abd".into(), "acd".into()])
        );
        assert_eq!(
            expand_braces("{x,y{1,2}}.conf"),
            Some(vec!["x.conf".into(), "y1.conf".into(), "y2.conf".into()])
        );
        assert_eq!(
            expand_braces("{a,b}{1,2}"),
            Some(vec!["a1".into(), "a2".into(), "b1".into(), "b2".into()])
        );
        assert_eq!(expand_braces("a{b"), Some(vec!["a{b".into()]));
        assert_eq!(
            expand_braces("a{b{c,d}"),
            Some(vec!["a{bc".into(), "a{bd".into()])
        );
        assert_eq!(expand_braces(r"a\{b,c}"), Some(vec![r"a\{b,c}".into()]));
        assert_eq!(expand_braces("{,x}"), Some(vec![String::new(), "x".into()]));
        assert_eq!(expand_braces(&"{a,b}".repeat(20)), None);
    }
}
