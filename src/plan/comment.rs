//! A pull-request comment in parts, each within a byte budget. GitHub takes
//! at most 65,536 characters a comment, and a workflow that cuts one short
//! leaves an unclosed `<details>` or fence, or half a character. Here the
//! content comes in whole pieces (a change's table row and its folded
//! diff), each piece is placed in a part only where the part's every byte
//! — banner, heading, the blocks that wrap it, the footer — still fits,
//! and the blocks are closed in the part that opens them. Nothing is cut;
//! what does not fit in one comment is counted there, or goes to the next
//! part (`--split`).

use std::fmt::Write as _;

use crate::plan::cost::thousands;

/// GitHub's limit for one comment (65,536 characters, so at least as many
/// bytes).
pub const DEFAULT_MAX_BYTES: usize = 65_536;
/// Below this a part would hold little more than its frame.
pub const MIN_MAX_BYTES: usize = 4_096;
/// Rows shown open at the top of each part; the rest fold by action.
pub const OPEN_ROWS: usize = 20;

pub const TABLE_HEADER: &str =
    "| Media | File | Action | Fields | Alt text |\n|---|---|---|---|---|\n";

/// How the comment is laid out.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Every part's size, in bytes.
    pub max_bytes: usize,
    /// A line shown first in every part (`--banner`), already escaped.
    pub banner: Option<String>,
    /// Whether more than one part may be written (`--split`).
    pub split: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            max_bytes: DEFAULT_MAX_BYTES,
            banner: None,
            split: false,
        }
    }
}

impl Layout {
    /// The most one piece (a row, a diff) may take: a quarter of a part,
    /// so that part 1 always holds the summary and the first changes.
    pub fn piece_cap(&self) -> usize {
        self.max_bytes / 4
    }

    /// The most the notes at the top (warnings, drift) may each take.
    pub fn notes_cap(&self) -> usize {
        self.max_bytes / 8
    }
}

/// One change as the comment shows it.
pub struct Piece {
    /// `Forgets`, `Updates` or `Creates`: the folded group it goes in.
    pub group: &'static str,
    /// Its table row, `| … |\n`.
    pub row: String,
    /// Its diff, folded below the table (other fields than alt text).
    pub diff: Option<String>,
}

/// The content of a part: which pieces, in which blocks.
#[derive(Default)]
struct Draft {
    open_rows: Vec<usize>,
    /// Folded groups: `(group, first piece, pieces)`.
    folded: Vec<(&'static str, usize, Vec<usize>)>,
    diffs: Vec<usize>,
    bytes: usize,
}

/// The parts of a comment: `head` (summary, cost, notes) opens part 1.
/// Without `split`, one part, whose footer counts what did not fit.
pub fn pack(layout: &Layout, head: &str, pieces: &[Piece]) -> Vec<String> {
    let totals = group_totals(pieces);
    // Bounds for the frame, before the number of parts is known: a part
    // number is at most as long as the number of pieces (plus one).
    let most = thousands(pieces.len() as u64 + 1);
    let frame = heading(layout, &most, &most).len() + footer_bound(layout, &most);
    let wrap = folded_open("Creates", &most, &most, &most).len() + FOLDED_CLOSE.len();
    let diffs_wrap = diffs_open(&most).len() + DIFFS_CLOSE.len();

    let mut drafts: Vec<Draft> = Vec::new();
    let mut draft = Draft {
        bytes: frame + head.len(),
        ..Draft::default()
    };
    let mut left_out = 0;
    for (i, piece) in pieces.iter().enumerate() {
        let mut cost = place_cost(&draft, piece, wrap, diffs_wrap);
        if draft.bytes + cost > layout.max_bytes {
            if !layout.split {
                left_out = pieces.len() - i;
                break;
            }
            drafts.push(std::mem::take(&mut draft));
            draft.bytes = frame;
            cost = place_cost(&draft, piece, wrap, diffs_wrap);
        }
        draft.bytes += cost;
        place(&mut draft, i, piece);
    }
    drafts.push(draft);

    let n = drafts.len();
    let mut shown = vec![0usize; totals.len()];
    drafts
        .into_iter()
        .enumerate()
        .map(|(k, draft)| {
            let (k_text, n_text) = (thousands(k as u64 + 1), thousands(n as u64));
            let mut out = heading(layout, &k_text, &n_text);
            if k == 0 {
                out.push_str(head);
            }
            render_rows(&mut out, &draft, pieces, &totals, &mut shown);
            if !draft.diffs.is_empty() {
                out.push_str(&diffs_open(&thousands(draft.diffs.len() as u64)));
                for &i in &draft.diffs {
                    out.push_str(pieces[i].diff.as_deref().unwrap_or_default());
                }
                out.push_str(DIFFS_CLOSE);
            }
            out.push_str(&footer(k + 1, n, left_out));
            out
        })
        .collect()
}

/// The bytes a part has for its content besides the pieces.
pub fn room(layout: &Layout) -> usize {
    layout
        .max_bytes
        .saturating_sub(heading(layout, "1", "1").len() + footer_bound(layout, "1"))
}

/// What placing `piece` in `draft` adds, in bytes.
fn place_cost(draft: &Draft, piece: &Piece, wrap: usize, diffs_wrap: usize) -> usize {
    let mut cost = piece.row.len();
    if draft.open_rows.len() < OPEN_ROWS {
        if draft.open_rows.is_empty() {
            cost += TABLE_HEADER.len() + 1;
        }
    } else if draft
        .folded
        .last()
        .is_none_or(|(g, _, _)| *g != piece.group)
    {
        cost += wrap + TABLE_HEADER.len();
    }
    if let Some(diff) = &piece.diff {
        cost += diff.len();
        if draft.diffs.is_empty() {
            cost += diffs_wrap;
        }
    }
    cost
}

fn place(draft: &mut Draft, i: usize, piece: &Piece) {
    if draft.open_rows.len() < OPEN_ROWS {
        draft.open_rows.push(i);
    } else {
        match draft.folded.last_mut() {
            Some((g, _, rows)) if *g == piece.group => rows.push(i),
            _ => draft.folded.push((piece.group, i, vec![i])),
        }
    }
    if piece.diff.is_some() {
        draft.diffs.push(i);
    }
}

fn render_rows(
    out: &mut String,
    draft: &Draft,
    pieces: &[Piece],
    totals: &[(&'static str, usize)],
    shown: &mut [usize],
) {
    // How many of each group earlier rows showed (`Updates 21–540 of 2,000`).
    let group = |i: usize| {
        totals
            .iter()
            .position(|(name, _)| *name == pieces[i].group)
            .unwrap_or(0)
    };
    if !draft.open_rows.is_empty() {
        out.push_str(TABLE_HEADER);
        for &i in &draft.open_rows {
            shown[group(i)] += 1;
            out.push_str(&pieces[i].row);
        }
        out.push('\n');
    }
    for (name, first, rows) in &draft.folded {
        let g = group(*first);
        let from = shown[g] + 1;
        shown[g] += rows.len();
        out.push_str(&folded_open(
            name,
            &thousands(from as u64),
            &thousands(shown[g] as u64),
            &thousands(totals[g].1 as u64),
        ));
        out.push_str(TABLE_HEADER);
        for &i in rows {
            out.push_str(&pieces[i].row);
        }
        out.push_str(FOLDED_CLOSE);
    }
}

/// Each group's name and size, in the order pieces come.
fn group_totals(pieces: &[Piece]) -> Vec<(&'static str, usize)> {
    let mut totals: Vec<(&'static str, usize)> = Vec::new();
    for piece in pieces {
        match totals.iter_mut().find(|(g, _)| *g == piece.group) {
            Some((_, n)) => *n += 1,
            None => totals.push((piece.group, 1)),
        }
    }
    totals
}

fn heading(layout: &Layout, k: &str, n: &str) -> String {
    let mut out = String::new();
    if let Some(banner) = &layout.banner {
        let _ = write!(out, "> {banner}\n\n");
    }
    if layout.split && n != "1" {
        let _ = write!(out, "### xmeta plan (part {k} of {n})\n\n");
    } else {
        out.push_str("### xmeta plan\n\n");
    }
    out
}

fn footer(k: usize, n: usize, left_out: usize) -> String {
    if left_out > 0 {
        return format!(
            "**{} more change{} did not fit in this comment.** `xmeta plan --format markdown --split DIR` writes every part; `xmeta plan` shows them all.\n",
            thousands(left_out as u64),
            if left_out == 1 { "" } else { "s" }
        );
    }
    if k < n {
        format!(
            "_Part {} of {}: the plan goes on in part {}._\n",
            thousands(k as u64),
            thousands(n as u64),
            thousands(k as u64 + 1)
        )
    } else if n > 1 {
        format!(
            "_Part {0} of {0}: the end of the plan._\n",
            thousands(n as u64)
        )
    } else {
        String::new()
    }
}

/// The longest footer a part can have.
fn footer_bound(layout: &Layout, most: &str) -> usize {
    if layout.split {
        format!("_Part {most} of {most}: the plan goes on in part {most}._\n").len()
    } else {
        footer(1, 1, usize::MAX / 2).len()
    }
}

fn folded_open(group: &str, first: &str, last: &str, total: &str) -> String {
    format!("<details><summary>{group} {first}–{last} of {total}</summary>\n\n")
}

const FOLDED_CLOSE: &str = "\n</details>\n\n";

fn diffs_open(n: &str) -> String {
    format!("<details><summary>Diffs of the other fields ({n})</summary>\n\n")
}

const DIFFS_CLOSE: &str = "\n</details>\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(n: usize, group: &'static str, size: usize) -> Vec<Piece> {
        (0..n)
            .map(|i| Piece {
                group,
                row: format!("| {i} | {} |\n", "x".repeat(size)),
                diff: (i % 3 == 0).then(|| format!("<details>{}</details>\n", "d".repeat(size))),
            })
            .collect()
    }

    #[test]
    fn every_part_fits_and_every_piece_is_in_one_part() {
        let layout = Layout {
            max_bytes: 4_096,
            banner: Some("a banner".into()),
            split: true,
        };
        let mut all = pieces(300, "Updates", 40);
        all.extend(pieces(200, "Creates", 90));
        let parts = pack(&layout, "**Plan**\n\n", &all);
        assert!(parts.len() > 10, "{}", parts.len());
        for part in &parts {
            assert!(part.len() <= layout.max_bytes, "{}", part.len());
            assert!(part.starts_with("> a banner\n\n### xmeta plan (part "));
            assert_eq!(
                part.matches("<details>").count(),
                part.matches("</details>").count()
            );
        }
        for piece in &all {
            let n = parts.iter().filter(|p| p.contains(&piece.row)).count();
            assert_eq!(n, 1, "{}", piece.row);
        }
    }

    #[test]
    fn one_part_counts_what_did_not_fit() {
        let layout = Layout {
            max_bytes: 4_096,
            ..Layout::default()
        };
        let all = pieces(500, "Creates", 40);
        let parts = pack(&layout, "", &all);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].len() <= 4_096);
        let shown = all.iter().filter(|p| parts[0].contains(&p.row)).count();
        assert!(parts[0].contains(&format!("**{} more changes did not fit", 500 - shown)));
    }
}
