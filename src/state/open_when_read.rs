//! A reader of a state already read at a known lineage and serial, which
//! opens the state only if something must be read from it again (a watch
//! without `--apply`, while the state's fingerprint stays).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::{
    open_reader, Filter, Location, Record, StateError, StateReader, VisitEntries, VisitRecords,
};
use crate::model::{Digests, MediaId};

pub struct OpenWhenRead<'a> {
    location: &'a Location,
    lineage: Option<String>,
    serial: u64,
    opened: Mutex<Option<Box<dyn StateReader>>>,
}

impl<'a> OpenWhenRead<'a> {
    /// The state at `location`, last seen at `lineage` and `serial`.
    #[must_use]
    pub fn new(location: &'a Location, lineage: Option<String>, serial: u64) -> OpenWhenRead<'a> {
        OpenWhenRead {
            location,
            lineage,
            serial,
            opened: Mutex::new(None),
        }
    }

    /// Opens the state, which must still be where it was seen: a reader
    /// must not mix two states (as a sled reader opening its database
    /// again refuses).
    fn with<T>(
        &self,
        read: impl FnOnce(&dyn StateReader) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if opened.is_none() {
            *opened = Some(self.open()?);
        }
        let Some(reader) = opened.as_deref() else {
            unreachable!("opened just above")
        };
        read(reader)
    }

    fn open(&self) -> anyhow::Result<Box<dyn StateReader>> {
        let reader = open_reader(self.location)?;
        let serial = reader.serial()?;
        if serial != self.serial || reader.lineage()? != self.lineage {
            return Err(StateError::ChangedWhileRead {
                location: self.location.to_string(),
                was: self.serial,
                now: serial,
            }
            .into());
        }
        Ok(reader)
    }
}

impl StateReader for OpenWhenRead<'_> {
    fn exists(&self) -> bool {
        self.lineage.is_some()
    }

    fn lineage(&self) -> anyhow::Result<Option<String>> {
        Ok(self.lineage.clone())
    }

    fn serial(&self) -> anyhow::Result<u64> {
        Ok(self.serial)
    }

    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        self.with(|r| r.each_record(visit))
    }

    fn digests(&self) -> anyhow::Result<Digests> {
        self.with(|r| r.digests())
    }

    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>> {
        self.with(|r| r.get(id))
    }

    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|r| r.get_many(ids))
    }

    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|r| r.get_present(ids))
    }

    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        self.with(|r| r.each_entry(filter, visit))
    }

    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.with(|r| r.previews(ids))
    }
}
