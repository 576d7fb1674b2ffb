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

/// Flushes after each write: at most 64 × 512 objects freed, more than a
/// batch of 1,000 records replaces, and next to nothing when the write
/// replaced little (a flush with nothing to free is a pin and a check of
/// the epoch).
const FLUSHES: usize = 64;

/// Applies `batch` to `db` atomically, then frees what it replaced.
pub(super) fn apply_batch(db: &sled::Db, batch: sled::Batch) -> sled::Result<()> {
    let applied = db.apply_batch(batch);
    free_replaced();
    applied
}

/// Frees the node versions earlier writes replaced, as far as no reader
/// still sees them.
pub(super) fn free_replaced() {
    for _ in 0..FLUSHES {
        sled::crossbeam_pin().flush();
    }
}
