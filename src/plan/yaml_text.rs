//! The YAML that plans and `state show` print for metadata: block style,
//! keys in the API's order, strings plain when that reads back as the same
//! string and double-quoted (JSON escapes, valid YAML) otherwise. Written
//! directly because a plan of 100,000 media spent most of its rendering
//! time in a general-purpose emitter.

use std::fmt::Write;

use serde_json::Value;

use crate::model::Metadata;

/// The YAML of some fields, or nothing at all when there are none.
pub fn metadata_yaml(metadata: &Metadata) -> String {
    let mut out = String::new();
    for v in metadata.values() {
        let value = serde_json::to_value(v).unwrap_or(Value::Null);
        write_entry(&mut out, 0, v.kind().name(), &value);
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_entry(out: &mut String, depth: usize, key: &str, value: &Value) {
    indent(out, depth);
    out.push_str(key);
    out.push(':');
    // Epoch seconds mean little to a reviewer: the date beside them, as a
    // comment, so the YAML still reads back as the same value.
    let date = (key == "timestamp_sec")
        .then(|| value.as_u64().and_then(iso_date))
        .flatten();
    match date {
        Some(date) => {
            let _ = writeln!(out, " {value}  # {date}");
        }
        None => write_value(out, depth, value),
    }
}

/// `4102444800` as `2100-01-01T00:00:00Z`, for years up to 9999.
fn iso_date(secs: u64) -> Option<String> {
    const YEAR_9999_END: u64 = 253_402_300_799;
    (secs <= YEAR_9999_END).then(|| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        humantime::format_rfc3339_seconds(at).to_string()
    })
}

/// Writes a value that follows `key:` (or `- `) on the current line.
fn write_value(out: &mut String, depth: usize, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            for (k, v) in map {
                write_entry(out, depth + 2, k, v);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                indent(out, depth + 2);
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key shares the dash's line.
                        for (i, (k, v)) in map.iter().enumerate() {
                            if i == 0 {
                                out.push(' ');
                                out.push_str(k);
                                out.push(':');
                            } else {
                                indent(out, depth + 4);
                                out.push_str(k);
                                out.push(':');
                            }
                            write_value(out, depth + 4, v);
                        }
                    }
                    other => write_value(out, depth + 2, other),
                }
            }
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        Value::String(s) => {
            out.push(' ');
            write_string(out, s);
            out.push('\n');
        }
        other => {
            let _ = writeln!(out, " {other}");
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    // JSON's escapes, which YAML's double quotes read the same, plus an
    // escape for every character that could disturb a terminal (bidi
    // overrides, C1 controls), which JSON would leave raw.
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if crate::untrusted::is_unsafe_char(c) => crate::untrusted::push_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` written plain reads back as this same string.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let looks_typed = matches!(
        s,
        "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.starts_with('.');
    !looks_typed
        && !"-?:,[]{}#&*!|>'\"%@` ".contains(first)
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(|c| !crate::untrusted::is_unsafe_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metadata(json: Value) -> Metadata {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn reads_like_yaml() {
        let m = metadata(serde_json::json!({
            "alt_text": {"text": "A dancing cat"},
            "geo_restrictions": {"whitelisted_country_codes": ["us", "ca"]},
            "sticker_info": {"stickers": [{"id": "7", "transform_a": 1.5}]},
            "domain_restrictions": {"whitelist": []},
        }));
        assert_eq!(
            metadata_yaml(&m),
            "alt_text:\n  text: A dancing cat\ndomain_restrictions:\n  whitelist: []\ngeo_restrictions:\n  whitelisted_country_codes:\n  - us\n  - ca\nsticker_info:\n  stickers:\n  - id: \"7\"\n    transform_a: 1.5\n"
                .replace("  - us", "    - us")
                .replace("  - ca", "    - ca")
                .replace("  - id", "    - id")
                .replace("    transform_a", "      transform_a")
        );
    }

    proptest! {
        /// Whatever the text, the YAML reads back as the same metadata.
        #[test]
        fn round_trips_through_a_yaml_parser(text in "\\PC{0,12}", codes in proptest::collection::vec("[a-z]{2}", 0..3)) {
            let m = metadata(serde_json::json!({
                "alt_text": {"text": text},
                "geo_restrictions": {"blacklisted_country_codes": codes},
                "sticker_info": {"stickers": [{"group_annotation_id": 123_456_789_012_345_678u64, "id": text}]},
            }));
            let yaml = metadata_yaml(&m);
            let back: Metadata = serde_yaml::from_str(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
            prop_assert_eq!(back, m);
        }
    }
}
