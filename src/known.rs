//! Last-applied metadata a watch already knows for the state it plans
//! against, so a cycle need not open the state to read those records (at
//! 1,000,000 media, opening sled's database is most of a cycle).

use std::collections::BTreeMap;

use crate::model::{MediaId, Metadata};

/// At most this many media: a watch whose manifests differ from the state
/// in more reads the rest from the state, as a plan does.
const KNOWN_MAX: usize = 4096;

/// Each media's last-applied metadata, as recorded at the state's lineage
/// and serial that the holder keeps beside it; cleared when those change.
#[derive(Debug, Default)]
pub struct Known(BTreeMap<MediaId, Metadata>);

impl Known {
    #[must_use]
    pub fn get(&self, id: &MediaId) -> Option<&Metadata> {
        self.0.get(id)
    }

    /// Remembers `id`'s recorded metadata, while there is room.
    pub fn insert(&mut self, id: MediaId, metadata: &Metadata) {
        if self.0.len() < KNOWN_MAX || self.0.contains_key(&id) {
            self.0.insert(id, metadata.clone());
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Forgets the media not in `ids` (sorted): those whose manifests
    /// match their records again, or that are no longer recorded.
    pub fn keep_only(&mut self, ids: &[MediaId]) {
        self.0.retain(|id, _| ids.binary_search(id).is_ok());
    }
}
