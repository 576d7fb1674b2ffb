//! The audit trail: per media, an append-only list of what changed, when,
//! from which source revision, by whom and in which run. Each entry is
//! written in the same atomic write as the record it describes, so there
//! is never a record without its entry or an entry without its record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{FieldKind, MediaId, Metadata};

/// What happened to the media's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// X confirmed a media that was not recorded.
    Create,
    /// X confirmed a change to a recorded media (or a record was
    /// corrected without a request: untracked fields, drift put in line).
    Update,
    /// `apply --prune` removed it from the state.
    Forget,
    /// `adopt` recorded the manifests' values without sending.
    Adopt,
    /// `state import` of an export that carried no history.
    Import,
    /// `state rm` removed it from the state.
    Rm,
    /// `refresh` recorded what X holds after a change outside xmeta.
    Refresh,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Create => "create",
            Event::Update => "update",
            Event::Forget => "forget",
            Event::Adopt => "adopt",
            Event::Import => "import",
            Event::Rm => "rm",
            Event::Refresh => "refresh",
        }
    }
}

/// One field's values before and after (`null` when absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub before: Value,
    pub after: Value,
}

/// Where a change came from: the same for every entry of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The manifests' commit (`GITHUB_SHA`, `git rev-parse HEAD`, or
    /// `--source-revision`).
    pub revision: Option<String>,
    /// The work tree had uncommitted changes.
    pub dirty: bool,
    /// `GITHUB_ACTOR`, the OS user, or `--actor`.
    pub actor: Option<String>,
    /// The CI run's URL, or a random ID shared by the entries of one run.
    pub run: String,
    /// `--no-history`: write no entries.
    pub off: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The state's serial of the write that made this entry: unique per
    /// media, and the order of entries.
    pub serial: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub media: MediaId,
    #[serde(rename = "action")]
    pub event: Event,
    /// The fields that changed, by name.
    pub fields: BTreeMap<String, FieldChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub run: String,
}

impl Entry {
    /// The entry for a record going from `before` to `after` (either may
    /// be absent), made at `at` by the run of `provenance`.
    pub fn new(
        media: MediaId,
        event: Event,
        before: Option<&Metadata>,
        after: Option<&Metadata>,
        provenance: &Provenance,
        serial: u64,
        at: &str,
    ) -> Entry {
        let json = |v: Option<&crate::model::FieldValue>| {
            v.and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(Value::Null)
        };
        let mut fields = BTreeMap::new();
        for kind in FieldKind::ALL {
            let b = before.and_then(|m| m.get(kind));
            let a = after.and_then(|m| m.get(kind));
            if b != a {
                fields.insert(
                    kind.name().to_string(),
                    FieldChange {
                        before: json(b),
                        after: json(a),
                    },
                );
            }
        }
        Entry {
            serial,
            at: at.to_string(),
            media,
            event,
            fields,
            revision: provenance.revision.clone(),
            dirty: provenance.dirty,
            actor: provenance.actor.clone(),
            run: provenance.run.clone(),
        }
    }
}

/// One media's change in a write: its ID, and its record before and after.
pub type Step<'a> = (MediaId, Option<&'a Metadata>, Option<&'a Metadata>);

/// Entries are stored in chunks: the entries of one write, up to this many
/// per chunk. A first adopt of 100,000 media then writes 196 values, not
/// 100,000, which keeps history's cost near that of the records alone;
/// one media's history is read by scanning the chunks.
pub const CHUNK: usize = 512;

/// A stored chunk: the entries of one write (`serial`), part `index`.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub serial: u64,
    pub index: u32,
    /// The latest entry's time (for pruning).
    pub at: String,
    /// A JSON array of entries.
    pub bytes: Vec<u8>,
}

/// The chunks of one write's entries, built on every core. None with
/// `--no-history`.
pub fn write_chunks(
    steps: &[Step<'_>],
    event: Event,
    provenance: &Provenance,
    serial: u64,
    at: &str,
) -> serde_json::Result<Vec<Chunk>> {
    if provenance.off || steps.is_empty() {
        return Ok(Vec::new());
    }
    let slices: Vec<&[Step<'_>]> = steps.chunks(CHUNK).collect();
    let parts = crate::parallel::map_chunks(&slices, |part| {
        part.iter()
            .map(|slice| {
                let entries: Vec<Entry> = slice
                    .iter()
                    .map(|(id, before, after)| {
                        Entry::new(*id, event, *before, *after, provenance, serial, at)
                    })
                    .collect();
                serde_json::to_vec(&entries)
            })
            .collect::<serde_json::Result<Vec<_>>>()
    });
    let mut chunks = Vec::with_capacity(slices.len());
    for part in parts {
        for bytes in part? {
            chunks.push(Chunk {
                serial,
                index: chunks.len() as u32,
                at: at.to_string(),
                bytes,
            });
        }
    }
    Ok(chunks)
}

/// Entries from elsewhere (an import, a migration, a pruned chunk), in
/// the chunks of the writes that made them.
pub fn chunks_of(entries: &[Entry]) -> serde_json::Result<Vec<Chunk>> {
    let mut by_write: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
    for entry in entries {
        by_write.entry(entry.serial).or_default().push(entry);
    }
    let mut chunks = Vec::new();
    for (serial, entries) in by_write {
        for (index, slice) in entries.chunks(CHUNK).enumerate() {
            chunks.push(Chunk {
                serial,
                index: index as u32,
                at: slice
                    .iter()
                    .map(|e| e.at.as_str())
                    .max()
                    .unwrap_or_default()
                    .to_string(),
                bytes: serde_json::to_vec(slice)?,
            });
        }
    }
    Ok(chunks)
}

pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// What pruning does to one chunk: nothing, rewrite it with the entries
/// made at or after `before`, or remove it.
pub enum Pruned {
    Kept,
    Rewritten { bytes: Vec<u8>, removed: usize },
    Removed { removed: usize },
}

pub fn prune_chunk(bytes: &[u8], before: &str) -> Result<Pruned, String> {
    let entries = decode_chunk(bytes)?;
    let total = entries.len();
    let kept: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.at.as_str() >= before)
        .collect();
    Ok(match kept.len() {
        n if n == total => Pruned::Kept,
        0 => Pruned::Removed { removed: total },
        n => Pruned::Rewritten {
            bytes: serde_json::to_vec(&kept).map_err(|e| e.to_string())?,
            removed: total - n,
        },
    })
}

/// Now, as entries and records write it.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The entries a filter keeps, newest first.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub media: Option<MediaId>,
    /// RFC 3339; entries at or after it.
    pub since: Option<String>,
    pub field: Option<FieldKind>,
}

impl Filter {
    pub fn keeps(&self, entry: &Entry) -> bool {
        self.media.is_none_or(|m| m == entry.media)
            && self
                .since
                .as_ref()
                .is_none_or(|s| entry.at.as_str() >= s.as_str())
            && self
                .field
                .is_none_or(|f| entry.fields.contains_key(f.name()))
    }
}

/// Newest first: by serial, then media.
pub fn sort_newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.serial.cmp(&a.serial).then(a.media.cmp(&b.media)));
}
