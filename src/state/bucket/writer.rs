//! The writer of a bucket state: holds the lease lock, keeps the state in
//! memory, and makes each change durable in the bucket before it returns.
//!
//! Confirmations are written in groups (group commit, `record_group`):
//! apply hands over every confirmation that arrived while the previous
//! group was being written, and they go (up to `GROUP_MAX`) into one
//! journal object. So an apply makes one store write per group, not per
//! media, and a confirmation waits for at most the write in flight and its
//! own (each bounded by the store's timeouts, see `store.rs`). A failed
//! write fails every confirmation of its group.
//!
//! At the end (drop), the writer compacts: a snapshot of everything, then
//! the head moved to it by a conditional update on the `ETag` the writer
//! last wrote, so a writer that lost the lock cannot overwrite the head of
//! the one that took it over; then its journals are deleted.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::anyhow;

use super::image::{self, Head, Image, Journal, Keys};
use super::lazy::Lazy;
use super::lock::Lock;
use super::store::{Put, Store, Version};
use crate::model::Digests;
use crate::model::{MediaId, Metadata};
use crate::state::digest_object;
use crate::state::history::{self, Chunk, Event};
use crate::state::moved::Moved;
use crate::state::{
    new_lineage, Digest, Filter, Provenance, Record, Recording, Replacement, StateReader,
    StateWriter, VisitEntries, VisitRecords,
};
use crate::time::Timestamp;

/// The most confirmations one journal object holds.
pub const GROUP_MAX: usize = 256;

pub struct BucketWriter {
    store: Store,
    keys: Keys,
    shown: String,
    lock: Lock,
    provenance: RwLock<Provenance>,
    /// Everything below, changed one write at a time.
    written: Mutex<Written>,
    /// What readers of this writer see: the last durable state. Set once
    /// its snapshot is read (`opening`), until `done_reading`.
    image: RwLock<Option<Image>>,
    /// The state as opened until the image is wanted, and whether it was
    /// let go since.
    opening: Mutex<Opening>,
}

/// The state a writer opened, its snapshot read on a thread of its own
/// (beside the parse, as before) and waited for only when a record is
/// read or written: a writer that records nothing (a no-op apply, the
/// commonest apply on merge) never waits for it. Its lineage, serial and
/// digests (which a plan compares with) are known at once.
enum Opening {
    Reading {
        opened: Opened,
        image: std::thread::JoinHandle<anyhow::Result<Image>>,
    },
    /// The read failed (a store that did not answer, a damaged snapshot):
    /// the next caller reads the state again.
    Failed { opened: Opened },
    /// The image is set.
    Done,
    /// The image was let go (`done_reading`): nothing reads it again.
    LetGo,
}

/// What the writer opened: the state its image must be.
struct Opened {
    lineage: String,
    serial: u64,
    digests: Digests,
}

/// What the writer wrote, for its next write and its compaction.
struct Written {
    head: Head,
    version: Version,
    /// The session this writer's journals go under.
    session: String,
    /// Its journals since the last compaction, oldest first.
    journals: Vec<String>,
}

fn random_id() -> String {
    new_lineage()[..16].to_string()
}

impl BucketWriter {
    /// Opens the writer of a state found at `found` (or a new one), its
    /// lock already held: the head now names this writer's session, and
    /// the journals of a writer that died are compacted in first.
    pub fn open(
        store: Store,
        keys: Keys,
        shown: String,
        lock: Lock,
        provenance: &Provenance,
        found: Option<(Head, Version, Lazy)>,
    ) -> anyhow::Result<BucketWriter> {
        let session = random_id();
        let (written, image, opening) = match found {
            None => {
                let head = Head {
                    format: image::FORMAT,
                    lineage: new_lineage(),
                    serial: 0,
                    snapshot: None,
                    digests: false,
                    session: Some(session.clone()),
                    moved: None,
                };
                let version = match store.create(&keys.head(), serde_json::to_vec(&head)?)? {
                    Put::Done(version) => version,
                    Put::Conflict => anyhow::bail!(
                        "another writer created the state at {shown} at the same time; run the command again"
                    ),
                };
                let image = Image::new(head.lineage.clone());
                let written = Written {
                    head,
                    version,
                    session: session.clone(),
                    journals: Vec::new(),
                };
                (written, RwLock::new(Some(image)), Opening::Done)
            }
            Some((head, version, state)) => {
                let left = head
                    .session
                    .as_ref()
                    .filter(|_| state.serial() > head.serial)
                    .map(|s| store.list(&keys.journals(s)))
                    .transpose()?
                    .unwrap_or_default();
                let written = Written {
                    head,
                    version,
                    session: session.clone(),
                    journals: left,
                };
                let opened = Opened {
                    lineage: state.lineage().to_string(),
                    serial: state.serial(),
                    digests: state.digests().clone(),
                };
                let image = std::thread::Builder::new()
                    .name("xmeta-snapshot".into())
                    .spawn(move || state.into_image())
                    .map_err(|e| anyhow!("cannot start reading the state's snapshot: {e}"))?;
                (
                    written,
                    RwLock::new(None),
                    Opening::Reading { opened, image },
                )
            }
        };
        let writer = BucketWriter {
            store,
            keys,
            shown,
            lock,
            provenance: RwLock::new(provenance.clone()),
            written: Mutex::new(written),
            image,
            opening: Mutex::new(opening),
        };
        {
            let mut written = writer.lock_written();
            if !written.journals.is_empty() {
                // Journals a dead writer left become a snapshot; the head
                // names this writer's session from now on.
                writer.compact(&mut written, Some(session))?;
            } else if written.head.session.as_deref() != Some(session.as_str()) {
                writer.claim(&mut written, session)?;
            }
        }
        Ok(writer)
    }

    fn lock_written(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the image if it is not held: its snapshot waited for, or the
    /// state read again after a failed read. Refused once let go: a read
    /// then is a caller's mistake, and reading the whole snapshot from the
    /// bucket again would hide it.
    fn load(&self) -> anyhow::Result<()> {
        if self.held().is_some() {
            return Ok(());
        }
        let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if self.held().is_some() {
            return Ok(());
        }
        let (read, opened) = match std::mem::replace(&mut *opening, Opening::Done) {
            Opening::Reading { opened, image } => {
                let read = image.join().unwrap_or_else(|_| {
                    Err(anyhow!("reading the state's snapshot failed unexpectedly"))
                });
                (read, opened)
            }
            Opening::Failed { opened } => (self.read_again(&opened), opened),
            Opening::LetGo => {
                *opening = Opening::LetGo;
                return Err(anyhow!(
                    "the state's image was let go once its copy was made; nothing reads it after"
                ));
            }
            Opening::Done => return Err(anyhow!("the state's image is missing")),
        };
        match read {
            Ok(image) => {
                *self.image.write().unwrap_or_else(PoisonError::into_inner) = Some(image);
                Ok(())
            }
            Err(e) => {
                *opening = Opening::Failed { opened };
                Err(e)
            }
        }
    }

    fn held(&self) -> RwLockReadGuard<'_, Option<Image>> {
        self.image.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The image read again after a failed read: the state as this
    /// writer opened it (it holds the lock: nobody else wrote since).
    fn read_again(&self, opened: &Opened) -> anyhow::Result<Image> {
        let Some((_, _, state)) = super::lazy::read(&self.store, &self.keys, &self.shown)? else {
            anyhow::bail!("the state at {} is gone", self.shown);
        };
        if state.lineage() != opened.lineage || state.serial() != opened.serial {
            anyhow::bail!(
                "the state at {} changed while this writer held its lock; run the command again",
                self.shown
            );
        }
        state.into_image()
    }

    /// The image, once its snapshot is read (waited for here, or read
    /// again from the bucket after a failed read).
    fn image(&self) -> anyhow::Result<Held<RwLockReadGuard<'_, Option<Image>>>> {
        self.load()?;
        Held::of(self.held())
    }

    fn image_mut(&self) -> anyhow::Result<Held<RwLockWriteGuard<'_, Option<Image>>>> {
        self.load()?;
        Held::of(self.image.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// The lineage, serial and digests, without waiting for the snapshot.
    fn opened<T>(&self, of: impl FnOnce(&str, u64, &Digests) -> T) -> anyhow::Result<T> {
        {
            let opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            if let Opening::Reading { opened, .. } | Opening::Failed { opened } = &*opening {
                return Ok(of(&opened.lineage, opened.serial, &opened.digests));
            }
        }
        let image = self.image()?;
        Ok(of(&image.lineage, image.serial, &image.digests()))
    }

    fn provenance(&self) -> Provenance {
        self.provenance
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// One write: records put (encoded, with digests) and removed, and the
    /// history chunks built for its serial; durable in one journal object
    /// before it returns, then visible to this writer's reads.
    fn commit(
        &self,
        puts: Vec<(MediaId, Digest, Vec<u8>)>,
        removes: Vec<MediaId>,
        chunks: impl FnOnce(u64) -> anyhow::Result<Vec<Chunk>>,
    ) -> anyhow::Result<()> {
        let mut written = self.lock_written();
        self.lock.check()?;
        // The image first (its snapshot read, if it still is): nothing is
        // written that could not then be applied to it.
        let (serial, lineage) = {
            let image = self.image()?;
            (image.serial + 1, image.lineage.clone())
        };
        let chunks = chunks(serial)?;
        let journal = Journal::new(
            serial,
            &lineage,
            puts.iter().map(|(id, _, b)| (*id, b.clone())).collect(),
            removes.clone(),
            &chunks,
        )?;
        let key = self.keys.journal(&written.session, serial);
        self.store.put(&key, journal.encode()?)?;
        written.journals.push(key);
        // Still ours after the write: a writer that takes the lock over
        // does so only after the lease ran out, so it reads this journal.
        // Past that, nobody may: the write does not count.
        self.lock.check()?;
        let mut image = self.image_mut()?;
        for (id, digest, bytes) in puts {
            image.put(id, digest, bytes);
        }
        for id in &removes {
            image.remove(id);
        }
        image.history.extend(chunks);
        image.serial = serial;
        Ok(())
    }

    /// Writes `recordings` (each with its own event) as one journal.
    fn write_recordings(&self, recordings: &[(Recording, Event)]) -> anyhow::Result<()> {
        let plain: Vec<Recording> = recordings.iter().map(|(r, _)| r.clone()).collect();
        let encoded = crate::state::record::encode_many(&plain)?;
        let provenance = self.provenance();
        let at = Timestamp::now();
        self.commit(encoded, Vec::new(), |serial| {
            Ok(history::group_chunks(recordings, &provenance, serial, at)?)
        })
    }

    /// Moves the head to a snapshot of the state as it is now, by a
    /// conditional update; then deletes what the old head stood on.
    /// `next`: the session later journals go under (`None` at the end).
    fn compact(&self, written: &mut Written, next: Option<String>) -> anyhow::Result<()> {
        // Encoded from the image itself (no copy of it) to a temporary
        // file, and sent from there in parts once the image is free again.
        let image = self.image()?;
        let (serial, lineage) = (image.serial, image.lineage.clone());
        let name = format!(
            "snapshots/{serial:020}-{}{}",
            random_id(),
            super::compression::COMPRESSED
        );
        let digests_name = super::image::digests_name(&name);
        let snapshot_key = format!("{}/{name}", self.keys.folder());
        let digests_key = format!("{}/{digests_name}", self.keys.folder());
        let digests = digest_object::encode(&lineage, serial, &name, &image.digests())?;
        // The records' spill file when there is one, else their bytes.
        let source = match image.snapshot_file()? {
            Some(file) => Ok(file),
            None => Err(image.encode_snapshot()?),
        };
        drop(image);
        // The two objects at once: the head names both, and neither waits
        // for the other (the digests took a round trip and the server's
        // write after the snapshot's last part).
        // This runs in `drop` too: a thread that cannot be made is no
        // panic, the digests are then written after the snapshot.
        let digests = Mutex::new(Some(digests));
        let put_digests = || {
            let bytes = digests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            bytes.map_or(Ok(()), |bytes| {
                self.store.put(&digests_key, bytes).map(drop)
            })
        };
        let put_snapshot = || match source {
            Ok(file) => self.store.put_file(&snapshot_key, file),
            Err(bytes) => self.store.put(&snapshot_key, bytes).map(drop),
        };
        let (snapshot, digests) = std::thread::scope(|scope| {
            match std::thread::Builder::new()
                .name("xmeta-digests".into())
                .spawn_scoped(scope, put_digests)
            {
                Ok(digests) => {
                    let snapshot = put_snapshot();
                    let digests = digests.join().unwrap_or_else(|_| {
                        Err(anyhow!("writing the digests failed unexpectedly"))
                    });
                    (snapshot, digests)
                }
                Err(_) => (put_snapshot(), put_digests()),
            }
        });
        if let Err(e) = snapshot.and(digests) {
            let _ = self.store.delete_many(vec![snapshot_key, digests_key]);
            return Err(e);
        }
        let head = Head {
            format: image::FORMAT,
            lineage,
            serial,
            snapshot: Some(name.clone()),
            digests: true,
            session: next.clone(),
            moved: written.head.moved.clone(),
        };
        let version = match self.store.update(
            &self.keys.head(),
            serde_json::to_vec(&head)?,
            &written.version,
        )? {
            Put::Done(version) => version,
            Put::Conflict => {
                let _ = self.store.delete_many(vec![snapshot_key, digests_key]);
                anyhow::bail!(
                    "the head of the state at {} was changed by another writer since this one opened it (its lock was taken over); this writer's journals are left under `{}` and its confirmations plan again",
                    self.shown,
                    self.keys.journals(&written.session)
                );
            }
        };
        let old = std::mem::replace(&mut written.head, head);
        written.version = version;
        if let Some(next) = next {
            written.session = next;
        }
        // The head has moved: the compaction is done, and what is left
        // of the old one is garbage no new reader follows. A failed
        // delete is a warning, never an error that would make a caller
        // put the old image back under the new head. In any order: a
        // reader of the old head reads its journals up to the first one
        // missing, an older state but a whole one. The old head's
        // snapshot stays until the next compaction: a reader that took
        // its digests reads it when a plan needs a record.
        let keep: Vec<String> = [Some(name), old.snapshot]
            .into_iter()
            .flatten()
            .flat_map(|n| [super::image::digests_name(&n), n])
            .map(|n| format!("{}/{n}", self.keys.folder()))
            .collect();
        let deleted = self
            .store
            .delete_many(written.journals.drain(..).collect())
            .and_then(|()| {
                self.store
                    .list(&format!("{}/snapshots", self.keys.folder()))
            })
            .and_then(|listed| {
                self.store
                    .delete_many(listed.into_iter().filter(|k| !keep.contains(k)).collect())
            });
        if let Err(e) = deleted {
            tracing::warn!("the state's old snapshot or journals were not all deleted: {e:#}");
        }
        Ok(())
    }

    /// Points the head at this writer's session (the snapshot stays).
    fn claim(&self, written: &mut Written, session: String) -> anyhow::Result<()> {
        let mut head = written.head.clone();
        head.session = Some(session);
        self.put_head(
            written,
            head,
            "changed as this writer opened it; run the command again",
        )
    }

    /// Moves the head to `head` if it is still the one this writer read;
    /// otherwise another writer changed it, and `conflict` says so.
    fn put_head(&self, written: &mut Written, head: Head, conflict: &str) -> anyhow::Result<()> {
        match self.store.update(
            &self.keys.head(),
            serde_json::to_vec(&head)?,
            &written.version,
        )? {
            Put::Done(version) => {
                written.head = head;
                written.version = version;
                Ok(())
            }
            Put::Conflict => Err(anyhow!(
                "the head of the state at {} {conflict}",
                self.shown
            )),
        }
    }

    /// The recorded metadata of `ids`, for their history entries.
    fn before(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Metadata>> {
        let mut out = BTreeMap::new();
        if self.provenance().off {
            return Ok(out);
        }
        let image = self.image()?;
        for id in ids {
            if let Some(record) = image.get(id)? {
                out.insert(*id, record.metadata);
            }
        }
        Ok(out)
    }
}

/// The image under its lock, there: a guard `BucketWriter::image` or
/// `image_mut` took once it was read (`done_reading` lets it go, after
/// which `load` refuses every read).
struct Held<G>(G);

impl<G: Deref<Target = Option<Image>>> Held<G> {
    fn of(guard: G) -> anyhow::Result<Held<G>> {
        if guard.is_some() {
            Ok(Held(guard))
        } else {
            Err(anyhow!("the state's image was let go while it was read"))
        }
    }
}

impl<G: Deref<Target = Option<Image>>> Deref for Held<G> {
    type Target = Image;
    fn deref(&self) -> &Image {
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("checked in `Held::of`"))
    }
}

impl<G: DerefMut<Target = Option<Image>>> DerefMut for Held<G> {
    fn deref_mut(&mut self) -> &mut Image {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("checked in `Held::of`"))
    }
}

impl StateReader for BucketWriter {
    fn exists(&self) -> bool {
        true
    }
    fn lineage(&self) -> anyhow::Result<Option<String>> {
        self.opened(|lineage, _, _| Some(lineage.to_string()))
    }
    fn serial(&self) -> anyhow::Result<u64> {
        self.opened(|_, serial, _| serial)
    }
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        self.image()?.each_record(visit)
    }
    fn digests(&self) -> anyhow::Result<Digests> {
        self.opened(|_, _, digests| digests.clone())
    }
    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.image()?.get(id)
    }
    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        if ids.is_empty() {
            // Asked of every plan: no reason to wait for the snapshot.
            return Ok(BTreeMap::new());
        }
        let image = self.image()?;
        let mut out = BTreeMap::new();
        for id in ids {
            let record = image
                .get(id)?
                .ok_or_else(|| anyhow!("media {id} has a digest but no record"))?;
            out.insert(*id, record);
        }
        Ok(out)
    }
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        self.image()?.each_entry(filter, visit)
    }
    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        let digests = self.digests()?;
        super::previews::read(&self.store, &self.keys, &digests, ids)
    }
}

impl StateWriter for BucketWriter {
    fn ready_to_record(&self) -> anyhow::Result<()> {
        self.load()
    }

    /// Lets go of the image (its index, history and records' temporary
    /// file: about 100 MB at 1,000,000 media); a read after it is refused.
    /// Not at `rest`: a watch would read the whole snapshot from the
    /// bucket again for its next edit. Only with nothing written since the
    /// last compaction, which the writer's end would otherwise make from
    /// the image.
    fn done_reading(&self) -> bool {
        let written = self.lock_written();
        let mut opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if !written.journals.is_empty() || !matches!(*opening, Opening::Done) {
            return false;
        }
        let image = self
            .image
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        *opening = Opening::LetGo;
        image.is_some()
    }

    fn record(&self, recording: Recording, event: Event) -> anyhow::Result<()> {
        self.write_recordings(&[(recording, event)])
    }

    /// One journal object per group (of at most `GROUP_MAX`): its
    /// confirmations are durable together, or fail together.
    fn record_group(&self, group: Vec<(Recording, Event)>) -> Vec<anyhow::Result<()>> {
        let mut outcomes = Vec::with_capacity(group.len());
        for part in group.chunks(GROUP_MAX) {
            let outcome = self.write_recordings(part).map_err(|e| format!("{e:#}"));
            outcomes.extend(part.iter().map(|_| outcome.clone().map_err(|e| anyhow!(e))));
        }
        outcomes
    }

    fn record_many(&self, recordings: Vec<Recording>, event: Event) -> anyhow::Result<()> {
        let tagged: Vec<(Recording, Event)> = recordings.into_iter().map(|r| (r, event)).collect();
        self.write_recordings(&tagged)
    }

    fn remove(&self, ids: &[MediaId], event: Event) -> anyhow::Result<()> {
        let before = self.before(ids)?;
        let steps: Vec<_> = before.iter().map(|(id, m)| (*id, Some(m), None)).collect();
        let provenance = self.provenance();
        let at = Timestamp::now();
        self.commit(Vec::new(), ids.to_vec(), |serial| {
            Ok(history::write_chunks(
                &steps,
                event,
                &provenance,
                serial,
                at,
            )?)
        })
    }

    /// The bucket's state is one image in memory (written as one
    /// snapshot object), so the new one is built whole here, from the
    /// records as stored (not decoded) and the history as chunks.
    fn replace_all(&self, new: Replacement<'_>) -> anyhow::Result<()> {
        let mut written = self.lock_written();
        self.lock.check()?;
        let mut image = Image::new(new.lineage.to_string());
        image.serial = new.serial;
        (new.records)(&mut |batch| {
            for (id, record) in batch {
                let bytes = record.encode()?;
                let digest = Digest::stated(&bytes)
                    .map_err(|e| anyhow!("cannot import the record of media {id}: {e}"))?;
                image.put(id, digest, bytes);
            }
            Ok(())
        })?;
        let mut chunker = history::Chunker::default();
        (new.history)(&mut |entry| {
            image.history.extend(chunker.push(entry)?);
            Ok(())
        })?;
        image.history.extend(chunker.finish()?);
        // Oldest first, as journals add them.
        image.history.sort_by_key(|c| (c.serial, c.index));
        let old = std::mem::replace(&mut *self.image_mut()?, image);
        // A new serial and lineage: later journals start a new session.
        if let Err(e) = self.compact(&mut written, Some(random_id())) {
            *self.image_mut()? = old;
            return Err(e);
        }
        Ok(())
    }

    fn prune_history(&self, before: Timestamp) -> anyhow::Result<usize> {
        let mut written = self.lock_written();
        self.lock.check()?;
        let mut pruned = 0;
        let mut kept = Vec::new();
        let old = self.image()?.clone();
        for chunk in &old.history {
            match history::prune_chunk(&chunk.bytes, before)
                .map_err(|e| image::damaged(&self.shown, &anyhow!("a history entry: {e}")))?
            {
                history::Pruned::Kept => kept.push(chunk.clone()),
                history::Pruned::Rewritten { bytes, removed } => {
                    kept.push(Chunk {
                        bytes,
                        ..chunk.clone()
                    });
                    pruned += removed;
                }
                history::Pruned::Removed { removed } => pruned += removed,
            }
        }
        self.image_mut()?.history = kept;
        if let Err(e) = self.compact(&mut written, Some(random_id())) {
            *self.image_mut()? = old;
            return Err(e);
        }
        Ok(pruned)
    }

    fn set_provenance(&self, provenance: Provenance) {
        if let Ok(mut p) = self.provenance.write() {
            *p = provenance;
        }
    }

    fn record_previews(&self, previews: &BTreeMap<MediaId, String>) -> anyhow::Result<()> {
        if previews.is_empty() {
            return Ok(());
        }
        let _written = self.lock_written();
        self.lock.check()?;
        let digests = self.digests()?;
        super::previews::write(&self.store, &self.keys, &digests, previews)
    }

    fn mark_moved(&self, moved: &Moved) -> anyhow::Result<()> {
        let mut written = self.lock_written();
        self.lock.check()?;
        let mut head = written.head.clone();
        head.moved = Some(moved.clone());
        self.put_head(
            &mut written,
            head,
            "was changed by another writer; it was not marked as moved",
        )
    }
}

impl Drop for BucketWriter {
    fn drop(&mut self) {
        let mut written = self.lock_written();
        let nothing_new = written.journals.is_empty();
        if nothing_new || self.lock.check().is_err() {
            return;
        }
        // A failed compaction loses nothing: the head still names this
        // session's journals, and the next writer compacts them.
        if let Err(e) = self.compact(&mut written, None) {
            tracing::warn!("{e:#}");
        }
    }
}
