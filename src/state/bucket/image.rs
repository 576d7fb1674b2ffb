//! What a bucket workspace holds, and how it is read consistently.
//!
//! Objects under the workspace's folder:
//! - `head.json`: format, lineage, serial, the snapshot it stands on, the
//!   live writer's journal session, and the moved mark. Only ever
//!   replaced by a conditional update (`If-Match` on its `ETag`), so two
//!   writers can never overwrite each other's head.
//! - `snapshots/<serial>-<id>.json.lz4`: every record and history chunk at
//!   a serial, written once, compressed (`compression.rs`; `.json`, plain,
//!   from before format 2).
//! - `journal/<session>/<serial>.json`: one group of confirmations each,
//!   written once, numbered on from the snapshot's serial.
//!
//! A reader takes the head, its snapshot, then the session's journals in
//! serial order up to the first gap: always a state some writer made
//! durable, never half of a write. Everything it read stays with it (the
//! snapshot's records in a private temporary file, the rest in memory),
//! so later reads never wait on, or see, a writer.

use anyhow::anyhow;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::compression::{self, Encoding};
use super::index::Index;
use super::spill::{self, Place, Spill, Spilled};
use super::store::{Store, Version};
use crate::model::{Digests, MediaId};
use crate::state::history::{self, Chunk};
use crate::state::moved::Moved;
use crate::state::{Digest, Filter, Record, StateError, VisitEntries, VisitRecords, RECORD_BATCH};
use crate::time::Timestamp;

/// The layout of a bucket state; a newer one is refused. 2: snapshots
/// are compressed (an xmeta that reads up to 1 would call them damaged).
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Head {
    pub format: u32,
    pub lineage: String,
    pub serial: u64,
    /// The snapshot at `serial` (`None`: the state was empty then).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Whether the snapshot's digests object (`digest_object.rs`) is
    /// beside it, named after it; a writer before those never set it, and
    /// its readers read the snapshot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digests: bool,
    /// The session whose journals follow the snapshot.
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub moved: Option<Moved>,
}

/// A history chunk as stored in a snapshot or journal.
#[derive(Clone, Serialize, Deserialize)]
struct StoredChunk {
    serial: u64,
    index: u32,
    at: Timestamp,
    /// The chunk's packed bytes, base64.
    bytes: String,
}

impl StoredChunk {
    fn of(chunk: &Chunk) -> StoredChunk {
        StoredChunk {
            serial: chunk.serial,
            index: chunk.index,
            at: chunk.at,
            bytes: base64::engine::general_purpose::STANDARD.encode(&chunk.bytes),
        }
    }

    fn chunk(self) -> anyhow::Result<Chunk> {
        Ok(Chunk {
            serial: self.serial,
            index: self.index,
            at: self.at,
            bytes: base64::engine::general_purpose::STANDARD
                .decode(self.bytes)
                .map_err(|e| anyhow!("a history chunk is not base64: {e}"))?,
        })
    }
}

/// A snapshot object. Its records are read into a spill file one batch
/// at a time (`Spilled`) and written straight from where the image keeps
/// them (`Records`): never every record in memory at once.
#[derive(Serialize, Deserialize)]
struct Snapshot<R> {
    format: u32,
    lineage: String,
    serial: u64,
    /// Each media's stored record, as `Record::encode` wrote it.
    records: R,
    history: Vec<StoredChunk>,
}

/// The image's records as a snapshot writes them: each one's stored
/// bytes as they are (they were checked as JSON when they came in), read
/// back one at a time from where they are kept.
struct Records<'a>(&'a Image);

impl Serialize for Records<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let image = self.0;
        let mut seq = s.serialize_seq(Some(image.records.len()))?;
        for (id, place) in image.records.iter() {
            let bytes = image
                .bytes(&place)
                .map_err(|e| S::Error::custom(format!("{e:#}")))?;
            let raw: &RawValue = serde_json::from_slice(&bytes).map_err(S::Error::custom)?;
            seq.serialize_element(&(id, raw))?;
        }
        seq.end()
    }
}

/// One write: records put and removed, with their history.
#[derive(Clone, Serialize, Deserialize)]
pub struct Journal {
    pub serial: u64,
    pub lineage: String,
    puts: Vec<(MediaId, Box<RawValue>)>,
    removes: Vec<MediaId>,
    history: Vec<StoredChunk>,
}

impl Journal {
    pub fn new(
        serial: u64,
        lineage: &str,
        puts: Vec<(MediaId, Vec<u8>)>,
        removes: Vec<MediaId>,
        chunks: &[Chunk],
    ) -> anyhow::Result<Journal> {
        Ok(Journal {
            serial,
            lineage: lineage.to_string(),
            puts: puts
                .into_iter()
                .map(|(id, bytes)| Ok((id, raw(bytes)?)))
                .collect::<anyhow::Result<_>>()?,
            removes,
            history: chunks.iter().map(StoredChunk::of).collect(),
        })
    }

    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Its puts' digests (each as its record states it) and its removes,
    /// applied to `digests`, as `Image::apply` applies them to an image.
    pub fn apply_to_digests(&self, digests: &mut Digests) -> anyhow::Result<()> {
        for (id, value) in &self.puts {
            digests.insert(*id, stated(id, value)?);
        }
        for id in &self.removes {
            digests.remove(id);
        }
        // Read as a full read reads them, so that both refuse the same.
        for chunk in &self.history {
            chunk.clone().chunk()?;
        }
        Ok(())
    }
}

/// The digest a journal's record states, checked against its metadata.
fn stated(id: &MediaId, value: &RawValue) -> anyhow::Result<Digest> {
    Digest::stated(value.get().as_bytes())
        .map_err(|e| anyhow!("the record of media {id} in a journal: {e}"))
}

fn raw(bytes: Vec<u8>) -> anyhow::Result<Box<RawValue>> {
    Ok(RawValue::from_string(String::from_utf8(bytes)?)?)
}

/// A workspace's whole state at one serial: in memory, but for the
/// records of the snapshot it was read from, which are in a private
/// temporary file (`spill`).
#[derive(Clone, Debug, Default)]
pub struct Image {
    pub lineage: String,
    pub serial: u64,
    /// Each media's stored record bytes (checked against their digest
    /// when they came in), or where they are. Private, as `digests` is:
    /// `put` and `remove` change both.
    records: Index,
    /// Each media's digest: handed to a plan without a copy.
    digests: Digests,
    pub history: Vec<Chunk>,
    /// Where the snapshot's records went, once checked.
    spill: Option<Spill>,
}

impl Image {
    pub fn new(lineage: String) -> Image {
        Image {
            lineage,
            ..Image::default()
        }
    }

    /// Applies a journal that follows this image.
    pub fn apply(&mut self, journal: Journal) -> anyhow::Result<()> {
        for (id, value) in journal.puts {
            let digest = stated(&id, &value)?;
            self.put(id, digest, value.get().as_bytes().to_vec());
        }
        for id in journal.removes {
            self.remove(&id);
        }
        for chunk in journal.history {
            self.history.push(chunk.chunk()?);
        }
        self.serial = journal.serial;
        Ok(())
    }

    /// The snapshot object of this image, compressed as it is written
    /// from the image (no copy of its records).
    fn write_snapshot(&self, out: impl std::io::Write) -> serde_json::Result<()> {
        let mut encoder = compression::encoder(out);
        self.write_snapshot_json(&mut encoder)?;
        encoder
            .finish()
            .map(drop)
            .map_err(|e| serde_json::Error::io(e.into()))
    }

    /// The snapshot's JSON.
    fn write_snapshot_json(&self, out: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(
            out,
            &Snapshot {
                format: FORMAT,
                lineage: self.lineage.clone(),
                serial: self.serial,
                records: Records(self),
                history: self.history.iter().map(StoredChunk::of).collect(),
            },
        )
    }

    /// The snapshot object in memory (where TMPDIR cannot take it).
    pub fn encode_snapshot(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_snapshot(&mut out)?;
        Ok(out)
    }

    /// The snapshot object in a private temporary file, to be sent in
    /// parts (at 1,000,000 media it is hundreds of MB); `None` when TMPDIR
    /// cannot take it.
    pub fn snapshot_file(&self) -> anyhow::Result<Option<std::fs::File>> {
        use std::io::Write;
        let file = match tempfile::tempfile() {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!("the snapshot is encoded in memory: {e}");
                return Ok(None);
            }
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 16, &file);
        let written = self
            .write_snapshot(&mut out)
            .and_then(|()| out.flush().map_err(serde_json::Error::io));
        drop(out);
        match written {
            Ok(()) => Ok(Some(file)),
            Err(e) if e.is_io() => {
                tracing::debug!("the snapshot is encoded in memory: {e}");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A snapshot object read from its copy: each record checked against
    /// its digest and moved to a temporary file (only the history is
    /// decoded), so that the object is never held; refused past `limit`
    /// bytes decompressed.
    fn read_snapshot_within(
        object: impl std::io::Read,
        encoding: Encoding,
        limit: u64,
    ) -> anyhow::Result<Image> {
        let object = compression::reader(object, encoding, limit);
        let reader = std::io::BufReader::with_capacity(1 << 16, object);
        let snapshot: Snapshot<Spilled> = serde_json::from_reader(reader)?;
        Ok(Image {
            lineage: snapshot.lineage,
            serial: snapshot.serial,
            records: snapshot.records.records,
            digests: snapshot.records.digests,
            history: snapshot
                .history
                .into_iter()
                .map(StoredChunk::chunk)
                .collect::<anyhow::Result<_>>()?,
            spill: snapshot.records.spill,
        })
    }

    /// Records `bytes`, a stored record whose digest is `digest`.
    pub fn put(&mut self, id: MediaId, digest: Digest, bytes: Vec<u8>) {
        spill::keep(&mut self.records, &mut self.spill, id, bytes);
        self.digests.insert(id, digest);
    }

    pub fn remove(&mut self, id: &MediaId) {
        if let Some(place) = self.records.remove(id) {
            spill::forgotten(&mut self.records, &mut self.spill, &place);
        }
        self.digests.remove(id);
    }

    /// A record's stored bytes, wherever they are kept.
    fn bytes<'a>(&self, place: &'a Place) -> anyhow::Result<std::borrow::Cow<'a, [u8]>> {
        spill::bytes(place, self.spill.as_ref())
    }

    /// Records are read back and decoded a batch at a time.
    pub fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        for (id, place) in self.records.iter() {
            batch.push((id, decode(&id, &self.bytes(&place)?)?));
            if batch.len() == RECORD_BATCH {
                visit(std::mem::take(&mut batch))?;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        visit(batch)
    }

    pub fn digests(&self) -> Digests {
        self.digests.clone()
    }

    pub fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.records
            .get(id)
            .map(|place| decode(id, &self.bytes(&place)?))
            .transpose()
    }

    pub fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        let damaged = |e| anyhow!("a history entry: {e}");
        let mut sink = history::NewestFirst::new(filter, visit, &damaged);
        let mut newest_first: Vec<&Chunk> = self.history.iter().collect();
        newest_first.sort_by_key(|c| std::cmp::Reverse(c.serial));
        for chunk in newest_first {
            sink.push(chunk.serial, chunk.index, chunk.bytes.clone())?;
        }
        sink.finish()
    }
}

fn decode(id: &MediaId, bytes: &[u8]) -> anyhow::Result<Record> {
    Record::decode(bytes).map_err(|e| anyhow!("the record of media {id}: {e}"))
}

/// The keys of a workspace's objects.
#[derive(Clone)]
pub struct Keys {
    folder: String,
}

impl Keys {
    pub fn new(folder: String) -> Keys {
        Keys { folder }
    }
    pub fn head(&self) -> String {
        format!("{}/head.json", self.folder)
    }
    pub fn lock(&self) -> String {
        format!("{}/lock.json", self.folder)
    }
    pub fn previews(&self) -> String {
        format!("{}/previews.json", self.folder)
    }
    pub fn marker(&self) -> String {
        format!("{}/workspace.json", self.folder)
    }
    pub fn journals(&self, session: &str) -> String {
        format!("{}/journal/{session}", self.folder)
    }
    pub fn journal(&self, session: &str, serial: u64) -> String {
        format!("{}/journal/{session}/{serial:020}.json", self.folder)
    }
    pub fn folder(&self) -> &str {
        &self.folder
    }
}

/// The head, with its version for a conditional update; `None` when the
/// workspace holds no state. A newer format is refused.
pub fn read_head(
    store: &Store,
    keys: &Keys,
    shown: &str,
) -> anyhow::Result<Option<(Head, Version)>> {
    // The format first, from a head this xmeta may not fully understand.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let Some((bytes, version)) = store.get(&keys.head())? else {
        return Ok(None);
    };
    let format: Format = serde_json::from_slice(&bytes).map_err(|e| damaged(shown, &e.into()))?;
    if format.format > FORMAT {
        return Err(StateError::NewerInDatabase {
            target: shown.to_string(),
            found: i32::try_from(format.format).unwrap_or(i32::MAX),
            supported: FORMAT,
        }
        .into());
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|e| damaged(shown, &e.into()))?;
    // The head names the objects a writer deletes once it moves on: never
    // anything but a snapshot, whoever wrote it.
    match &head.snapshot {
        Some(name) if !is_snapshot_name(name) => {
            return Err(damaged(
                shown,
                &anyhow!("the head names a snapshot that is not one"),
            ))
        }
        None if head.digests => {
            return Err(damaged(
                shown,
                &anyhow!("the head names digests without a snapshot"),
            ))
        }
        _ => {}
    }
    Ok(Some((head, version)))
}

/// How many times a reader starts again when a writer compacted what it
/// was reading (each time means the writer made progress).
pub const ATTEMPTS: usize = 5;

/// The whole image `head` stands on: its snapshot, then its session's
/// journals in order up to the first gap. `None` when a writer compacted
/// the snapshot away meanwhile (read the head again).
pub fn load(store: &Store, keys: &Keys, head: &Head, shown: &str) -> anyhow::Result<Option<Image>> {
    let Some(mut image) = load_snapshot(store, keys, head, shown)? else {
        return Ok(None);
    };
    for journal in journals(store, keys, head, image.serial, shown)? {
        image.apply(journal).map_err(|e| damaged(shown, &e))?;
    }
    Ok(Some(image))
}

/// The image of `head`'s snapshot alone (an empty one if it has none),
/// at the head's serial. `None` when a writer compacted it away.
pub fn load_snapshot(
    store: &Store,
    keys: &Keys,
    head: &Head,
    shown: &str,
) -> anyhow::Result<Option<Image>> {
    let mut image = match &head.snapshot {
        None => Image::new(head.lineage.clone()),
        Some(key) => {
            match store.get_spooled(&format!("{}/{key}", keys.folder()), |object, size| {
                let limit = compression::limit_for(size);
                Image::read_snapshot_within(object, Encoding::of(key), limit)
                    .map_err(|e| damaged(shown, &e))
            })? {
                None => return Ok(None),
                Some(image) => image,
            }
        }
    };
    image.serial = image.serial.max(head.serial);
    if image.lineage != head.lineage {
        return Err(damaged(
            shown,
            &anyhow!("the snapshot's lineage is not the head's"),
        ));
    }
    Ok(Some(image))
}

/// The journals of `head`'s session that follow `serial`, in order up to
/// the first gap, each checked to follow the one before.
pub fn journals(
    store: &Store,
    keys: &Keys,
    head: &Head,
    serial: u64,
    shown: &str,
) -> anyhow::Result<Vec<Journal>> {
    let mut out = Vec::new();
    let Some(session) = &head.session else {
        return Ok(out);
    };
    let mut serial = serial;
    for key in store.list(&keys.journals(session))? {
        let next = keys.journal(session, serial + 1);
        if key < next {
            continue;
        }
        if key != next {
            break;
        }
        let Some((bytes, _)) = store.get(&key)? else {
            break;
        };
        let journal: Journal =
            serde_json::from_slice(&bytes).map_err(|e| damaged(shown, &e.into()))?;
        if journal.lineage != head.lineage || journal.serial != serial + 1 {
            return Err(damaged(shown, &anyhow!("journal `{key}` does not follow")));
        }
        serial = journal.serial;
        out.push(journal);
    }
    Ok(out)
}

/// The name of the digests object of snapshot `snapshot` (a name
/// `is_snapshot_name` accepts; see `state/digest_object.rs`): beside it,
/// never named by the head.
pub fn digests_name(snapshot: &str) -> String {
    let stem = Encoding::split(snapshot).map_or(snapshot, |(stem, _)| stem);
    format!("{stem}.digests")
}

/// A snapshot's name as writers make it: `snapshots/`, the serial in 20
/// digits, `-`, 16 hex digits, `.json.lz4` (`.json` before format 2).
pub fn is_snapshot_name(name: &str) -> bool {
    let Some((stem, _)) = name.strip_prefix("snapshots/").and_then(Encoding::split) else {
        return false;
    };
    let bytes = stem.as_bytes();
    bytes.len() == 37
        && bytes[..20].iter().all(u8::is_ascii_digit)
        && bytes[20] == b'-'
        && bytes[21..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

pub fn kept_changing(shown: &str) -> anyhow::Error {
    anyhow!(
        "the state at {shown} kept changing while it was read (a writer compacting it); run the command again"
    )
}

pub fn damaged(shown: &str, cause: &anyhow::Error) -> anyhow::Error {
    StateError::DamagedInDatabase {
        target: shown.to_string(),
        cause: format!("{cause:#}"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue, Metadata};

    fn image_of(texts: &[&str]) -> Image {
        let mut image = Image::new("lineage-1".into());
        image.serial = 7;
        for (n, text) in texts.iter().enumerate() {
            let bytes = record(text);
            let digest = Digest::stated(&bytes).unwrap();
            let id = MediaId::parse(&format!("{}", 1_000 + n)).unwrap();
            image.put(id, digest, bytes);
        }
        image
    }

    #[test]
    fn a_snapshots_digests_are_named_after_it() {
        let snapshot = "snapshots/00000000000000000009-0123456789abcdef.json";
        for snapshot in [snapshot, &format!("{snapshot}.lz4")] {
            assert_eq!(
                digests_name(snapshot),
                "snapshots/00000000000000000009-0123456789abcdef.digests"
            );
        }
    }

    /// A snapshot read back keeps its records in the temporary file, not
    /// in memory, and reads and writes them as they were.
    #[test]
    fn a_snapshot_read_back_is_spilled_and_writes_the_same_snapshot() {
        let image = image_of(&["a cat on a mat", "a dog", "\"quoted\" \u{1F408}"]);
        let object = image.encode_snapshot().unwrap();
        let read = read_snapshot(&object[..], Encoding::Lz4).unwrap();
        assert!(read
            .records
            .iter()
            .all(|(_, place)| matches!(place, Place::Spilled { .. })));
        assert_eq!(read.encode_snapshot().unwrap(), object);
        for (id, _) in image.records.iter() {
            assert_eq!(read.get(&id).unwrap(), image.get(&id).unwrap());
        }
        let mut visited = Vec::new();
        read.each_record(&mut |batch| {
            visited.extend(batch);
            Ok(())
        })
        .unwrap();
        let ids: Vec<MediaId> = visited.iter().map(|(id, _)| *id).collect();
        let want: Vec<MediaId> = image.records.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, want);
        assert_eq!(read.digests(), image.digests());
    }

    /// A snapshot's JSON, as a snapshot from before format 2 holds it.
    fn read_snapshot(object: &[u8], encoding: Encoding) -> anyhow::Result<Image> {
        Image::read_snapshot_within(object, encoding, compression::MAX_DECOMPRESSED)
    }

    fn json_of(image: &Image) -> String {
        let mut out = Vec::new();
        image.write_snapshot_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A snapshot written now is compressed, reads back as its plain JSON
    /// does, and is refused once it decompresses past the bound.
    #[test]
    fn a_snapshot_is_compressed_and_bounded() {
        let texts: Vec<String> = (0..500)
            .map(|n| format!("photo {n} of the spring campaign"))
            .collect();
        let image = image_of(&texts.iter().map(String::as_str).collect::<Vec<_>>());
        let object = image.encode_snapshot().unwrap();
        let json = json_of(&image);
        assert!(
            object.len() * 2 < json.len(),
            "{} of {} bytes",
            object.len(),
            json.len()
        );
        let plain = read_snapshot(json.as_bytes(), Encoding::Plain).unwrap();
        let read = read_snapshot(&object[..], Encoding::Lz4).unwrap();
        assert_eq!(read.digests(), plain.digests());
        assert_eq!(read.encode_snapshot().unwrap(), object);
        let limit = json.len() as u64 - 1;
        let e = Image::read_snapshot_within(&object[..], Encoding::Lz4, limit).unwrap_err();
        assert!(
            format!("{e:#}").contains("decompresses to more than"),
            "{e:#}"
        );
        // A plain snapshot is not taken for a compressed one.
        assert!(read_snapshot(json.as_bytes(), Encoding::Lz4).is_err());
    }

    fn record(text: &str) -> Vec<u8> {
        let mut metadata = Metadata::default();
        metadata.insert(FieldValue::AltText(AltText { text: text.into() }));
        Record::new(metadata).encode().unwrap()
    }

    /// Every record with the digest its bytes state, and every digest the
    /// image hands out: the two must name the same media with the same
    /// digests.
    fn records_and_digests(image: &Image) -> (Vec<String>, Vec<String>) {
        let records = image
            .records
            .iter()
            .map(|(id, place)| {
                let digest = Digest::stated(&image.bytes(&place).unwrap()).unwrap();
                format!("{id} {digest:?}")
            })
            .collect();
        let digests = image
            .digests()
            .iter()
            .map(|(id, digest)| format!("{id} {digest:?}"))
            .collect();
        (records, digests)
    }

    /// A snapshot is untrusted: one whose records are out of ID order or
    /// name a media twice (no xmeta writes one) reads as a B-tree read it,
    /// the last record of a media winning, in its records and its digests
    /// alike, and writes back in order.
    #[test]
    fn a_snapshot_out_of_order_or_with_repeats_reads_as_the_last_of_each() {
        let image = image_of(&["first", "second", "third"]);
        let text = json_of(&image);
        let records = |s: &str| {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            v["records"].as_array().unwrap().clone()
        };
        let read_with = |list: Vec<serde_json::Value>| {
            let mut forged: serde_json::Value = serde_json::from_str(&text).unwrap();
            forged["records"] = serde_json::Value::Array(list);
            read_snapshot(forged.to_string().as_bytes(), Encoding::Plain).unwrap()
        };
        let id = |n: &str| MediaId::parse(n).unwrap();
        let in_order = records(&text);
        // Reversed, then media 1000 again with the record of 1002; and in
        // order, then media 1001 (a row by then) again with that of 1000.
        let mut reversed = in_order.clone();
        reversed.reverse();
        reversed.push(serde_json::json!(["1000", in_order[2][1].clone()]));
        let mut repeated = in_order.clone();
        repeated.push(serde_json::json!(["1001", in_order[0][1].clone()]));
        for (list, changed, from) in [(reversed, "1000", "1002"), (repeated, "1001", "1000")] {
            let read = read_with(list);
            let (records_of, digests_of) = records_and_digests(&read);
            assert_eq!(records_of, digests_of);
            assert_eq!(read.records.len(), 3);
            assert_eq!(read.digests().len(), 3);
            assert_eq!(
                read.get(&id(changed)).unwrap(),
                image.get(&id(from)).unwrap()
            );
            // Written back: in ID order, each media's last record.
            let mut want = in_order.clone();
            let at = want.iter().position(|r| r[0] == changed).unwrap();
            want[at][1] = in_order.iter().find(|r| r[0] == from).unwrap()[1].clone();
            assert_eq!(records(&json_of(&read)), want);
        }
    }

    proptest::proptest! {
        /// Whatever a writer does (puts, removes, the spill file rewritten,
        /// the image written and read back), its records and its digests
        /// name the same media with the same digests.
        #[test]
        fn the_records_and_the_digests_stay_in_step(
            ops in proptest::collection::vec((0..5u8, 0..40u64, 0..4u8), 0..80),
        ) {
            let mut image = Image::new("lineage-1".into());
            for (op, n, text) in ops {
                let id = MediaId::parse(&(1_000 + n).to_string()).unwrap();
                match op {
                    0 | 1 => {
                        let bytes = record(&format!("text {text}"));
                        image.put(id, Digest::stated(&bytes).unwrap(), bytes);
                    }
                    2 => image.remove(&id),
                    3 => {
                        if let Some(fresh) = spill::spill(&mut image.records, image.spill.as_ref()) {
                            image.spill = Some(fresh);
                        }
                    }
                    _ => {
                        let object = image.encode_snapshot().unwrap();
                        image = read_snapshot(&object[..], Encoding::Lz4).unwrap();
                    }
                }
                let (records_of, digests_of) = records_and_digests(&image);
                proptest::prop_assert_eq!(&records_of, &digests_of);
                proptest::prop_assert_eq!(image.records.len(), records_of.len());
            }
        }
    }

    /// Only a name a writer makes is a snapshot's: a forged head must not
    /// name another object, which a writer would delete once it moved on.
    #[test]
    fn a_snapshot_name_is_only_what_writers_make() {
        for name in [
            "snapshots/00000000000000000042-0123456789abcdef.json.lz4",
            "snapshots/00000000000000000042-0123456789abcdef.json",
        ] {
            assert!(is_snapshot_name(name), "{name}");
        }
        for forged in [
            "snapshots/00000000000000000042-0123456789abcdef.lz4",
            "snapshots/00000000000000000042-0123456789abcdef.json.lz4.json",
            "snapshots/00000000000000000042-0123456789abcdef.json.lz4/x.json.lz4",
            "head.json",
            "workspace.json",
            "snapshots/../head.json",
            "snapshots/00000000000000000042-0123456789abcdef.digests",
            "snapshots/00000000000000000042-0123456789ABCDEF.json",
            "snapshots/0000000000000000042-0123456789abcdef0.json",
            "snapshots/00000000000000000042-0123456789abcdef.json/x.json",
            "journal/s/00000000000000000042-0123456789abcdef.json",
        ] {
            assert!(!is_snapshot_name(forged), "{forged}");
        }
    }

    /// A record whose stated digest is not its metadata's is refused as
    /// the snapshot is read, before anything is spilled.
    #[test]
    fn a_damaged_record_in_a_snapshot_is_refused() {
        let image = image_of(&["a cat on a mat"]);
        let text = json_of(&image);
        let forged = text.replace("a cat on a mat", "a dog on a mat");
        let e = read_snapshot(forged.as_bytes(), Encoding::Plain).unwrap_err();
        assert!(
            format!("{e:#}").contains("the record of media 1000"),
            "{e:#}"
        );
    }
}
