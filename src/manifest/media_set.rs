//! The declared media, sorted by ID: a vector, not a map. A map's nodes
//! held 18 MB for 100,000 media where the vector holds 8, and every reader
//! either walks the media in ID order or looks one up. Shared: watch keeps
//! the set between cycles and hands each plan a copy, which is one count,
//! not a copy of every entry (a fifth of a re-plan at 1,000,000 media); a
//! shared set is never copied whole (what a plan keeps, or walks, is
//! copied an entry at a time).

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
    pub(crate) fn replace(&mut self, entry: Entry) {
        let found = self.0.binary_search_by_key(&entry.id, |e| e.id);
        debug_assert!(found.is_ok(), "media {} is not in the set", entry.id);
        if let Ok(i) = found {
            Arc::make_mut(&mut self.0)[i] = entry;
        }
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
    /// finds most media unchanged), or the set is shared (watch keeps
    /// it), those kept are copied out (an entry's copy shares its
    /// metadata) and the rest are freed on a thread of their own
    /// (`drop_later`), off the plan's critical path.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let kept: Vec<bool> = self.0.iter().map(&mut keep).collect();
        let count = kept.iter().filter(|k| **k).count();
        if count * 2 <= self.0.len() || Arc::get_mut(&mut self.0).is_none() {
            // Made at its size: grown by doubling, it would hold up to
            // twice the kept entries' room.
            let mut copies = Vec::with_capacity(count);
            let kept = self.0.iter().zip(&kept).filter(|(_, k)| **k);
            copies.extend(kept.map(|(e, _)| e.clone()));
            crate::drop_later::drop_later(std::mem::replace(&mut self.0, Arc::new(copies)));
        } else {
            let mut kept = kept.into_iter();
            Arc::make_mut(&mut self.0).retain(|_| kept.next().unwrap_or(true));
        }
    }
}

impl IntoIterator for MediaSet {
    type Item = Entry;
    type IntoIter = IntoIter;

    /// In ID order: the entries themselves, or copies of them one at a
    /// time if the set is shared.
    fn into_iter(self) -> IntoIter {
        match Arc::try_unwrap(self.0) {
            Ok(entries) => IntoIter::Owned(entries.into_iter()),
            Err(shared) => IntoIter::Shared(shared, 0),
        }
    }
}

/// A set's entries, moved out or copied (`MediaSet::into_iter`).
pub enum IntoIter {
    Owned(std::vec::IntoIter<Entry>),
    Shared(Arc<Vec<Entry>>, usize),
}

impl Iterator for IntoIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        match self {
            IntoIter::Owned(entries) => entries.next(),
            IntoIter::Shared(entries, next) => {
                let entry = entries.get(*next)?.clone();
                *next += 1;
                Some(entry)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;
    use crate::manifest::Declared;
    use crate::model::Metadata;
    use std::path::PathBuf;

    fn set(ids: &[&str]) -> MediaSet {
        let file = Arc::new(PathBuf::from("m.yaml"));
        let entries = ids
            .iter()
            .enumerate()
            .map(|(line, id)| Entry {
                id: MediaId::parse(id).unwrap(),
                metadata: Arc::new(Declared::new(Metadata::default(), None, None)),
                location: Location::new(&file, line + 1, 5),
            })
            .collect();
        MediaSet::from_sorted(entries)
    }

    fn ids(entries: impl IntoIterator<Item = Entry>) -> Vec<String> {
        entries.into_iter().map(|e| e.id.to_string()).collect()
    }

    /// Watch's copy is left whole, and what a plan keeps of a shared set
    /// is copied out even when it keeps most of it.
    #[test]
    fn a_shared_set_is_not_changed_by_the_plan_that_shares_it() {
        let kept = set(&["1", "2", "3"]);
        let mut planned = kept.clone();
        planned.retain(|e| e.id.to_string() != "2");
        assert_eq!(ids(planned.values().cloned()), ["1", "3"]);
        assert_eq!(ids(kept.values().cloned()), ["1", "2", "3"]);
        assert!(!Arc::ptr_eq(&planned.0, &kept.0));
        // Only what was kept was copied, not the whole set first.
        assert_eq!(planned.0.capacity(), 2);
    }

    #[test]
    fn a_shared_set_is_walked_as_copies_and_an_owned_one_moved_out() {
        let kept = set(&["1", "2", "3"]);
        assert_eq!(ids(kept.clone()), ["1", "2", "3"]);
        assert_eq!(Arc::strong_count(&kept.0), 1);
        assert_eq!(ids(kept), ["1", "2", "3"]);
    }

    #[test]
    fn an_edit_replaces_its_media_in_place_copying_only_a_shared_set() {
        let mut kept = set(&["1", "2"]);
        let planned = kept.clone();
        let mut edited = set(&["2"]).into_iter().next().unwrap();
        edited.location.line = 9;
        kept.replace(edited);
        let line = |s: &MediaSet| s.get(&MediaId::parse("2").unwrap()).unwrap().location.line;
        assert_eq!((line(&kept), line(&planned)), (9, 2));
    }
}
