//! `xmeta adopt`: record the manifests' values as applied, sending nothing.

use std::path::PathBuf;

use crate::commands::{check_declared, records_to_compare, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{self, Action, Targets};
use crate::state;

/// Media per atomic write of `adopt`.
const ADOPT_BATCH: usize = 10_000;

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
        records_to_compare(&mut desired, &*store, store.digests()?, targets, false)?;
    let mut plan = plan::diff(desired, &applied, targets, false);
    plan.unchanged += unchanged;
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
    // Each batch is one atomic write with its history. One write of
    // 100,000 records made sled hold about 1 GB; batches of this size keep
    // a first adopt under 300 MB. An adopt stopped between two batches
    // leaves the first ones adopted, and a rerun adopts the rest (what is
    // recorded already matches).
    let mut records = records;
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(ADOPT_BATCH));
        store.record_many(records, state::history::Event::Adopt)?;
        records = rest;
    }
    out.line(&format!(
        "Adopted {adopted} media ({} already matched); nothing was sent.",
        plan.unchanged
    ));
    Ok(Exit::Success)
}
