//! What a plan's reader should know that does not stop the plan: typed
//! where it is found, rendered here, as a line or as a GitHub annotation.

use std::fmt;

use crate::annotations::{annotation, Kind};
use crate::error::Diagnostic;
use crate::lint::{Exempt, Finding};
use crate::untrusted::neutralise;

#[derive(Clone, Debug, PartialEq)]
pub enum PlanWarning {
    /// A manifest's own warning, at its place.
    Manifest(Diagnostic),
    /// Media whose manifests have errors: neither applied nor forgotten.
    Held { media: usize },
    /// Media in the state and in no valid manifest while some manifest has
    /// errors: not planned as forgotten.
    NotForgottenWhileInvalid { media: usize },
    /// Media in the state and in no manifest, kept without `--prune`.
    Unmanaged { media: usize },
    /// An alt-text finding, shown as a warning whatever its level.
    Lint(Finding),
    /// Findings past those shown, counted only.
    MoreLint { findings: usize },
    /// A media exempt from some rules, shown so that a reviewer sees it.
    Exempt(Exempt),
    /// A warning as a saved plan recorded it (plan files keep lines).
    Saved(String),
}

impl PlanWarning {
    /// The warning as a GitHub annotation, at its place when it has one.
    pub fn annotation(&self) -> String {
        match self {
            PlanWarning::Manifest(d) => crate::annotations::diagnostic(d),
            PlanWarning::Lint(f) => {
                annotation(Kind::Warning, Some(&f.location), f.rule.id(), &f.message)
            }
            PlanWarning::Exempt(e) => annotation(
                Kind::Notice,
                Some(&e.location),
                "alt-text exemption",
                &exemption(e),
            ),
            PlanWarning::MoreLint { .. } => {
                annotation(Kind::Warning, None, "xmeta lint", &self.message())
            }
            _ => annotation(Kind::Warning, None, "xmeta plan", &self.message()),
        }
    }

    /// The message without its place or label.
    fn message(&self) -> String {
        match self {
            PlanWarning::Manifest(d) => d.message.clone(),
            PlanWarning::Held { media } => format!(
                "{media} media are held back until their manifests are fixed (neither applied nor forgotten)"
            ),
            PlanWarning::NotForgottenWhileInvalid { media } => format!(
                "{media} media in the state are in no valid manifest; nothing is planned as forgotten while manifests have errors"
            ),
            PlanWarning::Unmanaged { media } => format!(
                "{media} media in the state are in no manifest; they stay in the state until you pass `--prune` (nothing is ever sent for them)"
            ),
            PlanWarning::Lint(f) => f.message.clone(),
            PlanWarning::MoreLint { findings } => {
                format!("{findings} more alt-text findings; `xmeta lint` lists them all")
            }
            PlanWarning::Exempt(e) => exemption(e),
            PlanWarning::Saved(line) => neutralise(line, 4096),
        }
    }
}

fn exemption(e: &Exempt) -> String {
    format!(
        "media {} is exempt from {}: {}",
        e.id,
        neutralise(&e.rules.join(", "), 200),
        neutralise(&e.reason, 500)
    )
}

impl fmt::Display for PlanWarning {
    /// One complete line: `file:line:col: warning: …` or `warning: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanWarning::Manifest(d) => write!(f, "{d}"),
            PlanWarning::Lint(finding) => write!(
                f,
                "{}: warning[{}]: {}",
                finding.location,
                finding.rule.id(),
                finding.message
            ),
            PlanWarning::Exempt(e) => write!(f, "{}: note: {}", e.location, exemption(e)),
            // Read back from a plan file, which anyone may have edited.
            PlanWarning::Saved(line) => f.write_str(&neutralise(line, 4096)),
            _ => write!(f, "warning: {}", self.message()),
        }
    }
}
