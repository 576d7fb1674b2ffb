//! The local backend: the state in an embedded sled database in a
//! directory, with a lock file and a head (see `head.rs`) beside it.
//!
//! Keys: `m` + one length byte + the ID's digits for media (so byte order is
//! numeric order), `!` + name for the store's own facts.

mod head;
mod lock;
mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, Context};

use lock::Lock;

use super::history::{self, Event};
use super::{
    new_lineage, Empty, Entry, Filter, Provenance, Recording, StateError, StateReader, StateWriter,
    FORMAT_VERSION,
};
use crate::model::{MediaId, Metadata};
use crate::state::{Digest, Record};
use crate::time::Timestamp;

const KEY_FORMAT: &[u8] = b"!format_version";
const KEY_LINEAGE: &[u8] = b"!lineage";
const KEY_SERIAL: &[u8] = b"!serial";
const MEDIA_PREFIX: u8 = b'm';
/// History: `h` + the write's serial (8 bytes) + the chunk's index (4
/// bytes), big-endian, so chunks are in write order.
const HISTORY_PREFIX: u8 = b'h';
/// sled keeps up to this much of the database in memory (its default is
/// 1 GiB); reads are one ordered scan, which needs little cache.
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// A sled database and the directory it lives in (for messages): the
/// reads both the reader and the writer make.
struct Tree {
    dir: PathBuf,
    db: sled::Db,
}

/// The writer: holds the lock for as long as it lives.
struct SledWriter {
    tree: Tree,
    /// Released when the writer is dropped; never read.
    _lock: Lock,
    provenance: std::sync::RwLock<Provenance>,
    /// The serial of the last write, held while a write is applied: it
    /// alone numbers the writes, one after another.
    serial: std::sync::Mutex<u64>,
    /// The serial last known to be on disk: the head must never claim
    /// more, or a write that failed to flush (disk full) would make the
    /// next reader call a healthy state damaged.
    durable_serial: AtomicU64,
}

fn media_key(id: &MediaId) -> Vec<u8> {
    let mut buf = [0; 19];
    let digits = id.as_str(&mut buf);
    let mut key = Vec::with_capacity(digits.len() + 2);
    key.push(MEDIA_PREFIX);
    key.push(digits.len() as u8);
    key.extend_from_slice(digits.as_bytes());
    key
}

fn history_key(chunk: &history::Chunk) -> Vec<u8> {
    let mut key = vec![HISTORY_PREFIX];
    key.extend_from_slice(&chunk.serial.to_be_bytes());
    key.extend_from_slice(&chunk.index.to_be_bytes());
    key
}

fn id_of(key: &[u8]) -> Option<MediaId> {
    std::str::from_utf8(key.get(2..)?)
        .ok()
        .and_then(MediaId::parse)
}

/// Opens the state for writing: takes the lock, then the database,
/// creating both if needed.
pub fn open_writer(
    dir: &Path,
    command: &str,
    provenance: &Provenance,
) -> anyhow::Result<Box<dyn StateWriter>> {
    if presence(dir)? == Presence::Absent {
        create_private_dir(dir)?;
    }
    let (lock, previous) = Lock::acquire(dir, command)?;
    if let Some(previous) = previous {
        tracing::warn!("took over a stale state lock left by {previous}");
    }
    warn_if_open_to_others(dir);
    let db = open_db(dir)?;
    let tree = Tree {
        dir: dir.to_path_buf(),
        db,
    };
    let head = head::read(dir).map_err(|e| damaged(dir, e))?;
    tree.check_head_against(head)?;
    tree.initialise()?;
    let writer = SledWriter {
        serial: std::sync::Mutex::new(tree.serial()?),
        durable_serial: AtomicU64::new(tree.serial()?),
        tree,
        _lock: lock,
        provenance: std::sync::RwLock::new(provenance.clone()),
    };
    writer.write_head()?;
    Ok(Box::new(writer))
}

/// Opens the state for reading, never waiting on a writer: while one
/// holds the database, reads come from a snapshot copy of its files.
/// A missing state reads as empty and is not created.
pub fn open_reader(dir: &Path) -> anyhow::Result<Box<dyn StateReader>> {
    if presence(dir)? == Presence::Absent {
        return Ok(Box::new(Empty));
    }
    let (tree, snapshot) = open_tree(dir)?;
    Ok(Box::new(reader::SledReader::new(
        dir.to_path_buf(),
        tree,
        snapshot,
    )?))
}

/// Opens an existing state's database for reading: the live one, or while
/// a writer holds it, a snapshot copy of its files (kept as long as the
/// directory returned lives).
fn open_tree(dir: &Path) -> anyhow::Result<(Tree, Option<tempfile::TempDir>)> {
    // The head first: serials only grow, so a database opened after it
    // is at least as far along, even if a writer closed in between.
    let head = head::read(dir).map_err(|e| damaged(dir, e))?;
    let (db, snapshot) = match open_db_once(dir) {
        Ok(db) => (db, None),
        Err(_) if Lock::holder(dir).is_some() || db_is_busy(dir) => {
            let snapshot = tempfile::tempdir().context("cannot create a temporary directory")?;
            copy_dir(&dir.join("db"), &snapshot.path().join("db"))
                .map_err(|e| StateError::from_io(dir, e))?;
            (open_db(snapshot.path())?, Some(snapshot))
        }
        Err(e) => return Err(e.into_state_error(dir).into()),
    };
    warn_if_open_to_others(dir);
    let tree = Tree {
        dir: dir.to_path_buf(),
        db,
    };
    tree.check_format()?;
    tree.check_head_against(head)?;
    Ok((tree, snapshot))
}

/// Whether a state is at `dir`, without opening it; an unusable one
/// (a file, unreadable, a head without its db) is an error.
pub fn exists_at(dir: &Path) -> Result<bool, StateError> {
    Ok(presence(dir)? == Presence::Present)
}

/// Removes a lock file held from another host; see `Lock::force_unlock`.
pub fn force_unlock(dir: &Path) -> anyhow::Result<Option<crate::state::Holder>> {
    Lock::force_unlock(dir)
}

impl Tree {
    /// Refuses a database that lost what the head says it held.
    fn check_head_against(&self, head: Option<head::Head>) -> anyhow::Result<()> {
        match head {
            Some(head) => head::check(&head, self.lineage()?.as_deref(), self.serial()?)
                .map_err(|e| damaged(&self.dir, e)),
            None => Ok(()),
        }
    }

    /// A new state gets its format, lineage and serial; one of format 1
    /// (no history) is upgraded: its history starts now.
    fn initialise(&self) -> anyhow::Result<()> {
        if self.db.get(KEY_FORMAT)?.is_none() {
            self.db.insert(KEY_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
            self.db.insert(KEY_LINEAGE, new_lineage().as_bytes())?;
            self.db.insert(KEY_SERIAL, &0u64.to_be_bytes())?;
            self.db.flush()?;
        }
        self.check_format()?;
        self.db.insert(KEY_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
        Ok(())
    }

    fn check_format(&self) -> anyhow::Result<()> {
        let Some(raw) = self.db.get(KEY_FORMAT)? else {
            return Ok(());
        };
        let version = <[u8; 4]>::try_from(raw.as_ref())
            .map(u32::from_be_bytes)
            .map_err(|_| damaged(&self.dir, anyhow!("bad format version")))?;
        if version > FORMAT_VERSION {
            return Err(StateError::Newer {
                dir: self.dir.clone(),
                found: version,
                supported: FORMAT_VERSION,
            }
            .into());
        }
        Ok(())
    }

    fn decode_all(
        &self,
        raw: &[(sled::IVec, sled::IVec)],
    ) -> anyhow::Result<Vec<(MediaId, Record)>> {
        raw.iter()
            .map(|(key, value)| {
                let id = id_of(key).ok_or_else(|| damaged(&self.dir, anyhow!("bad key")))?;
                let record = self.decode(&id, value)?;
                Ok((id, record))
            })
            .collect()
    }
    fn decode(&self, id: &MediaId, value: &[u8]) -> anyhow::Result<Record> {
        Record::decode(value)
            .map_err(|e| damaged(&self.dir, anyhow!("the record of media {id}: {e}")))
    }
}

impl StateReader for Tree {
    fn exists(&self) -> bool {
        true
    }

    fn lineage(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .db
            .get(KEY_LINEAGE)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn serial(&self) -> anyhow::Result<u64> {
        Ok(self
            .db
            .get(KEY_SERIAL)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Every recorded media, by one ordered scan.
    fn all(&self) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let raw: Vec<(sled::IVec, sled::IVec)> = self
            .db
            .scan_prefix([MEDIA_PREFIX])
            .collect::<Result<_, _>>()
            .map_err(|e| damaged(&self.dir, e.into()))?;
        // Decoding (JSON and digest) is most of the cost: spread it over
        // the cores; the scan is already in key order, so the map is built
        // from sorted input.
        let decoded = crate::parallel::map_chunks(&raw, |part| self.decode_all(part));
        let mut out = BTreeMap::new();
        for part in decoded {
            out.extend(part?);
        }
        Ok(out)
    }

    /// One ordered scan, a batch at a time: the raw values of 100,000
    /// records are never all in memory, only their digests.
    fn digests(&self) -> anyhow::Result<BTreeMap<MediaId, Digest>> {
        const BATCH: usize = 8192;
        let mut out = BTreeMap::new();
        let mut scan = self.db.scan_prefix([MEDIA_PREFIX]);
        loop {
            let raw: Vec<(sled::IVec, sled::IVec)> = scan
                .by_ref()
                .take(BATCH)
                .collect::<Result<_, _>>()
                .map_err(|e| damaged(&self.dir, e.into()))?;
            if raw.is_empty() {
                return Ok(out);
            }
            let parts = crate::parallel::map_chunks(&raw, |part| {
                part.iter()
                    .map(|(key, value)| {
                        let id =
                            id_of(key).ok_or_else(|| damaged(&self.dir, anyhow!("bad key")))?;
                        let digest = Digest::stated(value).map_err(|e| {
                            damaged(&self.dir, anyhow!("the record of media {id}: {e}"))
                        })?;
                        Ok((id, digest))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            });
            for part in parts {
                out.extend(part?);
            }
        }
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.db
            .get(media_key(id))?
            .map(|v| self.decode(id, &v))
            .transpose()
    }

    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let found = crate::parallel::map_chunks(ids, |part| {
            let mut out = Vec::new();
            for id in part {
                if let Some(record) = self.get(id)? {
                    out.push((*id, record));
                }
            }
            Ok::<_, anyhow::Error>(out)
        });
        let mut out = BTreeMap::new();
        for part in found {
            out.extend(part?);
        }
        Ok(out)
    }

    fn history(&self, filter: &Filter) -> anyhow::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for item in self.db.scan_prefix([HISTORY_PREFIX]) {
            let (_, value) = item.map_err(|e| damaged(&self.dir, e.into()))?;
            let chunk = history::decode_chunk(&value)
                .map_err(|e| damaged(&self.dir, anyhow!("a history entry: {e}")))?;
            entries.extend(chunk.into_iter().filter(|e| filter.keeps(e)));
        }
        crate::state::history::sort_newest_first(&mut entries);
        Ok(entries)
    }
}

super::reads_through!(SledWriter, tree);

impl StateWriter for SledWriter {
    fn record_many(&self, recordings: Vec<Recording>, event: Event) -> anyhow::Result<()> {
        let encoded = super::record::encode_many(&recordings)?;
        let steps: Vec<_> = recordings
            .iter()
            .map(|r| (r.id, r.before.as_ref(), Some(&r.after)))
            .collect();
        let at = Timestamp::now();
        self.write(|serial| {
            let mut batch = sled::Batch::default();
            for (id, value) in encoded {
                batch.insert(media_key(&id), value);
            }
            for chunk in history::write_chunks(&steps, event, &self.provenance(), serial, at)? {
                batch.insert(history_key(&chunk), chunk.bytes);
            }
            Ok(batch)
        })
    }

    fn remove(&self, ids: &[MediaId], event: Event) -> anyhow::Result<()> {
        let before = self.before(ids.iter())?;
        let steps: Vec<_> = before.iter().map(|(id, m)| (*id, Some(m), None)).collect();
        let at = Timestamp::now();
        self.write(|serial| {
            let mut batch = sled::Batch::default();
            for id in ids {
                batch.remove(media_key(id));
            }
            for chunk in history::write_chunks(&steps, event, &self.provenance(), serial, at)? {
                batch.insert(history_key(&chunk), chunk.bytes);
            }
            Ok(batch)
        })
    }

    fn replace_all(
        &self,
        lineage: &str,
        serial: u64,
        records: &BTreeMap<MediaId, Record>,
        history: &[Entry],
    ) -> anyhow::Result<()> {
        let db = &self.tree.db;
        let mut batch = sled::Batch::default();
        batch.insert(KEY_SERIAL, &serial.to_be_bytes());
        for prefix in [MEDIA_PREFIX, HISTORY_PREFIX] {
            for item in db.scan_prefix([prefix]).keys() {
                batch.remove(item?);
            }
        }
        for (id, record) in records {
            batch.insert(media_key(id), record.encode()?);
        }
        for chunk in history::chunks_of(history)? {
            batch.insert(history_key(&chunk), chunk.bytes);
        }
        batch.insert(KEY_LINEAGE, lineage.as_bytes());
        let mut last = self.serial.lock().map_err(|_| anyhow!("a write failed"))?;
        db.apply_batch(batch)?;
        *last = serial;
        drop(last);
        self.flush()?;
        // A new lineage: the head follows it now, not at close.
        self.durable_serial.store(serial, Ordering::SeqCst);
        self.write_head()
    }

    fn set_provenance(&self, provenance: Provenance) {
        if let Ok(mut p) = self.provenance.write() {
            *p = provenance;
        }
    }

    fn prune_history(&self, before: Timestamp) -> anyhow::Result<usize> {
        let mut batch = sled::Batch::default();
        let mut pruned = 0;
        for item in self.tree.db.scan_prefix([HISTORY_PREFIX]) {
            let (key, value) = item?;
            let outcome = history::prune_chunk(&value, before)
                .map_err(|e| damaged(&self.tree.dir, anyhow!("a history entry: {e}")))?;
            match outcome {
                history::Pruned::Kept => {}
                history::Pruned::Rewritten { bytes, removed } => {
                    batch.insert(key, bytes);
                    pruned += removed;
                }
                history::Pruned::Removed { removed } => {
                    batch.remove(key);
                    pruned += removed;
                }
            }
        }
        self.tree.db.apply_batch(batch)?;
        self.flush()?;
        Ok(pruned)
    }
}

impl SledWriter {
    fn provenance(&self) -> Provenance {
        self.provenance
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// The recorded metadata of `ids`, for their history entries.
    fn before<'a>(
        &self,
        ids: impl Iterator<Item = &'a MediaId>,
    ) -> anyhow::Result<BTreeMap<MediaId, Metadata>> {
        let mut out = BTreeMap::new();
        if self.provenance().off {
            return Ok(out);
        }
        for id in ids {
            if let Some(record) = self.tree.get(id)? {
                out.insert(*id, record.metadata);
            }
        }
        Ok(out)
    }

    fn write_head(&self) -> anyhow::Result<()> {
        let head = head::Head {
            lineage: self.tree.lineage()?.unwrap_or_default(),
            serial: self.durable_serial.load(Ordering::SeqCst),
        };
        head::write(&self.tree.dir, &head)
            .with_context(|| format!("cannot write the state in `{}`", self.tree.dir.display()))
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.tree
            .db
            .flush()
            .with_context(|| format!("cannot flush the state in `{}`", self.tree.dir.display()))?;
        Ok(())
    }

    /// One atomic batch (built for the serial it moves the state to) plus
    /// that serial, applied in serial order; flushed to disk.
    fn write(&self, build: impl FnOnce(u64) -> anyhow::Result<sled::Batch>) -> anyhow::Result<()> {
        let failed = |e: sled::Error| {
            anyhow!(
                "cannot write the state in `{}`: {e}",
                self.tree.dir.display()
            )
        };
        let mut last = self.serial.lock().map_err(|_| anyhow!("a write failed"))?;
        let serial = last.saturating_add(1);
        let mut batch = build(serial)?;
        batch.insert(KEY_SERIAL, &serial.to_be_bytes());
        self.tree.db.apply_batch(batch).map_err(failed)?;
        *last = serial;
        drop(last);
        self.flush()?;
        // This write is on disk now (a flush covers every earlier write);
        // a concurrent, later one may not be yet.
        self.durable_serial.fetch_max(serial, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for SledWriter {
    fn drop(&mut self) {
        // A writer that closes cleanly moves the head's serial forward.
        if let Err(e) = self.write_head() {
            tracing::warn!("{e:#}");
        }
    }
}

/// The state reveals what is managed and when; others should not read it.
fn warn_if_open_to_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the state directory `{}` can be read by others (mode {mode:04o}); run `chmod 700 {}`",
                dir.display(),
                dir.display()
            );
        }
    }
}

fn damaged(dir: &Path, cause: anyhow::Error) -> anyhow::Error {
    StateError::Damaged {
        dir: dir.to_path_buf(),
        cause: format!("{cause:#}"),
    }
    .into()
}

#[derive(Debug, PartialEq, Eq)]
enum Presence {
    Absent,
    Present,
}

/// Whether a state is there, telling apart "none yet" from every way of
/// being there but unusable (not a directory, unreadable, head without db).
fn presence(dir: &Path) -> Result<Presence, StateError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Presence::Absent),
        Err(e) => return Err(StateError::from_io(dir, e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(StateError::NotADirectory {
                dir: dir.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    // Listing it proves it can be read: a metadata call alone succeeds on
    // a directory this user may not open.
    std::fs::read_dir(dir).map_err(|e| StateError::from_io(dir, e))?;
    match dir.join("db").try_exists() {
        Ok(true) => Ok(Presence::Present),
        Ok(false) => match head::read(dir) {
            Ok(Some(head)) => Err(StateError::DatabaseMissing {
                dir: dir.to_path_buf(),
                lineage: crate::untrusted::neutralise(&head.lineage, 64),
            }),
            Ok(None) => Ok(Presence::Absent),
            Err(e) => Err(StateError::Damaged {
                dir: dir.to_path_buf(),
                cause: format!("{e:#}"),
            }),
        },
        Err(e) => Err(StateError::from_io(dir, e)),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the state directory `{}`", dir.display()))
}

/// Why sled would not open a database.
enum OpenError {
    Sled(sled::Error),
    Panicked,
}

impl OpenError {
    fn into_state_error(self, dir: &Path) -> StateError {
        match self {
            OpenError::Sled(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                StateError::Busy {
                    dir: dir.to_path_buf(),
                }
            }
            OpenError::Sled(sled::Error::Io(e)) => StateError::from_io(dir, e),
            OpenError::Sled(e) => StateError::Damaged {
                dir: dir.to_path_buf(),
                cause: e.to_string(),
            },
            OpenError::Panicked => StateError::Damaged {
                dir: dir.to_path_buf(),
                cause: "the database could not be opened".into(),
            },
        }
    }
}

fn open_db_once(dir: &Path) -> Result<sled::Db, OpenError> {
    // sled can panic on some damaged files; that must be an error, not a crash.
    let path = dir.join("db");
    std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(&path)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
    })
    .map_err(|_| OpenError::Panicked)?
    .map_err(OpenError::Sled)
}

/// sled holds an OS lock on its files while open; a reader holds it only for
/// a moment, so a writer retries briefly before giving up.
fn open_db(dir: &Path) -> Result<sled::Db, StateError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match open_db_once(dir) {
            Ok(db) => return Ok(db),
            Err(_) if db_is_busy(dir) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(_) if db_is_busy(dir) => {
                return Err(StateError::Busy {
                    dir: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(e.into_state_error(dir)),
        }
    }
}

/// Whether another process holds sled's own lock on the database.
fn db_is_busy(dir: &Path) -> bool {
    std::fs::File::open(dir.join("db").join("db"))
        .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue};

    fn alt(text: &str) -> Metadata {
        let mut m = Metadata::default();
        m.insert(FieldValue::AltText(AltText { text: text.into() }));
        m
    }

    fn record_alt(s: &dyn StateWriter, id: &str, text: &str) {
        let id = MediaId::parse(id).unwrap();
        let before = s.get(&id).unwrap().map(|r| r.metadata);
        let event = if before.is_some() {
            Event::Update
        } else {
            Event::Create
        };
        let after = alt(text);
        s.record(Recording { id, before, after }, event).unwrap();
    }

    /// A reader lets go of the database once the digests are read (sled
    /// holds every page a scan touched), so a writer opens it at once; the
    /// reader opens it again to read a record, and refuses a state that
    /// moved in between. Before, the writer waited 5 s and failed (busy).
    #[test]
    fn a_reader_lets_go_of_the_database_after_the_digests() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
            record_alt(&*s, "1", "a");
            record_alt(&*s, "2", "b");
        }
        let one = MediaId::parse("1").unwrap();
        let reader = open_reader(dir.path()).unwrap();
        assert_eq!(reader.digests().unwrap().len(), 2);
        // Opened again for a record, the state unchanged.
        let records = reader.get_many(&[one]).unwrap();
        assert_eq!(records[&one].metadata, alt("a"));
        assert_eq!(reader.digests().unwrap().len(), 2);
        {
            // Old code: busy after 5 s of retries, while the reader held it.
            let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
            record_alt(&*s, "1", "changed");
        }
        let err = reader.get_many(&[one]).unwrap_err().to_string();
        assert!(
            err.contains("changed while it was read (serial 2, then 3)"),
            "{err}"
        );
        assert_eq!(reader.serial().unwrap(), 2);
    }

    #[test]
    fn records_survive_reopening_and_bump_the_serial() {
        let dir = tempfile::tempdir().unwrap();
        let lineage;
        {
            let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
            lineage = s.lineage().unwrap();
            s.record(
                Recording {
                    id: MediaId::parse("10").unwrap(),
                    before: None,
                    after: alt("a"),
                },
                Event::Create,
            )
            .unwrap();
            s.record(
                Recording {
                    id: MediaId::parse("9").unwrap(),
                    before: None,
                    after: alt("b"),
                },
                Event::Create,
            )
            .unwrap();
            s.record(
                Recording {
                    id: MediaId::parse("9").unwrap(),
                    before: Some(alt("b")),
                    after: alt("c"),
                },
                Event::Update,
            )
            .unwrap();
            assert_eq!(s.serial().unwrap(), 3);
        }
        let s = open_reader(dir.path()).unwrap();
        assert_eq!(s.lineage().unwrap(), lineage);
        let ids: Vec<_> = s
            .all()
            .unwrap()
            .into_keys()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, ["9", "10"]);
        // Each write left its entry, newest first, with the fields' values.
        let nine = Filter {
            media: MediaId::parse("9"),
            ..Filter::default()
        };
        let history = s.history(&nine).unwrap();
        let events: Vec<_> = history.iter().map(|e| (e.serial, e.event)).collect();
        assert_eq!(events, [(3, Event::Update), (2, Event::Create)]);
        assert_eq!(
            history[0].fields["alt_text"],
            history::FieldChange {
                before: serde_json::json!({"text": "b"}),
                after: serde_json::json!({"text": "c"}),
            }
        );
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open_writer(dir.path(), "xmeta apply", &Provenance::default()).unwrap();
        let err = open_writer(dir.path(), "xmeta adopt", &Provenance::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("xmeta apply"), "{err}");
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_writer(dir.path(), "test", &Provenance::default()).unwrap());
        {
            let db = open_db(dir.path()).unwrap();
            db.insert(KEY_FORMAT, &(FORMAT_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let err = open_reader(dir.path()).err().unwrap().to_string();
        assert!(err.contains("newer xmeta"), "{err}");
    }
}
