//! The writer of a sled state. It holds the lock for as long as it lives,
//! and closes and opens its database again after each bulk read: sled
//! keeps in memory every page a scan touched (see `reader.rs`), and
//! closing is the only way to let them go. Nobody else opens the database
//! in between: a reader finds the lock held and reads a snapshot copy.
//! After writes only now and then (`settle`, `SETTLE_BYTES`): adopt of
//! 1,000,000 media, opening it again every 10,000 media written, took 65 s
//! instead of 44 s for the same peak.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use anyhow::{anyhow, Context};

use super::digest_file::{self, Of};
use super::digest_ledger::Ledger;
use super::lock::Lock;
use super::moved_file;
use super::{
    create_private_dir, damaged, digest_key, head, history_key, media_key, open_db, presence,
    preview_key, warn_if_open_to_others, Presence, Tree, FORMAT, HISTORY_PREFIX, KEY_FORMAT,
    KEY_LINEAGE, KEY_SERIAL, SLED_CACHE_BYTES,
};
use crate::model::Digests;
use crate::model::{MediaId, Metadata};
use crate::state::history::{self, Event};
use crate::state::moved::Moved;
use crate::state::{
    Digest, Filter, Provenance, Record, Recording, Replacement, StateReader, StateWriter,
    VisitEntries, VisitRecords, Writable,
};
use crate::time::Timestamp;

/// Reads of at most this many records leave the database open: each
/// touches one leaf page or so (a few MB at most in all), where opening it
/// again reads its whole page table.
pub(super) const FEW_RECORDS: usize = 100;

struct SledWriter {
    dir: PathBuf,
    /// `None` while at rest (`rest`), or if opening it again failed; the
    /// next use opens it.
    tree: RwLock<Option<Tree>>,
    /// The lineage and serial the database had as `rest` closed it: the
    /// plan of a watch cycle asks for them, and nobody else writes while
    /// the lock is held, so they are answered without opening it.
    at_rest: Mutex<Option<(Option<String>, u64)>>,
    /// Released when the writer is dropped; never read.
    _lock: Lock,
    provenance: RwLock<Provenance>,
    /// The serial of the last write, held while a write is applied: it
    /// alone numbers the writes, one after another.
    serial: Mutex<u64>,
    /// The serial last known to be on disk: the head must never claim
    /// more, or a write that failed to flush (disk full) would make the
    /// next reader call a healthy state damaged.
    durable_serial: AtomicU64,
    /// Writes since the database was last opened (`WRITES_PER_OPENING`).
    writes_since_opening: AtomicU64,
    /// Bytes of records and history written since then, and how many
    /// make `settle` open it again (`settle_after`).
    bytes_since_opening: AtomicUsize,
    settle_bytes: AtomicUsize,
    /// The digest file set aside, and the digests written since: the
    /// next file is made from them as the writer closes.
    ledger: Mutex<Ledger>,
}

/// Between cycles, the database is closed and opened again once this
/// many writes were made since it was opened (`settle`): an open sled
/// holds what its writes read and rewrote (what they replaced is freed
/// after each one since `replaced.rs`, the rest stays until it closes:
/// an adopt of 100,000 media 84 MB settling, 92 MB never), and
/// `watch --apply` writes for
/// as long as edits keep coming (once they stop, it closes the database:
/// `rest`). Not during an apply: with history at 100,000
/// media, an opening every 64 writes made an apply of 1,000 changes at
/// no latency 0.4–0.6 s slower (0.68–0.92 → 1.24–1.28 s), and the
/// process ends with the apply. Its resident memory at 100,000 media after each
/// of a run of one-file edits (as the bench's watch row samples it), never
/// opened again: 96.9 MB after 100 edits, 101.7 after 200, 105.6 after
/// 1,000, still growing; opened every 50 writes: 95.1, 98.7, and 98.3
/// after 600.
/// An opening costs a flush and a read of the page table (tens of ms at
/// 100,000 media with history, more at 1,000,000): once in 64 writes.
const WRITES_PER_OPENING: u64 = 64;
/// Or once a sixteenth of the log's size at the last opening was
/// written, and at least this much: an adopt settles after each of its
/// batches. An opening reads the page table, so it costs more the
/// larger the state. (The figures below are from before `replaced.rs`.)
/// Adopt into an empty state, GNU time, the allocator of
/// `fresh_zeroed.rs`, alternated: 100,000 media, never opened again
/// 125,308-127,584 KiB, 1.70-1.93 s; every 4 MB 103,052-105,592 KiB,
/// 1.64-1.94 s; every sixteenth (at least 4 MB) 100,980-103,684 KiB,
/// 1.63-1.74 s. 1,000,000 media: never 400,252-428,176 KiB, 16.6-16.9 s;
/// every 4 MB 35.1 s; every sixteenth 374,768-375,196 KiB, 17.4-18.2 s.
/// Since `replaced.rs`, at least 2 MB rather than 4 (100,000 media, GNU
/// time, alternated, 5 runs each): 75,752-82,836 KiB (median 79,228),
/// 2.60-3.16 s -> 72,480-75,848 KiB (median 73,636), 2.69-3.53 s
/// (8 more runs each: median 2.24 -> 2.36 s); at least 1 MB was no
/// smaller than 2.
const SETTLE_BYTES: usize = 2 << 20;

/// How many bytes written make `settle` open the database in `dir` again.
fn settle_after(dir: &Path) -> usize {
    let log = digest_file::db_bytes_now(dir).unwrap_or(0);
    usize::try_from(log / 16).map_or(usize::MAX, |part| part.max(SETTLE_BYTES))
}

/// Opens the state for writing: takes the lock, then the database,
/// creating both if needed. A state that moved is returned as such,
/// untouched.
pub fn open_writer(dir: &Path, command: &str, provenance: &Provenance) -> anyhow::Result<Writable> {
    if presence(dir)? == Presence::Absent {
        // The first write makes the directory private, even one that was
        // there before (the repository's `state/`, checked out 0755).
        create_private_dir(dir)?;
    }
    let (lock, previous) = Lock::acquire(dir, command)?;
    // Only now, under the lock: `state migrate` marks its source while
    // holding it, so a writer that got in after it sees the mark.
    if let Some(moved) = moved_file::read(dir)? {
        return Ok(Writable::Moved(moved));
    }
    // Before anything is written: a reader must not take the digest file
    // for current while this writer moves the state on.
    let set_aside = digest_file::set_aside(dir)?;
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
    let opened = Of {
        lineage: tree.lineage()?.unwrap_or_default(),
        serial: tree.serial()?,
    };
    let ledger = Ledger::new(set_aside, &opened, tree.has_no_digests());
    let writer = SledWriter {
        dir: dir.to_path_buf(),
        serial: Mutex::new(tree.serial()?),
        durable_serial: AtomicU64::new(tree.serial()?),
        writes_since_opening: AtomicU64::new(0),
        bytes_since_opening: AtomicUsize::new(0),
        settle_bytes: AtomicUsize::new(settle_after(dir)),
        ledger: Mutex::new(ledger),
        tree: RwLock::new(Some(tree)),
        at_rest: Mutex::new(None),
        _lock: lock,
        provenance: RwLock::new(provenance.clone()),
    };
    writer.write_head(None)?;
    Ok(Writable::Open(Box::new(writer)))
}

impl StateReader for SledWriter {
    fn exists(&self) -> bool {
        true
    }

    fn lineage(&self) -> anyhow::Result<Option<String>> {
        match self.said_at_rest() {
            Some((lineage, _)) => Ok(lineage),
            None => self.with_tree(Tree::lineage),
        }
    }

    fn serial(&self) -> anyhow::Result<u64> {
        match self.said_at_rest() {
            Some((_, serial)) => Ok(serial),
            None => self.with_tree(Tree::serial),
        }
    }

    /// In parts, opening the database again after each.
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        let mut after = None;
        while let Some(last) = self.bulk_read(|tree| tree.records_after(after.as_deref(), visit))? {
            after = Some(last);
        }
        Ok(())
    }

    /// From the digest file set aside while nothing was written (its
    /// plan's read): a scan of the index takes about 100 ms at 100,000
    /// media, the file 5.
    fn digests(&self) -> anyhow::Result<Digests> {
        let serial = *self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        let held = self
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .digests(&self.dir, serial);
        match held {
            Some(digests) => Ok(digests),
            None => self.bulk_read(Tree::digests),
        }
    }

    fn streams_digests(&self) -> bool {
        let serial = *self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .streams(serial)
    }

    /// From the digest file set aside, as `digests` (an apply's plan
    /// compares them as they are read).
    fn each_digest(&self, visit: &mut dyn FnMut(MediaId, &Digest)) -> anyhow::Result<bool> {
        let serial = *self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(self
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .each_digest(&self.dir, serial, visit))
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.with_tree(|tree| tree.get(id))
    }

    /// A few (a watch cycle's edit) with the database left open: they
    /// touch a few pages, and opening it again costs a read of its page
    /// table (105–130 ms at 1,000,000 media, most of a watch re-plan).
    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        // Asked of every plan (a watch cycle's, mostly for none): a
        // database at rest stays closed.
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        if ids.len() <= FEW_RECORDS {
            self.with_tree(|tree| tree.get_many(ids))
        } else {
            self.bulk_read(|tree| tree.get_many(ids))
        }
    }

    /// A few at a time (a group's, a batch of a saved plan's), so the
    /// database stays open.
    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with_tree(|tree| tree.get_present(ids))
    }

    /// In parts, as `each_record`.
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        let damaged = |e| damaged(&self.dir, anyhow!("a history entry: {e}"));
        let mut sink = history::NewestFirst::new(filter, visit, &damaged);
        let mut before = None;
        while let Some(last) =
            self.bulk_read(|tree| tree.history_before(before.as_deref(), &mut sink))?
        {
            before = Some(last);
        }
        sink.finish()
    }

    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with_tree(|tree| tree.previews(ids))
    }
}

impl StateWriter for SledWriter {
    /// A database at rest is opened before anything is sent: one that
    /// cannot be opened now could not record what X confirms.
    fn ready_to_record(&self) -> anyhow::Result<()> {
        self.with_tree(|_| Ok(()))
    }

    fn record_many(&self, recordings: Vec<Recording>, event: Event) -> anyhow::Result<()> {
        let encoded = crate::state::record::encode_many(&recordings)?;
        let steps: Vec<_> = recordings
            .iter()
            .map(|r| (r.id, r.before.as_ref(), Some(&r.after)))
            .collect();
        let at = Timestamp::now();
        let written = encoded.iter().map(|(id, digest, _)| (*id, Some(*digest)));
        let written: Vec<_> = written.collect();
        self.write(written, |serial| {
            let mut batch = sled::Batch::default();
            let mut bytes = 0;
            for (id, digest, value) in encoded {
                bytes += value.len();
                batch.insert(media_key(&id), value);
                batch.insert(digest_key(&id), digest.as_bytes());
            }
            for chunk in history::write_chunks(&steps, event, &self.provenance(), serial, at)? {
                bytes += chunk.bytes.len();
                batch.insert(history_key(&chunk), chunk.bytes);
            }
            Ok((batch, bytes))
        })
    }

    fn remove(&self, ids: &[MediaId], event: Event) -> anyhow::Result<()> {
        let before = self.before(ids.iter())?;
        let steps: Vec<_> = before.iter().map(|(id, m)| (*id, Some(m), None)).collect();
        let at = Timestamp::now();
        let written = ids.iter().map(|id| (*id, None)).collect();
        self.write(written, |serial| {
            let mut batch = sled::Batch::default();
            for id in ids {
                batch.remove(media_key(id));
                batch.remove(digest_key(id));
                batch.remove(preview_key(id));
            }
            let mut bytes = 0;
            for chunk in history::write_chunks(&steps, event, &self.provenance(), serial, at)? {
                bytes += chunk.bytes.len();
                batch.insert(history_key(&chunk), chunk.bytes);
            }
            Ok((batch, bytes))
        })
    }

    /// Into a new database beside the old one, which then takes its
    /// place in one atomic exchange of the two directories: a failed or
    /// interrupted import leaves the old state as it was.
    fn replace_all(&self, new: Replacement<'_>) -> anyhow::Result<()> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget();
        // The lineage changes: what `rest` kept is not asked again.
        *self.at_rest.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let serial = new.serial;
        let built = self.dir.join(REPLACEMENT_DB);
        let cannot = || format!("cannot write the state in `{}`", self.dir.display());
        // One left by an import that was interrupted.
        remove_dir_if_there(&built).with_context(cannot)?;
        // The old database is closed while the new one is built: open, a
        // state of 1,000,000 media holds some 80 MB beside the new one's.
        // (Nothing reads it meanwhile: `new` hands over what it read
        // before, or reads another state.)
        if let Some(old) = self
            .tree
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            old.db.flush().with_context(cannot)?;
        }
        if let Err(e) = build_replacement(&built, new) {
            let _ = std::fs::remove_dir_all(&built);
            // The build's error is the one to report; the old database
            // stays as it was on disk either way.
            match open_db(&self.dir) {
                Ok(db) => {
                    *self.tree.write().unwrap_or_else(PoisonError::into_inner) = Some(Tree {
                        dir: self.dir.clone(),
                        db,
                    });
                    self.opened();
                }
                Err(reopen) => tracing::warn!("{reopen:#}"),
            }
            return Err(e);
        }
        {
            let mut last = self.serial.lock().map_err(|_| anyhow!("a write failed"))?;
            let mut tree = self.tree.write().unwrap_or_else(PoisonError::into_inner);
            // sled locks its files while open: the old handle goes first.
            if let Some(old) = tree.take() {
                old.db.flush().with_context(cannot)?;
            }
            let exchanged = rustix::fs::renameat_with(
                rustix::fs::CWD,
                &built,
                rustix::fs::CWD,
                self.dir.join("db"),
                rustix::fs::RenameFlags::EXCHANGE,
            );
            *tree = Some(Tree {
                dir: self.dir.clone(),
                db: open_db(&self.dir)?,
            });
            self.opened();
            exchanged
                .map_err(std::io::Error::from)
                .with_context(cannot)?;
            *last = serial;
        }
        // The old database, now beside the new one.
        if let Err(e) = std::fs::remove_dir_all(&built) {
            tracing::warn!(
                "cannot remove the old state database `{}`: {e}",
                built.display()
            );
        }
        // A new lineage: the head follows it now, not at close.
        self.durable_serial.store(serial, Ordering::SeqCst);
        self.write_head(None)
    }

    fn record_previews(&self, previews: &BTreeMap<MediaId, String>) -> anyhow::Result<()> {
        if previews.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (id, url) in previews {
            batch.insert(preview_key(id), url.as_bytes());
        }
        self.with_tree(|tree| {
            super::replaced::apply_batch(&tree.db, batch)
                .with_context(|| format!("cannot write the state in `{}`", self.dir.display()))
        })?;
        self.flush()
    }

    fn mark_moved(&self, moved: &Moved) -> anyhow::Result<()> {
        moved_file::write(&self.dir, moved)
    }

    fn settle(&self) {
        if self.writes_since_opening.load(Ordering::SeqCst) < WRITES_PER_OPENING
            && self.bytes_since_opening.load(Ordering::SeqCst)
                < self.settle_bytes.load(Ordering::SeqCst)
        {
            return;
        }
        let writes = self.writes_since_opening.load(Ordering::SeqCst);
        let bytes = self.bytes_since_opening.load(Ordering::SeqCst);
        // Every write is durable already: a failure to open the database
        // again is the next use's error (and `with_tree` tries again).
        match self.reopen() {
            Ok(()) => tracing::debug!(
                "the state database opened again after {writes} writes, {bytes} bytes"
            ),
            Err(e) => tracing::warn!("{e:#}"),
        }
    }

    /// Closes the database (sled flushes it then); the next read of a
    /// record or write opens it again. Its lineage and serial are kept
    /// (`said_at_rest`), so a plan from the digests does not open it.
    fn rest(&self) -> bool {
        let mut tree = self.tree.write().unwrap_or_else(PoisonError::into_inner);
        let Some(open) = tree.as_ref() else {
            return false;
        };
        let said = (|| anyhow::Ok((open.lineage()?, open.serial()?)))()
            .and_then(|said| self.close(&mut tree).map(|()| said));
        match said {
            Ok(said) => {
                *self.at_rest.lock().unwrap_or_else(PoisonError::into_inner) = Some(said);
                true
            }
            // Every write is durable already: the database stays open.
            Err(e) => {
                tracing::warn!("{e:#}");
                false
            }
        }
    }

    fn set_provenance(&self, provenance: Provenance) {
        if let Ok(mut p) = self.provenance.write() {
            *p = provenance;
        }
    }

    fn prune_history(&self, before: Timestamp) -> anyhow::Result<usize> {
        let pruned = self.with_tree(|tree| {
            let mut batch = sled::Batch::default();
            let mut pruned = 0;
            for item in tree.db.scan_prefix([HISTORY_PREFIX]) {
                let (key, value) = item?;
                let outcome = history::prune_chunk(&value, before)
                    .map_err(|e| damaged(&self.dir, anyhow!("a history entry: {e}")))?;
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
            super::replaced::apply_batch(&tree.db, batch)?;
            Ok(pruned)
        })?;
        // Opening it again flushes the old handle first.
        self.reopen()?;
        Ok(pruned)
    }
}

impl SledWriter {
    fn with_tree<T>(&self, read: impl FnOnce(&Tree) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let cannot = || {
            format!(
                "the state database in `{}` could not be opened again",
                self.dir.display()
            )
        };
        let mut tree = self.tree.read().unwrap_or_else(PoisonError::into_inner);
        if tree.is_none() {
            // At rest, or opening it again failed before (busy, out of
            // file handles): a long watch tries again rather than fail
            // every write after.
            drop(tree);
            let mut closed = self.tree.write().unwrap_or_else(PoisonError::into_inner);
            if closed.is_none() {
                self.open(&mut closed).with_context(cannot)?;
                tracing::debug!("the state database opened again");
            }
            drop(closed);
            tree = self.tree.read().unwrap_or_else(PoisonError::into_inner);
        }
        // Closed again in between (another thread's `rest`): rare enough
        // to be this use's error.
        let tree = tree.as_ref().ok_or_else(|| anyhow!(cannot()))?;
        read(tree)
    }

    /// A read of many pages, after which the database lets them go.
    fn bulk_read<T>(&self, read: impl FnOnce(&Tree) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let out = self.with_tree(read)?;
        self.reopen()?;
        Ok(out)
    }

    /// Closes the database (sled flushes it then) and opens it again; a
    /// failed flush leaves it open.
    fn reopen(&self) -> anyhow::Result<()> {
        let mut tree = self.tree.write().unwrap_or_else(PoisonError::into_inner);
        // sled locks its files while open: the old handle goes first.
        self.close(&mut tree)?;
        self.open(&mut tree)
    }

    /// Opens the database into `tree` (the writer's, locked for writing,
    /// closed).
    fn open(&self, tree: &mut Option<Tree>) -> anyhow::Result<()> {
        *tree = Some(Tree {
            dir: self.dir.clone(),
            db: open_db(&self.dir)?,
        });
        self.opened();
        Ok(())
    }

    /// Flushes the open database and closes it (`tree` is the writer's,
    /// locked for writing); a failed flush leaves it open.
    fn close(&self, tree: &mut Option<Tree>) -> anyhow::Result<()> {
        if let Some(open) = tree.as_ref() {
            open.db
                .flush()
                .with_context(|| format!("cannot flush the state in `{}`", self.dir.display()))?;
        }
        *tree = None;
        Ok(())
    }

    /// The lineage and serial `rest` read, while the database is closed.
    fn said_at_rest(&self) -> Option<(Option<String>, u64)> {
        let tree = self.tree.read().unwrap_or_else(PoisonError::into_inner);
        if tree.is_some() {
            return None;
        }
        self.at_rest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The database was just opened: `settle` counts from here.
    fn opened(&self) {
        *self.at_rest.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.writes_since_opening.store(0, Ordering::SeqCst);
        self.bytes_since_opening.store(0, Ordering::SeqCst);
        self.settle_bytes
            .store(settle_after(&self.dir), Ordering::SeqCst);
    }

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
            if let Some(record) = self.get(id)? {
                out.insert(*id, record.metadata);
            }
        }
        Ok(out)
    }

    /// The digest file of the state as this writer leaves it, if its
    /// database is at the serial the head will say (see `digest_file`);
    /// its token, for the head.
    fn save_digests(&self) -> anyhow::Result<Option<String>> {
        let mut ledger =
            std::mem::take(&mut *self.ledger.lock().unwrap_or_else(PoisonError::into_inner));
        let serial = self.durable_serial.load(Ordering::SeqCst);
        // A write applied but not flushed, then lost as the database was
        // opened again: the ledger holds a digest the database does not.
        if *self.serial.lock().unwrap_or_else(PoisonError::into_inner) != serial {
            ledger.forget();
        }
        // At rest (a watch stopped while idle), the database is opened
        // only if the digests must be read from it.
        let said = match self.said_at_rest() {
            Some(said) => said,
            None => self.with_tree(|tree| Ok((tree.lineage()?, tree.serial()?)))?,
        };
        match said {
            (Some(lineage), at) if at == serial => ledger
                .save(&self.dir, &Of { lineage, serial }, || {
                    self.with_tree(Tree::digests)
                })
                .map(Some),
            _ => {
                digest_file::drop_held(&self.dir);
                Ok(None)
            }
        }
    }

    /// The head, naming the digest file written with it (`digests`), if
    /// any.
    fn write_head(&self, digests: Option<String>) -> anyhow::Result<()> {
        let head = head::Head {
            lineage: self.lineage()?.unwrap_or_default(),
            serial: self.durable_serial.load(Ordering::SeqCst),
            digests,
        };
        head::write(&self.dir, &head)
            .with_context(|| format!("cannot write the state in `{}`", self.dir.display()))
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.with_tree(|tree| {
            tree.db
                .flush()
                .with_context(|| format!("cannot flush the state in `{}`", self.dir.display()))?;
            Ok(())
        })
    }

    /// One atomic batch (built for the serial it moves the state to, with
    /// the bytes of values it writes) plus that serial, applied in serial
    /// order; flushed to disk. `written`: the digests it sets (`None`:
    /// removes), for the next digest file.
    fn write(
        &self,
        written: Vec<(MediaId, Option<Digest>)>,
        build: impl FnOnce(u64) -> anyhow::Result<(sled::Batch, usize)>,
    ) -> anyhow::Result<()> {
        let failed =
            |e: sled::Error| anyhow!("cannot write the state in `{}`: {e}", self.dir.display());
        let mut last = self.serial.lock().map_err(|_| anyhow!("a write failed"))?;
        let serial = last.saturating_add(1);
        let (mut batch, bytes) = build(serial)?;
        batch.insert(KEY_SERIAL, &serial.to_be_bytes());
        self.with_tree(|tree| super::replaced::apply_batch(&tree.db, batch).map_err(failed))?;
        *last = serial;
        // In serial order, as the writes.
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(written);
        drop(last);
        self.flush()?;
        // This write is on disk now (a flush covers every earlier write);
        // a concurrent, later one may not be yet.
        self.durable_serial.fetch_max(serial, Ordering::SeqCst);
        self.writes_since_opening.fetch_add(1, Ordering::SeqCst);
        self.bytes_since_opening.fetch_add(bytes, Ordering::SeqCst);
        Ok(())
    }
}

/// Where `replace_all` builds the new database, in the state's directory.
pub(super) const REPLACEMENT_DB: &str = "db.replacement";

fn remove_dir_if_there(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A whole state, as `new` hands it over, in a new database at `path`,
/// flushed.
fn build_replacement(path: &Path, new: Replacement<'_>) -> anyhow::Result<()> {
    // Open for the whole build: each write frees what it replaced
    // (`replaced.rs`), and an opening reads the page table back. An
    // import of 1,000,000 media (GNU time, peak RSS, wall) when this was
    // closed and opened again every 3 MB written: 247,920 KiB, 51.1 s;
    // kept open, each write followed by flushes: 205,952 KiB, 43.5 s
    // (every 32 MB: 232,384 KiB, 44.0 s).
    // A full disk names the state, not only sled's I/O error.
    let shown = path.parent().unwrap_or(path).display();
    let cannot = || format!("cannot write the state in `{shown}`");
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(SLED_CACHE_BYTES)
        .open()
        .with_context(cannot)?;
    let apply = |write| super::replaced::apply_batch(&db, write).with_context(cannot);
    (new.records)(&mut |batch| {
        let mut write = sled::Batch::default();
        for (id, record) in &batch {
            let value = record.encode()?;
            let digest = Digest::stated(&value)
                .map_err(|e| anyhow!("cannot import the record of media {id}: {e}"))?;
            write.insert(media_key(id), value);
            write.insert(digest_key(id), digest.as_bytes());
        }
        apply(write)
    })?;
    let mut chunker = history::Chunker::default();
    let mut write = sled::Batch::default();
    let mut bytes = 0;
    (new.history)(&mut |entry| {
        if let Some(chunk) = chunker.push(entry)? {
            bytes += chunk.bytes.len();
            write.insert(history_key(&chunk), chunk.bytes);
            if bytes >= HISTORY_BATCH_BYTES {
                apply(std::mem::take(&mut write))?;
                bytes = 0;
            }
        }
        Ok(())
    })?;
    if let Some(chunk) = chunker.finish()? {
        write.insert(history_key(&chunk), chunk.bytes);
    }
    write.insert(KEY_FORMAT, &FORMAT.to_be_bytes());
    write.insert(KEY_LINEAGE, new.lineage.as_bytes());
    write.insert(KEY_SERIAL, &new.serial.to_be_bytes());
    apply(write)?;
    db.flush().with_context(cannot)?;
    Ok(())
}

/// How much history goes into one write of a replacement.
const HISTORY_BATCH_BYTES: usize = 1 << 20;

impl Drop for SledWriter {
    fn drop(&mut self) {
        // The digest file first: a reader trusts it only once the head
        // names it.
        let digests = self.save_digests().unwrap_or_else(|e| {
            tracing::warn!("{e:#}");
            None
        });
        // A writer that closes cleanly moves the head's serial forward.
        if let Err(e) = self.write_head(digests) {
            tracing::warn!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sixteenth of the log, never under 2 MB: the openings of a large
    /// adopt grow with the state, so their cost stays a part of it.
    #[test]
    fn settles_after_a_sixteenth_of_the_log_and_at_least_2_mb() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(settle_after(dir.path()), SETTLE_BYTES, "no log yet");
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let log = std::fs::File::create(dir.path().join("db").join("db")).unwrap();
        for (size, after) in [
            (0, SETTLE_BYTES),
            (16 * SETTLE_BYTES as u64, SETTLE_BYTES),
            (160 << 20, 10 << 20),
            (1 << 30, 64 << 20),
        ] {
            log.set_len(size).unwrap();
            assert_eq!(settle_after(dir.path()), after, "a log of {size} bytes");
        }
    }
}
