//! The markdown form of a plan, for a pull-request comment: the summary,
//! a table of changed media, and each diff in a collapsible block. It
//! always fits in one GitHub comment: the table and then the diffs are cut
//! short, with a note saying how much was left out.

use std::fmt::Write;

use crate::plan::text::{change_diff, change_header, summary_line, untracked_notes};
use crate::plan::{Action, Plan};

/// GitHub's limit for one comment is 65,536 characters; keep a margin.
pub const COMMENT_LIMIT: usize = 65_536;
const BUDGET: usize = COMMENT_LIMIT - 1_536;
/// The table may use at most this much, so some diffs always show.
const TABLE_BUDGET: usize = BUDGET * 2 / 5;

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Forget => "forget",
    }
}

pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::from("### xmeta plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if plan.has_changes() {
        let _ = writeln!(out, "{}\n", plan.cost().line());
    }
    if let Some(coverage) = plan.alt_text_coverage {
        let _ = writeln!(out, "{}\n", coverage.line());
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "> ⚠️ {}\n", warning.replace('\n', " "));
    }
    if let Some(refresh) = &plan.refresh {
        for note in crate::plan::text::refresh_notes(refresh) {
            let _ = writeln!(out, "> {}\n", note.replace('\n', " "));
        }
        for drift in &refresh.drifted {
            let _ = writeln!(
                out,
                "<details><summary>{}</summary>\n\n```diff\n{}```\n\n</details>",
                crate::plan::text::drift_header(drift),
                crate::plan::text::drift_diff(drift)
            );
        }
        if !refresh.drifted.is_empty() {
            out.push('\n');
        }
    }
    if !plan.has_changes() {
        return out;
    }

    let mut table = String::from("| Media | Action | Fields |\n|---|---|---|\n");
    let mut rows = 0;
    for change in &plan.changes {
        let fields: Vec<String> = change.fields.iter().map(|f| format!("`{f}`")).collect();
        let row = format!(
            "| `{}` | {} | {} |\n",
            change.id,
            action_word(change.action),
            fields.join(", ")
        );
        if table.len() + row.len() > TABLE_BUDGET {
            break;
        }
        table.push_str(&row);
        rows += 1;
    }
    out.push_str(&table);
    if rows < plan.changes.len() {
        let _ = writeln!(
            out,
            "\n_…and {} more media not listed here._",
            plan.changes.len() - rows
        );
    }
    out.push('\n');

    let with_diffs: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Forget)
        .collect();
    let mut shown = 0;
    for change in &with_diffs {
        let diff = change_diff(change);
        let fence = if diff.contains("```") { "````" } else { "```" };
        let mut block = format!(
            "<details><summary>{}</summary>\n\n",
            change_header(change, plan.prune)
        );
        for note in untracked_notes(change) {
            let _ = writeln!(block, "- {note}");
        }
        if !diff.is_empty() {
            let _ = write!(block, "\n{fence}diff\n{diff}{fence}\n");
        }
        block.push_str("\n</details>\n");
        if out.len() + block.len() > BUDGET {
            break;
        }
        out.push_str(&block);
        shown += 1;
    }
    if shown < with_diffs.len() {
        let _ = writeln!(
            out,
            "\n**{} of {} diffs were left out to fit in one comment.** Run `xmeta plan` to see them all.",
            with_diffs.len() - shown,
            with_diffs.len()
        );
    }
    out
}
