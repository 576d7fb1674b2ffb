//! Every recorded media's digest, in ID order: what a plan compares the
//! manifests with, and what a watch keeps between cycles.

use std::sync::Arc;

use super::{Digest, MediaId};

/// How many digests a block holds as it is filled (168 KB).
const BLOCK: usize = 4096;

/// Digests by media ID, in ID order, in sorted blocks: 41 bytes a media,
/// filled without copying what came before (a `BTreeMap` took about 52,
/// and its `collect` twice that at once). The blocks are shared: a clone
/// (a bucket state handing its digests to a plan) copies none, and a
/// change copies only the block it changes, if that one is shared.
#[derive(Clone, Debug, Default)]
pub struct Digests {
    /// Each sorted and none empty; each block's IDs all below the next's.
    blocks: Vec<Arc<Vec<(MediaId, Digest)>>>,
    len: usize,
}

impl Digests {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// In ID order.
    pub fn iter(&self) -> impl Iterator<Item = &(MediaId, Digest)> + Clone {
        self.blocks.iter().flat_map(|b| b.iter())
    }

    /// In ID order, from `id` (or the first above it) on.
    pub fn iter_from(&self, id: &MediaId) -> impl Iterator<Item = &(MediaId, Digest)> {
        let (block, at) = self.find(id).unwrap_or_else(|place| place);
        let first = self.blocks.get(block).map_or(&[][..], |b| &b[at..]);
        let rest = self.blocks.get(block + 1..).unwrap_or_default();
        first.iter().chain(rest.iter().flat_map(|b| b.iter()))
    }

    pub fn get(&self, id: &MediaId) -> Option<&Digest> {
        let (block, at) = self.find(id).ok()?;
        Some(&self.blocks[block][at].1)
    }

    /// Sets `id`'s digest (watch, after its own writes).
    pub fn insert(&mut self, id: MediaId, digest: Digest) {
        match self.find(&id) {
            Ok((block, at)) => Arc::make_mut(&mut self.blocks[block])[at].1 = digest,
            Err((mut block, mut at)) => {
                if self.blocks.is_empty() {
                    self.blocks.push(Arc::default());
                }
                let full = self.blocks[block].len() >= BLOCK;
                // Past the last ID (a writer recording in ID order): a
                // new block, so that the ones before stay full.
                if full && block + 1 == self.blocks.len() && at == self.blocks[block].len() {
                    let mut fresh = Vec::with_capacity(BLOCK);
                    fresh.push((id, digest));
                    self.blocks.push(Arc::new(fresh));
                    self.len += 1;
                    return;
                }
                // A full block is cut in two rather than grown: an insert
                // moves at most a block's worth, and no block doubles.
                if full {
                    let half = self.blocks[block].len() / 2;
                    let tail = Arc::make_mut(&mut self.blocks[block]).split_off(half);
                    self.blocks.insert(block + 1, Arc::new(tail));
                    if at > half {
                        (block, at) = (block + 1, at - half);
                    }
                }
                Arc::make_mut(&mut self.blocks[block]).insert(at, (id, digest));
                self.len += 1;
            }
        }
    }

    pub fn remove(&mut self, id: &MediaId) {
        if let Ok((block, at)) = self.find(id) {
            Arc::make_mut(&mut self.blocks[block]).remove(at);
            self.len -= 1;
            if self.blocks[block].is_empty() {
                self.blocks.remove(block);
            }
        }
    }

    /// Where `id` is (`Ok`) or would go (`Err`): block, then index.
    fn find(&self, id: &MediaId) -> Result<(usize, usize), (usize, usize)> {
        // The first block whose last ID is not below `id`; past the end,
        // the last block (an ID above them all goes at its end).
        let block = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|(last, _)| last < id))
            .min(self.blocks.len().saturating_sub(1));
        match self.blocks.get(block) {
            None => Err((0, 0)),
            Some(b) => b
                .binary_search_by_key(id, |(i, _)| *i)
                .map(|at| (block, at))
                .map_err(|at| (block, at)),
        }
    }
}

/// The same digests, however they are cut into blocks.
impl PartialEq for Digests {
    fn eq(&self, other: &Digests) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// Fills a `Digests` in blocks as the digests come: in ID order from a
/// store that scans in that order (sled, the bucket's image, a PostgreSQL
/// table written in ID order); any other order is sorted once all are in.
#[derive(Debug)]
pub struct DigestsBuilder {
    blocks: Vec<Vec<(MediaId, Digest)>>,
    len: usize,
    in_order: bool,
    last: Option<MediaId>,
}

impl Default for DigestsBuilder {
    fn default() -> DigestsBuilder {
        DigestsBuilder {
            blocks: Vec::new(),
            len: 0,
            in_order: true,
            last: None,
        }
    }
}

impl DigestsBuilder {
    pub fn push(&mut self, id: MediaId, digest: Digest) {
        self.in_order &= self.last.is_none_or(|last| last < id);
        self.last = Some(id);
        match self.blocks.last_mut() {
            Some(block) if block.len() < BLOCK => block.push((id, digest)),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push((id, digest));
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    #[must_use]
    pub fn finish(self) -> Digests {
        let DigestsBuilder {
            mut blocks, len, ..
        } = self;
        if let Some(block) = blocks.last_mut() {
            block.shrink_to_fit();
        }
        if self.in_order {
            let blocks = blocks.into_iter().map(Arc::new).collect();
            return Digests { blocks, len };
        }
        // One sort of them all, then blocks again (a rare path: the
        // copy holds them twice for a moment). The last of an ID wins.
        let mut all: Vec<(MediaId, Digest)> = Vec::with_capacity(len);
        for block in blocks {
            all.extend(block);
        }
        all.reverse();
        all.sort_by_key(|(id, _)| *id);
        all.dedup_by_key(|(id, _)| *id);
        let len = all.len();
        let blocks = all.chunks(BLOCK).map(|b| Arc::new(b.to_vec())).collect();
        Digests { blocks, len }
    }
}

impl FromIterator<(MediaId, Digest)> for Digests {
    fn from_iter<I: IntoIterator<Item = (MediaId, Digest)>>(iter: I) -> Digests {
        let mut builder = DigestsBuilder::default();
        for (id, digest) in iter {
            builder.push(id, digest);
        }
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> MediaId {
        MediaId::parse(&n.to_string()).unwrap()
    }

    fn digest(n: u8) -> Digest {
        Digest([n; 32])
    }

    fn get(digests: &Digests, n: u64) -> Option<Digest> {
        let found = digests.get(&id(n)).copied();
        // The lookup agrees with a scan.
        assert_eq!(
            found,
            digests.iter().find(|(i, _)| *i == id(n)).map(|(_, d)| *d)
        );
        found
    }

    fn ids(digests: &Digests) -> Vec<u64> {
        digests.iter().map(|(id, _)| id.value()).collect()
    }

    /// In order or not, with a repeated ID, across several blocks: the
    /// same set, in ID order, each found, the last of a repeat kept.
    #[test]
    fn digests_come_out_in_id_order_whatever_order_they_went_in() {
        let n = 3 * BLOCK as u64 + 5;
        let ordered: Digests = (1..=n).map(|i| (id(i), digest(1))).collect();
        let shuffled: Digests = (1..=n)
            .rev()
            .map(|i| (id(i), digest(1)))
            .chain([(id(7), digest(2))])
            .collect();
        assert_eq!(ordered.len(), n as usize);
        assert_eq!(ids(&ordered), (1..=n).collect::<Vec<_>>());
        assert_eq!(ids(&shuffled), ids(&ordered));
        assert_eq!(get(&shuffled, 7), Some(digest(2)));
        assert_eq!(get(&ordered, n), Some(digest(1)));
        assert_eq!(get(&ordered, n + 1), None);
        assert_eq!(get(&ordered, 0), None);
        let from = |i| {
            ordered
                .iter_from(&id(i))
                .map(|(id, _)| id.value())
                .collect::<Vec<_>>()
        };
        assert_eq!(from(0), (1..=n).collect::<Vec<_>>());
        assert_eq!(
            from(BLOCK as u64 + 2),
            (BLOCK as u64 + 2..=n).collect::<Vec<_>>()
        );
        assert_eq!(from(n), [n]);
        assert!(from(n + 1).is_empty());
        assert!(Digests::default().iter_from(&id(1)).next().is_none());
    }

    /// A clone (a bucket state's digests handed to a plan or a watch)
    /// shares every block; a change to either copies only the blocks it
    /// touches, and the other never sees it: a replace, an insert into a
    /// full block (cut in two), an append past the end, and a remove that
    /// empties a block.
    #[test]
    fn a_clone_shares_its_blocks_until_either_changes() {
        let mut digests = Digests::default();
        for i in 0..3 * BLOCK as u64 {
            digests.insert(id(2 * i + 2), digest(1));
        }
        digests.insert(id(6 * BLOCK as u64 + 2), digest(1));
        // In ID order: full blocks, none cut in two, then the one begun.
        assert_eq!(digests.blocks.len(), 4);
        assert!(digests.blocks[..3].iter().all(|b| b.len() == BLOCK));
        let mut copy = digests.clone();
        assert!((0..4).all(|b| Arc::ptr_eq(&digests.blocks[b], &copy.blocks[b])));
        let before: Vec<(MediaId, Digest)> = digests.iter().copied().collect();
        copy.insert(id(4), digest(2)); // a replace, in block 0
        copy.insert(id(3), digest(2)); // new, in full block 0: cut in two
        copy.remove(&id(6 * BLOCK as u64 + 2)); // empties the last block
        copy.insert(id(9 * BLOCK as u64), digest(2)); // past the end: a new one
        assert_eq!(digests.iter().copied().collect::<Vec<_>>(), before);
        assert_eq!(digests.len(), 3 * BLOCK + 1);
        // Blocks 1 and 2 were not touched: still shared.
        let shared =
            |b: &Arc<Vec<(MediaId, Digest)>>| copy.blocks.iter().any(|c| Arc::ptr_eq(b, c));
        assert!(shared(&digests.blocks[1]) && shared(&digests.blocks[2]));
        assert!(!shared(&digests.blocks[0]) && !shared(&digests.blocks[3]));
        assert_eq!(get(&copy, 4), Some(digest(2)));
        assert_eq!(get(&copy, 3), Some(digest(2)));
        assert_eq!(get(&copy, 9 * BLOCK as u64), Some(digest(2)));
        assert_eq!(get(&copy, 6 * BLOCK as u64 + 2), None);
        assert_eq!(copy.len(), 3 * BLOCK + 2);
        // And the other way: the original changes, the copy does not.
        let copied: Vec<(MediaId, Digest)> = copy.iter().copied().collect();
        digests.insert(id(2 * BLOCK as u64 + 2), digest(3));
        digests.remove(&id(2));
        assert_eq!(copy.iter().copied().collect::<Vec<_>>(), copied);
        assert_eq!(get(&digests, 2 * BLOCK as u64 + 2), Some(digest(3)));
        assert_eq!(get(&digests, 2), None);
    }

    /// Watch's updates: replace, insert anywhere (a block split when it
    /// doubles), remove (an emptied block goes).
    #[test]
    fn inserts_and_removes_keep_the_order() {
        let mut digests: Digests = (0..BLOCK as u64)
            .map(|i| (id(2 * i + 10), digest(1)))
            .collect();
        let mut want: Vec<u64> = (0..BLOCK as u64).map(|i| 2 * i + 10).collect();
        for i in 0..BLOCK as u64 + 3 {
            digests.insert(id(2 * i + 11), digest(3));
            want.push(2 * i + 11);
        }
        digests.insert(id(1), digest(4));
        digests.insert(id(10), digest(5));
        want.push(1);
        want.sort_unstable();
        assert_eq!(ids(&digests), want);
        assert_eq!(digests.len(), want.len());
        assert!(digests.blocks.len() > 1);
        assert_eq!(get(&digests, 10), Some(digest(5)));
        assert_eq!(get(&digests, 1), Some(digest(4)));
        // Equal by what they hold, not by how they are cut into blocks.
        let refilled: Digests = digests.iter().copied().collect();
        // Every block but the one the last appends started is half full.
        let (_, before) = digests.blocks.split_last().unwrap();
        assert!(before.iter().all(|b| b.len() >= BLOCK / 2));
        assert_eq!(refilled.blocks.last().map(|b| b.len()), Some(4));
        assert_eq!(refilled, digests);
        for n in want.drain(..) {
            digests.remove(&id(n));
        }
        digests.remove(&id(99_999));
        assert!(digests.is_empty());
        assert!(digests.blocks.is_empty());
        let mut empty = Digests::default();
        empty.insert(id(5), digest(1));
        assert_eq!(ids(&empty), [5]);
    }
}
