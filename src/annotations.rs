//! GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`):
//! problems shown inline in a pull request's diff. GitHub shows at most
//! 10 of each kind per step, so a command prints at most that many, most
//! severe first, and one notice that counts the rest and says where they
//! are (`Capped`).

use crate::error::{Diagnostic, Location};

/// Most severe first (the order annotations are printed in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Error,
    Warning,
    Notice,
}

impl Kind {
    /// A lint level's annotation (a rule turned off reports nothing).
    pub fn of(level: crate::lint::Level) -> Kind {
        match level {
            crate::lint::Level::Error => Kind::Error,
            _ => Kind::Warning,
        }
    }
}

/// One annotation line, at `location` when there is one.
pub fn annotation(kind: Kind, location: Option<&Location>, title: &str, message: &str) -> String {
    let kind = match kind {
        Kind::Error => "error",
        Kind::Warning => "warning",
        Kind::Notice => "notice",
    };
    let mut props = Vec::new();
    if let Some(at) = location {
        props.push(format!(
            "file={}",
            escape(&at.file.display().to_string(), true)
        ));
        props.push(format!("line={}", at.line));
        props.push(format!("col={}", at.column));
    }
    if !title.is_empty() {
        props.push(format!("title={}", escape(title, true)));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{kind}{props}::{}", escape(message, false))
}

/// The most annotations of one kind GitHub shows for a step.
pub const SHOWN_PER_KIND: usize = 10;

/// A command's annotations, printed most severe first, at most
/// `SHOWN_PER_KIND` errors and as many warnings and notices; the rest are
/// counted in one closing notice that says where to find them.
#[derive(Default)]
pub struct Capped {
    /// Kept, at most `SHOWN_PER_KIND` of each kind, in the order pushed.
    lines: Vec<(Kind, String)>,
    kept: [usize; 3],
    left: [usize; 3],
}

impl Capped {
    pub fn push(&mut self, kind: Kind, line: String) {
        self.push_with(kind, || line);
    }

    /// `line` is made only when it will be printed: a lint of 600,000
    /// findings formats 10 of each kind, not all of them.
    pub fn push_with(&mut self, kind: Kind, line: impl FnOnce() -> String) {
        let k = kind as usize;
        if self.kept[k] < SHOWN_PER_KIND {
            self.kept[k] += 1;
            self.lines.push((kind, line()));
        } else {
            self.left[k] += 1;
        }
    }

    /// The lines to print: the kept annotations, most severe first, then
    /// (when some were left out) a notice counting them that says they are
    /// in `rest`, then `closing`, the command's own notices (a plan's
    /// summary), always shown; notices are capped so that these fit.
    pub fn finish(mut self, title: &str, rest: &str, closing: Vec<String>) -> Vec<String> {
        self.lines.sort_by_key(|(kind, _)| *kind);
        let room_for_notices = SHOWN_PER_KIND.saturating_sub(closing.len() + 1);
        let notices = self.kept[Kind::Notice as usize];
        if notices > room_for_notices {
            let dropped = notices - room_for_notices;
            self.lines.truncate(self.lines.len() - dropped);
            self.left[Kind::Notice as usize] += dropped;
        }
        let left = self.left;
        let mut out: Vec<String> = self.lines.into_iter().map(|(_, line)| line).collect();
        let total: usize = left.iter().sum();
        if total > 0 {
            let parts: Vec<String> = [
                (left[0], "error"),
                (left[1], "warning"),
                (left[2], "notice"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| {
                format!(
                    "{} {what}{}",
                    crate::plan::cost::thousands(*n as u64),
                    if *n == 1 { "" } else { "s" }
                )
            })
            .collect();
            out.push(annotation(
                Kind::Notice,
                None,
                title,
                &format!(
                    "{} more not shown here ({}; GitHub shows {SHOWN_PER_KIND} of each kind per step): {rest}",
                    crate::plan::cost::thousands(total as u64),
                    parts.join(", ")
                ),
            ));
        }
        out.extend(closing);
        out
    }
}

/// A manifest problem, with its help folded into the message.
pub fn diagnostic(d: &Diagnostic) -> String {
    annotation(diagnostic_kind(d), Some(&d.location), "xmeta", &message(d))
}

pub fn diagnostic_kind(d: &Diagnostic) -> Kind {
    if d.is_error() {
        Kind::Error
    } else {
        Kind::Warning
    }
}

fn message(d: &Diagnostic) -> String {
    match &d.help {
        Some(help) => format!("{}\nhelp: {help}", d.message),
        None => d.message.clone(),
    }
}

/// A workflow command's value: `%`, CR and LF escaped (and `,` `:` in
/// properties), so a file name or a message cannot end the command early
/// or start another. Control and bidi characters are neutralised.
fn escape(text: &str, property: bool) -> String {
    // A message keeps its lines; a property (a file name) keeps CR and LF
    // too, escaped below as the runner reads them back, so an ordinary
    // name stays the file's name. A name with other unsafe characters is
    // shown escaped: the annotation then names no file in the diff, which
    // is better than a name that reorders or hides what the log shows.
    let text = if property {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\r' | '\n' => out.push(c),
                c if crate::untrusted::is_unsafe_char(c) => {
                    crate::untrusted::push_escape(&mut out, c);
                }
                c => out.push(c),
            }
        }
        out
    } else {
        crate::untrusted::neutralise_lines(text)
    };
    let mut out = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors first, 10 of each kind, the closing notices always shown
    /// and the rest counted in one notice between.
    #[test]
    fn a_command_shows_ten_of_each_kind_and_counts_the_rest() {
        let mut capped = Capped::default();
        for i in 0..12 {
            capped.push(Kind::Notice, format!("n{i}"));
            capped.push(Kind::Warning, format!("w{i}"));
            capped.push(Kind::Error, format!("e{i}"));
        }
        let lines = capped.finish("t", "elsewhere", vec!["summary".into()]);
        let want: Vec<String> = (0..10)
            .map(|i| format!("e{i}"))
            .chain((0..10).map(|i| format!("w{i}")))
            .chain((0..8).map(|i| format!("n{i}")))
            .chain([
                "::notice title=t::8 more not shown here (2 errors, 2 warnings, 4 notices; GitHub shows 10 of each kind per step): elsewhere".to_string(),
                "summary".to_string(),
            ])
            .collect();
        assert_eq!(lines, want);
        let mut few = Capped::default();
        few.push(Kind::Warning, "w".into());
        assert_eq!(few.finish("t", "x", Vec::new()), ["w"]);
    }

    #[test]
    fn a_file_name_cannot_end_the_command() {
        let file = std::sync::Arc::new(std::path::PathBuf::from("a,b:c%\n::error::x.yaml"));
        let at = Location::new(&file, 3, 4);
        assert_eq!(
            annotation(Kind::Warning, Some(&at), "t", "m\n::x"),
            "::warning file=a%2Cb%3Ac%25%0A%3A%3Aerror%3A%3Ax.yaml,line=3,col=4,title=t::m%0A::x"
        );
        assert_eq!(annotation(Kind::Notice, None, "", "done"), "::notice::done");
        let file = std::sync::Arc::new(std::path::PathBuf::from("a\u{202e}b\r.yaml"));
        let at = Location::new(&file, 1, 1);
        assert_eq!(
            annotation(Kind::Error, Some(&at), "t", "m\u{1b}"),
            "::error file=a\\u202eb%0D.yaml,line=1,col=1,title=t::m\\u001b"
        );
    }
}
