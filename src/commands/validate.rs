//! `xmeta validate PATH...`: check manifests, send nothing.

use std::path::PathBuf;

use crate::commands::{annotations, check_declared, show_invalid, Exit};
use crate::config::Config;
use crate::manifest;
use crate::output::Output;
use crate::plan::Targets;

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
    if github {
        out.print(&annotations(&desired.warnings));
        out.print(&lint.warning_annotations());
    } else {
        for warning in &desired.warnings {
            out.line(&warning.to_string());
        }
        for line in lint.warning_lines() {
            out.line(&line);
        }
    }
    out.line(&format!(
        "{} media in {} file{} are valid.",
        desired.media.len(),
        desired.files,
        if desired.files == 1 { "" } else { "s" }
    ));
    Ok(Exit::Success)
}
