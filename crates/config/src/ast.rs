//! The syntax tree between the lexer and the typed model: keyword lines, each with its
//! arguments and, when a `{ … }` follows, its block of child lines. The tree knows nothing of
//! what keywords mean; `lower` gives them meaning.

use crate::source::Span;

/// One word of a logical line, after comments, conditionals, `$DEFINITIONS`, `~SEQ`/`~LST`
/// and double-quote grouping are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Where the word starts (its opening quote, when quoted).
    pub span: Span,
    /// The word was written inside double quotes.
    pub quoted: bool,
}

/// What a logical line is once braces have split it (keepalived.md §1.2 L6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Keyword and arguments.
    Words,
    /// A lone `{`.
    Open,
    /// A lone `}`.
    Close,
}

/// One logical line as the lexer delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: LineKind,
    /// The words (empty for `Open`/`Close`).
    pub tokens: Vec<Token>,
    /// The line's text after comments are stripped and definitions substituted, quotes kept,
    /// starting at the first token. Script keywords (`script`, `notify*`, `misc_path`, …)
    /// re-split this with shell-like quoting (L5).
    pub raw: String,
    /// Where the line (its first token or brace) starts.
    pub span: Span,
}

/// A keyword line with its arguments and optional block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: Token,
    pub args: Vec<Token>,
    /// The text after the keyword, as written (quotes kept, leading blanks removed); see
    /// [`Line::raw`].
    pub rest: String,
    pub block: Option<Block>,
}

/// The `{ … }` after a keyword line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub open: Span,
    pub children: Vec<Node>,
}

impl Node {
    pub fn word(&self) -> &str {
        &self.keyword.text
    }

    pub fn span(&self) -> Span {
        self.keyword.span
    }

    /// The node's children, or nothing when it has no block.
    pub fn children(&self) -> &[Node] {
        self.block
            .as_ref()
            .map(|b| b.children.as_slice())
            .unwrap_or(&[])
    }

    /// Argument `i` as text, when present.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|t| t.text.as_str())
    }

    /// All words of the line: the keyword followed by its arguments.
    pub fn words(&self) -> impl Iterator<Item = &Token> {
        std::iter::once(&self.keyword).chain(self.args.iter())
    }
}
