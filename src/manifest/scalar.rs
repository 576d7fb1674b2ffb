//! How a plain YAML scalar resolves to null, a boolean, a number or a
//! string: the YAML 1.2 core schema exactly as `serde_yaml` 0.9 (the fast
//! path) resolves it, so both manifest paths read every value the same.

use std::borrow::Cow;
use std::num::ParseIntError;

/// A resolved scalar.
pub enum Scalar {
    Null,
    Bool(bool),
    Int(serde_json::Number),
    Float(serde_json::Number),
    /// An integer beyond 64 bits: refused rather than rounded.
    TooBig,
    /// `.inf` or `.nan`: JSON has no such number.
    NotFinite,
    Str(String),
}

impl Scalar {
    pub fn resolve(text: &str, plain: bool) -> Scalar {
        Scalar::resolve_owned(Cow::Borrowed(text), plain)
    }

    /// As `resolve`, keeping an owned text as the string without a copy
    /// (the fast path owns each scalar's text).
    pub fn resolve_owned(text: Cow<'_, str>, plain: bool) -> Scalar {
        if !plain {
            return Scalar::Str(text.into_owned());
        }
        if is_null(&text) {
            return Scalar::Null;
        }
        match &*text {
            "true" | "True" | "TRUE" => return Scalar::Bool(true),
            "false" | "False" | "FALSE" => return Scalar::Bool(false),
            _ => {}
        }
        if let Some(n) = parse_unsigned(&text, u64::from_str_radix) {
            return Scalar::Int(n.into());
        }
        if let Some(n) = parse_negative(&text, i64::from_str_radix) {
            return Scalar::Int(n.into());
        }
        if parse_unsigned(&text, u128::from_str_radix).is_some()
            || parse_negative(&text, i128::from_str_radix).is_some()
        {
            return Scalar::TooBig;
        }
        if !digits_but_not_number(&text) {
            if let Some(f) = parse_f64(&text) {
                return serde_json::Number::from_f64(f).map_or(Scalar::NotFinite, Scalar::Float);
            }
        }
        Scalar::Str(text.into_owned())
    }
}

/// Whether a plain scalar is null.
pub fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_unsigned<T>(text: &str, radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unsigned.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(n) = radix(rest, base) {
                return Some(n);
            }
        }
    }
    if unsigned.starts_with(['+', '-']) || digits_but_not_number(text) {
        return None;
    }
    radix(unsigned, 10).ok()
}

fn parse_negative<T>(text: &str, radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
    for (prefix, base) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = text.strip_prefix(prefix) {
            if let Ok(n) = radix(&format!("-{rest}"), base) {
                return Some(n);
            }
        }
    }
    if digits_but_not_number(text) {
        return None;
    }
    radix(text, 10).ok()
}

fn parse_f64(text: &str) -> Option<f64> {
    let unsigned = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => text,
    };
    if matches!(unsigned, ".inf" | ".Inf" | ".INF")
        || matches!(text, "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN")
    {
        return Some(f64::INFINITY);
    }
    unsigned.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Leading zeros followed by digits is a string in YAML 1.2 (`0001`).
fn digits_but_not_number(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    t.len() > 1 && t.starts_with('0') && t[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_yaml` makes of the same plain scalar, in our terms.
    fn by_serde_yaml(text: &str) -> String {
        match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Null) => "null".into(),
            Ok(serde_yaml::Value::Bool(b)) => format!("bool {b}"),
            Ok(serde_yaml::Value::Number(n)) if n.is_f64() => match n.as_f64() {
                Some(f) if f.is_finite() => format!("float {f}"),
                _ => "not finite".into(),
            },
            Ok(serde_yaml::Value::Number(n)) => format!("int {n}"),
            Ok(serde_yaml::Value::String(s)) => format!("str {s}"),
            other => format!("{other:?}"),
        }
    }

    fn ours(text: &str) -> String {
        match Scalar::resolve(text, true) {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => format!("bool {b}"),
            Scalar::Int(n) => format!("int {n}"),
            Scalar::Float(n) => format!("float {}", n.as_f64().unwrap_or(f64::NAN)),
            Scalar::TooBig => "too big".into(),
            Scalar::NotFinite => "not finite".into(),
            Scalar::Str(s) => format!("str {s}"),
        }
    }

    #[test]
    fn resolves_as_serde_yaml_does() {
        for text in [
            "~",
            "null",
            "NULL",
            "true",
            "False",
            "yes",
            "0001",
            "-0001",
            "+12",
            "12",
            "-12",
            "0x1F",
            "-0x1F",
            "+0x1F",
            "0o17",
            "0b101",
            "-0b1",
            "1e3",
            "1.",
            ".5",
            "-1.5e-3",
            ".inf",
            "-.inf",
            ".nan",
            "inf",
            "NaN",
            "1_000",
            "0x",
            "+-1",
            "1.5.2",
            "0",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            "12a",
            "0.0001",
        ] {
            assert_eq!(ours(text), by_serde_yaml(text), "`{text}`");
        }
        assert_eq!(ours("340282366920938463463374607431768211455"), "too big");
    }
}
