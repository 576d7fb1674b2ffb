//! `xmeta state history`: the audit trail, newest first, as text for
//! people or JSON for tools.

use std::fmt::Write as _;
use std::io::Write;

use super::state_export::Failed;
use crate::state::{Entry, Filter, StateReader};
use crate::untrusted::neutralise;

/// Writes the entries `filter` keeps to `out` as they are read.
pub(super) fn write(
    store: &dyn StateReader,
    filter: &Filter,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Failed> {
    if json {
        // Escaped (`\u202e`): the same strings to a parser, safe bytes to
        // a terminal.
        let all = Entries {
            store,
            filter,
            read: std::cell::RefCell::new(None),
        };
        let written = crate::untrusted::write_json_pretty(&mut *out, &all);
        if let Some(e) = all.read.into_inner() {
            return Err(Failed::State(e));
        }
        written.map_err(|e| Failed::Write(e.into()))?;
        return out.write_all(b"\n").map_err(Failed::Write);
    }
    let (mut shown, mut written) = (0usize, Ok(()));
    let read = store.each_entry(filter, &mut |entry| {
        shown += 1;
        out.write_all(text(&entry).as_bytes()).map_err(|e| {
            let message = e.to_string();
            written = Err(e);
            anyhow::anyhow!(message)
        })
    });
    written.map_err(Failed::Write)?;
    read.map_err(Failed::State)?;
    if shown == 0 {
        out.write_all(b"No history entries.\n")
            .map_err(Failed::Write)?;
    }
    Ok(())
}

/// The entries as one JSON list, read while it is written.
struct Entries<'a> {
    store: &'a dyn StateReader,
    filter: &'a Filter,
    /// The state's own error, kept apart from the writer's.
    read: std::cell::RefCell<Option<anyhow::Error>>,
}

impl serde::Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed = None;
        let read = self.store.each_entry(self.filter, &mut |entry| {
            seq.serialize_element(&entry).map_err(|e| {
                let message = e.to_string();
                failed = Some(e);
                anyhow::anyhow!(message)
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if let Err(e) = read {
            let message = format!("{e:#}");
            *self.read.borrow_mut() = Some(e);
            return Err(S::Error::custom(message));
        }
        seq.end()
    }
}

/// One entry as text for people.
fn text(e: &Entry) -> String {
    let mut out = String::new();
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
    out
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
