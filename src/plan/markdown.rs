//! The markdown form of a plan, for a pull-request comment: the summary,
//! the warnings (grouped, folded), the drift, then a review table with a
//! row per change (`file:line`, action, fields, and the alt text, as a word
//! diff for an update) and the diffs of the other fields folded below.
//! Forgets and updates come before creates. `comment.rs` lays the pieces
//! out in parts within the byte budget. Every string from a manifest, a
//! path or the state is escaped (by `crate::untrusted`): a file name cannot
//! inject HTML or links, nor an alt text a control or bidi character.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::error::Diagnostic;
use crate::model::{FieldKind, FieldValue, Metadata};
use crate::plan::comment::{self, Layout, Piece};
use crate::plan::text::{change_diff, change_header, summary_line, untracked_notes};
use crate::plan::{Action, Change, Plan};
use crate::untrusted::{html, markdown as escape};

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
        for field in change.fields.iter() {
            *counts.entry(field).or_default() += 1;
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
/// `cap` bytes.
fn folded(out: &mut String, title: &str, lines: &[String], cap: usize, open: bool) {
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
    let open = if open { " open" } else { "" };
    let mut block = format!(
        "<details{open}><summary>{title}: {}</summary>\n\n",
        lines.len()
    );
    let mut shown = 0;
    for (line, n) in &counts {
        let times = if *n > 1 {
            format!(" (×{n})")
        } else {
            String::new()
        };
        let item = format!("- {}{times}\n", escape(line));
        // Room is kept for the closing lines below.
        if block.len() + item.len() + 120 > cap {
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

/// The plan's comment, in parts (one unless `layout.split`).
pub fn render_markdown(plan: &Plan, layout: &Layout) -> Vec<String> {
    let mut head = format!("**{}**\n\n", summary_line(plan));
    if plan.has_changes() {
        let _ = writeln!(head, "{}\n", plan.cost().line());
    }
    if let Some(fields) = field_counts(plan) {
        let _ = writeln!(head, "{fields}\n");
    }
    if let Some(coverage) = plan.alt_text_coverage {
        let _ = writeln!(head, "{}\n", coverage.line());
    }
    let mut notes: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    if let Some(refresh) = &plan.refresh {
        notes.extend(crate::plan::text::refresh_notes(refresh));
        if refresh.previews_dropped > 0 {
            notes.push(format!(
                "warning: {} image URLs in X's answers were not on the media hosts ({}): not shown",
                refresh.previews_dropped,
                refresh.media_hosts.join(", ")
            ));
        }
    }
    if plan.previews.dropped > 0 {
        let n = plan.previews.dropped;
        notes.push(format!(
            "warning: {n} image URL{} recorded in the state {} not on the media hosts ({}): not shown",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" },
            plan.previews.hosts.join(", ")
        ));
    }
    // Errors (a lint rule at level error) come first and show unfolded.
    let errors = plan
        .warnings
        .iter()
        .any(|w| w.kind() == crate::annotations::Kind::Error);
    let title = if errors {
        "❌ Errors and warnings"
    } else {
        "⚠️ Warnings"
    };
    folded(&mut head, title, &notes, layout.notes_cap(), errors);
    if let Some(refresh) = &plan.refresh {
        drift(&mut head, refresh, layout.notes_cap());
    }
    let pieces: Vec<Piece> = review_order(&plan.changes)
        .into_iter()
        .map(|change| {
            let preview = plan.previews.urls.get(&change.id).map(String::as_str);
            piece(change, preview, plan.prune, layout.piece_cap())
        })
        .collect();
    comment::pack(layout, &head, &pieces)
}

/// One change's row and folded diff, each within `cap` bytes; the row
/// shows the media's image when X's answer gave one on its media hosts.
fn piece(change: &Change, preview: Option<&str>, prune: bool, cap: usize) -> Piece {
    let group = match change.action {
        Action::Forget => "Forgets",
        Action::Update => "Updates",
        Action::Create => "Creates",
    };
    let place = change.location.as_ref().map_or_else(
        || "—".to_string(),
        |l| {
            code(&format!(
                "{}:{}",
                crate::untrusted::neutralise(&l.file.display().to_string(), 200),
                l.line
            ))
        },
    );
    let fields: Vec<String> = change
        .fields
        .iter()
        .chain(change.untracked.iter())
        .map(|f| format!("`{f}`"))
        .collect();
    let fields = if fields.is_empty() {
        "—".to_string()
    } else {
        fields.join(", ")
    };
    let row = |alt: &str| {
        format!(
            "| `{}` | {place} | {} | {fields} | {alt} |\n",
            change.id,
            action_word(change.action),
        )
    };
    // `preview` passed `thumbnail::checked`: https, X's hosts, a plain path.
    let image = preview.map_or_else(String::new, |url| {
        format!("<img src=\"{}\" width=\"64\" alt=\"\"> ", html(url))
    });
    let mut line = row(&format!("{image}{}", alt_text_cell(change)));
    if line.len() > cap {
        line = row(&format!(
            "{image}_too long to show here; `xmeta plan` shows it_"
        ));
    }
    Piece {
        group,
        row: line,
        diff: other_fields_diff(change, prune, cap),
    }
}

/// The alt text as a reviewer judges it: an update's word diff, a
/// create's whole text.
fn alt_text_cell(change: &Change) -> String {
    if let Some(words) = crate::plan::words::alt_text_words(change) {
        return crate::plan::words::render_markdown(&words);
    }
    let sent = change.fields.contains(FieldKind::AltText);
    match (change.action, alt_text(&change.after)) {
        (Action::Create | Action::Update, Some(text)) if sent => escape(text),
        _ => String::new(),
    }
}

fn alt_text(metadata: &Metadata) -> Option<&str> {
    match metadata.get(FieldKind::AltText) {
        Some(FieldValue::AltText(a)) => Some(&a.text),
        _ => None,
    }
}

/// The folded diff of a change that sends more than its alt text (or
/// stops tracking fields); the alt text alone is in its row.
fn other_fields_diff(change: &Change, prune: bool, cap: usize) -> Option<String> {
    let others = change.fields.iter().any(|f| f != FieldKind::AltText);
    if change.action == Action::Forget || (!others && change.untracked.is_empty()) {
        return None;
    }
    let mut block = format!(
        "<details><summary>{}</summary>\n\n",
        html(&change_header(change, prune))
    );
    for note in untracked_notes(change) {
        let _ = writeln!(block, "- {}", escape(&note));
    }
    if change.sends() {
        let diff = change_diff(change);
        let fence = fence(&diff);
        let _ = write!(block, "\n{fence}diff\n{diff}{fence}\n");
    }
    block.push_str("\n</details>\n");
    if block.len() > cap {
        block = format!(
            "<details><summary>{}</summary>\n\nThe diff is too long to show here; `xmeta plan` shows it.\n\n</details>\n",
            html(&change_header(change, prune))
        );
    }
    Some(block)
}

/// Text as inline code in a table cell: a fence longer than any backtick
/// run in it, and `|` escaped (GitHub splits cells before code spans).
fn code(text: &str) -> String {
    let ticks = fence(text);
    let ticks = &ticks[..ticks.len() - 2];
    format!("{ticks} {} {ticks}", text.replace('|', "\\|"))
}

fn drift(out: &mut String, refresh: &crate::refresh::Refresh, cap: usize) {
    let start = out.len();
    let mut shown = 0;
    for d in &refresh.drifted {
        let diff = crate::plan::text::drift_diff(d);
        let fence = fence(&diff);
        let block = format!(
            "<details><summary>{}</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n",
            html(&crate::plan::text::drift_header(d)),
        );
        if out.len() - start + block.len() + 80 > cap {
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

/// The comment for a plan that failed for another reason (the state could
/// not be read, say): `error` already holds no secret.
pub fn render_failure(error: &str, layout: &Layout) -> Vec<String> {
    let error = crate::untrusted::neutralise(error, layout.piece_cap() / 8);
    let head = format!(
        "**The plan failed; nothing was planned.**\n\n- {}\n",
        escape(&error)
    );
    comment::pack(layout, &head, &[])
}

/// The comment for manifests that do not validate: every problem that
/// fits, errors first, so the pull request shows why nothing was planned.
pub fn render_invalid(diagnostics: &[Diagnostic], layout: &Layout) -> Vec<String> {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut head = format!(
        "**The manifests do not validate: {errors} error{}; nothing was planned.**\n\n",
        if errors == 1 { "" } else { "s" }
    );
    let mut ordered: Vec<&Diagnostic> = diagnostics.iter().collect();
    ordered.sort_by_key(|d| !d.is_error());
    // Room is kept for the count of those left out.
    let room = comment::room(layout).saturating_sub(100);
    let mut shown = 0;
    for diagnostic in &ordered {
        let item = format!("- {}\n", escape(&diagnostic.to_string()));
        if head.len() + item.len() > room {
            break;
        }
        head.push_str(&item);
        shown += 1;
    }
    if shown < ordered.len() {
        let _ = writeln!(
            head,
            "- …and {} more; run `xmeta validate` to see them all.",
            ordered.len() - shown
        );
    }
    comment::pack(layout, &head, &[])
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
