//! The state's records of the media being sent, read while their requests
//! are in flight. Recording a confirmation needs what the state holds for
//! the media (its history entry, and the fields the change leaves alone);
//! read after X confirms, that read was a round trip before each group's
//! write, on the one thread that writes, and a state 5 ms away held the
//! request stream to 550 requests per second where X answered 800.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::model::MediaId;
use crate::state::{Record, StateWriter};

/// Where a media's record is.
enum Slot {
    /// Asked for, not yet read.
    Asked,
    /// Read: the record, or `None` when the state holds none.
    Read(Option<Record>),
    /// The read failed, for this reason: the recording fails with it.
    Failed(String),
    /// Not read (the prefetch ended first): whoever records it reads it.
    Unread,
}

#[derive(Default)]
struct Inner {
    /// Asked for since the last read.
    queued: Vec<MediaId>,
    slots: HashMap<MediaId, Slot>,
    closed: bool,
}

/// The records asked for and not yet taken: at most those in flight and
/// waiting to be recorded, as every media that is not confirmed is let go.
pub struct Prefetch<'a> {
    store: &'a dyn StateWriter,
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl<'a> Prefetch<'a> {
    pub fn new(store: &'a dyn StateWriter) -> Prefetch<'a> {
        Prefetch {
            store,
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while holding it; a poisoned lock's data is
        // still whole.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads `id`'s record soon, on `run`'s thread.
    pub fn ask(&self, id: MediaId) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.queued.push(id);
        inner.slots.insert(id, Slot::Asked);
        self.changed.notify_all();
    }

    /// `id` will not be recorded (not sent, or X did not confirm it).
    pub fn let_go(&self, id: MediaId) {
        self.lock().slots.remove(&id);
    }

    /// Takes the records of `ids`, waiting for those still being read:
    /// the records the state holds, and the media whose record is not
    /// here (never asked for, or not read) for the caller to read; or why
    /// a read of one of them failed (the state's own words: a stalled
    /// server says so once, and is asked nothing more).
    pub fn take(
        &self,
        ids: &[MediaId],
    ) -> Result<(BTreeMap<MediaId, Record>, Vec<MediaId>), String> {
        let mut held = BTreeMap::new();
        let mut unread = Vec::new();
        let mut failed = None;
        let mut inner = self.lock();
        for id in ids {
            while matches!(inner.slots.get(id), Some(Slot::Asked)) {
                inner = self
                    .changed
                    .wait(inner)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            match inner.slots.remove(id) {
                Some(Slot::Read(Some(record))) => {
                    held.insert(*id, record);
                }
                Some(Slot::Read(None)) => {}
                Some(Slot::Failed(reason)) => failed = failed.or(Some(reason)),
                Some(Slot::Asked | Slot::Unread) | None => unread.push(*id),
            }
        }
        match failed {
            Some(reason) => Err(reason),
            None => Ok((held, unread)),
        }
    }

    /// No more asks: `run` reads what is queued, then returns.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Reads what is asked for, everything queued at once, until closed.
    /// Whatever ends it, no media is left waiting on a read.
    pub fn run(&self) {
        let _settled = Settled(self);
        loop {
            let ids = {
                let mut inner = self.lock();
                while inner.queued.is_empty() && !inner.closed {
                    inner = self
                        .changed
                        .wait(inner)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if inner.queued.is_empty() {
                    return;
                }
                std::mem::take(&mut inner.queued)
            };
            let read = self.store.get_present(&ids);
            let mut inner = self.lock();
            match read {
                Ok(mut records) => {
                    for id in ids {
                        if let Some(slot) = inner.slots.get_mut(&id) {
                            *slot = Slot::Read(records.remove(&id));
                        }
                    }
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    for id in ids {
                        if let Some(slot) = inner.slots.get_mut(&id) {
                            *slot = Slot::Failed(reason.clone());
                        }
                    }
                }
            }
            self.changed.notify_all();
        }
    }
}

/// On `run`'s way out (a panic too): every read still asked for is
/// marked unread, so no one waits for it.
struct Settled<'r, 'a>(&'r Prefetch<'a>);

impl Drop for Settled<'_, '_> {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.closed = true;
        inner.queued.clear();
        for slot in inner.slots.values_mut() {
            if matches!(slot, Slot::Asked) {
                *slot = Slot::Unread;
            }
        }
        self.0.changed.notify_all();
    }
}

impl<'a> Prefetch<'a> {
    /// Closes this when dropped, on a panic too: a scope that waits for
    /// `run`'s thread must not wait forever.
    pub fn closing(&self) -> Closing<'_, 'a> {
        Closing(self)
    }
}

pub struct Closing<'r, 'a>(&'r Prefetch<'a>);

impl Drop for Closing<'_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue, Metadata};
    use crate::state::history::Event;
    use crate::state::{Location, Provenance, Recording};

    fn id(n: u64) -> MediaId {
        MediaId::parse(&(1_700_000_000_000_000_000 + n).to_string()).unwrap()
    }

    fn alt(text: &str) -> Metadata {
        let mut m = Metadata::default();
        m.insert(FieldValue::AltText(AltText { text: text.into() }));
        m
    }

    /// A real state (sled, in a temporary directory) holding media 1.
    fn state() -> (tempfile::TempDir, Box<dyn StateWriter>) {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Dir(dir.path().join("state"));
        let store = crate::state::open_writer(&location, "test", &Provenance::default()).unwrap();
        let recording = Recording {
            id: id(1),
            before: None,
            after: alt("held"),
        };
        store.record(recording, Event::Create).unwrap();
        (dir, store)
    }

    #[test]
    fn what_was_asked_for_is_taken_as_read_and_the_rest_is_left_to_the_caller() {
        let (_dir, store) = state();
        let ahead = Prefetch::new(&*store);
        let (held, unread) = std::thread::scope(|scope| {
            let _closing = ahead.closing();
            // Asked before the reader runs: taking waits for the read.
            ahead.ask(id(1));
            ahead.ask(id(2));
            ahead.ask(id(4));
            ahead.let_go(id(4));
            scope.spawn(|| ahead.run());
            ahead.take(&[id(1), id(2), id(3), id(4)]).unwrap()
        });
        // 1 is held; 2 was read and the state holds none (not read again);
        // 3 was never asked for, 4 was let go: both left to the caller.
        assert_eq!(held.len(), 1);
        assert_eq!(held[&id(1)].metadata, alt("held"));
        assert_eq!(unread, vec![id(3), id(4)]);
        // Taken once: a second take finds nothing held.
        assert_eq!(ahead.take(&[id(1)]), Ok((BTreeMap::new(), vec![id(1)])));
    }

    #[test]
    fn nothing_waits_on_a_reader_that_never_ran_or_ended() {
        let (_dir, store) = state();
        // The reader's thread could not be made: asks after the close are
        // not queued, and taking returns at once.
        let ahead = Prefetch::new(&*store);
        ahead.close();
        ahead.ask(id(1));
        assert_eq!(ahead.take(&[id(1)]), Ok((BTreeMap::new(), vec![id(1)])));
        // A reader that ends with asks still queued (here: one that is
        // dropped as a panic would drop it) marks them unread.
        let ahead = Prefetch::new(&*store);
        ahead.ask(id(1));
        drop(Settled(&ahead));
        assert_eq!(ahead.take(&[id(1)]), Ok((BTreeMap::new(), vec![id(1)])));
    }
}
