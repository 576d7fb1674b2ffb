//! What an export must be before `state import` writes the state: of a
//! format this version reads, from a state that existed, whole, and with
//! a history that tells the story of its records. Checked in two passes
//! over the export (its keys may come in any order), keeping per media
//! only a fixed-size summary of what its history leaves it with, so an
//! export of 1,000,000 media is checked in tens of megabytes.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use anyhow::bail;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::export_stream::{self, Header, Stopped, Visit};
use super::state::is_lineage;
use crate::model::{FieldKind, MediaId};
use crate::state::{Entry, Record, FORMAT_VERSION};

/// The first pass: everything that can be checked as the export comes.
/// Returns its header and what the second pass compares the records
/// with.
///
/// `bytes` is the export's size: an export xmeta wrote holds about one
/// media per kilobyte (with its history), and the summary is made that
/// large at once rather than grown, which would hold the old table and
/// the new one together.
pub(super) fn first_pass(
    input: impl Read,
    bytes: u64,
    latest: u64,
) -> anyhow::Result<(Header, Summary)> {
    let expected = usize::try_from(bytes / 1024).unwrap_or(usize::MAX);
    let mut pass = First {
        latest,
        previous: u64::MAX,
        newest: None,
        media: HashMap::with_capacity(expected.min(MAX_PRESIZED)),
        records: 0,
    };
    let header = export_stream::read(input, &mut pass).map_err(Failure::from)?;
    check_header(&header)?;
    if let Some((serial, id)) = pass.newest {
        if serial > header.serial {
            bail!(Failure::damaged(format!(
                "a history entry of media {id} has serial {serial}, after the export's {}",
                header.serial
            )));
        }
    }
    // Sorted, the table takes half the memory of the hash table it was
    // gathered in: the comparison with the state runs beside the second
    // pass, both reading it.
    let mut media: Vec<(MediaId, Last)> = pass.media.into_iter().collect();
    media.sort_unstable_by_key(|(id, _)| *id);
    let summary = Summary {
        media,
        records: pass.records,
    };
    Ok((header, summary))
}

/// The second pass: each record against what its history leaves it with.
/// `explain` reads the export again for one media's history, to say
/// exactly which field does not match.
pub(super) fn second_pass(
    input: impl Read,
    summary: &Summary,
    explain: impl Fn(MediaId) -> anyhow::Result<Lasts>,
) -> anyhow::Result<()> {
    let mut pass = Second {
        summary,
        faulty: None,
    };
    let read = export_stream::read(input, &mut pass);
    if let Some((id, record)) = pass.faulty {
        return Err(explained(id, Some(&record), &explain(id)?));
    }
    read.map_err(Failure::from)?;
    // Media with a history but no record: the history must leave them
    // with nothing. The first by ID is named.
    let faulty = summary
        .media
        .iter()
        .find(|(_, m)| !m.record && m.set != 0)
        .map(|(id, _)| *id);
    match faulty {
        Some(id) => Err(explained(id, None, &explain(id)?)),
        None => Ok(()),
    }
}

/// One media's history, newest first, read to say what it leaves the
/// media with: per field name, the value and serial of its last change.
pub(super) fn lasts_of(input: impl Read, media: MediaId) -> anyhow::Result<Lasts> {
    let mut lasts = Lasts::new();
    export_stream::each_entry(input, |entry| {
        if entry.media == media {
            for (name, change) in entry.fields {
                lasts.entry(name).or_insert((change.after, entry.serial));
            }
        }
        Ok(())
    })
    .map_err(Failure::from)?;
    Ok(lasts)
}

/// Per field name, the value and serial of its last change.
pub(super) type Lasts = BTreeMap<String, (Value, u64)>;

/// Why a check failed: the export is not one, or it is damaged.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    /// The file could not be read to its end.
    #[error("{0}")]
    Unreadable(serde_json::Error),
    #[error("is not a state export ({0})")]
    NotAnExport(serde_json::Error),
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    fn damaged(why: String) -> Failure {
        Failure::Refused(format!("is damaged: {why}; nothing was imported"))
    }
}

impl From<Stopped> for Failure {
    fn from(stopped: Stopped) -> Failure {
        match stopped {
            Stopped::Parse(e) if e.is_io() => Failure::Unreadable(e),
            Stopped::Parse(e) => Failure::NotAnExport(e),
            Stopped::Visit(e) => match e.downcast::<Failure>() {
                Ok(failure) => failure,
                Err(e) => Failure::Refused(format!("{e:#}")),
            },
        }
    }
}

/// The most media the summary is made ready for at once (more grow it).
const MAX_PRESIZED: usize = 4 << 20;

/// What the first pass keeps for the second, per media named by a record
/// or a history entry.
pub(super) struct Summary {
    /// In ID order.
    media: Vec<(MediaId, Last)>,
    records: usize,
}

impl Summary {
    fn get(&self, id: &MediaId) -> Option<&Last> {
        let at = self.media.binary_search_by_key(id, |(id, _)| *id).ok()?;
        Some(&self.media[at].1)
    }

    /// Whether the export holds a record of `id`.
    pub fn has_record(&self, id: &MediaId) -> bool {
        self.get(id).is_some_and(|m| m.record)
    }

    /// Whether the export has a history to compare its records with.
    pub fn has_history(&self) -> bool {
        self.media.iter().any(|(_, m)| m.seen != NONE)
    }

    /// How many records the export holds.
    pub fn records(&self) -> usize {
        self.records
    }
}

/// `Last::seen` of a media without history entries.
const NONE: u64 = u64::MAX;

/// What the export holds of one media, in 40 bytes whatever the length of
/// its history: whether it has a record, and what its history leaves it
/// with: the fields it names (in the order first met, newest first),
/// those left with a value, and a SHA-256 chained over each field's last
/// value in that order.
struct Last {
    record: bool,
    /// The serial of its last entry met (entries come newest first, so a
    /// second one at that serial is a duplicate); `NONE` before any.
    seen: u64,
    /// Field kinds, 4 bits each (13 kinds), in the order first met.
    order: u64,
    count: u8,
    /// One bit per field kind: named / left with a value other than null.
    named: u16,
    set: u16,
    chain: [u8; 16],
}

impl Default for Last {
    fn default() -> Last {
        Last {
            record: false,
            seen: NONE,
            order: 0,
            count: 0,
            named: 0,
            set: 0,
            chain: [0; 16],
        }
    }
}

impl Last {
    /// The chain extended with field `kind`'s last value, `after`.
    fn chained(chain: [u8; 16], kind: FieldKind, after: &Value) -> [u8; 16] {
        let mut hasher = Sha256::new();
        hasher.update(chain);
        hasher.update([kind as u8]);
        // serde_json's maps are sorted: the same value, the same bytes.
        hasher.update(serde_json::to_vec(after).unwrap_or_default());
        let mut out = [0; 16];
        out.copy_from_slice(&hasher.finalize()[..16]);
        out
    }

    /// Notes field `kind`'s change to `after`, unless a newer one was.
    fn note(&mut self, kind: FieldKind, after: &Value) {
        let bit = 1 << kind as u16;
        if self.named & bit != 0 {
            return;
        }
        self.named |= bit;
        if !after.is_null() {
            self.set |= bit;
        }
        self.order |= (kind as u64) << (4 * u32::from(self.count));
        self.count += 1;
        self.chain = Last::chained(self.chain, kind, after);
    }

    /// Whether `record` holds what this history leaves it with.
    fn matches(&self, record: &Record) -> bool {
        let mut chain = [0; 16];
        for i in 0..u32::from(self.count) {
            let index = (self.order >> (4 * i)) & 0xf;
            let kind = FieldKind::ALL[index as usize];
            chain = Last::chained(chain, kind, &held(record, kind));
        }
        chain == self.chain
    }
}

/// A record's field as JSON (null when absent).
fn held(record: &Record, kind: FieldKind) -> Value {
    record
        .metadata
        .get(kind)
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null)
}

struct First {
    /// Unix seconds: no entry may be dated after it.
    latest: u64,
    /// The serial of the entry before.
    previous: u64,
    /// The first entry's serial and media (the newest).
    newest: Option<(u64, MediaId)>,
    /// What the second pass reads (sorted when the pass is done).
    media: HashMap<MediaId, Last>,
    records: usize,
}

impl Visit for First {
    const RECORDS: bool = true;
    const ENTRIES: bool = true;

    fn format_version(&mut self, version: u32) -> anyhow::Result<()> {
        if version > FORMAT_VERSION {
            bail!(Failure::Refused(format!(
                "was exported by a newer xmeta (format {version})"
            )));
        }
        Ok(())
    }

    fn record(&mut self, id: MediaId, record: Record) -> anyhow::Result<()> {
        if !record.is_intact() {
            bail!(Failure::damaged(format!(
                "the record of media {id} does not match its digest"
            )));
        }
        let media = self.media.entry(id).or_default();
        if media.record {
            bail!(Failure::damaged(format!("media {id} has two records")));
        }
        media.record = true;
        self.records += 1;
        Ok(())
    }

    fn entry(&mut self, entry: Entry) -> anyhow::Result<()> {
        let (id, serial) = (entry.media, entry.serial);
        if serial > self.previous {
            bail!(Failure::damaged(format!(
                "its history is not newest first (serial {serial} after serial {})",
                self.previous
            )));
        }
        self.previous = serial;
        self.newest.get_or_insert((serial, id));
        let last = self.media.entry(id).or_default();
        if last.seen == serial {
            bail!(Failure::damaged(format!(
                "the history entry of media {id} at serial {serial} appears twice"
            )));
        }
        last.seen = serial;
        if entry.at.as_unix() > self.latest {
            bail!(Failure::damaged(format!(
                "the history entry of media {id} at serial {serial} is dated {}, in the future",
                entry.at
            )));
        }
        for (name, change) in entry.fields {
            match FieldKind::from_name(&name) {
                Some(kind) => last.note(kind, &change.after),
                // A field this version does not know: no record holds
                // one, so no value of it can be what the record was left
                // with, newest or not (an export of a newer format was
                // refused by its version first).
                None if !change.after.is_null() => {
                    bail!(Failure::damaged(format!(
                        "the history entry of media {id} at serial {serial} sets `{}`, a field this version of xmeta does not know",
                        crate::untrusted::neutralise(&name, 64)
                    )));
                }
                None => {}
            }
        }
        Ok(())
    }
}

struct Second<'a> {
    summary: &'a Summary,
    /// The first record that does not match its history.
    faulty: Option<(MediaId, Record)>,
}

impl Visit for Second<'_> {
    const RECORDS: bool = true;
    const ENTRIES: bool = false;

    fn record(&mut self, id: MediaId, record: Record) -> anyhow::Result<()> {
        match self.summary.get(&id) {
            Some(last) if last.seen != NONE && !last.matches(&record) => {
                self.faulty = Some((id, record));
                bail!("stopped at a record that does not match its history")
            }
            _ => Ok(()),
        }
    }
}

/// Why media `id`'s record does not match its history: the first field
/// by name whose last change left it otherwise (only the fields the
/// history names are compared: a trail may be pruned, or begin after a
/// state of format 1).
fn explained(id: MediaId, record: Option<&Record>, lasts: &Lasts) -> anyhow::Error {
    for (name, (after, serial)) in lasts {
        let shown = crate::untrusted::neutralise(name, 64);
        let value =
            record.map(|r| FieldKind::from_name(name).map_or(Value::Null, |kind| held(r, kind)));
        match value {
            Some(value) if value != *after => {
                return Failure::damaged(format!(
                    "the record of media {id} does not match its history: its {shown} was last set at serial {serial}"
                ))
                .into()
            }
            None if !after.is_null() => {
                return Failure::damaged(format!(
                    "media {id} has no record, but its history leaves it with a {shown} (serial {serial})"
                ))
                .into()
            }
            _ => {}
        }
    }
    // Only if two different chains of SHA-256 met.
    Failure::damaged(format!(
        "the record of media {id} does not match its history"
    ))
    .into()
}

/// The header's own checks (its format version was checked as it was
/// read): a state that existed, with a lineage xmeta
/// could have made, and a serial a state could reach.
fn check_header(header: &Header) -> anyhow::Result<()> {
    // Serials only grow; one near the top would stop every later write.
    if header.serial >= 1 << 53 {
        bail!(Failure::Refused(format!(
            "has serial {}, beyond what a state ever reaches; nothing was imported",
            header.serial
        )));
    }
    if header.lineage.is_empty() {
        bail!(Failure::Refused(
            "has no lineage: it is the export of a state that did not exist; nothing was imported"
                .into()
        ));
    }
    if !is_lineage(&header.lineage) {
        bail!(Failure::Refused(format!(
            "holds `{}`, which is not a lineage (1 to 64 letters, digits or dashes); nothing was imported",
            crate::untrusted::neutralise(&header.lineage, 64)
        )));
    }
    Ok(())
}
