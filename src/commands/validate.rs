//! `xmeta validate PATH...`: check manifests, send nothing.

use std::path::PathBuf;

use crate::commands::Exit;
use crate::manifest;
use crate::output::Output;

pub fn run(paths: &[PathBuf], out: Output) -> anyhow::Result<Exit> {
    let desired = manifest::load(paths)?;
    for warning in &desired.warnings {
        out.line(&warning.to_string());
    }
    out.line(&format!(
        "{} media in {} file{} are valid.",
        desired.media.len(),
        desired.files,
        if desired.files == 1 { "" } else { "s" }
    ));
    Ok(Exit::Success)
}
