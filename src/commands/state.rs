//! `xmeta state ...`: list, show, rm, export, import, migrate, unlock,
//! workspace (and history, in `history.rs`).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use crate::commands::Exit;
use crate::config::{Config, StateAction, WorkspaceAction};
use crate::model::MediaId;
use crate::output::Output;
use crate::state::history::Event;
use crate::state::{self, Entry, Filter, Location, Record, StateError, FORMAT_VERSION};

/// Lineages made by xmeta are 32 hex digits; imports may carry others
/// from older tools, but nothing that could disturb a terminal.
fn is_lineage(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `state export`: everything needed to rebuild the state elsewhere.
#[derive(Serialize, Deserialize)]
struct Export {
    format_version: u32,
    lineage: String,
    serial: u64,
    media: BTreeMap<MediaId, Record>,
    /// Newest first; absent in exports made before format 2.
    #[serde(default)]
    history: Option<Vec<Entry>>,
}

/// The largest export `state import` reads (one of 1,000,000 media with
/// their history is about 1.1 GB).
const MAX_EXPORT_BYTES: u64 = 4 << 30;

pub fn run(config: &Config, action: &StateAction, out: Output) -> anyhow::Result<Exit> {
    let location = &config.state;
    let missing = || StateError::Missing {
        location: location.to_string(),
    };
    match action {
        StateAction::List => {
            let records = state::open_reader(location)?.all()?;
            for (id, record) in &records {
                out.line(&format!("{id}\t{}", record.applied_at));
            }
            tracing::info!("{} media in the state", records.len());
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
            let export = Export {
                format_version: FORMAT_VERSION,
                // An existing state has one; the format's "" is "none".
                lineage: store.lineage()?.unwrap_or_default(),
                serial: store.serial()?,
                media: store.all()?,
                history: Some(store.history(&Filter::default())?),
            };
            let json = crate::untrusted::json_pretty(&export)?;
            match file {
                Some(file) => {
                    crate::fs_util::write_private(file, json.as_bytes())
                        .with_context(|| format!("cannot write `{}`", file.display()))?;
                    tracing::info!(
                        "exported {} media to `{}`",
                        export.media.len(),
                        file.display()
                    );
                }
                None => out.line(&json),
            }
        }
        StateAction::Import { file, force } => {
            let text = crate::intake::read(file, None, MAX_EXPORT_BYTES)
                .map_err(|e| anyhow!("cannot read `{}`: {e}", file.display()))?;
            let export: Export = serde_json::from_slice(&text)
                .map_err(|e| anyhow!("`{}` is not a state export ({e})", file.display()))?;
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
            let provenance = provenance(config);
            let store = state::open_writer(location, &config.command_line, &provenance)?;
            let current = store.lineage()?;
            if current.as_deref() != Some(export.lineage.as_str())
                && !*force
                && !store.all()?.is_empty()
            {
                bail!(
                    "`{}` is an export of state lineage `{}`, but the state at `{location}` is lineage `{}` and holds media; pass --force to replace it (its records are lost)",
                    file.display(),
                    export.lineage,
                    current.unwrap_or_default(),
                );
            }
            // The serial moves past both this state's and the export's, so
            // a plan saved against either is seen as stale.
            let serial = store.serial()?.max(export.serial) + 1;
            if let Some(history) = &export.history {
                check_history(file, history, export.serial)?;
            }
            // An export without history gets one `import` entry per media.
            let history = export.history.clone().unwrap_or_else(|| {
                if provenance.off {
                    return Vec::new();
                }
                let at = crate::time::Timestamp::now();
                export
                    .media
                    .iter()
                    .map(|(id, r)| {
                        Entry::new(
                            *id,
                            Event::Import,
                            None,
                            Some(&r.metadata),
                            &provenance,
                            serial,
                            at,
                        )
                    })
                    .collect()
            });
            store.replace_all(&export.lineage, serial, &export.media, &history)?;
            out.line(&format!(
                "Imported {} media into `{location}`.",
                export.media.len(),
            ));
        }
        StateAction::Migrate { to, keep_source } => {
            migrate(config, location, to, *keep_source, out)?;
        }
        StateAction::Workspace(action) => workspace(location, action, out)?,
        StateAction::History { filter, json } => {
            let entries = state::open_reader(location)?.history(filter)?;
            out.print(&super::history::render(&entries, *json)?);
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
    let (serial, records) = (source.serial()?, source.all()?);
    let history = source.history(&Filter::default())?;
    let target = state::open_writer(to, &config.command_line, &provenance(config))?;
    let held = target.all()?.len();
    if held > 0 {
        bail!("the target {to} already holds {held} media; nothing was copied (to replace them, export this state and `xmeta state import --force` it there)");
    }
    // A target that was used before keeps its higher serial: serials only grow.
    target.replace_all(&lineage, serial.max(target.serial()?), &records, &history)?;
    let copied = format!(
        "Copied {} media (lineage {lineage}, serial {serial}) from {from} to {to}",
        records.len()
    );
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

/// Imported entries must fit the state they join: serials no later than
/// the export's (or later writes would collide with them), times that
/// compare as times.
fn check_history(file: &std::path::Path, history: &[Entry], serial: u64) -> anyhow::Result<()> {
    for entry in history {
        if entry.serial > serial {
            bail!(
                "`{}` is damaged: a history entry of media {} has serial {}, after the export's {serial}; nothing was imported",
                file.display(),
                entry.media,
                entry.serial
            );
        }
    }
    Ok(())
}

/// State commands act on no manifests: the revision is the working
/// directory's repository, if any.
fn provenance(config: &Config) -> state::Provenance {
    config.sources.provenance(&[std::path::PathBuf::from(".")])
}
