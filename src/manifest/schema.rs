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
}

const fn opt(name: &'static str, shape: Shape) -> Prop {
    Prop {
        name,
        shape,
        required: false,
    }
}

const fn req(name: &'static str, shape: Shape) -> Prop {
    Prop {
        name,
        shape,
        required: true,
    }
}

const STR: Shape = Shape::Str { max_chars: None };
const STRINGS: Shape = Shape::Array(&STR);
const COUNTRIES: Shape = Shape::Array(&Shape::CountryCode);
pub const ALT_TEXT_MAX_CHARS: usize = 1000;

const STICKER: &[Prop] = &[
    opt("aspect_ratio", Shape::Number),
    opt("group_annotation_id", Shape::Integer),
    opt("id", STR),
    opt("sticker_set_annotation_id", Shape::Integer),
    opt("transform_a", Shape::Number),
    opt("transform_b", Shape::Number),
    opt("transform_c", Shape::Number),
    opt("transform_d", Shape::Number),
    opt("transform_tx", Shape::Number),
    opt("transform_ty", Shape::Number),
];

/// The request body's `metadata` object: the 13 top-level fields.
pub const METADATA: &[Prop] = &[
    opt(
        "allow_download_status",
        Shape::Object(&[opt("allow_download", Shape::Bool)]),
    ),
    opt(
        "alt_text",
        Shape::Object(&[req(
            "text",
            Shape::Str {
                max_chars: Some(ALT_TEXT_MAX_CHARS),
            },
        )]),
    ),
    opt(
        "audience_policy",
        Shape::Object(&[
            opt("creator_subscriptions", STRINGS),
            opt("x_subscriptions", STRINGS),
        ]),
    ),
    opt(
        "content_expiration",
        Shape::Object(&[req("timestamp_sec", Shape::Number)]),
    ),
    opt(
        "domain_restrictions",
        Shape::Object(&[req("whitelist", STRINGS)]),
    ),
    opt(
        "found_media_origin",
        Shape::Object(&[req("id", STR), req("provider", STR)]),
    ),
    opt(
        "geo_restrictions",
        Shape::Object(&[
            opt("blacklisted_country_codes", COUNTRIES),
            opt("whitelisted_country_codes", COUNTRIES),
        ]),
    ),
    opt(
        "management_info",
        Shape::Object(&[req("managed", Shape::Bool)]),
    ),
    opt(
        "preview_image",
        Shape::Object(&[req(
            "media_key",
            Shape::Object(&[opt("media", STR), opt("media_category", STR)]),
        )]),
    ),
    opt(
        "sensitive_media_warning",
        Shape::Object(&[
            opt("adult_content", Shape::Bool),
            opt("graphic_violence", Shape::Bool),
            opt("other", Shape::Bool),
        ]),
    ),
    opt("shared_info", Shape::Object(&[req("shared", Shape::Bool)])),
    opt(
        "sticker_info",
        Shape::Object(&[req("stickers", Shape::Array(&Shape::Object(STICKER)))]),
    ),
    opt("upload_source", Shape::Object(&[req("upload_source", STR)])),
];

/// One manifest document.
pub const DOCUMENT: Shape = Shape::Object(&[
    req("apiVersion", Shape::Const("xmeta/v1")),
    req("kind", Shape::Const("MediaMetadata")),
    opt(
        "defaults",
        Shape::Object(&[opt("metadata", Shape::Object(METADATA))]),
    ),
    req(
        "media",
        Shape::Array(&Shape::Object(&[
            req("id", Shape::MediaId),
            opt("metadata", Shape::Object(METADATA)),
            // Never sent: how to read the media back (`3_<id>`, or a type).
            opt("key", STR),
            opt("type", STR),
            // Never sent: an exemption from alt-text rules, with its reason.
            opt(
                "lint",
                Shape::Object(&[
                    req("ignore", STRINGS),
                    req(
                        "reason",
                        Shape::Str {
                            max_chars: Some(500),
                        },
                    ),
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
