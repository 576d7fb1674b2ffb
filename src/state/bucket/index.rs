//! A bucket image's index: where each recorded media's stored record is
//! (the digests are the image's `Digests`, shared with the plans it
//! serves). A reader holds it for every media, so its size is most of
//! what a bucket state adds to a plan's memory: the records in ID order as
//! a table of 17-byte rows, and what changed since (a writer's puts and
//! removes, records held in memory) as a B-tree over it. A B-tree of every
//! media with its digest took 143 bytes each (14.3 MB at 100,000 media).

use std::collections::BTreeMap;

use crate::model::MediaId;

use super::spill::Place;

/// One spilled record: 9 + 8 bytes, unaligned (a `u64` field would pad
/// it to 24, two `u32` halves to 20).
#[derive(Clone, Copy, Debug)]
struct Row {
    id: MediaId,
    /// Where the record is in the spill file: offset and length, packed
    /// (`pack`), big-endian.
    place: [u8; 8],
}

/// Offsets below 1 TiB and records below 16 MiB fit a row; others
/// (none in practice) go to the B-tree.
const LEN_BITS: u32 = 24;

fn pack(place: &Place) -> Option<[u8; 8]> {
    let Place::Spilled { at, len } = *place else {
        return None;
    };
    let len = u64::try_from(len).ok().filter(|l| *l < 1 << LEN_BITS)?;
    let packed = at.checked_mul(1 << LEN_BITS)? | len;
    Some(packed.to_be_bytes())
}

fn unpack(place: [u8; 8]) -> Place {
    let packed = u64::from_be_bytes(place);
    Place::Spilled {
        at: packed >> LEN_BITS,
        len: (packed & ((1 << LEN_BITS) - 1)) as usize,
    }
}

#[derive(Clone, Debug, Default)]
pub struct Index {
    /// In ID order, each ID once.
    table: Vec<Row>,
    /// Put (`Some`) or removed (`None`) since; these win over the table.
    changes: BTreeMap<MediaId, Option<Place>>,
    len: usize,
}

impl Index {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, id: &MediaId) -> Option<Place> {
        match self.changes.get(id) {
            Some(change) => change.clone(),
            None => self.row(id).map(|row| unpack(row.place)),
        }
    }

    fn row(&self, id: &MediaId) -> Option<&Row> {
        let at = self.table.binary_search_by(|r| r.id.cmp(id)).ok()?;
        Some(&self.table[at])
    }

    /// Records `place` for `id`; returns where its record was before.
    pub fn insert(&mut self, id: MediaId, place: Place) -> Option<Place> {
        // Past the last row and in no change (a snapshot being read, an
        // adopt, an import: in ID order): a row.
        let next = self.table.last().is_none_or(|r| r.id < id) && !self.changes.contains_key(&id);
        if let (true, Some(packed)) = (next, pack(&place)) {
            self.table.push(Row { id, place: packed });
            self.len += 1;
            return None;
        }
        let before = self.get(&id);
        self.changes.insert(id, Some(place));
        self.len += usize::from(before.is_none());
        before
    }

    /// Forgets `id`; returns where its record was.
    pub fn remove(&mut self, id: &MediaId) -> Option<Place> {
        let before = self.get(id)?;
        if self.row(id).is_some() {
            self.changes.insert(*id, None);
        } else {
            self.changes.remove(id);
        }
        self.len -= 1;
        Some(before)
    }

    /// Every record, in ID order.
    pub fn iter(&self) -> impl Iterator<Item = (MediaId, Place)> + '_ {
        let mut table = self.table.iter().peekable();
        let mut changes = self.changes.iter().peekable();
        std::iter::from_fn(move || loop {
            let row_id = table.peek().map(|r| r.id);
            let change_id = changes.peek().map(|(id, _)| **id);
            let take_row = match (row_id, change_id) {
                (None, None) => return None,
                (Some(r), Some(c)) => r < c,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if take_row {
                let row = table.next()?;
                return Some((row.id, unpack(row.place)));
            }
            // A changed row is the change's.
            if row_id == change_id {
                table.next();
            }
            let (id, change) = changes.next()?;
            if let Some(place) = change {
                return Some((*id, place.clone()));
            }
        })
    }

    /// The same records, as rows wherever they can be: a snapshot read
    /// out of ID order (none is written so) or with records held in
    /// memory leaves later records in the B-tree, which a reader, never
    /// rewriting its spill file, would otherwise keep for good.
    #[must_use]
    pub fn settled(self) -> Index {
        if self.changes.is_empty() {
            self
        } else {
            self.moved(Place::clone)
        }
    }

    /// Every place, moved: `place` returns the new one of each record,
    /// in ID order (a spill file rewritten).
    pub fn moved(&self, mut place: impl FnMut(&Place) -> Place) -> Index {
        let mut index = Index::default();
        for (id, old) in self.iter() {
            index.insert(id, place(&old));
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> MediaId {
        MediaId::parse(&n.to_string()).unwrap()
    }

    fn spilled(at: u64) -> Place {
        Place::Spilled { at, len: 3 }
    }

    /// Every reader of a bucket state holds a row a recorded media.
    #[test]
    fn a_row_is_seventeen_bytes() {
        assert_eq!(std::mem::size_of::<Row>(), 17);
    }

    fn listed(index: &Index) -> Vec<(u64, String)> {
        index
            .iter()
            .map(|(i, p)| (i.to_string().parse().unwrap(), format!("{p:?}")))
            .collect()
    }

    /// Puts and removes after the table was made win over it, in every
    /// read: a lookup, the count and the ordered walk.
    #[test]
    fn changes_win_over_the_table_in_every_read() {
        let mut index = Index::default();
        for n in [10, 20, 30] {
            assert!(index.insert(id(n), spilled(n)).is_none());
        }
        assert!(index.changes.is_empty(), "in order: rows");
        assert!(index.insert(id(5), spilled(5)).is_none());
        assert!(matches!(
            index.insert(id(20), Place::Held(b"new".to_vec().into())),
            Some(Place::Spilled { at: 20, len: 3 })
        ));
        assert!(matches!(
            index.remove(&id(30)),
            Some(Place::Spilled { at: 30, .. })
        ));
        assert!(index.remove(&id(30)).is_none());
        assert!(index.insert(id(40), spilled(40)).is_none());
        assert_eq!(index.len(), 4);
        assert!(index.get(&id(30)).is_none() && index.get(&id(5)).is_some());
        assert_eq!(
            listed(&index),
            [
                (5, "Spilled { at: 5, len: 3 }".into()),
                (10, "Spilled { at: 10, len: 3 }".into()),
                (20, "Held(b\"new\")".into()),
                (40, "Spilled { at: 40, len: 3 }".into()),
            ]
        );
        let moved = index.moved(|_| spilled(7));
        assert!(moved.changes.is_empty());
        assert_eq!(moved.len(), 4);
        assert!(matches!(
            moved.get(&id(20)),
            Some(Place::Spilled { at: 7, len: 3 })
        ));
    }

    /// A remove of what only the B-tree holds, a put after a remove, and
    /// a settled index: each read agrees, and the count with them.
    #[test]
    fn removes_and_puts_again_keep_the_count() {
        let mut index = Index::default();
        index.insert(id(10), spilled(10));
        index.insert(id(5), spilled(5));
        assert!(matches!(
            index.remove(&id(5)),
            Some(Place::Spilled { at: 5, .. })
        ));
        assert!(!index.changes.contains_key(&id(5)), "nothing left of it");
        assert!(index.remove(&id(10)).is_some());
        assert_eq!(index.len(), 0);
        assert!(index.iter().next().is_none());
        assert!(index.insert(id(10), spilled(11)).is_none());
        assert_eq!(index.len(), 1);
        index.insert(id(7), Place::Held(b"held".to_vec().into()));
        let settled = index.settled();
        assert_eq!(settled.len(), 2);
        assert_eq!(settled.table.len(), 1, "10 is a row again; 7 is held");
        assert_eq!(
            listed(&settled),
            [
                (7, "Held(b\"held\")".into()),
                (10, "Spilled { at: 11, len: 3 }".into())
            ]
        );
    }

    /// The packing's limits, each on its own: the largest offset and
    /// length that fit are rows, one more goes to the B-tree.
    #[test]
    fn the_largest_places_that_fit_are_rows() {
        let top = (1u64 << 40) - 1;
        let long = (1usize << 24) - 1;
        for (at, len, row) in [(top, long, true), (top + 1, 3, false), (3, long + 1, false)] {
            let mut index = Index::default();
            index.insert(id(1), Place::Spilled { at, len });
            assert_eq!(index.table.len() == 1, row, "{at} {len}");
            assert!(matches!(
                index.get(&id(1)),
                Some(Place::Spilled { at: a, len: l }) if a == at && l == len
            ));
            let moved = index.moved(Place::clone);
            assert!(matches!(
                moved.get(&id(1)),
                Some(Place::Spilled { at: a, len: l }) if a == at && l == len
            ));
        }
    }

    /// A place too large to pack goes to the B-tree, and reads back whole.
    #[test]
    fn places_that_do_not_pack_are_kept_whole() {
        let mut index = Index::default();
        let far = Place::Spilled {
            at: 1 << 41,
            len: 1 << 25,
        };
        index.insert(id(1), spilled(1 << 39));
        index.insert(id(2), far);
        assert_eq!(index.table.len(), 1);
        assert!(matches!(
            index.get(&id(1)),
            Some(Place::Spilled { at, len: 3 }) if at == 1 << 39
        ));
        assert!(matches!(
            index.get(&id(2)),
            Some(Place::Spilled { at, len }) if at == 1 << 41 && len == 1 << 25
        ));
    }
}
