//! Every record's digest in a file beside the database (the layout of
//! `state/digest_object.rs`; see `snapshot` for what it says it is of), written by a
//! writer as it closes: a plan reads it (5 MB at 100,000 media) rather
//! than open sled and scan its digest index (about 100 ms and 20 MB of
//! pages at 100,000 media, and an opening of 0.2 s and 91 MB at
//! 1,000,000), and opens the database only for the records it must read.
//!
//! It is a copy, trusted only while it says it is of the state the head
//! describes (same lineage and serial) and no writer holds the lock. A
//! writer sets it aside before its first write (so a crash leaves no file
//! that could pass for current) and, as it closes, puts it back (nothing
//! written) or writes the next one, before the head.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use crate::model::{Digest, Digests, DigestsBuilder, MediaId};
use crate::state::digest_object;

pub const DIGESTS_FILE: &str = "digests.bin";
/// Where a writer keeps the file set aside while it holds the lock.
const HELD_FILE: &str = "digests.held";
/// What a sled state's digests are of, besides its lineage and serial:
/// its database, in this layout (a writer of a newer layout names its
/// own, and this reader then opens the database, which refuses it), and
/// the size its log had then (a log cut short since, which a reader that
/// took the file would not notice, is not taken: the database is opened
/// and refuses it).
fn snapshot(db_bytes: u64) -> String {
    format!("db format {}, log of {db_bytes} bytes", super::FORMAT)
}

/// `snapshot`'s log size, if `stated` is one of this layout.
fn db_bytes(stated: &str) -> Option<u64> {
    let prefix = format!("db format {}, log of ", super::FORMAT);
    stated
        .strip_prefix(&prefix)?
        .strip_suffix(" bytes")?
        .parse()
        .ok()
}

/// The size of the database's log now.
fn db_bytes_now(dir: &Path) -> std::io::Result<u64> {
    Ok(std::fs::symlink_metadata(dir.join("db").join("db"))?.len())
}

/// Which state a file is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Of {
    pub lineage: String,
    pub serial: u64,
}

/// Writes the file of `of` (`count` digests), replacing any: `each` hands
/// every digest, in ID order, to the function it is given.
pub fn write(
    dir: &Path,
    of: &Of,
    count: u64,
    each: impl FnOnce(&mut dyn FnMut(MediaId, &Digest) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let object = digest_object::Of {
        lineage: of.lineage.clone(),
        serial: of.serial,
        snapshot: snapshot(db_bytes_now(dir)?),
    };
    let mut failed = None;
    let written = crate::fs_util::write_private_with(&dir.join(DIGESTS_FILE), |out| {
        digest_object::write_to(out, &object, count, each).map_err(|e| {
            failed = Some(e);
            std::io::Error::other("not written")
        })
    });
    match (written, failed) {
        (_, Some(cause)) => Err(cause),
        (written, None) => written.map_err(Into::into),
    }
    .with_context(|| format!("cannot write `{DIGESTS_FILE}` in `{}`", dir.display()))
}

/// Which state the file at `path` says it is of, if it is there, starts
/// as one (its body is checked by `each`), and its database's log is not
/// shorter than it was when the file was written.
pub fn of(dir: &Path, path: &Path) -> Option<Of> {
    let mut input = BufReader::with_capacity(512, open(path)?);
    let (of, db_bytes) = stated(&mut input).ok()?;
    let now = db_bytes_now(dir).ok()?;
    if now < db_bytes {
        tracing::debug!(
            "the database's log is {now} bytes, {db_bytes} when `{}` was written: not used",
            path.display()
        );
        return None;
    }
    Some(of)
}

fn stated(input: &mut impl Read) -> anyhow::Result<(Of, u64)> {
    let stated = digest_object::of(input)?;
    let db_bytes = db_bytes(&stated.snapshot).ok_or_else(|| {
        anyhow!(
            "the digests of another layout (`{}`)",
            crate::untrusted::neutralise(&stated.snapshot, 64)
        )
    })?;
    let of = Of {
        lineage: stated.lineage,
        serial: stated.serial,
    };
    Ok((of, db_bytes))
}

/// The digests of the file at `path` if it is there, whole, and of
/// `expected`; `None` otherwise, and why is logged: a copy that cannot be
/// used is read from the database instead.
pub fn read(path: &Path, expected: &Of) -> Option<Digests> {
    let mut digests = DigestsBuilder::default();
    let found = each(path, expected, |id, digest| {
        digests.push(id, *digest);
        Ok(())
    });
    match found {
        Ok(true) => Some(digests.finish()),
        Ok(false) => None,
        Err(e) => {
            tracing::debug!("`{}` not used: {e:#}", path.display());
            None
        }
    }
}

/// Hands every digest of the file at `path`, in ID order, to `visit`;
/// `false` if there is no such file. An error once it proves not to be of
/// `expected`, or not whole: `visit` may have seen some of it by then.
pub fn each(
    path: &Path,
    expected: &Of,
    visit: impl FnMut(MediaId, &Digest) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let Some(file) = open(path) else {
        return Ok(false);
    };
    let mut input = BufReader::with_capacity(1 << 16, file);
    let (of, _) = stated(&mut input)?;
    if of != *expected {
        anyhow::bail!(
            "it is of serial {} of lineage `{}`, not of serial {} of `{}`",
            of.serial,
            crate::untrusted::neutralise(&of.lineage, 64),
            expected.serial,
            crate::untrusted::neutralise(&expected.lineage, 64)
        );
    }
    digest_object::read_body(input, visit)?;
    Ok(true)
}

fn open(path: &Path) -> Option<File> {
    match crate::intake::open_own(path, std::fs::OpenOptions::new().read(true)) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => Some(file),
        Ok(_) => {
            tracing::debug!("`{}` is not a regular file: not used", path.display());
            None
        }
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            tracing::debug!("`{}` not used: {e}", path.display());
            None
        }
    }
}

/// A writer's first step: the file goes out of a reader's sight (to
/// `HELD_FILE`), and that is on disk before anything else is written.
/// Returns what the file set aside says it is of (one left by a writer
/// that crashed, if none was there to set aside).
pub fn set_aside(dir: &Path) -> std::io::Result<Option<Of>> {
    match std::fs::rename(dir.join(DIGESTS_FILE), held(dir)) {
        Ok(()) => File::open(dir)?.sync_all()?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(of(dir, &held(dir)))
}

/// The file set aside, put back as it was: nothing was written since.
pub fn put_back(dir: &Path) -> std::io::Result<()> {
    std::fs::rename(held(dir), dir.join(DIGESTS_FILE))
}

/// The file set aside, once a new one is written (or none can be).
pub fn drop_held(dir: &Path) {
    if let Err(e) = std::fs::remove_file(held(dir)) {
        if e.kind() != ErrorKind::NotFound {
            tracing::debug!("cannot remove `{HELD_FILE}`: {e}");
        }
    }
}

/// Where the file set aside is.
pub fn held(dir: &Path) -> PathBuf {
    dir.join(HELD_FILE)
}
