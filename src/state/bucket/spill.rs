//! A loaded snapshot's records, moved to a private temporary file once
//! read and checked: a bucket state then holds an index in memory, not
//! every record (a snapshot of 100,000 media is 37 MB), and a plan reads
//! back only the records of the media that changed.

use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;

use super::index::Index;
use crate::model::{Digests, DigestsBuilder, MediaId};
use crate::state::Digest;

/// Where one record's stored bytes are.
#[derive(Clone, Debug)]
pub enum Place {
    /// In memory: written by this process, read from a journal, or kept
    /// because the temporary file could not be written.
    Held(Bytes),
    /// In the image's temporary file.
    Spilled { at: u64, len: usize },
}

impl From<Vec<u8>> for Place {
    fn from(bytes: Vec<u8>) -> Place {
        Place::Held(bytes.into())
    }
}

/// The unnamed temporary file (in TMPDIR, readable only by this user,
/// gone when the process ends) that an image's spilled records are in,
/// and where the next one goes. A clone shares the file: only the image a
/// writer keeps appends (one it put back after a failure appends over
/// what only the dropped one referred to).
#[derive(Clone, Debug)]
pub struct Spill {
    file: Arc<std::fs::File>,
    end: u64,
    /// Bytes of records replaced since: a writer that runs for long (a
    /// watch) moves the live ones to a new file when they are most of it.
    dead: u64,
    /// The dead bytes that start that move (`DEAD_BYTES`, doubled after
    /// each move that failed).
    limit: u64,
}

/// Replaced records may take this much of a spill file before the live
/// ones move to a new one.
const DEAD_BYTES: u64 = 64 << 20;

impl Spill {
    /// A spill file whose records take its first `end` bytes.
    fn new(file: Arc<std::fs::File>, end: u64) -> Spill {
        Spill {
            file,
            end,
            dead: 0,
            limit: DEAD_BYTES,
        }
    }
}

/// Moves every record of `records` (held, or in `old`) to a new temporary
/// file. `None` when it cannot be made or written (a full TMPDIR, say):
/// then every record stays where it was, and the state works the same
/// (unlike `Writing`, which holds what the file could not take: here
/// the records are safe where they are).
pub fn spill(records: &mut Index, old: Option<&Spill>) -> Option<Spill> {
    let written = (|| {
        let file = tempfile::tempfile()?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, &file);
        for (_, place) in records.iter() {
            out.write_all(&bytes(&place, old).map_err(std::io::Error::other)?)?;
        }
        out.flush()?;
        drop(out);
        Ok::<_, std::io::Error>(file)
    })();
    let file = match written {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!("the state's records stay where they are: {e}");
            return None;
        }
    };
    // All written: only now does any record point at the file.
    let mut end = 0;
    *records = records.moved(|place| {
        let len = match place {
            Place::Held(bytes) => bytes.len(),
            Place::Spilled { len, .. } => *len,
        };
        let at = end;
        end += len as u64;
        Place::Spilled { at, len }
    });
    Some(Spill::new(Arc::new(file), end))
}

/// A snapshot's records as they are read: each checked against its
/// digest and appended to a new spill file, a batch at a time, so that the
/// snapshot is never held. Where TMPDIR cannot take them, the records
/// from there on are held in memory.
pub struct Spilled {
    pub records: Index,
    pub digests: Digests,
    pub spill: Option<Spill>,
}

impl<'de> serde::Deserialize<'de> for Spilled {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Spilled, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Spilled;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of [media ID, record]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Spilled, A::Error> {
                use serde::de::Error;
                let mut out = Writing::new();
                while let Some((id, raw)) =
                    seq.next_element::<(MediaId, Box<serde_json::value::RawValue>)>()?
                {
                    let bytes = raw.get().as_bytes();
                    let digest = Digest::stated(bytes)
                        .map_err(|e| A::Error::custom(format!("the record of media {id}: {e}")))?;
                    out.push(id, digest, bytes);
                }
                Ok(out.finish())
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Records on their way to a new spill file, a batch at a time.
struct Writing {
    records: Index,
    digests: DigestsBuilder,
    file: Option<Arc<std::fs::File>>,
    /// False once a write failed: the file keeps what it took.
    writable: bool,
    end: u64,
    batch: Vec<u8>,
    pending: Vec<(MediaId, usize)>,
}

/// Bytes of records written to a spill file at once.
const BATCH_BYTES: usize = 1 << 16;

impl Writing {
    fn new() -> Writing {
        let file = match tempfile::tempfile() {
            Ok(file) => Some(Arc::new(file)),
            Err(e) => {
                tracing::debug!("the state's records stay in memory: {e}");
                None
            }
        };
        Writing {
            records: Index::default(),
            digests: DigestsBuilder::default(),
            writable: file.is_some(),
            file,
            end: 0,
            batch: Vec::with_capacity(BATCH_BYTES),
            pending: Vec::new(),
        }
    }

    fn push(&mut self, id: MediaId, digest: Digest, bytes: &[u8]) {
        self.digests.push(id, digest);
        if !self.writable {
            let held = Place::Held(Bytes::copy_from_slice(bytes));
            self.records.insert(id, held);
            return;
        }
        self.batch.extend_from_slice(bytes);
        self.pending.push((id, bytes.len()));
        if self.batch.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Writes the batch; its records then point at the file, or (when it
    /// could not take them) are held.
    fn flush(&mut self) {
        let written = match &self.file {
            Some(file) => file.write_all_at(&self.batch, self.end),
            None => Ok(()),
        };
        if let Err(e) = &written {
            tracing::debug!("the state's records stay in memory from here on: {e}");
            self.writable = false;
        }
        let mut at = 0;
        for (id, len) in self.pending.drain(..) {
            let place = if written.is_ok() {
                Place::Spilled {
                    at: self.end + at as u64,
                    len,
                }
            } else {
                Place::Held(Bytes::copy_from_slice(&self.batch[at..at + len]))
            };
            at += len;
            self.records.insert(id, place);
        }
        if written.is_ok() {
            self.end += self.batch.len() as u64;
        }
        self.batch.clear();
    }

    fn finish(mut self) -> Spilled {
        self.flush();
        Spilled {
            records: self.records.settled(),
            digests: self.digests.finish(),
            spill: self.file.map(|file| Spill::new(file, self.end)),
        }
    }
}

/// Records `bytes` for `id`, as a writer does: appended to the image's
/// spill file (made on the first one), or in memory where TMPDIR cannot
/// take it.
pub fn keep(records: &mut Index, spill: &mut Option<Spill>, id: MediaId, bytes: Vec<u8>) {
    if spill.is_none() {
        *spill = tempfile::tempfile()
            .ok()
            .map(|file| Spill::new(Arc::new(file), 0));
    }
    let place = match spill.as_mut() {
        Some(spill) => match spill.file.write_all_at(&bytes, spill.end) {
            Ok(()) => {
                let at = spill.end;
                spill.end += bytes.len() as u64;
                Place::Spilled {
                    at,
                    len: bytes.len(),
                }
            }
            Err(e) => {
                tracing::debug!("a record stays in memory: {e}");
                bytes.into()
            }
        },
        None => bytes.into(),
    };
    if let Some(place) = records.insert(id, place) {
        forgotten(records, spill, &place);
    }
}

/// Counts what a replaced or removed record took of the spill file, and
/// moves the live records to a new file once the dead ones are most of
/// it. Where that fails (a TMPDIR that holds the file once, not twice),
/// the next try waits for twice as many dead bytes.
pub fn forgotten(records: &mut Index, spill: &mut Option<Spill>, place: &Place) {
    let (Place::Spilled { len, .. }, Some(current)) = (place, spill.as_mut()) else {
        return;
    };
    current.dead += *len as u64;
    if current.dead > current.limit && current.dead > current.end / 2 {
        match self::spill(records, Some(current)) {
            Some(fresh) => *current = fresh,
            None => current.limit = current.limit.saturating_mul(2),
        }
    }
}

/// A record's stored bytes, read back from `spill` if it went there. They
/// are decoded (and their digest checked) again by whoever reads them.
pub fn bytes<'a>(place: &'a Place, spill: Option<&Spill>) -> anyhow::Result<Cow<'a, [u8]>> {
    match place {
        Place::Held(bytes) => Ok(Cow::Borrowed(bytes)),
        Place::Spilled { at, len } => {
            let file = spill.context("a record is in a temporary file that is gone")?;
            let mut buf = vec![0; *len];
            file.file
                .read_exact_at(&mut buf, *at)
                .context("cannot read a record back from the state's temporary file")?;
            Ok(Cow::Owned(buf))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that replaces its records again and again (a watch) keeps
    /// a spill file of at most about twice what is live past `DEAD_BYTES`,
    /// and reads back the last of each.
    #[test]
    fn replaced_records_do_not_grow_the_file_without_bound() {
        let (mut records, mut spill) = (Index::default(), None);
        let id = MediaId::parse("1").unwrap();
        let other = MediaId::parse("2").unwrap();
        keep(&mut records, &mut spill, other, b"kept".to_vec());
        for n in 0..100u8 {
            let bytes = vec![n; 1 << 20];
            keep(&mut records, &mut spill, id, bytes);
        }
        let spill = spill.expect("TMPDIR takes the records");
        assert!(spill.end < DEAD_BYTES + (2 << 20), "{} bytes", spill.end);
        let read = |id| {
            let place = records.get(&id).unwrap();
            bytes(&place, Some(&spill)).unwrap().into_owned()
        };
        assert_eq!(read(id), vec![99; 1 << 20]);
        assert_eq!(read(other), b"kept");
    }

    /// Removed records count too: a writer that forgets most of what it
    /// holds moves the rest to a new file.
    #[test]
    fn removed_records_do_not_grow_the_file_without_bound() {
        let (mut records, mut spill) = (Index::default(), None);
        let id = |n: u64| MediaId::parse(&n.to_string()).unwrap();
        for n in 1..=100u8 {
            let bytes = vec![n; 1 << 20];
            keep(&mut records, &mut spill, id(n.into()), bytes);
        }
        for n in 1..=70 {
            let place = records.remove(&id(n)).unwrap();
            forgotten(&mut records, &mut spill, &place);
        }
        let spill = spill.expect("TMPDIR takes the records");
        assert!(spill.end <= 35 << 20, "{} bytes", spill.end);
        let place = records.get(&id(100)).unwrap();
        let last = bytes(&place, Some(&spill)).unwrap();
        assert_eq!(&*last, &vec![100; 1 << 20][..]);
    }
}
