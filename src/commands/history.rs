//! `xmeta state history`: the audit trail, newest first, as text for
//! people or JSON for tools.

use std::fmt::Write;

use crate::state::Entry;
use crate::untrusted::neutralise;

pub fn render(entries: &[Entry], json: bool) -> anyhow::Result<String> {
    if json {
        // Escaped (`\u202e`): the same strings to a parser, safe bytes to
        // a terminal.
        return Ok(crate::untrusted::json_pretty(entries)? + "\n");
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
            e.at,
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

/// A commit as git shows it in one line (12 hex digits); anything else,
/// a tag or `--source-revision` text, whole.
fn short(revision: &str) -> String {
    let shortened: Vec<String> = revision
        .split('+')
        .map(|part| {
            let is_sha = part.len() >= 12 && part.bytes().all(|b| b.is_ascii_hexdigit());
            if is_sha {
                part[..12].to_string()
            } else {
                part.to_string()
            }
        })
        .collect();
    neutralise(&shortened.join("+"), 120)
}

/// A field's value as compact JSON (`-` when absent), safe for a terminal.
fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        v => neutralise(&v.to_string(), 300),
    }
}
