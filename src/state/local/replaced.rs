//! Writes to sled, and the node versions they replace let go of.
//!
//! sled frees what a write replaced (the leaves and index nodes it copied
//! on write, their old fragments) through crossbeam-epoch's global
//! collector, which frees at most 8 bags of 64 deferred objects each time
//! a thread flushes, or pins for the 128th time. A batch of 1,000 records
//! splits and copies far more than that under one pin, so what it
//! replaced piled up until the database was closed: an import of 100,000
//! media never closed peaked at 474,180 KiB, 160,284 once each batch was
//! followed by flushes.

/// Flushes after each write. A bag is freed once the epoch is two past
/// it, and a flush moves the epoch one step at most: 64 free up to about
/// 62 × 8 bags of 64 objects, some 31,700, twice what an import's write
/// of `RECORD_BATCH` (8,192) records and their digests replaces (an
/// adopt writes 1,000). A flush with nothing to free is a pin and a
/// check of the epoch. What a thread still pinned elsewhere (a scan of
/// the source, on the read-ahead thread) holds back is freed at a later
/// write: late, never lost.
const FLUSHES: usize = 64;

/// Applies `batch` to `db` atomically, then frees what it replaced.
pub(super) fn apply_batch(db: &sled::Db, batch: sled::Batch) -> sled::Result<()> {
    let applied = db.apply_batch(batch);
    free_replaced();
    applied
}

/// Frees the node versions earlier writes replaced, as far as no reader
/// still sees them. Through sled's own re-export of crossbeam's `pin`
/// (hidden from its documentation): the collector sled defers to, whatever
/// crossbeam-epoch this crate would name; a sled without it fails to
/// build, not to free.
fn free_replaced() {
    for _ in 0..FLUSHES {
        sled::crossbeam_pin().flush();
    }
}
