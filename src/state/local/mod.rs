//! The local backend: the state in an embedded sled database in a
//! directory, with a lock file and a head (see `head.rs`) beside it.
//!
//! Keys: `m` + one length byte + the ID's digits for media (so byte order is
//! numeric order), `d` + the same for the digest of each media's record,
//! `h` for history, `!` + name for the store's own facts.

mod digest_file;
mod digest_ledger;
mod fingerprint;
mod head;
mod lock;
mod moved_file;
mod reader;
mod replaced;
mod writer;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

pub use fingerprint::{fingerprint, Fingerprint};
use lock::Lock;
pub use writer::open_writer;

use super::history;
use super::moved::Moved;
use super::{
    new_lineage, Empty, Filter, StateError, StateReader, VisitEntries, VisitRecords, RECORD_BATCH,
};
use crate::model::Digests;
use crate::model::MediaId;
use crate::state::{Digest, Record};

const KEY_FORMAT: &[u8] = b"!format_version";
const KEY_LINEAGE: &[u8] = b"!lineage";
const KEY_SERIAL: &[u8] = b"!serial";
const MEDIA_PREFIX: u8 = b'm';
/// The digest index: each record's 32-byte digest under its own key, so a
/// plan's scan of the digests touches far fewer pages than a scan of the
/// records (sled keeps every page it touched in memory; heaptrack, 100,000
/// media: 45 MB for the records, 18 MB for their digests). Written in the
/// same atomic batch as the record.
const DIGEST_PREFIX: u8 = b'd';
/// The layout of a sled state; a newer one is refused. 1: records only;
/// 2: history beside them (a format 1 state's history starts at its next
/// write); 3: the digest index (built by the next writer of an older
/// state; until then a reader takes the digests from the records).
const FORMAT: u32 = 3;
/// The first format with the digest index.
const FORMAT_WITH_INDEX: u32 = 3;
/// Each media's image URL from X's latest read (`record_previews`): a
/// cache for reviews, outside the records, their digests and the serial.
const PREVIEW_PREFIX: u8 = b'p';
/// History: `h` + the write's serial (8 bytes) + the chunk's index (4
/// bytes), big-endian, so chunks are in write order.
const HISTORY_PREFIX: u8 = b'h';
/// sled keeps up to this much of the database in memory (its default is
/// 1 GiB); reads are one ordered scan, which needs little cache.
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// A long scan is split into parts, the database opened again between
/// them: sled keeps every page a scan touched (see `reader.rs`).
const RECORDS_PER_OPENING: usize = 100_000;
/// The same for history: up to 512 entries a chunk.
const CHUNKS_PER_OPENING: usize = 256;

/// A sled database and the directory it lives in (for messages): the
/// reads both the reader and the writer make.
struct Tree {
    dir: PathBuf,
    db: sled::Db,
}

fn media_key(id: &MediaId) -> Vec<u8> {
    id_key(MEDIA_PREFIX, id)
}

fn digest_key(id: &MediaId) -> Vec<u8> {
    id_key(DIGEST_PREFIX, id)
}

fn preview_key(id: &MediaId) -> Vec<u8> {
    id_key(PREVIEW_PREFIX, id)
}

fn id_key(prefix: u8, id: &MediaId) -> Vec<u8> {
    let mut buf = [0; 19];
    let digits = id.as_str(&mut buf);
    let mut key = Vec::with_capacity(digits.len() + 2);
    key.push(prefix);
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

/// A history key's serial and chunk index.
fn history_key_parts(key: &[u8]) -> Option<(u64, u32)> {
    let key = key.strip_prefix(&[HISTORY_PREFIX])?;
    let serial = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let index = u32::from_be_bytes(key.get(8..)?.try_into().ok()?);
    Some((serial, index))
}

fn id_of(key: &[u8]) -> Option<MediaId> {
    std::str::from_utf8(key.get(2..)?)
        .ok()
        .and_then(MediaId::parse)
}

/// Opens the state for reading, with its moved mark, never waiting on a
/// writer: while one holds the database, reads come from a snapshot copy
/// of its files. A missing state reads as empty and is not created.
pub fn open_reader(dir: &Path) -> anyhow::Result<(Box<dyn StateReader>, Option<Moved>)> {
    if presence(dir)? == Presence::Absent {
        return Ok((Box::new(Empty), None));
    }
    let moved = moved_file::read(dir)?;
    if let Some(reader) = reader::SledReader::from_digest_file(dir) {
        warn_if_open_to_others(dir);
        return Ok((Box::new(reader), moved));
    }
    let (tree, snapshot) = open_tree(dir)?;
    let reader = reader::SledReader::new(dir.to_path_buf(), tree, snapshot)?;
    Ok((Box::new(reader), moved))
}

/// Whether a state is at `dir`, and its moved mark; see `exists_at`.
pub fn exists(dir: &Path) -> anyhow::Result<(bool, Option<Moved>)> {
    if !exists_at(dir)? {
        return Ok((false, None));
    }
    Ok((true, moved_file::read(dir)?))
}

/// Opens an existing state's database for reading: the live one, or while
/// a writer holds it, a snapshot copy of its files (kept as long as the
/// directory returned lives).
fn open_tree(dir: &Path) -> anyhow::Result<(Tree, Option<tempfile::TempDir>)> {
    // The head first: serials only grow, so a database opened after it
    // is at least as far along, even if a writer closed in between.
    let head = head::read(dir).map_err(|e| damaged(dir, e))?;
    // A writer's database is its own while it holds the lock: it closes
    // and opens it again as it goes (see `writer.rs`), so a reader copies
    // it rather than open it in between.
    let live = if Lock::holder(dir).is_some() {
        None
    } else {
        Some(open_db_once(dir))
    };
    let (db, snapshot) = match live {
        Some(Ok(db)) => (db, None),
        Some(Err(e)) if !e.is_lock_held() && !db_is_busy(dir) => {
            return Err(e.into_state_error(dir).into())
        }
        _ => {
            let snapshot = tempfile::tempdir().context("cannot create a temporary directory")?;
            copy_dir(&dir.join("db"), &snapshot.path().join("db"))
                .map_err(|e| StateError::from_io(dir, e))?;
            (open_db(snapshot.path())?, Some(snapshot))
        }
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

    /// A new state gets its format, lineage and serial; an older one is
    /// upgraded: a format 1 state's history starts now, and a state
    /// without the digest index gets it, in one atomic batch with the new
    /// format.
    fn initialise(&self) -> anyhow::Result<()> {
        if self.db.get(KEY_FORMAT)?.is_none() {
            self.db.insert(KEY_FORMAT, &FORMAT.to_be_bytes())?;
            self.db.insert(KEY_LINEAGE, new_lineage().as_bytes())?;
            self.db.insert(KEY_SERIAL, &0u64.to_be_bytes())?;
            self.db.flush()?;
        }
        if self.check_format()? < FORMAT {
            let mut batch = self.index_batch()?;
            batch.insert(KEY_FORMAT, &FORMAT.to_be_bytes());
            replaced::apply_batch(&self.db, batch)?;
            self.db.flush()?;
        }
        Ok(())
    }

    /// The digest index of every record, for a state that has none.
    fn index_batch(&self) -> anyhow::Result<sled::Batch> {
        let mut batch = sled::Batch::default();
        for (id, digest) in self.digests_of_records()?.iter() {
            batch.insert(digest_key(id), digest.as_bytes());
        }
        Ok(batch)
    }

    /// The state's format (0 for a database not yet given one); refuses a
    /// newer one.
    fn check_format(&self) -> anyhow::Result<u32> {
        let Some(raw) = self.db.get(KEY_FORMAT)? else {
            return Ok(0);
        };
        let version = <[u8; 4]>::try_from(raw.as_ref())
            .map(u32::from_be_bytes)
            .map_err(|_| damaged(&self.dir, anyhow!("bad format version")))?;
        if version > FORMAT {
            return Err(StateError::Newer {
                dir: self.dir.clone(),
                found: version,
                supported: FORMAT,
            }
            .into());
        }
        Ok(version)
    }

    /// Every record's digest from the records themselves, each checked
    /// against its metadata's bytes: an ordered scan, a batch at a time,
    /// so the raw values are never all in memory.
    fn digests_of_records(&self) -> anyhow::Result<Digests> {
        self.digests_of_records_by(8192)
    }

    /// `digests_of_records`, `batch` records at a time.
    fn digests_of_records_by(&self, batch: usize) -> anyhow::Result<Digests> {
        let mut scan = self.db.scan_prefix([MEDIA_PREFIX]);
        let mut failed = None;
        let batches = std::iter::from_fn(|| {
            let batch = (|| {
                let raw: Vec<(sled::IVec, sled::IVec)> = scan
                    .by_ref()
                    .take(batch)
                    .collect::<Result<_, _>>()
                    .map_err(|e| damaged(&self.dir, e.into()))?;
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
                parts.into_iter().collect::<anyhow::Result<Vec<_>>>()
            })();
            match batch {
                Ok(parts) if parts.iter().all(Vec::is_empty) => None,
                Ok(parts) => Some(parts.into_iter().flatten()),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }
        });
        let digests = batches.flatten().collect();
        failed.map_or(Ok(digests), Err)
    }

    /// The digest index, by one ordered scan.
    fn digests_of_index(&self) -> anyhow::Result<Digests> {
        self.db
            .scan_prefix([DIGEST_PREFIX])
            .map(|item| {
                let (key, value) = item.map_err(|e| damaged(&self.dir, e.into()))?;
                let id = id_of(&key).ok_or_else(|| damaged(&self.dir, anyhow!("bad key")))?;
                let digest = Digest::from_bytes(&value).ok_or_else(|| {
                    damaged(
                        &self.dir,
                        anyhow!("the digest of media {id} is not 32 bytes"),
                    )
                })?;
                Ok((id, digest))
            })
            .collect()
    }

    /// Whether the index holds no digest (a state nothing was recorded in).
    fn has_no_digests(&self) -> bool {
        self.db.scan_prefix([DIGEST_PREFIX]).next().is_none()
    }

    /// The records after the key `after` (from the first if `None`), in
    /// ID order, a batch at a time, until `RECORDS_PER_OPENING` are read:
    /// then the last key read, for the caller to go on from after opening
    /// the database again (sled keeps every page a scan touched).
    fn records_after(
        &self,
        after: Option<&[u8]>,
        visit: &mut VisitRecords<'_>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let start = match after {
            Some(key) => Bound::Excluded(key.to_vec()),
            None => Bound::Included(vec![MEDIA_PREFIX]),
        };
        let mut scan = self
            .db
            .range((start, Bound::Excluded(vec![MEDIA_PREFIX + 1])));
        let mut read = 0;
        loop {
            let raw: Vec<(sled::IVec, sled::IVec)> = scan
                .by_ref()
                .take(RECORD_BATCH)
                .collect::<Result<_, _>>()
                .map_err(|e| damaged(&self.dir, e.into()))?;
            let Some((last, _)) = raw.last() else {
                return Ok(None);
            };
            let last = last.to_vec();
            // Decoding (JSON and digest) is most of the cost: spread it
            // over the cores; the scan is in key order, and so the batch.
            let decoded = crate::parallel::map_chunks(&raw, |part| self.decode_all(part));
            let mut batch = Vec::with_capacity(raw.len());
            for part in decoded {
                batch.extend(part?);
            }
            let full = raw.len() == RECORD_BATCH;
            drop(raw);
            visit(batch)?;
            read += RECORD_BATCH;
            if !full {
                return Ok(None);
            }
            if read >= RECORDS_PER_OPENING {
                return Ok(Some(last));
            }
        }
    }

    /// The history chunks before the key `before` (from the newest if
    /// `None`), newest write first, into `sink`, until
    /// `CHUNKS_PER_OPENING` are read: then the last key read, as for
    /// `records_after`.
    fn history_before(
        &self,
        before: Option<&[u8]>,
        sink: &mut history::NewestFirst<'_, '_>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let end = match before {
            Some(key) => Bound::Excluded(key.to_vec()),
            None => Bound::Excluded(vec![HISTORY_PREFIX + 1]),
        };
        let scan = self
            .db
            .range((Bound::Included(vec![HISTORY_PREFIX]), end))
            .rev();
        for (read, item) in scan.enumerate() {
            let (key, value) = item.map_err(|e| damaged(&self.dir, e.into()))?;
            let (serial, index) = history_key_parts(&key)
                .ok_or_else(|| damaged(&self.dir, anyhow!("a history key is not 13 bytes")))?;
            sink.push(serial, index, value.to_vec())?;
            if read + 1 >= CHUNKS_PER_OPENING {
                return Ok(Some(key.to_vec()));
            }
        }
        Ok(None)
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

impl Tree {
    /// The records of `ids`, read on every core; one that is missing is
    /// damage when `indexed` (the digests listed it), else left out.
    fn read_many(
        &self,
        ids: &[MediaId],
        indexed: bool,
    ) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let read = |part: &[MediaId]| {
            let mut out = Vec::new();
            for id in part {
                match self.get(id)? {
                    Some(record) => out.push((*id, record)),
                    None if indexed => {
                        return Err(damaged(
                            &self.dir,
                            anyhow!("media {id} has a digest but no record"),
                        ))
                    }
                    None => {}
                }
            }
            Ok::<_, anyhow::Error>(out)
        };
        // A group's few records are read here; threads pay for thousands.
        let found = if ids.len() < 1024 {
            vec![read(ids)]
        } else {
            crate::parallel::map_chunks(ids, read)
        };
        let mut out = BTreeMap::new();
        for part in found {
            out.extend(part?);
        }
        Ok(out)
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

    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        let mut after = None;
        while let Some(last) = self.records_after(after.as_deref(), visit)? {
            after = Some(last);
        }
        Ok(())
    }

    /// From the digest index; a state of an older format (not yet
    /// upgraded by a writer) has none, and its records are read instead.
    fn digests(&self) -> anyhow::Result<Digests> {
        if self.check_format()? >= FORMAT_WITH_INDEX {
            self.digests_of_index()
        } else {
            self.digests_of_records()
        }
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.db
            .get(media_key(id))?
            .map(|v| self.decode(id, &v))
            .transpose()
    }

    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        self.read_many(ids, true)
    }

    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        self.read_many(ids, false)
    }

    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        let damaged = |e| damaged(&self.dir, anyhow!("a history entry: {e}"));
        let mut sink = history::NewestFirst::new(filter, visit, &damaged);
        let mut before = None;
        while let Some(last) = self.history_before(before.as_deref(), &mut sink)? {
            before = Some(last);
        }
        sink.finish()
    }

    /// A value that is not text (damage, or a forgery) shows no image.
    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        let mut out = BTreeMap::new();
        for id in ids {
            let Some(value) = self.db.get(preview_key(id))? else {
                continue;
            };
            if let Ok(url) = std::str::from_utf8(&value) {
                out.insert(*id, url.to_string());
            }
        }
        Ok(out)
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

/// Creates the state directory, or makes an existing one that holds no
/// state yet private: the state reveals what is managed and when, and a
/// directory that came with a checkout (`state/`, 0755) is the common case.
/// One this user may not change keeps its mode, and the warning says so.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the state directory `{}`", dir.display()))?;
    let private = std::fs::Permissions::from_mode(0o700);
    if let Err(e) = std::fs::set_permissions(dir, private) {
        tracing::debug!("cannot make `{}` private: {e}", dir.display());
    }
    Ok(())
}

/// Why sled would not open a database.
enum OpenError {
    Sled(sled::Error),
    Panicked,
}

impl OpenError {
    /// sled's own lock on its files was held: by another process, or by
    /// this one's last handle, whose threads let go a moment after it is
    /// dropped. sled says so in an I/O error of kind `Other` (0.34's
    /// `Config::try_lock`) that quotes the OS error; asking the lock again
    /// afterwards races with that release, and a state reported damaged
    /// for it was not. Other locking failures (no locks on the file
    /// system) are not contention, and stay errors.
    fn is_lock_held(&self) -> bool {
        matches!(self, OpenError::Sled(sled::Error::Io(e))
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.to_string().starts_with("could not acquire lock on ")
                    && e.to_string().contains("kind: WouldBlock"))
    }

    fn into_state_error(self, dir: &Path) -> StateError {
        match self {
            e if e.is_lock_held() => StateError::Busy {
                dir: dir.to_path_buf(),
            },
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
            Err(e)
                if (e.is_lock_held() || db_is_busy(dir))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if e.is_lock_held() || db_is_busy(dir) => {
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
    use super::history::Event;
    use super::*;
    use crate::model::Metadata;
    use crate::model::{AltText, FieldValue};
    use crate::state::digest_object;
    use crate::state::{Provenance, Recording, StateWriter, Writable};

    // The backend's own functions, as the callers in `state/mod.rs` see
    // them once the moved mark is checked (these states never moved).
    fn open_writer(
        dir: &Path,
        command: &str,
        provenance: &Provenance,
    ) -> anyhow::Result<Box<dyn StateWriter>> {
        match writer::open_writer(dir, command, provenance)? {
            Writable::Open(writer) => Ok(writer),
            Writable::Moved(moved) => anyhow::bail!("moved: {moved:?}"),
        }
    }

    fn open_reader(dir: &Path) -> anyhow::Result<Box<dyn StateReader>> {
        Ok(super::open_reader(dir)?.0)
    }

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

    /// Between watch's cycles the writer's database is closed (`rest`):
    /// its lineage and serial, and reads of no media, are answered
    /// without opening it; another handle can open it meanwhile and finds
    /// every write; the next read, write or apply opens it again.
    #[test]
    fn a_writer_at_rest_has_closed_its_database_and_opens_it_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
        record_alt(&*s, "1", "a");
        let lineage = s.lineage().unwrap();
        assert!(db_is_busy(dir.path()), "open while in use");
        assert!(s.rest());
        assert_eq!(s.serial().unwrap(), 1);
        assert_eq!(s.lineage().unwrap(), lineage);
        // What a plan asks of the digests alone (no record) keeps it closed.
        assert!(s.get_many(&[]).unwrap().is_empty());
        assert!(s.get_present(&[]).unwrap().is_empty());
        assert!(s.previews(&[]).unwrap().is_empty());
        // Closed: another handle opens it (waiting, as a writer does, for
        // sled's threads to let go) and finds the write.
        let other = open_db(dir.path()).expect("closed at rest");
        assert!(other
            .get(media_key(&MediaId::parse("1").unwrap()))
            .unwrap()
            .is_some());
        drop(other);
        record_alt(&*s, "1", "b");
        assert!(db_is_busy(dir.path()), "opened again by the write");
        assert_eq!(s.serial().unwrap(), 2);
        assert!(s.rest());
        assert!(!s.rest(), "already at rest");
        assert_eq!(s.serial().unwrap(), 2);
        // An apply opens it before it sends anything.
        s.ready_to_record().unwrap();
        assert!(db_is_busy(dir.path()), "opened to record");
        assert!(s.rest());
        let one = MediaId::parse("1").unwrap();
        assert_eq!(s.get(&one).unwrap().unwrap().metadata, alt("b"));
        // Let go of at rest: the head names the digest file of serial 2.
        assert!(s.rest());
        drop(s);
        let reader = reader::SledReader::from_digest_file(dir.path()).expect("its digest file");
        assert_eq!(reader.serial().unwrap(), 2);
        assert_eq!(reader.lineage().unwrap(), lineage);
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

    /// As a state no writer has been at for an hour: a file written a
    /// moment ago may share its time stamp with a write to come.
    fn age(dir: &Path) {
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_hours(1);
        for name in [lock::LOCK_FILE, head::HEAD_FILE] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap();
            file.set_modified(hour_ago).unwrap();
        }
    }

    /// A state's fingerprint stays while only readers come (though
    /// opening sled's database writes to its log), and is gone while a
    /// writer holds the lock and just after: any writer (one that wrote
    /// nothing too) stamps the lock and the head afresh. A lock file
    /// removed (`state unlock --force`) changes it too.
    #[test]
    fn a_fingerprint_stays_with_readers_and_goes_with_any_writer() {
        let dir = tempfile::tempdir().unwrap();
        two_records(dir.path());
        assert_eq!(fingerprint(dir.path()), None, "just written");
        age(dir.path());
        let aged = fingerprint(dir.path()).expect("a state left alone");
        let reader = open_reader(dir.path()).unwrap();
        reader.digests().unwrap();
        reader.get_many(&[one()]).unwrap();
        drop(reader);
        assert_eq!(fingerprint(dir.path()).as_ref(), Some(&aged));
        {
            let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
            assert_eq!(fingerprint(dir.path()), None, "held");
            record_alt(&*s, "1", "changed");
        }
        assert_eq!(fingerprint(dir.path()), None, "written a moment ago");
        age(dir.path());
        drop(open_writer(dir.path(), "test", &Provenance::default()).unwrap());
        assert_eq!(fingerprint(dir.path()), None, "a writer that wrote nothing");
        age(dir.path());
        let aged = fingerprint(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(lock::LOCK_FILE)).unwrap();
        let unlocked = fingerprint(dir.path()).expect("no lock file: no writer");
        assert_ne!(unlocked, aged);
    }

    fn one() -> MediaId {
        MediaId::parse("1").unwrap()
    }

    /// A state with media 1 (alt text "a") and 2 ("b"), and their digests.
    fn two_records(dir: &Path) -> Digests {
        let s = open_writer(dir, "test", &Provenance::default()).unwrap();
        record_alt(&*s, "1", "a");
        record_alt(&*s, "2", "b");
        let two = MediaId::parse("2").unwrap();
        Digests::from_iter([(one(), Digest::of(&alt("a"))), (two, Digest::of(&alt("b")))])
    }

    fn raw_digests(db: &sled::Db) -> Digests {
        db.scan_prefix([DIGEST_PREFIX])
            .map(|item| {
                let (key, value) = item.unwrap();
                (id_of(&key).unwrap(), Digest::from_bytes(&value).unwrap())
            })
            .collect()
    }

    /// The digests a plan compares come from an index beside the records,
    /// so its scan does not touch (and sled does not keep) every record's
    /// pages. The old code read them from the records: the damaged record
    /// below failed the scan.
    #[test]
    fn the_digests_come_from_an_index_beside_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let digests = two_records(dir.path());
        {
            let db = open_db(dir.path()).unwrap();
            assert_eq!(raw_digests(&db), digests);
            db.insert(media_key(&one()), b"not json".as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        let reader = open_reader(dir.path()).unwrap();
        assert_eq!(reader.digests().unwrap(), digests);
        // Read in full, the damaged record is refused.
        let err = reader.get_many(&[one()]).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
    }

    /// A state of format 2 (no index) is read from its records, and its
    /// next writer builds the index.
    #[test]
    fn an_older_state_is_read_from_its_records_and_upgraded_by_its_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let digests = two_records(dir.path());
        {
            let db = open_db(dir.path()).unwrap();
            for (id, _) in digests.iter() {
                db.remove(digest_key(id)).unwrap();
            }
            db.insert(KEY_FORMAT, &2u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        assert_eq!(open_reader(dir.path()).unwrap().digests().unwrap(), digests);
        drop(open_writer(dir.path(), "test", &Provenance::default()).unwrap());
        let db = open_db(dir.path()).unwrap();
        assert_eq!(raw_digests(&db), digests);
        assert_eq!(db.get(KEY_FORMAT).unwrap().unwrap(), FORMAT.to_be_bytes());
    }

    /// The older format's digests come from the records a batch at a
    /// time: a damaged record past the first batch fails the read, never
    /// gives the digests before it as the whole.
    #[test]
    fn a_damaged_record_past_the_first_batch_fails_an_older_states_digests() {
        let dir = tempfile::tempdir().unwrap();
        two_records(dir.path());
        let db = open_db(dir.path()).unwrap();
        let record = db.get(media_key(&one())).unwrap().unwrap();
        for n in ["3", "4"] {
            let id = MediaId::parse(n).unwrap();
            db.insert(media_key(&id), record.clone()).unwrap();
        }
        let last = MediaId::parse("5").unwrap();
        db.insert(media_key(&last), b"not json".as_slice()).unwrap();
        let tree = Tree {
            dir: dir.path().to_path_buf(),
            db,
        };
        let read = |batch| tree.digests_of_records_by(batch).map(|d| d.len());
        // In the first batch, and past it (batches of two).
        for batch in [10, 2] {
            let err = format!("{:#}", read(batch).unwrap_err());
            assert!(
                err.contains("is damaged") && err.contains("media 5"),
                "{err}"
            );
        }
        tree.db.remove(media_key(&last)).unwrap();
        assert_eq!(read(2).unwrap(), 4);
    }

    #[test]
    fn a_digest_without_its_record_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        two_records(dir.path());
        {
            let db = open_db(dir.path()).unwrap();
            db.remove(media_key(&one())).unwrap();
            db.flush().unwrap();
        }
        let reader = open_reader(dir.path()).unwrap();
        let err = reader.get_many(&[one()]).unwrap_err().to_string();
        assert!(err.contains("media 1 has a digest but no record"), "{err}");
    }

    /// The writer closes and opens its database again after a bulk read
    /// (so sled lets its pages go); what it writes and reads across that
    /// stays.
    #[test]
    fn a_writer_goes_on_across_opening_its_database_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
        record_alt(&*s, "1", "a");
        assert_eq!(s.digests().unwrap().len(), 1);
        record_alt(&*s, "2", "b");
        let many: Vec<Recording> = (10..1010)
            .map(|n| Recording {
                id: MediaId::parse(&n.to_string()).unwrap(),
                before: None,
                after: alt("bulk"),
            })
            .collect();
        s.record_many(many, Event::Create).unwrap();
        record_alt(&*s, "2", "c");
        assert_eq!(s.serial().unwrap(), 4);
        drop(s);
        let reader = open_reader(dir.path()).unwrap();
        assert_eq!(reader.serial().unwrap(), 4);
        assert_eq!(reader.digests().unwrap().len(), 1002);
        let two = MediaId::parse("2").unwrap();
        assert_eq!(reader.get(&two).unwrap().unwrap().metadata, alt("c"));
    }

    /// sled's lock held by another handle is a busy state, never a damaged
    /// one: the lock may be let go before anyone asks again (a dropped
    /// handle's threads release it a moment later), so the error itself
    /// must say it. Before, a reader racing that release told the user to
    /// restore the state from a backup.
    #[test]
    fn a_held_database_lock_is_busy_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_writer(dir.path(), "test", &Provenance::default()).unwrap());
        // Waits out the writer's own release, as every writer does.
        let held = open_db(dir.path()).unwrap();
        let Err(second) = open_db_once(dir.path()) else {
            panic!("sled opened a database it holds");
        };
        let err = second.into_state_error(dir.path());
        assert!(matches!(err, StateError::Busy { .. }), "{err}");
        drop(held);
    }

    /// A writer reads a watch cycle's few records with its database left
    /// open, and more by opening it again after: the same records either
    /// way, an ID it does not hold refused either way, and it writes on.
    #[test]
    fn a_writer_reads_few_and_many_records_alike() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_writer(dir.path(), "test", &Provenance::default()).unwrap();
        let count = writer::FEW_RECORDS + 5;
        for n in 1..=count {
            record_alt(&*s, &n.to_string(), &format!("text {n}"));
        }
        let ids: Vec<MediaId> = (1..=count)
            .map(|n| MediaId::parse(&n.to_string()).unwrap())
            .collect();
        let few = s.get_many(&ids[..3]).unwrap();
        let many = s.get_many(&ids).unwrap();
        assert_eq!(few.len(), 3);
        assert_eq!(many.len(), count);
        for (id, record) in &few {
            assert_eq!(many[id].metadata, record.metadata);
        }
        assert_eq!(
            many[&ids[count - 1]].metadata,
            alt(&format!("text {count}"))
        );
        let absent = MediaId::parse("999999").unwrap();
        for asked in [vec![absent], [ids.clone(), vec![absent]].concat()] {
            let err = s.get_many(&asked).unwrap_err().to_string();
            assert!(err.contains("has a digest but no record"), "{err}");
        }
        record_alt(&*s, "1", "changed");
        assert_eq!(
            s.get_many(&ids[..1]).unwrap()[&ids[0]].metadata,
            alt("changed")
        );
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

    /// A state of `n` media (IDs 1..=n, alt text "bulk"), one write.
    fn many_records(dir: &Path, n: u64) -> Box<dyn StateWriter> {
        let s = open_writer(dir, "test", &Provenance::default()).unwrap();
        let many: Vec<Recording> = (1..=n)
            .map(|n| Recording {
                id: MediaId::parse(&n.to_string()).unwrap(),
                before: None,
                after: alt("bulk"),
            })
            .collect();
        s.record_many(many, Event::Create).unwrap();
        s
    }

    /// Records come in ID order, a batch at a time, across the database
    /// being opened again between parts; history newest first. A record
    /// damaged past the first batch fails the read after that batch was
    /// handed over (nothing is read whole first).
    #[test]
    fn records_and_history_stream_in_order_and_a_damaged_record_stops_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * RECORD_BATCH as u64 + 5;
        drop(many_records(dir.path(), n));
        let reader = open_reader(dir.path()).unwrap();
        let mut seen = Vec::new();
        let mut batches = 0;
        reader
            .each_record(&mut |batch| {
                assert!(batch.len() <= RECORD_BATCH);
                batches += 1;
                seen.extend(batch.into_iter().map(|(id, _)| id));
                Ok(())
            })
            .unwrap();
        let expected: Vec<MediaId> = (1..=n)
            .map(|n| MediaId::parse(&n.to_string()).unwrap())
            .collect();
        assert_eq!((seen, batches), (expected, 3));
        let history = reader.history(&Filter::default()).unwrap();
        assert_eq!(history.len(), n as usize);
        assert!(history.windows(2).all(|w| w[0].media < w[1].media));
        drop(reader);
        {
            let db = open_db(dir.path()).unwrap();
            let damaged = MediaId::parse(&(RECORD_BATCH as u64 + 10).to_string()).unwrap();
            db.insert(media_key(&damaged), b"not json".as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        let reader = open_reader(dir.path()).unwrap();
        let mut handed = 0;
        let err = reader
            .each_record(&mut |batch| {
                handed += batch.len();
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("is damaged"), "{err}");
        assert_eq!(handed, RECORD_BATCH);
    }

    /// `replace_all` builds the new state beside the old one: a source
    /// that fails half-way leaves the old state as it was (records,
    /// history, lineage, serial) and nothing beside it; one that
    /// completes replaces it whole.
    #[test]
    fn a_replacement_that_fails_half_way_leaves_the_state_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let n = RECORD_BATCH as u64 + 5;
        let s = many_records(dir.path(), n);
        let before = (
            s.lineage().unwrap(),
            s.serial().unwrap(),
            s.all().unwrap(),
            s.history(&Filter::default()).unwrap(),
        );
        let record = || {
            let mut r = crate::state::Record::new(alt("new"));
            r.applied_at = crate::time::Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
            r
        };
        let failed = s.replace_all(crate::state::Replacement {
            lineage: "other",
            serial: 40,
            records: &mut |visit| {
                let batch = (1..=RECORD_BATCH as u64)
                    .map(|n| (MediaId::parse(&n.to_string()).unwrap(), record()))
                    .collect();
                visit(batch)?;
                anyhow::bail!("the export is damaged half-way")
            },
            history: &mut |_| Ok(()),
        });
        assert_eq!(
            failed.unwrap_err().to_string(),
            "the export is damaged half-way"
        );
        let after = (
            s.lineage().unwrap(),
            s.serial().unwrap(),
            s.all().unwrap(),
            s.history(&Filter::default()).unwrap(),
        );
        assert!(after == before, "the state changed");
        assert!(!dir.path().join(writer::REPLACEMENT_DB).exists());
        let history = vec![history::Entry::new(
            one(),
            Event::Import,
            None,
            Some(&alt("new")),
            &Provenance::default(),
            40,
            crate::time::Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        )];
        s.replace_all(crate::state::Replacement {
            lineage: "other",
            serial: 40,
            records: &mut |visit| visit(vec![(one(), record())]),
            history: &mut |visit| history.iter().try_for_each(|e| visit(e.clone())),
        })
        .unwrap();
        drop(s);
        let reader = open_reader(dir.path()).unwrap();
        assert_eq!(reader.lineage().unwrap().as_deref(), Some("other"));
        assert_eq!(reader.serial().unwrap(), 40);
        assert_eq!(reader.all().unwrap(), BTreeMap::from([(one(), record())]));
        assert_eq!(reader.history(&Filter::default()).unwrap(), history);
        assert!(!dir.path().join(writer::REPLACEMENT_DB).exists());
    }

    #[test]
    fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_writer(dir.path(), "test", &Provenance::default()).unwrap());
        {
            let db = open_db(dir.path()).unwrap();
            db.insert(KEY_FORMAT, &(FORMAT + 1).to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        // A writer of the newer format names it in its digest file too.
        let newer = digest_object::Of {
            lineage: head::read(dir.path()).unwrap().unwrap().lineage,
            serial: 0,
            snapshot: format!("db format {}, log of 0 bytes", FORMAT + 1),
        };
        let mut file = std::fs::File::create(dir.path().join(digest_file::DIGESTS_FILE)).unwrap();
        digest_object::write_to(&mut file, &newer, 0, |_| Ok(())).unwrap();
        let err = open_reader(dir.path()).err().unwrap().to_string();
        assert!(err.contains("newer xmeta"), "{err}");
    }
}
