//! Alt text changes word by word: in a 600-character description the
//! reviewer should see the three words that changed, not two long lines.
//! The words come from a pull request or from X's answer: every piece is
//! neutralised before it is marked.

use similar::{ChangeTag, TextDiff};

use crate::model::{FieldKind, FieldValue};
use crate::plan::{Action, Change};
use crate::untrusted::{markdown, neutralise_whole};

/// Words of unchanged context kept either side of a change.
const CONTEXT: usize = 3;

#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Unchanged words, whitespace included.
    Same(String),
    Gone(String),
    New(String),
    /// Unchanged words left out.
    Elided,
}

/// The word diff of an update's alt text, or `None` when the change does
/// not update alt text.
pub fn alt_text_words(change: &Change) -> Option<Vec<Piece>> {
    let text = |m: &crate::model::Metadata| match m.get(FieldKind::AltText) {
        Some(FieldValue::AltText(a)) => Some(a.text.clone()),
        _ => None,
    };
    if change.action != Action::Update || !change.fields.contains(FieldKind::AltText) {
        return None;
    }
    let (old, new) = (text(&change.before)?, text(&change.after)?);
    (old != new).then(|| word_diff(&old, &new))
}

pub fn word_diff(old: &str, new: &str) -> Vec<Piece> {
    let diff = TextDiff::from_words(old, new);
    // Runs of one tag, so a changed phrase is one piece.
    let mut runs: Vec<(ChangeTag, String)> = Vec::new();
    for change in diff.iter_all_changes() {
        match runs.last_mut() {
            Some((tag, text)) if *tag == change.tag() => text.push_str(change.value()),
            _ => runs.push((change.tag(), change.value().to_string())),
        }
    }
    let last = runs.len().saturating_sub(1);
    let mut pieces = Vec::new();
    for (i, (tag, text)) in runs.into_iter().enumerate() {
        match tag {
            ChangeTag::Delete => pieces.push(Piece::Gone(text)),
            ChangeTag::Insert => pieces.push(Piece::New(text)),
            ChangeTag::Equal => pieces.extend(trim_context(&text, i == 0, i == last)),
        }
    }
    pieces
}

/// Keeps `CONTEXT` words of an unchanged run next to the changes around
/// it (none before the first change or after the last).
fn trim_context(text: &str, first: bool, last: bool) -> Vec<Piece> {
    let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
    let words_in = |part: &[&str]| part.iter().filter(|w| !w.trim().is_empty()).count();
    let keep_head = if first { 0 } else { CONTEXT };
    let keep_tail = if last { 0 } else { CONTEXT };
    if words_in(&words) <= keep_head + keep_tail {
        return vec![Piece::Same(text.to_string())];
    }
    let head = take_words(&words, keep_head);
    let tail_start = words.len() - take_words_back(&words, keep_tail);
    let mut out = Vec::new();
    if head > 0 {
        out.push(Piece::Same(words[..head].concat()));
    }
    out.push(Piece::Elided);
    if tail_start < words.len() {
        out.push(Piece::Same(format!(
            " {}",
            words[tail_start..].concat().trim_start()
        )));
    }
    out
}

/// How many tokens hold the first `n` words.
fn take_words(tokens: &[&str], n: usize) -> usize {
    let mut seen = 0;
    for (i, t) in tokens.iter().enumerate() {
        if seen == n {
            return i;
        }
        if !t.trim().is_empty() {
            seen += 1;
        }
    }
    tokens.len()
}

/// How many tokens, from the end, hold the last `n` words.
fn take_words_back(tokens: &[&str], n: usize) -> usize {
    let mut seen = 0;
    for (i, t) in tokens.iter().rev().enumerate() {
        if seen == n {
            return i;
        }
        if !t.trim().is_empty() {
            seen += 1;
        }
    }
    tokens.len()
}

/// `… the [-old-] → {+new+} dog …`, as `git diff --word-diff` marks
/// words, with an arrow between words replaced; coloured on a terminal.
pub fn render_plain(pieces: &[Piece], color: bool) -> String {
    let (red, green, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    render(pieces, &|t| one_line(t), &|core| {
        (
            format!("{red}[-{core}-]{reset}"),
            format!("{green}{{+{core}+}}{reset}"),
        )
    })
}

/// `… the ~~old~~ → **new** dog …`, every word escaped for markdown.
pub fn render_markdown(pieces: &[Piece]) -> String {
    render(pieces, &|t| markdown(&one_line(t)), &|core| {
        let core = markdown(core);
        (format!("~~{core}~~"), format!("**{core}**"))
    })
}

/// The pieces with `same` for unchanged words and `marks` for the gone
/// (`.0`) and new (`.1`) ones; a replacement reads `gone → new`.
fn render(
    pieces: &[Piece],
    same: &dyn Fn(&str) -> String,
    marks: &dyn Fn(&str) -> (String, String),
) -> String {
    let mut out = String::new();
    let mut after_gone = false;
    for piece in pieces {
        match piece {
            Piece::Same(t) => out.push_str(&same(t)),
            Piece::Elided => out.push('…'),
            Piece::Gone(t) => spaced(&mut out, t, |core| marks(core).0),
            Piece::New(t) => {
                if after_gone {
                    // A space between the marks would be in neither text.
                    let trimmed = out.trim_end().len();
                    out.truncate(trimmed);
                    out.push_str(" → ");
                }
                spaced(&mut out, t, |core| marks(core).1);
            }
        }
        after_gone = matches!(piece, Piece::Gone(_));
    }
    out
}

/// Marks the words of `text` and keeps its outer whitespace outside the
/// marks (`~~ old~~` would not render as struck through). Whitespace
/// that is all that changed is marked as visible symbols (`␠`, `⇥`, `↵`).
fn spaced(out: &mut String, text: &str, mark: impl Fn(&str) -> String) {
    if text.trim().is_empty() {
        out.push_str(&mark(&visible_whitespace(text)));
        return;
    }
    let text = one_line(text);
    let core = text.trim();
    let start = text.len() - text.trim_start().len();
    out.push_str(&text[..start]);
    out.push_str(&mark(core));
    out.push_str(&text[start + core.len()..]);
}

/// Whitespace a reader can see: a change of spacing alone is shown.
fn visible_whitespace(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => '⇥',
            '\n' | '\r' => '↵',
            _ => '␠',
        })
        .collect()
}

/// The text on one line, neutralised: what is left can reach a terminal.
fn one_line(text: &str) -> String {
    neutralise_whole(&text.replace(['\n', '\r', '\t'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_words_that_changed_with_a_little_context() {
        let old = "A red fox jumps over the lazy brown dog near the river bank at dawn";
        let new = "A red fox leaps over the lazy brown dog near the old river bank at dawn";
        let pieces = word_diff(old, new);
        assert_eq!(
            render_plain(&pieces, false),
            "A red fox [-jumps-] → {+leaps+} over the lazy … dog near the {+old+} river bank at …"
        );
        assert_eq!(
            render_markdown(&pieces),
            "A red fox ~~jumps~~ → **leaps** over the lazy … dog near the **old** river bank at …"
        );
    }

    #[test]
    fn a_change_of_spacing_alone_is_shown() {
        let pieces = word_diff("a  cat", "a cat");
        assert_eq!(render_plain(&pieces, false), "a[-␠␠-] → {+␠+}cat");
        assert_eq!(render_markdown(&pieces), "a~~␠␠~~ → **␠**cat");
        let pieces = word_diff("a cat", "a cat ");
        assert_eq!(render_plain(&pieces, false), "a cat{+␠+}");
    }

    #[test]
    fn markdown_in_alt_text_stays_text() {
        let pieces = word_diff("a <b>cat</b>", "a [cat](http://x) *here*");
        let md = render_markdown(&pieces);
        assert!(!md.contains("<b>") && !md.contains("](http"), "{md}");
    }

    #[test]
    fn controls_and_overrides_show_as_escapes() {
        let pieces = word_diff("a cat", "a \x1b[2J cat \u{202e}tac");
        assert_eq!(
            render_plain(&pieces, false),
            "a {+\\u001b[2J+} cat {+\\u202etac+}"
        );
        assert_eq!(
            render_markdown(&pieces),
            "a **\\\\u001b\\[2J** cat **\\\\u202etac**"
        );
    }
}
