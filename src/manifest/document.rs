//! One manifest file: read it safely, parse its documents, validate them
//! and merge each document's `defaults` into its media entries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::race::OnceBox;
use serde_json::Value;

use crate::error::{Diagnostic, Location};
use crate::manifest::fast;
use crate::manifest::schema::{salvage, Checker, DOCUMENT};
use crate::manifest::yaml::{parse_documents, Node, NodeKind};
use crate::model::Digest;
use crate::model::{FieldKind, FieldValue, MediaId, Metadata, TextCheck};
use crate::time::Timestamp;

/// Larger files are refused before they are read into memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A declared media: its wanted metadata and where it was declared.
/// An ID, a pointer and a place, 40 bytes (48 before the rare fields
/// moved into `Declared`): a parse holds every media twice at its peak
/// (the files' entries and the set assembled from them), and watch holds
/// both for its whole session.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: MediaId,
    /// Shared: watch keeps every file's entries and re-plans from them on
    /// each change, and copying 100,000 media each time cost the most.
    pub metadata: Arc<Declared>,
    /// Where it is declared, found by whichever path parsed its file.
    pub location: Location,
}

impl Entry {
    /// X's media key for this media (`3_<id>`), if its manifest gives it.
    #[must_use]
    pub fn media_key(&self) -> Option<String> {
        let prefix = self.metadata.rare.as_ref()?.media_key?;
        Some(prefix.key(&self.id))
    }

    /// Alt-text rules this media is exempt from, and why (`lint:`).
    #[must_use]
    pub fn exemption(&self) -> Option<&Exemption> {
        self.metadata.rare.as_ref()?.exemption.as_ref()
    }
}

/// The part of a media key before the media's own ID (`3` in `3_<id>`):
/// the key is kept as this one byte, not as a string per media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPrefix(u8);

impl KeyPrefix {
    const PHOTO: KeyPrefix = KeyPrefix(3);
    const VIDEO: KeyPrefix = KeyPrefix(7);
    const AMPLIFY_VIDEO: KeyPrefix = KeyPrefix(13);
    const GIF: KeyPrefix = KeyPrefix(16);

    fn parse(prefix: &str) -> Option<KeyPrefix> {
        match prefix {
            "3" => Some(Self::PHOTO),
            "7" => Some(Self::VIDEO),
            "13" => Some(Self::AMPLIFY_VIDEO),
            "16" => Some(Self::GIF),
            _ => None,
        }
    }

    #[must_use]
    pub fn key(self, id: &MediaId) -> String {
        format!("{}_{id}", self.0)
    }
}

/// A media's declared metadata and, once a watch keeps them, its digest
/// and its alt text's lint checks: shared by every copy of the entry, so
/// watch computes them once per parse of the file, not on every cycle.
/// Four words: what few media declare, and what only watch keeps, are
/// each one box behind one pointer.
#[derive(Debug)]
pub struct Declared {
    metadata: Metadata,
    /// `lint:` and `key:`/`type:`, which few media have.
    rare: Option<Box<Rare>>,
    /// Only a watch keeps these (it compares and lints every media again
    /// each cycle); a `OnceBox`, one pointer where a `OnceLock` of the box
    /// took two words.
    kept: OnceBox<Kept>,
}

#[derive(Debug)]
struct Rare {
    exemption: Option<Exemption>,
    media_key: Option<KeyPrefix>,
}

/// What a watch works out once per parse of a media's file: 48 bytes, and
/// a text check's 32 more for a media with alt text (the two boxes this
/// replaces took 32 and 40 with their second pointer in `Declared`).
#[derive(Debug, Default)]
struct Kept {
    digest: std::sync::OnceLock<Digest>,
    text_check: OnceBox<TextCheck>,
}

impl Declared {
    #[must_use]
    pub fn new(
        metadata: Metadata,
        exemption: Option<Exemption>,
        media_key: Option<KeyPrefix>,
    ) -> Declared {
        let rare = (exemption.is_some() || media_key.is_some()).then(|| {
            Box::new(Rare {
                exemption,
                media_key,
            })
        });
        Declared {
            metadata,
            rare,
            kept: OnceBox::new(),
        }
    }

    /// What a watch keeps of this media, made on first use.
    fn kept(&self) -> &Kept {
        self.kept.get_or_init(Box::default)
    }

    /// The digest kept, if a watch kept it.
    fn kept_digest(&self) -> Option<&Digest> {
        self.kept.get()?.digest.get()
    }

    /// The text check kept, under whichever options it was made.
    fn kept_check(&self) -> Option<&TextCheck> {
        self.kept.get()?.text_check.get()
    }

    /// The digest a record of this metadata states: the one kept, if any;
    /// else worked out, and kept with the media when `keep` (for the next
    /// watch cycle).
    pub fn digest(&self, keep: bool) -> Digest {
        match self.kept_digest() {
            Some(kept) => *kept,
            None if keep => *self
                .kept()
                .digest
                .get_or_init(|| Digest::of(&self.metadata)),
            None => Digest::of(&self.metadata),
        }
    }

    /// The checks kept by an earlier lint under the options hashed to
    /// `options`, if any.
    #[must_use]
    pub fn kept_text_check(&self, options: u64) -> Option<&TextCheck> {
        self.kept_check().filter(|kept| kept.options == options)
    }

    /// The linter's checks of this alt text under the options hashed to
    /// `options`: `check`'s result, kept for the next lint with the same
    /// options (another set of options is checked afresh, not kept).
    pub fn text_check(
        &self,
        options: u64,
        check: impl FnOnce() -> TextCheck,
    ) -> std::borrow::Cow<'_, TextCheck> {
        let fresh = match self.kept_check() {
            Some(kept) if kept.options == options => return std::borrow::Cow::Borrowed(kept),
            Some(_) => return std::borrow::Cow::Owned(check()),
            None => check(),
        };
        // A copy is kept (its findings are few, usually none).
        let _ = self.kept().text_check.set(Box::new(fresh.clone()));
        std::borrow::Cow::Owned(fresh)
    }

    #[must_use]
    pub fn into_metadata(self) -> Metadata {
        self.metadata
    }
}

impl std::ops::Deref for Declared {
    type Target = Metadata;

    fn deref(&self) -> &Metadata {
        &self.metadata
    }
}

/// The media key from `key:` or `type:` (never sent; used to read the
/// media's alt text back): `3_` photo, `16_` animated GIF, `7_` or `13_`
/// video, then the media's own ID.
pub fn media_key(
    id: &MediaId,
    key: Option<&str>,
    kind: Option<&str>,
) -> Result<Option<KeyPrefix>, String> {
    let from_type = match kind {
        None => None,
        Some("photo") => Some(KeyPrefix::PHOTO),
        Some("gif") => Some(KeyPrefix::GIF),
        Some("video") => Some(KeyPrefix::VIDEO),
        Some(other) => {
            return Err(format!(
                "`type` must be `photo`, `gif` or `video`, found \"{}\"",
                crate::untrusted::neutralise(other, 20)
            ))
        }
    };
    let Some(key) = key else { return Ok(from_type) };
    let prefix = key
        .split_once('_')
        .filter(|(_, digits)| *digits == id.to_string())
        .and_then(|(prefix, _)| KeyPrefix::parse(prefix));
    let Some(prefix) = prefix else {
        return Err(format!(
            "`key` must be this media's key: `3_{id}` (photo), `16_{id}` (GIF), `7_{id}` or `13_{id}` (video)"
        ));
    };
    if from_type.is_some_and(|t| {
        !(t == prefix || (t == KeyPrefix::VIDEO && prefix == KeyPrefix::AMPLIFY_VIDEO))
    }) {
        return Err("`key` and `type` disagree; give one of them".into());
    }
    Ok(Some(prefix))
}

impl Exemption {
    /// At least one known rule, each once, and a reason that says something.
    /// A problem is its message and its help (the rule probably meant).
    pub fn check(&self) -> Result<(), (String, Option<String>)> {
        if self.ignore.is_empty() {
            return Err((
                "`lint.ignore` must name at least one rule, such as alt-text/too-short".into(),
                None,
            ));
        }
        if self.reason.trim().is_empty() {
            return Err((
                "`lint.reason` must say why the media is exempt".into(),
                None,
            ));
        }
        for (i, id) in self.ignore.iter().enumerate() {
            if let Err(unknown) = crate::model::Rule::parse(id) {
                return Err((
                    format!("`lint.ignore` names `{}`, which is no rule", unknown.name),
                    Some(unknown.help()),
                ));
            }
            if self.ignore[..i].contains(id) {
                return Err((format!("`lint.ignore` names `{id}` twice"), None));
            }
        }
        Ok(())
    }
}

/// `lint: {ignore: [alt-text/too-short], reason: "…"}` on a media entry.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    #[serde(deserialize_with = "crate::model::strict_strings")]
    pub ignore: Vec<String>,
    #[serde(deserialize_with = "crate::model::strict_string")]
    pub reason: String,
}

/// The outcome of reading one file: its entries and its problems. When
/// the problems include an error the file is invalid: its entries (every
/// media whose ID reads, with what of its metadata reads) serve only to
/// report IDs declared twice, and are never planned.
#[derive(Clone, Debug)]
pub struct ParsedFile {
    pub path: Arc<PathBuf>,
    pub entries: Vec<Entry>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and checks one file; never fails, problems become diagnostics.
pub fn parse_file(path: &Path, reader: &crate::intake::Reader, now: Timestamp) -> ParsedFile {
    let file = Arc::new(path.to_path_buf());
    let at_start = |message: String| ParsedFile {
        path: Arc::clone(&file),
        entries: Vec::new(),
        diagnostics: vec![Diagnostic::error(Location::new(&file, 1, 1), message)],
    };
    match read_text(path, reader) {
        Ok(text) => parse_text(Arc::clone(&file), &text, now),
        Err(ReadError::Refused(e)) => at_start(format!("cannot read the file: {e}")),
        Err(ReadError::NotUtf8 { line, column }) => ParsedFile {
            diagnostics: vec![Diagnostic::error(
                Location::new(&file, line, column),
                "the file is not valid UTF-8; save it as UTF-8",
            )],
            ..at_start(String::new())
        },
    }
}

enum ReadError {
    Refused(crate::intake::Refusal),
    NotUtf8 { line: usize, column: usize },
}

fn read_text(path: &Path, reader: &crate::intake::Reader) -> Result<String, ReadError> {
    let mut bytes = reader
        .read(path, MAX_FILE_BYTES)
        .map_err(ReadError::Refused)?;
    if bytes.starts_with("\u{feff}".as_bytes()) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // An error path, once per file: not worth a byte-counting crate.
        #[allow(clippy::naive_bytecount)]
        let line = 1 + good.iter().filter(|b| **b == b'\n').count();
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = 1 + String::from_utf8_lossy(&good[line_start..]).chars().count();
        ReadError::NotUtf8 { line, column }
    })
}

/// Parses and checks the text of one manifest file: a clean file by the
/// fast path, anything else by the positioned one.
/// `now` is the time expiry is checked against: the parse itself reads
/// no clock.
#[must_use]
pub fn parse_text(file: Arc<PathBuf>, text: &str, now: Timestamp) -> ParsedFile {
    // A byte-order mark is an editor's, not part of the YAML.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // yaml-rust2 takes a NUL for the end of the input: what follows one
    // would be silently left out.
    if let Some(at) = text.find('\0') {
        let before = &text[..at];
        let line = 1 + before.matches('\n').count();
        let column = 1 + before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        return ParsedFile {
            diagnostics: vec![Diagnostic::error(
                Location::new(&file, line, column),
                "the file holds a NUL character (U+0000), which YAML does not allow",
            )],
            path: file,
            entries: Vec::new(),
        };
    }
    let text = &ends_in_newline(text);
    match fast::parse(&file, text, now) {
        Some(entries) => ParsedFile {
            path: file,
            entries,
            diagnostics: Vec::new(),
        },
        None => parse_positioned(file, text, now),
    }
}

/// Both parse paths on one text, for the differential fuzz target: the
/// fast path's entries (`None` when it leaves the file to the other path)
/// beside the positioned path's result.
#[doc(hidden)]
#[must_use]
pub fn parse_both(
    file: Arc<PathBuf>,
    text: &str,
    now: Timestamp,
) -> (Option<Vec<Entry>>, ParsedFile) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = &ends_in_newline(text);
    (
        fast::parse(&file, text, now),
        parse_positioned(file, text, now),
    )
}

/// The text with a final newline: both YAML parsers then read a scalar
/// on the last line alike (they disagree at the very end of the input).
fn ends_in_newline(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_empty() || text.ends_with('\n') {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(format!("{text}\n"))
    }
}

/// Parses and checks the text of one manifest file, with positions.
fn parse_positioned(file: Arc<PathBuf>, text: &str, now: Timestamp) -> ParsedFile {
    let mut diagnostics = Vec::new();
    let mut entries = Vec::new();
    let mut dropped = 0usize;
    match parse_documents(text) {
        Err(e) => {
            // yaml-rust2 says "found character that cannot start any token"
            // for a tab; say what to do instead.
            let tabbed = text
                .lines()
                .nth(e.pos.line.saturating_sub(1))
                .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'));
            diagnostics.push(
                Diagnostic::error(
                    Location::new(&file, e.pos.line, e.pos.column),
                    format!("YAML syntax error: {}", e.message),
                )
                .with_help(tabbed.then(|| {
                    "YAML indents with spaces only; replace the tab with spaces".to_string()
                })),
            );
        }
        Ok(docs) => {
            for doc in &docs {
                if is_empty_document(doc) {
                    continue;
                }
                if doc.get("apiVersion").is_none() {
                    // Say nothing of its content: a symlink or a stray file
                    // could be anything, and CI logs are often public.
                    diagnostics.push(Diagnostic::error(
                        Location::new(&file, doc.pos.line, doc.pos.column),
                        "not an xmeta manifest: a document must be a mapping that starts with `apiVersion: xmeta/v1`",
                    ));
                    continue;
                }
                let mut checker = Checker {
                    file: &file,
                    diagnostics: &mut diagnostics,
                    dropped: &mut dropped,
                };
                // A document with a schema error is read on as far as it
                // can be, so that every problem shows in one run.
                let value = checker
                    .check(doc, &DOCUMENT, "")
                    .or_else(|| salvage(&file, doc, &DOCUMENT, 3));
                if let Some(value) = value {
                    read_document(&mut checker, doc, value, now, &mut entries);
                }
            }
        }
    }
    // In the order of the file, whichever check found them.
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    if dropped > 0 {
        diagnostics.push(Diagnostic::error(
            Location::new(&file, 1, 1),
            format!("{dropped} more errors in this file are not shown; fix the ones above first"),
        ));
    }
    ParsedFile {
        path: file,
        entries,
        diagnostics,
    }
}

impl ParsedFile {
    /// Whether the file has no error (warnings allowed).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// A document with nothing in it (after a trailing `---`), or only `~` /
/// `null`: both declare nothing, as the fast path reads them.
fn is_empty_document(doc: &Node) -> bool {
    matches!(&doc.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

/// Turns a checked document into entries, with defaults merged per field.
/// Every problem is reported, each entry's own checks going on past one:
/// an entry with a problem is still read (the file is then invalid and
/// its entries only find duplicates).
fn read_document(
    checker: &mut Checker,
    doc: &Node,
    mut value: Value,
    now: Timestamp,
    entries: &mut Vec<Entry>,
) {
    let file = checker.file;
    let defaults = value
        .pointer_mut("/defaults/metadata")
        .map_or(Value::Null, Value::take);
    let defaults = typed(defaults).unwrap_or_else(|message| {
        let pos = doc.get("defaults").unwrap_or(doc).pos;
        checker.push(Diagnostic::error(
            Location::new(file, pos.line, pos.column),
            message,
        ));
        Metadata::default()
    });
    let media_nodes = match doc.get("media").map(|n| &n.kind) {
        Some(NodeKind::Seq(items)) => items.as_slice(),
        _ => &[],
    };
    let media = match value.get_mut("media").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (mut item, node) in media.into_iter().zip(media_nodes) {
        let location = Location::new(file, node.pos.line, node.pos.column);
        let id = match item.get("id") {
            Some(Value::String(s)) => match MediaId::parse(s) {
                Some(id) => id,
                None => continue,
            },
            _ => continue,
        };
        let mut metadata = typed(item.get_mut("metadata").map_or(Value::Null, Value::take))
            .unwrap_or_else(|message| {
                checker.push(Diagnostic::error(location.clone(), message));
                Metadata::default()
            });
        metadata.fill_from(&defaults);
        warn_if_expired(checker, node, doc, &metadata, now);
        let key = item.get("key").and_then(Value::as_str);
        let kind = item.get("type").and_then(Value::as_str);
        let media_key = media_key(&id, key, kind).unwrap_or_else(|message| {
            let at = node.get("key").or_else(|| node.get("type")).unwrap_or(node);
            checker.push(Diagnostic::error(
                Location::new(file, at.pos.line, at.pos.column),
                message,
            ));
            None
        });
        let exemption = item
            .get_mut("lint")
            .map(Value::take)
            .and_then(|v| serde_json::from_value::<Exemption>(v).ok());
        let exemption = match exemption.as_ref().map(Exemption::check) {
            Some(Err((message, help))) => {
                let at = node.get("lint").unwrap_or(node);
                checker.push(
                    Diagnostic::error(Location::new(file, at.pos.line, at.pos.column), message)
                        .with_help(help),
                );
                None
            }
            _ => exemption,
        };
        entries.push(Entry {
            id,
            metadata: Arc::new(Declared::new(metadata, exemption, media_key)),
            location,
        });
    }
}

fn typed(value: Value) -> Result<Metadata, String> {
    let Value::Object(map) = value else {
        return Ok(Metadata::default());
    };
    map.into_iter()
        .map(|(name, v)| {
            let kind =
                FieldKind::from_name(&name).ok_or_else(|| format!("unknown field `{name}`"))?;
            FieldValue::from_json(kind, v).map_err(|e| format!("invalid `{name}`: {e}"))
        })
        .collect()
}

fn warn_if_expired(
    checker: &mut Checker,
    node: &Node,
    doc: &Node,
    metadata: &Metadata,
    now: Timestamp,
) {
    let file = checker.file;
    let Some(FieldValue::ContentExpiration(exp)) = metadata.get(FieldKind::ContentExpiration)
    else {
        return;
    };
    if exp
        .timestamp_sec
        .0
        .as_f64()
        .is_some_and(|t| t < now.as_unix() as f64)
    {
        // Point at the entry's own value, or at the default it inherited.
        let declared = node
            .get("metadata")
            .and_then(|m| m.get("content_expiration"))
            .or_else(|| {
                doc.get("defaults")
                    .and_then(|d| d.get("metadata"))
                    .and_then(|m| m.get("content_expiration"))
            })
            .unwrap_or(node);
        let id = node.get("id").and_then(Node::as_str).unwrap_or("?");
        // Not counted against the errors shown.
        checker.diagnostics.push(Diagnostic::warning(
            Location::new(file, declared.pos.line, declared.pos.column),
            format!("`content_expiration.timestamp_sec` of media {id} is in the past; the media expires as soon as this is applied"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared media is held twice at a parse's peak and for a
    /// watch's whole session: a field added here costs that much. Its
    /// `Declared` with the Arc's two counts fits mimalloc's 48-byte size
    /// class (it took the 96-byte one once: 48 MB at 1,000,000 media).
    #[test]
    fn a_declared_media_takes_four_words_and_its_entry_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
        assert_eq!(std::mem::size_of::<Declared>() + 16, 48);
        assert_eq!(std::mem::size_of::<Kept>(), 48);
        assert_eq!(std::mem::size_of::<TextCheck>(), 32);
    }

    #[test]
    fn the_rare_fields_are_boxed_only_when_declared() {
        let id = MediaId::parse("1700000000000000001").unwrap();
        let plain = Declared::new(Metadata::default(), None, None);
        assert!(plain.rare.is_none());
        let keyed = Declared::new(
            Metadata::default(),
            None,
            media_key(&id, None, Some("gif")).unwrap(),
        );
        let entry = Entry {
            id,
            metadata: Arc::new(keyed),
            location: Location::new(&Arc::new(PathBuf::from("m.yaml")), 1, 1),
        };
        assert_eq!(entry.media_key().as_deref(), Some("16_1700000000000000001"));
        assert!(entry.exemption().is_none());
    }
}
