//! The one table of the alt-text rules as people read them: each rule's
//! default level, summary, what it catches and why, bad and good examples
//! and options. `lint --list-rules`, `lint --explain`, SARIF's rule
//! descriptions and `xmeta schema config` all read it, so they never
//! disagree.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::lint::rules::{Level, Rule, PLACEHOLDER_WORDS, PREFIXES};

pub struct RuleDoc {
    pub rule: Rule,
    pub level: Level,
    /// One line: what is wrong, in general.
    pub summary: &'static str,
    /// What the rule catches, precisely.
    pub catches: &'static str,
    /// Why it matters to someone who cannot see the media.
    pub why: &'static str,
    pub bad: &'static [&'static str],
    pub good: &'static [&'static str],
    /// `xmeta.yaml` options: name and meaning.
    pub options: &'static [(&'static str, &'static str)],
}

/// Where the README documents the rules (SARIF's `helpUri`).
pub const README_SECTION: &str = "#alt-text-rules";

pub fn repository() -> &'static str {
    env!("CARGO_PKG_REPOSITORY")
}

const TABLE: [RuleDoc; 10] = [
    RuleDoc {
        rule: Rule::Missing,
        level: Level::Error,
        summary: "a media has no alt text",
        catches: "A declared media without `alt_text`, or whose alt text is empty or only spaces.",
        why: "Without alt text a screen reader announces only \"image\": the media says nothing to someone who cannot see it.",
        bad: &["metadata: {shared_info: {shared: true}}", "alt_text: {text: \"\"}"],
        good: &["alt_text: {text: \"A black cat asleep on a red sofa\"}"],
        options: &[],
    },
    RuleDoc {
        rule: Rule::Placeholder,
        level: Level::Error,
        summary: "the alt text is a placeholder word such as \"image\"",
        catches: "An alt text that is only a word naming the kind of thing (`image`, `photo`, `untitled`, `alt text`, `TODO`, in several languages), compared lower-cased with punctuation at either end removed.",
        why: "A placeholder tells a screen-reader user nothing the screen reader did not already say.",
        bad: &["image", "Photo.", "untitled", "Bild"],
        good: &["A photo booth at the Acme launch party, three guests in paper hats"],
        options: &[("words", "more placeholder words, added to the built-in list")],
    },
    RuleDoc {
        rule: Rule::Filename,
        level: Level::Error,
        summary: "the alt text is a file name such as IMG_2041.JPG",
        catches: "An alt text of at most a few words ending in a media extension (`.jpg`, `.png`, `.mp4`, …), or a camera's naming pattern (`IMG_…`, `DSC…`, `PXL_…`, `GOPR…`).",
        why: "A file name is what an upload tool fills in when nobody wrote alt text; it describes nothing.",
        bad: &["IMG_2041.JPG", "DSC0001", "holiday-beach.jpeg"],
        good: &["Waves breaking on an empty beach at sunset"],
        options: &[],
    },
    RuleDoc {
        rule: Rule::TooShort,
        level: Level::Warning,
        summary: "the alt text is too short to describe anything",
        catches: "An alt text shorter than `min_chars` (default 10) Unicode code points, counted as X counts them, once trimmed.",
        why: "A word or two rarely says who, what or where; a reader misses what the image shows.",
        bad: &["A cat", "Logo"],
        good: &["A cat asleep on a red sofa"],
        options: &[("min_chars", "the fewest code points an alt text may have (1 to 1000; default 10)")],
    },
    RuleDoc {
        rule: Rule::RedundantPrefix,
        level: Level::Warning,
        summary: "the alt text starts with \"image of\" or the like",
        catches: "An alt text that opens with a phrase such as `image of`, `picture of`, `photo of` (or `imagen de`, `Bild von`, …), compared case-insensitively.",
        why: "Screen readers already announce an image; the prefix makes every description longer to listen to.",
        bad: &["Image of a dog catching a frisbee", "Imagen de un gato"],
        good: &["A dog catching a frisbee"],
        options: &[("prefixes", "more prefixes, added to the built-in list")],
    },
    RuleDoc {
        rule: Rule::Duplicate,
        level: Level::Warning,
        summary: "the same alt text is used on different media",
        catches: "Two or more media with the same alt text, compared lower-cased and trimmed; each later media is reported with the place of the first.",
        why: "Different media rarely show the same thing; a copied description is usually wrong for all but one.",
        bad: &["media 1 and media 2 both: \"A black cat asleep on a red sofa\""],
        good: &["media 1: \"A black cat asleep on a red sofa\"; media 2: \"The same cat awake, stretching on the sofa\""],
        options: &[],
    },
    RuleDoc {
        rule: Rule::UrlOnly,
        level: Level::Error,
        summary: "the alt text is only a URL",
        catches: "An alt text that is one token starting with `http://`, `https://` or `www.`.",
        why: "A URL is read out character by character and says nothing about what the media shows.",
        bad: &["https://example.com/cat"],
        good: &["Chart: sales grew 12% in 2024 (source: www.example.com)"],
        options: &[],
    },
    RuleDoc {
        rule: Rule::NoWords,
        level: Level::Error,
        summary: "the alt text has no words (only emoji, symbols or punctuation)",
        catches: "An alt text with no letter or digit in any script: only emoji, symbols or punctuation.",
        why: "Emoji and symbols are read out as their names, if at all; they do not describe the media.",
        bad: &["🐱🎉!!", "..."],
        good: &["A cat wearing a party hat 🎉"],
        options: &[],
    },
    RuleDoc {
        rule: Rule::Whitespace,
        level: Level::Warning,
        summary: "the alt text has leading, trailing or doubled spaces",
        catches: "An alt text with spaces at either end, two spaces in a row, or a tab or line break.",
        why: "Stray whitespace is usually a copy-paste slip; some screen readers pause on it.",
        bad: &[" A cat asleep on a sofa", "A cat  asleep on a sofa"],
        good: &["A cat asleep on a sofa"],
        options: &[],
    },
    RuleDoc {
        rule: Rule::UnusedExemption,
        level: Level::Warning,
        summary: "an exemption silences nothing",
        catches: "A media's `lint.ignore` names a rule that finds nothing in its alt text (or is turned off): the exemption no longer does anything.",
        why: "An exemption that outlived its reason hides the next real finding on that media; remove it so the rule applies again.",
        bad: &["alt_text: {text: \"A cat asleep on a red sofa\"}\nlint: {ignore: [alt-text/too-short], reason: \"…\"}"],
        good: &["alt_text: {text: \"Logo\"}\nlint: {ignore: [alt-text/too-short], reason: \"the wordmark is the whole image\"}"],
        options: &[],
    },
];

impl Rule {
    pub fn doc(self) -> &'static RuleDoc {
        TABLE
            .iter()
            .find(|d| d.rule == self)
            .expect("every rule has a row in the table")
    }
}

/// The built-in words a rule compares against, when it has some.
fn built_in(rule: Rule) -> Option<(&'static str, Vec<&'static str>)> {
    let unique = |words: &[&'static str]| {
        let mut seen = Vec::new();
        for w in words {
            if !seen.contains(w) {
                seen.push(*w);
            }
        }
        seen
    };
    match rule {
        Rule::Placeholder => Some(("Built-in placeholder words", unique(PLACEHOLDER_WORDS))),
        Rule::RedundantPrefix => Some(("Built-in prefixes", unique(PREFIXES))),
        _ => None,
    }
}

/// `alt-text/too-short  warning  the alt text is too short …`, one a line.
pub fn list_text() -> String {
    let width = Rule::ALL.iter().map(|r| r.id().len()).max().unwrap_or(0);
    let mut out = String::new();
    for d in &TABLE {
        let _ = writeln!(
            out,
            "{:width$}  {:7}  {}",
            d.rule.id(),
            d.level.to_string(),
            d.summary
        );
    }
    out
}

pub fn list_json() -> Value {
    Value::Array(
        TABLE
            .iter()
            .map(|d| json!({"id": d.rule.id(), "level": d.level, "summary": d.summary}))
            .collect(),
    )
}

/// `lint --explain RULE`, and SARIF's `help.text`.
pub fn explain_text(rule: Rule) -> String {
    let d = rule.doc();
    let mut out = String::new();
    let _ = writeln!(out, "{} (default: {})", rule.id(), d.level);
    let _ = writeln!(out, "\n{}\n\nWhy: {}", d.catches, d.why);
    let examples = |out: &mut String, title: &str, list: &[&str]| {
        let _ = writeln!(out, "\n{title}:");
        for e in list {
            for (i, line) in e.lines().enumerate() {
                let _ = writeln!(out, "{}{line}", if i == 0 { "  - " } else { "    " });
            }
        }
    };
    examples(&mut out, "Bad", d.bad);
    examples(&mut out, "Good", d.good);
    let _ = write!(
        out,
        "\nOptions (in xmeta.yaml, under lint.rules.{}):\n  level: off | warning | error\n",
        rule.id()
    );
    for (name, meaning) in d.options {
        let _ = writeln!(out, "  {name}: {meaning}");
    }
    if let Some((title, words)) = built_in(rule) {
        let _ = writeln!(out, "\n{title}:\n  {}", words.join(", "));
    }
    out
}

/// SARIF's `help.markdown`: the same text, formatted.
pub fn explain_markdown(rule: Rule) -> String {
    let d = rule.doc();
    let mut out = format!(
        "**{}** (default: {})\n\n{}\n\n**Why:** {}\n",
        rule.id(),
        d.level,
        d.catches,
        d.why
    );
    let examples = |out: &mut String, title: &str, list: &[&str]| {
        let _ = writeln!(out, "\n**{title}:**\n");
        for e in list {
            let _ = writeln!(out, "```yaml\n{e}\n```");
        }
    };
    examples(&mut out, "Bad", d.bad);
    examples(&mut out, "Good", d.good);
    let _ = writeln!(
        out,
        "\n**Options** (in `xmeta.yaml`, under `lint.rules.{}`):\n\n- `level`: `off`, `warning` or `error`",
        rule.id()
    );
    for (name, meaning) in d.options {
        let _ = writeln!(out, "- `{name}`: {meaning}");
    }
    if let Some((title, words)) = built_in(rule) {
        let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
        let _ = writeln!(out, "\n**{title}:** {}", quoted.join(", "));
    }
    let _ = write!(
        out,
        "\nSee [the alt-text rules]({}{README_SECTION}).\n",
        repository()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_each_rule_once_in_order() {
        let ids: Vec<Rule> = TABLE.iter().map(|d| d.rule).collect();
        assert_eq!(ids, Rule::ALL);
    }
}
