//! `xmeta adopt`: record the manifests' values as applied, sending nothing.

use std::path::PathBuf;

use crate::commands::Exit;
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{self, Action, Targets};
use crate::state::StateStore;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    targets: &Targets,
    out: Output,
) -> anyhow::Result<Exit> {
    let desired = manifest::load(paths)?;
    let store = StateStore::open_writer(&config.state_dir, &config.command_line)?;
    let plan = plan::diff(&desired, &store.all()?, targets, false);
    let mut adopted = 0;
    for change in plan.changes.iter().filter(|c| c.action != Action::Forget) {
        let current = store.get(&change.id)?.map(|r| r.metadata);
        store.record(&change.id, change.next_record(current.as_ref()))?;
        adopted += 1;
    }
    out.line(&format!(
        "Adopted {adopted} media ({} already matched); nothing was sent.",
        plan.unchanged
    ));
    Ok(Exit::Success)
}
