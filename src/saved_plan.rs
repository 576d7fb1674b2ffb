//! The JSON plan (`plan --format json`) and saved plans (`plan --out`,
//! `apply --plan`): the same document, saved with a checksum of its content.

use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use crate::hashing::Hashing;
use crate::model::{FieldKind, FieldSet, MediaId, Metadata};
use crate::plan::{Action, Batches, Change, Plan, PlanWarning, Summary};
use crate::state::StateReader;

pub const PLAN_FORMAT_VERSION: &str = "1";

/// The file's document, as written (`read` verifies one into a
/// `SavedPlan`).
#[derive(Serialize)]
pub struct Document<'a> {
    pub format_version: String,
    /// The state this plan was made against ("" when there was none yet).
    pub lineage: String,
    pub serial: u64,
    /// Whether forgotten media leave the state when applied.
    pub prune: bool,
    pub changes: &'a [Change],
    pub warnings: Vec<String>,
    pub summary: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text_coverage: Option<crate::plan::Coverage>,
    /// What `--refresh` found; informative, never applied from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<serde_json::Value>,
    /// The manifests' source revision, which `apply --plan` records in the
    /// history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The work tree had uncommitted changes when the plan was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
}

impl<'a> Document<'a> {
    pub fn new(
        plan: &'a Plan,
        lineage: Option<String>,
        serial: u64,
        source: &crate::state::Provenance,
    ) -> Document<'a> {
        Document {
            revision: source.revision.clone(),
            dirty: source.dirty,
            format_version: PLAN_FORMAT_VERSION.into(),
            // The file format's "no state yet" is "".
            lineage: lineage.unwrap_or_default(),
            serial,
            prune: plan.prune,
            changes: &plan.changes,
            warnings: plan.warnings.iter().map(ToString::to_string).collect(),
            summary: plan.summary(),
            alt_text_coverage: plan.alt_text_coverage,
            drift: plan
                .refresh
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
        }
    }
}

impl Document<'_> {
    /// The document as pretty JSON (the `plan --format json` output, and
    /// a saved plan's body), its changes rendered on every core.
    pub fn write_json<W: Write>(&self, writer: W) -> serde_json::Result<()> {
        let shell = Document {
            changes: &[],
            format_version: self.format_version.clone(),
            lineage: self.lineage.clone(),
            warnings: self.warnings.clone(),
            summary: self.summary.clone(),
            drift: self.drift.clone(),
            revision: self.revision.clone(),
            ..*self
        };
        crate::untrusted::write_json_pretty_with_items(writer, &shell, "changes", self.changes)
    }
}

/// A saved plan read back and verified whole: its head, and its changes
/// in a private copy that `each_batch` reads back a batch at a time, so
/// that no plan is held at once (1,000,000 changes are hundreds of MB).
/// The copy is an unnamed temporary file: what was verified is what is
/// applied, whatever happens to the plan file meanwhile.
pub struct SavedPlan {
    head: Plan,
    counts: [usize; 5],
    /// The state this plan was made against ("" when there was none yet).
    lineage: String,
    /// The manifests' source revision, recorded in the history.
    pub revision: Option<String>,
    /// The work tree had uncommitted changes when the plan was made.
    pub dirty: bool,
    spool: std::fs::File,
}

impl SavedPlan {
    /// The price estimates are made at (the plan file's is informative).
    pub fn set_price_per_request(&mut self, price: f64) {
        self.head.price_per_request = price;
    }

    /// Refuses the plan unless the state is still what it was planned
    /// against: same lineage, and every planned media's record as `before`.
    /// Reads the records of the planned media a batch at a time: never
    /// every record, nor every digest, at once.
    pub fn check_fresh(&self, store: &dyn StateReader) -> anyhow::Result<()> {
        let lineage = store.lineage()?;
        let lineage = lineage.as_deref();
        let serial = store.serial()?;
        // The file's "" is "no state yet"; one made since, unwritten, fits.
        let planned = Some(self.lineage.as_str()).filter(|l| !l.is_empty());
        let fresh_state = planned.is_none() && serial == 0;
        if planned != lineage && !fresh_state {
            bail!("the saved plan is stale: it was made for state lineage `{}`, but the state has `{}`; run `xmeta plan --out` again", self.lineage, lineage.unwrap_or_default());
        }
        self.each_batch(&mut |batch| {
            let ids: Vec<MediaId> = batch.changes.iter().map(|c| c.id).collect();
            let applied = store.get_present(&ids)?;
            for change in &batch.changes {
                let current = applied.get(&change.id).map(|r| &r.metadata);
                let matches = match change.action {
                    Action::Create => current.is_none(),
                    Action::Forget => current == Some(&change.before),
                    Action::Update => {
                        let touched = change.fields.union(change.untracked);
                        current.map(|m| m.select(touched)).as_ref() == Some(&change.before)
                    }
                };
                if !matches {
                    bail!(
                        "the saved plan is stale: the state of media {} changed after the plan was made; run `xmeta plan --out` again",
                        change.id
                    );
                }
            }
            Ok(())
        })
    }
}

impl Batches for SavedPlan {
    fn head(&self) -> &Plan {
        &self.head
    }

    fn summary(&self) -> Summary {
        self.head.summary_of(self.counts)
    }

    fn each_batch(&self, visit: &mut dyn FnMut(&Plan) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let cannot = |e: &dyn std::fmt::Display| anyhow!("cannot read the plan's copy back: {e}");
        let mut spool = &self.spool;
        spool.seek(SeekFrom::Start(0)).map_err(|e| cannot(&e))?;
        let changes =
            serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 16, spool))
                .into_iter::<Change>();
        let mut batch = Plan {
            changes: Vec::with_capacity(BATCH),
            ..self.head.clone()
        };
        let mut read = 0;
        for change in changes {
            batch.changes.push(change.map_err(|e| cannot(&e))?);
            read += 1;
            if batch.changes.len() == BATCH {
                visit(&batch)?;
                batch.changes.clear();
            }
        }
        if !batch.changes.is_empty() {
            visit(&batch)?;
        }
        // A copy cut short must not pass for a smaller plan.
        let verified: usize = self.counts[..3].iter().sum();
        if read != verified {
            return Err(cannot(&format!(
                "it ends after {read} of {verified} changes"
            )));
        }
        Ok(())
    }
}

/// How many changes of a saved plan are held at once (about 1 MB): each
/// batch's records are read in one go, and its requests are sent before
/// the next batch is read (the requests in flight drain at each boundary,
/// one request's wait in 4,096).
const BATCH: usize = 4_096;

/// What the copy holds of a verified change: what `Change` reads back.
#[derive(Serialize)]
struct Spooled<'a> {
    id: MediaId,
    action: Action,
    fields: FieldSet,
    #[serde(skip_serializing_if = "crate::model::no_fields")]
    untracked: FieldSet,
    before: &'a Metadata,
    after: &'a Metadata,
}

/// Larger plan files are refused before they are read, and never
/// written. A plan is read as it streams, in bounded memory, so this
/// bounds disk and time only. A create with an alt text of 1,000 ASCII
/// characters (X's limit) is 2.35 KB: 1 GiB refused the plan of 470,000
/// of them that `plan --out` had just written. 4 GiB holds 1,000,000, and
/// room for updates (the text twice more) and wider characters.
pub const MAX_PLAN_BYTES: u64 = 4 << 30;
const CHECKSUM_PREFIX: &str = "{\n  \"checksum\": \"sha256:";

/// Writes the plan, readable only by its owner. Its second line is the
/// checksum: SHA-256 over every byte after that line. It catches damage
/// and edits made without recomputing it; it is no signature (anyone who
/// can write the file can write a new checksum), which is why the request
/// bodies are derived again, and checked, when the plan is applied.
pub fn write(file: &Path, document: Document) -> anyhow::Result<()> {
    write_within(file, document, MAX_PLAN_BYTES)
}

/// `write`, refused (nothing put in place) past `limit` bytes.
fn write_within(file: &Path, document: Document, limit: u64) -> anyhow::Result<()> {
    // Serialized once, its changes never held as text (a plan of
    // 1,000,000 media is 880 MB of it): the checksum line is written
    // blank, as wide as it will be, and filled in once what follows it is
    // written and hashed.
    crate::fs_util::write_private_patched(file, |w| {
        let w = &mut Within {
            inner: w,
            left: limit,
            limit,
        };
        w.write_all(CHECKSUM_PREFIX.as_bytes())?;
        w.write_all(&[b'0'; 64])?;
        w.write_all(b"\",\n")?;
        let mut body = Hashing::new(w);
        document.write_json(AfterOpening::new(&mut body))?;
        let sum = hex::encode(body.finish());
        Ok(Some((CHECKSUM_PREFIX.len() as u64, sum.into_bytes())))
    })
    .with_context(|| format!("cannot write the plan file `{}`", file.display()))
}

/// A writer that passes at most `left` more bytes, then fails: a plan
/// that `read` would refuse is not written.
struct Within<W> {
    inner: W,
    left: u64,
    limit: u64,
}

impl<W: Write> Write for Within<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "the plan is larger than {} bytes, the most `xmeta apply --plan` reads; plan fewer media at a time (`--target`, or fewer manifests)",
                self.limit
            )));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The document's JSON without its opening `{` line, which the checksum
/// line replaces in the file.
struct AfterOpening<W> {
    inner: W,
    skip: usize,
}

impl<W: Write> AfterOpening<W> {
    fn new(inner: W) -> AfterOpening<W> {
        AfterOpening { inner, skip: 2 }
    }
}

impl<W: Write> Write for AfterOpening<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let skipped = self.skip.min(buf.len());
        self.skip -= skipped;
        self.inner.write_all(&buf[skipped..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A change as read back: every key known, `request` kept to be checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadChange {
    id: MediaId,
    action: Action,
    fields: Vec<FieldKind>,
    #[serde(default)]
    untracked: FieldSet,
    before: Metadata,
    after: Metadata,
    request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadDocument {
    format_version: String,
    lineage: String,
    /// Checked to be a number; the lineage and records say if the plan
    /// is stale.
    #[serde(rename = "serial")]
    _serial: u64,
    prune: bool,
    changes: Checked,
    warnings: Vec<String>,
    summary: Summary,
    #[serde(default)]
    alt_text_coverage: Option<crate::plan::Coverage>,
    /// Informative: never applied from a file.
    #[serde(default, rename = "drift")]
    _drift: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    dirty: bool,
}

/// The changes, each checked as it is read and written to the private
/// copy, never all held: the first problem, in file order, is kept and
/// reported once the whole file has parsed and matched its checksum,
/// which come first.
struct Checked {
    /// `None` once the copy failed (`copy_failed` says why).
    spool: Option<std::io::BufWriter<std::fs::File>>,
    copy_failed: Option<std::io::Error>,
    /// Creates, updates, forgets and requests, as `Summary::counts`.
    create: usize,
    update: usize,
    forget: usize,
    requests: usize,
    problem: Option<String>,
}

impl Checked {
    fn new() -> Checked {
        let (spool, copy_failed) = match tempfile::tempfile() {
            Ok(file) => (Some(std::io::BufWriter::with_capacity(1 << 16, file)), None),
            Err(e) => (None, Some(e)),
        };
        Checked {
            spool,
            copy_failed,
            create: 0,
            update: 0,
            forget: 0,
            requests: 0,
            problem: None,
        }
    }

    /// Counts a verified change and adds it to the copy.
    fn keep(&mut self, change: &Change) {
        match change.action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Forget => self.forget += 1,
        }
        self.requests += usize::from(change.sends());
        let Some(spool) = &mut self.spool else { return };
        let spooled = Spooled {
            id: change.id,
            action: change.action,
            fields: change.fields,
            untracked: change.untracked,
            before: &change.before,
            after: &change.after,
        };
        let written = serde_json::to_writer(&mut *spool, &spooled)
            .map_err(std::io::Error::from)
            .and_then(|()| spool.write_all(b"\n"));
        if let Err(e) = written {
            self.copy_failed = Some(e);
            self.spool = None;
        }
    }

    /// The copy, written out, or why it could not be made.
    fn finish(self) -> std::io::Result<std::fs::File> {
        if let Some(e) = self.copy_failed {
            return Err(e);
        }
        match self.spool {
            Some(spool) => spool
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error),
            None => Err(std::io::Error::other("no copy was made")),
        }
    }
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        struct Changes;
        impl<'de> serde::de::Visitor<'de> for Changes {
            type Value = Checked;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Checked, A::Error> {
                let mut checked = Checked::new();
                // A plan lists its media by ID, so one listed twice follows
                // itself: found without a set of every ID.
                let mut last = None;
                // Every change is parsed (a corrupt one after a problem
                // still makes the file corrupt); none is kept after one.
                while let Some(c) = seq.next_element::<ReadChange>()? {
                    if checked.problem.is_some() {
                        continue;
                    }
                    if last == Some(c.id) {
                        checked.problem = Some(format!("lists media {} twice", c.id));
                        continue;
                    }
                    if last > Some(c.id) {
                        checked.problem = Some(format!(
                            "is inconsistent: media {} is out of order (a plan lists its media by ID)",
                            c.id
                        ));
                        continue;
                    }
                    last = Some(c.id);
                    let fields: FieldSet = c.fields.iter().copied().collect();
                    if fields.len() != c.fields.len() {
                        checked.problem = Some(format!(
                            "is inconsistent: media {}: `fields` names a field twice",
                            c.id
                        ));
                        continue;
                    }
                    let change = Change {
                        id: c.id,
                        action: c.action,
                        fields,
                        untracked: c.untracked,
                        before: c.before,
                        after: c.after,
                        location: None,
                    };
                    match check_change(&change, c.request.as_ref()) {
                        Ok(()) => checked.keep(&change),
                        Err(why) => {
                            checked.problem =
                                Some(format!("is inconsistent: media {}: {why}", change.id));
                        }
                    }
                }
                Ok(checked)
            }
        }
        deserializer.deserialize_seq(Changes)
    }
}

/// The length of the file's `{` line and checksum line: the prefix, 64
/// hex digits, `",` and `\n`.
const CHECKSUM_LINE: usize = CHECKSUM_PREFIX.len() + 64 + 3;

/// Reads a saved plan, refusing one that is too large, corrupt, edited,
/// or not consistent in itself. Streamed: the file is read once, hashed
/// and parsed as it comes, each change checked and copied aside, and
/// nothing read is used before the whole file has matched its checksum.
pub fn read(file: &Path) -> anyhow::Result<SavedPlan> {
    let shown = file.display();
    let refuse = |why: String| {
        anyhow!("the plan file `{shown}` {why}; make a new one with `xmeta plan --out`")
    };
    let cannot = |e: &dyn std::fmt::Display| anyhow!("cannot read the plan file `{shown}`: {e}");
    let opened = crate::intake::open(file, None, MAX_PLAN_BYTES).map_err(|e| cannot(&e))?;
    let mut input = std::io::BufReader::with_capacity(1 << 16, opened.stream());
    let mut line = Vec::with_capacity(CHECKSUM_LINE);
    (&mut input)
        .take(CHECKSUM_LINE as u64)
        .read_to_end(&mut line)
        .map_err(|e| cannot(&e))?;
    let sum = line
        .strip_prefix(CHECKSUM_PREFIX.as_bytes())
        .filter(|b| b.get(64..) == Some(b"\",\n".as_slice()))
        .map(|b| b[..64].to_vec());
    let Some(sum) = sum else {
        return Err(refuse(
            "is corrupt (it has no checksum line; was it saved by `xmeta plan --out`?)".into(),
        ));
    };
    let mut rest = Hashing::new(input);
    let parsed = {
        // The JSON is the file with its checksum line left blank, so the
        // parser's line numbers are the file's.
        let json = std::io::Cursor::new(b"{\n\n").chain(&mut rest);
        let mut parser = serde_json::Deserializer::from_reader(json);
        ReadDocument::deserialize(&mut parser).and_then(|read| parser.end().map(|()| read))
    };
    // However far the parse got, every byte after the line is hashed.
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| cannot(&e))?;
    if let Err(e) = &parsed {
        if e.is_io() {
            return Err(cannot(e));
        }
    }
    if hex::encode(rest.finish()).as_bytes() != sum {
        return Err(refuse(
            "does not match its checksum: it was edited or damaged".into(),
        ));
    }
    let read = parsed.map_err(|e| refuse(format!("is corrupt ({e})")))?;
    if read.format_version != PLAN_FORMAT_VERSION {
        bail!(
            "the plan file `{shown}` has format {}, this xmeta reads format {PLAN_FORMAT_VERSION}",
            crate::untrusted::neutralise(&read.format_version, 20)
        );
    }
    let changes = read.changes;
    if let Some(problem) = changes.problem {
        return Err(refuse(problem));
    }
    let counts = [
        changes.create,
        changes.update,
        changes.forget,
        read.summary.unchanged,
        changes.requests,
    ];
    if counts != read.summary.counts() {
        return Err(refuse(
            "is inconsistent: its summary does not count its changes".into(),
        ));
    }
    let spool = changes.finish().map_err(|e| {
        let dir = std::env::temp_dir();
        cannot(&format!(
            "cannot keep a private copy of it in `{}` (set TMPDIR to use another directory): {e}",
            dir.display()
        ))
    })?;
    Ok(SavedPlan {
        head: Plan {
            unchanged: read.summary.unchanged,
            warnings: read.warnings.into_iter().map(PlanWarning::Saved).collect(),
            prune: read.prune,
            price_per_request: crate::plan::cost::PRICE_PER_REQUEST_USD,
            alt_text_coverage: read.alt_text_coverage,
            ..Plan::default()
        },
        counts,
        lineage: read.lineage,
        revision: read.revision.map(|r| r.chars().take(200).collect()),
        dirty: read.dirty,
        spool,
    })
}

/// A change must say one thing: the fields sent are exactly the keys of
/// `after`, and the request is the one derived from them. The state records
/// `after` once X confirms the request, so a value outside the request
/// would be recorded without ever being sent.
fn check_change(change: &Change, request: Option<&serde_json::Value>) -> Result<(), String> {
    let after: FieldSet = change.after.kinds().collect();
    let fields = change.fields;
    match change.action {
        Action::Forget => {
            if !change.fields.is_empty() || !change.after.is_empty() || !change.untracked.is_empty()
            {
                return Err("a forget sends nothing and changes no field".into());
            }
        }
        Action::Create | Action::Update => {
            if fields != after {
                return Err("`fields` and the keys of `after` differ".into());
            }
            if change.untracked.intersects(fields) {
                return Err("a field is both sent and no longer tracked".into());
            }
            let touched = fields.union(change.untracked);
            if change.before.kinds().any(|k| !touched.contains(k)) {
                return Err("`before` holds a field the change does not touch".into());
            }
            if change.action == Action::Create
                && !(change.before.is_empty() && change.untracked.is_empty())
            {
                return Err("a create has nothing before it".into());
            }
        }
    }
    let derived = change
        .request()
        .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
        .transpose()?;
    let given = request.filter(|v| !v.is_null());
    if given != derived.as_ref() {
        return Err("`request` is not the body derived from `fields` and `after`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AltText, FieldValue};

    fn create(id: &str, text: &str) -> Change {
        let mut after = Metadata::default();
        after.insert(FieldValue::AltText(AltText { text: text.into() }));
        Change {
            id: MediaId::parse(id).unwrap(),
            action: Action::Create,
            fields: FieldSet::of(FieldKind::AltText),
            untracked: FieldSet::default(),
            before: Metadata::default(),
            after,
            location: None,
        }
    }

    fn saved(changes: Vec<Change>) -> (tempfile::TempDir, std::path::PathBuf, String) {
        let plan = Plan {
            changes,
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plan.json");
        let provenance = crate::state::Provenance::default();
        write(&file, Document::new(&plan, None, 0, &provenance)).unwrap();
        // A unit test reading back the file it just wrote in its own
        // temp dir; the command's reads go through `intake`.
        let text = std::fs::read_to_string(&file).unwrap();
        (dir, file, text)
    }

    /// Reseals `body` (the document after its checksum line) the way
    /// `write` does.
    fn seal(body: &str) -> String {
        use sha2::{Digest as _, Sha256};
        let sum = hex::encode(Sha256::digest(body.as_bytes()));
        format!("{CHECKSUM_PREFIX}{sum}\",\n{body}")
    }

    /// Every change of a verified plan, from its copy.
    fn read_back(saved: &SavedPlan) -> Vec<Change> {
        let mut changes = Vec::new();
        saved
            .each_batch(&mut |batch| {
                changes.extend_from_slice(&batch.changes);
                Ok(())
            })
            .unwrap();
        changes
    }

    fn refusal(file: &Path) -> String {
        format!("{:#}", read(file).err().unwrap())
    }

    #[test]
    fn a_streamed_plan_is_the_document_sealed_and_reads_back() {
        let changes = vec![create("1", "one"), create("2", "two \u{202e}")];
        let (_dir, file, text) = saved(changes.clone());
        // The checksum is over every byte after its line, as documented.
        let (line, body) = text.split_at(CHECKSUM_LINE);
        assert_eq!(seal(body), text, "{line}");
        let plan = Plan {
            changes: changes.clone(),
            ..Plan::default()
        };
        let whole = Document::new(&plan, None, 0, &crate::state::Provenance::default());
        let json = crate::untrusted::json_pretty(&whole).unwrap();
        assert_eq!(Some(body), json.strip_prefix("{\n"));
        assert_eq!(read_back(&read(&file).unwrap()), changes);
    }

    /// Every field of the document reaches its JSON as `serde_json` writes
    /// the whole, the changes spliced in where they belong.
    #[test]
    fn a_documents_json_is_every_field_as_one_serialization_writes_it() {
        let changes = vec![create("1", "one"), create("2", "two")];
        let plan = Plan {
            changes,
            alt_text_coverage: Some(crate::plan::Coverage {
                with_alt_text: 1,
                media: 2,
            }),
            ..Plan::default()
        };
        let provenance = crate::state::Provenance {
            revision: Some("3f2a9c1".into()),
            dirty: true,
            ..crate::state::Provenance::default()
        };
        let mut document = Document::new(&plan, Some("lineage-1".into()), 7, &provenance);
        document.warnings = vec!["a warning\n  \"changes\": []".into()];
        document.drift = Some(serde_json::json!({"drifted": [{"changes": []}]}));
        let mut written = Vec::new();
        document.write_json(&mut written).unwrap();
        let whole = crate::untrusted::json_pretty(&document).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), whole);
        assert!(whole.contains("\"revision\": \"3f2a9c1\""), "{whole}");
    }

    #[test]
    fn problems_are_reported_checksum_first_then_corruption_then_changes() {
        let (_dir, file, text) = saved(vec![create("1", "one"), create("2", "two")]);
        let body = &text[CHECKSUM_LINE..];
        // The second change names the first one's media: listed twice.
        let twice = body.replacen("\"2\"", "\"1\"", 1);
        std::fs::write(&file, seal(&twice)).unwrap();
        assert!(
            refusal(&file).contains("lists media 1 twice"),
            "{}",
            refusal(&file)
        );
        // The same, not resealed: the checksum speaks first.
        std::fs::write(&file, format!("{}{twice}", &text[..CHECKSUM_LINE])).unwrap();
        assert!(refusal(&file).contains("does not match its checksum"));
        // Listed twice, and corrupt after it: corrupt, with the file's line.
        let corrupt = twice.replacen("\"warnings\": []", "\"warnings\": [1]", 1);
        std::fs::write(&file, seal(&corrupt)).unwrap();
        let line = text
            .lines()
            .position(|l| l.contains("\"warnings\""))
            .unwrap()
            + 1;
        assert!(
            refusal(&file).contains(&format!(
                "is corrupt (invalid type: integer `1`, expected a string at line {line}"
            )),
            "{}",
            refusal(&file)
        );
        // Cut short.
        std::fs::write(&file, &text[..CHECKSUM_LINE - 1]).unwrap();
        assert!(refusal(&file).contains("it has no checksum line"));
    }

    #[test]
    fn a_plan_larger_than_read_accepts_is_never_written() {
        let plan = Plan {
            changes: vec![create("1", "one"), create("2", "two")],
            ..Plan::default()
        };
        let document = || Document::new(&plan, None, 0, &crate::state::Provenance::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plan.json");
        write(&file, document()).unwrap();
        let size = std::fs::metadata(&file).unwrap().len();
        // The limit is the whole file's, checksum line included, as the
        // reader counts it: a plan of exactly the limit is written and read.
        std::fs::write(&file, "the plan before").unwrap();
        write_within(&file, document(), size).unwrap();
        assert!(crate::intake::open(&file, None, size).is_ok());
        assert!(crate::intake::open(&file, None, size - 1).is_err());
        assert_eq!(read_back(&read(&file).unwrap()), plan.changes);
        // One byte over is refused, and nothing replaces the file (read
        // back here from the test's own temp dir, not through `intake`).
        std::fs::write(&file, "the plan before").unwrap();
        let e = write_within(&file, document(), size - 1).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "cannot write the plan file `{}`: the plan is larger than {} bytes, the most `xmeta apply --plan` reads; plan fewer media at a time (`--target`, or fewer manifests)",
                file.display(),
                size - 1
            )
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "the plan before");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_plan_out_of_media_order_is_refused() {
        // `plan` lists its media by ID; a file that does not was edited.
        let (_dir, file, _) = saved(vec![create("2", "two"), create("1", "one")]);
        assert!(
            refusal(&file).contains("is inconsistent: media 1 is out of order"),
            "{}",
            refusal(&file)
        );
    }

    #[test]
    fn what_was_verified_is_applied_whatever_the_file_becomes() {
        let (_dir, file, _) = saved(vec![create("1", "one")]);
        let verified = read(&file).unwrap();
        // Replaced by another valid plan after it was read: the verified
        // copy is what is read back.
        let (_other, _, replacement) = saved(vec![create("1", "replaced")]);
        std::fs::write(&file, replacement).unwrap();
        assert_eq!(read_back(&verified), vec![create("1", "one")]);
        assert_eq!(
            read_back(&read(&file).unwrap()),
            vec![create("1", "replaced")]
        );
    }

    #[test]
    fn a_plan_larger_than_a_batch_is_read_back_in_order_a_batch_at_a_time() {
        let changes: Vec<Change> = (1..=BATCH + 10)
            .map(|i| create(&i.to_string(), "text"))
            .collect();
        let (_dir, file, _) = saved(changes.clone());
        let verified = read(&file).unwrap();
        let mut sizes = Vec::new();
        verified
            .each_batch(&mut |batch| {
                sizes.push(batch.changes.len());
                Ok(())
            })
            .unwrap();
        assert_eq!(sizes, vec![BATCH, 10]);
        assert_eq!(read_back(&verified), changes);
        assert_eq!(verified.summary().create, BATCH + 10);
        assert_eq!(verified.summary().requests, BATCH + 10);
    }

    #[test]
    fn a_copy_cut_short_is_an_error_not_a_smaller_plan() {
        let (_dir, file, _) = saved(vec![create("1", "one"), create("2", "two")]);
        let verified = read(&file).unwrap();
        let first = serde_json::to_vec(&Spooled {
            id: MediaId::parse("1").unwrap(),
            action: Action::Create,
            fields: FieldSet::of(FieldKind::AltText),
            untracked: FieldSet::default(),
            before: &Metadata::default(),
            after: &create("1", "one").after,
        })
        .unwrap();
        verified.spool.set_len(first.len() as u64 + 1).unwrap();
        let err = format!("{:#}", verified.each_batch(&mut |_| Ok(())).unwrap_err());
        assert!(err.contains("it ends after 1 of 2 changes"), "{err}");
    }
}
