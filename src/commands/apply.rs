//! `xmeta apply`: plan (or load a saved plan), confirm, send, record.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::bail;

use crate::commands::{check_declared, load_both, Exit};
use crate::config::{ApplyConfig, ApplySource, Config};
use crate::output::Output;
use crate::plan::{self, render_text, Plan};
use crate::progress::Progress;
use crate::state::StateStore;
use crate::x_api::Client;
use crate::{apply, manifest, saved_plan};

pub fn run(config: &Config, args: &ApplyConfig, out: Output) -> anyhow::Result<Exit> {
    let (plan, saved) = match &args.source {
        ApplySource::Manifests(paths) => {
            let open = || StateStore::open_writer(&config.state_dir, &config.command_line);
            let (desired, store, applied) = if config.state_dir.exists() {
                load_both(paths, open)?
            } else {
                // A new state is created only once the manifests are valid.
                let desired = manifest::load(paths)?;
                check_declared(config, paths, &desired, &args.targets)?;
                let store = open()?;
                let applied = store.all()?;
                (desired, store, applied)
            };
            check_declared(config, paths, &desired, &args.targets)?;
            let plan = plan::diff(desired, &applied, &args.targets, args.prune);
            (plan, store)
        }
        ApplySource::SavedPlan(file) => {
            let document = saved_plan::read(file)?;
            let store = StateStore::open_writer(&config.state_dir, &config.command_line)?;
            document.check_fresh(&store.lineage()?, store.serial()?, &store.all()?)?;
            (document.into_plan(), store)
        }
    };
    let store = saved;
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
    execute(config, args, &plan, &store, out)
}

fn confirm(config: &Config, plan: &Plan) -> anyhow::Result<bool> {
    if !config.stdin_is_terminal {
        bail!("refusing to apply without confirmation: stdin is not a terminal; pass `--auto-approve`, or apply a reviewed plan with `--plan FILE`");
    }
    let requests = plan.summary().requests;
    eprint!(
        "Apply {requests} request{}? [y/N] ",
        if requests == 1 { "" } else { "s" }
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn execute(
    config: &Config,
    args: &ApplyConfig,
    plan: &Plan,
    store: &StateStore,
    out: Output,
) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = Arc::new(Client::new(args.client.clone())?);
    let stop = Arc::new(AtomicBool::new(false));
    let requests = plan.summary().requests;
    let progress = Progress::new(requests, config.stderr_is_terminal);
    let report = runtime.block_on(async {
        let signals = tokio::spawn(stop_on_signal(Arc::clone(&stop)));
        let report = apply::run(
            plan,
            client,
            store,
            args.client.concurrency,
            progress,
            &stop,
        )
        .await;
        signals.abort();
        report
    });
    for line in report.lines() {
        out.line(&line);
    }
    Ok(if report.succeeded() {
        Exit::Success
    } else {
        Exit::Error
    })
}

/// First Ctrl-C or SIGTERM: start no new request, let in-flight ones finish
/// and be recorded. Second: exit at once (every confirmed media is already
/// recorded, so the state stays true).
pub async fn stop_on_signal(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::warn!(
                "stopping: no new requests; waiting for those in flight (signal again to quit now)"
            );
            stop.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    }
}
