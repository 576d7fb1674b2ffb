//! `xmeta apply`: plan (or load a saved plan), confirm, send, record.

use std::io::BufRead;

use anyhow::bail;

use crate::apply::{Report, Runner};
use crate::apply_summary::Summary;
use crate::commands::Exit;
use crate::config::{ApplyConfig, ApplyFormat, ApplySource, Config};
use crate::output::Output;
use crate::plan::{write_text, Batches, Plan, Summary as PlanSummary};
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
    match &args.source {
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
            let (mut plan, store) = planner::plan_for_writer(
                &inputs,
                &config.state,
                &config.command_line,
                &provenance,
            )?;
            plan.price_per_request = args.price_per_request;
            proceed(config, args, &plan, store, || open(&provenance), out)
        }
        ApplySource::SavedPlan(file) => {
            // Verified whole, and copied aside, before anything is used.
            let mut saved = saved_plan::read(file)?;
            // The plan's revision, unless --source-revision says otherwise.
            if config.sources.revision.is_none() {
                provenance.revision.clone_from(&saved.revision);
                provenance.dirty = saved.dirty;
            }
            let store = open(&provenance)?;
            saved.check_fresh(store.as_ref())?;
            saved.set_price_per_request(args.price_per_request);
            proceed(config, args, &saved, Some(store), || open(&provenance), out)
        }
    }
}

/// The one sequence after planning, for a plan made now or one saved:
/// record drift, show the plan, confirm, send. A saved plan is read a
/// batch at a time (see `Batches`), never held whole.
fn proceed(
    config: &Config,
    args: &ApplyConfig,
    plan: &dyn Batches,
    store: Option<Box<dyn StateWriter>>,
    open: impl FnOnce() -> anyhow::Result<Box<dyn StateWriter>>,
    out: Output,
) -> anyhow::Result<Exit> {
    if let Some(store) = &store {
        // Local: records what X holds for media that drifted to what the
        // manifests want (no request), also when nothing else changes.
        crate::apply::record_drift(plan.head(), store.as_ref(), false)?;
    }
    // With a JSON or markdown result, stdout holds that alone.
    // Streamed: the plan of 1,000,000 changes is never one string.
    if args.format == ApplyFormat::Text {
        out.write_with(|w| write_text(plan, out.color, w));
    } else {
        crate::logging::with_stderr(|w| write_text(plan, false, w));
    }
    let summary = plan.summary();
    if !summary.has_changes() {
        report(args, plan.head(), &Report::default(), out);
        return Ok(Exit::Success);
    }
    let from_saved_plan = matches!(args.source, ApplySource::SavedPlan(_));
    if !args.auto_approve
        && !from_saved_plan
        && !confirm(config, plan.head(), &summary, args.budget.max_requests)?
    {
        out.line("Apply cancelled; nothing was sent.");
        return Ok(Exit::Error);
    }
    let store = planner::writer_for(store, &config.state, open)?;
    execute(config, args, plan, store.as_ref(), out)
}

/// The result: its lines, or a JSON or markdown summary on stdout with
/// the lines on stderr (the job's log keeps them).
fn report(args: &ApplyConfig, plan: &Plan, report: &Report, out: Output) {
    let lines = report.lines();
    if args.format == ApplyFormat::Text {
        for line in &lines {
            out.line(line);
        }
        return;
    }
    for line in &lines {
        crate::logging::note(line);
    }
    let reads = plan.refresh.as_ref().map_or(0, |r| r.reads);
    let summary = Summary::new(report, reads, args.price_per_request, &args.budget);
    match args.format {
        ApplyFormat::Json => out.line(&summary.json()),
        _ => out.print(&summary.markdown(lines.last().map_or("", String::as_str))),
    }
}

fn confirm(
    config: &Config,
    plan: &Plan,
    summary: &PlanSummary,
    max_requests: Option<usize>,
) -> anyhow::Result<bool> {
    if !config.stdin_is_terminal {
        bail!("refusing to apply without confirmation: stdin is not a terminal; pass `--auto-approve`, or apply a reviewed plan with `--plan FILE`");
    }
    let forgets = if plan.prune && summary.forget > 0 {
        format!(
            " and forget {} media from the state (nothing is sent for them)",
            summary.forget
        )
    } else {
        String::new()
    };
    let plural = if summary.requests == 1 { "" } else { "s" };
    // What is asked is what will be sent: the budget's share when it is less.
    let requests = match max_requests {
        Some(max) if max < summary.requests => {
            format!("{max} of {} request{plural} (budget)", summary.requests)
        }
        _ => format!("{} request{plural}", summary.requests),
    };
    ask(&format!("Apply {requests}{forgets}?"))
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
    plan: &dyn Batches,
    store: &dyn StateWriter,
    out: Output,
) -> anyhow::Result<Exit> {
    let shutdown = Shutdown::install()?;
    let runner = Runner::new(&args.client, args.budget, config.stderr_is_terminal)?;
    let report = runner.apply(&shutdown, plan, store);
    self::report(args, plan.head(), &report, out);
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
