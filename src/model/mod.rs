//! The API's metadata types, typed as `POST /2/media/metadata` shapes them,
//! and canonical value equality (key order and `1` vs `1.0` never count).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod digest;
mod digests;
mod field_set;
mod rule;

pub use digest::Digest;
pub use digests::{Digests, DigestsBuilder};
pub(crate) use field_set::is_empty as no_fields;
pub use field_set::FieldSet;
pub use rule::{Rule, TextCheck};

/// A JSON number kept exactly as written (large integers stay exact),
/// compared by value so `1` equals `1.0`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Number(pub serde_json::Number);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
            return x == y;
        }
        if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
            return x == y;
        }
        if (a.is_f64() || b.is_f64()) && !(a.is_f64() && b.is_f64()) {
            // An integer against a float: equal only if the float is that
            // integer exactly, so 2^53+1 never equals 2^53 as a float.
            let (int, float) = if a.is_f64() { (b, a) } else { (a, b) };
            let f = float.as_f64().unwrap_or(f64::NAN);
            return f.fract() == 0.0
                && f.abs() < 9.0e18
                && int.as_i64().is_some_and(|i| i == f as i64);
        }
        a.as_f64() == b.as_f64()
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number(v.into())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowDownloadStatus {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_bool"
    )]
    pub allow_download: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AltText {
    #[serde(deserialize_with = "strict::boxed_str")]
    pub text: Box<str>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudiencePolicy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_strings"
    )]
    pub creator_subscriptions: Option<Box<[String]>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_strings"
    )]
    pub x_subscriptions: Option<Box<[String]>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentExpiration {
    /// Unix seconds.
    #[serde(deserialize_with = "strict::number")]
    pub timestamp_sec: Number,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRestrictions {
    #[serde(deserialize_with = "strict::strings")]
    pub whitelist: Box<[String]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundMediaOrigin {
    #[serde(deserialize_with = "strict::string")]
    pub id: String,
    #[serde(deserialize_with = "strict::string")]
    pub provider: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRestrictions {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_strings"
    )]
    pub blacklisted_country_codes: Option<Box<[String]>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_strings"
    )]
    pub whitelisted_country_codes: Option<Box<[String]>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementInfo {
    #[serde(deserialize_with = "strict::bool")]
    pub managed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaKey {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_string"
    )]
    pub media: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_string"
    )]
    pub media_category: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewImage {
    #[serde(deserialize_with = "strict::mapping")]
    pub media_key: MediaKey,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveMediaWarning {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_bool"
    )]
    pub adult_content: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_bool"
    )]
    pub graphic_violence: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_bool"
    )]
    pub other: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedInfo {
    #[serde(deserialize_with = "strict::bool")]
    pub shared: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sticker {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub aspect_ratio: Option<Number>,
    /// An integer that can exceed 2^53: kept exact.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub group_annotation_id: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_string"
    )]
    pub id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    #[allow(clippy::struct_field_names)] // X's name for it
    pub sticker_set_annotation_id: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_a: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_b: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_c: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_d: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_tx: Option<Number>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "strict::opt_number"
    )]
    pub transform_ty: Option<Number>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickerInfo {
    #[serde(deserialize_with = "strict::list")]
    pub stickers: Box<[Sticker]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSource {
    #[serde(deserialize_with = "strict::boxed_str")]
    pub upload_source: Box<str>,
}

/// Names one of the 13 top-level metadata fields; the unit of comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldKind {
    AllowDownloadStatus,
    AltText,
    AudiencePolicy,
    ContentExpiration,
    DomainRestrictions,
    FoundMediaOrigin,
    GeoRestrictions,
    ManagementInfo,
    PreviewImage,
    SensitiveMediaWarning,
    SharedInfo,
    StickerInfo,
    UploadSource,
}

impl FieldKind {
    pub const ALL: [FieldKind; 13] = [
        FieldKind::AllowDownloadStatus,
        FieldKind::AltText,
        FieldKind::AudiencePolicy,
        FieldKind::ContentExpiration,
        FieldKind::DomainRestrictions,
        FieldKind::FoundMediaOrigin,
        FieldKind::GeoRestrictions,
        FieldKind::ManagementInfo,
        FieldKind::PreviewImage,
        FieldKind::SensitiveMediaWarning,
        FieldKind::SharedInfo,
        FieldKind::StickerInfo,
        FieldKind::UploadSource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FieldKind::AllowDownloadStatus => "allow_download_status",
            FieldKind::AltText => "alt_text",
            FieldKind::AudiencePolicy => "audience_policy",
            FieldKind::ContentExpiration => "content_expiration",
            FieldKind::DomainRestrictions => "domain_restrictions",
            FieldKind::FoundMediaOrigin => "found_media_origin",
            FieldKind::GeoRestrictions => "geo_restrictions",
            FieldKind::ManagementInfo => "management_info",
            FieldKind::PreviewImage => "preview_image",
            FieldKind::SensitiveMediaWarning => "sensitive_media_warning",
            FieldKind::SharedInfo => "shared_info",
            FieldKind::StickerInfo => "sticker_info",
            FieldKind::UploadSource => "upload_source",
        }
    }

    pub fn from_name(name: &str) -> Option<FieldKind> {
        FieldKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for FieldKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FieldKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        FieldKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metadata field `{name}`")))
    }
}

/// The value of one top-level metadata field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    AllowDownloadStatus(AllowDownloadStatus),
    AltText(AltText),
    AudiencePolicy(Box<AudiencePolicy>),
    ContentExpiration(ContentExpiration),
    DomainRestrictions(DomainRestrictions),
    FoundMediaOrigin(Box<FoundMediaOrigin>),
    GeoRestrictions(Box<GeoRestrictions>),
    ManagementInfo(ManagementInfo),
    PreviewImage(Box<PreviewImage>),
    SensitiveMediaWarning(SensitiveMediaWarning),
    SharedInfo(SharedInfo),
    StickerInfo(StickerInfo),
    UploadSource(UploadSource),
}

impl FieldValue {
    pub fn kind(&self) -> FieldKind {
        match self {
            FieldValue::AllowDownloadStatus(_) => FieldKind::AllowDownloadStatus,
            FieldValue::AltText(_) => FieldKind::AltText,
            FieldValue::AudiencePolicy(_) => FieldKind::AudiencePolicy,
            FieldValue::ContentExpiration(_) => FieldKind::ContentExpiration,
            FieldValue::DomainRestrictions(_) => FieldKind::DomainRestrictions,
            FieldValue::FoundMediaOrigin(_) => FieldKind::FoundMediaOrigin,
            FieldValue::GeoRestrictions(_) => FieldKind::GeoRestrictions,
            FieldValue::ManagementInfo(_) => FieldKind::ManagementInfo,
            FieldValue::PreviewImage(_) => FieldKind::PreviewImage,
            FieldValue::SensitiveMediaWarning(_) => FieldKind::SensitiveMediaWarning,
            FieldValue::SharedInfo(_) => FieldKind::SharedInfo,
            FieldValue::StickerInfo(_) => FieldKind::StickerInfo,
            FieldValue::UploadSource(_) => FieldKind::UploadSource,
        }
    }

    /// Types a JSON value as the given field.
    pub fn from_json(
        kind: FieldKind,
        v: serde_json::Value,
    ) -> Result<FieldValue, serde_json::Error> {
        serde::de::DeserializeSeed::deserialize(kind, v)
    }
}

/// A field kind deserializes the value of that field, from any format.
impl<'de> serde::de::DeserializeSeed<'de> for FieldKind {
    type Value = FieldValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FieldValue, D::Error> {
        Ok(match self {
            FieldKind::AllowDownloadStatus => FieldValue::AllowDownloadStatus(strict::mapping(d)?),
            FieldKind::AltText => FieldValue::AltText(strict::mapping(d)?),
            FieldKind::AudiencePolicy => FieldValue::AudiencePolicy(strict::mapping(d)?),
            FieldKind::ContentExpiration => FieldValue::ContentExpiration(strict::mapping(d)?),
            FieldKind::DomainRestrictions => FieldValue::DomainRestrictions(strict::mapping(d)?),
            FieldKind::FoundMediaOrigin => FieldValue::FoundMediaOrigin(strict::mapping(d)?),
            FieldKind::GeoRestrictions => FieldValue::GeoRestrictions(strict::mapping(d)?),
            FieldKind::ManagementInfo => FieldValue::ManagementInfo(strict::mapping(d)?),
            FieldKind::PreviewImage => FieldValue::PreviewImage(strict::mapping(d)?),
            FieldKind::SensitiveMediaWarning => {
                FieldValue::SensitiveMediaWarning(strict::mapping(d)?)
            }
            FieldKind::SharedInfo => FieldValue::SharedInfo(strict::mapping(d)?),
            FieldKind::StickerInfo => FieldValue::StickerInfo(strict::mapping(d)?),
            FieldKind::UploadSource => FieldValue::UploadSource(strict::mapping(d)?),
        })
    }
}

/// A media's metadata: the declared (or recorded) top-level fields, sorted
/// by kind, one value per kind. A slice rather than a map: most media
/// declare one to three fields, and a map node would cost ten times the
/// memory across 100,000 media. A boxed slice, not a vector: no spare
/// capacity, and no capacity word (8 bytes in every declared media, and
/// twice in every change).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata(Box<[FieldValue]>);

impl Metadata {
    pub fn get(&self, kind: FieldKind) -> Option<&FieldValue> {
        self.0.iter().find(|v| v.kind() == kind)
    }

    /// Sets a field, replacing any value of the same kind.
    pub fn insert(&mut self, value: FieldValue) {
        let mut fields = std::mem::take(&mut self.0).into_vec();
        insert_sorted(&mut fields, value);
        self.0 = fields.into_boxed_slice();
    }

    /// Adds each of `defaults`' fields this metadata does not set.
    pub fn fill_from(&mut self, defaults: &Metadata) {
        if defaults.kinds().all(|kind| self.get(kind).is_some()) {
            return;
        }
        let mut fields = std::mem::take(&mut self.0).into_vec();
        for v in defaults.values() {
            if !fields.iter().any(|f| f.kind() == v.kind()) {
                insert_sorted(&mut fields, v.clone());
            }
        }
        self.0 = fields.into_boxed_slice();
    }

    /// These fields but those `dropped` names, with `over`'s on top (its
    /// value wins for a kind both hold): built at once, not a field at a
    /// time.
    #[must_use]
    pub fn overlaid(&self, dropped: impl Fn(FieldKind) -> bool, over: &Metadata) -> Metadata {
        self.values()
            .filter(|v| !dropped(v.kind()))
            .chain(over.values())
            .cloned()
            .collect()
    }

    pub fn kinds(&self) -> impl Iterator<Item = FieldKind> + '_ {
        self.0.iter().map(FieldValue::kind)
    }

    pub fn values(&self) -> impl Iterator<Item = &FieldValue> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The subset of these fields named by `kinds`.
    pub fn select(&self, kinds: FieldSet) -> Metadata {
        Metadata(
            self.0
                .iter()
                .filter(|v| kinds.contains(v.kind()))
                .cloned()
                .collect(),
        )
    }
}

/// Puts `value` in its kind's place, replacing a value of that kind.
fn insert_sorted(fields: &mut Vec<FieldValue>, value: FieldValue) {
    match fields.binary_search_by_key(&value.kind(), FieldValue::kind) {
        Ok(i) => fields[i] = value,
        Err(i) => fields.insert(i, value),
    }
}

impl FromIterator<FieldValue> for Metadata {
    fn from_iter<I: IntoIterator<Item = FieldValue>>(iter: I) -> Metadata {
        let mut fields = Vec::new();
        for v in iter {
            insert_sorted(&mut fields, v);
        }
        Metadata(fields.into_boxed_slice())
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for v in &self.0 {
            map.serialize_entry(v.kind().name(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of metadata fields")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Metadata, A::Error> {
                let mut out = Vec::new();
                while let Some(kind) = map.next_key::<FieldKind>()? {
                    if out.iter().any(|v: &FieldValue| v.kind() == kind) {
                        return Err(serde::de::Error::custom(format!("`{kind}` is given twice")));
                    }
                    insert_sorted(&mut out, map.next_value_seed(kind)?);
                }
                Ok(Metadata(out.into_boxed_slice()))
            }
        }
        // `deserialize_any`, not `deserialize_map`: serde_yaml would read an
        // empty value (`metadata:`) as an empty map; it is an error.
        d.deserialize_any(Fields)
    }
}

/// A media ID: 1 to 19 digits, as written (leading zeros kept). Held as a
/// digit count and a number, so it is small and copied without allocating
/// (100,000 of them are compared and copied on every plan). Ordered by
/// length then value, which is numeric order for IDs without leading zeros
/// and the byte order of the state's keys. Packed: an ID takes 9 bytes,
/// where an aligned `u64` pads it to 16 (two `u32` halves, to 12), and
/// every declared media, change, index slot and digest holds one (a
/// change is 64 bytes, not 72).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C, packed)]
pub struct MediaId {
    digits: u8,
    value: u64,
}

impl MediaId {
    /// `None` unless `s` is 1 to 19 ASCII digits.
    #[must_use]
    pub fn parse(s: &str) -> Option<MediaId> {
        if !(1..=19).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(MediaId {
            digits: s.len() as u8,
            value: s.parse().ok()?,
        })
    }

    fn value(self) -> u64 {
        self.value
    }

    /// The digits, written into `buf`.
    pub fn as_str<'b>(&self, buf: &'b mut [u8; 19]) -> &'b str {
        let mut v = self.value();
        let n = usize::from(self.digits);
        for slot in buf[..n].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        std::str::from_utf8(&buf[..n]).unwrap_or_default()
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(&mut [0; 19]))
    }
}

impl fmt::Debug for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaId({self})")
    }
}

impl Serialize for MediaId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str(&mut [0; 19]))
    }
}

impl<'de> Deserialize<'de> for MediaId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        MediaId::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a media ID")))
    }
}

/// The body of one `POST /2/media/metadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: MediaId,
    pub metadata: Metadata,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Number {
        Number(serde_json::from_str(s).unwrap())
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(num("1"), num("1.0"));
        assert_eq!(num("123456789012345678"), num("123456789012345678"));
        assert_ne!(num("123456789012345679"), num("123456789012345678"));
        assert_ne!(num("9007199254740993"), num("9007199254740992.0"));
        assert_ne!(num("1"), num("1.5"));
    }

    #[test]
    fn large_integers_round_trip_exactly() {
        let json = r#"{"sticker_info":{"stickers":[{"group_annotation_id":987654321098765432}]}}"#;
        let m: Metadata = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), json);
    }

    /// Every declared field of every media is one of these: the rare
    /// large values (restrictions, audiences, origins) are boxed, so the
    /// common ones (alt text, warnings) do not pay for them. It was 56
    /// bytes, 11 MB of a 100,000-media plan.
    #[test]
    fn a_field_value_is_three_words() {
        assert_eq!(std::mem::size_of::<FieldValue>(), 24);
    }

    /// Every declared media, every change (twice) and every record holds
    /// one: a vector's spare capacity word cost 8 bytes each, 24 MB of a
    /// 1,000,000-media plan.
    #[test]
    fn a_metadata_is_two_words() {
        assert_eq!(std::mem::size_of::<Metadata>(), 16);
    }

    /// Held by every declared media, change, index slot and digest: 16
    /// bytes with an aligned `u64` in it, 12 with two `u32` halves.
    #[test]
    fn a_media_id_is_nine_bytes_and_orders_by_length_then_value() {
        assert_eq!(std::mem::size_of::<MediaId>(), 9);
        let ids: Vec<MediaId> = [
            "9",
            "10",
            "0010",
            "4294967296",
            "4294967297",
            "9999999999999999999",
        ]
        .iter()
        .map(|s| MediaId::parse(s).unwrap())
        .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "9",
                "10",
                "0010",
                "4294967296",
                "4294967297",
                "9999999999999999999"
            ]
        );
    }

    #[test]
    fn unknown_inner_keys_are_refused() {
        let json = r#"{"alt_text":{"text":"a","extra":1}}"#;
        assert!(serde_json::from_str::<Metadata>(json).is_err());
    }
}

pub use strict::{
    list as strict_list, mapping as strict_mapping, opt_string as strict_opt_string,
    string as strict_string, strings as strict_strings,
};

/// Deserializers that take a value only in its own YAML/JSON type, as the
/// positioned manifest checker does: `serde_yaml` would otherwise turn
/// `text: 123` or `text: ~` into the strings "123" and "~", and a `~` given
/// for an optional field into "absent". Used by every reader of metadata,
/// so the fast manifest path accepts exactly what the careful one does.
mod strict {
    use std::fmt;

    use serde::de::{Deserializer, Error, Visitor};
    use serde::Deserialize;

    use super::Number;

    struct Str(String);

    impl<'de> Deserialize<'de> for Str {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Str, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Str;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<Str, E> {
                    Ok(Str(v.to_string()))
                }
                fn visit_string<E: Error>(self, v: String) -> Result<Str, E> {
                    Ok(Str(v))
                }
            }
            d.deserialize_any(V)
        }
    }

    struct Bool(bool);

    impl<'de> Deserialize<'de> for Bool {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bool, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Bool;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a boolean")
                }
                fn visit_bool<E: Error>(self, v: bool) -> Result<Bool, E> {
                    Ok(Bool(v))
                }
            }
            d.deserialize_any(V)
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Str::deserialize(d).map(|s| s.0)
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        string(d).map(Some)
    }

    pub fn boxed_str<'de, D: Deserializer<'de>>(d: D) -> Result<Box<str>, D::Error> {
        string(d).map(String::into_boxed_str)
    }

    /// A list of strings; as a boxed slice, with no spare capacity (a
    /// vector grown while reading keeps room for four).
    pub fn strings<'de, D: Deserializer<'de>, T: From<Vec<String>>>(d: D) -> Result<T, D::Error> {
        list::<D, Vec<Str>>(d).map(|v| T::from(v.into_iter().map(|s| s.0).collect()))
    }

    /// A structure: a mapping, never an empty value (`geo_restrictions:`
    /// is a missing value to the positioned path) and never a list, which
    /// serde's derived types would otherwise take field by field
    /// (`alt_text: [x]` as the alt text "x").
    pub fn mapping<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }

    /// A list, never an empty value (`whitelist:` is a missing value).
    pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }

    pub fn opt_strings<'de, D: Deserializer<'de>, T: From<Vec<String>>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        strings(d).map(Some)
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Bool::deserialize(d).map(|b| b.0)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        bool(d).map(Some)
    }

    /// A number, never `null` (a present field must hold a value).
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        Number::deserialize(d)
    }

    pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Number>, D::Error> {
        number(d).map(Some)
    }
}
