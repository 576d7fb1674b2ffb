//! Same checks as fuzz_targets/differential.rs; a failure whose message
//! contains any `|`-separated substring of $XMETA_FUZZ_KNOWN is ignored.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

fn known() -> &'static Vec<String> {
    static K: OnceLock<Vec<String>> = OnceLock::new();
    K.get_or_init(|| {
        std::env::var("XMETA_FUZZ_KNOWN")
            .unwrap_or_default()
            .split('|')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
}

fn check(text: &str) -> Option<String> {
    let (fast, careful) = xmeta::manifest::parse_both(Arc::new(PathBuf::from("f.yaml")), text);
    let fast = fast?;
    let errors: Vec<String> = careful
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        return Some(format!("REFUSED fast path accepted, positioned refused: {errors:?}"));
    }
    let ids = |entries: &[xmeta::manifest::Entry]| -> Vec<(String, String)> {
        entries
            .iter()
            .map(|e| (e.id.to_string(), serde_json::to_string(&*e.metadata).unwrap_or_default()))
            .collect()
    };
    let (a, b) = (ids(&fast), ids(&careful.entries));
    if a == b {
        return None;
    }
    let kind = if a.len() != b.len() {
        "MISMATCH count".to_string()
    } else {
        let i = (0..a.len()).find(|&i| a[i] != b[i]).unwrap();
        if a[i].0 != b[i].0 {
            "MISMATCH id".to_string()
        } else {
            let ja: serde_json::Value = serde_json::from_str(&a[i].1).unwrap_or_default();
            let jb: serde_json::Value = serde_json::from_str(&b[i].1).unwrap_or_default();
            let mut keys: Vec<String> = Vec::new();
            if let (Some(ma), Some(mb)) = (ja.as_object(), jb.as_object()) {
                for k in ma.keys().chain(mb.keys()) {
                    if ma.get(k) != mb.get(k) && !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            format!("MISMATCH metadata keys={keys:?}")
        }
    };
    Some(format!("{kind}: left(fast)={a:?} right(positioned)={b:?}"))
}

/// The failure class: the first error without its position, or the kind
/// of mismatch; digits folded to `N`.
fn signature(msg: &str) -> String {
    let core = if let Some(rest) = msg.strip_prefix("REFUSED ") {
        let first = rest.split("error: ").nth(1).unwrap_or(rest);
        let first = first.split("\", \"").next().unwrap_or(first);
        format!("REFUSED {}", first.trim_end_matches("\"]"))
    } else {
        msg.split(": left(fast)").next().unwrap_or(msg).to_string()
    };
    let mut out = String::new();
    for c in core.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(msg) = check(text) {
        let sig = signature(&msg);
        if known().iter().any(|k| sig.contains(k.as_str())) {
            return;
        }
        panic!("SIGNATURE<{sig}> {msg}");
    }
});
