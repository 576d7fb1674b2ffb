//! `xmeta validate PATH...`: check manifests, send nothing.

use std::path::PathBuf;

use crate::commands::{annotations, show_invalid, Exit};
use crate::config::Config;
use crate::output::Output;
use crate::plan::{PlanWarning, Targets};
use crate::planner;

pub fn run(config: &Config, paths: &[PathBuf], github: bool, out: Output) -> anyhow::Result<Exit> {
    let targets = Targets::default();
    let inputs = planner::Inputs::new(paths, &targets, None, config.allow_empty)?;
    let desired = match planner::declared(&inputs) {
        Ok(desired) => desired,
        Err(e) if github => return Err(show_invalid(e, annotations, out)),
        Err(e) => return Err(e),
    };
    let lint = crate::lint::lint(&desired, &inputs.lint, Some(crate::lint::SHOWN_IN_PLANS));
    let warnings = desired.warnings.iter().cloned().map(PlanWarning::Manifest);
    let mut capped = crate::annotations::Capped::default();
    for warning in warnings.chain(lint.warnings()) {
        if github {
            capped.push(warning.kind(), warning.annotation());
        } else {
            out.line(&warning.to_string());
        }
    }
    for line in capped.finish(
        "xmeta validate",
        "`xmeta validate` lists them all (`xmeta lint --format sarif` for code scanning)",
        Vec::new(),
    ) {
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
