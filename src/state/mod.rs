//! The state store: per media, what X last confirmed, in an embedded sled
//! database, plus a format version, a lineage and a serial.
//!
//! Keys: `m` + one length byte + the ID's digits for media (so byte order is
//! numeric order), `!` + name for the store's own facts.

mod error;
mod head;
mod lock;
mod record;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

pub use error::StateError;
pub use lock::{hostname, Holder, Lock, LockError};
pub use record::{digest_of, Record};

use crate::model::{MediaId, Metadata};

/// Bumped when the on-disk layout changes; newer states are refused.
pub const FORMAT_VERSION: u32 = 1;

const KEY_FORMAT: &[u8] = b"!format_version";
const KEY_LINEAGE: &[u8] = b"!lineage";
const KEY_SERIAL: &[u8] = b"!serial";
const MEDIA_PREFIX: u8 = b'm';
/// sled keeps up to this much of the database in memory (its default is
/// 1 GiB); reads are one ordered scan, which needs little cache.
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

pub struct StateStore {
    dir: PathBuf,
    db: Option<sled::Db>,
    /// Keeps a reader's snapshot alive (see `open_reader`).
    _snapshot: Option<tempfile::TempDir>,
    _lock: Option<Lock>,
    /// The serial last known to be on disk: the head must never claim
    /// more, or a write that failed to flush (disk full) would make the
    /// next reader call a healthy state damaged.
    durable_serial: std::sync::atomic::AtomicU64,
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

fn id_of(key: &[u8]) -> Option<MediaId> {
    std::str::from_utf8(key.get(2..)?)
        .ok()
        .and_then(MediaId::parse)
}

impl StateStore {
    /// Opens the state for writing: takes the lock, then the database,
    /// creating both if needed.
    pub fn open_writer(dir: &Path, command: &str) -> anyhow::Result<StateStore> {
        if presence(dir)? == Presence::Absent {
            create_private_dir(dir)?;
        }
        let (lock, previous) = Lock::acquire(dir, command)?;
        if let Some(previous) = previous {
            tracing::warn!("took over a stale state lock left by {previous}");
        }
        warn_if_open_to_others(dir);
        let db = open_db(dir)?;
        let store = StateStore {
            dir: dir.to_path_buf(),
            db: Some(db),
            _snapshot: None,
            _lock: Some(lock),
            durable_serial: Default::default(),
        };
        store.check_head()?;
        store.initialise()?;
        store.mark_durable()?;
        store.write_head()?;
        Ok(store)
    }

    /// Opens the state for reading, never waiting on a writer: while one
    /// holds the database, reads come from a snapshot copy of its files.
    /// A missing state reads as empty (see `exists`) and is not created.
    pub fn open_reader(dir: &Path) -> anyhow::Result<StateStore> {
        let mut store = StateStore {
            dir: dir.to_path_buf(),
            db: None,
            _snapshot: None,
            _lock: None,
            durable_serial: Default::default(),
        };
        if presence(dir)? == Presence::Absent {
            return Ok(store);
        }
        // The head first: serials only grow, so a database opened after it
        // is at least as far along, even if a writer closed in between.
        let head = head::read(dir).map_err(|e| damaged(dir, e))?;
        match open_db_once(dir) {
            Ok(db) => store.db = Some(db),
            Err(_) if Lock::holder(dir).is_some() || db_is_busy(dir) => {
                let snapshot =
                    tempfile::tempdir().context("cannot create a temporary directory")?;
                copy_dir(&dir.join("db"), &snapshot.path().join("db"))
                    .map_err(|e| StateError::from_io(dir, e))?;
                store.db = Some(open_db(snapshot.path())?);
                store._snapshot = Some(snapshot);
            }
            Err(e) => return Err(e.into_state_error(dir).into()),
        }
        warn_if_open_to_others(dir);
        store.check_format()?;
        store.check_head_against(head)?;
        Ok(store)
    }

    /// Whether a state is at `dir`, without opening it; an unusable one
    /// (a file, unreadable, a head without its db) is an error.
    pub fn exists_at(dir: &Path) -> Result<bool, StateError> {
        Ok(presence(dir)? == Presence::Present)
    }

    /// Whether there is a state at all (a reader of a missing one is empty).
    pub fn exists(&self) -> bool {
        self.db.is_some()
    }

    /// Refuses a database that lost what the head says it held.
    fn check_head(&self) -> anyhow::Result<()> {
        let head = head::read(&self.dir).map_err(|e| damaged(&self.dir, e))?;
        self.check_head_against(head)
    }

    fn check_head_against(&self, head: Option<head::Head>) -> anyhow::Result<()> {
        match head {
            Some(head) => head::check(&head, &self.lineage()?, self.serial()?)
                .map_err(|e| damaged(&self.dir, e)),
            None => Ok(()),
        }
    }

    fn mark_durable(&self) -> anyhow::Result<()> {
        let serial = self.serial()?;
        self.durable_serial
            .store(serial, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn write_head(&self) -> anyhow::Result<()> {
        let head = head::Head {
            lineage: self.lineage()?,
            serial: self
                .durable_serial
                .load(std::sync::atomic::Ordering::SeqCst),
        };
        head::write(&self.dir, &head)
            .with_context(|| format!("cannot write the state in `{}`", self.dir.display()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn initialise(&self) -> anyhow::Result<()> {
        let db = self.db()?;
        if db.get(KEY_FORMAT)?.is_none() {
            let lineage = new_lineage();
            db.insert(KEY_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
            db.insert(KEY_LINEAGE, lineage.as_bytes())?;
            db.insert(KEY_SERIAL, &0u64.to_be_bytes())?;
            db.flush()?;
        }
        self.check_format()
    }

    fn check_format(&self) -> anyhow::Result<()> {
        let Some(db) = &self.db else { return Ok(()) };
        let Some(raw) = db.get(KEY_FORMAT)? else {
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

    fn db(&self) -> anyhow::Result<&sled::Db> {
        self.db
            .as_ref()
            .ok_or_else(|| anyhow!("the state in `{}` is not open", self.dir.display()))
    }

    /// The random ID made when this state was created ("" when none yet).
    pub fn lineage(&self) -> anyhow::Result<String> {
        let Some(db) = &self.db else {
            return Ok(String::new());
        };
        Ok(db
            .get(KEY_LINEAGE)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default())
    }

    /// Grows with every write.
    pub fn serial(&self) -> anyhow::Result<u64> {
        let Some(db) = &self.db else { return Ok(0) };
        Ok(db
            .get(KEY_SERIAL)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Every recorded media, by one ordered scan.
    pub fn all(&self) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let Some(db) = &self.db else {
            return Ok(BTreeMap::new());
        };
        let raw: Vec<(sled::IVec, sled::IVec)> = db
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

    pub fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        let Some(db) = &self.db else { return Ok(None) };
        db.get(media_key(id))?
            .map(|v| self.decode(id, &v))
            .transpose()
    }

    fn decode(&self, id: &MediaId, value: &[u8]) -> anyhow::Result<Record> {
        Record::decode(value)
            .map_err(|e| damaged(&self.dir, anyhow!("the record of media {id}: {e}")))
    }

    /// Records what X confirmed for a media. Durable before it returns.
    pub fn record(&self, id: &MediaId, metadata: Metadata) -> anyhow::Result<()> {
        let value = Record::new(metadata).encode()?;
        self.write(|tx| {
            tx.insert(media_key(id), value.as_slice())?;
            Ok(())
        })
    }

    /// Records many media in one atomic write (for `adopt`).
    pub fn record_many(&self, records: Vec<(MediaId, Metadata)>) -> anyhow::Result<()> {
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = records
            .into_iter()
            .map(|(id, m)| Ok((media_key(&id), Record::new(m).encode()?)))
            .collect::<anyhow::Result<_>>()?;
        self.write(|tx| {
            for (key, value) in &encoded {
                tx.insert(key.as_slice(), value.as_slice())?;
            }
            Ok(())
        })
    }

    /// Forgets media; durable before it returns.
    pub fn remove(&self, ids: &[MediaId]) -> anyhow::Result<()> {
        self.write(|tx| {
            for id in ids {
                tx.remove(media_key(id))?;
            }
            Ok(())
        })
    }

    /// Replaces every record (for `state import`), keeping the lineage
    /// given. The serial moves past both this state's and `serial`, so a
    /// plan saved against either is seen as stale.
    pub fn replace_all(
        &self,
        lineage: &str,
        serial: u64,
        records: &BTreeMap<MediaId, Record>,
    ) -> anyhow::Result<()> {
        let db = self.db()?;
        let floor = self.serial()?.max(serial);
        let mut batch = sled::Batch::default();
        batch.insert(KEY_SERIAL, &floor.to_be_bytes());
        for item in db.scan_prefix([MEDIA_PREFIX]).keys() {
            batch.remove(item?);
        }
        for (id, record) in records {
            batch.insert(media_key(id), record.encode()?);
        }
        batch.insert(KEY_LINEAGE, lineage.as_bytes());
        db.apply_batch(batch)?;
        self.write(|_| Ok(()))?;
        self.write_head()
    }

    /// One atomic change plus a serial bump, flushed to disk.
    fn write(
        &self,
        change: impl Fn(
            &sled::transaction::TransactionalTree,
        ) -> sled::transaction::ConflictableTransactionResult<(), sled::Error>,
    ) -> anyhow::Result<()> {
        let db = self.db()?;
        let serial = db
            .transaction(|tx| {
                change(tx)?;
                let serial = tx
                    .get(KEY_SERIAL)?
                    .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                    .map_or(0, u64::from_be_bytes)
                    .saturating_add(1);
                tx.insert(KEY_SERIAL, &serial.to_be_bytes())?;
                Ok(serial)
            })
            .map_err(|e: sled::transaction::TransactionError<sled::Error>| {
                anyhow!("cannot write the state in `{}`: {e}", self.dir.display())
            })?;
        db.flush()
            .with_context(|| format!("cannot flush the state in `{}`", self.dir.display()))?;
        // This write is on disk now (a flush covers every earlier write);
        // a concurrent, later one may not be yet.
        self.durable_serial
            .fetch_max(serial, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for StateStore {
    fn drop(&mut self) {
        // A writer that closes cleanly moves the head's serial forward.
        if self._lock.is_some() {
            if let Err(e) = self.write_head() {
                tracing::warn!("{e:#}");
            }
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

fn new_lineage() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
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
        .map(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
        .unwrap_or(false)
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

    #[test]
    fn records_survive_reopening_and_bump_the_serial() {
        let dir = tempfile::tempdir().unwrap();
        let lineage;
        {
            let s = StateStore::open_writer(dir.path(), "test").unwrap();
            lineage = s.lineage().unwrap();
            s.record(&MediaId::parse("10").unwrap(), alt("a")).unwrap();
            s.record(&MediaId::parse("9").unwrap(), alt("b")).unwrap();
            assert_eq!(s.serial().unwrap(), 2);
        }
        let s = StateStore::open_reader(dir.path()).unwrap();
        assert_eq!(s.lineage().unwrap(), lineage);
        let ids: Vec<_> = s
            .all()
            .unwrap()
            .into_keys()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, ["9", "10"]);
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateStore::open_writer(dir.path(), "xmeta apply").unwrap();
        let err = StateStore::open_writer(dir.path(), "xmeta adopt")
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
        {
            let s = StateStore::open_writer(dir.path(), "test").unwrap();
            let db = s.db().unwrap();
            db.insert(KEY_FORMAT, &(FORMAT_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let err = StateStore::open_reader(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("newer xmeta"), "{err}");
    }
}
