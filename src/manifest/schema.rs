//! The manifest schema: the document envelope and the API's request rules
//! (types, required inner fields, limits), checked over a positioned tree.
//! Checking also converts the tree to JSON, so values are typed once.

use crate::error::{Diagnostic, Location};
use crate::manifest::scalar::Scalar;
use crate::manifest::yaml::{Node, NodeKind, Pos};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

pub enum Shape {
    Bool,
    Str {
        max_chars: Option<usize>,
    },
    Number,
    Integer,
    /// Two ASCII letters.
    CountryCode,
    /// `^[0-9]{1,19}$`, as a string or a YAML integer (kept exact).
    MediaId,
    /// A string that must equal this value.
    Const(&'static str),
    Array(&'static Shape),
    Object(&'static [Prop]),
}

pub struct Prop {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    /// What X (or xmeta) does with the field: the editor's hover text.
    pub doc: &'static str,
    /// What the checks after the schema (`document.rs`) also refuse, said
    /// to editors so they flag it as `xmeta validate` does.
    pub hint: Hint,
}

/// A rule `document.rs` enforces beyond the shape, for the JSON Schema only.
#[derive(Clone, Copy)]
pub enum Hint {
    None,
    /// One of these strings (`type`).
    OneOf(&'static [&'static str]),
    /// Matches this pattern (`key`).
    Pattern(&'static str),
    /// A non-empty list of distinct alt-text rule IDs (`lint.ignore`).
    RuleIds,
    /// Not blank (`lint.reason`).
    NotBlank,
}

const fn opt(name: &'static str, doc: &'static str, shape: Shape) -> Prop {
    Prop {
        name,
        shape,
        required: false,
        doc,
        hint: Hint::None,
    }
}

const fn req(name: &'static str, doc: &'static str, shape: Shape) -> Prop {
    Prop {
        name,
        shape,
        required: true,
        doc,
        hint: Hint::None,
    }
}

impl Prop {
    const fn with(self, hint: Hint) -> Prop {
        Prop { hint, ..self }
    }
}

const STR: Shape = Shape::Str { max_chars: None };
const STRINGS: Shape = Shape::Array(&STR);
const COUNTRIES: Shape = Shape::Array(&Shape::CountryCode);
pub const ALT_TEXT_MAX_CHARS: usize = 1000;
/// The longest `lint.reason`.
pub const REASON_MAX_CHARS: usize = 500;

const TRANSFORM: &str = "One element of the sticker's 2D affine transform (a, b, c, d: scale, rotation and shear; tx, ty: translation), a number.";

const STICKER: &[Prop] = &[
    opt(
        "aspect_ratio",
        "The sticker's width divided by its height, a number.",
        Shape::Number,
    ),
    opt(
        "group_annotation_id",
        "The sticker's group annotation ID, an integer (kept exact beyond 2^53).",
        Shape::Integer,
    ),
    opt("id", "The sticker's ID.", STR),
    opt(
        "sticker_set_annotation_id",
        "The sticker set's annotation ID, an integer (kept exact beyond 2^53).",
        Shape::Integer,
    ),
    opt("transform_a", TRANSFORM, Shape::Number),
    opt("transform_b", TRANSFORM, Shape::Number),
    opt("transform_c", TRANSFORM, Shape::Number),
    opt("transform_d", TRANSFORM, Shape::Number),
    opt("transform_tx", TRANSFORM, Shape::Number),
    opt("transform_ty", TRANSFORM, Shape::Number),
];

/// The request body's `metadata` object: the 13 top-level fields.
pub const METADATA: &[Prop] = &[
    opt(
        "allow_download_status",
        "Whether X lets viewers download the media.",
        Shape::Object(&[opt(
            "allow_download",
            "true: viewers may download the media; false: they may not.",
            Shape::Bool,
        )]),
    ),
    opt(
        "alt_text",
        "The media's text description: what screen readers read and X shows under ALT. `xmeta lint` checks it against the alt-text rules.",
        Shape::Object(&[req(
            "text",
            "The alt text: at most 1000 characters (Unicode scalar values), sent as written.",
            Shape::Str {
                max_chars: Some(ALT_TEXT_MAX_CHARS),
            },
        )]),
    ),
    opt(
        "audience_policy",
        "Which subscribers may see the media.",
        Shape::Object(&[
            opt(
                "creator_subscriptions",
                "Creator subscription tiers whose subscribers may see the media (X's example: `Any`).",
                STRINGS,
            ),
            opt(
                "x_subscriptions",
                "X subscription tiers whose subscribers may see the media (X's example: `Any`).",
                STRINGS,
            ),
        ]),
    ),
    opt(
        "content_expiration",
        "When the media expires on X.",
        Shape::Object(&[req(
            "timestamp_sec",
            "The expiry time in Unix seconds (UTC). A time in the past is a warning.",
            Shape::Number,
        )]),
    ),
    opt(
        "domain_restrictions",
        "The web domains where the media may be shown.",
        Shape::Object(&[req("whitelist", "The allowed domains.", STRINGS)]),
    ),
    opt(
        "found_media_origin",
        "Where the media was found, such as a GIF provider.",
        Shape::Object(&[
            req("id", "The media's ID at its provider.", STR),
            req("provider", "The provider's name (X's example: `giphy`).", STR),
        ]),
    ),
    opt(
        "geo_restrictions",
        "The countries where X shows or hides the media.",
        Shape::Object(&[
            opt(
                "blacklisted_country_codes",
                "Countries where the media is hidden: two-letter codes such as `us`.",
                COUNTRIES,
            ),
            opt(
                "whitelisted_country_codes",
                "Countries where the media is shown: two-letter codes such as `us`.",
                COUNTRIES,
            ),
        ]),
    ),
    opt(
        "management_info",
        "X's management flag for the media.",
        Shape::Object(&[req("managed", "true: the media is managed.", Shape::Bool)]),
    ),
    opt(
        "preview_image",
        "The image X shows for the media before it plays.",
        Shape::Object(&[req(
            "media_key",
            "The preview image, a media on X.",
            Shape::Object(&[
                opt("media", "The preview image's media.", STR),
                opt(
                    "media_category",
                    "The preview image's media category (X's example: `PreviewImage`).",
                    STR,
                ),
            ]),
        )]),
    ),
    opt(
        "sensitive_media_warning",
        "The content warnings X shows over the media until a viewer chooses to see it.",
        Shape::Object(&[
            opt("adult_content", "true: warn of adult content.", Shape::Bool),
            opt("graphic_violence", "true: warn of graphic violence.", Shape::Bool),
            opt("other", "true: warn of other sensitive content.", Shape::Bool),
        ]),
    ),
    opt(
        "shared_info",
        "X's sharing flag for the media.",
        Shape::Object(&[req("shared", "true: the media is shared.", Shape::Bool)]),
    ),
    opt(
        "sticker_info",
        "Stickers placed on the media.",
        Shape::Object(&[req(
            "stickers",
            "The stickers, each with its placement.",
            Shape::Array(&Shape::Object(STICKER)),
        )]),
    ),
    opt(
        "upload_source",
        "How the media was uploaded.",
        Shape::Object(&[req(
            "upload_source",
            "The upload source (X's example: `gallery`).",
            STR,
        )]),
    ),
];

/// The media types `type` may name, in the order of their key prefixes.
pub const MEDIA_TYPES: &[&str] = &["photo", "gif", "video"];

/// A media key: a type prefix (3 photo, 7 video, 13 amplify video, 16
/// GIF), `_`, a media ID. `document.rs` also checks the ID is the entry's.
pub const MEDIA_KEY_PATTERN: &str = "^(3|7|13|16)_[1-9][0-9]{0,18}$";

/// One manifest document.
pub const DOCUMENT: Shape = Shape::Object(&[
    req(
        "apiVersion",
        "The manifest format: always `xmeta/v1`.",
        Shape::Const("xmeta/v1"),
    ),
    req(
        "kind",
        "What the document declares: always `MediaMetadata`.",
        Shape::Const("MediaMetadata"),
    ),
    opt(
        "defaults",
        "Values for every entry of THIS document (not other documents or files).",
        Shape::Object(&[opt(
            "metadata",
            "Top-level metadata fields applied to each entry of `media` that does not set them; an entry's field replaces the default one whole.",
            Shape::Object(METADATA),
        )]),
    ),
    req(
        "media",
        "The media this document declares; each entry is exactly one `POST /2/media/metadata` body, sent only when it differs from the last-applied state.",
        Shape::Array(&Shape::Object(&[
            req(
                "id",
                "The media's ID on X: 1 to 19 digits without a leading zero, as a string or an integer. Each ID may be declared once across all manifests.",
                Shape::MediaId,
            ),
            opt(
                "metadata",
                "Exactly the API's `metadata` object: the fields X attaches to the media. A field left out is not sent.",
                Shape::Object(METADATA),
            ),
            // Never sent: how to read the media back (`3_<id>`, or a type).
            opt(
                "key",
                "Never sent. The media key xmeta reads the media back with (drift): `3_<id>` photo, `16_<id>` GIF, `7_<id>` or `13_<id>` video, with this entry's ID. Give `key` or `type`.",
                STR,
            )
            .with(Hint::Pattern(MEDIA_KEY_PATTERN)),
            opt(
                "type",
                "Never sent. The media's type, from which xmeta derives its media key for reading it back: `photo`, `gif` or `video`.",
                STR,
            )
            .with(Hint::OneOf(MEDIA_TYPES)),
            // Never sent: an exemption from alt-text rules, with its reason.
            opt(
                "lint",
                "Never sent. An exemption of this media from alt-text rules, with its reason; `xmeta lint` shows it as a note.",
                Shape::Object(&[
                    req(
                        "ignore",
                        "The alt-text rules this media is exempt from: at least one, each once.",
                        STRINGS,
                    )
                    .with(Hint::RuleIds),
                    req(
                        "reason",
                        "Why the media is exempt: not blank, at most 500 characters.",
                        Shape::Str {
                            max_chars: Some(REASON_MAX_CHARS),
                        },
                    )
                    .with(Hint::NotBlank),
                ]),
            ),
        ])),
    ),
]);

/// Checks `node` against `shape`, pushing every problem found; returns the
/// JSON value when the node is valid.
pub struct Checker<'a> {
    pub file: &'a Arc<PathBuf>,
    pub diagnostics: &'a mut Vec<Diagnostic>,
    /// Errors past `MAX_ERRORS_PER_FILE`, counted but not kept: a list of
    /// 2,000,000 wrong items would otherwise hold 2,000,000 messages.
    pub dropped: &'a mut usize,
}

/// Errors kept per file; the rest are counted.
pub const MAX_ERRORS_PER_FILE: usize = 200;

impl Checker<'_> {
    fn at(&self, pos: Pos) -> Location {
        Location::new(self.file, pos.line, pos.column)
    }

    fn fail(&mut self, pos: Pos, message: String) -> Option<Value> {
        let location = self.at(pos);
        self.push(Diagnostic::error(location, message));
        None
    }

    /// Keeps a problem, up to `MAX_ERRORS_PER_FILE`; counts the rest.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        if self.diagnostics.len() < MAX_ERRORS_PER_FILE {
            self.diagnostics.push(diagnostic);
        } else {
            *self.dropped += 1;
        }
    }

    pub fn check(&mut self, node: &Node, shape: &Shape, path: &str) -> Option<Value> {
        let scalar = match &node.kind {
            NodeKind::Scalar { text, plain } => Some(Scalar::resolve(text, *plain)),
            _ => None,
        };
        match (shape, scalar) {
            (Shape::Object(props), _) => self.check_object(node, props, path),
            (Shape::Array(item), _) => {
                let NodeKind::Seq(items) = &node.kind else {
                    return self.mismatch(node, "a list", path);
                };
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item_node) in items.iter().enumerate() {
                    match self.check(item_node, item, &format!("{path}[{i}]")) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Value::Array(out))
            }
            (Shape::Bool, Some(Scalar::Bool(b))) => Some(Value::Bool(b)),
            (Shape::Number, Some(Scalar::Int(n) | Scalar::Float(n)))
            | (Shape::Integer, Some(Scalar::Int(n))) => Some(Value::Number(n)),
            (Shape::Str { max_chars }, Some(Scalar::Str(s))) => {
                let chars = s.chars().count();
                match max_chars {
                    Some(max) if chars > *max => self.fail(
                        node.pos,
                        format!("`{path}` is {chars} characters long; the limit is {max}"),
                    ),
                    _ => Some(Value::String(s)),
                }
            }
            (Shape::CountryCode, Some(Scalar::Str(s))) => {
                if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Some(Value::String(s))
                } else {
                    self.fail(
                        node.pos,
                        format!("`{s}` in `{path}` is not a country code: use two ASCII letters, such as `us`"),
                    )
                }
            }
            (Shape::Const(want), Some(Scalar::Str(s))) if s == *want => Some(Value::String(s)),
            (Shape::Const(want), _) => self.fail(
                node.pos,
                format!("`{path}` must be `{want}`, found {}", describe(node)),
            ),
            (Shape::MediaId, Some(scalar)) => {
                // An unquoted ID is taken as written when it is all digits
                // (`0001` stays `0001`), as the fast path reads it; `0x10`
                // or `+42` are refused rather than converted.
                let text = match (scalar, node.as_str()) {
                    (Scalar::Str(s), _) => s,
                    (Scalar::Int(_), Some(raw)) if raw.bytes().all(|b| b.is_ascii_digit()) => {
                        raw.to_string()
                    }
                    _ => String::new(),
                };
                if is_media_id(&text) {
                    Some(Value::String(text))
                } else {
                    self.fail(
                        node.pos,
                        format!("`{path}` must be 1 to 19 digits without leading zeros (a media ID such as \"1146654567674912769\"), found {}", describe(node)),
                    )
                }
            }
            (Shape::Integer | Shape::Number, Some(Scalar::TooBig)) => self.fail(
                node.pos,
                format!("`{path}` is an integer too large to send exactly"),
            ),
            (Shape::Number, Some(Scalar::NotFinite)) => self.fail(
                node.pos,
                format!("`{path}` must be a finite number; JSON has no infinity or NaN"),
            ),
            (shape, _) => self.mismatch(node, shape.expected(), path),
        }
    }

    fn mismatch(&mut self, node: &Node, expected: &str, path: &str) -> Option<Value> {
        self.fail(
            node.pos,
            format!("`{path}` must be {expected}, found {}", describe(node)),
        )
    }

    fn check_object(&mut self, node: &Node, props: &[Prop], path: &str) -> Option<Value> {
        let NodeKind::Map(entries) = &node.kind else {
            return self.mismatch(node, "a mapping", path);
        };
        let mut out = serde_json::Map::new();
        let mut ok = true;
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                ok = false;
                self.fail(key.pos, format!("keys in `{path}` must be strings"));
                continue;
            };
            let child = join(path, name);
            let Some(prop) = props.iter().find(|p| p.name == name) else {
                ok = false;
                let location = self.at(key.pos);
                let help = suggest(name, props.iter().map(|p| p.name))
                    .map(|s| format!("did you mean `{s}`?"));
                let where_ = if path.is_empty() {
                    "the document".to_string()
                } else {
                    format!("`{path}`")
                };
                self.push(
                    Diagnostic::error(location, format!("unknown field `{name}` in {where_}"))
                        .with_help(help),
                );
                continue;
            };
            if out.contains_key(name) {
                ok = false;
                self.fail(key.pos, format!("`{child}` is given twice"));
                continue;
            }
            match self.check(value, &prop.shape, &child) {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None => ok = false,
            }
        }
        for prop in props.iter().filter(|p| p.required) {
            if !entries.iter().any(|(k, _)| k.as_str() == Some(prop.name)) {
                ok = false;
                let what = if path.is_empty() {
                    "the document".to_string()
                } else {
                    format!("`{path}`")
                };
                self.fail(
                    node.pos,
                    format!("missing required field `{}` in {what}", prop.name),
                );
            }
        }
        ok.then_some(Value::Object(out))
    }
}

/// What can be read of a node that failed `check` (whose problems are
/// reported already, so nothing more is said): for a mapping its valid
/// fields, for a list its items (an invalid one as null, so items keep
/// their places), `depth` containers down; below that only whole valid
/// values. The checks after the schema (`key`, `type`, `lint`, duplicate
/// IDs) then report their problems in the same run.
pub fn salvage(file: &Arc<PathBuf>, node: &Node, shape: &Shape, depth: usize) -> Option<Value> {
    let mut quiet = Vec::new();
    let mut dropped = 0;
    let mut checker = Checker {
        file,
        diagnostics: &mut quiet,
        dropped: &mut dropped,
    };
    salvage_parts(&mut checker, node, shape, depth)
}

fn salvage_parts(checker: &mut Checker, node: &Node, shape: &Shape, depth: usize) -> Option<Value> {
    let part = |checker: &mut Checker, node: &Node, shape: &Shape| {
        checker.check(node, shape, "").or_else(|| {
            (depth > 1)
                .then(|| salvage_parts(checker, node, shape, depth - 1))
                .flatten()
        })
    };
    match (shape, &node.kind) {
        (_, _) if depth == 0 => None,
        (Shape::Object(props), NodeKind::Map(entries)) => {
            let mut out = serde_json::Map::new();
            for (key, value) in entries {
                let prop = key
                    .as_str()
                    .and_then(|k| props.iter().find(|p| p.name == k));
                // The first of a field given twice, as a reader would guess.
                if let Some(prop) = prop.filter(|p| !out.contains_key(p.name)) {
                    if let Some(v) = part(checker, value, &prop.shape) {
                        out.insert(prop.name.to_string(), v);
                    }
                }
            }
            Some(Value::Object(out))
        }
        (Shape::Array(item), NodeKind::Seq(items)) => Some(Value::Array(
            items
                .iter()
                .map(|i| part(checker, i, item).unwrap_or(Value::Null))
                .collect(),
        )),
        _ => None,
    }
}

impl Shape {
    fn expected(&self) -> &'static str {
        match self {
            Shape::Bool => "a boolean (true or false)",
            Shape::Str { .. } | Shape::Const(_) => "a string",
            Shape::Number => "a number",
            Shape::Integer => "an integer",
            Shape::CountryCode => "a two-letter country code",
            Shape::MediaId => "a media ID",
            Shape::Array(_) => "a list",
            Shape::Object(_) => "a mapping",
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// 1 to 19 digits, without leading zeros: `006` and `6` would be two
/// entries in the state but one media on X.
pub fn is_media_id(s: &str) -> bool {
    crate::model::MediaId::parse(s).is_some() && !has_leading_zero(s)
}

pub fn has_leading_zero(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Seq(_) => "a list".into(),
        NodeKind::Map(_) => "a mapping".into(),
        NodeKind::Scalar { text, plain } => match Scalar::resolve(text, *plain) {
            Scalar::Null => "nothing (null)".into(),
            Scalar::Bool(b) => format!("the boolean `{b}`"),
            Scalar::Int(_) | Scalar::TooBig => format!("the integer `{text}`"),
            Scalar::Float(_) | Scalar::NotFinite => format!("the number `{text}`"),
            Scalar::Str(s) => {
                let short: String = s.chars().take(40).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                format!("the string \"{short}{more}\"")
            }
        },
    }
}

/// The known name closest to `name`, if it is close enough to be a typo.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let squash = |s: &str| s.to_lowercase().replace(['_', '-'], "");
    let wanted = squash(name);
    let known: Vec<&'a str> = known.collect();
    let close = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&wanted, &squash(k)), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    // A shortened name (`adult` for `adult_content`), when only one fits.
    close.or_else(|| {
        let mut starts = known
            .iter()
            .filter(|k| wanted.len() >= 3 && squash(k).starts_with(&wanted));
        match (starts.next(), starts.next()) {
            (Some(k), None) => Some(*k),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldKind;

    #[test]
    fn metadata_schema_names_every_field_in_order() {
        let names: Vec<_> = METADATA.iter().map(|p| p.name).collect();
        let kinds: Vec<_> = FieldKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, kinds);
    }

    #[test]
    fn suggestions_catch_typos_and_case() {
        let known = || METADATA.iter().map(|p| p.name);
        assert_eq!(suggest("alt_txt", known()), Some("alt_text"));
        assert_eq!(suggest("altText", known()), Some("alt_text"));
        assert_eq!(suggest("colour", known()), None);
        let warning = || ["adult_content", "graphic_violence", "other"].into_iter();
        assert_eq!(suggest("adult", warning()), Some("adult_content"));
        assert_eq!(suggest("a", warning()), None);
    }
}
