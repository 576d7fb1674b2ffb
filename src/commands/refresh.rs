//! `xmeta refresh PATH...`: read the live alt text of media with a `key` or
//! `type` and record it in the state as X holds it, sending nothing (the
//! way Terraform's `apply -refresh-only` does).

use std::path::PathBuf;

use crate::commands::Exit;
use crate::config::Config;
use crate::output::Output;
use crate::plan::{text, Targets};
use crate::planner;
use crate::state::{self, StateError};
use crate::x_api::ClientSettings;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    client: &ClientSettings,
    out: Output,
) -> anyhow::Result<Exit> {
    if !state::exists(&config.state)? {
        return Err(StateError::Missing {
            location: config.state.to_string(),
        }
        .into());
    }
    let targets = Targets::default();
    let inputs = planner::Inputs {
        live: Some(planner::Live {
            client,
            budget: &crate::apply::Budget::default(),
        }),
        ..planner::Inputs::new(paths, &targets, None, config.allow_empty)?
    };
    let provenance = config.sources.provenance(paths);
    let (plan, store) = planner::plan(&inputs, || {
        state::open_writer(&config.state, &config.command_line, &provenance)
    })?;
    let refresh = plan.refresh.clone().unwrap_or_default();
    for drift in &refresh.drifted {
        out.line(&text::drift_header(drift));
        for line in text::drift_diff(drift).lines() {
            out.line(&format!("    {line}"));
        }
    }
    // Recorded as X holds it: the next plan puts back what the manifests
    // want.
    crate::apply::record_drift(&plan, store.as_ref(), true)?;
    if let Some(note) = text::refresh_text_notes(&refresh) {
        out.line(&note);
    }
    out.line(&refresh.line());
    out.line(&format!(
        "Recorded {} drifted media as X holds them; nothing was sent.",
        refresh.drifted.len()
    ));
    Ok(Exit::Success)
}
