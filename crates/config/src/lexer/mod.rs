//! Files → logical lines (keepalived.md §1.1–1.2): physical lines are decommented, `@ID`
//! conditionals selected, `$DEFINITIONS` recorded and substituted, `~SEQ`/`~LST` expanded,
//! `include`s spliced in and braces split off, in keepalived's order. Every token keeps the
//! file, line and column where it was written.

mod defs;
mod include;
mod seq;
mod text;

use std::path::{Path, PathBuf};

use crate::ast::{Line, LineKind, Token};
use crate::diag::{Diagnostics, Severity};
use crate::source::{FileId, SourceMap, Span};

use defs::{Context, Defs};
use seq::{LstRun, SeqRun};
use text::{Ch, Text};

/// What the lexer needs to know beyond the text.
#[derive(Debug, Clone, Default)]
pub struct LexOptions {
    /// Selects `@ID` conditional lines (`--config-id`); `None` matches no id.
    pub config_id: Option<String>,
    /// `${_INSTANCE}`; keepalived gives it the config-id, so that is the fallback, then empty.
    pub instance: Option<String>,
    /// Seeds `${_RANDOM}` (keepalived's `random_seed`); the time when unset.
    pub random_seed: Option<u64>,
    /// Cap on the lines `~SEQ`, `~LST` and multiline definitions may generate in one load;
    /// `None` is 100,000.
    pub max_generated_lines: Option<usize>,
}

/// keepalived reads lines into a 1024-byte buffer, newline and terminator included
/// (keepalived.md L1).
const KEEPALIVED_MAX_LINE: usize = 1022;
/// Lines `~SEQ`, `~LST` and multiline definitions may generate in one load. Far above any
/// real configuration, low enough that a runaway nest of `~SEQ`s is refused in about a
/// second rather than eating memory.
const MAX_GENERATED_LINES: usize = 100_000;
/// Nested includes before the chain is taken for a runaway.
const MAX_INCLUDE_DEPTH: usize = 32;
/// Multiline definitions expanded inside one another.
const MAX_DEFINITION_NESTING: u32 = 32;

/// Keywords whose value is a script command line: they re-split [`Line::raw`] with
/// shell-like quoting, so an unmatched `"` is theirs to judge (keepalived's
/// `install_keyword_quoted`, L4/L5).
const SCRIPT_KEYWORDS: &[&str] = &[
    "script",
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "misc_path",
    "quorum_up",
    "quorum_down",
    "notify_up",
    "notify_down",
    "startup_script",
    "shutdown_script",
    "notify_fifo_script",
    "vrrp_notify_fifo_script",
    "lvs_notify_fifo_script",
];

fn is_script_keyword(word: &str) -> bool {
    SCRIPT_KEYWORDS.contains(&word) || word.ends_with("_script")
}

/// Reads `path` and everything it includes into logical lines.
pub fn read_file(
    path: &Path,
    opts: &LexOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Vec<Line> {
    let file = sources.add(path);
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut lx = Lexer::new(opts, sources, diags);
            lx.chain.push(identity(path));
            lx.lex_file(file, path, &bytes);
            lx.out
        }
        Err(e) => {
            diags.error_nowhere(format!("cannot read {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Lexes in-memory text registered as `name` (tests, fuzzing); includes are resolved
/// relative to the directory of `name`.
pub fn read_str(
    name: &Path,
    text: &str,
    opts: &LexOptions,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Vec<Line> {
    let file = sources.add(name);
    let mut lx = Lexer::new(opts, sources, diags);
    lx.chain.push(identity(name));
    lx.lex_file(file, name, text.as_bytes());
    lx.out
}

/// What identifies a file for cycle detection: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The file being read.
#[derive(Debug, Clone)]
struct FileCtx {
    /// Base of relative includes.
    dir: PathBuf,
    /// `${_PWD}`: `dir`, absolute.
    pwd: String,
}

/// Where a logical line came from: its file and physical line.
#[derive(Debug, Clone, Copy)]
struct Loc {
    file: FileId,
    line: u32,
}

impl Loc {
    fn at(self, col: u32) -> Span {
        Span::new(self.file, self.line, col)
    }
}

/// Pending work for one physical line. A stack, so that brace residue, the lines of a
/// multiline definition and each `~SEQ` repetition are handled depth-first, in keepalived's
/// order, without recursion.
enum Work {
    /// The part of a line from `start`; `substituted` says definitions were already
    /// replaced.
    Line(Piece),
    /// A `~SEQ`/`~LST` and the `nest` of its line.
    Seq(SeqRun, u32),
    Lst(LstRun, u32),
}

/// The part of a line from `start`; `substituted` says definitions were already replaced.
struct Piece {
    text: Text,
    start: usize,
    substituted: bool,
    /// Multiline definitions whose expansion this line is in: one that (indirectly) uses
    /// itself would otherwise expand until the generated-line cap.
    nest: u32,
}

impl Piece {
    fn work(text: Text, nest: u32) -> Work {
        Work::Line(Piece {
            text,
            start: 0,
            substituted: false,
            nest,
        })
    }
}

struct Lexer<'a> {
    opts: &'a LexOptions,
    sources: &'a mut SourceMap,
    diags: &'a mut Diagnostics,
    defs: Defs,
    out: Vec<Line>,
    /// Identities of the files being read, outermost first.
    chain: Vec<PathBuf>,
    /// The multiline definition collecting continuation lines (L13).
    open_definition: Option<String>,
    generated: usize,
    generated_limit_reported: bool,
    /// The current physical line already has its unclosed quote reported.
    quote_reported: bool,
}

impl<'a> Lexer<'a> {
    fn new(opts: &'a LexOptions, sources: &'a mut SourceMap, diags: &'a mut Diagnostics) -> Self {
        let seed = opts.random_seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        Lexer {
            opts,
            sources,
            diags,
            defs: Defs::new(seed),
            out: Vec::new(),
            chain: Vec::new(),
            open_definition: None,
            generated: 0,
            generated_limit_reported: false,
            quote_reported: false,
        }
    }

    fn lex_file(&mut self, id: FileId, path: &Path, bytes: &[u8]) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let abs = if dir.is_absolute() {
            dir.clone()
        } else {
            // Without `.` components, `t.conf` gives the working directory itself.
            let rel: PathBuf = dir
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            match std::env::current_dir() {
                Ok(cwd) if rel.as_os_str().is_empty() => cwd,
                Ok(cwd) => cwd.join(rel),
                Err(_) => dir.clone(),
            }
        };
        let ctx = FileCtx {
            pwd: abs.to_string_lossy().into_owned(),
            dir,
        };
        for (n, physical) in bytes.split(|&b| b == b'\n').enumerate() {
            let loc = Loc {
                file: id,
                line: u32::try_from(n + 1).unwrap_or(u32::MAX),
            };
            self.physical_line(&ctx, loc, physical);
        }
        // A multiline definition ends with its file.
        self.open_definition = None;
    }

    fn physical_line(&mut self, ctx: &FileCtx, loc: Loc, physical: &[u8]) {
        let mut end = physical.len();
        while end > 0 && physical[end - 1] == b'\r' {
            end -= 1;
        }
        if physical.len() > KEEPALIVED_MAX_LINE {
            self.diags.warning(
                loc.at(1),
                "line longer than keepalived's 1024-byte limit: keepalived ignores it",
            );
        }
        let physical = &physical[..end];
        if physical.contains(&0) {
            // keepalived.md L1: keepalived drops the line.
            self.diags.error(
                loc.at(1),
                "line contains a NUL character; keepalived ignores the line, so it is not read",
            );
            return;
        }
        if physical.is_empty() {
            // Only a truly empty line ends a multiline definition (comment lines do not).
            self.open_definition = None;
            return;
        }
        let line = String::from_utf8_lossy(physical);
        if matches!(line, std::borrow::Cow::Owned(_)) {
            self.diags.warning(
                loc.at(1),
                "line is not valid UTF-8; invalid bytes are read as U+FFFD",
            );
        }
        let d = text::decomment(&text::from_line(&line));
        self.quote_reported = d.unterminated_quote.is_some();
        if let Some(col) = d.unterminated_quote {
            self.diags
                .error(loc.at(col), "missing closing '\"' for this quote");
        }
        if d.text.is_empty() {
            return;
        }
        if let Some(name) = self.open_definition.clone() {
            // keepalived.md L13: a continuation line of a multiline definition.
            let s = text::to_string(&d.text);
            match s.strip_suffix('\\') {
                Some(part) => self
                    .defs
                    .append(&name, part.trim_end_matches(text::is_blank), true),
                None => {
                    self.defs.append(&name, &s, false);
                    self.open_definition = None;
                }
            }
            return;
        }
        self.run(ctx, loc, d.text);
    }

    fn run(&mut self, ctx: &FileCtx, loc: Loc, first: Text) {
        let mut stack = vec![Piece::work(first, 0)];
        while let Some(work) = stack.pop() {
            match work {
                Work::Line(piece) => self.logical(ctx, loc, piece, &mut stack),
                Work::Seq(run, nest) => {
                    if !self.may_generate(loc, run.text.first()) {
                        continue;
                    }
                    self.defs.set(&run.var, &run.value(), false);
                    let text = run.text.clone();
                    if let Some(next) = run.advance() {
                        stack.push(Work::Seq(next, nest));
                    }
                    stack.push(Piece::work(text, nest));
                }
                Work::Lst(run, nest) => {
                    if !self.may_generate(loc, run.text.first()) {
                        continue;
                    }
                    for (var, value) in run.bindings() {
                        self.defs.set(var, value, false);
                    }
                    let text = run.text.clone();
                    if let Some(next) = run.advance() {
                        stack.push(Work::Lst(next, nest));
                    }
                    stack.push(Piece::work(text, nest));
                }
            }
        }
    }

    fn instance(&self) -> &'a str {
        let opts: &'a LexOptions = self.opts;
        opts.instance
            .as_deref()
            .or(opts.config_id.as_deref())
            .unwrap_or("")
    }

    /// Counts a generated line; false once the load has generated too many.
    fn may_generate(&mut self, loc: Loc, at: Option<&Ch>) -> bool {
        self.generated += 1;
        let limit = self.opts.max_generated_lines.unwrap_or(MAX_GENERATED_LINES);
        if self.generated <= limit {
            return true;
        }
        if !self.generated_limit_reported {
            self.generated_limit_reported = true;
            self.diags.error(
                loc.at(at.map_or(1, |c| c.col)),
                format!(
                    "~SEQ/~LST/multiline definitions generate more than {limit} lines; the rest are dropped"
                ),
            );
        }
        false
    }

    /// One logical line through keepalived's `read_line` steps (keepalived.md §1.1): the
    /// part of `text` from `start`. Brace residue is the same `text` with a later `start`,
    /// so a line of many braces is not copied over and over.
    fn logical(&mut self, ctx: &FileCtx, loc: Loc, piece: Piece, stack: &mut Vec<Work>) {
        let Piece {
            text,
            start,
            substituted,
            nest,
        } = piece;
        let (mut s, e) = text::trim_range(&text, start);
        if s == e {
            return;
        }
        // keepalived.md L10, also when a definition supplied the prefix.
        match self.conditional(&text[s..e]) {
            None => return,
            Some(skip) => s = text::trim_range(&text[..e], s + skip).0,
        }
        let t = &text[s..e];
        if t.is_empty() {
            return;
        }
        if t[0].c == '$'
            && let Some(def) = defs::parse_definition(t)
        {
            // keepalived.md L11
            self.defs.set(&def.name, &def.value, def.multiline);
            if def.multiline {
                self.open_definition = Some(def.name);
            }
            return;
        }
        if text::starts_with(t, "~SEQ") || text::starts_with(t, "~LST") {
            self.sequence(ctx, loc, t, nest, stack);
            return;
        }
        // keepalived leaves a line starting with `~` alone.
        if !substituted && t[0].c != '~' && t.iter().any(|c| c.c == '$') {
            let ctx = Context {
                pwd: &ctx.pwd,
                instance: self.instance(),
            };
            let e = self.defs.expand(t.to_vec(), &ctx);
            for (col, msg) in &e.problems {
                self.diags.error(loc.at(*col), msg.clone());
            }
            if e.changed || e.runaway {
                self.substituted(loc, e, nest, stack);
                return;
            }
        }
        if text::starts_with(t, "include")
            && let Some(inc) = include::parse(&text::to_string(t))
        {
            // keepalived.md L15
            self.include(ctx, loc.at(t[0].col), &inc);
            return;
        }
        let piece = Piece {
            text,
            start: s,
            substituted,
            nest,
        };
        self.split_braces(loc, piece, e, stack);
    }

    /// Queues a line whose definitions were substituted, and the lines a multiline
    /// definition added after it. It goes round again, so that an `@ID` or `~SEQ` brought in
    /// by a definition takes effect.
    fn substituted(&mut self, loc: Loc, e: defs::Expanded, nest: u32, stack: &mut Vec<Work>) {
        let first_col = e.text.first().map_or(1, |c| c.col);
        if e.exhausted {
            self.diags.error(
                loc.at(first_col),
                "substituting definitions has done too much work in this configuration (a definition that grows itself?); no further substitution is done",
            );
            return;
        }
        if e.runaway {
            self.diags.error(
                loc.at(first_col),
                "substituting definitions here never ends (a definition that uses itself?); line ignored",
            );
            return;
        }
        let inner = if e.more_lines.is_empty() {
            nest
        } else {
            nest + 1
        };
        if inner > MAX_DEFINITION_NESTING {
            self.diags.error(
                loc.at(first_col),
                format!(
                    "multiline definitions nested more than {MAX_DEFINITION_NESTING} deep (a definition that uses itself?); line ignored"
                ),
            );
            return;
        }
        if e.text.iter().map(|c| c.c.len_utf8()).sum::<usize>() > KEEPALIVED_MAX_LINE {
            self.diags.warning(
                loc.at(first_col),
                "line longer than keepalived's 1024-byte limit after substituting definitions: keepalived does not substitute it",
            );
        }
        for more in e.more_lines.into_iter().rev() {
            if self.may_generate(loc, more.first()) {
                stack.push(Piece::work(more, inner));
            }
        }
        stack.push(Work::Line(Piece {
            text: e.text,
            start: 0,
            substituted: true,
            nest: inner,
        }));
    }

    /// Length of an `@ID `/`@^ID ` prefix (0 without one) when the line is selected, `None`
    /// when it is not.
    fn conditional(&self, t: &[Ch]) -> Option<usize> {
        if t.first().is_none_or(|c| c.c != '@') {
            return Some(0);
        }
        let negate = t.get(1).is_some_and(|c| c.c == '^');
        let start = if negate { 2 } else { 1 };
        // Nothing after the id: the line is dropped.
        let blank = start + t.get(start..)?.iter().position(|c| text::is_blank(c.c))?;
        let id = text::to_string(&t[start..blank]);
        let matches = self.opts.config_id.as_deref() == Some(id.as_str());
        (matches != negate).then_some(blank)
    }

    fn sequence(&mut self, ctx: &FileCtx, loc: Loc, t: &[Ch], nest: u32, stack: &mut Vec<Work>) {
        let col0 = t.first().map_or(1, |c| c.col);
        if text::starts_with(t, "~SEQ") {
            let head = match seq::parse_seq_head(t) {
                Ok(h) => h,
                Err(e) => {
                    self.diags.error(loc.at(e.col), e.message);
                    return;
                }
            };
            // keepalived.md L14: the numbers may be definitions.
            let ctx = Context {
                pwd: &ctx.pwd,
                instance: self.instance(),
            };
            let params = self.defs.expand(head.params.clone(), &ctx).text;
            match seq::seq_run(head, &text::to_string(&params)) {
                Ok(run) => stack.push(Work::Seq(run, nest)),
                Err(msg) => self.diags.error(loc.at(col0), msg),
            }
        } else {
            match seq::parse_lst(t) {
                Ok(run) => stack.push(Work::Lst(run, nest)),
                Err(e) => self.diags.error(loc.at(e.col), e.message),
            }
        }
    }

    /// keepalived.md L6: the first brace outside quotes ends the line; the brace is a line of
    /// its own and the rest goes round again.
    fn split_braces(&mut self, loc: Loc, piece: Piece, e: usize, stack: &mut Vec<Work>) {
        let s = piece.start;
        let Some(at) = text::find_brace(&piece.text[s..e]) else {
            self.emit_words(loc, &piece.text[s..e]);
            return;
        };
        let b = s + at;
        if b > s {
            self.emit_words(loc, &piece.text[s..b]);
            stack.push(Work::Line(Piece { start: b, ..piece }));
            return;
        }
        let brace = piece.text[b];
        self.out.push(Line {
            kind: if brace.c == '{' {
                LineKind::Open
            } else {
                LineKind::Close
            },
            tokens: Vec::new(),
            raw: brace.c.to_string(),
            span: loc.at(brace.col),
        });
        if b + 1 < e {
            stack.push(Work::Line(Piece {
                start: b + 1,
                ..piece
            }));
        }
    }

    fn emit_words(&mut self, loc: Loc, t: &[Ch]) {
        let t = text::trim(t);
        let (words, unmatched) = text::tokenize(t);
        if let Some(col) = unmatched {
            // keepalived.md L4: script keywords re-split `raw` themselves and judge quotes
            // there.
            let script = words.first().is_some_and(|w| is_script_keyword(&w.text));
            if !script && !self.quote_reported {
                self.diags.error(
                    loc.at(col),
                    "unmatched '\"': the rest of the line is ignored",
                );
            }
        }
        let Some(first) = words.first() else {
            return;
        };
        let span = loc.at(first.col);
        self.out.push(Line {
            kind: LineKind::Words,
            tokens: words
                .into_iter()
                .map(|w| Token {
                    text: w.text,
                    span: loc.at(w.col),
                    quoted: w.quoted,
                })
                .collect(),
            raw: text::to_string(t),
            span,
        });
    }

    fn include(&mut self, ctx: &FileCtx, at: Span, inc: &include::Include) {
        let resolved = include::resolve(inc, &ctx.dir);
        for (severity, msg) in resolved.problems {
            match severity {
                Severity::Error => self.diags.error(at, msg),
                Severity::Warning => self.diags.warning(at, msg),
            }
        }
        for path in resolved.files {
            let id = identity(&path);
            if let Some(pos) = self.chain.iter().position(|p| *p == id) {
                let cycle: Vec<String> = self.chain[pos..]
                    .iter()
                    .chain(std::iter::once(&id))
                    .map(|p| p.display().to_string())
                    .collect();
                self.diags.error(
                    at,
                    format!("include cycle: {}; not included again", cycle.join(" -> ")),
                );
                continue;
            }
            if self.chain.len() >= MAX_INCLUDE_DEPTH {
                self.diags.error(
                    at,
                    format!(
                        "includes nested more than {MAX_INCLUDE_DEPTH} deep; {} not included",
                        path.display()
                    ),
                );
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.diags.error(
                        at,
                        format!("cannot read included file {}: {e}", path.display()),
                    );
                    continue;
                }
            };
            let file = self.sources.add(&path);
            self.chain.push(id);
            // A multiline definition does not continue into an included file.
            let open = self.open_definition.take();
            let quote_reported = self.quote_reported;
            self.lex_file(file, &path, &bytes);
            self.open_definition = open;
            self.quote_reported = quote_reported;
            self.chain.pop();
        }
    }
}

#[cfg(test)]
mod tests;
