//! GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`):
//! problems shown inline in a pull request's diff.

use crate::error::{Diagnostic, Location};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Error,
    Warning,
    Notice,
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

/// A manifest problem, with its help folded into the message.
pub fn diagnostic(d: &Diagnostic) -> String {
    let kind = if d.is_error() {
        Kind::Error
    } else {
        Kind::Warning
    };
    let message = match &d.help {
        Some(help) => format!("{}\nhelp: {help}", d.message),
        None => d.message.clone(),
    };
    annotation(kind, Some(&d.location), "xmeta", &message)
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
