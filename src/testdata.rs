//! The one generator of test and benchmark libraries: media IDs, a
//! realistic mix of metadata per media, and manifests of them. Integration
//! tests, `benches/` and the fuzz seeds all draw from it, so a figure and
//! a test speak about the same data.

use std::ops::Range;

use serde_json::{json, Map, Value};

/// The ID of generated media `n`: 19 digits, as X's.
#[must_use]
pub fn media_id(n: u64) -> String {
    format!("{}", 1_700_000_000_000_000_000u64 + n)
}

/// What generated media `n` wants: alt text everywhere (marked by
/// `variant`); a warning, geo restrictions, an expiry, a sticker with
/// 18-digit integers and an audience on some.
#[must_use]
pub fn media_metadata(n: u64, variant: &str) -> Value {
    let mut m = Map::new();
    m.insert(
        "alt_text".into(),
        json!({"text": format!("Photo {n}: {variant}")}),
    );
    if n.is_multiple_of(3) {
        m.insert(
            "sensitive_media_warning".into(),
            json!({"adult_content": false, "graphic_violence": n.is_multiple_of(2), "other": false}),
        );
    }
    if n.is_multiple_of(4) {
        m.insert(
            "geo_restrictions".into(),
            json!({"whitelisted_country_codes": ["us", "ca"]}),
        );
    }
    if n.is_multiple_of(5) {
        m.insert(
            "content_expiration".into(),
            json!({"timestamp_sec": 4_102_444_800u64}),
        );
    }
    if n.is_multiple_of(7) {
        m.insert(
            "sticker_info".into(),
            json!({"stickers": [{"id": "1", "group_annotation_id": 123_456_789_012_345_678u64 + n, "transform_a": 1, "transform_tx": -3}]}),
        );
    }
    if n.is_multiple_of(11) {
        m.insert(
            "audience_policy".into(),
            json!({"creator_subscriptions": ["Any"]}),
        );
    }
    Value::Object(m)
}

/// A manifest of media `range`, each marked `variant`.
#[must_use]
pub fn manifest(range: Range<u64>, variant: &str) -> String {
    manifest_with(range, |_| variant)
}

/// A manifest of media `range`, media `n` marked `variant(n)`: one YAML
/// document (JSON-shaped YAML, as YAML is a superset of JSON).
pub fn manifest_with<'a>(range: Range<u64>, variant: impl Fn(u64) -> &'a str) -> String {
    let media: Vec<Value> = range
        .map(|n| json!({"id": media_id(n), "metadata": media_metadata(n, variant(n))}))
        .collect();
    let doc = json!({"apiVersion": "xmeta/v1", "kind": "MediaMetadata", "media": media});
    serde_yaml::to_string(&doc).unwrap_or_default()
}
