//! Plans: what must change to bring X from the last-applied state to the
//! manifests. `diff` is pure; the renderers turn a plan into text.

pub mod diff;
mod markdown;
mod text;
pub mod yaml_text;

use serde::{Deserialize, Serialize};

pub use diff::{diff, Targets};
pub use markdown::{render_markdown, COMMENT_LIMIT};
pub use text::{render_text, summary_line, write_text};

use crate::model::{FieldKind, MediaId, Metadata, Request};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Forget,
}

/// What happens to one media.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: MediaId,
    pub action: Action,
    /// The fields sent (create, update).
    pub fields: Vec<FieldKind>,
    /// Fields in state that are no longer declared: not sent, X keeps
    /// them, and the state stops tracking them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<FieldKind>,
    /// The state's values of the touched fields (all of them for forget).
    pub before: Metadata,
    /// The wanted values of the fields sent.
    pub after: Metadata,
    /// The exact body to post; `None` when nothing is sent.
    pub request: Option<Request>,
}

impl Change {
    /// What the state holds for this media once the change went through:
    /// the fields sent replace theirs, untracked fields are dropped.
    pub fn next_record(&self, current: Option<&Metadata>) -> Metadata {
        let mut next = current.cloned().unwrap_or_default();
        for kind in &self.untracked {
            next.remove(*kind);
        }
        for value in self.after.values() {
            next.insert(value.clone());
        }
        next
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub forget: usize,
    pub unchanged: usize,
    pub requests: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unchanged: usize,
    pub warnings: Vec<String>,
    /// Forgotten media leave the state (`--prune`).
    pub prune: bool,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        Summary {
            create: count(Action::Create),
            update: count(Action::Update),
            forget: count(Action::Forget),
            unchanged: self.unchanged,
            requests: self.requests().count(),
        }
    }

    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.changes.iter().filter_map(|c| c.request.as_ref())
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}
