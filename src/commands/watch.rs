//! `xmeta watch`: plan (and apply) at start, then after every settled
//! change to a manifest file, re-reading only the files that changed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};

use crate::apply::Runner;
use crate::commands::Exit;
use crate::config::{Config, WatchConfig};
use crate::output::Output;
use crate::plan::{render_text, Targets};
use crate::planner;
use crate::shutdown::Shutdown;
use crate::state::{self, StateReader, StateWriter};
use crate::watch::{AppliedCache, Workspace};
use tokio_util::sync::CancellationToken;

/// Where the watcher looks (canonical) and how the user named it.
struct Root {
    watched: PathBuf,
    given: PathBuf,
    mode: RecursiveMode,
}

fn roots(paths: &[PathBuf]) -> anyhow::Result<Vec<Root>> {
    paths
        .iter()
        .map(|p| {
            let canonical = std::fs::canonicalize(p)
                .with_context(|| format!("cannot watch `{}`", p.display()))?;
            Ok(if canonical.is_dir() {
                Root {
                    watched: canonical,
                    given: p.clone(),
                    mode: RecursiveMode::Recursive,
                }
            } else {
                // Watch a file's directory: editors replace files by rename,
                // which would end a watch on the file itself.
                let parent = |q: &Path| q.parent().map(Path::to_path_buf).unwrap_or_default();
                Root {
                    watched: parent(&canonical),
                    given: parent(p),
                    mode: RecursiveMode::NonRecursive,
                }
            })
        })
        .collect()
}

/// An event's path in the user's own terms (as given on the command line).
fn as_given(roots: &[Root], path: &Path) -> Option<PathBuf> {
    roots.iter().find_map(|r| {
        path.strip_prefix(&r.watched).ok().map(|rest| {
            if rest.as_os_str().is_empty() {
                r.given.clone()
            } else {
                r.given.join(rest)
            }
        })
    })
}

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

/// Capped exponential backoff between failed cycles (1 s, 2 s, … 60 s).
#[derive(Default)]
struct Retry {
    failures: u32,
    due: Option<Instant>,
}

impl Retry {
    const FIRST: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(60);

    fn fail(&mut self) -> Duration {
        let wait = Self::FIRST
            .saturating_mul(1 << self.failures.min(6))
            .min(Self::CAP);
        self.failures += 1;
        self.due = Some(Instant::now() + wait);
        wait
    }
}

/// Blocks until changes settle (or a stop); collects every pending event,
/// so changes made during an apply lead to one re-plan, not one per event.
fn next_changes(
    rx: &Receiver<DebounceEventResult>,
    roots: &[Root],
    cancel: &CancellationToken,
    wake: Option<Instant>,
) -> Option<BTreeSet<PathBuf>> {
    let mut paths = BTreeSet::new();
    let mut take = |result: DebounceEventResult| match result {
        Ok(events) => {
            // Reads (ours included) raise access events; only changes count.
            for event in events.iter().filter(|e| !e.kind.is_access()) {
                paths.extend(event.paths.iter().filter_map(|p| as_given(roots, p)));
            }
        }
        Err(errors) => {
            for e in errors {
                tracing::warn!("file watching: {e}");
            }
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => {
                take(result);
                while let Ok(more) = rx.try_recv() {
                    take(more);
                }
                return Some(paths);
            }
            Err(RecvTimeoutError::Timeout) if !cancel.is_cancelled() => {
                if wake.is_some_and(|due| Instant::now() >= due) {
                    return Some(paths);
                }
            }
            Err(_) => return None,
        }
    }
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
