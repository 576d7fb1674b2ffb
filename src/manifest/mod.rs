//! Manifests: finding, parsing and validating them, and assembling the
//! desired set of media from every file.

mod discover;
mod document;
mod events;
mod fast;
mod lines;
mod media_set;
mod scalar;
pub mod schema;
pub mod yaml;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

pub use discover::{discover, discover_within, is_manifest, CONFIG_NAMES};
pub use document::{parse_both, parse_file, parse_text, Declared, Entry, ParsedFile};
pub use media_set::MediaSet;

use crate::error::{Diagnostic, InvalidManifests};
use crate::model::MediaId;
use crate::time::Timestamp;

/// Every declared media, by ID.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub media: MediaSet,
    pub files: usize,
    pub warnings: Vec<Diagnostic>,
    /// Media neither applied nor forgotten for now: declared twice, or in
    /// a file that stopped validating (`watch`).
    pub held: BTreeSet<MediaId>,
    /// False while some file is broken: media it may declare are unknown,
    /// so nothing may be planned as forgotten.
    pub incomplete: bool,
}

/// Loads every manifest under `paths`: all problems of all files, or the
/// desired set.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Desired> {
    load_beside(paths, || ()).0
}

/// `load`, with `beside` run first on one of the parse's threads, which
/// then parses too (see `parallel::map_each_beside`). It runs even when
/// the manifests cannot be found.
pub fn load_beside<B: Send>(
    paths: &[PathBuf],
    beside: impl FnOnce() -> B + Send,
) -> (anyhow::Result<Desired>, B) {
    let files = match discover(paths) {
        Ok(files) => files,
        Err(e) => return (Err(e), beside()),
    };
    let reader = crate::intake::Reader::within(paths);
    let now = Timestamp::now();
    let (parsed, beside) =
        crate::parallel::map_each_beside(&files, |f| parse_file(f, &reader, now), beside);
    (assemble(parsed).map_err(Into::into), beside)
}

/// Parses files on every core; the output keeps the input's order.
pub fn parse_all(
    files: &[PathBuf],
    reader: &crate::intake::Reader,
    now: Timestamp,
) -> Vec<ParsedFile> {
    crate::parallel::map_each(files, |f| parse_file(f, reader, now))
}

/// Joins parsed files into the desired set; the same ID twice is an error
/// that names both places.
pub fn assemble(files: Vec<ParsedFile>) -> Result<Desired, InvalidManifests> {
    let entries = files.iter().map(|f| f.entries.len()).sum();
    let (desired, errors) = assemble_lenient(files.into_iter().map(Cow::Owned), entries);
    if errors.is_empty() {
        Ok(desired)
    } else {
        Err(InvalidManifests(errors))
    }
}

/// Joins parsed files, keeping going past errors: a duplicated ID is held
/// (every declaration of it is left out) and reported, the rest stays
/// usable. The entries of an invalid file are never in the set, but count
/// for duplicates, so one run shows them all. Errors come in file order,
/// each file's own before its duplicates, which point to the first
/// declaration.
///
/// `entries` (how many the files hold in all) sizes the set once. Files
/// are moved in (a one-shot read) or borrowed (watch keeps them between
/// cycles): a borrowed file's entries are copied straight into the set,
/// with no copy of the file on the way.
pub fn assemble_lenient<'a>(
    files: impl IntoIterator<Item = Cow<'a, ParsedFile>>,
    entries: usize,
) -> (Desired, Vec<Diagnostic>) {
    let mut desired = Desired::default();
    // Each error with its file's index, to put the duplicates in place.
    let mut errors: Vec<(usize, Diagnostic)> = Vec::new();
    let mut order: HashMap<*const PathBuf, usize> = HashMap::new();
    let mut invalid: BTreeSet<*const PathBuf> = BTreeSet::new();
    // An owned file's entries are freed once moved into the set, into
    // the pages of the parse's exited threads, which nothing reuses until
    // a thread collects them: the set was built beside a second copy of
    // itself (4.8 MB at 100,000 media). So they are given back each
    // eighth of the way: `xmeta validate` of 100,000 media, GNU time,
    // alternated, 51.3–54.3 → 47.1–49.9 MB, `lint` 53.1–54.4 →
    // 49.4–49.9 MB, in the same time (at most 8 collects, about 0.5 ms each).
    let step = entries / 8 + 1;
    let mut moved = 0;
    let mut entries = Vec::with_capacity(entries);
    for (i, file) in files.into_iter().enumerate() {
        desired.files += 1;
        order.insert(Arc::as_ptr(&file.path), i);
        if !file.is_valid() {
            invalid.insert(Arc::as_ptr(&file.path));
        }
        let diagnostics = match file {
            Cow::Owned(file) => {
                moved += file.entries.len();
                entries.extend(file.entries);
                if moved >= step {
                    moved = 0;
                    crate::give_back();
                }
                file.diagnostics
            }
            Cow::Borrowed(file) => {
                entries.extend(file.entries.iter().cloned());
                file.diagnostics.clone()
            }
        };
        for d in diagnostics {
            if d.is_error() {
                errors.push((i, d));
            } else {
                desired.warnings.push(d);
            }
        }
    }
    // The declarations of one ID in file order, then their place in the
    // file: the order they came in, as a stable sort would keep it, but
    // with no scratch buffer (a stable sort's took half the entries' size).
    let file_index = |e: &Entry| order.get(&Arc::as_ptr(&e.location.file)).copied();
    entries.sort_unstable_by(|a: &Entry, b: &Entry| {
        a.id.cmp(&b.id).then_with(|| {
            file_index(a)
                .cmp(&file_index(b))
                .then(a.location.line.cmp(&b.location.line))
                .then(a.location.column.cmp(&b.location.column))
        })
    });
    let mut duplicates = Vec::new();
    for group in entries.chunk_by(|a, b| a.id == b.id) {
        let [first, others @ ..] = group else {
            continue;
        };
        for entry in others {
            desired.held.insert(entry.id);
            let file = order.get(&Arc::as_ptr(&entry.location.file));
            duplicates.push((
                file.copied().unwrap_or(usize::MAX),
                Diagnostic::error(
                    entry.location.clone(),
                    format!("media `{}` is declared twice", entry.id),
                )
                .with_help(Some(format!(
                    "it is also declared at {}; keep one of the two",
                    first.location
                ))),
            ));
        }
    }
    if !desired.held.is_empty() || !invalid.is_empty() {
        entries.retain(|e| {
            !desired.held.contains(&e.id) && !invalid.contains(&Arc::as_ptr(&e.location.file))
        });
    }
    desired.media = MediaSet::from_sorted(entries);
    duplicates.sort_by(|(f, a), (g, b)| f.cmp(g).then(a.location.cmp(&b.location)));
    // Stable: each file's own errors, then its duplicates.
    errors.extend(duplicates);
    errors.sort_by_key(|(file, _)| *file);
    (desired, errors.into_iter().map(|(_, d)| d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldKind;

    fn parse(text: &str) -> ParsedFile {
        parse_text(Arc::new(PathBuf::from("m.yaml")), text, Timestamp::now())
    }

    fn messages(file: &ParsedFile) -> Vec<String> {
        file.diagnostics
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    }

    const HEAD: &str = "apiVersion: xmeta/v1\nkind: MediaMetadata\n";

    #[test]
    fn defaults_apply_per_top_level_field() {
        let f = parse(&format!(
            "{HEAD}defaults:\n  metadata:\n    alt_text: {{text: d}}\n    shared_info: {{shared: true}}\nmedia:\n  - id: 1\n    metadata:\n      alt_text: {{text: own}}\n  - id: \"2\"\n"
        ));
        assert!(f.diagnostics.is_empty(), "{:?}", messages(&f));
        assert_eq!(f.entries.len(), 2);
        let own = serde_json::to_value(&**f.entries[0].metadata).unwrap();
        assert_eq!(own["alt_text"]["text"], "own");
        assert_eq!(own["shared_info"]["shared"], true);
        assert!(f.entries[1].metadata.get(FieldKind::AltText).is_some());
    }

    #[test]
    fn errors_carry_positions_and_suggestions() {
        let f = parse(&format!(
            "{HEAD}media:\n  - id: 12a\n    metadata:\n      alt_txt: {{text: x}}\n      geo_restrictions: {{whitelisted_country_codes: [usa]}}\n"
        ));
        let m = messages(&f);
        assert!(m.iter().any(|s| s.starts_with("m.yaml:4:9:")), "{m:?}");
        assert!(
            m.iter().any(|s| s.contains("did you mean `alt_text`?")),
            "{m:?}"
        );
        assert!(m.iter().any(|s| s.contains("`usa`")), "{m:?}");
        assert!(f.entries.is_empty());
    }

    /// A schema error hides none of the checks after it: each problem at
    /// its place, in the file's order, the entries kept for duplicates.
    #[test]
    fn a_schema_error_hides_no_other_problem() {
        let f = parse(&format!(
            "{HEAD}media:\n  - id: \"1\"\n    type: movie\n  - id: \"2\"\n    colour: red\n  - id: \"3\"\n    key: 3_4\n    lint: {{ignore: [nope], reason: r}}\n"
        ));
        let m = messages(&f);
        let at: Vec<&str> = m.iter().map(|s| s.split(": ").next().unwrap()).collect();
        assert_eq!(
            at,
            ["m.yaml:5:11", "m.yaml:7:5", "m.yaml:9:10", "m.yaml:10:11"],
            "{m:?}"
        );
        assert!(!f.is_valid());
        let ids: Vec<String> = f.entries.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let (desired, errors) = assemble_lenient([Cow::Owned(f)], 3);
        assert!(
            desired.media.is_empty(),
            "an invalid file's media are never planned"
        );
        assert_eq!(errors.len(), 4);
    }

    /// Inputs the differential fuzz target found where the two paths
    /// disagreed: now the fast path either agrees or leaves the file.
    #[test]
    fn both_paths_agree_on_what_the_fuzzer_found() {
        let cases = [
            format!("{HEAD}media:\n"),
            format!("{HEAD}defaults:\nmedia: []\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n"),
            "null".to_string(),
            format!("{HEAD}media: []\n---\n~\n"),
            format!("{HEAD}media:\n  - id: '2'\n    metadata:\n     alt_text:\n      text: |\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      alt_text:\n        text: |\n          abc"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      alt_text:\n        text: >-\n          abc\n"),
            format!("{HEAD}media: []\n---\n{}", "\u{feff}"),
            "\n\u{feff}".to_string(),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      geo_restrictions:\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      domain_restrictions: {{whitelist: }}\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      preview_image: {{media_key: }}\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      alt_text:\n        text: \"a\"#c\n"),
            format!("{HEAD}media:\n  - id: 1\n    metadata:\n      alt_text:\n        text: |#c\n          abc\n"),
            // libyaml reads this quoted scalar; yaml-rust2 refuses its
            // indentation: a multi-line quoted scalar takes the slow path.
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      alt_text:\n        text: \"two\n        - lines\"\n  - id: '2'\n"),
            format!("{HEAD}media:\n  -\n    id: '1'\n"),
            // Found in review: an anchored item, a lone CR, and an escaped
            // quote at a line's end (a single-quoted scalar that goes on).
            format!("{HEAD}media:\n  - &a {{id: '1'}}\n"),
            format!("{HEAD}media:\n  - &a\n    id: '1'\n"),
            format!("# a\r# b\n{HEAD}media:\n  - id: '1'\n"),
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      alt_text:\n        text: 'it''\n        - s'\n  - id: '2'\n"),
            format!("{HEAD}media: [{{id: '1'}}, {{id: '2'}}]\n"),
            // Found in review of the line scanner: yaml-rust2 refuses a
            // `-` before a flow indicator, after a space.
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      alt_text: {{text: a cat on a stage -}}\n"),
        ];
        for text in cases {
            assert_both_paths_agree(&text);
        }
    }

    /// When the fast path takes a file, the positioned path finds no error
    /// in it and reads the same entries at the same places.
    /// Returns whether the fast path took the file.
    fn assert_both_paths_agree(text: &str) -> bool {
        let (fast, careful) = parse_both(Arc::new(PathBuf::from("f.yaml")), text, Timestamp::now());
        let Some(fast) = fast else { return false };
        assert!(
            !careful.diagnostics.iter().any(Diagnostic::is_error),
            "{text:?}: {:?}",
            messages(&careful)
        );
        let view = |e: &[Entry]| -> Vec<String> {
            e.iter()
                .map(|e| {
                    let json = serde_json::to_string(&**e.metadata).unwrap();
                    format!("{} {} {:?} at {}", e.id, json, e.exemption(), e.location)
                })
                .collect()
        };
        assert_eq!(view(&fast), view(&careful.entries), "{text:?}");
        true
    }

    /// Scalars of every YAML kind, for the property below.
    const SCALARS: &[&str] = &[
        "x",
        "'x'",
        "\"x\"",
        "us",
        "de",
        "a.com",
        "1",
        "'1'",
        "0001",
        "-1",
        "+1",
        "0x10",
        "1e3",
        "1.5",
        "4102444800",
        ".inf",
        "~",
        "",
        "null",
        "true",
        "false",
        "'true'",
        "yes",
        "'it''s'",
        "\"a\\tb\\u00e9\"",
        "\"\\U0001F600\"",
        "a #c",
        "\"a\"#c",
        "[]",
        "[x]",
        "{}",
        "!!str 1",
        "&a x",
        "*a",
        "\"two\n  lines\"",
        "'two\n lines'",
        "é",
        "a: b",
        "'a: b'",
        "|\n  block",
        ">-\n  folded\n  more",
        "- x",
        "\u{feff}x",
        "x\u{85}y",
        "18446744073709551616",
        "1146654567674912769",
    ];
    /// Metadata fields, each `$` a scalar from above.
    const FIELDS: &[&str] = &[
        "alt_text: {text: $}",
        "alt_text:\n  text: $",
        "sensitive_media_warning: {adult_content: $, other: $}",
        "geo_restrictions: {whitelisted_country_codes: [$, $]}",
        "geo_restrictions:\n  blacklisted_country_codes:\n  - $",
        "domain_restrictions: {whitelist: [$]}",
        "shared_info: {shared: $}",
        "content_expiration: {timestamp_sec: $}",
        "allow_download_status: {allow_download: $}",
        "sticker_info: {stickers: [{id: $, transform_a: $, group_annotation_id: $}]}",
        "upload_source: {upload_source: $}",
        "found_media_origin: {id: $, provider: $}",
        "management_info: {managed: $}",
        "audience_policy: {x_subscriptions: [$]}",
        "preview_image: {media_key: {media: $, media_category: $}}",
        "$: {text: x}",
        "alt_text: [$]",
        "alt_text: $",
        "sensitive_media_warning: [$, $, $]",
        "sticker_info: {stickers: [[$]]}",
        "preview_image: {media_key: [$, $]}",
    ];
    /// Lines of a media entry beside its metadata.
    const EXTRAS: &[&str] = &[
        "",
        "lint: {ignore: [alt-text/too-short], reason: $}",
        "key: 3_$",
        "type: $",
        "$: 1",
    ];

    /// One manifest from the choices: `picks` feeds every `$` in turn.
    fn manifest(items: &[(usize, Vec<usize>, bool)], picks: &[usize], tail: usize) -> String {
        let mut picks = picks.iter().cycle().map(|&i| SCALARS[i % SCALARS.len()]);
        let mut fill = |template: &str, pad: &str| -> String {
            let mut out = String::new();
            for (i, part) in template.split('$').enumerate() {
                if i > 0 {
                    out.push_str(
                        &picks
                            .next()
                            .unwrap_or("x")
                            .replace('\n', &format!("\n{pad}  ")),
                    );
                }
                out.push_str(&part.replace('\n', &format!("\n{pad}")));
            }
            out
        };
        let mut text = format!("{HEAD}media:\n");
        for (n, (extra, fields, odd_id)) in items.iter().enumerate() {
            let id = if *odd_id {
                fill("$", "    ")
            } else {
                format!("'{}'", n + 1)
            };
            text.push_str(&format!("  - id: {id}\n"));
            let extra = EXTRAS[extra % EXTRAS.len()];
            if !extra.is_empty() {
                text.push_str(&format!("    {}\n", fill(extra, "    ")));
            }
            if !fields.is_empty() {
                text.push_str("    metadata:\n");
            }
            for f in fields {
                text.push_str(&format!(
                    "      {}\n",
                    fill(FIELDS[f % FIELDS.len()], "      ")
                ));
            }
        }
        text.push_str(["", "---\n", "...\n", "---\n~\n"][tail % 4]);
        text
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Manifests put together from tricky scalars in every field:
        /// whatever the fast path takes, the positioned path reads alike.
        #[test]
        fn both_paths_agree_on_any_manifest(
            items in proptest::collection::vec(
                (0..8usize, proptest::collection::vec(0..64usize, 0..4), proptest::bool::weighted(0.2)),
                0..4,
            ),
            picks in proptest::collection::vec(0..64usize, 1..12),
            tail in 0..4usize,
        ) {
            assert_both_paths_agree(&manifest(&items, &picks, tail));
        }
    }

    /// Bits of YAML syntax, strung together at random below; plain words
    /// often, so that the fast path takes many of the files.
    pub(super) const TOKENS: &[&str] = &[
        "a",
        "b c",
        "a",
        "b c",
        "a",
        "b c",
        "a",
        "b c",
        "a",
        "1",
        " ",
        "\n",
        "\n  ",
        "\n        ",
        "- ",
        ": ",
        ":",
        " #",
        "'",
        "\"",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "&a ",
        "*a",
        "!",
        "|",
        ">",
        "~",
        "\t",
        "\\",
        "? ",
        "---",
        "...",
        "%",
        "@",
        "`",
        "é",
        "\u{85}",
        "\u{2028}",
        "\r",
        "\u{feff}",
        "id: '2'",
        "text: b",
        "alt_text:",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Random strings of YAML syntax where an alt text goes, and after
        /// it: whatever the fast path takes, the positioned path reads alike.
        #[test]
        fn both_paths_agree_on_random_syntax(
            inside in proptest::collection::vec(0..TOKENS.len(), 0..16),
            after in proptest::collection::vec(0..TOKENS.len(), 0..8),
        ) {
            let join = |picks: &[usize]| picks.iter().map(|&i| TOKENS[i]).collect::<String>();
            let text = format!(
                "{HEAD}media:\n  - id: '1'\n    metadata:\n      alt_text:\n        text: {}\n  - id: '3'\n{}",
                join(&inside),
                join(&after),
            );
            assert_both_paths_agree(&text);
        }
    }

    /// Every field with every scalar, one at a time; the fast path must
    /// take the clean ones, or the property above tests little.
    #[test]
    fn both_paths_agree_on_every_field_with_every_scalar() {
        let mut taken = 0;
        for field in 0..FIELDS.len() {
            for scalar in 0..SCALARS.len() {
                let text = manifest(&[(0, vec![field], false)], &[scalar], 0);
                taken += usize::from(assert_both_paths_agree(&text));
            }
        }
        assert!(taken >= 50, "the fast path took only {taken} files");
    }

    /// A structure written as a list (`alt_text: [x]`) is an error to the
    /// positioned path; serde's derived types would take it field by field
    /// (the fast path read it as the alt text "x", and sent it).
    #[test]
    fn a_structure_written_as_a_list_or_nothing_is_an_error_on_both_paths() {
        for text in [
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      alt_text: [x]\n"),
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      sticker_info: {{stickers: [['1']]}}\n"),
            format!("{HEAD}media:\n  - id: '1'\n    metadata:\n      preview_image: {{media_key: [a, b]}}\n"),
            format!("{HEAD}media:\n  - ['1']\n"),
            format!("{HEAD}defaults: [[]]\nmedia:\n  - id: '1'\n"),
            // Found in review: an empty `lint:` read as no exemption.
            format!("{HEAD}media:\n  - id: '1'\n    lint: ~\n"),
            format!("{HEAD}media:\n  - id: '1'\n    lint:\n"),
        ] {
            let f = parse(&text);
            assert!(
                !f.is_valid(),
                "{text:?}: {:?}",
                messages(&f)
            );
            assert_both_paths_agree(&text);
        }
    }

    /// yaml-rust2 ends its input at a NUL: the media after one were
    /// silently left out, by both paths (found in review).
    #[test]
    fn a_nul_character_is_an_error_not_the_end_of_the_file() {
        let f = parse(&format!("{HEAD}media:\n  - id: '1'\n\0  - id: '2'\n"));
        assert_eq!(
            messages(&f),
            ["m.yaml:5:1: error: the file holds a NUL character (U+0000), which YAML does not allow"]
        );
        assert!(f.entries.is_empty());
    }

    /// The fast path finds each entry's position by a line scan, the same
    /// as the positioned path's, so no message re-reads a file from disk.
    #[test]
    fn the_fast_path_places_entries_where_the_positioned_path_does() {
        let cases = [
            format!("{HEAD}media:\n- id: '1'\n  metadata:\n    geo_restrictions:\n      whitelisted_country_codes:\n      - us\n- id: '2'\n"),
            format!("# c\n{HEAD}\nmedia:   # the list\n    -   id: '1'\n\n        # between\n    -   metadata: {{alt_text: {{text: \"it's\"}}}}\n        id: '2'\n---\n{HEAD}media:\n  - {{id: '3'}}\n...\n"),
            format!("---\n{HEAD}defaults:\n  metadata: {{alt_text: {{text: 'a: b'}}}}\nmedia:\n  - id: '4'\n    key: 3_4\n"),
            // What the tests and benchmarks generate (serde_yaml's layout).
            crate::testdata::manifest(0..50, "it's v1"),
            // Found in review: a tab after the dash; a plain scalar going on
            // at the items' indent with `- ` (one item too many for a line
            // scan) beside `-<tab>` (one too few); a quoted `"media":`.
            format!("{HEAD}media:\n  - \tid: '1'\n  - \t{{id: '2'}}\n"),
            format!("{HEAD}media:\n  - id: '1'\n    metadata: {{alt_text: {{text: the harbour at dawn with fishing boats\n  - and gulls}}}}\n  -\tid: '2'\n    metadata: {{alt_text: {{text: hi}}}}\n"),
            format!("{HEAD}media:\n  - id: '1'\n---\n{HEAD}\"media\":\n  - id: '2'\n"),
        ];
        for text in cases {
            let (fast, careful) =
                parse_both(Arc::new(PathBuf::from("f.yaml")), &text, Timestamp::now());
            let fast = fast.unwrap_or_else(|| panic!("fast path declined {text:?}"));
            let at = |e: &[Entry]| -> Vec<String> {
                e.iter()
                    .map(|e| format!("{} {}", e.id, e.location))
                    .collect()
            };
            assert_eq!(at(&fast), at(&careful.entries), "{text:?}");
            assert!(!fast.is_empty());
        }
    }

    #[test]
    fn duplicates_name_both_places() {
        let dir = tempfile::tempdir().unwrap();
        let (m, n) = (dir.path().join("m.yaml"), dir.path().join("n.yaml"));
        std::fs::write(&m, format!("{HEAD}media:\n  - id: \"7\"\n")).unwrap();
        std::fs::write(&n, format!("{HEAD}media:\n  - id: 7\n")).unwrap();
        let err = assemble(vec![
            parse_file(
                &m,
                &crate::intake::Reader::within(&[dir.path().to_path_buf()]),
                Timestamp::now(),
            ),
            parse_file(
                &n,
                &crate::intake::Reader::within(&[dir.path().to_path_buf()]),
                Timestamp::now(),
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("n.yaml:4:5") && err.contains("m.yaml:4:5"),
            "{err}"
        );
    }

    /// A third declaration points to the first too (it pointed to itself),
    /// and the errors come in file order.
    #[test]
    fn every_later_declaration_names_the_first() {
        let parsed: Vec<ParsedFile> = ["a.yaml", "b.yaml", "c.yaml"]
            .iter()
            .map(|name| {
                let text = format!("{HEAD}media:\n  - id: \"9\"\n  - id: \"7\"\n");
                parse_text(Arc::new(PathBuf::from(name)), &text, Timestamp::now())
            })
            .collect();
        let (desired, errors) = assemble_lenient(parsed.into_iter().map(Cow::Owned), 6);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let help = |at: &str, id: &str| {
            format!("{at}: error: media `{id}` is declared twice\n  help: it is also declared at a.yaml:{}:5; keep one of the two", if id == "9" { 4 } else { 5 })
        };
        assert_eq!(
            shown,
            [
                help("b.yaml:4:5", "9"),
                help("b.yaml:5:5", "7"),
                help("c.yaml:4:5", "9"),
                help("c.yaml:5:5", "7"),
            ]
        );
        assert!(desired.media.is_empty());
        assert_eq!(desired.held.len(), 2);
    }

    /// "The first" is first in the order the files came in, then in the
    /// file, whatever the paths' own order.
    #[test]
    fn the_first_declaration_follows_the_files_order_not_their_names() {
        let file = |name: &str, ids: &[&str]| {
            let media = ids.join("\"\n  - id: \"");
            let media = format!("  - id: \"{media}\"\n");
            parse_text(
                Arc::new(PathBuf::from(name)),
                &format!("{HEAD}media:\n{media}"),
                Timestamp::now(),
            )
        };
        let parsed = vec![file("z.yaml", &["5", "5"]), file("a.yaml", &["5"])];
        let (_, errors) = assemble_lenient(parsed.into_iter().map(Cow::Owned), 3);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let help = |at: &str| {
            format!("{at}: error: media `5` is declared twice\n  help: it is also declared at z.yaml:4:5; keep one of the two")
        };
        assert_eq!(shown, [help("z.yaml:5:5"), help("a.yaml:4:5")]);
    }
}
