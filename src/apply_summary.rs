//! What an apply did, for the merged pull request or commit (as tfcmt and
//! Atlantis post it): applied, failed with reasons, forgotten, not sent,
//! the requests spent and their cost, and what is left of the budget, as
//! JSON or as a markdown comment within GitHub's limit. The reasons come
//! from X's answers: they reach the output only escaped.

use std::fmt::Write as _;

use serde::Serialize;

use crate::apply::{Budget, Halt, Report};
use crate::plan::cost::thousands;
use crate::untrusted::{markdown, neutralise};

/// A comment's bytes at most (GitHub takes 65,536 characters), with room
/// for a workflow's marker line.
const COMMENT_BYTES: usize = 64_000;

#[derive(Debug, Serialize)]
pub struct Summary {
    /// `complete`, `failed`, `interrupted` or `stopped_at_budget`.
    pub outcome: &'static str,
    pub applied: usize,
    pub forgotten: usize,
    pub failed: Vec<Failed>,
    /// Requests never started (a stop, a budget, a halt): they plan again.
    pub not_sent: usize,
    /// Sent, but not confirmed before the drain ended: they plan again.
    pub not_confirmed: usize,
    /// Why no new request was started, when the run stopped early.
    pub stopped: Option<String>,
    /// Requests sent to X, retries and drift reads included.
    pub requests: usize,
    pub estimated_cost_usd: f64,
    pub budget: BudgetLeft,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BudgetLeft {
    pub max_requests: Option<usize>,
    /// Of `max_requests`, those this run did not start.
    pub requests_left: Option<usize>,
    pub max_duration_secs: Option<u64>,
}

impl Summary {
    /// `reads`: the drift reads made before applying (`--refresh`).
    pub fn new(report: &Report, reads: usize, price_per_request: f64, budget: &Budget) -> Summary {
        let outcome = if report.interrupted {
            "interrupted"
        } else if report.at_budget() {
            "stopped_at_budget"
        } else if report.succeeded() {
            "complete"
        } else {
            "failed"
        };
        let requests = report.requests + reads;
        // Posts started count against --max-requests; retries do not.
        let started = report.applied + report.failed.len() + report.unconfirmed;
        Summary {
            outcome,
            applied: report.applied + report.recorded,
            forgotten: report.forgotten,
            failed: report
                .failed
                .iter()
                .map(|(id, failure)| Failed {
                    id: id.to_string(),
                    reason: neutralise(&failure.to_string(), 1_000),
                })
                .collect(),
            not_sent: report.skipped,
            not_confirmed: report.unconfirmed,
            stopped: report.halted.as_ref().map(|h| match h {
                Halt::NotRecorded(r) => format!("the state cannot be written ({r})"),
                Halt::Credentials(r)
                | Halt::Unreachable(r)
                | Halt::Budget(r)
                | Halt::Unreadable(r) => r.clone(),
            }),
            requests,
            estimated_cost_usd: (requests as f64 * price_per_request * 1e6).round() / 1e6,
            budget: BudgetLeft {
                max_requests: budget.max_requests,
                requests_left: budget.max_requests.map(|m| m.saturating_sub(started)),
                max_duration_secs: budget.max_duration.map(|d| d.as_secs()),
            },
        }
    }

    pub fn json(&self) -> String {
        crate::untrusted::json_pretty(self).unwrap_or_default()
    }

    /// The summary as a comment: counts in a table, failures folded, the
    /// list cut (and counted) before the comment's limit.
    pub fn markdown(&self, report_line: &str) -> String {
        let mut out = format!("### xmeta apply\n\n**{}**\n\n", markdown(report_line));
        out.push_str("| | |\n|---|---|\n");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "| {name} | {value} |");
        };
        row("Applied", thousands(self.applied as u64));
        row("Forgotten", thousands(self.forgotten as u64));
        row("Failed", thousands(self.failed.len() as u64));
        row("Not sent (plan again)", thousands(self.not_sent as u64));
        row(
            "Sent, not confirmed (plan again)",
            thousands(self.not_confirmed as u64),
        );
        row(
            "Requests sent",
            format!(
                "{} (≈ {})",
                thousands(self.requests as u64),
                crate::plan::cost::dollars(self.estimated_cost_usd)
            ),
        );
        if let (Some(max), Some(left)) = (self.budget.max_requests, self.budget.requests_left) {
            row(
                "Budget left",
                format!(
                    "{} of {} requests",
                    thousands(left as u64),
                    thousands(max as u64)
                ),
            );
        }
        out.push('\n');
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "Stopped: {}\n", markdown(why));
        }
        if self.failed.is_empty() {
            return out;
        }
        let _ = write!(
            out,
            "<details><summary>Failed: {}</summary>\n\n",
            thousands(self.failed.len() as u64)
        );
        let mut shown = 0;
        for f in &self.failed {
            let item = format!("- `{}`: {}\n", f.id, markdown(&f.reason));
            // Room is kept for the count and the closing tag.
            if out.len() + item.len() + 200 > COMMENT_BYTES {
                break;
            }
            out.push_str(&item);
            shown += 1;
        }
        if shown < self.failed.len() {
            let _ = writeln!(
                out,
                "- …and {} more; `--format json` lists them all.",
                thousands((self.failed.len() - shown) as u64)
            );
        }
        out.push_str("\n</details>\n");
        out
    }
}
