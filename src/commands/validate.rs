//! `xmeta validate PATH...`: check manifests, send nothing.

use std::path::PathBuf;

use crate::commands::{check_declared, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::Targets;

pub fn run(config: &Config, paths: &[PathBuf], out: Output) -> anyhow::Result<Exit> {
    let desired = manifest::load(paths)?;
    check_declared(config, paths, &desired, &Targets::default())?;
    for warning in &desired.warnings {
        out.line(&warning.to_string());
    }
    let lint = crate::lint::lint(
        &desired,
        &crate::lint::config::load(None, paths)?,
        Some(crate::lint::SHOWN_IN_PLANS),
    );
    for line in lint.warning_lines() {
        out.line(&line);
    }
    out.line(&format!(
        "{} media in {} file{} are valid.",
        desired.media.len(),
        desired.files,
        if desired.files == 1 { "" } else { "s" }
    ));
    Ok(Exit::Success)
}
