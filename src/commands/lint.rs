//! `xmeta lint PATH...`: alt-text policy checks; never touches the
//! network or the state.

use std::path::{Path, PathBuf};

use crate::commands::{check_declared, Exit};
use crate::config::Config;
use crate::lint::{self, LintFormat};
use crate::manifest;
use crate::output::Output;
use crate::plan::Targets;

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    format: LintFormat,
    config_file: Option<&Path>,
    out: Output,
) -> anyhow::Result<Exit> {
    let lint_config = lint::config::load(config_file, paths)?;
    let desired = manifest::load(paths)?;
    check_declared(config, paths, &desired, &Targets::default())?;
    let report = lint::lint(&desired, &lint_config, None);
    out.print(&lint::render(&report, format));
    Ok(if report.errors() > 0 {
        Exit::Error
    } else {
        Exit::Success
    })
}
