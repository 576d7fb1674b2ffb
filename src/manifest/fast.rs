//! The fast path for clean files: yaml-rust2's events straight into the
//! typed model (`events.rs`), with the semantic checks done on typed
//! values. It answers only "clean, here are the entries" or "not sure";
//! anything else — a syntax error, an unknown key, a bad value, a warning
//! to give — goes through the positioned path, which finds every problem with its line
//! and column. Each entry's position comes from the scanner's marks.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use crate::error::Location;
use crate::manifest::document::{media_key, Declared, Entry, Exemption};
use crate::manifest::events::Events;
use crate::manifest::schema::ALT_TEXT_MAX_CHARS;
use crate::model::{FieldValue, MediaId, Metadata, Number};
use crate::time::Timestamp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default, deserialize_with = "strict_mapping")]
    defaults: Defaults,
    #[serde(deserialize_with = "strict_list")]
    media: Vec<MediaEntry>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    metadata: Metadata,
}

use crate::model::{strict_list, strict_mapping};

fn some_mapping<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    strict_mapping(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaEntry {
    id: Id,
    #[serde(default)]
    metadata: Metadata,
    /// Present, an exemption is a mapping: `lint: ~` is an error.
    #[serde(default, deserialize_with = "some_mapping")]
    lint: Option<Exemption>,
    #[serde(default, deserialize_with = "crate::model::strict_opt_string")]
    key: Option<String>,
    #[serde(
        default,
        rename = "type",
        deserialize_with = "crate::model::strict_opt_string"
    )]
    kind: Option<String>,
}

/// A media ID as written, quoted or not: `deserialize_str` hands over a
/// scalar's raw text, so `0001` stays `0001` and `0x10` is left
/// for `MediaId::parse` to refuse, exactly as the positioned path does.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a media ID")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The entries of a clean file, or `None` to take the positioned path.
/// Read by lines where the line scanner is sure of the text, else again
/// by yaml-rust2.
pub fn parse(file: &Arc<PathBuf>, text: &str, now: Timestamp) -> Option<Vec<Entry>> {
    let mut events = Events::new(text);
    match read(file, &mut events, now) {
        None if events.gave_up() => read(file, &mut Events::yaml(text), now),
        read => read,
    }
}

fn read(file: &Arc<PathBuf>, events: &mut Events, now: Timestamp) -> Option<Vec<Entry>> {
    let now = now.as_unix() as f64;
    let mut entries = Vec::new();
    while let Some(doc) = events.next_document::<Option<Document>>().ok()? {
        // An empty document (a trailing `---`) declares nothing.
        let Some(doc) = doc else { continue };
        if doc.api_version != "xmeta/v1" || doc.kind != "MediaMetadata" {
            return None;
        }
        if !clean(&doc.defaults.metadata, now) {
            return None;
        }
        for media in doc.media {
            if crate::manifest::schema::has_leading_zero(&media.id.0) {
                return None;
            }
            let id = MediaId::parse(&media.id.0)?;
            if !clean(&media.metadata, now) {
                return None;
            }
            let mut metadata = media.metadata;
            metadata.fill_from(&doc.defaults.metadata);
            if media
                .lint
                .as_ref()
                .is_some_and(|e| e.reason.chars().count() > 500 || e.check().is_err())
            {
                return None;
            }
            let media_key = media_key(&id, media.key.as_deref(), media.kind.as_deref()).ok()?;
            let at = *events.item_positions().get(entries.len())?;
            entries.push(Entry {
                id,
                metadata: Arc::new(Declared::new(metadata, media.lint, media_key)),
                location: Location::new(file, at.line, at.column),
            });
        }
    }
    // Every entry has its own position, and every position is an entry.
    (events.item_positions().len() == entries.len()).then_some(entries)
}

fn is_integer(n: Option<&Number>) -> bool {
    n.is_none_or(|n| n.0.is_i64() || n.0.is_u64())
}

fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

/// The rules serde's types do not carry: limits, codes, integers, and no
/// expiry in the past (that one is a warning, given by the positioned path).
fn clean(metadata: &Metadata, now: f64) -> bool {
    metadata.values().all(|v| match v {
        FieldValue::AltText(a) => a.text.chars().count() <= ALT_TEXT_MAX_CHARS,
        FieldValue::GeoRestrictions(g) => {
            [&g.blacklisted_country_codes, &g.whitelisted_country_codes]
                .into_iter()
                .flatten()
                .flatten()
                .all(|c| is_country(c))
        }
        FieldValue::StickerInfo(s) => s.stickers.iter().all(|s| {
            is_integer(s.group_annotation_id.as_ref())
                && is_integer(s.sticker_set_annotation_id.as_ref())
        }),
        FieldValue::ContentExpiration(c) => c.timestamp_sec.0.as_f64().is_some_and(|t| t >= now),
        _ => true,
    })
}
