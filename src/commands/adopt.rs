//! `xmeta adopt`: record the manifests' values as applied, sending nothing.

use std::path::PathBuf;

use crate::commands::{check_declared, records_to_compare, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{self, Action, Targets};
use crate::state;

/// Media per atomic write of `adopt`.
const ADOPT_BATCH: usize = 1_000;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    targets: &Targets,
    out: Output,
) -> anyhow::Result<Exit> {
    let mut desired = manifest::load(paths)?;
    check_declared(config, paths, &desired, targets)?;
    if !state::exists(&config.state)? {
        crate::logging::note(&format!(
            "No state at {}: creating a new one.",
            config.state
        ));
    }
    let provenance = config.sources.provenance(paths);
    let store = state::open_writer(&config.state, &config.command_line, &provenance)?;
    // Digests first: only the records that differ are read in full.
    let (applied, unchanged) =
        records_to_compare(&mut desired, &*store, &store.digests()?, targets, false)?;
    let plan = plan::diff(desired, &applied, targets, false);
    let unchanged = plan.unchanged + unchanged;
    // Each batch is one atomic write with its history. sled holds what a
    // batch writes until the database closes: one write of 100,000 records
    // made it hold about 1 GB, batches of 10,000 about 220 MB, and batches
    // of 1,000 about 115 MB, in about the same time. An adopt stopped
    // between two batches leaves the first ones adopted, and a rerun adopts
    // the rest (what is recorded already matches). The records are made a
    // batch at a time, as the changes are used up, so the metadata is never
    // held twice.
    let mut changes = plan
        .changes
        .into_iter()
        .filter(|c| c.action != Action::Forget);
    let mut adopted = 0;
    loop {
        let batch: Vec<state::Recording> = changes
            .by_ref()
            .take(ADOPT_BATCH)
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
        if batch.is_empty() {
            break;
        }
        adopted += batch.len();
        store.record_many(batch, state::history::Event::Adopt)?;
    }
    out.line(&format!(
        "Adopted {adopted} media ({unchanged} already matched); nothing was sent."
    ));
    Ok(Exit::Success)
}
