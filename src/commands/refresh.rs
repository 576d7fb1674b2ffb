//! `xmeta refresh PATH...`: read the live alt text of media with a `key` or
//! `type` and record it in the state as X holds it, sending nothing (the
//! way Terraform's `apply -refresh-only` does).

use std::path::PathBuf;

use crate::commands::{check_declared, read_live, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{text, Targets};
use crate::state::{self, StateError};
use crate::x_api::ClientSettings;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    client: &ClientSettings,
    out: Output,
) -> anyhow::Result<Exit> {
    let desired = manifest::load(paths)?;
    check_declared(config, paths, &desired, &Targets::default())?;
    if !state::exists(&config.state)? {
        return Err(StateError::Missing {
            location: config.state.to_string(),
        }
        .into());
    }
    let store = state::open_writer(
        &config.state,
        &config.command_line,
        &config.sources.provenance(paths),
    )?;
    let mut applied = store.all()?;
    let refresh = read_live(
        client,
        &crate::apply::Budget::default(),
        &desired,
        &mut applied,
    )?;
    for drift in &refresh.drifted {
        out.line(&text::drift_header(drift));
        for line in text::drift_diff(drift).lines() {
            out.line(&format!("    {line}"));
        }
        // Recorded as X holds it: the next plan puts back what the
        // manifests want.
        if let Some(record) = applied.get(&drift.id) {
            let recording = state::Recording {
                id: drift.id,
                before: store.get(&drift.id)?.map(|r| r.metadata),
                after: record.metadata.clone(),
            };
            store.record(recording, state::history::Event::Refresh)?;
        }
    }
    for note in text::refresh_notes(&refresh) {
        out.line(&note);
    }
    out.line(&refresh.line());
    out.line(&format!(
        "Recorded {} drifted media as X holds them; nothing was sent.",
        refresh.drifted.len()
    ));
    Ok(Exit::Success)
}
