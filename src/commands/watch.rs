//! `xmeta watch`: plan (and apply) at start, then after every settled
//! change to a manifest file, re-reading only the files that changed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};

use crate::apply::Runner;
use crate::commands::Exit;
use crate::config::{Config, WatchConfig};
use crate::output::Output;
use crate::plan::{render_text, Targets};
use crate::planner;
use crate::shutdown::Shutdown;
use crate::state::{self, StateReader, StateWriter};
use crate::watch::{next_changes, roots, AppliedCache, Retry, Workspace};

pub fn run(config: &Config, args: &WatchConfig, out: Output) -> anyhow::Result<Exit> {
    let shutdown = Shutdown::install()?;

    // With --apply the lock is held for the whole session: one writer.
    let writer = match &args.apply {
        Some(_) => Some(state::open_writer(
            &config.state,
            &config.command_line,
            &config.sources.provenance(&args.paths),
        )?),
        None => None,
    };
    let runner = match &args.apply {
        Some(settings) => Some(Runner::new(
            settings,
            args.budget,
            config.stderr_is_terminal,
        )?),
        None => None,
    };

    let roots = roots(&args.paths)?;
    let (tx, rx) = std::sync::mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(args.debounce, None, tx)?;
    for root in &roots {
        debouncer
            .watch(&root.watched, root.mode)
            .with_context(|| format!("cannot watch `{}`", root.given.display()))?;
    }

    let mut applied = AppliedCache::default();
    if let Some(writer) = writer.as_deref() {
        applied.prime(writer)?;
    }
    let mut workspace = Workspace::load(&args.paths, args.debounce)?;
    let targets = Targets::default();
    let session = Session {
        config,
        args,
        out,
        writer: writer.as_deref(),
        runner,
        shutdown: &shutdown,
        applied: RefCell::new(applied),
        inputs: planner::Inputs {
            prune: args.prune,
            ..planner::Inputs::new(&args.paths, &targets, None, config.allow_empty)?
        },
    };
    // A start that cannot plan (no manifests, no state) ends the watch;
    // later cycles that fail are retried.
    session.reconcile(&workspace, "start", false)?;

    let mut next_refresh = args.refresh_every.map(|every| Instant::now() + every);
    let mut retry = Retry::default();
    while !shutdown.is_cancelled() {
        let wake = [next_refresh, retry.due].into_iter().flatten().min();
        let Some(changed) = next_changes(&rx, &roots, &shutdown.cancel, wake) else {
            break;
        };
        let (why, live) = if let (Some(due), Some(every)) = (next_refresh, args.refresh_every) {
            if Instant::now() >= due {
                next_refresh = Some(Instant::now() + every);
                ("refresh".to_string(), true)
            } else {
                (String::new(), false)
            }
        } else {
            (String::new(), false)
        };
        let changed: BTreeSet<PathBuf> = changed
            .into_iter()
            .filter(|p| workspace.is_relevant(p))
            .collect();
        let started = Instant::now();
        let files = if changed.is_empty() {
            Vec::new()
        } else {
            workspace.refresh(&changed)
        };
        tracing::debug!("re-read {} file(s) in {:?}", files.len(), started.elapsed());
        let why = if !files.is_empty() {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!("changed: {}", names.join(", "))
        } else if live {
            why
        } else if retry.due.is_some_and(|due| Instant::now() >= due) {
            "retry".to_string()
        } else {
            continue;
        };
        match session.reconcile(&workspace, &why, live) {
            Ok(()) => retry = Retry::default(),
            Err(e) => {
                // A controller's error policy: say why, keep the last good
                // view, and try again later (sooner on the next change).
                crate::logging::error(&e, &config.state_secrets());
                let wait = retry.fail();
                crate::logging::line(
                    "note",
                    &format!("this cycle failed; retrying in {}s", wait.as_secs()),
                );
            }
        }
    }
    drop(debouncer);
    tracing::info!("watch stopped");
    Ok(Exit::Success)
}

struct Session<'a> {
    config: &'a Config,
    args: &'a WatchConfig,
    out: Output,
    writer: Option<&'a dyn StateWriter>,
    runner: Option<Runner>,
    shutdown: &'a Shutdown,
    applied: RefCell<AppliedCache>,
    /// What every cycle plans with (the lint configuration read once).
    inputs: planner::Inputs<'a>,
}

impl Session<'_> {
    /// One cycle: header, errors, plan, and with --apply the apply
    /// summary; `live` first reads X's alt text (`--refresh-every`).
    fn reconcile(&self, workspace: &Workspace, why: &str, live: bool) -> anyhow::Result<()> {
        let started = Instant::now();
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        self.out.line(&format!("== {now} {why} =="));
        let (desired, errors) = workspace.desired();
        for e in &errors {
            self.out.line(&e.to_string());
        }
        let reader;
        let mut cache = self.applied.borrow_mut();
        let store: &dyn StateReader = if let Some(writer) = self.writer {
            writer
        } else {
            // Without --apply the state is not ours: open it afresh each
            // cycle so an apply elsewhere is never blocked for long.
            reader = state::open_reader(&self.config.state)?;
            *cache = AppliedCache::default();
            &*reader
        };
        let plan = match (&self.args.apply, live) {
            (Some(settings), true) => {
                let inputs = planner::Inputs {
                    live: Some(planner::Live {
                        client: settings,
                        budget: &self.args.budget,
                    }),
                    ..self.inputs.clone()
                };
                let plan = cache.plan(store, desired, &inputs)?;
                if let Some(writer) = self.writer {
                    crate::apply::record_drift(&plan, writer, false)?;
                }
                plan
            }
            _ => cache.plan(store, desired, &self.inputs)?,
        };
        tracing::debug!("planned in {:?}", started.elapsed());
        self.out.print(&render_text(&plan, self.out.color));
        let drifted: Vec<_> = plan
            .refresh
            .iter()
            .flat_map(|r| r.drifted.iter().map(|d| d.id))
            .collect();
        if !drifted.is_empty() {
            cache.update(store, drifted)?;
        }
        let (Some(runner), Some(writer), true) = (&self.runner, self.writer, plan.has_changes())
        else {
            return Ok(());
        };
        // The tree as it is now: committed since, or edited (dirty).
        writer.set_provenance(self.config.sources.provenance(&self.args.paths));
        let report = runner.apply(self.shutdown, &plan, writer);
        cache.update(store, plan.changes.iter().map(|c| c.id))?;
        for line in report.lines() {
            self.out.line(&line);
        }
        Ok(())
    }
}
