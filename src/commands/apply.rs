//! `xmeta apply`: plan (or load a saved plan), confirm, send, record.

use std::io::BufRead;

use anyhow::bail;

use crate::apply::Runner;
use crate::commands::Exit;
use crate::config::{ApplyConfig, ApplySource, Config};
use crate::output::Output;
use crate::plan::{render_text, Plan};
use crate::shutdown::Shutdown;
use crate::state::{self, StateWriter};
use crate::{planner, saved_plan};

pub fn run(config: &Config, args: &ApplyConfig, out: Output) -> anyhow::Result<Exit> {
    let mut provenance = match &args.source {
        ApplySource::Manifests(paths) => config.sources.provenance(paths),
        ApplySource::SavedPlan(_) => config.sources.provenance(&[]),
    };
    let open = |provenance: &state::Provenance| {
        state::open_writer(&config.state, &config.command_line, provenance)
    };
    let (mut plan, store) = match &args.source {
        ApplySource::Manifests(paths) => {
            let inputs = planner::Inputs {
                prune: args.prune,
                price_per_request: args.price_per_request,
                live: args.refresh.then_some(planner::Live {
                    client: &args.client,
                    budget: &args.budget,
                }),
                ..planner::Inputs::new(paths, &args.targets, None, config.allow_empty)?
            };
            planner::plan_for_writer(&inputs, &config.state, || open(&provenance))?
        }
        ApplySource::SavedPlan(file) => {
            let document = saved_plan::read(file)?;
            // The plan's revision, unless --source-revision says otherwise.
            if config.sources.revision.is_none() {
                provenance.revision.clone_from(&document.revision);
                provenance.dirty = document.dirty;
            }
            let store = open(&provenance)?;
            document.check_fresh(store.lineage()?.as_deref(), store.serial()?, &store.all()?)?;
            (document.into_plan(), Some(store))
        }
    };
    plan.price_per_request = args.price_per_request;
    if let Some(store) = &store {
        // Local: records what X holds for media that drifted to what the
        // manifests want (no request), also when nothing else changes.
        crate::apply::record_drift(&plan, store.as_ref(), false)?;
    }
    out.print(&render_text(&plan, out.color));
    if !plan.has_changes() {
        out.line("Apply complete: 0 applied, 0 failed.");
        return Ok(Exit::Success);
    }
    let from_saved_plan = matches!(args.source, ApplySource::SavedPlan(_));
    if !args.auto_approve && !from_saved_plan && !confirm(config, &plan)? {
        out.line("Apply cancelled; nothing was sent.");
        return Ok(Exit::Error);
    }
    let store = planner::writer_for(store, &config.state, || open(&provenance))?;
    execute(config, args, &plan, store.as_ref(), out)
}

fn confirm(config: &Config, plan: &Plan) -> anyhow::Result<bool> {
    if !config.stdin_is_terminal {
        bail!("refusing to apply without confirmation: stdin is not a terminal; pass `--auto-approve`, or apply a reviewed plan with `--plan FILE`");
    }
    let summary = plan.summary();
    let forgets = if plan.prune && summary.forget > 0 {
        format!(
            " and forget {} media from the state (nothing is sent for them)",
            summary.forget
        )
    } else {
        String::new()
    };
    ask(&format!(
        "Apply {} request{}{forgets}?",
        summary.requests,
        if summary.requests == 1 { "" } else { "s" }
    ))
}

/// Asks a yes/no question on the terminal; only yes means yes. Callers
/// first refuse to ask when stdin is not a terminal.
pub fn ask(question: &str) -> anyhow::Result<bool> {
    crate::logging::write_stderr(&format!("{question} [y/N] "));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn execute(
    config: &Config,
    args: &ApplyConfig,
    plan: &Plan,
    store: &dyn StateWriter,
    out: Output,
) -> anyhow::Result<Exit> {
    let shutdown = Shutdown::install()?;
    let runner = Runner::new(&args.client, args.budget, config.stderr_is_terminal)?;
    let report = runner.apply(&shutdown, plan, store);
    for line in report.lines() {
        out.line(&line);
    }
    Ok(if report.succeeded() {
        Exit::Success
    } else if report.at_budget() {
        // Stopped at the budget: a success that leaves work for later.
        if args.detailed_exitcode && report.skipped + report.unconfirmed > 0 {
            Exit::Changes
        } else {
            Exit::Success
        }
    } else {
        Exit::Error
    })
}
