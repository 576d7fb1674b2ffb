//! The mark `state migrate` leaves on the state it copied from: the old
//! copy keeps its data but is read-only, and every command on it names
//! the new place instead of planning (and re-sending) against stale
//! records. One shape for both backends: a `moved.json` beside a sled
//! database, a column of the workspace's row in PostgreSQL.

use serde::{Deserialize, Serialize};

use super::{Location, StateError};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// Where the state went, as messages show it: a directory's absolute
    /// path, or a database's URL (never its password) and workspace.
    pub to: String,
    /// The `--state` value that names the new place (no password).
    pub state: String,
    /// The `--workspace` of a database target.
    #[serde(default)]
    pub workspace: Option<String>,
    /// When, as RFC 3339 UTC to the second.
    pub at: String,
}

impl Moved {
    /// The mark for a state copied to `to` now; a directory is named by
    /// its absolute path, since the old copy may be used from elsewhere.
    pub fn to(to: &Location) -> Moved {
        let (shown, state, workspace) = match to {
            Location::Dir(dir) => {
                let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                let dir = dir.display().to_string();
                (dir.clone(), dir, None)
            }
            Location::Postgres(target) => (
                target.to_string(),
                target.url_shown().to_string(),
                Some(target.workspace().to_string()),
            ),
            Location::Bucket(target) => (
                target.to_string(),
                target.url_shown().to_string(),
                Some(target.workspace().to_string()),
            ),
        };
        Moved {
            to: shown,
            state,
            workspace,
            at: Timestamp::now().to_string(),
        }
    }

    /// Parses a stored mark; one that does not parse still marks the
    /// state as moved (a damaged mark must not make a stale copy live).
    pub fn decode(bytes: &[u8]) -> Moved {
        serde_json::from_slice(bytes).unwrap_or_else(|_| Moved {
            to: "another place (its mark is unreadable)".into(),
            state: "…".into(),
            workspace: None,
            at: "an unknown date".into(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The refusal of every command on the old copy. The mark is read
    /// from the state, so its text is neutralised before it is shown.
    pub fn refusal(&self, from: &Location) -> StateError {
        let clean = |text: &str| crate::untrusted::neutralise(text, 300);
        let flags = match &self.workspace {
            Some(workspace) => format!(
                "--state {} --workspace {}",
                clean(&self.state),
                clean(workspace)
            ),
            None => format!("--state {}", clean(&self.state)),
        };
        StateError::Moved {
            from: from.to_string(),
            to: clean(&self.to),
            at: clean(&self.at),
            flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_target_is_named_without_its_password() {
        let to = Location::parse(
            "postgres://ci:hunter2@db.example/xmeta".into(),
            Some("prod"),
            None,
        )
        .unwrap();
        let moved = Moved::to(&to);
        assert_eq!(
            moved.to,
            "postgres://ci@db.example/xmeta (workspace `prod`)"
        );
        assert_eq!(moved.state, "postgres://ci@db.example/xmeta");
        let from = Location::Dir("./state".into());
        let shown = moved.refusal(&from).to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.starts_with("the state at ./state moved to postgres://ci@db.example/xmeta (workspace `prod`) on "),
            "{shown}"
        );
        assert!(
            shown.contains("use `--state postgres://ci@db.example/xmeta --workspace prod`"),
            "{shown}"
        );
    }

    #[test]
    fn an_unreadable_mark_still_refuses() {
        let moved = Moved::decode(b"not json");
        let shown = moved.refusal(&Location::Dir("s".into())).to_string();
        assert!(shown.contains("moved to another place"), "{shown}");
    }
}
