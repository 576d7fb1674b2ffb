//! `xmeta lint PATH...`: alt-text policy checks; never touches the
//! network or the state.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::commands::{annotations, show_invalid, Exit};
use crate::config::Config;
use crate::lint::{self, LintFormat};
use crate::output::Output;
use crate::plan::Targets;
use crate::planner;

/// Where the findings go: stdout in `format`, and SARIF to a file too
/// (`--sarif FILE`), so one run gives a workflow both its annotations and
/// its code-scanning upload.
pub struct Outputs<'a> {
    pub format: LintFormat,
    pub sarif: Option<&'a Path>,
}

pub fn run(
    config: &Config,
    paths: &[PathBuf],
    outputs: Outputs<'_>,
    config_file: Option<&Path>,
    out: Output,
) -> anyhow::Result<Exit> {
    if let Some(file) = outputs.sarif {
        crate::fs_util::refuse_special(file)
            .with_context(|| format!("cannot write the SARIF file `{}`", file.display()))?;
    }
    let targets = Targets::default();
    let inputs = planner::Inputs::new(paths, &targets, config_file, config.allow_empty)?;
    let desired = match planner::declared(&inputs) {
        Ok(desired) => desired,
        // Manifest errors inline in the diff too, where the findings would be.
        Err(e) if outputs.format == LintFormat::Github => {
            return Err(show_invalid(e, annotations, out))
        }
        Err(e) => return Err(e),
    };
    let report = lint::lint(&desired, &inputs.lint, None);
    if let Some(file) = outputs.sarif {
        crate::fs_util::write_private(file, lint::render(&report, LintFormat::Sarif).as_bytes())
            .with_context(|| format!("cannot write the SARIF file `{}`", file.display()))?;
    }
    out.print(&lint::render(&report, outputs.format));
    Ok(if report.errors() > 0 {
        Exit::Error
    } else {
        Exit::Success
    })
}
