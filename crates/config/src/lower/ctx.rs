//! The tools every lowering function uses: reporting with positions and reading typed values
//! out of tokens. A reader that fails reports why and returns `None`; the caller then keeps
//! the default, as keepalived does, but the load as a whole fails because an error was
//! reported.

use std::net::IpAddr;

use crate::ast::{Node, Token};
use crate::diag::Diagnostics;
use crate::model::common::{Micros, Script};
use crate::quote::split_quoted;
use crate::source::Span;

pub struct Ctx<'a> {
    pub diags: &'a mut Diagnostics,
}

impl<'a> Ctx<'a> {
    pub fn new(diags: &'a mut Diagnostics) -> Self {
        Ctx { diags }
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.error(span, msg);
    }

    pub fn warning(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.warning(span, msg);
    }

    /// An unknown keyword in block `within` (e.g. `"vrrp_instance"`): a warning, an error
    /// with `--strict`; the line is ignored, as keepalived does.
    pub fn unknown_keyword(&mut self, node: &Node, within: &str) {
        self.diags.strict_warning(
            node.span(),
            format!(
                "unknown keyword '{}' in {within}; the line is ignored",
                node.word()
            ),
        );
    }

    /// A keyword flotilla reads but does not act on (keepalived.md priority P2).
    pub fn not_acted_on(&mut self, node: &Node, why: &str) {
        self.diags.warning(
            node.span(),
            format!("'{}' accepted, not acted on: {why}", node.word()),
        );
    }

    /// Warns about tokens after the first `expected` arguments: keepalived silently ignores
    /// them (L7), which hides typos like `virtual_router_id 9 priority 50`.
    pub fn extra_tokens(&mut self, node: &Node, expected: usize) {
        if let Some(t) = node.args.get(expected) {
            let extra: Vec<&str> = node.args[expected..]
                .iter()
                .map(|t| t.text.as_str())
                .collect();
            self.diags.strict_warning(
                t.span,
                format!(
                    "extra tokens after '{}' ignored: '{}' (one keyword per line; keepalived ignores them silently)",
                    node.word(),
                    extra.join(" ")
                ),
            );
        }
    }

    /// Argument `i` of `node`; reports "missing <what>" when absent.
    pub fn arg<'n>(&mut self, node: &'n Node, i: usize, what: &str) -> Option<&'n Token> {
        let t = node.args.get(i);
        if t.is_none() {
            self.error(node.span(), format!("'{}' needs {what}", node.word()));
        }
        t
    }

    /// The single argument of a scalar keyword (`keyword VALUE`), warning about extra tokens.
    pub fn single<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n Token> {
        self.no_block(node);
        self.extra_tokens(node, 1);
        self.arg(node, 0, what)
    }

    /// Reports a block after a keyword that takes none.
    pub fn no_block(&mut self, node: &Node) {
        if let Some(b) = &node.block {
            self.error(
                b.open,
                format!("'{}' takes no block; the block is ignored", node.word()),
            );
        }
    }

    /// The block of a keyword that needs one; reports its absence.
    pub fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        if node.block.is_none() {
            self.error(
                node.span(),
                format!("'{}' needs a {{ … }} block", node.word()),
            );
        }
        node.children()
    }

    /// An integer in `lo..=hi`.
    pub fn int_in(&mut self, tok: &Token, lo: i64, hi: i64, what: &str) -> Option<i64> {
        self.number_in(tok, lo, hi, what, "a whole number")
    }

    /// An unsigned integer in `lo..=hi`.
    pub fn uint_in(&mut self, tok: &Token, lo: u64, hi: u64, what: &str) -> Option<u64> {
        self.number_in(tok, lo, hi, what, "a whole non-negative number")
    }

    fn number_in<T>(&mut self, tok: &Token, lo: T, hi: T, what: &str, kind: &str) -> Option<T>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        match tok.text.parse::<T>() {
            Ok(v) if lo <= v && v <= hi => Some(v),
            Ok(v) => {
                self.error(
                    tok.span,
                    format!("{what} {v} is out of range: it must be between {lo} and {hi}"),
                );
                None
            }
            Err(_) => {
                self.error(tok.span, format!("{what} '{}' is not {kind}", tok.text));
                None
            }
        }
    }

    /// A `<TIMER>`: decimal seconds with up to 6 fractional digits, within `lo..=hi`.
    pub fn timer_in(&mut self, tok: &Token, lo: Micros, hi: Micros, what: &str) -> Option<Micros> {
        match tok.text.parse::<Micros>() {
            Ok(v) if v >= lo && v <= hi => Some(v),
            Ok(v) => {
                self.error(
                    tok.span,
                    format!(
                        "{what} {} s is out of range: it must be between {} and {} seconds",
                        v.keepalived_text(),
                        lo.keepalived_text(),
                        hi.keepalived_text()
                    ),
                );
                None
            }
            Err(e) => {
                self.error(tok.span, format!("{what}: {e}"));
                None
            }
        }
    }

    /// keepalived's booleans: `on|off|true|false|yes|no` (L17).
    pub fn boolean(&mut self, tok: &Token, what: &str) -> Option<bool> {
        match tok.text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => {
                self.error(
                    tok.span,
                    format!(
                        "{what} '{}' is not a boolean (on/off, true/false, yes/no)",
                        tok.text
                    ),
                );
                None
            }
        }
    }

    /// A flag keyword with an optional boolean argument (`inhibit_on_failure [bool]`): true
    /// when the argument is absent.
    pub fn flag(&mut self, node: &Node) -> bool {
        self.no_block(node);
        self.extra_tokens(node, 1);
        match node.args.first() {
            None => true,
            Some(t) => self.boolean(t, node.word()).unwrap_or(true),
        }
    }

    /// An IPv4 or IPv6 address.
    pub fn ip(&mut self, tok: &Token, what: &str) -> Option<IpAddr> {
        match tok.text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(
                    tok.span,
                    format!("{what} '{}' is not an IPv4 or IPv6 address", tok.text),
                );
                None
            }
        }
    }

    /// A TCP/UDP port, 0–65535.
    pub fn port(&mut self, tok: &Token, what: &str) -> Option<u16> {
        self.uint_in(tok, 0, 65535, what).map(|p| p as u16)
    }

    /// A script keyword's value: `keyword "command args" [user [group]]` (keepalived.md L5).
    /// The line is split with quotes honoured and backslashes kept, then the command string is
    /// split again with escapes decoded into the argument vector.
    pub fn script(&mut self, node: &Node) -> Option<Script> {
        self.no_block(node);
        let at = node.args.first().map(|t| t.span).unwrap_or(node.span());
        let words = match split_quoted(&node.rest, false) {
            Ok(w) => w,
            Err(e) => {
                self.error(at, format!("'{}': {e}", node.word()));
                return None;
            }
        };
        let Some(command) = words.first() else {
            self.error(node.span(), format!("'{}' needs a command", node.word()));
            return None;
        };
        let argv = match split_quoted(command, true) {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => {
                self.error(at, format!("'{}' has an empty command", node.word()));
                return None;
            }
            Err(e) => {
                self.error(at, format!("'{}': {e}", node.word()));
                return None;
            }
        };
        if let Some(extra) = words.get(3) {
            self.diags.strict_warning(
                at,
                format!(
                    "extra tokens after the user and group of '{}' ignored: '{extra}' (quote the whole command: \"cmd arg …\")",
                    node.word()
                ),
            );
        }
        Some(Script {
            argv,
            user: words.get(1).cloned(),
            group: words.get(2).cloned(),
        })
    }
}
