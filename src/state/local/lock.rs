//! The state lock: one writer at a time. An OS file lock (released by the
//! kernel when its holder dies, even by `kill -9`) guards a small file that
//! says who holds it, so a refused writer can be told who to wait for.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::state::{Holder, LockError};

pub const LOCK_FILE: &str = "xmeta.lock";

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Takes the lock at once or fails naming its holder. A lock file left
    /// by a dead holder is taken over, and the takeover is returned.
    pub fn acquire(dir: &Path, command: &str) -> Result<(Lock, Option<Holder>), LockError> {
        let io = |source| LockError::Io {
            location: dir.display().to_string(),
            source,
        };
        let mut file = crate::intake::open_own(
            &dir.join(LOCK_FILE),
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600),
        )
        .map_err(io)?;
        let previous = read_holder(&mut file);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::HeldLocally {
                    location: dir.display().to_string(),
                    holder: previous.unwrap_or_else(Holder::unknown),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = Holder::me(command);
        let body = serde_json::to_vec(&me).unwrap_or_default();
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&body).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok((Lock { file }, previous))
    }

    /// Who holds the lock now, if anyone.
    pub fn holder(dir: &Path) -> Option<Holder> {
        let mut file =
            crate::intake::open_own(&dir.join(LOCK_FILE), OpenOptions::new().read(true)).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => Some(read_holder(&mut file).unwrap_or_else(Holder::unknown)),
        }
    }

    /// Removes a lock file held from another host (where this host's
    /// kernel cannot see whether the holder lives). A live holder on this
    /// host is refused: the kernel releases its lock when it exits, and
    /// removing the file under it leaves two writers.
    pub fn force_unlock(dir: &Path) -> anyhow::Result<Option<Holder>> {
        // The OS lock is the truth, not the file's `host` (two containers
        // sharing a volume share a kernel but not a host name).
        if let Some(live) = Lock::holder(dir) {
            anyhow::bail!(
                "the state lock in `{}` is held by a live process on this host: {live}; stop that process (its lock goes with it) instead of forcing",
                dir.display()
            );
        }
        let path = dir.join(LOCK_FILE);
        let holder = crate::intake::open_own(&path, OpenOptions::new().read(true))
            .ok()
            .and_then(|mut f| read_holder(&mut f));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(holder),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty lock file means "free"; the OS lock goes with the handle.
        let _ = self.file.set_len(0);
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    // A holder is a line of JSON; a lock file is never large.
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}
