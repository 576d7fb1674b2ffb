//! `xmeta state import`: an export's records into a state, the audit trail
//! kept append-only.
//!
//! Into a state that holds nothing, the export comes in whole (records and
//! history). Into a state that holds records or history, only with
//! `--force`: the records are replaced, but the state's own history stays
//! as it is and gains one `import` entry per media whose record changed
//! (by whoever imported, naming the export file's digest), so an edited
//! export can never rewrite or erase who did what. Either way an export
//! whose history does not tell the story of its records is refused.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::state::{is_lineage, provenance, Export, MAX_EXPORT_BYTES};
use crate::config::Config;
use crate::model::{FieldKind, MediaId};
use crate::output::Output;
use crate::state::history::Event;
use crate::state::{self, Entry, Filter, Record, StateWriter, FORMAT_VERSION};
use crate::time::Timestamp;

/// How far ahead of this machine's clock an entry may be dated: another
/// runner's clock may run a little fast, an entry from 9999 may not.
const CLOCK_SKEW_SECS: u64 = 300;

pub fn run(config: &Config, file: &Path, force: bool, out: Output) -> anyhow::Result<()> {
    let location = &config.state;
    let text = crate::intake::read(file, None, MAX_EXPORT_BYTES)
        .map_err(|e| anyhow!("cannot read `{}`: {e}", file.display()))?;
    let export: Export = serde_json::from_slice(&text)
        .map_err(|e| anyhow!("`{}` is not a state export ({e})", file.display()))?;
    check(file, &export)?;
    let provenance = provenance(config);
    let store = state::open_writer(location, &config.command_line, &provenance)?;
    let held = store.all()?;
    let trail = store.history(&Filter::default())?;
    // The serial moves past both this state's and the export's, so a plan
    // saved against either is seen as stale.
    let serial = store.serial()?.max(export.serial) + 1;
    let at = Timestamp::now();

    if held.is_empty() && trail.is_empty() {
        // An export without history gets one `import` entry per media.
        let history = export.history.clone().unwrap_or_else(|| {
            if provenance.off {
                return Vec::new();
            }
            let entry = |(id, r): (&MediaId, &Record)| {
                Entry::new(
                    *id,
                    Event::Import,
                    None,
                    Some(&r.metadata),
                    &provenance,
                    serial,
                    at,
                )
            };
            export.media.iter().map(entry).collect()
        });
        replace(&*store, &export.lineage, serial, &export.media, &history)?;
        out.line(&format!(
            "Imported {} media into `{location}`.",
            export.media.len(),
        ));
        return Ok(());
    }

    if !force {
        let current = store.lineage()?.unwrap_or_default();
        let other = if current == export.lineage {
            String::new()
        } else {
            format!(
                " (`{}` is an export of another state: lineage `{}`, this one is `{current}`)",
                file.display(),
                export.lineage
            )
        };
        bail!(
            "the state at `{location}` holds {} media and {} history entries{other}; pass --force to replace its records (its history is kept, with one `import` entry per changed media); nothing was imported",
            held.len(),
            trail.len(),
        );
    }

    // The import's own entries, even with --no-history: a trail that is
    // there must say that its records were replaced.
    let by = state::Provenance {
        revision: Some(format!("sha256:{}", hex::encode(Sha256::digest(&text)))),
        dirty: false,
        off: false,
        ..provenance
    };
    let ids: BTreeSet<&MediaId> = held.keys().chain(export.media.keys()).collect();
    let added: Vec<Entry> = ids
        .into_iter()
        .filter_map(|id| {
            let before = held.get(id).map(|r| &r.metadata);
            let after = export.media.get(id).map(|r| &r.metadata);
            (before != after)
                .then(|| Entry::new(*id, Event::Import, before, after, &by, serial, at))
        })
        .collect();
    let (kept, changed) = (trail.len(), added.len());
    // Newest first: the import's own entries, then the trail.
    let mut history = added;
    history.extend(trail);
    replace(&*store, &export.lineage, serial, &export.media, &history)?;
    out.line(&format!(
        "Imported {} media, replacing the {} the state held ({changed} changed); its {kept} history entries are kept, with {changed} `import` entr{} added.",
        export.media.len(),
        held.len(),
        if changed == 1 { "y" } else { "ies" }
    ));
    Ok(())
}

/// Puts `records` and `history` (newest first) in place of the state.
fn replace(
    store: &dyn StateWriter,
    lineage: &str,
    serial: u64,
    records: &BTreeMap<MediaId, Record>,
    history: &[Entry],
) -> anyhow::Result<()> {
    store.replace_all(state::Replacement {
        lineage,
        serial,
        records: &mut |visit| {
            let mut batch = Vec::with_capacity(state::RECORD_BATCH);
            for (id, record) in records {
                batch.push((*id, record.clone()));
                if batch.len() == state::RECORD_BATCH {
                    visit(std::mem::take(&mut batch))?;
                }
            }
            visit(batch)
        },
        history: &mut |visit| history.iter().try_for_each(|entry| visit(entry.clone())),
    })
}

/// What an export must be before anything is opened: of a format this
/// version reads, from a state that existed, whole, and consistent.
fn check(file: &Path, export: &Export) -> anyhow::Result<()> {
    if export.format_version > FORMAT_VERSION {
        bail!(
            "`{}` was exported by a newer xmeta (format {})",
            file.display(),
            export.format_version
        );
    }
    // Serials only grow; one near the top would stop every later write.
    if export.serial >= 1 << 53 {
        bail!(
            "`{}` has serial {}, beyond what a state ever reaches; nothing was imported",
            file.display(),
            export.serial
        );
    }
    if export.lineage.is_empty() {
        bail!("`{}` has no lineage: it is the export of a state that did not exist; nothing was imported", file.display());
    }
    if !is_lineage(&export.lineage) {
        bail!(
            "`{}` holds `{}`, which is not a lineage (1 to 64 letters, digits or dashes); nothing was imported",
            file.display(),
            crate::untrusted::neutralise(&export.lineage, 64)
        );
    }
    if let Some((id, _)) = export.media.iter().find(|(_, r)| !r.is_intact()) {
        bail!("`{}` is damaged: the record of media {id} does not match its digest; nothing was imported", file.display());
    }
    if let Some(history) = &export.history {
        let latest = Timestamp::now().as_unix() + CLOCK_SKEW_SECS;
        if let Some(why) = inconsistency(export, history, latest) {
            bail!(
                "`{}` is damaged: {why}; nothing was imported",
                file.display()
            );
        }
    }
    Ok(())
}

/// The first way an export's history does not fit its records, if any:
/// entries newest first, each (serial, media) once, none dated after
/// `latest` (Unix seconds) or after the export's serial, and each field's
/// last change equal to what the record holds (or, for a media without a
/// record, leaving it absent).
///
/// Only the fields the history names are compared: a trail may be pruned,
/// or begin after a state of format 1, and say nothing of older changes.
fn inconsistency(export: &Export, history: &[Entry], latest: u64) -> Option<String> {
    let mut seen = HashSet::new();
    // Per media and field, the newest change: the value it was left with.
    let mut last: BTreeMap<(MediaId, &str), (&Value, u64)> = BTreeMap::new();
    let mut previous = u64::MAX;
    for entry in history {
        let (id, serial) = (entry.media, entry.serial);
        if serial > export.serial {
            return Some(format!(
                "a history entry of media {id} has serial {serial}, after the export's {}",
                export.serial
            ));
        }
        if serial > previous {
            return Some(format!(
                "its history is not newest first (serial {serial} after serial {previous})"
            ));
        }
        previous = serial;
        if !seen.insert((serial, id)) {
            return Some(format!(
                "the history entry of media {id} at serial {serial} appears twice"
            ));
        }
        if entry.at.as_unix() > latest {
            return Some(format!(
                "the history entry of media {id} at serial {serial} is dated {}, in the future",
                entry.at
            ));
        }
        for (name, change) in &entry.fields {
            last.entry((id, name.as_str()))
                .or_insert((&change.after, serial));
        }
    }
    for ((id, name), (after, serial)) in last {
        let held = export.media.get(&id).map(|r| {
            FieldKind::from_name(name)
                .and_then(|kind| r.metadata.get(kind))
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or(Value::Null)
        });
        match held {
            Some(value) if value != *after => {
                return Some(format!(
                    "the record of media {id} does not match its history: its {name} was last set at serial {serial}"
                ))
            }
            None if !after.is_null() => {
                return Some(format!(
                    "media {id} has no record, but its history leaves it with a {name} (serial {serial})"
                ))
            }
            _ => {}
        }
    }
    None
}
