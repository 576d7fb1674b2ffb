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
    // The text between escapes is copied a run at a time.
    let mut run = 0;
    for (at, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if crate::untrusted::is_unsafe_char(c) => "",
            _ => continue,
        };
        out.push_str(&s[run..at]);
        if escape.is_empty() {
            crate::untrusted::push_escape(out, c);
        } else {
            out.push_str(escape);
        }
        run = at + c.len_utf8();
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Whether `s` written plain reads back as this same string.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // What could read as a number starts with one of these (Rust's float
    // syntax: digits, a sign, a point, `inf`, `infinity`, `nan`); most
    // text does not, and is never parsed.
    let may_be_number = matches!(first, '0'..='9' | '+' | '-' | '.' | 'i' | 'I' | 'n' | 'N');
    let looks_typed = matches!(
        s,
        "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
    ) || (may_be_number && s.parse::<f64>().is_ok())
        || is_radix_int(s)
        || s.starts_with('.');
    !looks_typed
        && !"-?:,[]{}#&*!|>'\"%@` ".contains(first)
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars().all(|c| !crate::untrusted::is_unsafe_char(c))
}

/// Whether `s` starts as an integer in another base (`0x`, `0o`, `0b`),
/// signed or not, which a YAML 1.1 reader (`serde_yaml`) takes as a number.
fn is_radix_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    ["0x", "0o", "0b"]
        .iter()
        .any(|base| digits.starts_with(base))
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

    /// Text that a YAML reader would take for something else, or that a
    /// terminal would act on, is quoted and escaped; the rest is plain.
    #[test]
    fn strings_are_quoted_only_where_they_must_be() {
        let shown = |text: &str| {
            let mut out = String::new();
            write_string(&mut out, text);
            out
        };
        for plain in ["cat", "Infra", "nano", "10 cats", "x: y"] {
            let expected = if plain.contains(": ") {
                format!("\"{plain}\"")
            } else {
                plain.to_owned()
            };
            assert_eq!(shown(plain), expected);
        }
        for typed in [
            "1",
            "-2.5",
            "+3",
            ".5",
            "1e5",
            "inf",
            "Infinity",
            "-Infinity",
            "nan",
            "NaN",
            "0x1",
            "0b1",
            "+0x1",
            "-0o7",
            "+0b1",
            "true",
            "~",
            "",
        ] {
            assert_eq!(shown(typed), format!("\"{typed}\""));
        }
        assert_eq!(
            shown("a \"b\" \\ c\n\u{202e}d\te"),
            "\"a \\\"b\\\" \\\\ c\\n\\u202ed\\te\""
        );
    }

    proptest! {
        /// Whatever the text, the YAML reads back as the same metadata.
        #[test]
        fn round_trips_through_a_yaml_parser(text in prop_oneof![
            "\\PC{0,12}",
            // What may read as a number, a bool or null unless quoted.
            "[-+.0-9eExXoObBinfatyINFATYulsr_~]{1,9}",
            // Escapes and unsafe characters between runs of plain text.
            "[a-z \"\\\\\n\r\t\u{85}\u{202e}\u{feff}]{0,12}",
        ], codes in proptest::collection::vec("[a-z]{2}", 0..3)) {
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
