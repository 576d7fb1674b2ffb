//! Differential: whatever the fast path (serde_yaml) accepts, the positioned
//! path (yaml-rust2 + the schema checker) must accept too, with identical
//! entries: the same IDs, in the same order, with the same metadata, at
//! the same positions.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use xmeta::internals::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (fast, careful) = xmeta::internals::parse_both(Arc::new(PathBuf::from("f.yaml")), text, Timestamp::now());
    let Some(fast) = fast else { return };
    let errors: Vec<String> = careful
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "fast path accepted, positioned refused: {errors:?}");
    let ids = |entries: &[xmeta::internals::Entry]| -> Vec<(String, String)> {
        entries
            .iter()
            .map(|e| {
                let json = serde_json::to_string(&**e.metadata).unwrap_or_default();
                (e.id.to_string(), format!("{json} at {}", e.location))
            })
            .collect()
    };
    assert_eq!(ids(&fast), ids(&careful.entries));
});
