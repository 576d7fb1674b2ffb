//! The JSON plan (`plan --format json`) and saved plans (`plan --out`,
//! `apply --plan`): the same document, saved with a checksum of its content.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{FieldKind, MediaId};
use crate::plan::{Action, Change, Plan, Summary};
use crate::state::Record;

pub const FORMAT_VERSION: &str = "1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document<'a> {
    pub format_version: String,
    /// The state this plan was made against ("" when there was none yet).
    pub lineage: String,
    pub serial: u64,
    /// Whether forgotten media leave the state when applied.
    pub prune: bool,
    /// Borrowed from the plan when writing, owned when read back.
    pub changes: Cow<'a, [Change]>,
    pub warnings: Vec<String>,
    pub summary: Summary,
}

#[derive(Serialize, Deserialize)]
struct Saved<'a> {
    checksum: String,
    #[serde(flatten)]
    document: Document<'a>,
}

impl<'a> Document<'a> {
    pub fn new(plan: &'a Plan, lineage: String, serial: u64) -> Document<'a> {
        Document {
            format_version: FORMAT_VERSION.into(),
            lineage,
            serial,
            prune: plan.prune,
            changes: Cow::Borrowed(&plan.changes),
            warnings: plan.warnings.clone(),
            summary: plan.summary(),
        }
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn into_plan(self) -> Plan {
        let unchanged = self.summary.unchanged;
        Plan {
            changes: self.changes.into_owned(),
            unchanged,
            warnings: self.warnings,
            prune: self.prune,
        }
    }

    fn checksum(&self) -> anyhow::Result<String> {
        let bytes = serde_json::to_vec(self)?;
        Ok(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Refuses the plan unless the state is still what it was planned
    /// against: same lineage, and every planned media's record as `before`.
    pub fn check_fresh(
        &self,
        lineage: &str,
        serial: u64,
        applied: &BTreeMap<MediaId, Record>,
    ) -> anyhow::Result<()> {
        let fresh_state = self.lineage.is_empty() && serial == 0;
        if self.lineage != lineage && !fresh_state {
            bail!("the saved plan is stale: it was made for state lineage `{}`, but the state has `{lineage}`; run `xmeta plan --out` again", self.lineage);
        }
        for change in self.changes.iter() {
            let current = applied.get(&change.id).map(|r| &r.metadata);
            let matches = match change.action {
                Action::Create => current.is_none(),
                Action::Forget => current == Some(&change.before),
                Action::Update => {
                    let touched: Vec<FieldKind> = change
                        .fields
                        .iter()
                        .chain(&change.untracked)
                        .copied()
                        .collect();
                    current.map(|m| m.select(&touched)).as_ref() == Some(&change.before)
                }
            };
            if !matches {
                bail!(
                    "the saved plan is stale: the state of media {} changed after the plan was made; run `xmeta plan --out` again",
                    change.id
                );
            }
        }
        Ok(())
    }
}

/// Writes the plan with its checksum, readable only by its owner.
pub fn write(file: &Path, document: Document) -> anyhow::Result<()> {
    let saved = Saved {
        checksum: document.checksum()?,
        document,
    };
    let text = serde_json::to_string_pretty(&saved)?;
    crate::fs_util::write_private(file, text.as_bytes())
        .with_context(|| format!("cannot write the plan file `{}`", file.display()))
}

/// Reads a saved plan, refusing one that is corrupt or was edited.
pub fn read(file: &Path) -> anyhow::Result<Document<'static>> {
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read the plan file `{}`", file.display()))?;
    let saved: Saved = serde_json::from_slice(&text).map_err(|e| {
        anyhow!(
            "the plan file `{}` is corrupt ({e}); make a new one with `xmeta plan --out`",
            file.display()
        )
    })?;
    if saved.document.format_version != FORMAT_VERSION {
        bail!(
            "the plan file `{}` has format {}, this xmeta reads format {FORMAT_VERSION}",
            file.display(),
            saved.document.format_version
        );
    }
    if saved.document.checksum()? != saved.checksum {
        bail!("the plan file `{}` does not match its checksum: it was edited or damaged; make a new one with `xmeta plan --out`", file.display());
    }
    Ok(saved.document)
}
