//! The audit trail: per media, an append-only list of what changed, when,
//! from which source revision, by whom and in which run. Each entry is
//! written in the same atomic write as the record it describes, so there
//! is never a record without its entry or an entry without its record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{FieldKind, MediaId, Metadata};
use crate::state::error::ChunkError;
use crate::time::Timestamp;

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
    pub at: Timestamp,
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
        at: Timestamp,
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
            at,
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
    pub at: Timestamp,
    /// A JSON array of entries.
    pub bytes: Vec<u8>,
}

/// A chunk as stored: what its entries share (one write's serial, time,
/// action and provenance) once, then per media only the fields that
/// changed, absent values left out. About half the bytes of the entries
/// written out in full, which is most of history's cost on a big write.
#[derive(Serialize, Deserialize)]
struct Stored {
    serial: u64,
    at: Timestamp,
    action: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dirty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    run: String,
    entries: Vec<StoredEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    media: MediaId,
    fields: BTreeMap<String, StoredField>,
}

#[derive(Serialize, Deserialize)]
struct StoredField {
    #[serde(default, skip_serializing_if = "Value::is_null")]
    before: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    after: Value,
}

impl Stored {
    fn header(entry: &Entry) -> Stored {
        Stored {
            serial: entry.serial,
            at: entry.at,
            action: entry.event,
            revision: entry.revision.clone(),
            dirty: entry.dirty,
            actor: entry.actor.clone(),
            run: entry.run.clone(),
            entries: Vec::new(),
        }
    }

    fn same_write(&self, entry: &Entry) -> bool {
        (
            self.serial,
            self.at,
            self.action,
            &self.revision,
            self.dirty,
        ) == (
            entry.serial,
            entry.at,
            entry.event,
            &entry.revision,
            entry.dirty,
        ) && (&self.actor, &self.run) == (&entry.actor, &entry.run)
    }

    fn push(&mut self, entry: Entry) {
        let fields = entry
            .fields
            .into_iter()
            .map(|(name, c)| {
                let stored = StoredField {
                    before: c.before,
                    after: c.after,
                };
                (name, stored)
            })
            .collect();
        self.entries.push(StoredEntry {
            media: entry.media,
            fields,
        });
    }
}

/// The chunks of one write's entries, built on every core. None with
/// `--no-history`.
pub fn write_chunks(
    steps: &[Step<'_>],
    event: Event,
    provenance: &Provenance,
    serial: u64,
    at: Timestamp,
) -> serde_json::Result<Vec<Chunk>> {
    if provenance.off || steps.is_empty() {
        return Ok(Vec::new());
    }
    let slices: Vec<&[Step<'_>]> = steps.chunks(CHUNK).collect();
    let parts = crate::parallel::map_chunks(&slices, |part| {
        part.iter()
            .map(|slice| {
                let mut chunk: Option<Stored> = None;
                for (id, before, after) in *slice {
                    let entry = Entry::new(*id, event, *before, *after, provenance, serial, at);
                    chunk
                        .get_or_insert_with(|| Stored::header(&entry))
                        .push(entry);
                }
                serde_json::to_vec(&chunk).map(|json| pack(&json))
            })
            .collect::<serde_json::Result<Vec<_>>>()
    });
    let mut chunks = Vec::with_capacity(slices.len());
    for part in parts {
        for bytes in part? {
            chunks.push(Chunk {
                serial,
                index: chunks.len() as u32,
                at,
                bytes,
            });
        }
    }
    Ok(chunks)
}

/// The chunks of one write that records a group of confirmations, each
/// with its own event (apply's group commit): a chunk per event, numbered
/// through. None with `--no-history`.
pub fn group_chunks(
    group: &[(crate::state::Recording, Event)],
    provenance: &Provenance,
    serial: u64,
    at: Timestamp,
) -> serde_json::Result<Vec<Chunk>> {
    let mut by_event: BTreeMap<&str, (Event, Vec<Step<'_>>)> = BTreeMap::new();
    for (r, event) in group {
        by_event
            .entry(event.name())
            .or_insert_with(|| (*event, Vec::new()))
            .1
            .push((r.id, r.before.as_ref(), Some(&r.after)));
    }
    let mut chunks = Vec::new();
    for (event, steps) in by_event.into_values() {
        chunks.extend(write_chunks(&steps, event, provenance, serial, at)?);
    }
    for (index, chunk) in chunks.iter_mut().enumerate() {
        chunk.index = u32::try_from(index).unwrap_or(u32::MAX);
    }
    Ok(chunks)
}

/// Entries from elsewhere (an import, a migration, a pruned chunk), in
/// chunks of entries that share a write.
pub fn chunks_of(entries: &[Entry]) -> serde_json::Result<Vec<Chunk>> {
    let mut ordered: Vec<&Entry> = entries.iter().collect();
    ordered.sort_by_key(|e| e.serial);
    let mut stored: Vec<Stored> = Vec::new();
    for entry in ordered {
        match stored.last_mut() {
            Some(last) if last.same_write(entry) && last.entries.len() < CHUNK => {
                last.push(entry.clone());
            }
            _ => {
                let mut next = Stored::header(entry);
                next.push(entry.clone());
                stored.push(next);
            }
        }
    }
    let mut chunks: Vec<Chunk> = Vec::with_capacity(stored.len());
    for s in stored {
        let index = match chunks.last() {
            Some(last) if last.serial == s.serial => last.index + 1,
            _ => 0,
        };
        chunks.push(Chunk {
            serial: s.serial,
            index,
            at: s.at,
            bytes: pack(&serde_json::to_vec(&s)?),
        });
    }
    Ok(chunks)
}

/// `chunks_of` for entries that come one at a time, newest first (as
/// `each_entry` gives them, and an import's checked history): the same
/// chunks, each handed back once it is complete.
#[derive(Default)]
pub struct Chunker {
    stored: Option<Stored>,
    /// The serial and index of the last chunk handed back.
    last: Option<(u64, u32)>,
}

impl Chunker {
    /// Takes the next entry; returns the chunk it completed, if any.
    pub fn push(&mut self, entry: Entry) -> serde_json::Result<Option<Chunk>> {
        match &mut self.stored {
            Some(stored) if stored.same_write(&entry) && stored.entries.len() < CHUNK => {
                stored.push(entry);
                Ok(None)
            }
            _ => {
                let mut next = Stored::header(&entry);
                next.push(entry);
                let done = self.stored.replace(next);
                done.map(|s| self.seal(s)).transpose()
            }
        }
    }

    /// The last chunk, if any.
    pub fn finish(mut self) -> serde_json::Result<Option<Chunk>> {
        let stored = self.stored.take();
        stored.map(|s| self.seal(s)).transpose()
    }

    fn seal(&mut self, stored: Stored) -> serde_json::Result<Chunk> {
        let index = match self.last {
            Some((serial, index)) if serial == stored.serial => index + 1,
            _ => 0,
        };
        self.last = Some((stored.serial, index));
        Ok(Chunk {
            serial: stored.serial,
            index,
            at: stored.at,
            bytes: pack(&serde_json::to_vec(&stored)?),
        })
    }
}

/// A chunk's JSON repeats field names and values across its entries:
/// LZ4 (fast enough to cost nothing beside the write) makes it a few
/// times smaller on disk, and a first adopt's history cheap.
fn pack(json: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(json)
}

/// The JSON of a stored chunk. Its stated size is checked first: a damaged
/// or planted value must not make xmeta allocate gigabytes.
fn unpack(bytes: &[u8]) -> Result<Vec<u8>, ChunkError> {
    const LIMIT: usize = 64 << 20;
    let size = bytes
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(ChunkError::Truncated)?;
    if size as usize > LIMIT {
        return Err(ChunkError::TooLarge(size));
    }
    Ok(lz4_flex::block::decompress_size_prepended(bytes)?)
}

pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<Entry>, ChunkError> {
    let json = unpack(bytes)?;
    let stored: Stored = serde_json::from_slice(&json)?;
    Ok(stored
        .entries
        .into_iter()
        .map(|e| Entry {
            serial: stored.serial,
            at: stored.at,
            media: e.media,
            event: stored.action,
            fields: e
                .fields
                .into_iter()
                .map(|(name, f)| {
                    let change = FieldChange {
                        before: f.before,
                        after: f.after,
                    };
                    (name, change)
                })
                .collect(),
            revision: stored.revision.clone(),
            dirty: stored.dirty,
            actor: stored.actor.clone(),
            run: stored.run.clone(),
        })
        .collect())
}

/// What pruning does to one chunk: nothing, rewrite it with the entries
/// made at or after `before`, or remove it.
pub enum Pruned {
    Kept,
    Rewritten { bytes: Vec<u8>, removed: usize },
    Removed { removed: usize },
}

pub fn prune_chunk(bytes: &[u8], before: Timestamp) -> Result<Pruned, ChunkError> {
    let entries = decode_chunk(bytes)?;
    let total = entries.len();
    let kept: Vec<Entry> = entries.into_iter().filter(|e| e.at >= before).collect();
    Ok(match kept.len() {
        n if n == total => Pruned::Kept,
        0 => Pruned::Removed { removed: total },
        n => Pruned::Rewritten {
            bytes: chunks_of(&kept)?
                .into_iter()
                .map(|c| c.bytes)
                .next()
                .unwrap_or_default(),
            removed: total - n,
        },
    })
}

/// The entries a filter keeps, newest first.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub media: Option<MediaId>,
    /// RFC 3339; entries at or after it.
    pub since: Option<Timestamp>,
    pub field: Option<FieldKind>,
}

impl Filter {
    pub fn keeps(&self, entry: &Entry) -> bool {
        self.media.is_none_or(|m| m == entry.media)
            && self.since.as_ref().is_none_or(|s| entry.at >= *s)
            && self
                .field
                .is_none_or(|f| entry.fields.contains_key(f.name()))
    }
}

/// Entries newest first (by serial, then media, as `sort_newest_first`
/// orders them) from stored chunks fed newest write first, in any order
/// within a write, holding no more than one write's chunks as stored
/// (compressed) and one chunk's entries at a time.
///
/// A write's chunks hold disjoint runs of media (every writer writes them
/// in ID order), so each chunk is sorted alone and the chunks are given in
/// the order of their first media; a write whose chunks overlap (none
/// that xmeta writes) is sorted whole instead.
pub struct NewestFirst<'a, 'v> {
    filter: &'a Filter,
    visit: &'a mut crate::state::VisitEntries<'v>,
    damaged: &'a dyn Fn(ChunkError) -> anyhow::Error,
    /// The write being gathered: its serial and its chunks by index.
    serial: Option<u64>,
    chunks: Vec<(u32, Vec<u8>)>,
}

impl<'a, 'v> NewestFirst<'a, 'v> {
    /// `damaged` says what a chunk that cannot be read makes of the state.
    pub fn new(
        filter: &'a Filter,
        visit: &'a mut crate::state::VisitEntries<'v>,
        damaged: &'a dyn Fn(ChunkError) -> anyhow::Error,
    ) -> Self {
        NewestFirst {
            filter,
            visit,
            damaged,
            serial: None,
            chunks: Vec::new(),
        }
    }

    /// The next stored chunk; a write older than the one gathered so far
    /// sends that one's entries on first.
    pub fn push(&mut self, serial: u64, index: u32, bytes: Vec<u8>) -> anyhow::Result<()> {
        if self.serial.is_some_and(|s| s != serial) {
            self.write_out()?;
        }
        self.serial = Some(serial);
        self.chunks.push((index, bytes));
        Ok(())
    }

    /// Sends on the last write's entries.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.write_out()
    }

    /// One chunk's entries the filter keeps, by media.
    fn entries(&self, bytes: &[u8]) -> anyhow::Result<Vec<Entry>> {
        let mut kept: Vec<Entry> = decode_chunk(bytes)
            .map_err(self.damaged)?
            .into_iter()
            .filter(|e| self.filter.keeps(e))
            .collect();
        kept.sort_by_key(|e| e.media);
        Ok(kept)
    }

    fn write_out(&mut self) -> anyhow::Result<()> {
        let mut chunks = std::mem::take(&mut self.chunks);
        // Index order, so equal entries keep the order a sort of the
        // whole write keeps.
        chunks.sort_by_key(|(index, _)| *index);
        if let [(_, bytes)] = chunks.as_slice() {
            for entry in self.entries(bytes)? {
                (self.visit)(entry)?;
            }
            return Ok(());
        }
        // Each chunk's first and last media, read once to order them.
        let mut spans = Vec::with_capacity(chunks.len());
        for (at, (_, bytes)) in chunks.iter().enumerate() {
            let kept = self.entries(bytes)?;
            if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
                spans.push((first.media, last.media, at));
            }
        }
        spans.sort_by_key(|&(first, _, at)| (first, at));
        let disjoint = spans.windows(2).all(|w| w[0].1 < w[1].0);
        if disjoint {
            for (_, _, at) in spans {
                for entry in self.entries(&chunks[at].1)? {
                    (self.visit)(entry)?;
                }
            }
        } else {
            let mut all = Vec::new();
            for (_, bytes) in &chunks {
                all.extend(self.entries(bytes)?);
            }
            all.sort_by_key(|e| e.media);
            for entry in all {
                (self.visit)(entry)?;
            }
        }
        Ok(())
    }
}

/// Newest first: by serial, then media (the order `NewestFirst` keeps).
#[cfg(test)]
pub fn sort_newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.serial.cmp(&a.serial).then(a.media.cmp(&b.media)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            revision: Some("abc".into()),
            run: "run-1".into(),
            ..Provenance::default()
        }
    }

    #[test]
    fn chunks_round_trip_and_refuse_a_planted_size() {
        let mut m = Metadata::default();
        m.insert(crate::model::FieldValue::AltText(crate::model::AltText {
            text: "a cat".into(),
        }));
        let ids: Vec<MediaId> = (1..=1200)
            .map(|n| MediaId::parse(&n.to_string()).unwrap())
            .collect();
        let steps: Vec<Step<'_>> = ids.iter().map(|id| (*id, None, Some(&m))).collect();
        let chunks = write_chunks(
            &steps,
            Event::Adopt,
            &provenance(),
            7,
            Timestamp::parse("2026-01-01T00:00:00Z").expect("time"),
        )
        .unwrap();
        assert_eq!(chunks.len(), 3, "512 entries per chunk");
        let entries: Vec<Entry> = chunks
            .iter()
            .flat_map(|c| decode_chunk(&c.bytes).unwrap())
            .collect();
        assert_eq!(entries.len(), 1200);
        assert_eq!(
            entries[0].fields["alt_text"].after,
            serde_json::json!({"text": "a cat"})
        );
        assert_eq!(entries[0].fields["alt_text"].before, Value::Null);
        // The same entries, regrouped as an import does, read back the same.
        let again: Vec<Entry> = chunks_of(&entries)
            .unwrap()
            .iter()
            .flat_map(|c| decode_chunk(&c.bytes).unwrap())
            .collect();
        assert_eq!(again, entries);
        // A value that claims 4 GiB is refused before anything is allocated.
        let planted = [0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(matches!(
            decode_chunk(&planted),
            Err(ChunkError::TooLarge(_))
        ));
    }

    fn entry(serial: u64, media: u64, text: &str) -> Entry {
        let mut m = Metadata::default();
        m.insert(crate::model::FieldValue::AltText(crate::model::AltText {
            text: text.into(),
        }));
        Entry::new(
            MediaId::parse(&media.to_string()).unwrap(),
            Event::Update,
            None,
            Some(&m),
            &provenance(),
            serial,
            Timestamp::parse("2026-01-01T00:00:00Z").expect("time"),
        )
    }

    /// Entries newest first, from chunks fed as a backend reads them
    /// (newest write first, its chunks in any order), come out as the
    /// sort of them all orders them, whether a write's chunks hold
    /// disjoint runs of media (streamed) or overlap (sorted whole); and
    /// chunked again one by one, they are the chunks `chunks_of` makes.
    #[test]
    fn entries_stream_newest_first_and_chunk_as_a_whole_history_does() {
        // Serial 9: 1,300 media in ID order (three chunks); serial 5: two
        // chunks that overlap; serial 2: one entry.
        let mut all: Vec<Entry> = (1..=1300).map(|m| entry(9, m, "a")).collect();
        let overlapping: Vec<Entry> = (1..=600)
            .map(|m| entry(5, (m * 7) % 601 + 1, "b"))
            .collect();
        all.extend(overlapping.clone());
        all.push(entry(2, 4, "c"));
        let mut stored = write_chunks_of(&all[..1300]);
        stored.extend(write_chunks_of(&overlapping));
        stored.extend(chunks_of(&all[1900..]).unwrap());
        // Newest write first; within one, last chunk first.
        stored.sort_by_key(|c| std::cmp::Reverse((c.serial, c.index)));
        let mut expected = all.clone();
        sort_newest_first(&mut expected);
        for filter in [
            Filter::default(),
            Filter {
                media: MediaId::parse("4"),
                ..Filter::default()
            },
        ] {
            let mut seen = Vec::new();
            let mut visit = |e: Entry| {
                seen.push(e);
                Ok(())
            };
            let damaged = |e: ChunkError| anyhow::anyhow!("{e}");
            let mut sink = NewestFirst::new(&filter, &mut visit, &damaged);
            for chunk in &stored {
                sink.push(chunk.serial, chunk.index, chunk.bytes.clone())
                    .unwrap();
            }
            sink.finish().unwrap();
            let kept: Vec<Entry> = expected
                .iter()
                .filter(|e| filter.keeps(e))
                .cloned()
                .collect();
            assert_eq!(seen, kept);
        }
        let mut chunker = Chunker::default();
        let mut streamed = Vec::new();
        for e in &expected {
            streamed.extend(chunker.push(e.clone()).unwrap());
        }
        streamed.extend(chunker.finish().unwrap());
        let mut whole = chunks_of(&expected).unwrap();
        whole.sort_by_key(|c| std::cmp::Reverse(c.serial));
        assert_eq!(streamed, whole);
    }

    /// One write's chunks, its entries in the order given (as `record_many`
    /// writes them).
    fn write_chunks_of(entries: &[Entry]) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for (index, part) in entries.chunks(CHUNK).enumerate() {
            let mut stored = Stored::header(&part[0]);
            for e in part {
                stored.push(e.clone());
            }
            chunks.push(Chunk {
                serial: part[0].serial,
                index: index as u32,
                at: part[0].at,
                bytes: pack(&serde_json::to_vec(&stored).unwrap()),
            });
        }
        chunks
    }
}
