//! `xmeta validate PATH...`: check manifests, send nothing.

use std::path::PathBuf;

use crate::commands::{annotations, check_declared, show_invalid, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::{PlanWarning, Targets};

pub fn run(config: &Config, paths: &[PathBuf], github: bool, out: Output) -> anyhow::Result<Exit> {
    let desired = match manifest::load(paths) {
        Ok(desired) => desired,
        Err(e) if github => return Err(show_invalid(e, annotations, out)),
        Err(e) => return Err(e),
    };
    check_declared(config, paths, &desired, &Targets::default())?;
    let lint = crate::lint::lint(
        &desired,
        &crate::lint::config::load(None, paths)?,
        Some(crate::lint::SHOWN_IN_PLANS),
    );
    let warnings = desired.warnings.iter().cloned().map(PlanWarning::Manifest);
    for warning in warnings.chain(lint.warnings()) {
        out.line(&if github {
            warning.annotation()
        } else {
            warning.to_string()
        });
    }
    out.line(&format!(
        "{} media in {} file{} are valid.",
        desired.media.len(),
        desired.files,
        if desired.files == 1 { "" } else { "s" }
    ));
    Ok(Exit::Success)
}
