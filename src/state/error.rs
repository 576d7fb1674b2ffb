//! What can be wrong with a state, each with its own message: only real
//! damage gets the advice to restore from a backup, since following that
//! advice on a healthy (busy, read-only, unreadable) state loses data.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state at `{location}`: nothing has been applied or adopted there yet; check --state or XMETA_STATE")]
    Missing { location: String },
    #[error("`{}` is not a directory; --state (or XMETA_STATE_DIR) must name the state directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("the state in `{}` cannot be read ({source}); check its owner and permissions", dir.display())]
    Unreadable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the state in `{}` is on a read-only file system; a writer needs it writable", dir.display())]
    ReadOnly { dir: PathBuf },
    #[error("the state in `{}` has a head (`head.json`, lineage `{lineage}`) but its database `db` is missing; put `db` back, or import an export with `xmeta state import FILE`", dir.display())]
    DatabaseMissing { dir: PathBuf, lineage: String },
    /// `location`: a state's directory, database or bucket, as shown.
    #[error("the state in `{location}` changed while it was read (serial {was}, then {now}): another xmeta wrote to it; run the command again")]
    ChangedWhileRead {
        location: String,
        was: u64,
        now: u64,
    },
    #[error("the state database in `{}` stayed busy: another xmeta process has it open; try again when it is done", dir.display())]
    Busy { dir: PathBuf },
    #[error("the state in `{}` was written by a newer xmeta (state format {found}, this xmeta reads up to {supported}); upgrade xmeta", dir.display())]
    Newer {
        dir: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the state in `{}` is damaged ({cause}); restore it from a backup: move the directory aside, then run `xmeta state import FILE` with an export made by `xmeta state export`", dir.display())]
    Damaged { dir: PathBuf, cause: String },
    #[error("the PostgreSQL state at {target} uses schema version {found}, written by a newer xmeta (this one knows up to {supported}); upgrade xmeta")]
    NewerSchema {
        target: String,
        found: i32,
        supported: i32,
    },
    #[error("the state at {target} was written by a newer xmeta (state format {found}, this xmeta reads up to {supported}); upgrade xmeta")]
    NewerInDatabase {
        target: String,
        found: i32,
        supported: u32,
    },
    #[error("the state at {target} is damaged: {cause}")]
    DamagedInDatabase { target: String, cause: String },
    /// `state migrate` copied this state elsewhere (see `moved.rs`).
    #[error("the state at {from} moved to {to} on {at}: use `{flags}` (or XMETA_STATE) instead; this old copy is kept read-only, and `xmeta state export` still reads it")]
    Moved {
        from: String,
        to: String,
        at: String,
        flags: String,
    },
    /// A PostgreSQL workspace nobody created (see `workspaces.rs`).
    #[error("workspace `{name}` does not exist in {database}; {suggestion}known workspaces: {known}; to start a new one, run `xmeta state workspace new {name}` (or pass --create-workspace)")]
    NoSuchWorkspace {
        name: String,
        database: String,
        /// `did you mean `…`? `, or nothing.
        suggestion: String,
        /// The names, comma-separated (the first few of many).
        known: String,
    },
}

/// A stored record that cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("it does not match its digest")]
    Digest,
}

/// A stored history chunk that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("a history chunk is truncated")]
    Truncated,
    #[error("a history chunk claims {0} bytes")]
    TooLarge(u32),
    #[error("{0}")]
    Compression(#[from] lz4_flex::block::DecompressError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl StateError {
    /// Classifies an I/O failure on the state: permissions and read-only
    /// file systems are not damage.
    pub fn from_io(dir: &std::path::Path, e: std::io::Error) -> StateError {
        let dir = dir.to_path_buf();
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => StateError::Unreadable { dir, source: e },
            std::io::ErrorKind::ReadOnlyFilesystem => StateError::ReadOnly { dir },
            _ => StateError::Damaged {
                dir,
                cause: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};
    use std::path::Path;

    #[test]
    fn permissions_and_read_only_are_not_damage() {
        let dir = Path::new("s");
        let e = StateError::from_io(dir, Error::from(ErrorKind::PermissionDenied));
        assert!(matches!(e, StateError::Unreadable { .. }));
        assert!(!e.to_string().contains("damaged"), "{e}");
        let e = StateError::from_io(dir, Error::from(ErrorKind::ReadOnlyFilesystem));
        assert!(matches!(e, StateError::ReadOnly { .. }));
        assert!(!e.to_string().contains("restore"), "{e}");
    }
}
