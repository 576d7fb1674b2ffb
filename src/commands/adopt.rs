//! `xmeta adopt`: record the manifests' values as applied, sending nothing.

use std::path::PathBuf;

use crate::commands::Exit;
use crate::config::Config;
use crate::output::Output;
use crate::plan::{Action, Targets};
use crate::{planner, state};

/// Media per atomic write of `adopt`.
const ADOPT_BATCH: usize = 1_000;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    targets: &Targets,
    out: Output,
) -> anyhow::Result<Exit> {
    let (adopted, unchanged) = record(config, paths, targets, state::history::Event::Adopt)?;
    out.line(&format!(
        "Adopted {adopted} media ({unchanged} already matched); nothing was sent."
    ));
    Ok(Exit::Success)
}

/// Records the manifests under `paths` as applied, with history entries
/// of `event` (`import --adopt` says `import`): how many media were
/// recorded, and how many already matched.
pub fn record(
    config: &Config,
    paths: &[PathBuf],
    targets: &Targets,
    event: state::history::Event,
) -> anyhow::Result<(usize, usize)> {
    let provenance = config.sources.provenance(paths);
    let open = || state::open_writer(&config.state, &config.command_line, &provenance);
    let inputs = planner::Inputs::new(paths, targets, None, config.allow_empty)?;
    let (plan, held) =
        planner::plan_for_writer(&inputs, &config.state, &config.command_line, &provenance)?;
    let store = planner::writer_for(held, &config.state, open)?;
    let unchanged = plan.unchanged;
    // What is recorded now for the media that change (for the history and
    // the fields kept), in one bulk read: sled lets go of a bulk read's
    // pages by opening the database again, too slow to do once a batch.
    let updated: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Update)
        .map(|c| c.id)
        .collect();
    let mut current = store.get_many(&updated)?;
    // Each batch is one atomic write with its history. sled holds what a
    // batch writes until the database closes (one write of 100,000 records
    // held about 1 GB, batches of 1,000 about 115 MB, in the same time). An
    // adopt stopped between batches leaves the first ones adopted; a rerun
    // adopts the rest. Records are made as the changes are used up.
    let mut changes = plan
        .changes
        .into_iter()
        .filter(|c| c.action != Action::Forget);
    let mut adopted = 0;
    loop {
        let batch = changes.by_ref().take(ADOPT_BATCH).collect::<Vec<_>>();
        if batch.is_empty() {
            break;
        }
        let batch: Vec<state::Recording> = batch
            .into_iter()
            .map(|c| {
                let before = current.remove(&c.id).map(|r| r.metadata);
                let after = c.next_record(before.as_ref());
                state::Recording {
                    id: c.id,
                    before,
                    after,
                }
            })
            .collect();
        adopted += batch.len();
        store.record_many(batch, event)?;
        // sled's pages of the batches written so far: let go of now and
        // then (see `SETTLE_BYTES`).
        store.settle();
    }
    Ok((adopted, unchanged))
}
