//! `xmeta watch`: plan (and apply) at start, then after every settled
//! change to a manifest file, re-reading only the files that changed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};

use crate::apply::Runner;
use crate::commands::Exit;
use crate::config::{Config, WatchConfig};
use crate::output::Output;
use crate::plan::{render_text, Action, Targets};
use crate::planner;
use crate::shutdown::Shutdown;
use crate::state::{self, StateWriter};
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
        inputs: planner::Inputs::new(&args.paths, &targets, None, config.allow_empty)?
            .for_watch(args.prune),
        changed_at: Cell::new(None),
        prune_due: Cell::new(None),
        rest_due: Cell::new(None),
        started: Cell::new(false),
    };
    // A start that cannot plan (manifests that do not validate, none at
    // all, no state) ends the watch, as it ends `plan`; later cycles that
    // fail are retried.
    let mut retry = Retry::default();
    if !session.reconcile(&workspace, "start", false)? {
        retry_later(&mut retry);
    }
    session.idle();

    let mut next_refresh = args.refresh_every.map(|every| Instant::now() + every);
    while !shutdown.is_cancelled() {
        let prune_due = session.prune_due.get();
        let wake = [next_refresh, retry.due, prune_due, session.rest_due.get()]
            .into_iter()
            .flatten()
            .min();
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
        if !files.is_empty() {
            session.changed_at.set(Some(Instant::now()));
        }
        let why = if !files.is_empty() {
            // File names are untrusted text (a pull request chooses them).
            let names: Vec<String> = files
                .iter()
                .map(|f| crate::untrusted::neutralise(&f.display().to_string(), 4096))
                .collect();
            format!("changed: {}", names.join(", "))
        } else if live {
            why
        } else if retry.due.is_some_and(|due| Instant::now() >= due) {
            "retry".to_string()
        } else if prune_due.is_some_and(|due| Instant::now() >= due) {
            "settled".to_string()
        } else {
            session.rest_if_due();
            continue;
        };
        // A controller's error policy: say why, keep the last good view,
        // and try again later (sooner on the next change).
        match session.reconcile(&workspace, &why, live) {
            Ok(true) => retry = Retry::default(),
            Ok(false) => retry_later(&mut retry),
            Err(e) => {
                crate::logging::error(&e, &config.state_secrets());
                retry_later(&mut retry);
            }
        }
        session.idle();
    }
    drop(debouncer);
    tracing::info!("watch stopped");
    Ok(Exit::Success)
}

/// How long the writer's database stays open after a cycle: a few
/// debounce windows, so a burst of saves (a `git pull`, an editor saving
/// often) opens it once, not once a cycle.
fn rest_after(debounce: Duration) -> Duration {
    (debounce * 3).max(Duration::from_millis(100))
}

/// Schedules the next try of a failed cycle, and says when.
fn retry_later(retry: &mut Retry) {
    let wait = retry.fail();
    crate::logging::line(
        "note",
        &format!("this cycle failed; retrying in {}s", wait.as_secs()),
    );
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
    /// When a manifest last changed, while forgetting waits for the tree
    /// to be left alone (`None`: it has been).
    changed_at: Cell<Option<Instant>>,
    /// When forgets held back by a recent change are planned again.
    prune_due: Cell<Option<Instant>>,
    /// When the writer's database is closed, if no cycle comes first.
    rest_due: Cell<Option<Instant>>,
    /// Whether the first cycle (held to `plan`'s rules) has run.
    started: Cell<bool>,
}

impl Session<'_> {
    /// Between cycles: what a cycle's parse and writes left in memory goes
    /// back to the OS before the next one. The writer's database stays
    /// open for a burst of edits (opened again after many writes,
    /// `settle`), and is closed once none came for a while (`rest_after`).
    fn idle(&self) {
        if let Some(writer) = self.writer {
            writer.settle();
            self.rest_due
                .set(Some(Instant::now() + rest_after(self.args.debounce)));
        }
        crate::give_back();
        tracing::debug!("cycle over: waiting for changes");
    }

    /// Closes the writer's database if no cycle came for `rest_after`:
    /// an open one holds sled's page table and the pages the writes
    /// rewrote (at 1,000,000 media, a watcher idled at 585 MiB with it
    /// open, 534 MiB closed). The next cycle that reads a record or writes
    /// opens it again, which costs a read of its page table (about 20 ms
    /// at 100,000 media, 110 ms at 1,000,000); a cycle that only plans
    /// from the digests does not open it.
    fn rest_if_due(&self) {
        let (Some(writer), Some(due)) = (self.writer, self.rest_due.get()) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        self.rest_due.set(None);
        if writer.rest() {
            crate::give_back();
            tracing::debug!("resting: the state's database closed until a change needs it");
        }
    }

    /// One cycle: header, errors, plan, and with --apply the apply
    /// summary; `live` first reads X's alt text (`--refresh-every`).
    /// `Ok(false)`: planned, but the apply did not get through for a reason
    /// that may pass (X or the state out of reach): try again later.
    fn reconcile(&self, workspace: &Workspace, why: &str, live: bool) -> anyhow::Result<bool> {
        let started = Instant::now();
        let (desired, errors) = workspace.desired();
        // The start is a `plan`: manifests that do not validate end it with
        // the same errors (later cycles hold a broken file instead).
        if !errors.is_empty() && !self.started.replace(true) {
            return Err(crate::error::InvalidManifests(errors).into());
        }
        self.started.set(true);
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        self.out.line(&format!("== {now} {why} =="));
        for e in &errors {
            self.out.line(&e.to_string());
        }
        let mut cache = self.applied.borrow_mut();
        // With --prune, a media gone from a file that changed a moment ago
        // may be a save still on its way (written in parts, with pauses):
        // it is forgotten only once the tree has been left alone for the
        // settle bound, never on the strength of one read.
        let bound = crate::watch::settle_bound(self.args.debounce);
        let recent = self.changed_at.get().filter(|at| at.elapsed() < bound);
        let held_back = self.inputs.prune && recent.is_some();
        self.prune_due.set(None);
        // A copy of the inputs only for a cycle that plans otherwise.
        let changed_inputs = match (&self.args.apply, live) {
            (Some(settings), true) => Some(planner::Inputs {
                live: Some(planner::Live {
                    client: settings,
                    budget: &self.args.budget,
                }),
                prune: self.inputs.prune && !held_back,
                ..self.inputs.clone()
            }),
            _ if held_back => Some(planner::Inputs {
                prune: false,
                ..self.inputs.clone()
            }),
            _ => None,
        };
        let inputs = changed_inputs.as_ref().unwrap_or(&self.inputs);
        let replaced = workspace.replaced();
        let plan = match (self.writer, live) {
            (Some(writer), true) => {
                let plan = cache.plan(writer, desired, inputs, replaced)?;
                crate::apply::record_drift(&plan, writer, false)?;
                plan
            }
            (Some(writer), false) => cache.plan(writer, desired, inputs, replaced)?,
            // Without --apply the state is not ours: it is opened afresh
            // (and let go of before the plan is printed) when a writer may
            // have been at it since, so an apply elsewhere is never
            // blocked for long.
            (None, _) => cache.plan_unlocked(&self.config.state, desired, inputs, replaced)?,
        };
        if let (true, Some(at)) = (held_back, recent) {
            if plan.changes.iter().any(|c| c.action == Action::Forget) {
                self.prune_due.set(Some(at + bound));
                crate::logging::line(
                    "note",
                    &format!(
                        "--prune: media in no manifest are forgotten once the manifests have been left alone for {}s",
                        bound.as_secs()
                    ),
                );
            }
        }
        tracing::debug!("planned in {:?}", started.elapsed());
        let drifted: Vec<_> = plan
            .refresh
            .iter()
            .flat_map(|r| r.drifted.iter().map(|d| d.id))
            .collect();
        if let (Some(writer), false) = (self.writer, drifted.is_empty()) {
            cache.update(writer, drifted)?;
        }
        self.out.print(&render_text(&plan, self.out.color));
        let (Some(runner), Some(writer), true) = (&self.runner, self.writer, plan.has_changes())
        else {
            return Ok(true);
        };
        // The tree as it is now: committed since, or edited (dirty).
        writer.set_provenance(self.config.sources.provenance(&self.args.paths));
        let report = runner.apply(self.shutdown, &plan, writer);
        cache.update(writer, plan.changes.iter().map(|c| c.id))?;
        for line in report.lines() {
            self.out.line(&line);
        }
        Ok(!report.may_succeed_later())
    }
}
