//! The JSON plan (`plan --format json`) and saved plans (`plan --out`,
//! `apply --plan`): the same document, saved with a checksum of its content.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{FieldKind, MediaId, Metadata};
use crate::plan::{Action, Change, Plan, PlanWarning, Summary};
use crate::state::Record;

pub const PLAN_FORMAT_VERSION: &str = "1";

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text_coverage: Option<crate::plan::Coverage>,
    /// What `--refresh` found; informative, never applied from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<serde_json::Value>,
    /// The manifests' source revision, which `apply --plan` records in the
    /// history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The work tree had uncommitted changes when the plan was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
}

impl<'a> Document<'a> {
    pub fn new(
        plan: &'a Plan,
        lineage: Option<String>,
        serial: u64,
        source: &crate::state::Provenance,
    ) -> Document<'a> {
        Document {
            revision: source.revision.clone(),
            dirty: source.dirty,
            format_version: PLAN_FORMAT_VERSION.into(),
            // The file format's "no state yet" is "".
            lineage: lineage.unwrap_or_default(),
            serial,
            prune: plan.prune,
            changes: Cow::Borrowed(&plan.changes),
            warnings: plan.warnings.iter().map(ToString::to_string).collect(),
            summary: plan.summary(),
            alt_text_coverage: plan.alt_text_coverage,
            drift: plan
                .refresh
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
        }
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(crate::untrusted::json_pretty(self)?)
    }

    pub fn into_plan(self) -> Plan {
        let unchanged = self.summary.unchanged;
        Plan {
            changes: self.changes.into_owned(),
            unchanged,
            warnings: self.warnings.into_iter().map(PlanWarning::Saved).collect(),
            prune: self.prune,
            price_per_request: crate::plan::cost::PRICE_PER_REQUEST_USD,
            alt_text_coverage: self.alt_text_coverage,
            ..Plan::default()
        }
    }

    /// Refuses the plan unless the state is still what it was planned
    /// against: same lineage, and every planned media's record as `before`.
    pub fn check_fresh(
        &self,
        lineage: Option<&str>,
        serial: u64,
        applied: &BTreeMap<MediaId, Record>,
    ) -> anyhow::Result<()> {
        // The file's "" is "no state yet"; one made since, unwritten, fits.
        let planned = Some(self.lineage.as_str()).filter(|l| !l.is_empty());
        let fresh_state = planned.is_none() && serial == 0;
        if planned != lineage && !fresh_state {
            bail!("the saved plan is stale: it was made for state lineage `{}`, but the state has `{}`; run `xmeta plan --out` again", self.lineage, lineage.unwrap_or_default());
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

/// Larger plan files are refused before they are read (a plan of
/// 1,000,000 media is about 600 MB).
pub const MAX_PLAN_BYTES: u64 = 1 << 30;
const CHECKSUM_PREFIX: &str = "{\n  \"checksum\": \"sha256:";

/// Writes the plan, readable only by its owner. Its second line is the
/// checksum: SHA-256 over every byte after that line. It catches damage
/// and edits made without recomputing it; it is no signature (anyone who
/// can write the file can write a new checksum), which is why the request
/// bodies are derived again, and checked, when the plan is applied.
pub fn write(file: &Path, document: Document) -> anyhow::Result<()> {
    let text = document.to_json()?;
    let rest = text.strip_prefix("{\n").unwrap_or(&text);
    let sealed = format!(
        "{CHECKSUM_PREFIX}{}\",\n{rest}",
        sha256_hex(rest.as_bytes())
    );
    crate::fs_util::write_private(file, sealed.as_bytes())
        .with_context(|| format!("cannot write the plan file `{}`", file.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A change as read back: every key known, `request` kept to be checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadChange {
    id: MediaId,
    action: Action,
    fields: Vec<FieldKind>,
    #[serde(default)]
    untracked: Vec<FieldKind>,
    before: Metadata,
    after: Metadata,
    request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadDocument {
    format_version: String,
    lineage: String,
    serial: u64,
    prune: bool,
    changes: Vec<ReadChange>,
    warnings: Vec<String>,
    summary: Summary,
    #[serde(default)]
    alt_text_coverage: Option<crate::plan::Coverage>,
    #[serde(default)]
    drift: Option<serde_json::Value>,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    dirty: bool,
}

/// Reads a saved plan, refusing one that is too large, corrupt, edited,
/// or not consistent in itself.
pub fn read(file: &Path) -> anyhow::Result<Document<'static>> {
    let shown = file.display();
    let refuse = |why: String| {
        anyhow!("the plan file `{shown}` {why}; make a new one with `xmeta plan --out`")
    };
    let bytes = crate::intake::read(file, None, MAX_PLAN_BYTES)
        .map_err(|e| anyhow!("cannot read the plan file `{shown}`: {e}"))?;
    let sealed = bytes
        .strip_prefix(CHECKSUM_PREFIX.as_bytes())
        .and_then(|b| b.get(64..).map(|rest| (&b[..64], rest)))
        .and_then(|(sum, rest)| rest.strip_prefix(b"\",\n").map(|rest| (sum, rest)));
    let Some((sum, rest)) = sealed else {
        return Err(refuse(
            "is corrupt (it has no checksum line; was it saved by `xmeta plan --out`?)".into(),
        ));
    };
    if sha256_hex(rest).as_bytes() != sum {
        return Err(refuse(
            "does not match its checksum: it was edited or damaged".into(),
        ));
    }
    let mut json = b"{\n".to_vec();
    json.extend_from_slice(rest);
    let read: ReadDocument =
        serde_json::from_slice(&json).map_err(|e| refuse(format!("is corrupt ({e})")))?;
    if read.format_version != PLAN_FORMAT_VERSION {
        bail!(
            "the plan file `{shown}` has format {}, this xmeta reads format {PLAN_FORMAT_VERSION}",
            crate::untrusted::neutralise(&read.format_version, 20)
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut changes = Vec::with_capacity(read.changes.len());
    for c in read.changes {
        if !seen.insert(c.id) {
            return Err(refuse(format!("lists media {} twice", c.id)));
        }
        let request = c.request;
        let change = Change {
            id: c.id,
            action: c.action,
            fields: c.fields,
            untracked: c.untracked,
            before: c.before,
            after: c.after,
            location: None,
        };
        check_change(&change, request.as_ref())
            .map_err(|why| refuse(format!("is inconsistent: media {}: {why}", change.id)))?;
        changes.push(change);
    }
    let document = Document {
        format_version: read.format_version,
        lineage: read.lineage,
        serial: read.serial,
        prune: read.prune,
        changes: Cow::Owned(changes),
        warnings: read.warnings,
        summary: read.summary,
        alt_text_coverage: read.alt_text_coverage,
        drift: read.drift,
        revision: read.revision.map(|r| r.chars().take(200).collect()),
        dirty: read.dirty,
    };
    let plan_summary = Plan {
        changes: document.changes.to_vec(),
        unchanged: document.summary.unchanged,
        warnings: Vec::new(),
        prune: document.prune,
        price_per_request: 0.0,
        alt_text_coverage: None,
        ..Plan::default()
    }
    .summary();
    if plan_summary.counts() != document.summary.counts() {
        return Err(refuse(
            "is inconsistent: its summary does not count its changes".into(),
        ));
    }
    Ok(document)
}

/// A change must say one thing: the fields sent are exactly the keys of
/// `after`, and the request is the one derived from them. The state records
/// `after` once X confirms the request, so a value outside the request
/// would be recorded without ever being sent.
fn check_change(change: &Change, request: Option<&serde_json::Value>) -> Result<(), String> {
    let after: Vec<FieldKind> = change.after.kinds().collect();
    let mut fields = change.fields.clone();
    fields.sort();
    fields.dedup();
    if fields.len() != change.fields.len() {
        return Err("`fields` names a field twice".into());
    }
    match change.action {
        Action::Forget => {
            if !change.fields.is_empty() || !change.after.is_empty() || !change.untracked.is_empty()
            {
                return Err("a forget sends nothing and changes no field".into());
            }
        }
        Action::Create | Action::Update => {
            if fields != after {
                return Err("`fields` and the keys of `after` differ".into());
            }
            if change.untracked.iter().any(|k| fields.contains(k)) {
                return Err("a field is both sent and no longer tracked".into());
            }
            let touched: Vec<FieldKind> = fields.iter().chain(&change.untracked).copied().collect();
            if change.before.kinds().any(|k| !touched.contains(&k)) {
                return Err("`before` holds a field the change does not touch".into());
            }
            if change.action == Action::Create
                && !(change.before.is_empty() && change.untracked.is_empty())
            {
                return Err("a create has nothing before it".into());
            }
        }
    }
    let derived = change
        .request()
        .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
        .transpose()?;
    let given = request.filter(|v| !v.is_null());
    if given != derived.as_ref() {
        return Err("`request` is not the body derived from `fields` and `after`".into());
    }
    Ok(())
}
