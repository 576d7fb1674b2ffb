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

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};

use super::export_stream::{self, Stopped};
use super::import_check::{self, Failure};
use super::state::{provenance, MAX_EXPORT_BYTES};
use crate::config::Config;
use crate::hashing::Hashing;
use crate::model::MediaId;
use crate::output::Output;
use crate::state::history::Event;
use crate::state::{self, Entry, Filter, Record, StateReader, StateWriter};
use crate::time::Timestamp;

/// How far ahead of this machine's clock an entry may be dated: another
/// runner's clock may run a little fast, an entry from 9999 may not.
const CLOCK_SKEW_SECS: u64 = 300;

/// Read and write buffers of the export's passes.
const BUFFER: usize = 1 << 16;

pub fn run(config: &Config, file: &Path, force: bool, out: Output) -> anyhow::Result<()> {
    let location = &config.state;
    let shown = file.display();
    let refused = |e: anyhow::Error| match e.downcast::<Failure>() {
        Ok(Failure::Unreadable(e)) => anyhow!("cannot read `{shown}`: {e}"),
        Ok(failure) => anyhow!("`{shown}` {failure}"),
        Err(e) => e,
    };
    let opened = crate::intake::open(file, None, MAX_EXPORT_BYTES)
        .map_err(|e| anyhow!("cannot read `{shown}`: {e}"))?;
    let bytes = opened.meta.len();
    // Copied as it is read and checked: every later pass reads the bytes
    // that were checked, whatever happens to the file meanwhile.
    let copy = tempfile::tempfile().context("cannot make a temporary copy of the export")?;
    let input = Hashing::new(Tee {
        from: opened.stream(),
        to: BufWriter::with_capacity(BUFFER, &copy),
    });
    let latest = Timestamp::now().as_unix() + CLOCK_SKEW_SECS;
    // Copied and hashed on a thread of its own, ahead of the parse.
    let (first, hashing) = crate::read_ahead::read_ahead(input, |ahead| {
        // serde_json reads a byte at a time: `BufReader` has the fast path.
        import_check::first_pass(BufReader::with_capacity(BUFFER, ahead), bytes, latest)
    });
    let (header, summary) = first.map_err(refused)?;
    let digest = hex::encode(hashing.finish());
    // The second pass: each record against its history. Nothing is
    // written before it passed.
    let second_pass = |summary: &import_check::Summary| -> anyhow::Result<()> {
        if !summary.has_history() {
            return Ok(());
        }
        import_check::second_pass(again(&copy), summary, |id| {
            import_check::lasts_of(again(&copy), id)
        })
        .map_err(refused)
    };

    // Opening the state creates (or upgrades) it: the check comes first,
    // so a damaged export leaves nothing behind, except when a forced
    // import meets a state that is there. The check then runs beside
    // the comparison with that state, which only reads it.
    let check_beside = force && state::exists(location)?;
    if !check_beside {
        second_pass(&summary)?;
    }
    let provenance = provenance(config);
    let store = state::open_writer(location, &config.command_line, &provenance)?;
    // The serial moves past both this state's and the export's, so a plan
    // saved against either is seen as stale.
    let serial = store.serial()?.max(header.serial) + 1;
    let at = Timestamp::now();
    let lineage = &header.lineage;
    let records = summary.records();

    if !holds_anything(&*store)? {
        if check_beside {
            second_pass(&summary)?;
        }
        // Its tables go before the state is written: the two peaks apart.
        drop(summary);
        let history = if header.history {
            History::Export
        } else if provenance.off {
            History::None
        } else {
            // An export without history gets one `import` entry per media.
            History::Made(&|id, record: &Record| {
                Entry::new(
                    id,
                    Event::Import,
                    None,
                    Some(&record.metadata),
                    &provenance,
                    serial,
                    at,
                )
            })
        };
        replace(&*store, lineage, serial, &copy, history)?;
        out.line(&format!("Imported {records} media into `{location}`."));
        return Ok(());
    }

    if !force {
        let current = store.lineage()?.unwrap_or_default();
        let other = if current == *lineage {
            String::new()
        } else {
            format!(
                " (`{shown}` is an export of another state: lineage `{lineage}`, this one is `{current}`)",
            )
        };
        let (held, trail) = counts(&*store)?;
        bail!(
            "the state at `{location}` holds {held} media and {trail} history entries{other}; pass --force to replace its records (its history is kept, with one `import` entry per changed media); nothing was imported",
        );
    }

    // The import's own entries, even with --no-history: a trail that is
    // there must say that its records were replaced.
    let by = state::Provenance {
        revision: Some(format!("sha256:{digest}")),
        dirty: false,
        off: false,
        ..provenance
    };
    // Newest first: the import's own entries, then the trail, spooled to
    // a temporary file because the state is emptied before it is filled.
    let spool = tempfile::tempfile().context("cannot make a temporary file for the history")?;
    let mut spooled = BufWriter::with_capacity(BUFFER, &spool);
    let mut spool_entry = |entry: &Entry| -> anyhow::Result<()> {
        serde_json::to_writer(&mut spooled, entry)?;
        spooled.write_all(b"\n")?;
        Ok(())
    };
    let mut changed = 0;
    let mut compared = |id, before: Option<&Record>, after: Option<&Record>| {
        let (before, after) = (before.map(|r| &r.metadata), after.map(|r| &r.metadata));
        if before == after {
            return Ok(());
        }
        changed += 1;
        spool_entry(&Entry::new(
            id,
            Event::Import,
            before,
            after,
            &by,
            serial,
            at,
        ))
    };
    let (checked, held) = std::thread::scope(|s| {
        let checking = s.spawn(|| {
            if check_beside {
                second_pass(&summary)
            } else {
                Ok(())
            }
        });
        let held = compare(&*store, &copy, &summary, &mut compared);
        let checked = checking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, held)
    });
    checked?;
    let held = held?;
    drop(summary);
    let mut kept = 0;
    store.each_entry(&Filter::default(), &mut |e| {
        kept += 1;
        spool_entry(&e)
    })?;
    spooled
        .flush()
        .context("cannot write the temporary file for the history")?;
    drop(spooled);
    replace(&*store, lineage, serial, &copy, History::Spool(&spool))?;
    out.line(&format!(
        "Imported {records} media, replacing the {held} the state held ({changed} changed); its {kept} history entries are kept, with {changed} `import` entr{} added.",
        if changed == 1 { "y" } else { "ies" }
    ));
    Ok(())
}

/// What the import does with each media the state or the export holds:
/// its held record and its exported one.
type Compared<'a> = dyn FnMut(MediaId, Option<&Record>, Option<&Record>) -> anyhow::Result<()> + 'a;

/// Compares the export's records with the state's by their digests (the
/// ones every plan compares with): only the records of media whose digest
/// differs, and of those the export does not hold, are read from the
/// state, a batch at a time (an export of the state itself reads none).
/// Each media the export does not hold comes before the first exported
/// one above it, so an export in ID order (as `state export` writes it)
/// is compared, and its `import` entries written, in ID order. Returns
/// how many records the state held.
fn compare(
    store: &dyn StateWriter,
    copy: &File,
    exported: &import_check::Summary,
    compared: &mut Compared<'_>,
) -> anyhow::Result<usize> {
    let digests = store.digests()?;
    let mut held = digests.iter().map(|(id, _)| *id).peekable();
    let mut batch = Batch {
        store,
        media: Vec::with_capacity(state::RECORD_BATCH),
    };
    // The state's media below `below` (all that are left, if `None`) that
    // the export does not hold: each one removed.
    let mut removed_below =
        |below: Option<MediaId>, batch: &mut Batch<'_>, compared: &mut Compared<'_>| {
            while let Some(id) = held.next_if(|id| below.is_none_or(|below| *id < below)) {
                if !exported.has_record(&id) {
                    batch.push(id, None, compared)?;
                }
            }
            anyhow::Ok(())
        };
    export_stream::each_record(again(copy), |id, record| {
        removed_below(Some(id), &mut batch, compared)?;
        // The first pass checked each record against its digest.
        let same = digests
            .get(&id)
            .is_some_and(|held| held.is_stated_as(&record.digest));
        if !same {
            batch.push(id, Some(record), compared)?;
        }
        Ok(())
    })
    .map_err(unexpected)?;
    removed_below(None, &mut batch, compared)?;
    batch.compare(compared)?;
    Ok(digests.len())
}

/// Media to compare with the state's records, each with its exported
/// record (`None`: removed), compared a batch at a time: one read of the
/// state each.
struct Batch<'a> {
    store: &'a dyn StateWriter,
    media: Vec<(MediaId, Option<Record>)>,
}

impl Batch<'_> {
    fn push(
        &mut self,
        id: MediaId,
        exported: Option<Record>,
        compared: &mut Compared<'_>,
    ) -> anyhow::Result<()> {
        self.media.push((id, exported));
        if self.media.len() == state::RECORD_BATCH {
            self.compare(compared)?;
        }
        Ok(())
    }

    fn compare(&mut self, compared: &mut Compared<'_>) -> anyhow::Result<()> {
        let ids: Vec<MediaId> = self.media.iter().map(|(id, _)| *id).collect();
        let held = self.store.get_present(&ids)?;
        for (id, exported) in self.media.drain(..) {
            compared(id, held.get(&id), exported.as_ref())?;
        }
        Ok(())
    }
}

/// Where the new state's history comes from.
pub(super) enum History<'a> {
    /// The export's own.
    Export,
    /// One entry per record, made by the function.
    Made(&'a dyn Fn(MediaId, &Record) -> Entry),
    /// A temporary file of entries, one JSON per line, newest first.
    Spool(&'a File),
    None,
}

/// Puts the export's records, and `history`, in place of the state.
pub(super) fn replace(
    store: &dyn StateWriter,
    lineage: &str,
    serial: u64,
    copy: &File,
    history: History<'_>,
) -> anyhow::Result<()> {
    store.replace_all(state::Replacement {
        lineage,
        serial,
        // Parsed on another core, a batch ahead of the state's writes:
        // an import of 1,000,000 media spends most of its time in them.
        records: &mut |visit| {
            crate::read_ahead::batches_ahead(
                state::RECORD_BATCH,
                |give| {
                    export_stream::each_record(again(copy), |id, record| give((id, record)))
                        .map(|_| ())
                        .map_err(unexpected)
                },
                &mut *visit,
            )
        },
        history: &mut |visit| match &history {
            History::Export => crate::read_ahead::batches_ahead(
                state::RECORD_BATCH,
                |give| {
                    export_stream::each_entry(again(copy), give)
                        .map(|_| ())
                        .map_err(unexpected)
                },
                |entries| entries.into_iter().try_for_each(&mut *visit),
            ),
            History::Made(make) => {
                export_stream::each_record(again(copy), |id, record| visit(make(id, &record)))
                    .map(|_| ())
                    .map_err(unexpected)
            }
            History::Spool(spool) => {
                let mut lines = BufReader::with_capacity(BUFFER, rewound(spool));
                let mut line = Vec::new();
                while lines.read_until(b'\n', &mut line)? > 0 {
                    visit(serde_json::from_slice(&line)?)?;
                    line.clear();
                }
                Ok(())
            }
            History::None => Ok(()),
        },
    })
}

/// A later pass's error: the copy was checked whole, so only the state
/// (the visitor's own error) or the temporary file can fail it.
fn unexpected(stopped: Stopped) -> anyhow::Error {
    match stopped {
        Stopped::Visit(e) => e,
        Stopped::Parse(e) => anyhow!("cannot read the temporary copy of the export: {e}"),
    }
}

/// The checked copy of the export, from its start.
fn again(copy: &File) -> impl Read + '_ {
    BufReader::with_capacity(BUFFER, rewound(copy))
}

/// One of this command's own temporary files, from its start: not a
/// user's file (those go through `intake`), but an unnamed file made by
/// `tempfile`, holding the checked copy of the export or the spooled
/// history. Each reader keeps its own offset (positioned reads), so two
/// passes may read it at once.
fn rewound(file: &File) -> Rewound<'_> {
    Rewound { file, at: 0 }
}

struct Rewound<'a> {
    file: &'a File,
    at: u64,
}

impl Read for Rewound<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Whether the state holds a record or a history entry: read as far as
/// the first.
fn holds_anything(store: &(impl StateReader + ?Sized)) -> anyhow::Result<bool> {
    #[derive(Debug, thiserror::Error)]
    #[error("found one")]
    struct Found;
    let found = |read: anyhow::Result<()>| match read {
        Ok(()) => Ok(false),
        Err(e) if e.is::<Found>() => Ok(true),
        Err(e) => Err(e),
    };
    let record = store.each_record(&mut |batch| {
        if batch.is_empty() {
            Ok(())
        } else {
            Err(Found.into())
        }
    });
    Ok(found(record)? || found(store.each_entry(&Filter::default(), &mut |_| Err(Found.into())))?)
}

/// How many records and history entries the state holds.
fn counts(store: &(impl StateReader + ?Sized)) -> anyhow::Result<(usize, usize)> {
    let (mut records, mut entries) = (0, 0);
    store.each_record(&mut |batch| {
        records += batch.len();
        Ok(())
    })?;
    store.each_entry(&Filter::default(), &mut |_| {
        entries += 1;
        Ok(())
    })?;
    Ok((records, entries))
}

/// The export as it is read, written to its copy on the way.
struct Tee<R, W> {
    from: R,
    to: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buf)?;
        // Said as such: the user's file was read, the copy not written.
        let copying = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write its temporary copy (in TMPDIR): {e}"),
            )
        };
        if n == 0 {
            self.to.flush().map_err(copying)?;
        }
        self.to.write_all(&buf[..n]).map_err(copying)?;
        Ok(n)
    }
}
