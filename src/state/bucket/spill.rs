//! A loaded snapshot's records, moved to a private temporary file once
//! read and checked: a bucket state then holds an index in memory, not
//! every record (a snapshot of 100,000 media is 37 MB), and a plan reads
//! back only the records of the media that changed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;

use crate::model::MediaId;
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
/// gone when the process ends) that an image's spilled records are in.
#[derive(Clone, Debug)]
pub struct Spill(Arc<std::fs::File>);

/// Moves every held record of `records` to a new temporary file. `None`
/// when it cannot be made or written (a full TMPDIR, say): then every
/// record stays in memory, as it was, and the state works the same.
pub fn spill(records: &mut BTreeMap<MediaId, (Digest, Place)>) -> Option<Spill> {
    let written = (|| {
        let file = tempfile::tempfile()?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, &file);
        for (_, place) in records.values() {
            if let Place::Held(bytes) = place {
                out.write_all(bytes)?;
            }
        }
        out.flush()?;
        drop(out);
        Ok::<_, std::io::Error>(file)
    })();
    let file = match written {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!("the state's records stay in memory: {e}");
            return None;
        }
    };
    // All written: only now does any record point at the file.
    let mut at = 0;
    for (_, place) in records.values_mut() {
        if let Place::Held(bytes) = place {
            let len = bytes.len();
            *place = Place::Spilled { at, len };
            at += len as u64;
        }
    }
    Some(Spill(Arc::new(file)))
}

/// A record's stored bytes, read back from `spill` if it went there. They
/// are decoded (and their digest checked) again by whoever reads them.
pub fn bytes<'a>(place: &'a Place, spill: Option<&Spill>) -> anyhow::Result<Cow<'a, [u8]>> {
    match place {
        Place::Held(bytes) => Ok(Cow::Borrowed(bytes)),
        Place::Spilled { at, len } => {
            let file = spill.context("a record is in a temporary file that is gone")?;
            let mut buf = vec![0; *len];
            file.0
                .read_exact_at(&mut buf, *at)
                .context("cannot read a record back from the state's temporary file")?;
            Ok(Cow::Owned(buf))
        }
    }
}
