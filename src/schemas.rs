//! JSON Schemas of xmeta's file formats (`xmeta schema manifest|plan|config`),
//! for editors (yaml-language-server) and CI checks. The manifest schema
//! is generated from the same field table validation uses
//! (`manifest::schema::DOCUMENT`), so the two cannot disagree.

use serde_json::{json, Map, Value};

use crate::manifest::schema::{Hint, Prop, Shape, DOCUMENT, METADATA};
use crate::model::Rule;

const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// A media ID: 1 to 19 digits, no leading zero.
const MEDIA_ID_PATTERN: &str = "^[1-9][0-9]{0,18}$";

fn shape(s: &Shape) -> Value {
    match s {
        Shape::Bool => json!({"type": "boolean"}),
        Shape::Str { max_chars: None } => json!({"type": "string"}),
        Shape::Str {
            max_chars: Some(max),
        } => json!({"type": "string", "maxLength": max}),
        Shape::Number => json!({"type": "number"}),
        Shape::Integer => json!({"type": "integer"}),
        Shape::CountryCode => json!({"type": "string", "pattern": "^[A-Za-z]{2}$"}),
        Shape::MediaId => json!({"oneOf": [
            {"type": "string", "pattern": MEDIA_ID_PATTERN},
            {"type": "integer", "minimum": 1, "maximum": 9_999_999_999_999_999_999u64},
        ]}),
        Shape::Const(value) => json!({"const": value}),
        Shape::Array(item) => json!({"type": "array", "items": shape(item)}),
        Shape::Object(props) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for p in *props {
                properties.insert(p.name.into(), property(p));
                if p.required {
                    required.push(p.name);
                }
            }
            let mut object = json!({
                "type": "object",
                "additionalProperties": false,
                "properties": properties,
            });
            if !required.is_empty() {
                object["required"] = json!(required);
            }
            object
        }
    }
}

/// A property's schema: its shape, what the later checks refuse (so an
/// editor flags what `xmeta validate` does), and its description (hover).
fn property(p: &Prop) -> Value {
    let mut schema = shape(&p.shape);
    match p.hint {
        Hint::None => {}
        Hint::OneOf(values) => schema["enum"] = json!(values),
        Hint::Pattern(pattern) => schema["pattern"] = json!(pattern),
        Hint::RuleIds => {
            schema["items"]["enum"] = json!(Rule::ALL.iter().map(|r| r.id()).collect::<Vec<_>>());
            schema["minItems"] = json!(1);
            schema["uniqueItems"] = json!(true);
        }
        Hint::NotBlank => schema["pattern"] = json!("\\S"),
    }
    schema["description"] = json!(p.doc);
    schema
}

/// The schema of a manifest file (each YAML document in it).
pub fn manifest() -> Value {
    let mut schema = shape(&DOCUMENT);
    schema["$schema"] = json!(DRAFT);
    schema["title"] = json!("xmeta manifest (apiVersion xmeta/v1, kind MediaMetadata)");
    schema["description"] = json!(
        "Wanted X media metadata: `xmeta plan` diffs it against the last-applied state and `xmeta apply` sends only what changed."
    );
    schema
}

/// The schema of a JSON plan (`plan --format json`, and `plan --out`,
/// which adds its checksum first).
pub fn plan() -> Value {
    let id = json!({"type": "string", "pattern": MEDIA_ID_PATTERN});
    let field = json!({"enum": METADATA.iter().map(|p| p.name).collect::<Vec<_>>()});
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "$schema": DRAFT,
        "title": "xmeta plan (plan --format json, plan --out)",
        "type": "object",
        "additionalProperties": false,
        "required": ["format_version", "lineage", "serial", "prune", "changes", "warnings", "summary"],
        "definitions": {"metadata": shape(&Shape::Object(METADATA))},
        "properties": {
            "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "format_version": {"const": crate::saved_plan::PLAN_FORMAT_VERSION},
            "lineage": {"type": "string"},
            "serial": count,
            "prune": {"type": "boolean"},
            "changes": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id", "action", "fields", "before", "after", "request"],
                "properties": {
                    "id": id,
                    "action": {"enum": ["create", "update", "forget"]},
                    "fields": {"type": "array", "items": field},
                    "untracked": {"type": "array", "items": field},
                    "before": {"$ref": "#/definitions/metadata"},
                    "after": {"$ref": "#/definitions/metadata"},
                    "request": {"oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["id", "metadata"],
                            "properties": {"id": id, "metadata": {"$ref": "#/definitions/metadata"}},
                        },
                    ]},
                },
            }},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "summary": {
                "type": "object",
                "additionalProperties": false,
                "required": ["create", "update", "forget", "unchanged", "requests"],
                "properties": {
                    "create": count, "update": count, "forget": count,
                    "unchanged": count, "requests": count,
                    "estimated_cost_usd": {"type": "number", "minimum": 0},
                    "minimum_duration_secs": count,
                },
            },
            "alt_text_coverage": {
                "type": "object",
                "additionalProperties": false,
                "required": ["with_alt_text", "media"],
                "properties": {"with_alt_text": count, "media": count},
            },
            "drift": {"type": "object"},
            "revision": {"type": "string"},
            "dirty": {"type": "boolean"},
        },
    })
}
