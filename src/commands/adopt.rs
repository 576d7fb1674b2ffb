//! `xmeta adopt`: record the manifests' values as applied, sending nothing.

use std::path::PathBuf;

use crate::commands::{check_declared, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{self, Action, Targets};
use crate::state;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    targets: &Targets,
    out: Output,
) -> anyhow::Result<Exit> {
    let desired = manifest::load(paths)?;
    check_declared(config, paths, &desired, targets)?;
    if !state::exists(&config.state)? {
        crate::logging::note(&format!(
            "No state at {}: creating a new one.",
            config.state
        ));
    }
    let provenance = config.sources.provenance(paths);
    let store = state::open_writer(&config.state, &config.command_line, &provenance)?;
    // Read once: the state of 100,000 records is the largest thing here.
    let applied = store.all()?;
    let plan = plan::diff(desired, &applied, targets, false);
    let records: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Forget)
        .map(|c| {
            let before = applied.get(&c.id).map(|r| r.metadata.clone());
            let after = c.next_record(before.as_ref());
            state::Recording {
                id: c.id,
                before,
                after,
            }
        })
        .collect();
    drop(applied);
    let adopted = records.len();
    store.record_many(records, state::history::Event::Adopt)?;
    out.line(&format!(
        "Adopted {adopted} media ({} already matched); nothing was sent.",
        plan.unchanged
    ));
    Ok(Exit::Success)
}
