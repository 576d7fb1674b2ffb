//! The state: per media, the metadata xmeta last sent that X accepted (a
//! 2xx answer with no errors; the body X returns is checked, not kept), plus a
//! format version, a lineage (random, made at creation) and a serial that
//! grows with every write.
//!
//! Three backends behind one interface: sled in a local directory (the
//! default, no server), PostgreSQL and a bucket (S3, GCS, Azure Blob;
//! both shared by a team and its CI runners). Commands, `plan`, `apply` and saved plans see only
//! `StateReader` and `StateWriter`; only a writer holds the lock and can
//! change anything.
//!
//! Every state is opened here, so every command gets the same identity
//! checks: a PostgreSQL workspace must exist (`workspaces.rs`), and a
//! state that `state migrate` moved elsewhere is refused, naming the new
//! place (`moved.rs`); only `state export` still reads it.

mod bucket;
mod digest_object;
mod error;
pub mod history;
mod holder;
mod local;
mod location;
mod moved;
mod open_when_read;
mod postgres;
mod record;
pub mod workspaces;

use std::collections::BTreeMap;

pub use error::StateError;
pub use history::{Entry, Filter, Provenance};
pub use holder::{Holder, LockError};
pub use local::Fingerprint;
pub use location::Location;
pub use moved::Moved;
pub use open_when_read::OpenWhenRead;
pub use record::{Digest, Record};

use crate::model::Digests;
use crate::model::{MediaId, Metadata};
use history::Event;

/// Bumped when the stored layout changes; newer states are refused.
/// 2: history entries beside the records (a state of format 1 is upgraded
/// by its next writer, with no history before that).
pub const FORMAT_VERSION: u32 = 2;

/// What plan, list, show and export read. A reader never waits for a
/// writer and never changes anything.
pub trait StateReader: Send + Sync {
    /// Whether there is a state at all (a missing one reads as empty).
    fn exists(&self) -> bool;
    /// The random ID made when this state was created (`None` before).
    fn lineage(&self) -> anyhow::Result<Option<String>>;
    /// Grows with every write.
    fn serial(&self) -> anyhow::Result<u64>;
    /// Every recorded media, in ID order, a batch (at most
    /// `RECORD_BATCH`) at a time: what export, list and migrate read, so
    /// the state is never in memory whole.
    fn each_record(&self, visit: &mut VisitRecords<'_>) -> anyhow::Result<()>;
    /// Every recorded media at once (`each_record` collected).
    fn all(&self) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let mut out = BTreeMap::new();
        self.each_record(&mut |batch| {
            out.extend(batch);
            Ok(())
        })?;
        Ok(out)
    }
    /// Every recorded media's digest, its metadata left undecoded: what a
    /// plan compares first, holding 41 bytes per media (ID and digest)
    /// instead of a record.
    fn digests(&self) -> anyhow::Result<Digests>;
    /// Whether `each_digest` hands the digests over a part at a time, read
    /// as they are compared (a sled state's digest file, a PostgreSQL
    /// reader's ordered query), rather than a plan reading them whole
    /// beside its parse (`digests`).
    fn streams_digests(&self) -> bool {
        false
    }
    /// Every recorded media's digest to `visit`, one at a time, in
    /// strictly increasing ID order (the planner compares them in parts
    /// as they come); `false` if it could not after all (the caller
    /// throws away what `visit` saw and reads `digests`).
    fn each_digest(&self, _visit: &mut dyn FnMut(MediaId, &Digest)) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Starts the read `each_digest` will hand over, where that takes
    /// round trips (a database): a plan calls it beside its parse, so the
    /// digests are on their way when it compares. Nothing by default.
    fn read_digests_ahead(&self) {}
    fn get(&self, id: &MediaId) -> anyhow::Result<Option<Record>>;
    /// The records of `ids`, which `digests` listed (the sled state
    /// refuses one whose digest is indexed but whose record is missing).
    fn get_many(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>>;
    /// The history entries `filter` keeps, newest first (by serial,
    /// then media), one at a time; see `history::NewestFirst`.
    fn each_entry(&self, filter: &Filter, visit: &mut VisitEntries<'_>) -> anyhow::Result<()>;
    /// The history entries `filter` keeps, newest first, at once.
    fn history(&self, filter: &Filter) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.each_entry(filter, &mut |entry| {
            out.push(entry);
            Ok(())
        })?;
        Ok(out)
    }
    /// The image URLs last read from X for those of `ids` that have one
    /// (see `record_previews`). As untrusted as the rest of the state:
    /// whoever shows one checks it first (`plan::thumbnail::checked`).
    fn previews(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>>;
    /// The records of those of `ids` the state holds, the others left
    /// out: what apply reads for a group of confirmations. A backend whose
    /// every read is a round trip reads them at once.
    fn get_present(&self, ids: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        let mut out = BTreeMap::new();
        for id in ids {
            if let Some(record) = self.get(id)? {
                out.insert(*id, record);
            }
        }
        Ok(out)
    }
}

/// What `replace_all` puts in place of a whole state. Each source is
/// called once, and hands over its items as `each_record` and
/// `each_entry` do: records by ID, entries newest first.
pub struct Replacement<'a> {
    pub lineage: &'a str,
    pub serial: u64,
    pub records: &'a mut dyn FnMut(&mut VisitRecords<'_>) -> anyhow::Result<()>,
    pub history: &'a mut dyn FnMut(&mut VisitEntries<'_>) -> anyhow::Result<()>,
}

/// The most records `each_record` hands over at once.
pub const RECORD_BATCH: usize = 8192;

/// What `each_record` calls with each batch of records.
pub type VisitRecords<'a> = dyn FnMut(Vec<(MediaId, Record)>) -> anyhow::Result<()> + 'a;
/// What `each_entry` calls with each entry.
pub type VisitEntries<'a> = dyn FnMut(Entry) -> anyhow::Result<()> + 'a;

/// What apply, adopt, rm and import change; holds the state's lock for as
/// long as it lives.
///
/// Every change of a record writes its history entry (see `history.rs`)
/// in the same atomic write, with the writer's provenance.
pub trait StateWriter: StateReader {
    /// Records what X confirmed for a media; durable before it returns.
    fn record(&self, recording: Recording, event: Event) -> anyhow::Result<()> {
        self.record_many(vec![recording], event)
    }
    /// Records what X confirmed for several media, each with its own
    /// event (apply's group commit: the confirmations that arrived
    /// together); durable before it returns. One outcome per recording,
    /// in order. A backend whose every write is cheap records them one by
    /// one; the bucket writes them as one journal object.
    fn record_group(&self, group: Vec<(Recording, Event)>) -> Vec<anyhow::Result<()>> {
        group
            .into_iter()
            .map(|(recording, event)| self.record(recording, event))
            .collect()
    }
    /// Records many media in one atomic write (for `adopt`).
    fn record_many(&self, recordings: Vec<Recording>, event: Event) -> anyhow::Result<()>;
    /// Forgets media; durable before it returns.
    fn remove(&self, ids: &[MediaId], event: Event) -> anyhow::Result<()>;
    /// Keeps each media's image URL from X's latest read (a refresh's),
    /// so a later plan's review shows the image without reading X again.
    /// Not a change of what X holds: no history entry, no new serial.
    /// A media that leaves the state (`remove`, `replace_all`) loses its
    /// URL too.
    fn record_previews(&self, previews: &BTreeMap<MediaId, String>) -> anyhow::Result<()>;
    /// Replaces every record and history entry, the lineage and the serial
    /// at once (for `state import` and `state migrate`), reading the new
    /// ones as they are written: the state as it was stays whole until
    /// the new one is complete, and an error in either source leaves it
    /// as it was.
    fn replace_all(&self, new: Replacement<'_>) -> anyhow::Result<()>;
    /// Deletes the history entries made before `before` (RFC 3339);
    /// returns how many.
    fn prune_history(&self, before: crate::time::Timestamp) -> anyhow::Result<usize>;
    /// Where later changes come from (`watch --apply` between cycles: the
    /// tree may have been committed, or edited, since the writer opened).
    fn set_provenance(&self, provenance: Provenance);
    /// Marks this state as moved to another place (`state migrate`, once
    /// the copy is there): its data stays, and every later command on it
    /// is refused with the new place. Durable before it returns.
    fn mark_moved(&self, moved: &Moved) -> anyhow::Result<()>;
    /// Between a long-lived writer's bursts of writes (`watch --apply`,
    /// after each cycle; `adopt`, after each batch): lets go of what the
    /// writes left in memory.
    fn settle(&self) {}
    /// While a long-lived writer waits (`watch --apply`, idle for a
    /// while): lets go of what can be opened again when next used, and
    /// says whether there was any. Nothing is lost: every write is durable
    /// before it returns.
    fn rest(&self) -> bool {
        false
    }
    /// The caller reads nothing more from this writer, though it keeps its
    /// lock and may still mark the state as moved (`state migrate`, once
    /// its copy of the source is made, while the target is written): lets
    /// go of everything held for reads, as `rest` does, and also of what
    /// a watch keeps because it would be slow to read again (a bucket's
    /// image). Says whether there was any. A sled writer opens its
    /// database again for a later read; a bucket writer refuses it.
    fn done_reading(&self) -> bool {
        self.rest()
    }
    /// Whether each read waits on a server (apply then reads the records
    /// of the media it sends while X answers, see `apply/prefetch.rs`);
    /// a local or in-memory read is cheaper than a thread that does it.
    fn reads_wait_on_a_server(&self) -> bool {
        false
    }
    /// Before anything is sent: whatever the state still reads before it
    /// can record (the bucket's snapshot, read as the writer opened; the
    /// sled database a writer closed at rest) is read or opened and
    /// checked, so a damaged state is refused before X is asked anything.
    fn ready_to_record(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What a backend's writer found under the lock.
pub enum Writable {
    Open(Box<dyn StateWriter>),
    /// Left untouched: the state moved.
    Moved(Moved),
}

/// `StateReader` for a backend's reader or writer type, through its field
/// that reads (a reader and a writer of one backend read the same way),
/// or a method that returns the reader.
macro_rules! reads_through {
    ($ty:ty, $field:ident) => {
        $crate::state::reads_through!(@via $ty, this => &this.$field);
    };
    ($ty:ty, $method:ident()) => {
        $crate::state::reads_through!(@via $ty, this => this.$method());
    };
    (@via $ty:ty, $this:ident => $reader:expr) => {
        impl $crate::state::StateReader for $ty {
            fn exists(&self) -> bool {
                { let $this = self; $reader }.exists()
            }
            fn lineage(&self) -> anyhow::Result<Option<String>> {
                { let $this = self; $reader }.lineage()
            }
            fn serial(&self) -> anyhow::Result<u64> {
                { let $this = self; $reader }.serial()
            }
            fn each_record(
                &self,
                visit: &mut $crate::state::VisitRecords<'_>,
            ) -> anyhow::Result<()> {
                { let $this = self; $reader }.each_record(visit)
            }
            fn digests(&self) -> anyhow::Result<$crate::model::Digests> {
                { let $this = self; $reader }.digests()
            }
            fn streams_digests(&self) -> bool {
                { let $this = self; $reader }.streams_digests()
            }
            fn each_digest(
                &self,
                visit: &mut dyn FnMut($crate::model::MediaId, &$crate::model::Digest),
            ) -> anyhow::Result<bool> {
                { let $this = self; $reader }.each_digest(visit)
            }
            fn read_digests_ahead(&self) {
                { let $this = self; $reader }.read_digests_ahead()
            }
            fn get(
                &self,
                id: &$crate::model::MediaId,
            ) -> anyhow::Result<Option<$crate::state::Record>> {
                { let $this = self; $reader }.get(id)
            }
            fn get_many(
                &self,
                ids: &[$crate::model::MediaId],
            ) -> anyhow::Result<
                std::collections::BTreeMap<$crate::model::MediaId, $crate::state::Record>,
            > {
                { let $this = self; $reader }.get_many(ids)
            }
            fn each_entry(
                &self,
                filter: &$crate::state::Filter,
                visit: &mut $crate::state::VisitEntries<'_>,
            ) -> anyhow::Result<()> {
                { let $this = self; $reader }.each_entry(filter, visit)
            }
            fn previews(
                &self,
                ids: &[$crate::model::MediaId],
            ) -> anyhow::Result<std::collections::BTreeMap<$crate::model::MediaId, String>> {
                { let $this = self; $reader }.previews(ids)
            }
            fn get_present(
                &self,
                ids: &[$crate::model::MediaId],
            ) -> anyhow::Result<
                std::collections::BTreeMap<$crate::model::MediaId, $crate::state::Record>,
            > {
                { let $this = self; $reader }.get_present(ids)
            }
        }
    };
}
use reads_through;

/// One record written: the media, what the state holds for it now (every
/// caller has read it already; its history entry needs it), and what it
/// holds after.
#[derive(Clone, Debug)]
pub struct Recording {
    pub id: MediaId,
    pub before: Option<Metadata>,
    pub after: Metadata,
}

/// Opens the state for reading; a missing state reads as empty and is not
/// created. A state that moved is refused.
pub fn open_reader(location: &Location) -> anyhow::Result<Box<dyn StateReader>> {
    match open_any_reader(location)? {
        (_, Some(moved)) => Err(moved.refusal(location).into()),
        (reader, None) => Ok(reader),
    }
}

/// What tells, without opening the state, that no writer has been at it
/// since (see `local::fingerprint`); `None` when nothing can tell that
/// (a database or a bucket: those are asked).
#[must_use]
pub fn fingerprint(location: &Location) -> Option<Fingerprint> {
    match location {
        Location::Dir(dir) => local::fingerprint(dir),
        Location::Postgres(_) | Location::Bucket(_) => None,
    }
}

/// `open_reader` that also reads a state that moved: for `state export`,
/// the way to look at (or rescue) what the old copy holds.
pub fn open_reader_even_if_moved(location: &Location) -> anyhow::Result<Box<dyn StateReader>> {
    Ok(open_any_reader(location)?.0)
}

fn open_any_reader(location: &Location) -> anyhow::Result<(Box<dyn StateReader>, Option<Moved>)> {
    match location {
        Location::Dir(dir) => local::open_reader(dir),
        Location::Postgres(target) => postgres::open_reader(target),
        Location::Bucket(target) => bucket::open_reader(target),
    }
}

/// Opens the state for writing: takes the lock (or fails at once naming
/// its holder), creating the state if needed. A state that moved is
/// refused, and so is a PostgreSQL workspace that does not exist (unless
/// `--create-workspace` lets the writer make it).
pub fn open_writer(
    location: &Location,
    command: &str,
    provenance: &Provenance,
) -> anyhow::Result<Box<dyn StateWriter>> {
    let writable = match location {
        Location::Dir(dir) => local::open_writer(dir, command, provenance)?,
        Location::Postgres(target) => postgres::open_writer(target, command, provenance)?,
        Location::Bucket(target) => bucket::open_writer(target, command, provenance)?,
    };
    match writable {
        Writable::Open(writer) => Ok(writer),
        Writable::Moved(moved) => Err(moved.refusal(location).into()),
    }
}

/// Whether a state is there, without opening a reader; an unusable one is
/// an error, and so is one that moved.
pub fn exists(location: &Location) -> anyhow::Result<bool> {
    let (there, moved) = match location {
        Location::Dir(dir) => local::exists(dir)?,
        Location::Postgres(target) => postgres::exists(target)?,
        Location::Bucket(target) => bucket::exists(target)?,
    };
    match moved {
        Some(moved) => Err(moved.refusal(location).into()),
        None => Ok(there),
    }
}

/// Removes a lock left by a holder that is gone, returning who held it; a
/// live holder is refused.
pub fn force_unlock(location: &Location) -> anyhow::Result<Option<Holder>> {
    match location {
        Location::Dir(dir) => local::force_unlock(dir),
        Location::Postgres(target) => postgres::force_unlock(target),
        Location::Bucket(target) => bucket::force_unlock(target),
    }
}

/// What a writer (`apply`, `adopt`) finds as it plans: the state's
/// writer, or no state yet, which reads as empty and is not created.
pub enum Found {
    Writer(Box<dyn StateWriter>),
    Nothing,
}

impl Found {
    /// The writer of the state at `location` if there is one (see
    /// `exists`); nothing is created. As `open_writer`, a state that moved
    /// is refused.
    pub fn at(
        location: &Location,
        command: &str,
        provenance: &Provenance,
    ) -> anyhow::Result<Found> {
        let writable = match location {
            // One connection asks and then locks.
            Location::Postgres(target) => {
                match postgres::open_existing_writer(target, command, provenance)? {
                    Some(writable) => writable,
                    None => return Ok(Found::Nothing),
                }
            }
            _ if !exists(location)? => return Ok(Found::Nothing),
            _ => return Ok(Found::Writer(open_writer(location, command, provenance)?)),
        };
        match writable {
            Writable::Open(writer) => Ok(Found::Writer(writer)),
            Writable::Moved(moved) => Err(moved.refusal(location).into()),
        }
    }

    fn reader(&self) -> &dyn StateReader {
        match self {
            Found::Writer(writer) => &**writer,
            Found::Nothing => &Empty,
        }
    }
}

reads_through!(Found, reader());

/// The reader of a state that does not exist yet.
struct Empty;

impl StateReader for Empty {
    fn exists(&self) -> bool {
        false
    }
    fn lineage(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn serial(&self) -> anyhow::Result<u64> {
        Ok(0)
    }
    fn each_record(&self, _: &mut VisitRecords<'_>) -> anyhow::Result<()> {
        Ok(())
    }
    fn digests(&self) -> anyhow::Result<Digests> {
        Ok(Digests::default())
    }
    fn get(&self, _: &MediaId) -> anyhow::Result<Option<Record>> {
        Ok(None)
    }
    fn get_many(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, Record>> {
        Ok(BTreeMap::new())
    }
    fn each_entry(&self, _: &Filter, _: &mut VisitEntries<'_>) -> anyhow::Result<()> {
        Ok(())
    }
    fn previews(&self, _: &[MediaId]) -> anyhow::Result<BTreeMap<MediaId, String>> {
        Ok(BTreeMap::new())
    }
}

/// A random 128-bit ID in hex: a lineage (and the bucket's object names,
/// the sled digest file's token).
pub(crate) fn new_lineage() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
