//! Manifest loading and validation on arbitrary bytes: must never panic,
//! hang or blow up memory; every input ends in entries or diagnostics.
#![no_main]

use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use xmeta::internals::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = xmeta::internals::parse_text(Arc::new(PathBuf::from("fuzz.yaml")), text, Timestamp::now());
    for d in &file.diagnostics {
        assert!(d.location.line >= 1 && d.location.column >= 1);
        let _ = d.to_string();
    }
    if let Ok(desired) = xmeta::internals::assemble(vec![file]) {
        for entry in desired.media.values() {
            let _ = serde_json::to_string(&**entry.metadata);
        }
    }
});
