//! `xmeta state history`: the audit trail, newest first, as text for
//! people or JSON for tools.

use std::fmt::Write;

use crate::state::Entry;
use crate::untrusted::neutralise;

pub fn render(entries: &[Entry], json: bool) -> anyhow::Result<String> {
    if json {
        return Ok(serde_json::to_string_pretty(entries)? + "\n");
    }
    if entries.is_empty() {
        return Ok("No history entries.\n".into());
    }
    let mut out = String::new();
    for e in entries {
        let revision = match (&e.revision, e.dirty) {
            (Some(r), true) => format!("{} (dirty)", short(r)),
            (Some(r), false) => short(r),
            (None, _) => "no revision".into(),
        };
        let _ = writeln!(
            out,
            "{}  media {}  {}  {revision}  by {}  run {}",
            neutralise(&e.at, 40),
            e.media,
            e.event.name(),
            neutralise(e.actor.as_deref().unwrap_or("unknown"), 80),
            neutralise(&e.run, 200),
        );
        for (field, change) in &e.fields {
            let _ = writeln!(
                out,
                "    {}: {} → {}",
                neutralise(field, 40),
                value(&change.before),
                value(&change.after)
            );
        }
    }
    Ok(out)
}

/// A commit as git shows it in one line: 12 characters.
fn short(revision: &str) -> String {
    neutralise(&revision.chars().take(12).collect::<String>(), 12)
}

/// A field's value as compact JSON (`-` when absent), safe for a terminal.
fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        v => neutralise(&v.to_string(), 300),
    }
}
