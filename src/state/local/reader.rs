//! The reader of a sled state. It lets go of the database once a plan has
//! read the digests, and opens it again only if a record must be read in
//! full: sled keeps in memory every page a scan touched (its cache evicts
//! only when one of 256 shards' access stacks fills, which one scan of a
//! few thousand pages never does), 45 MB for 100,000 records, which a plan
//! held beside its parsed manifests until it ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::digest_file::{self, Of, DIGESTS_FILE};
use super::{head, open_db, open_tree, Lock, Tree};
use crate::model::MediaId;
use crate::model::{Digest, Digests};
use crate::state::history::NewestFirst;
use crate::state::{Filter, Record, StateError, StateReader, VisitEntries, VisitRecords};

/// Said (at debug) when a plan took the digests from the digest file.
fn note_read_from_file() {
    tracing::debug!("the digests read from `{DIGESTS_FILE}`: the database not opened");
}

/// The database, or a snapshot copy of it while a writer held it.
struct Opened {
    tree: Tree,
    /// Keeps the snapshot's files alive as long as the tree.
    snapshot: Option<tempfile::TempDir>,
}

pub(super) struct SledReader {
    dir: PathBuf,
    /// `None` once let go of.
    opened: Mutex<Option<Opened>>,
    /// Read at the first opening; a second one must find the same, or the
    /// reader would mix two states.
    lineage: Option<String>,
    serial: u64,
    /// The digest file, opened and found to be this state's as the
    /// reader opened (`from_digest_file`); taken by the first read of the
    /// digests.
    digest_file: Mutex<Option<digest_file::Opened>>,
}

impl SledReader {
    pub(super) fn new(
        dir: PathBuf,
        tree: Tree,
        snapshot: Option<tempfile::TempDir>,
    ) -> anyhow::Result<SledReader> {
        Ok(SledReader {
            dir,
            lineage: tree.lineage()?,
            serial: tree.serial()?,
            opened: Mutex::new(Some(Opened { tree, snapshot })),
            digest_file: Mutex::new(None),
        })
    }

    /// A reader that has not opened the database: no writer holds the
    /// lock, and the digest file is the one the head names, of the state
    /// it describes. A plan then reads the digests from it, and opens the
    /// database only for the records it must read (the same serial and
    /// lineage, or `reopen` refuses). `None` otherwise.
    pub(super) fn from_digest_file(dir: &Path) -> Option<SledReader> {
        if Lock::holder(dir).is_some() {
            return None;
        }
        let head = head::read(dir).ok()??;
        let file = digest_file::open(dir, &dir.join(DIGESTS_FILE))?;
        let of = Of {
            lineage: head.lineage,
            serial: head.serial,
        };
        if file.stated.of != of || head.digests.as_ref() != Some(&file.stated.token) {
            tracing::debug!(
                "`{DIGESTS_FILE}` is of serial {}, the head of {}, and the head names {}: not used",
                file.stated.of.serial,
                of.serial,
                if head.digests.is_some() {
                    "another file"
                } else {
                    "none"
                }
            );
            return None;
        }
        Some(SledReader {
            dir: dir.to_path_buf(),
            opened: Mutex::new(None),
            lineage: Some(of.lineage),
            serial: of.serial,
            digest_file: Mutex::new(Some(file)),
        })
    }

    fn with<T>(&self, read: impl FnOnce(&Tree) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        let opened = match opened.take() {
            Some(open) => opened.insert(open),
            None => opened.insert(self.reopen()?),
        };
        read(&opened.tree)
    }

    fn reopen(&self) -> anyhow::Result<Opened> {
        let (tree, snapshot) = open_tree(&self.dir)?;
        let serial = tree.serial()?;
        if serial != self.serial || tree.lineage()? != self.lineage {
            return Err(StateError::ChangedWhileRead {
                location: self.dir.display().to_string(),
                was: self.serial,
                now: serial,
            }
            .into());
        }
        Ok(Opened { tree, snapshot })
    }

    /// Lets go of the pages read so far: closes the live database, or
    /// opens the snapshot again.
    fn let_go(&self) -> anyhow::Result<()> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Opened {
            tree,
            snapshot: Some(snapshot),
        }) = opened.take()
        {
            drop(tree);
            let tree = Tree {
                dir: self.dir.clone(),
                db: open_db(snapshot.path())?,
            };
            *opened = Some(Opened {
                tree,
                snapshot: Some(snapshot),
            });
        }
        Ok(())
    }

    /// Closes the live database. A snapshot is kept: it is this reader's
    /// own, and a new one, copied while the writer goes on, would differ.
    fn release(&self) {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if opened.as_ref().is_some_and(|o| o.snapshot.is_none()) {
            *opened = None;
        }
    }
}

impl StateReader for SledReader {
    fn exists(&self) -> bool {
        true
    }

    fn lineage(&self) -> anyhow::Result<Option<String>> {
        Ok(self.lineage.clone())
    }

    fn serial(&self) -> anyhow::Result<u64> {
        Ok(self.serial)
    }

    /// In parts, letting go of the pages each part touched.
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        let mut after = None;
        while let Some(last) = self.with(|tree| tree.records_after(after.as_deref(), visit))? {
            self.let_go()?;
            after = Some(last);
        }
        self.let_go()
    }

    /// From the digest file if it is still of this state; else from the
    /// database, which it then lets go of (see the module's comment).
    fn digests(&self) -> anyhow::Result<Digests> {
        let file = self
            .digest_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(file) = file {
            if let Some(digests) = file.digests() {
                note_read_from_file();
                // As after a scan: a record read before is no reason to
                // keep the database open.
                self.release();
                return Ok(digests);
            }
        }
        let digests = self.with(Tree::digests)?;
        self.release();
        Ok(digests)
    }

    fn streams_digests(&self) -> bool {
        self.digest_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// From the digest file, as it is read (a no-op plan never holds
    /// them all); `false` if there is none to read, or it proves not whole.
    fn each_digest(&self, visit: &mut dyn FnMut(MediaId, &Digest)) -> anyhow::Result<bool> {
        let file = self
            .digest_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(file) = file else {
            return Ok(false);
        };
        let path = file.path().to_path_buf();
        match file.each(|id, digest| {
            visit(id, digest);
            Ok(())
        }) {
            Ok(()) => {
                note_read_from_file();
                self.release();
                Ok(true)
            }
            Err(e) => {
                tracing::debug!("`{}` not used: {e:#}", path.display());
                Ok(false)
            }
        }
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.with(|tree| tree.get(id))
    }

    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|tree| tree.get_many(ids))
    }

    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        self.with(|tree| tree.get_present(ids))
    }

    /// In parts, as `each_record`.
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        let damaged = |e| super::damaged(&self.dir, anyhow::anyhow!("a history entry: {e}"));
        let mut sink = NewestFirst::new(filter, visit, &damaged);
        let mut before = None;
        while let Some(last) =
            self.with(|tree| tree.history_before(before.as_deref(), &mut sink))?
        {
            self.let_go()?;
            before = Some(last);
        }
        self.let_go()?;
        sink.finish()
    }

    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|tree| tree.previews(ids))
    }
}
