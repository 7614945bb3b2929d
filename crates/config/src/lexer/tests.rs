//! Lexer tests by rule (keepalived.md §1.2), through the public entry points.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use super::*;
use crate::diag::Severity;

const MAIN: &str = "/nonexistent/etc/keepalived/keepalived.conf";

fn lex_with(text: &str, opts: &LexOptions) -> (Vec<Line>, Diagnostics, SourceMap) {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new(false);
    let lines = read_str(Path::new(MAIN), text, opts, &mut sources, &mut diags);
    (lines, diags, sources)
}

fn lex(text: &str) -> (Vec<Line>, Diagnostics) {
    let (l, d, _) = lex_with(text, &LexOptions::default());
    (l, d)
}

/// Lines as `a|b|c`, braces as themselves.
fn show(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l.kind {
            LineKind::Open => "{".to_string(),
            LineKind::Close => "}".to_string(),
            LineKind::Words => l
                .tokens
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join("|"),
        })
        .collect()
}

fn messages(d: &Diagnostics, severity: Severity) -> Vec<String> {
    d.iter()
        .filter(|x| x.severity == severity)
        .map(|x| x.message.clone())
        .collect()
}

fn lc(t: &Token) -> (u32, u32) {
    (t.span.line, t.span.col)
}

#[test]
fn physical_lines_and_crlf() {
    // keepalived.md L1
    let (l, d) = lex("a b\r\n\r\n  c\r\r\n");
    assert_eq!(show(&l), ["a|b", "c"]);
    assert_eq!(lc(&l[1].tokens[0]), (3, 3));
    assert!(d.is_empty());
}

#[test]
fn long_lines_are_read_but_warned_about() {
    let long = format!("x {}", "y".repeat(1100));
    let (l, d) = lex(&long);
    assert_eq!(l.len(), 1);
    assert_eq!(
        messages(&d, Severity::Warning),
        ["line longer than keepalived's 1024-byte limit: keepalived ignores it"]
    );
    let (_, d) = lex(&"z".repeat(1022));
    assert!(d.is_empty());
}

#[test]
fn nul_is_an_error_and_the_line_is_dropped() {
    let (l, d) = lex("a\nb\0c\nd");
    assert_eq!(show(&l), ["a", "d"]);
    assert_eq!(
        d.iter().next().and_then(|x| x.span).map(|s| s.line),
        Some(2)
    );
    assert!(d.has_errors());
}

#[test]
fn comments_and_escapes() {
    // keepalived.md L2
    let (l, d) = lex(
        "router_id \"my router\" # x\npriority 1 ! y\nkey a\\#b \\!c\nk ${_HASH}h ${_BANG}\n# all\n!",
    );
    assert_eq!(
        show(&l),
        ["router_id|my router", "priority|1", "key|a#b|!c", "k|#h|!"]
    );
    assert_eq!(
        l[0].tokens.iter().map(|t| t.quoted).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(l[0].raw, "router_id \"my router\"");
    assert!(d.is_empty());
}

#[test]
fn quoting_and_columns() {
    // keepalived.md L3, L4
    let (l, d) = lex("  k  a\"b c\"\t'x y'");
    assert_eq!(show(&l), ["k|a|b c|'x|y'"]);
    let cols: Vec<u32> = l[0].tokens.iter().map(|t| t.span.col).collect();
    assert_eq!(cols, [3, 6, 7, 13, 16]);
    assert_eq!(l[0].span.col, 3);
    assert!(d.is_empty());
}

#[test]
fn unmatched_quotes() {
    let (l, d) = lex("router_id \"abc");
    assert_eq!(show(&l), ["router_id"]);
    let errs: Vec<_> = d.iter().collect();
    assert_eq!(errs.len(), 1, "reported once: {errs:?}");
    assert_eq!(errs[0].span.map(|s| s.col), Some(11));
    // An escaped quote balances decomment's count but not the tokenizer's: only script
    // keywords, which re-split `raw`, may have it.
    let (l, d) = lex(r#"notify_master "/bin/echo \"hi""#);
    assert!(d.is_empty(), "{:?}", d.sorted());
    assert_eq!(l[0].raw, r#"notify_master "/bin/echo \"hi""#);
    let (_, d) = lex(r#"my_check_script "/bin/echo \"hi""#);
    assert!(d.is_empty());
    let (_, d) = lex(r#"router_id "a \"b""#);
    assert_eq!(d.len(), 1);
}

#[test]
fn braces_split_lines_with_original_columns() {
    // keepalived.md L6
    let (l, d) = lex("vrrp_instance VI { state BACKUP\n{ 10.0.0.1 }\n10.0.0.2 }}\nk \"{\" v");
    assert_eq!(
        show(&l),
        [
            "vrrp_instance|VI",
            "{",
            "state|BACKUP",
            "{",
            "10.0.0.1",
            "}",
            "10.0.0.2",
            "}",
            "}",
            "k|{|v"
        ]
    );
    assert_eq!(l[1].span, Span::new(FileId(0), 1, 18));
    assert_eq!(lc(&l[2].tokens[0]), (1, 20));
    assert_eq!(l[2].raw, "state BACKUP");
    assert_eq!(l[0].raw, "vrrp_instance VI");
    assert_eq!(lc(&l[4].tokens[0]), (2, 3));
    assert_eq!(l[5].span, Span::new(FileId(0), 2, 12));
    assert_eq!(l[8].span, Span::new(FileId(0), 3, 11));
    assert!(d.is_empty());
}

#[test]
fn conditionals_select_by_config_id() {
    // keepalived.md L10
    let text = "@lb1 priority 100\n@^lb1 priority 50\n@lb2 x\n@lb1\n$IF=@lb1\n$IF   y 1\n";
    let opts = LexOptions {
        config_id: Some("lb1".into()),
        ..Default::default()
    };
    let (l, _, _) = lex_with(text, &opts);
    assert_eq!(show(&l), ["priority|100", "y|1"]);
    assert_eq!(lc(&l[0].tokens[0]), (1, 6));
    let (l, _) = lex(text);
    assert_eq!(show(&l), ["priority|50"]);
}

#[test]
fn definitions_substitute_at_use_time() {
    // keepalived.md L11, L12
    let (l, d) =
        lex("$VIP=10.0.0.1\nvip $VIP ${VIP}/32 $UNDEF $VIP/x\n$VIP=10.0.0.2\nvip $VIP\n$E=\ne $E.");
    assert_eq!(
        show(&l),
        [
            "vip|10.0.0.1|10.0.0.1/32|$UNDEF|$VIP/x",
            "vip|10.0.0.2",
            "e|$E."
        ]
    );
    // A substituted token takes the column of its `$`.
    assert_eq!(lc(&l[0].tokens[1]), (2, 5));
    assert_eq!(lc(&l[0].tokens[2]), (2, 10));
    assert_eq!(l[0].raw, "vip 10.0.0.1 10.0.0.1/32 $UNDEF $VIP/x");
    assert!(d.is_empty());
    // A value with several words gives several tokens, all at the `$`.
    let (l, _) = lex("$IP=1.2.3.4 dev eth0\n  $IP");
    assert_eq!(show(&l), ["1.2.3.4|dev|eth0"]);
    assert!(l[0].tokens.iter().all(|t| lc(t) == (2, 3)));
    // A value may hold a brace.
    let (l, _) = lex("$OPEN=vrrp_instance X {\n$OPEN\n}");
    assert_eq!(show(&l), ["vrrp_instance|X", "{", "}"]);
}

#[test]
fn multiline_definitions() {
    // keepalived.md L13
    let text =
        "$ADDRS= \\\n  10.0.0.1 \\\n# comment\n  10.0.0.2\nvirtual_ipaddress {\n  $ADDRS\n}\n";
    let (l, d) = lex(text);
    assert_eq!(
        show(&l),
        ["virtual_ipaddress", "{", "10.0.0.1", "10.0.0.2", "}"]
    );
    assert_eq!(lc(&l[3].tokens[0]), (6, 3));
    assert!(d.is_empty());
    // An empty line ends it; a multiline value is not substituted mid-line.
    let (l, _) = lex("$M=a \\\nb \\\n\nx $M\n$M y");
    assert_eq!(show(&l), ["x|a", "b", "$M|y"]);
}

#[test]
fn builtin_definitions() {
    let opts = LexOptions {
        config_id: Some("lb1".into()),
        random_seed: Some(3),
        ..Default::default()
    };
    let (l, d, _) = lex_with(
        "d ${_PWD}\ni ${_INSTANCE}\nr ${_RANDOM 4 4}\nbad ${_RANDOM x}",
        &opts,
    );
    assert_eq!(
        show(&l),
        [
            "d|/nonexistent/etc/keepalived",
            "i|lb1",
            "r|4",
            "bad|$",
            "{",
            "_RANDOM|x",
            "}"
        ]
    );
    assert_eq!(
        d.iter().filter(|x| x.severity == Severity::Error).count(),
        1
    );
    let opts = LexOptions {
        instance: Some("inst".into()),
        ..opts
    };
    let (l, _, _) = lex_with("i ${_INSTANCE}", &opts);
    assert_eq!(show(&l), ["i|inst"]);
    let (l, _) = lex("i ${_INSTANCE}.");
    assert_eq!(show(&l), ["i|."]);
}

#[test]
fn self_referencing_definition_is_an_error_not_a_hang() {
    let (l, d) = lex("$A=$A $A\nx $A\ny");
    assert_eq!(show(&l), ["y"]);
    assert!(d.has_errors());
    let (l, d) = lex("$M=\\\n$M \\\nz\n$M");
    assert!(d.has_errors());
    assert!(l.len() < 100_000);
}

#[test]
fn seq_and_lst_repeat_the_rest_of_the_line() {
    // keepalived.md L14
    let (l, d) = lex("~SEQ(i, 1, 3) real_server 10.0.0.$i 80");
    assert_eq!(
        show(&l),
        [
            "real_server|10.0.0.1|80",
            "real_server|10.0.0.2|80",
            "real_server|10.0.0.3|80"
        ]
    );
    assert_eq!(lc(&l[1].tokens[1]), (1, 27));
    assert!(d.is_empty());
    let (l, _) = lex("~SEQ(a,2) ~SEQ(b, 2) x $a $b");
    assert_eq!(show(&l), ["x|1|1", "x|1|2", "x|2|1", "x|2|2"]);
    let (l, _) = lex("~LST({n, ip}, {a, 1}, {b, 2}) vs $n $ip");
    assert_eq!(show(&l), ["vs|a|1", "vs|b|2"]);
    let (l, _) = lex("$N=2\n~SEQx(i, 9, $N) v $i\n~SEQx(i,10,11) w $i { }");
    assert_eq!(
        show(&l),
        [
            "v|9", "v|8", "v|7", "v|6", "v|5", "v|4", "v|3", "v|2", "w|a", "{", "}", "w|b", "{",
            "}"
        ]
    );
    let (l, d) = lex("x\n~SEQ(i, 1, 0, 5) y");
    assert_eq!(show(&l), ["x"]);
    assert_eq!(
        d.iter().next().and_then(|x| x.span).map(|s| s.line),
        Some(2)
    );
    let (_, d) = lex("  ~LST(v a) y");
    assert_eq!(
        d.iter().next().and_then(|x| x.span).map(|s| s.col),
        Some(10)
    );
}

#[test]
fn generated_lines_are_capped() {
    let opts = LexOptions {
        max_generated_lines: Some(1000),
        ..Default::default()
    };
    let (l, d, _) = lex_with("~SEQ(a,100) ~SEQ(b,100) ~SEQ(c,100) x\nafter", &opts);
    assert!(l.len() <= 1001);
    assert_eq!(show(&l).last().map(String::as_str), Some("after"));
    assert_eq!(messages(&d, Severity::Error).len(), 1);
}

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            if name.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::write(&p, body).unwrap();
            }
        }
        Tree { dir }
    }

    fn read(&self, main: &str) -> (Vec<Line>, Diagnostics, SourceMap) {
        let mut sources = SourceMap::new();
        let mut diags = Diagnostics::new(false);
        let lines = read_file(
            &self.dir.path().join(main),
            &LexOptions::default(),
            &mut sources,
            &mut diags,
        );
        (lines, diags, sources)
    }

    fn file_of(&self, sources: &SourceMap, t: &Token) -> String {
        let p = sources.path(t.span.file);
        p.strip_prefix(self.dir.path())
            .unwrap_or(p)
            .display()
            .to_string()
    }
}

#[test]
fn include_glob_sorted_and_spans_name_the_file() {
    // keepalived.md L15
    let t = Tree::new(&[
        ("main.conf", "first\ninclude conf.d/*.conf\nlast"),
        ("conf.d/b.conf", "\n  bee 2"),
        ("conf.d/a.conf", "ay 1"),
        ("conf.d/c.txt", "no"),
        ("conf.d/sub.conf/", ""),
    ]);
    let (l, d, s) = t.read("main.conf");
    assert_eq!(show(&l), ["first", "ay|1", "bee|2", "last"]);
    assert_eq!(t.file_of(&s, &l[2].tokens[0]), "conf.d/b.conf");
    assert_eq!(lc(&l[2].tokens[0]), (2, 3));
    assert_eq!(t.file_of(&s, &l[3].tokens[0]), "main.conf");
    assert!(d.is_empty(), "{:?}", d.sorted());
}

#[test]
fn include_brace_expansion_and_variants() {
    let t = Tree::new(&[
        ("main.conf", "include {x,y}.conf\ninclude \"{y,x}.c*\""),
        ("x.conf", "x"),
        ("y.conf", "y"),
    ]);
    let (l, d, _) = t.read("main.conf");
    assert_eq!(show(&l), ["x", "y", "y", "x"]);
    assert!(d.is_empty());
}

#[test]
fn include_is_relative_to_the_including_file() {
    let t = Tree::new(&[
        ("main.conf", "include sub/inner.conf"),
        ("sub/inner.conf", "inner\ninclude leaf.conf\npwd ${_PWD}"),
        ("sub/leaf.conf", "leaf"),
        ("leaf.conf", "wrong"),
    ]);
    let (l, d, _) = t.read("main.conf");
    let pwd = t.dir.path().join("sub").display().to_string();
    assert_eq!(
        show(&l),
        ["inner".to_string(), "leaf".into(), format!("pwd|{pwd}")]
    );
    assert!(d.is_empty());
}

#[test]
fn include_inside_a_block_is_textual() {
    let t = Tree::new(&[
        ("main.conf", "vrrp_instance V {\n  include body.conf\n}"),
        ("body.conf", "state BACKUP\npriority 50"),
    ]);
    let (l, d, _) = t.read("main.conf");
    let mut diags = Diagnostics::new(false);
    let nodes = crate::tree::build(l, &mut diags);
    assert!(d.is_empty() && diags.is_empty());
    let kids: Vec<&str> = nodes[0].children().iter().map(|n| n.word()).collect();
    assert_eq!(kids, ["state", "priority"]);
}

#[test]
fn include_cycles_are_reported_not_followed() {
    let t = Tree::new(&[
        ("a.conf", "a\ninclude b.conf"),
        ("b.conf", "b\ninclude a.conf"),
        ("self.conf", "s\ninclude self.conf"),
    ]);
    let (l, d, _) = t.read("a.conf");
    assert_eq!(show(&l), ["a", "b"]);
    let errs = messages(&d, Severity::Error);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("include cycle: ") && errs[0].contains("b.conf ->"),
        "{errs:?}"
    );
    let (l, d, _) = t.read("self.conf");
    assert_eq!(show(&l), ["s"]);
    assert!(d.has_errors());
}

#[test]
fn include_depth_is_capped() {
    let files: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("f{i}.conf"),
                format!("l{i}\ninclude f{}.conf", i + 1),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let t = Tree::new(&refs);
    let (l, d, _) = t.read("f0.conf");
    assert_eq!(l.len(), MAX_INCLUDE_DEPTH);
    assert!(messages(&d, Severity::Error)[0].contains("nested more than"));
}

#[test]
fn missing_includes() {
    let t = Tree::new(&[
        (
            "main.conf",
            "include nothere.conf\ninclude *.nomatch\nincludem *.nomatch\n  include dir/",
        ),
        ("dir/", ""),
    ]);
    let (l, d, _) = t.read("main.conf");
    assert!(l.is_empty());
    let errs = messages(&d, Severity::Error);
    let warns = messages(&d, Severity::Warning);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("included file ") && errs[0].ends_with("nothere.conf does not exist")
    );
    assert_eq!(errs[1], "include '*.nomatch' matches no file");
    assert_eq!(warns.len(), 3, "{warns:?}");
    assert_eq!(warns[0], "include '*.nomatch' matches no file");
    assert!(warns[1].ends_with("is not a regular file: not included"));
    let first = d.iter().next().and_then(|x| x.span).unwrap();
    assert_eq!((first.line, first.col), (1, 1));
    let last = d.sorted().last().and_then(|x| x.span).unwrap();
    assert_eq!((last.line, last.col), (4, 3));
}

#[cfg(unix)]
#[test]
fn executable_files_are_not_included() {
    use std::os::unix::fs::PermissionsExt;
    let t = Tree::new(&[("main.conf", "include x.sh"), ("x.sh", "x")]);
    fs::set_permissions(t.dir.path().join("x.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let (l, d, _) = t.read("main.conf");
    assert!(l.is_empty());
    assert!(messages(&d, Severity::Warning)[0].contains("is executable"));
}

#[test]
fn read_str_includes_resolve_next_to_its_name() {
    let t = Tree::new(&[("part.conf", "part")]);
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new(false);
    let name = t.dir.path().join("virtual.conf");
    let lines = read_str(
        &name,
        "include part.conf",
        &LexOptions::default(),
        &mut sources,
        &mut diags,
    );
    assert_eq!(show(&lines), ["part"]);
    assert_eq!(sources.files().count(), 2);
}

#[test]
fn include_from_seq_and_definitions() {
    let t = Tree::new(&[
        ("main.conf", "$D=parts\n~SEQ(i, 2) include ${D}/p${i}.conf"),
        ("parts/p1.conf", "one"),
        ("parts/p2.conf", "two"),
    ]);
    let (l, d, _) = t.read("main.conf");
    assert_eq!(show(&l), ["one", "two"]);
    assert!(d.is_empty());
}

#[test]
fn main_file_missing_is_an_error_without_position() {
    let t = Tree::new(&[]);
    let (l, d, _) = t.read("none.conf");
    assert!(l.is_empty());
    assert!(d.iter().all(|x| x.span.is_none()) && d.has_errors());
}

#[test]
fn self_expanding_multiline_definition_stops_early() {
    // Fuzz regression (timeout): `$M`'s value holds `$M` on a line of its own, so every
    // expansion brings another until the nesting cap, not the generated-line cap.
    let (l, d) = lex("$M= \\\n a \\\nk $M\n b\nx $M\n");
    assert!(l.len() < 200, "{} lines", l.len());
    assert!(messages(&d, Severity::Error)[0].contains("nested more than"));
}

#[test]
fn pwd_of_a_bare_file_name_is_the_working_directory() {
    let mut sources = SourceMap::new();
    let mut diags = Diagnostics::new(false);
    let lines = read_str(
        Path::new("t.conf"),
        "d ${_PWD}",
        &LexOptions::default(),
        &mut sources,
        &mut diags,
    );
    let cwd = std::env::current_dir().unwrap().display().to_string();
    assert_eq!(show(&lines), [format!("d|{cwd}")]);
}

#[test]
fn self_growing_definition_repeated_by_seq_is_cheap() {
    // Proptest regression (an 11-minute load): every repetition re-ran a runaway expansion.
    let start = std::time::Instant::now();
    let (l, d) = lex("$A=$A $A x\n~SEQ(i, 100000) $A\nz");
    // Once the substitution budget is spent, `$A` stays as written, with one error for it.
    assert_eq!(show(&l).last().map(String::as_str), Some("z"));
    let exhausted = messages(&d, Severity::Error)
        .iter()
        .filter(|m| m.contains("too much work"))
        .count();
    assert_eq!(exhausted, 1);
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}
