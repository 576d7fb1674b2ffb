//! What a reader can tell of a state directory without opening its
//! database: whether a writer has been at it since. Opening sled's database
//! scans every segment of its log (at 1,000,000 media, most of a watch
//! cycle), so a watch without `--apply` opens it only when this changed.
//!
//! Every writer takes the lock, which writes the lock file as it is taken
//! and empties it as it is let go, and it writes the head as it opens and
//! closes: a writer that came after a fingerprint changes the times of
//! both (or, across `state unlock --force` or a directory put in place of
//! another, their identity). Only readers open the database without them,
//! and a reader changes nothing a plan reads.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::head::HEAD_FILE;
use super::lock::{Lock, LOCK_FILE};
use super::moved_file::MOVED_FILE;

/// A file's time stamp this recent could be shared by a write still to
/// come (file systems stamp from a coarse clock; some to 2 s, so 2 s and
/// a tick): such a fingerprint is not taken.
const RACY: Duration = Duration::from_secs(3);

/// The identity, size and times of what a writer changes; `None` for a
/// file that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<Option<Stamp>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Only which directory it is: opening the database may add or
    /// remove its snapshot files.
    fn of_dir(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: 0,
            mtime: (0, 0),
            ctime: (0, 0),
        }
    }

    /// Whether it was last written before `when`: a write after it then
    /// stamps another time (the change time follows every write too, but
    /// also a change of mode or times, so it is compared, not aged).
    fn written_before(&self, when: SystemTime) -> bool {
        let (secs, nanos) = self.mtime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos))
            .is_some_and(|t| t < when)
    }
}

/// The state in `dir` as its writers leave it, or `None` when that cannot
/// tell (a writer holds the lock, a file was written too recently, one
/// cannot be looked at): the caller then opens the database.
#[must_use]
pub fn fingerprint(dir: &Path) -> Option<Fingerprint> {
    if Lock::holder(dir).is_some() {
        return None;
    }
    let racy_before = SystemTime::now().checked_sub(RACY)?;
    let stat = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(meta) => Some(Some(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(_) => None,
    };
    let dirs = [dir.to_path_buf(), dir.join("db")];
    let files = [LOCK_FILE, HEAD_FILE, MOVED_FILE].map(|name| dir.join(name));
    let mut stamps = Vec::with_capacity(dirs.len() + files.len());
    for path in &dirs {
        stamps.push(stat(path)?.as_ref().map(Stamp::of_dir));
    }
    for path in &files {
        let stamp = stat(path)?.as_ref().map(Stamp::of);
        if stamp
            .as_ref()
            .is_some_and(|s| !s.written_before(racy_before))
        {
            return None;
        }
        stamps.push(stamp);
    }
    Some(Fingerprint(stamps))
}
