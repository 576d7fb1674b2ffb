//! The text form of a plan: a header per changed media, a unified diff of
//! the YAML of the fields it sends, and the summary line.

use std::fmt::Write as _;
use std::io;

use similar::TextDiff;

use crate::plan::yaml_text::metadata_yaml;
use crate::plan::{Action, Batches, Change, Plan, Summary};

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD_YELLOW: &str = "\x1b[1;33m";
const BOLD_RED: &str = "\x1b[1;31m";
const BOLD_MAGENTA: &str = "\x1b[1;35m";
const RESET: &str = "\x1b[0m";

fn paint(out: &mut String, color: bool, style: &str, text: &str) {
    paint_parts(out, color, style, &[text]);
}

/// `paint` of the parts written one after another: a plan's every diff
/// line, without a string made for each.
fn paint_parts(out: &mut String, color: bool, style: &str, parts: &[&str]) {
    if color {
        out.push_str(style);
    }
    out.extend(parts.iter().copied());
    if color {
        out.push_str(RESET);
    }
    out.push('\n');
}

pub fn summary_line(plan: &Plan) -> String {
    summary_line_of(plan, &plan.summary())
}

/// The summary line of a plan whose changes `s` counts (see `Batches`).
fn summary_line_of(plan: &Plan, s: &Summary) -> String {
    let drifted = plan.refresh.as_ref().map_or(0, |r| r.drifted.len());
    if !s.has_changes() && drifted == 0 {
        return format!("No changes. {} media match the manifests.", s.unchanged);
    }
    let drift = match &plan.refresh {
        Some(r) => format!(", {} drifted", r.drifted.len()),
        None => String::new(),
    };
    format!(
        "Plan: {} to create, {} to update, {} to forget, {} unchanged{drift}. {} request{}.",
        s.create,
        s.update,
        s.forget,
        s.unchanged,
        s.requests,
        if s.requests == 1 { "" } else { "s" }
    )
}

/// `! media 42 drifted: alt_text changed outside xmeta`, with the diff
/// from the recorded value to the live one.
pub fn drift_header(drift: &crate::refresh::Drift) -> String {
    format!(
        "! media {} drifted: alt_text changed outside xmeta",
        drift.id
    )
}

pub fn drift_diff(drift: &crate::refresh::Drift) -> String {
    TextDiff::from_lines(&metadata_yaml(&drift.recorded), &metadata_yaml(&drift.live))
        .unified_diff()
        .context_radius(3)
        .header("recorded", "live")
        .to_string()
}

/// What a refresh found, after the changes: each drift, then counts.
pub fn refresh_notes(refresh: &crate::refresh::Refresh) -> Vec<String> {
    let not_found = not_found_warning(refresh).map(|w| format!("warning: {w}"));
    not_found
        .into_iter()
        .chain(unrefreshable_note(refresh))
        .collect()
}

/// The media X did not know, in one warning however many: 810 lines
/// would bury the plan. The first few IDs; `--format json` lists them all.
pub fn not_found_warning(refresh: &crate::refresh::Refresh) -> Option<String> {
    const SHOWN: usize = 5;
    match refresh.not_found.as_slice() {
        [] => None,
        [(id, key)] => Some(format!(
            "media {id} was not found on X (key {key}): deleted, or the key is wrong"
        )),
        many => {
            let mut ids: Vec<String> = many
                .iter()
                .take(SHOWN)
                .map(|(id, _)| id.to_string())
                .collect();
            if many.len() > SHOWN {
                ids.push("… (see --format json)".into());
            }
            Some(format!(
                "{} media were not found on X (deleted, or their keys are wrong): {}",
                many.len(),
                ids.join(", ")
            ))
        }
    }
}

fn unrefreshable_note(refresh: &crate::refresh::Refresh) -> Option<String> {
    (refresh.unrefreshable > 0).then(|| {
        format!(
            "{} media could not be refreshed: their manifests give no `key` or `type`",
            refresh.unrefreshable
        )
    })
}

/// The text forms' refresh notes: the warning on stderr (the contract
/// keeps stdout for results), the count of media not read in `out`.
pub fn refresh_text_notes(refresh: &crate::refresh::Refresh) -> Option<String> {
    if let Some(warning) = not_found_warning(refresh) {
        crate::logging::line("warning", &warning);
    }
    unrefreshable_note(refresh)
}

fn render_drift(out: &mut String, drift: &crate::refresh::Drift, color: bool) {
    paint(out, color, BOLD_MAGENTA, &drift_header(drift));
    paint_diff(out, &drift_diff(drift), color);
    out.push('\n');
}

/// A unified diff, indented, its lines coloured by their first character.
fn paint_diff(out: &mut String, diff: &str, color: bool) {
    for line in diff.lines() {
        paint_diff_line(out, color, line, "");
    }
}

/// One line of a unified diff (`head` then `rest`), indented and coloured
/// by its first character.
fn paint_diff_line(out: &mut String, color: bool, head: &str, rest: &str) {
    let style = match head.as_bytes().first() {
        Some(b'+') => GREEN,
        Some(b'-') => RED,
        Some(b'@') => CYAN,
        _ => "",
    };
    paint_parts(
        out,
        color && !style.is_empty(),
        style,
        &["    ", head, rest],
    );
}

/// The unified diff of the fields a change sends, without colour.
pub fn change_diff(change: &Change) -> String {
    let mut out = String::new();
    each_diff_line(change, |head, rest| {
        out.push_str(head);
        out.push_str(rest);
        out.push('\n');
    });
    out
}

/// The lines of `change_diff`, each in two parts (a plan writes them
/// where they go, not joined first).
fn each_diff_line(change: &Change, mut line: impl FnMut(&str, &str)) {
    let before = metadata_yaml(&change.before.select(change.fields));
    let after = metadata_yaml(&change.after);
    if before.is_empty() {
        // Nothing on one side: the diff is every line added. Written
        // directly, in the same form `similar` gives, because a plan of
        // 100,000 creates would otherwise spend its time diffing nothing.
        // Every line of the YAML ends with a newline.
        let lines = after.bytes().filter(|b| *b == b'\n').count();
        line("--- applied", "");
        line("+++ wanted", "");
        line(&format!("@@ -0,0 +1,{lines} @@"), "");
        for text in after.lines() {
            line("+", text);
        }
        return;
    }
    let diff = TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("applied", "wanted")
        .to_string();
    for text in diff.lines() {
        line(text, "");
    }
}

pub fn change_header(change: &Change, prune: bool) -> String {
    let n = change.fields.len();
    let fields = format!("{n} field{}", if n == 1 { "" } else { "s" });
    match change.action {
        Action::Create => format!("+ media {} will be created ({fields})", change.id),
        Action::Update => format!("~ media {} will be updated ({fields})", change.id),
        Action::Forget if prune => format!(
            "- media {} will be forgotten (removed from the state; nothing is sent)",
            change.id
        ),
        Action::Forget => format!(
            "- media {} is in no manifest: it will be forgotten with --prune (nothing is sent)",
            change.id
        ),
    }
}

pub fn untracked_notes(change: &Change) -> impl Iterator<Item = String> + '_ {
    change.untracked.iter().map(|k| {
        format!("field `{k}` is no longer declared: it is not sent, X keeps its current value, and the state stops tracking it")
    })
}

fn render_change(out: &mut String, change: &Change, prune: bool, color: bool) {
    // Coloured as Terraform colours its actions.
    let style = match change.action {
        Action::Create => BOLD_GREEN,
        Action::Update => BOLD_YELLOW,
        Action::Forget => BOLD_RED,
    };
    paint(out, color, style, &change_header(change, prune));
    for note in untracked_notes(change) {
        let _ = writeln!(out, "    {note}");
    }
    if change.action != Action::Forget && !change.fields.is_empty() {
        each_diff_line(change, |head, rest| paint_diff_line(out, color, head, rest));
    }
    if let Some(words) = crate::plan::words::alt_text_words(change) {
        let _ = writeln!(
            out,
            "    alt text, word by word: {}",
            crate::plan::words::render_plain(&words, color)
        );
    }
    out.push('\n');
}

fn render_changes(changes: &[Change], prune: bool, color: bool) -> String {
    // A change of the bench's library renders to 330 bytes: one allocation
    // a part, not a copy at each doubling.
    let mut out = String::with_capacity(changes.len() * 384);
    for change in changes {
        render_change(&mut out, change, prune, color);
    }
    out
}

/// Writes the plan as text, rendering on every core.
pub fn write_text(plan: &dyn Batches, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let head = plan.head();
    // Drift first: it explains the updates that put it back.
    if let Some(refresh) = &head.refresh {
        let mut head = String::new();
        for drift in &refresh.drifted {
            render_drift(&mut head, drift, color);
        }
        out.write_all(head.as_bytes())?;
    }
    plan.each_batch(&mut |batch| {
        let render = |part: &[Change]| render_changes(part, batch.prune, color);
        crate::parallel::each_part_in_order(
            &batch.changes,
            crate::parallel::BATCH,
            render,
            |text| out.write_all(text.as_bytes()),
        )?;
        Ok(())
    })
    .map_err(|e| match e.downcast::<io::Error>() {
        Ok(e) => e,
        Err(e) => io::Error::other(format!("{e:#}")),
    })?;
    let summary = plan.summary();
    let mut tail = String::new();
    if let Some(note) = head.refresh.as_ref().and_then(refresh_text_notes) {
        let _ = writeln!(tail, "{note}");
    }
    for warning in &head.warnings {
        let _ = writeln!(tail, "{warning}");
    }
    paint(&mut tail, color, BOLD, &summary_line_of(head, &summary));
    if summary.has_changes() {
        let _ = writeln!(tail, "{}", head.cost_of(summary.requests).line());
    }
    if let Some(coverage) = head.alt_text_coverage {
        let _ = writeln!(tail, "{}", coverage.line());
    }
    out.write_all(tail.as_bytes())
}

/// The whole plan as text (for small plans and tests).
#[must_use]
pub fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = Vec::new();
    let _ = write_text(plan, color, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue, MediaId, Metadata};
    use crate::plan::diff::diff_media;

    #[test]
    fn a_create_renders_as_similar_would() {
        let mut wanted = Metadata::default();
        wanted.insert(FieldValue::AltText(AltText {
            text: "a cat".into(),
        }));
        let change = diff_media(&MediaId::parse("1").unwrap(), &wanted, None).unwrap();
        let by_similar = TextDiff::from_lines("", &metadata_yaml(&wanted))
            .unified_diff()
            .context_radius(3)
            .header("applied", "wanted")
            .to_string();
        assert_eq!(change_diff(&change), by_similar);
    }
}
