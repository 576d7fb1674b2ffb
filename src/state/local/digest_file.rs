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
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use crate::model::{Digest, Digests, DigestsBuilder, MediaId};
use crate::state::digest_object;

pub const DIGESTS_FILE: &str = "digests.bin";
/// Where a writer keeps the file set aside while it holds the lock.
const HELD_FILE: &str = "digests.held";
/// What a sled state's digests are of, besides its lineage and serial:
/// its database, in this layout (a writer of a newer layout names its
/// own, and this reader then opens the database, which refuses it); the
/// size its log had then (a log cut short since, which a reader that took
/// the file would not notice, is not taken: the database is opened and
/// refuses it); and the file's token, which the head names while the file
/// is the state's (a writer that does not know the file, an older xmeta,
/// rewrites the head without it as it opens).
fn snapshot(db_bytes: u64, token: &str) -> String {
    format!(
        "db format {}, log of {db_bytes} bytes, token {token}",
        super::FORMAT
    )
}

/// `snapshot`'s log size and token, if `stated` is one of this layout.
fn parse_snapshot(stated: &str) -> Option<(u64, String)> {
    let prefix = format!("db format {}, log of ", super::FORMAT);
    let (bytes, token) = stated.strip_prefix(&prefix)?.split_once(" bytes, token ")?;
    Some((bytes.parse().ok()?, token.to_string()))
}

/// The size of the database's log now.
pub(super) fn db_bytes_now(dir: &Path) -> std::io::Result<u64> {
    Ok(std::fs::symlink_metadata(dir.join("db").join("db"))?.len())
}

/// Which state a file is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Of {
    pub lineage: String,
    pub serial: u64,
}

/// What a file says of itself: the state it is of, and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stated {
    pub of: Of,
    pub token: String,
}

/// Writes the file of `of` (`count` digests), replacing any: `each` hands
/// every digest, in ID order, to the function it is given. Returns the
/// new file's token, for the head.
pub fn write(
    dir: &Path,
    of: &Of,
    count: u64,
    each: impl FnOnce(&mut dyn FnMut(MediaId, &Digest) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let token = crate::state::new_lineage();
    let object = digest_object::Of {
        lineage: of.lineage.clone(),
        serial: of.serial,
        snapshot: snapshot(db_bytes_now(dir)?, &token),
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
    .with_context(|| format!("cannot write `{DIGESTS_FILE}` in `{}`", dir.display()))?;
    Ok(token)
}

/// A file whose first bytes were read and judged; its digests are read
/// from the same open file, so a writer that replaces the file meanwhile
/// (it only ever renames one into place) cannot make a reader mix two.
pub struct Opened {
    input: BufReader<File>,
    pub stated: Stated,
    path: PathBuf,
}

/// The file at `path`, if it is there, starts as one of this layout, and
/// its database's log is not shorter than when it was written.
pub fn open(dir: &Path, path: &Path) -> Option<Opened> {
    let mut input = BufReader::with_capacity(1 << 16, open_file(path)?);
    let judged = digest_object::of(&mut input).and_then(|stated| {
        let (db_bytes, token) = parse_snapshot(&stated.snapshot).ok_or_else(|| {
            anyhow!(
                "the digests of another layout (`{}`)",
                crate::untrusted::neutralise(&stated.snapshot, 64)
            )
        })?;
        let now = db_bytes_now(dir)?;
        if now < db_bytes {
            anyhow::bail!("the database's log is {now} bytes, {db_bytes} when it was written");
        }
        let of = Of {
            lineage: stated.lineage,
            serial: stated.serial,
        };
        Ok(Stated { of, token })
    });
    match judged {
        Ok(stated) => Some(Opened {
            input,
            stated,
            path: path.to_path_buf(),
        }),
        Err(e) => {
            tracing::debug!("`{}` not used: {e:#}", path.display());
            None
        }
    }
}

impl Opened {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every digest, in ID order, to `visit`. An error once the file
    /// proves not whole: `visit` may have seen some of it by then.
    pub fn each(
        self,
        visit: impl FnMut(MediaId, &Digest) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        digest_object::read_body(self.input, visit)
    }

    /// The digests, if the file is whole; why not is logged: a copy that
    /// cannot be used is read from the database instead.
    pub fn digests(self) -> Option<Digests> {
        let path = self.path.clone();
        let mut digests = DigestsBuilder::default();
        let read = self.each(|id, digest| {
            digests.push(id, *digest);
            Ok(())
        });
        match read {
            Ok(()) => Some(digests.finish()),
            Err(e) => {
                tracing::debug!("`{}` not used: {e:#}", path.display());
                None
            }
        }
    }
}

fn open_file(path: &Path) -> Option<File> {
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
/// Returns what the file set aside says (one left by a writer that died,
/// if none was there to set aside). Only a regular file that cannot be
/// moved or removed stops the writer: anything else at that name (a
/// directory, a link) no reader takes.
pub fn set_aside(dir: &Path) -> anyhow::Result<Option<Stated>> {
    let file = dir.join(DIGESTS_FILE);
    match std::fs::rename(&file, held(dir)) {
        Ok(()) => {
            // A file system that cannot sync a directory leaves the order
            // of the two to chance: nothing better can be done there.
            if let Err(e) = crate::fs_util::sync_dir(dir) {
                tracing::debug!("cannot sync `{}`: {e}", dir.display());
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            let regular = std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file());
            if regular {
                std::fs::remove_file(&file).with_context(|| {
                    format!(
                        "cannot set `{DIGESTS_FILE}` aside in `{}` ({e}) or remove it",
                        dir.display()
                    )
                })?;
            }
        }
    }
    Ok(open(dir, &held(dir)).map(|opened| opened.stated))
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
