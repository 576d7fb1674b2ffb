//! The markdown form of a plan, for a pull-request comment. Everything in
//! it counts toward one GitHub comment (65,536 characters): the summary,
//! the warnings (grouped, folded), the drift, a table of changed media and
//! each diff in a collapsible block, each part cut short with a note when
//! its share is used up. Forgets and updates come before creates, so a
//! large rollout cuts creates first. Every string from a manifest, a path
//! or the state is escaped (by `crate::untrusted`): a file name cannot
//! inject HTML or links, nor an alt text a control or bidi character.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::Diagnostic;
use crate::model::FieldKind;
use crate::plan::text::{change_diff, change_header, summary_line, untracked_notes};
use crate::plan::{Action, Change, Plan};
use crate::untrusted::{html, markdown as escape};

/// GitHub's limit for one comment is 65,536 characters; keep a margin for
/// the workflow's own header (marker, commit, run link).
pub const COMMENT_LIMIT: usize = 65_536;
const BUDGET: usize = COMMENT_LIMIT - 1_536;
/// The warnings and the drift may each use at most this much.
const NOTES_BUDGET: usize = BUDGET / 8;
/// The table may use at most this much, so some diffs always show.
const TABLE_BUDGET: usize = BUDGET * 2 / 5;

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Forget => "forget",
    }
}

/// Forgets, then updates, then creates: what a reviewer must see first.
fn review_order(changes: &[Change]) -> Vec<&Change> {
    let rank = |a: Action| match a {
        Action::Forget => 0,
        Action::Update => 1,
        Action::Create => 2,
    };
    let mut ordered: Vec<&Change> = changes.iter().collect();
    ordered.sort_by_key(|c| rank(c.action));
    ordered
}

/// `alt_text` ×12 · `geo_restrictions` ×3: the fields sent, counted.
fn field_counts(plan: &Plan) -> Option<String> {
    let mut counts: BTreeMap<FieldKind, usize> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.sends()) {
        for field in &change.fields {
            *counts.entry(*field).or_default() += 1;
        }
    }
    (!counts.is_empty()).then(|| {
        let parts: Vec<String> = counts
            .iter()
            .map(|(field, n)| format!("`{field}` ×{n}"))
            .collect();
        format!("Fields sent: {}", parts.join(" · "))
    })
}

/// Identical lines once each with a count, in a folded list, within
/// `NOTES_BUDGET`.
fn folded(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut counts: Vec<(&String, usize)> = Vec::new();
    let mut index: BTreeMap<&String, usize> = BTreeMap::new();
    for line in lines {
        if let Some(&i) = index.get(line) {
            counts[i].1 += 1;
        } else {
            index.insert(line, counts.len());
            counts.push((line, 1));
        }
    }
    let mut block = format!("<details><summary>{title}: {}</summary>\n\n", lines.len());
    let mut shown = 0;
    for (line, n) in &counts {
        let times = if *n > 1 {
            format!(" (×{n})")
        } else {
            String::new()
        };
        let item = format!("- {}{times}\n", escape(line));
        if block.len() + item.len() > NOTES_BUDGET {
            break;
        }
        block.push_str(&item);
        shown += 1;
    }
    if shown < counts.len() {
        let _ = writeln!(
            block,
            "- …and {} more; run `xmeta plan` to see them all.",
            counts.len() - shown
        );
    }
    block.push_str("\n</details>\n\n");
    out.push_str(&block);
}

pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::from("### xmeta plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary_line(plan));
    if plan.has_changes() {
        let _ = writeln!(out, "{}\n", plan.cost().line());
    }
    if let Some(fields) = field_counts(plan) {
        let _ = writeln!(out, "{fields}\n");
    }
    if let Some(coverage) = plan.alt_text_coverage {
        let _ = writeln!(out, "{}\n", coverage.line());
    }
    let mut notes: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    if let Some(refresh) = &plan.refresh {
        notes.extend(crate::plan::text::refresh_notes(refresh));
    }
    folded(&mut out, "⚠️ Warnings", &notes);
    if let Some(refresh) = &plan.refresh {
        drift(&mut out, refresh);
    }
    if !plan.has_changes() {
        return out;
    }
    let ordered = review_order(&plan.changes);
    table(&mut out, &ordered);
    diffs(&mut out, &ordered, plan.prune);
    out
}

fn drift(out: &mut String, refresh: &crate::refresh::Refresh) {
    let start = out.len();
    let mut shown = 0;
    for d in &refresh.drifted {
        let diff = crate::plan::text::drift_diff(d);
        let fence = fence(&diff);
        let block = format!(
            "<details><summary>{}</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n",
            html(&crate::plan::text::drift_header(d)),
        );
        if out.len() - start + block.len() > NOTES_BUDGET {
            break;
        }
        out.push_str(&block);
        shown += 1;
    }
    if shown < refresh.drifted.len() {
        let _ = writeln!(
            out,
            "\n_…and {} more drifted media not shown._",
            refresh.drifted.len() - shown
        );
    }
    if !refresh.drifted.is_empty() {
        out.push('\n');
    }
}

fn table(out: &mut String, ordered: &[&Change]) {
    let mut table = String::from("| Media | Action | Fields |\n|---|---|---|\n");
    let mut rows = 0;
    for change in ordered {
        let fields: Vec<String> = change
            .fields
            .iter()
            .chain(&change.untracked)
            .map(|f| format!("`{f}`"))
            .collect();
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
    if rows < ordered.len() {
        let _ = writeln!(
            out,
            "\n_…and {} more media not listed here._",
            ordered.len() - rows
        );
    }
    out.push('\n');
}

fn diffs(out: &mut String, ordered: &[&Change], prune: bool) {
    let with_diffs: Vec<&&Change> = ordered
        .iter()
        .filter(|c| c.action != Action::Forget)
        .collect();
    let mut shown = 0;
    for change in &with_diffs {
        let mut block = format!(
            "<details><summary>{}</summary>\n\n",
            html(&change_header(change, prune))
        );
        for note in untracked_notes(change) {
            let _ = writeln!(block, "- {}", escape(&note));
        }
        if let Some(words) = crate::plan::words::alt_text_words(change) {
            let _ = writeln!(
                block,
                "\nAlt text, word by word: {}",
                crate::plan::words::render_markdown(&words)
            );
        }
        // A change that only stops tracking fields sends nothing: its
        // notes say so, and there is no diff to show.
        if change.sends() {
            let diff = change_diff(change);
            let fence = fence(&diff);
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
}

/// The comment for a plan that failed for another reason (the state could
/// not be read, say): `error` already holds no secret.
pub fn render_failure(error: &str) -> String {
    format!(
        "### xmeta plan\n\n**The plan failed; nothing was planned.**\n\n- {}\n",
        escape(error)
    )
}

/// The comment for manifests that do not validate: every problem, so the
/// pull request shows why nothing was planned.
pub fn render_invalid(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut out = format!(
        "### xmeta plan\n\n**The manifests do not validate: {errors} error{}; nothing was planned.**\n\n",
        if errors == 1 { "" } else { "s" }
    );
    let lines: Vec<String> = diagnostics
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let mut shown = 0;
    for line in &lines {
        let item = format!("- {}\n", escape(line));
        if out.len() + item.len() > BUDGET {
            break;
        }
        out.push_str(&item);
        shown += 1;
    }
    if shown < lines.len() {
        let _ = writeln!(
            out,
            "- …and {} more; run `xmeta validate` to see them all.",
            lines.len() - shown
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_longer_than_any_backtick_run() {
        assert_eq!(fence("a ```` b"), "`````");
        assert_eq!(fence("plain"), "```");
    }
}
