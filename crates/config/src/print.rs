//! A small writer for keepalived syntax: one keyword per line, blocks indented.

#[derive(Debug, Default)]
pub struct Printer {
    out: String,
    depth: usize,
}

impl Printer {
    /// Writes one line from words (already quoted where needed).
    pub fn line<S: AsRef<str>>(&mut self, words: &[S]) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        let mut first = true;
        for w in words {
            if !first {
                self.out.push(' ');
            }
            first = false;
            self.out.push_str(w.as_ref());
        }
        self.out.push('\n');
    }

    /// Opens a block: `header… {`.
    pub fn open<S: AsRef<str>>(&mut self, header: &[S]) {
        let mut words: Vec<&str> = header.iter().map(|s| s.as_ref()).collect();
        words.push("{");
        self.line(&words);
        self.depth += 1;
    }

    pub fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line(&["}"]);
    }

    /// A blank line between top-level items.
    pub fn blank(&mut self) {
        self.out.push('\n');
    }

    /// A printer for the body of a block opened at this depth, to be [`Printer::splice`]d in
    /// only when it turns out to have lines.
    pub fn child(&self) -> Printer {
        Printer {
            out: String::new(),
            depth: self.depth + 1,
        }
    }

    /// Appends what a [`Printer::child`] wrote.
    pub fn splice(&mut self, child: Printer) {
        self.out.push_str(&child.out);
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Quotes a word for a normal (non-script) keyword when it contains blanks or characters
/// the lexer would act on. Double quotes cannot be escaped in keepalived's grammar, so a
/// word containing one cannot be written; callers only pass words that came from a config.
pub fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            !c.is_whitespace() && !matches!(c, '"' | '#' | '!' | '{' | '}' | '$' | '~' | '@')
        });
    if plain {
        s.to_string()
    } else {
        format!("\"{s}\"")
    }
}
