//! Plans: what must change to bring X from the last-applied state to the
//! manifests. `diff` is pure; the renderers turn a plan into text.

pub mod comment;
pub mod cost;
pub mod diff;
pub mod drift;
mod markdown;
pub mod text;
pub mod thumbnail;
mod warning;
mod words;
pub mod yaml_text;

use serde::{Deserialize, Serialize};

pub use diff::{diff, Targets};
pub use markdown::{render_failure, render_invalid, render_markdown};
pub use text::{render_text, summary_line, write_text};
pub use warning::PlanWarning;

use crate::model::{FieldSet, MediaId, Metadata, Request};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Forget,
}

/// What happens to one media. Its request body is derived (`request`),
/// and written out with the rest in the JSON plan.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Change {
    pub id: MediaId,
    pub action: Action,
    /// The fields sent (create, update).
    pub fields: FieldSet,
    /// Fields in state that are no longer declared: not sent, X keeps
    /// them, and the state stops tracking them.
    #[serde(default)]
    pub untracked: FieldSet,
    /// The state's values of the touched fields (all of them for forget).
    pub before: Metadata,
    /// The wanted values of the fields sent.
    pub after: Metadata,
    /// Where the media is declared (none for a forget, or a change read
    /// back from a saved plan): shown to reviewers, never saved.
    #[serde(skip)]
    pub location: Option<crate::error::Location>,
}

impl Change {
    /// The exact body to post; `None` when nothing is sent (a forget, or
    /// a change that only stops tracking fields).
    pub fn request(&self) -> Option<Request> {
        (self.action != Action::Forget && !self.fields.is_empty()).then(|| Request {
            id: self.id,
            metadata: self.after.clone(),
        })
    }

    pub fn sends(&self) -> bool {
        self.action != Action::Forget && !self.fields.is_empty()
    }

    /// What the state holds for this media once the change went through:
    /// the fields sent replace theirs, untracked fields are dropped.
    pub fn next_record(&self, current: Option<&Metadata>) -> Metadata {
        current
            .unwrap_or(&Metadata::default())
            .overlaid(|kind| self.untracked.contains(kind), &self.after)
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            id: &'a MediaId,
            metadata: &'a Metadata,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            id: &'a MediaId,
            action: Action,
            fields: FieldSet,
            #[serde(skip_serializing_if = "crate::model::no_fields")]
            untracked: FieldSet,
            before: &'a Metadata,
            after: &'a Metadata,
            request: Option<Body<'a>>,
        }
        Json {
            id: &self.id,
            action: self.action,
            fields: self.fields,
            untracked: self.untracked,
            before: &self.before,
            after: &self.after,
            request: self.sends().then_some(Body {
                id: &self.id,
                metadata: &self.after,
            }),
        }
        .serialize(s)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub forget: usize,
    pub unchanged: usize,
    pub requests: usize,
    /// At the plan's price per request (X's, unless overridden).
    #[serde(default)]
    pub estimated_cost_usd: f64,
    /// At X's per-user rate, 500 requests per 15 minutes.
    #[serde(default)]
    pub minimum_duration_secs: u64,
}

impl Coverage {
    /// `Alt text: 9,812 of 10,000 media (98.1%).`
    pub fn line(&self) -> String {
        let percent = if self.media == 0 {
            100.0
        } else {
            self.with_alt_text as f64 * 100.0 / self.media as f64
        };
        format!(
            "Alt text: {} of {} media ({percent:.1}%).",
            cost::thousands(self.with_alt_text as u64),
            cost::thousands(self.media as u64)
        )
    }
}

impl Summary {
    /// Whether the plan creates, updates or forgets anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.forget > 0
    }

    /// The counts alone (the estimates depend on a price).
    pub fn counts(&self) -> [usize; 5] {
        [
            self.create,
            self.update,
            self.forget,
            self.unchanged,
            self.requests,
        ]
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unchanged: usize,
    pub warnings: Vec<PlanWarning>,
    /// Forgotten media leave the state (`--prune`).
    pub prune: bool,
    /// US dollars per request, for the cost estimate.
    pub price_per_request: f64,
    /// Media with alt text, of those declared (`None`: not linted).
    pub alt_text_coverage: Option<Coverage>,
    /// What a refresh found (`--refresh`); `None` when X was not read.
    pub refresh: Option<drift::Refresh>,
    /// The images a review shows: the URLs the state recorded for the
    /// changed media, and those a refresh just read (see the planner).
    pub previews: thumbnail::Previews,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub with_alt_text: usize,
    pub media: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        let counts = [
            count(Action::Create),
            count(Action::Update),
            count(Action::Forget),
            self.unchanged,
            self.requests().count(),
        ];
        self.summary_of(counts)
    }

    /// The summary of a plan with these counts (`Summary::counts`) and
    /// this plan's price and reads: a saved plan's changes are counted
    /// as they are read, never held at once.
    pub fn summary_of(&self, [create, update, forget, unchanged, requests]: [usize; 5]) -> Summary {
        let cost = self.cost_of(requests);
        Summary {
            create,
            update,
            forget,
            unchanged,
            requests,
            estimated_cost_usd: (cost.usd * 1e6).round() / 1e6,
            minimum_duration_secs: cost.minimum.as_secs(),
        }
    }

    pub fn cost(&self) -> cost::Cost {
        self.cost_of(self.requests().count())
    }

    /// The estimate for `posts` requests and this plan's reads.
    pub fn cost_of(&self, posts: usize) -> cost::Cost {
        let reads = self.refresh.as_ref().map_or(0, |r| r.reads);
        cost::estimate(posts, reads, self.price_per_request)
    }

    pub fn requests(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.sends())
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// A plan whose changes are visited a batch at a time, so that one too
/// large to hold (a saved plan of 1,000,000 changes) is shown and applied
/// in bounded memory. A plan in memory is its own one batch.
pub trait Batches {
    /// The plan's settings, warnings and refresh; its `changes` are only
    /// those of a plan in memory, so read them through `each_batch`.
    fn head(&self) -> &Plan;
    /// The whole plan's counts and estimates.
    fn summary(&self) -> Summary;
    /// Each batch of changes in order, as a plan with the head's settings.
    fn each_batch(&self, visit: &mut dyn FnMut(&Plan) -> anyhow::Result<()>) -> anyhow::Result<()>;
}

impl Batches for Plan {
    fn head(&self) -> &Plan {
        self
    }

    fn summary(&self) -> Summary {
        Plan::summary(self)
    }

    fn each_batch(&self, visit: &mut dyn FnMut(&Plan) -> anyhow::Result<()>) -> anyhow::Result<()> {
        visit(self)
    }
}

#[cfg(test)]
mod tests {
    /// A plan of 1,000,000 creates holds 1,000,000 of these at its peak.
    #[test]
    fn a_change_is_eight_words() {
        assert_eq!(std::mem::size_of::<super::Change>(), 64);
    }
}
