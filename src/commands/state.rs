//! `xmeta state ...`: list, show, rm, export, import, migrate, unlock,
//! workspace (and history, in `history.rs`).

use anyhow::{anyhow, bail, Context};

use super::state_export::Failed;
use crate::commands::Exit;
use crate::config::{Config, StateAction, WorkspaceAction};
use crate::output::Output;
use crate::state::history::Event;
use crate::state::{self, Location, StateError};

/// Lineages made by xmeta are 32 hex digits; imports may carry others
/// from older tools, but nothing that could disturb a terminal.
pub(super) fn is_lineage(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `state export`: everything needed to rebuild the state elsewhere, as
/// one value. Export and import stream it (`state_export`,
/// `export_stream`); their tests hold them to this layout.
#[cfg(test)]
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Export {
    pub format_version: u32,
    pub lineage: String,
    pub serial: u64,
    pub media: std::collections::BTreeMap<crate::model::MediaId, state::Record>,
    /// Newest first; absent in exports made before format 2.
    #[serde(default)]
    pub history: Option<Vec<state::Entry>>,
}

/// The largest export `state import` reads (one of 1,000,000 media with
/// their history is about 1.1 GB).
pub(super) const MAX_EXPORT_BYTES: u64 = 4 << 30;

pub fn run(config: &Config, action: &StateAction, out: Output) -> anyhow::Result<Exit> {
    let location = &config.state;
    let missing = || StateError::Missing {
        location: location.to_string(),
    };
    match action {
        StateAction::List => {
            let store = state::open_reader(location)?;
            let listed = streamed(out, |w| {
                let (mut listed, mut written) = (0, Ok(()));
                let read = store.each_record(&mut |batch| {
                    for (id, record) in &batch {
                        if let Err(e) = writeln!(w, "{id}\t{}", record.applied_at) {
                            let message = e.to_string();
                            written = Err(e);
                            bail!(message);
                        }
                    }
                    listed += batch.len();
                    Ok(())
                });
                written.map_err(Failed::Write)?;
                read.map_err(Failed::State)?;
                Ok(listed)
            })?;
            tracing::info!("{} media in the state", listed.unwrap_or(0));
        }
        StateAction::Show(id) => {
            let record = state::open_reader(location)?
                .get(id)?
                .ok_or_else(|| anyhow!("media `{id}` is not in the state at `{location}`"))?;
            out.line(&format!("# media {id}, applied {}", record.applied_at));
            out.print(&crate::plan::yaml_text::metadata_yaml(&record.metadata));
        }
        StateAction::Rm(ids) => {
            if !state::exists(location)? {
                return Err(missing().into());
            }
            let store = state::open_writer(location, &config.command_line, &provenance(config))?;
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| matches!(store.get(id), Ok(None)))
                .map(|id| format!("`{id}`"))
                .collect();
            if !missing.is_empty() {
                bail!(
                    "not in the state: {}; nothing was removed",
                    missing.join(", ")
                );
            }
            store.remove(ids, Event::Rm)?;
            out.line(&format!(
                "Removed {} media from the state; nothing was sent.",
                ids.len()
            ));
        }
        StateAction::Export(file) => {
            // A state that moved is still exported: the way to look at (or
            // rescue) what its old copy holds.
            let store = state::open_reader_even_if_moved(location)?;
            if !store.exists() {
                // An empty export would wipe a state it is imported over.
                return Err(missing().into());
            }
            match file {
                Some(file) => {
                    let (mut exported, mut unread) = (0, None);
                    // Nothing replaces `file` unless the whole export was
                    // written.
                    let written = crate::fs_util::write_private_with(file, |w| {
                        match super::state_export::write(&*store, w) {
                            Ok(n) => exported = n,
                            Err(Failed::Write(e)) => return Err(e),
                            Err(Failed::State(e)) => {
                                unread = Some(e);
                                return Err(std::io::Error::other("the state could not be read"));
                            }
                        }
                        Ok(())
                    });
                    if let Some(e) = unread {
                        return Err(e);
                    }
                    written.with_context(|| format!("cannot write `{}`", file.display()))?;
                    tracing::info!("exported {exported} media to `{}`", file.display());
                }
                None => {
                    streamed(out, |w| {
                        let exported = super::state_export::write(&*store, w)?;
                        w.write_all(b"\n").map_err(Failed::Write)?;
                        Ok(exported)
                    })?;
                }
            }
        }
        StateAction::Import { file, force } => super::state_import::run(config, file, *force, out)?,
        StateAction::Migrate { to, keep_source } => {
            migrate(config, location, to, *keep_source, out)?;
        }
        StateAction::Workspace(action) => workspace(location, action, out)?,
        StateAction::History { filter, json } => {
            let store = state::open_reader(location)?;
            streamed(out, |w| super::history::write(&*store, filter, *json, w))?;
        }
        StateAction::PruneHistory { before } => {
            if !state::exists(location)? {
                return Err(missing().into());
            }
            let store = state::open_writer(location, &config.command_line, &provenance(config))?;
            let pruned = store.prune_history(*before)?;
            out.line(&format!(
                "Pruned {pruned} history entr{} made before {before}; the records are unchanged.",
                if pruned == 1 { "y" } else { "ies" }
            ));
        }
        StateAction::Unlock => match state::force_unlock(location)? {
            Some(holder) => out.line(&format!("Removed the state lock held by {holder}.")),
            None => out.line("The state was not locked."),
        },
    }
    Ok(Exit::Success)
}

/// A result streamed to stdout as the state is read: a state that cannot
/// be read is the command's error; a failed write is kept by `Output`
/// (`None` then).
fn streamed<T>(
    out: Output,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<T, Failed>,
) -> anyhow::Result<Option<T>> {
    let (mut done, mut unread) = (None, None);
    out.write_with(|w| match write(w) {
        Ok(value) => {
            done = Some(value);
            Ok(())
        }
        Err(Failed::Write(e)) => Err(e),
        Err(Failed::State(e)) => {
            unread = Some(e);
            Ok(())
        }
    });
    match unread {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// `state migrate --to`: the same lineage, serial and records at another
/// place or backend, so plans and saved plans carry over; a target that
/// holds records is refused (`state import --force` replaces one).
///
/// The source is then marked as moved (after the copy is there, under the
/// source's lock): a later run that still points at it must not plan, and
/// send again, what the target already applied.
fn migrate(
    config: &Config,
    from: &Location,
    to: &Location,
    keep_source: bool,
    out: Output,
) -> anyhow::Result<()> {
    if from.to_string() == to.to_string() {
        bail!("`--to` names the state being migrated ({from})");
    }
    if !state::exists(from)? {
        return Err(StateError::Missing {
            location: from.to_string(),
        }
        .into());
    }
    // The source's lock, held for the copy: nothing it records meanwhile
    // may be left behind in the state that replaces it.
    let source = state::open_writer(from, &config.command_line, &provenance(config))?;
    let lineage = source.lineage()?.unwrap_or_default();
    let serial = source.serial()?;
    let target = state::open_writer(to, &config.command_line, &provenance(config))?;
    let held = target.digests()?.len();
    if held > 0 {
        bail!("the target {to} already holds {held} media; nothing was copied (to replace them, export this state and `xmeta state import --force` it there)");
    }
    // Copied through an export in a private temporary file, the source
    // letting go of what it read (its lock still held) while the target is
    // written: at 1,000,000 media, a sled source's open database holds
    // some 80 MB beside the target's, a bucket source's image some 100 MB.
    // One way for every backend: whatever the source, it is read whole
    // (and a damaged one refused) before the target is touched. State
    // export's and import's own passes.
    let cannot = || {
        format!(
            "cannot write the temporary copy of the state in `{}` (TMPDIR; it takes about 0.65 times the size of `xmeta state export`'s output)",
            std::env::temp_dir().display()
        )
    };
    let copy = tempfile::tempfile().with_context(cannot)?;
    let count = {
        let mut spool = std::io::BufWriter::with_capacity(1 << 16, &copy);
        let compact = super::state_export::Layout::Compact;
        let count =
            super::state_export::write_as(&*source, &mut spool, compact).map_err(|e| match e {
                Failed::State(e) => e,
                Failed::Write(e) => anyhow::Error::new(e).context(cannot()),
            })?;
        std::io::Write::flush(&mut spool).with_context(cannot)?;
        count
    };
    if source.done_reading() {
        tracing::debug!("the source let go of what it read while the copy is written");
        crate::give_back();
    }
    super::state_import::replace(
        &*target,
        &lineage,
        // A target that was used before keeps its higher serial: serials
        // only grow.
        serial.max(target.serial()?),
        &copy,
        super::state_import::History::Export,
    )?;
    let copied =
        format!("Copied {count} media (lineage {lineage}, serial {serial}) from {from} to {to}");
    if keep_source {
        tracing::warn!("--keep-source: the old state at {from} stays live; a run that still uses it plans against a copy that no longer changes, and would send again what is applied through {to}");
        out.line(&format!("{copied}; the old state is unchanged."));
        return Ok(());
    }
    source.mark_moved(&state::Moved::to(to))?;
    out.line(&format!(
        "{copied}; the old state is kept read-only and points there (`xmeta state export` still reads it)."
    ));
    Ok(())
}

/// `state workspace list|new|delete`.
fn workspace(location: &Location, action: &WorkspaceAction, out: Output) -> anyhow::Result<()> {
    match action {
        WorkspaceAction::List => {
            for name in state::workspaces::list(location)? {
                out.line(&name);
            }
        }
        WorkspaceAction::New(name) => {
            state::workspaces::create(location, name)?;
            out.line(&format!(
                "Created workspace `{name}`; use it with --workspace {name}."
            ));
        }
        WorkspaceAction::Delete { name, force } => {
            let media = state::workspaces::delete(location, name, *force)?;
            out.line(&format!(
                "Deleted workspace `{name}` and the {media} media it held; nothing was sent."
            ));
        }
    }
    Ok(())
}

/// State commands act on no manifests: the revision is the working
/// directory's repository, if any.
pub(super) fn provenance(config: &Config) -> state::Provenance {
    config.sources.provenance(&[std::path::PathBuf::from(".")])
}
