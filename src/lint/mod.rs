//! Alt-text policy checks: rules over the declared media (pure), their
//! configuration, and the renderers (text, JSON, SARIF, GitHub annotations).

pub mod catalog;
pub mod config;
mod render;
pub mod rules;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

pub use config::LintConfig;
pub use render::{render, LintFormat};
pub use rules::{Level, Rule};

use crate::error::Location;
use crate::manifest::{Desired, Entry};
use crate::model::{FieldKind, FieldValue, MediaId, TextCheck};
use crate::plan::PlanWarning;

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub level: Level,
    pub id: MediaId,
    pub location: Location,
    pub message: String,
    /// A stable digest of the rule, the media and its alt text: the same
    /// finding has the same fingerprint wherever its lines move (SARIF's
    /// `partialFingerprints`).
    pub fingerprint: String,
}

/// SHA-256 (stable across builds and platforms, unlike std's hasher) of
/// the rule, the media ID and the alt text as declared.
fn fingerprint(rule: Rule, id: MediaId, text: Option<&str>) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for part in [rule.id(), &id.to_string(), text.unwrap_or("")] {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

impl std::fmt::Display for Finding {
    /// `file:line:column: warning[alt-text/too-short]: message`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}[{}]: {}",
            self.location,
            self.level,
            self.rule.id(),
            self.message
        )
    }
}

/// A media exempt from some rules, shown so that a reviewer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Exempt {
    pub id: MediaId,
    pub location: Location,
    pub rules: Vec<String>,
    pub reason: String,
}

/// Findings listed in a plan before the rest are counted: the most severe.
pub const SHOWN_IN_PLANS: usize = 50;

/// A count of findings of one rule at one level.
pub type Counts = BTreeMap<(std::cmp::Reverse<Level>, Rule), usize>;

#[derive(Clone, Debug, Default)]
pub struct Report {
    /// In file order; under a limit, the most severe ones, errors first
    /// and grouped by rule, each group in file order.
    pub findings: Vec<Finding>,
    pub exempt: Vec<Exempt>,
    /// Media declared, and those with alt text.
    pub media: usize,
    pub with_alt_text: usize,
    /// Every finding (shown or not) by level, most severe first, and rule.
    pub counts: Counts,
    /// Findings past the limit, counted only, the same way.
    pub hidden: Counts,
}

/// `3 errors`, `1 warning`.
pub fn count_of(n: usize, level: Level) -> String {
    format!(
        "{} {level}{}",
        crate::plan::cost::thousands(n as u64),
        if n == 1 { "" } else { "s" }
    )
}

impl Report {
    pub fn errors(&self) -> usize {
        self.level_count(Level::Error)
    }

    pub fn warnings_count(&self) -> usize {
        self.level_count(Level::Warning)
    }

    /// Findings past the limit, counted only.
    pub fn more(&self) -> usize {
        self.hidden.values().sum()
    }

    fn level_count(&self, level: Level) -> usize {
        self.counts
            .iter()
            .filter(|((l, _), _)| l.0 == level)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn coverage(&self) -> crate::plan::Coverage {
        crate::plan::Coverage {
            with_alt_text: self.with_alt_text,
            media: self.media,
        }
    }

    /// `Alt text: 9,812 of 10,000 media (98.1%).`
    pub fn coverage_line(&self) -> String {
        self.coverage().line()
    }

    /// For plans and `validate`, where a library without alt text must not
    /// bury the plan: when not all are shown, a count per rule (errors
    /// first); the findings shown (the most severe); a count of the rest by
    /// rule and level; then each exemption. When all are shown, the
    /// findings are the counts.
    pub fn warnings(&self) -> Vec<PlanWarning> {
        let counted = if self.hidden.is_empty() {
            &Counts::new()
        } else {
            &self.counts
        };
        let mut warnings: Vec<PlanWarning> = counted
            .iter()
            .map(|((level, rule), n)| PlanWarning::LintCount {
                rule: *rule,
                level: level.0,
                findings: *n,
            })
            .collect();
        warnings.extend(self.findings.iter().cloned().map(PlanWarning::Lint));
        if !self.hidden.is_empty() {
            warnings.push(PlanWarning::MoreLint {
                findings: self.more(),
                by_rule: self
                    .hidden
                    .iter()
                    .map(|((level, rule), n)| (*rule, level.0, *n))
                    .collect(),
            });
        }
        warnings.extend(self.exempt.iter().cloned().map(PlanWarning::Exempt));
        warnings
    }
}

fn alt_text(entry: &Entry) -> Option<&str> {
    match entry.metadata.get(FieldKind::AltText) {
        Some(FieldValue::AltText(a)) => Some(&a.text),
        _ => None,
    }
}

fn folded(text: &str) -> impl Iterator<Item = char> + '_ {
    text.trim().chars().flat_map(char::to_lowercase)
}

/// The hash of the folded text's bytes, in one write: hashing it char by
/// char took 7% of a plan's time. ASCII (most alt text) folds byte by
/// byte; other text folds as `folded` does, to the same bytes for the same
/// folded text (the Kelvin sign folds to an ASCII `k`).
fn folded_hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let text = text.trim();
    if text.is_ascii() {
        // In pieces, through a buffer on the stack: a hasher's writes are a
        // stream, so this hashes as one write of the lower-cased bytes.
        let mut buffer = [0u8; 64];
        for piece in text.as_bytes().chunks(buffer.len()) {
            let lower = &mut buffer[..piece.len()];
            lower.copy_from_slice(piece);
            lower.make_ascii_lowercase();
            h.write(lower);
        }
    } else {
        h.write(folded(text).collect::<String>().as_bytes());
    }
    h.finish()
}

/// A text's hash (its top half) and its media's place in file order (the
/// bottom half), as one key that sorts by hash, then place. A set holds
/// fewer than 2^32 media: each takes over 100 bytes of memory.
fn hash_and_place(hash: u64, place: usize) -> u64 {
    debug_assert!(u32::try_from(place).is_ok());
    (hash & !u64::from(u32::MAX)) | (place as u64 & u64::from(u32::MAX))
}

fn split_hash_and_place(key: u64) -> (u64, usize) {
    (key >> 32, (key & u64::from(u32::MAX)) as usize)
}

fn same_folded(a: &str, b: &str) -> bool {
    folded(a).eq(folded(b))
}

/// An exemption's rules that find nothing in its media (or are off): each
/// media's unused ones as one `alt-text/unused-exemption` finding. An
/// exemption that names `alt-text/unused-exemption` is never reported.
/// `exempted`: the places of the media with an exemption, ascending (a
/// pass over every media for them cost a cache miss a media).
fn unused_exemptions(
    entries: &[&Entry],
    exempted: &[usize],
    raw: &[(usize, Rule, String)],
    config: &LintConfig,
) -> Vec<(usize, Rule, String)> {
    let found: HashSet<(usize, Rule)> = raw
        .iter()
        .filter(|(i, _, _)| exempted.binary_search(i).is_ok())
        .map(|(i, rule, _)| (*i, *rule))
        .collect();
    let mut unused = Vec::new();
    for &i in exempted {
        let entry = entries[i];
        let Some(exemption) = entry.exemption() else {
            continue;
        };
        let names = |r: Rule| exemption.ignore.iter().any(|id| id == r.id());
        if names(Rule::UnusedExemption) {
            continue;
        }
        let idle: Vec<&str> = Rule::ALL
            .into_iter()
            .filter(|r| names(*r))
            .filter(|r| config.level(*r) == Level::Off || !found.contains(&(i, *r)))
            .map(Rule::id)
            .collect();
        if !idle.is_empty() {
            unused.push((
                i,
                Rule::UnusedExemption,
                format!(
                    "media {} is exempt from {}, which find{} nothing in it; remove {} from `lint.ignore`",
                    entry.id,
                    idle.join(", "),
                    if idle.len() == 1 { "s" } else { "" },
                    if idle.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
    }
    unused
}

/// Checks every declared media against the configured rules. With a
/// `limit`, only that many findings are kept (and located); the rest are
/// counted in `more` — plans show a few, and a library of 600,000 media
/// without alt text must not cost 600,000 messages.
pub fn lint(desired: &Desired, config: &LintConfig, limit: Option<usize>) -> Report {
    let mut report = Report {
        media: desired.media.len(),
        ..Report::default()
    };
    // In file order, so "the first" of duplicates is the first a reader meets.
    let mut entries: Vec<&Entry> = desired.media.values().collect();
    entries.sort_by(|a, b| a.location.cmp(&b.location));
    // The per-text rules and the hashes on every core, each part's keys
    // sorted there; then the duplicates, each core merging the parts'
    // keys of its range of hashes. Findings and keys carry each media's
    // place in this order.
    // Most entries of a watch cycle are the ones of the last cycle, whose
    // texts were checked then under these options.
    let options = config.options.key();
    let checked = crate::parallel::map_ranges(entries.len(), |range| {
        let start = range.start;
        let part = &entries[range];
        // The media with a text, by a hash of the lower-cased, trimmed text
        // (no allocation per media), sorted here on this part's core: the
        // duplicates pass merges the parts. One word a media, the hash's
        // top half over the media's place: a sorted vector of
        // them took 8 bytes a media where pairs took 16 and a map 36, and
        // sorts in half the time. Texts whose hashes share a top half are
        // compared, as those of one hash always were.
        let mut by_hash: Vec<u64> = Vec::with_capacity(part.len());
        let mut found = Vec::new();
        let mut exempted = Vec::new();
        for (entry, i) in part.iter().zip(start..) {
            if entry.exemption().is_some() {
                exempted.push(i);
            }
            // Checks kept from the last cycle (watch) were made of a text
            // that was not blank and cannot have changed since: it is not
            // read again (a cache miss a media).
            let kept = config
                .keep_checks
                .then(|| entry.metadata.kept_text_check(options))
                .flatten();
            let checked = kept.map(Cow::Borrowed).or_else(|| {
                // An empty (or blank) alt text is no alt text.
                let text = alt_text(entry).filter(|t| !t.trim().is_empty())?;
                let check = || TextCheck {
                    options,
                    hash: folded_hash(text),
                    found: rules::check(text, &config.options).into_boxed_slice(),
                };
                Some(if config.keep_checks {
                    entry.metadata.text_check(options, check)
                } else {
                    Cow::Owned(check())
                })
            });
            if let Some(checked) = checked {
                by_hash.push(hash_and_place(checked.hash, i));
                found.extend(
                    checked
                        .found
                        .iter()
                        .map(|(rule, message)| (i, *rule, message.clone())),
                );
            } else {
                found.push((
                    i,
                    Rule::Missing,
                    format!(
                        "media {} has no alt text; add `alt_text: {{text: …}}` that describes it",
                        entry.id
                    ),
                ));
            }
        }
        by_hash.sort_unstable();
        (by_hash, found, exempted)
    });
    let mut raw: Vec<(usize, Rule, String)> = Vec::new();
    let mut parts = Vec::with_capacity(checked.len());
    let mut exempted: Vec<usize> = Vec::new();
    for (by_hash, found, exempt) in checked {
        raw.extend(found);
        report.with_alt_text += by_hash.len();
        parts.push(by_hash);
        exempted.extend(exempt);
    }
    // Each core takes a range of the hashes' top halves: one top half's
    // run is in one range, so the ranges are searched apart (on one core,
    // this merge was 22% of a watch cycle's samples at 1,000,000 media). A
    // few media are not worth the threads.
    let found = if report.with_alt_text < FEW {
        vec![duplicates(&entries, within(&parts, 0..TOPS))]
    } else {
        crate::parallel::map_ranges(TOPS, |tops| duplicates(&entries, within(&parts, tops)))
    };
    raw.extend(found.into_iter().flatten());
    raw.extend(unused_exemptions(&entries, &exempted, &raw, config));
    // Per media, in rule order (the duplicate after the text's own rules).
    raw.sort_by_key(|(i, _, _)| *i);
    let mut wanted: Vec<(usize, Rule, String)> = raw
        .into_iter()
        .filter(|(i, rule, _)| {
            config.level(*rule) != Level::Off
                && !entries[*i]
                    .exemption()
                    .is_some_and(|e| e.ignore.iter().any(|r| r == rule.id()))
        })
        .collect();
    let key = |rule: Rule| (std::cmp::Reverse(config.level(rule)), rule);
    for (_, rule, _) in &wanted {
        *report.counts.entry(key(*rule)).or_default() += 1;
    }
    if let Some(limit) = limit {
        // The most severe first, each rule's together, in file order
        // within a rule (the sort is stable).
        wanted.sort_by_key(|(_, rule, _)| key(*rule));
        for (_, rule, _) in wanted.iter().skip(limit) {
            *report.hidden.entry(key(*rule)).or_default() += 1;
        }
        wanted.truncate(limit);
    }
    for (i, rule, message) in wanted {
        let location = entries[i].location.clone();
        report.findings.push(Finding {
            rule,
            level: config.level(rule),
            id: entries[i].id,
            location,
            message,
            fingerprint: fingerprint(rule, entries[i].id, alt_text(entries[i])),
        });
    }
    for i in exempted {
        let location = entries[i].location.clone();
        if let Some(e) = entries[i].exemption() {
            report.exempt.push(Exempt {
                id: entries[i].id,
                location,
                rules: e.ignore.clone(),
                reason: e.reason.clone(),
            });
        }
    }
    report
}

/// Every top half of a hash (`hash_and_place`), as a length to cut into
/// ranges: on a 32-bit target, `usize::MAX`, and the range that ends there
/// takes the last top half too (`within`).
const TOPS: usize = (u32::MAX as usize).saturating_add(1);

/// Media with a text below which the duplicates are searched on this
/// thread.
const FEW: usize = 4096;

/// Each part's keys whose top half is in `tops` (parts sorted by key).
fn within(parts: &[Vec<u64>], tops: std::ops::Range<usize>) -> Vec<&[u64]> {
    let bound = |part: &[u64], top: usize| {
        if top >= TOPS {
            part.len()
        } else {
            part.partition_point(|key| key >> 32 < top as u64)
        }
    };
    parts
        .iter()
        .map(|part| &part[bound(part, tops.start)..bound(part, tops.end)])
        .collect()
}

/// The media whose alt text an earlier media (in file order) has, each
/// with a finding that names the first; `parts`: sorted keys
/// (`hash_and_place`) of the media with a text.
///
/// `parts` must hold every key of each top half they hold a key of (one
/// range of top halves, `within`). Each run of one hash's top half, in
/// file order, is parted by the full
/// hashes (a top half is cheap to collide on purpose, which would make a
/// run long and its comparisons quadratic), then each full hash's run
/// compared text by text against the first media of each distinct text
/// in it (a full hash shared by different texts is rare). Keys that sort
/// by top half, then place, make the merge's order the order of one sort
/// of them all.
fn duplicates(entries: &[&Entry], parts: Vec<&[u64]>) -> Vec<(usize, Rule, String)> {
    let mut found = Vec::new();
    let mut firsts: Vec<usize> = Vec::new();
    let mut run: Vec<(u64, usize)> = Vec::new();
    let mut merged = Merged { heads: parts }.map(split_hash_and_place).peekable();
    while let Some((top, i)) = merged.next() {
        // A top half of one media (nearly all) has no duplicate: its text
        // is not read, which in hash order would be a cache miss a media.
        if merged.peek().is_none_or(|(next, _)| *next != top) {
            continue;
        }
        let full = |i: usize| (folded_hash(alt_text(entries[i]).unwrap_or_default()), i);
        run.clear();
        run.push(full(i));
        while let Some((_, j)) = merged.next_if(|(h, _)| *h == top) {
            run.push(full(j));
        }
        run.sort_unstable();
        for same_hash in run.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            firsts.clear();
            for &(_, i) in same_hash {
                let text = alt_text(entries[i]).unwrap_or_default();
                let same = |j: &usize| alt_text(entries[*j]).is_some_and(|t| same_folded(t, text));
                match firsts.iter().copied().find(same) {
                    Some(first) => found.push((
                        i,
                        Rule::Duplicate,
                        format!(
                            "media {} at {} has the same alt text; describe each media on its own",
                            entries[first].id, entries[first].location
                        ),
                    )),
                    None => firsts.push(i),
                }
            }
        }
    }
    found
}

/// The keys of sorted parts in one order, the order one sort of them all
/// would give: each step takes the least of the parts' heads. The parts
/// are one a core, and for a few cores a scan of their heads costs less
/// than a heap (itertools' `kmerge`, which this replaced; a heap would pay
/// off past about eight).
struct Merged<'a> {
    heads: Vec<&'a [u64]>,
}

impl Iterator for Merged<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let mut least: Option<(usize, u64)> = None;
        for (n, head) in self.heads.iter().enumerate() {
            if let Some(&key) = head.first() {
                if least.is_none_or(|(_, l)| key < l) {
                    least = Some((n, key));
                }
            }
        }
        let (n, key) = least?;
        self.heads[n] = &self.heads[n][1..];
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks kept with the entries (watch) give the report a fresh lint
    /// gives, and are not used under other options.
    #[test]
    fn kept_checks_give_the_same_report_and_follow_the_options() {
        let text = "apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n  - id: \"1\"\n    metadata: {alt_text: {text: \"Cat\"}}\n  - id: \"2\"\n    metadata: {alt_text: {text: \"image of a dog on a mat\"}}\n  - id: \"3\"\n    metadata: {alt_text: {text: \"cat\"}}\n";
        let file = std::sync::Arc::new(std::path::PathBuf::from("m.yaml"));
        let parsed = crate::manifest::parse_text(file, text, crate::time::Timestamp::now());
        let desired = crate::manifest::assemble(vec![parsed]).unwrap();
        let shown = |r: &Report| {
            r.findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        let fresh = lint(&desired, &LintConfig::default(), None);
        let keep = LintConfig {
            keep_checks: true,
            ..LintConfig::default()
        };
        for _ in 0..2 {
            assert_eq!(shown(&lint(&desired, &keep, None)), shown(&fresh));
        }
        let stricter = LintConfig {
            options: rules::Options {
                min_chars: 2,
                ..rules::Options::default()
            },
            keep_checks: true,
            ..LintConfig::default()
        };
        let other = lint(&desired, &stricter, None);
        assert!(
            !shown(&other).iter().any(|f| f.contains("too-short")),
            "{:?}",
            shown(&other)
        );
        assert_eq!(shown(&lint(&desired, &keep, None)), shown(&fresh));
    }

    /// Two texts whose hashes share a top half (found by search: the
    /// hash has fixed keys).
    fn sharing_a_top_half() -> (String, String) {
        let mut seen = std::collections::HashMap::new();
        (0u32..)
            .map(|n| format!("photo {n}"))
            .find_map(|text| {
                let top = folded_hash(&text) >> 32;
                seen.insert(top, text.clone()).map(|other| (other, text))
            })
            .unwrap()
    }

    /// One manifest, `m.yaml`, of these media, in order, each with its alt
    /// text or none.
    fn declared(media: impl IntoIterator<Item = (u64, Option<String>)>) -> Desired {
        let mut text = String::from("apiVersion: xmeta/v1\nkind: MediaMetadata\nmedia:\n");
        for (id, alt) in media {
            text += &match alt {
                Some(alt) => format!(
                    "  - id: \"{id}\"\n    metadata: {{alt_text: {{text: \"{alt}\"}}}}\n"
                ),
                None => format!("  - id: \"{id}\"\n    metadata: {{sensitive_media_warning: {{other: true}}}}\n"),
            };
        }
        let file = std::sync::Arc::new(std::path::PathBuf::from("m.yaml"));
        let parsed = crate::manifest::parse_text(file, &text, crate::time::Timestamp::now());
        let desired = crate::manifest::assemble(vec![parsed]).unwrap();
        assert!(desired.warnings.is_empty(), "{:?}", desired.warnings);
        desired
    }

    /// Texts whose hashes share a top half are told apart by their full
    /// hashes and texts: no duplicate between them, and each one's own
    /// duplicate still found.
    #[test]
    fn texts_sharing_a_hash_top_half_are_not_duplicates() {
        let (a, b) = sharing_a_top_half();
        assert_ne!(folded_hash(&a), folded_hash(&b));
        let texts = [a.clone(), b.clone(), b.to_uppercase(), a];
        let desired = declared((1..).zip(texts.map(Some)));
        let duplicates: Vec<String> = lint(&desired, &LintConfig::default(), None)
            .findings
            .iter()
            .filter(|f| f.rule == Rule::Duplicate)
            .map(|f| format!("{}: {}", f.id, f.message))
            .collect();
        assert_eq!(
            duplicates,
            [
                "3: media 2 at m.yaml:6:5 has the same alt text; describe each media on its own",
                "4: media 1 at m.yaml:4:5 has the same alt text; describe each media on its own",
            ]
        );
    }

    /// However the media are cut into parts (one a core) and the hashes'
    /// top halves into ranges (one a core), the duplicates found are each
    /// media whose text an earlier media has, named with the first of
    /// them: a run of one top half is never split, whatever the cuts.
    #[test]
    fn every_split_of_the_parts_and_the_hashes_finds_the_same_duplicates() {
        let (a, b) = sharing_a_top_half();
        // A few texts, each many times and in either case, two of them
        // sharing a hash's top half, and media without a text; IDs out of
        // file order, so that places are not IDs.
        let media = (0..400u64).map(|n| {
            let alt = match n % 9 {
                0 => Some(a.clone()),
                1 => Some(b.to_uppercase()),
                2 => None,
                k => Some(format!("a product photo, take {}", (n * k) % 23)),
            };
            let alt = alt.map(|t| if n % 2 == 0 { t } else { t.to_uppercase() });
            ((n * 7919) % 1009 + 1, alt)
        });
        let desired = declared(media);
        let mut entries: Vec<&Entry> = desired.media.values().collect();
        entries.sort_by(|a, b| a.location.cmp(&b.location));
        let keys: Vec<u64> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some(hash_and_place(folded_hash(alt_text(e)?), i)))
            .collect();
        assert!(keys.len() < entries.len());
        // What the duplicates are, found another way: the first media of
        // each text in file order.
        let mut firsts = std::collections::HashMap::new();
        let mut expected = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let Some(text) = alt_text(entry) else {
                continue;
            };
            match firsts.get(&text.to_lowercase()) {
                Some(&first) => {
                    let first: &Entry = entries[first];
                    expected.push((
                        i,
                        Rule::Duplicate,
                        format!(
                            "media {} at {} has the same alt text; describe each media on its own",
                            first.id, first.location
                        ),
                    ));
                }
                None => {
                    firsts.insert(text.to_lowercase(), i);
                }
            }
        }
        assert!(firsts.len() > 20 && expected.len() > 300);
        let sorted = |mut keys: Vec<u64>| {
            keys.sort_unstable();
            keys
        };
        // Cuts of the hashes at even steps, and at the top half the two
        // texts share, the one after it, and the last.
        let shared = usize::try_from(folded_hash(&a) >> 32).unwrap();
        let cut_sets: Vec<Vec<usize>> = (1..=4usize)
            .map(|n| (1..n).map(|k| TOPS / n * k).collect())
            .chain([
                vec![shared],
                vec![shared + 1],
                vec![shared, shared + 1, TOPS - 1],
            ])
            .collect();
        for parts_n in 1..=5usize {
            // Uneven parts of the media in file order, the first empty.
            let places: Vec<usize> = [0]
                .into_iter()
                .chain((0..=parts_n).map(|k| entries.len() * k * k / (parts_n * parts_n)))
                .collect();
            let parts: Vec<Vec<u64>> = places
                .windows(2)
                .map(|w| {
                    let part = keys.iter().copied();
                    sorted(
                        part.filter(|k| (w[0]..w[1]).contains(&split_hash_and_place(*k).1))
                            .collect(),
                    )
                })
                .collect();
            assert!(parts[0].is_empty());
            for cuts in &cut_sets {
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(TOPS);
                let mut found: Vec<(usize, Rule, String)> = bounds
                    .windows(2)
                    .flat_map(|w| duplicates(&entries, within(&parts, w[0]..w[1])))
                    .collect();
                found.sort();
                let differ = found.iter().zip(&expected).find(|(a, b)| a != b);
                assert!(
                    found.len() == expected.len() && differ.is_none(),
                    "{parts_n} parts, cuts {cuts:?}: {} found, not {}; first apart: {differ:?}",
                    found.len(),
                    expected.len()
                );
            }
        }
    }

    #[test]
    fn the_same_folded_text_has_the_same_hash() {
        for (a, b) in [
            ("Kelvin ", " kelvin"),
            ("\u{212A}ELVIN", "kelvin"),
            ("ÉTÉ", "été"),
        ] {
            assert!(same_folded(a, b), "{a} {b}");
            assert_eq!(folded_hash(a), folded_hash(b), "{a} {b}");
        }
        assert_ne!(folded_hash("a cat"), folded_hash("a dog"));
    }
}
