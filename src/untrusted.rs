//! Text from outside (server answers, file content, imported states) made
//! safe to print: secrets scrubbed, control and bidirectional-override
//! characters shown as escapes, and the length capped.

use std::fmt::Write;

/// Longest piece of server text shown or kept, in characters.
pub const MAX_SHOWN_CHARS: usize = 300;

/// Whether printing `c` raw could move the cursor, hide text or reorder
/// what a reader sees (C0/C1 controls, bidi overrides, zero-width marks).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

/// `text` with every unsafe character written as `\u{…}`-style escapes
/// (`\u001b`, `\u202e`), cut to `max_chars` characters with `…`.
pub fn neutralise(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `neutralise` line by line: newlines stay, so multi-line messages keep
/// their shape; nothing else that could move the cursor gets through.
pub fn neutralise_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| neutralise(line, 100_000))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with every secret replaced by `***`, then neutralised. Secrets
/// are removed before cutting, so a cut can never leave half of one.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    scrub_to(text, secrets, MAX_SHOWN_CHARS)
}

/// Longest error message shown, in characters: xmeta builds its messages
/// and caps each untrusted piece where it goes in, so this bounds only a
/// runaway chain of causes (a message that names two states and says what
/// to do runs past `MAX_SHOWN_CHARS`, and must not be cut).
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// `scrub` for a whole error message (see `MAX_MESSAGE_CHARS`).
pub fn scrub_message(text: &str, secrets: &[&str]) -> String {
    scrub_to(text, secrets, MAX_MESSAGE_CHARS)
}

fn scrub_to(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut clean = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if clean.contains(secret) {
            clean = clean.replace(secret, "***");
        }
    }
    neutralise(&clean, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_before_the_cut() {
        let long = format!("{}Bearer tok-123", "x".repeat(295));
        assert_eq!(
            scrub(&long, &["tok-123"]),
            format!("{}Bearer ***", "x".repeat(295))
                .chars()
                .take(300)
                .collect::<String>()
                + "…"
        );
        assert_eq!(scrub("a tok-123 b", &["tok-123", ""]), "a *** b");
    }

    #[test]
    fn controls_and_overrides_are_escaped() {
        assert_eq!(
            neutralise("a\x1b[2J\u{202e}b\n", 100),
            "a\\u001b[2J\\u202eb\\u000a"
        );
        assert_eq!(neutralise("héllo wörld", 5), "héllo…");
    }
}
