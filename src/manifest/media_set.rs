//! The declared media, sorted by ID: a vector, not a map. A map's nodes
//! held 18 MB for 100,000 media where the vector holds 8, and every reader
//! either walks the media in ID order or looks one up. Shared: watch keeps
//! the set between cycles and hands each plan a copy, which is one count,
//! not a copy of every entry (a fifth of a re-plan at 1,000,000 media).

use std::sync::Arc;

use crate::manifest::Entry;
use crate::model::MediaId;

#[derive(Clone, Debug, Default)]
pub struct MediaSet(Arc<Vec<Entry>>);

impl MediaSet {
    /// Entries sorted by ID, each ID once (`assemble_lenient` makes them).
    pub(super) fn from_sorted(entries: Vec<Entry>) -> MediaSet {
        debug_assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
        MediaSet(Arc::new(entries))
    }

    /// Puts `entry` in the place of the one of its ID, which is there
    /// (watch's edit of a file that declares the same media as before).
    /// Copies the entries first only if a plan still holds them.
    pub(crate) fn replace(&mut self, entry: Entry) -> bool {
        let Ok(i) = self.0.binary_search_by_key(&entry.id, |e| e.id) else {
            return false;
        };
        Arc::make_mut(&mut self.0)[i] = entry;
        true
    }

    #[must_use]
    pub fn get(&self, id: &MediaId) -> Option<&Entry> {
        let i = self.0.binary_search_by_key(id, |e| e.id).ok()?;
        self.0.get(i)
    }

    #[must_use]
    pub fn contains_key(&self, id: &MediaId) -> bool {
        self.get(id).is_some()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In ID order.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.0
    }

    pub fn values(&self) -> std::slice::Iter<'_, Entry> {
        self.0.iter()
    }

    /// Keeps the media `keep` says yes to. When most go (a plan that
    /// finds most media unchanged), the few kept are copied out (an
    /// entry's copy shares its metadata) and the rest are freed on a
    /// thread of their own (`drop_later`), off the plan's critical path.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let kept: Vec<bool> = self.0.iter().map(&mut keep).collect();
        let count = kept.iter().filter(|k| **k).count();
        if count * 2 <= self.0.len() {
            let copies = self.0.iter().zip(&kept).filter(|(_, k)| **k);
            let copies: Vec<Entry> = copies.map(|(e, _)| e.clone()).collect();
            crate::drop_later::drop_later(std::mem::replace(&mut self.0, Arc::new(copies)));
        } else {
            let mut kept = kept.into_iter();
            Arc::make_mut(&mut self.0).retain(|_| kept.next().unwrap_or(true));
        }
    }
}

impl IntoIterator for MediaSet {
    type Item = Entry;
    type IntoIter = std::vec::IntoIter<Entry>;

    /// In ID order; the entries are copied only if shared.
    fn into_iter(self) -> Self::IntoIter {
        Arc::unwrap_or_clone(self.0).into_iter()
    }
}
