//! What `xmeta import` writes, as values: the media an account posted,
//! grouped by the month they were first posted in, rendered as manifests
//! that validate, lint and plan as written. Alt text is written exactly as
//! X holds it (control and bidi characters as YAML escapes, so the file
//! shows none raw and reads back to the same text); a media without alt
//! text, or with more than a manifest allows, gets a commented placeholder
//! that `xmeta lint` flags (`alt-text/missing`), never invented text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::schema::ALT_TEXT_MAX_CHARS;
use crate::model::{AltText, FieldValue, MediaId, Metadata};
use crate::time::Timestamp;

/// Where an interrupted import continues, kept in the output directory.
pub const PROGRESS_FILE: &str = ".xmeta-import.json";

/// One media to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub id: MediaId,
    pub key: String,
    pub alt_text: Option<String>,
    /// The earliest post this import saw it in.
    pub posted: Timestamp,
}

/// Where the media came from, for each file's header.
#[derive(Clone, Debug)]
pub struct Source {
    pub user_id: String,
    /// X's handle, when it is one (letters, digits, `_`): anything else is
    /// left out of the comment rather than written into the file.
    pub username: Option<String>,
    pub at: Timestamp,
}

/// An interrupted import: the account and bounds it read, and the oldest
/// post it finished (the next run reads older posts only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    pub user_id: String,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Posts older than this one remain.
    pub until_id: u64,
}

/// `2026-11` of an instant (UTC).
pub fn month(at: Timestamp) -> String {
    at.to_string().chars().take(7).collect()
}

/// The media by month of posting, each month's sorted by ID.
pub fn by_month(media: impl IntoIterator<Item = Imported>) -> BTreeMap<String, Vec<Imported>> {
    let mut months: BTreeMap<String, Vec<Imported>> = BTreeMap::new();
    for m in media {
        months.entry(month(m.posted)).or_default().push(m);
    }
    for list in months.values_mut() {
        list.sort_by_key(|m| m.id);
    }
    months
}

/// A handle as X allows them, else nothing.
pub fn safe_handle(name: &str) -> Option<String> {
    ((1..=15).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

/// Whether the alt text X holds can be written: a manifest takes at most
/// `ALT_TEXT_MAX_CHARS` characters (as X does; a longer one is a hostile
/// or broken answer).
fn writable(text: &str) -> bool {
    text.chars().count() <= ALT_TEXT_MAX_CHARS
}

/// Whether `import` writes this media's alt text (else a placeholder).
pub fn has_writable_alt_text(m: &Imported) -> bool {
    m.alt_text.as_deref().is_some_and(writable)
}

/// One month's manifest.
pub fn render(month: &str, source: &Source, media: &[Imported]) -> String {
    let account = match &source.username {
        Some(name) => format!("@{name} (user {})", source.user_id),
        None => format!("user {}", source.user_id),
    };
    let mut out = format!(
        "# Imported by `xmeta import` at {} from the posts of {account} on X:\n\
         # the media first posted in {month} (UTC), with their alt text as X holds it.\n\
         # A media without alt text has a placeholder comment; `xmeta lint` flags it.\n\
         apiVersion: xmeta/v1\n\
         kind: MediaMetadata\n\
         media:\n",
        source.at
    );
    for m in media {
        out.push_str(&format!("  - id: \"{}\"\n    key: {}\n", m.id, m.key));
        match m.alt_text.as_deref() {
            Some(text) if writable(text) => {
                let metadata: Metadata = std::iter::once(FieldValue::AltText(AltText {
                    text: text.into(),
                }))
                .collect();
                out.push_str("    metadata:\n");
                for line in crate::plan::yaml_text::metadata_yaml(&metadata).lines() {
                    out.push_str("      ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Some(text) => out.push_str(&format!(
                "    # alt_text: not imported: X holds {} characters, more than the {ALT_TEXT_MAX_CHARS} a manifest allows; write one\n",
                text.chars().count()
            )),
            None => out.push_str(
                "    # alt_text: none on X; describe the media: metadata: {alt_text: {text: \"…\"}}\n",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(id: u64, alt: Option<&str>) -> Imported {
        Imported {
            id: MediaId::parse(&id.to_string()).unwrap(),
            key: format!("3_{id}"),
            alt_text: alt.map(str::to_string),
            posted: Timestamp::parse("2026-11-30T12:00:00Z").unwrap(),
        }
    }

    #[test]
    fn hostile_alt_text_reads_back_exactly_and_shows_nothing_raw() {
        let texts = [
            "plain",
            "a: b # c",
            "\u{202e}reversed\u{202c} and \x1b[2J and \0 and \u{85}",
            "\"quoted\"\n'line two'\t\\",
            "- starts like a list",
            "",
            "true",
            "  padded  ",
        ];
        let list: Vec<Imported> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| media(10 + i as u64, Some(t)))
            .collect();
        let source = Source {
            user_id: "1".into(),
            username: safe_handle("x\nname"),
            at: Timestamp::EPOCH,
        };
        let yaml = render("2026-11", &source, &list);
        assert!(
            !yaml
                .chars()
                .any(|c| c != '\n' && crate::untrusted::is_unsafe_char(c)),
            "{yaml}"
        );
        let parsed = crate::manifest::parse_text(
            std::sync::Arc::new("m.yaml".into()),
            &yaml,
            Timestamp::EPOCH,
        );
        assert!(parsed.is_valid(), "{:?}\n{yaml}", parsed.diagnostics);
        for (entry, text) in parsed.entries.iter().zip(texts) {
            let back = entry.metadata.values().find_map(|v| match v {
                FieldValue::AltText(a) => Some(a.text.to_string()),
                _ => None,
            });
            assert_eq!(back.as_deref(), Some(text), "{yaml}");
        }
    }

    #[test]
    fn missing_or_oversized_alt_text_is_a_placeholder() {
        let long = "x".repeat(1001);
        let yaml = render(
            "2026-11",
            &Source {
                user_id: "1".into(),
                username: Some("demo".into()),
                at: Timestamp::EPOCH,
            },
            &[media(5, None), media(6, Some(&long))],
        );
        assert!(yaml.contains("# alt_text: none on X"), "{yaml}");
        assert!(yaml.contains("X holds 1001 characters"), "{yaml}");
        assert!(!yaml.contains(&long));
        let parsed = crate::manifest::parse_text(
            std::sync::Arc::new("m.yaml".into()),
            &yaml,
            Timestamp::EPOCH,
        );
        assert!(parsed.is_valid(), "{:?}", parsed.diagnostics);
        assert_eq!(parsed.entries.len(), 2);
    }
}
