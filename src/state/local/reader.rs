//! The reader of a sled state. It lets go of the database once a plan has
//! read the digests, and opens it again only if a record must be read in
//! full: sled keeps in memory every page a scan touched (its cache evicts
//! only when one of 256 shards' access stacks fills, which one scan of a
//! few thousand pages never does), 45 MB for 100,000 records, which a plan
//! held beside its parsed manifests until it ended.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use super::{open_tree, Tree};
use crate::model::MediaId;
use crate::state::{Digest, Entry, Filter, Record, StateError, StateReader};

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
                dir: self.dir.clone(),
                was: self.serial,
                now: serial,
            }
            .into());
        }
        Ok(Opened { tree, snapshot })
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

    fn all(&self) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        self.with(Tree::all)
    }

    /// Then lets go of the database (see the module's comment).
    fn digests(&self) -> anyhow::Result<BTreeMap<MediaId, Digest>> {
        let digests = self.with(Tree::digests)?;
        self.release();
        Ok(digests)
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

    fn history(&self, filter: &Filter) -> anyhow::Result<Vec<Entry>> {
        self.with(|tree| tree.history(filter))
    }

    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|tree| tree.previews(ids))
    }
}
