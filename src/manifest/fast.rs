//! The fast path for clean files: serde_yaml (libyaml) straight into the
//! typed model, with the semantic checks done on typed values. It answers
//! only "clean, here are the entries" or "not sure"; anything else — a
//! syntax error, an unknown key, a bad value, a warning to give — goes
//! through the positioned path, which finds every problem with its line
//! and column. Positions of entries are looked up later, only when needed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use crate::error::Location;
use crate::manifest::document::Entry;
use crate::manifest::schema::ALT_TEXT_MAX_CHARS;
use crate::model::{FieldValue, MediaId, Metadata, Number};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    defaults: Defaults,
    media: Vec<MediaEntry>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaEntry {
    id: Id,
    #[serde(default)]
    metadata: Metadata,
}

/// A media ID written as a string or as a YAML integer.
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
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The entries of a clean file, or `None` to take the positioned path.
pub fn parse(file: &Arc<PathBuf>, text: &str) -> Option<Vec<Entry>> {
    let now = crate::x_api::unix_now();
    // Positions are filled in by `locate` when a message needs one.
    let unplaced = Location::new(file, 0, 0);
    let mut entries = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let doc = Document::deserialize(doc).ok()?;
        if doc.api_version != "xmeta/v1" || doc.kind != "MediaMetadata" {
            return None;
        }
        if !clean(&doc.defaults.metadata, now) {
            return None;
        }
        for media in doc.media {
            let id = MediaId::parse(&media.id.0)?;
            if !clean(&media.metadata, now) {
                return None;
            }
            let mut metadata = media.metadata;
            for v in doc.defaults.metadata.values() {
                if metadata.get(v.kind()).is_none() {
                    metadata.insert(v.clone());
                }
            }
            metadata.shrink_to_fit();
            entries.push(Entry {
                id,
                metadata: Arc::new(metadata),
                location: unplaced.clone(),
            });
        }
    }
    Some(entries)
}

fn is_integer(n: &Option<Number>) -> bool {
    n.as_ref().is_none_or(|n| n.0.is_i64() || n.0.is_u64())
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
            is_integer(&s.group_annotation_id) && is_integer(&s.sticker_set_annotation_id)
        }),
        FieldValue::ContentExpiration(c) => c.timestamp_sec.0.as_f64().is_some_and(|t| t >= now),
        _ => true,
    })
}
