//! `xmeta lint PATH...`: alt-text policy checks; never touches the
//! network or the state.

use std::path::{Path, PathBuf};

use crate::commands::Exit;
use crate::config::Config;
use crate::lint::{self, LintFormat};
use crate::output::Output;
use crate::plan::Targets;
use crate::planner;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    format: LintFormat,
    config_file: Option<&Path>,
    out: Output,
) -> anyhow::Result<Exit> {
    let targets = Targets::default();
    let inputs = planner::Inputs::new(paths, &targets, config_file, config.allow_empty)?;
    let desired = planner::declared(&inputs)?;
    let report = lint::lint(&desired, &inputs.lint, None);
    out.print(&lint::render(&report, format));
    Ok(if report.errors() > 0 {
        Exit::Error
    } else {
        Exit::Success
    })
}
