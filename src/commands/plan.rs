//! `xmeta plan`: diff the manifests against the state and render the plan.

use crate::commands::{check_declared, load_both, Exit};
use crate::config::{Config, Format, PlanConfig};
use crate::output::Output;
use crate::plan::{self, write_text};
use crate::saved_plan;
use crate::state::StateStore;

pub fn run(config: &Config, args: &PlanConfig, out: Output) -> anyhow::Result<Exit> {
    let (desired, store, applied) =
        load_both(&args.paths, || StateStore::open_reader(&config.state_dir))?;
    check_declared(config, &args.paths, &desired, &args.targets)?;
    let lint = crate::lint::lint(
        &desired,
        &crate::lint::config::load(None, &args.paths)?,
        Some(crate::lint::SHOWN_IN_PLANS),
    );
    if !store.exists() {
        crate::logging::note(&format!(
            "No state at {}: every media is new.",
            config.state_dir.display()
        ));
    }
    let mut plan = plan::diff(desired, &applied, &args.targets, args.prune);
    plan.price_per_request = args.price_per_request;
    plan.warnings.extend(lint.warning_lines());
    plan.alt_text_coverage = Some(lint.coverage());
    drop(applied);
    let document = saved_plan::Document::new(&plan, store.lineage()?, store.serial()?);
    match args.format {
        Format::Text => out.write_with(|w| write_text(&plan, out.color, w)),
        Format::Json => out.line(&document.to_json()?),
        Format::Markdown => out.print(&plan::render_markdown(&plan)),
    }
    if let Some(file) = &args.out {
        saved_plan::write(file, document)?;
        tracing::info!("plan saved to `{}`", file.display());
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Success
    })
}
