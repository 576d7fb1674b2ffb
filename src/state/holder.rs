//! Who holds a state's lock, for the message a refused writer gets.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    /// `None`: the holder left no readable time.
    pub since: Option<Timestamp>,
}

impl Holder {
    /// This process, running `command`, from now.
    pub fn me(command: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            command: command.to_string(),
            since: Some(Timestamp::now()),
        }
    }

    /// A holder that left no readable record of itself.
    pub fn unknown() -> Holder {
        Holder {
            pid: 0,
            host: "unknown".into(),
            command: "unknown".into(),
            since: None,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Another writer wrote these fields: shown, never obeyed.
        let clean = |s: &str| crate::untrusted::neutralise(s, 200);
        write!(
            f,
            "pid {} on host `{}` (command `{}`), since {}",
            self.pid,
            clean(&self.host),
            clean(&self.command),
            self.since.map_or("unknown".into(), |t| t.to_string())
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the state in `{location}` is locked by {holder}; wait for it to finish, or if that process is gone from another host, run `xmeta state unlock --force`")]
    HeldLocally { location: String, holder: Holder },
    #[error("the state at {location} is locked by {holder}; wait for it to finish (a writer that dies releases the lock with its database session)")]
    HeldInDatabase { location: String, holder: Holder },
    /// `holder` is the lock object's holder and run, already neutralised.
    #[error("the state at {location} is locked by {holder}; wait for it to finish (if that writer died, its lease runs out and the next writer takes the lock over, with a warning)")]
    HeldInBucket { location: String, holder: String },
    #[error("cannot lock the state in `{location}`: {source}")]
    Io {
        location: String,
        source: std::io::Error,
    },
}

pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
