//! What a plan's reader should know that does not stop the plan: typed
//! where it is found, rendered here, as a line or as a GitHub annotation.

use std::fmt;

use crate::annotations::{annotation, Kind};
use crate::error::Diagnostic;
use crate::lint::{count_of, Exempt, Finding, Level, Rule};
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
    /// How many findings one rule has at one level (shown or not).
    LintCount {
        rule: Rule,
        level: Level,
        findings: usize,
    },
    /// An alt-text finding, at its own level.
    Lint(Finding),
    /// Findings past those shown, counted only, by rule and level.
    MoreLint {
        findings: usize,
        by_rule: Vec<(Rule, Level, usize)>,
    },
    /// A media exempt from some rules, shown so that a reviewer sees it.
    Exempt(Exempt),
    /// A warning as a saved plan recorded it (plan files keep lines).
    Saved(String),
}

impl PlanWarning {
    /// The kind of its annotation: a lint error is an error, an exemption
    /// a notice, everything else a warning.
    pub fn kind(&self) -> Kind {
        match self {
            PlanWarning::Manifest(d) => crate::annotations::diagnostic_kind(d),
            PlanWarning::Lint(f) => Kind::of(f.level),
            // Counts and exemptions: notices, so they take no finding's place.
            PlanWarning::LintCount { .. }
            | PlanWarning::MoreLint { .. }
            | PlanWarning::Exempt(_) => Kind::Notice,
            _ => Kind::Warning,
        }
    }

    /// The warning as a GitHub annotation, at its place when it has one.
    pub fn annotation(&self) -> String {
        match self {
            PlanWarning::Manifest(d) => crate::annotations::diagnostic(d),
            PlanWarning::Lint(f) => annotation(
                Kind::of(f.level),
                Some(&f.location),
                f.rule.id(),
                &f.message,
            ),
            PlanWarning::LintCount { .. } | PlanWarning::MoreLint { .. } => {
                annotation(Kind::Notice, None, "xmeta lint", &self.message())
            }
            PlanWarning::Exempt(e) => annotation(
                Kind::Notice,
                Some(&e.location),
                "alt-text exemption",
                &exemption(e),
            ),
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
            PlanWarning::LintCount {
                rule,
                level,
                findings,
            } => format!("{}: {}", rule.id(), count_of(*findings, *level)),
            PlanWarning::MoreLint { findings, by_rule } => {
                let by_rule: Vec<String> = by_rule
                    .iter()
                    .map(|(rule, level, n)| format!("{}: {}", rule.id(), count_of(*n, *level)))
                    .collect();
                format!(
                    "{} more alt-text finding{} not shown ({}); `xmeta lint` lists them all",
                    crate::plan::cost::thousands(*findings as u64),
                    if *findings == 1 { "" } else { "s" },
                    by_rule.join(", ")
                )
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
            PlanWarning::Lint(finding) => write!(f, "{finding}"),
            PlanWarning::LintCount { level, .. } => write!(f, "{level}: {}", self.message()),
            PlanWarning::Exempt(e) => write!(f, "{}: note: {}", e.location, exemption(e)),
            // Read back from a plan file, which anyone may have edited.
            PlanWarning::Saved(line) => f.write_str(&neutralise(line, 4096)),
            _ => write!(f, "warning: {}", self.message()),
        }
    }
}
