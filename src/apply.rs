//! The one apply pipeline, used by `apply` and `watch --apply`: posts each
//! request (at most `concurrency` in flight), records each media only after
//! X confirmed it, and stops starting new requests once cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::model::MediaId;
use crate::plan::{Action, Change, Plan};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::state::StateStore;
use crate::x_api::{Client, ClientSettings};

/// What applying needs besides a plan and a state: the client, and how
/// to show progress.
pub struct Runner {
    client: Arc<Client>,
    concurrency: usize,
    terminal: bool,
}

impl Runner {
    pub fn new(settings: &ClientSettings, stderr_is_terminal: bool) -> anyhow::Result<Runner> {
        Ok(Runner {
            client: Arc::new(Client::new(settings.clone())?),
            concurrency: settings.concurrency,
            terminal: stderr_is_terminal,
        })
    }

    /// Applies `plan` to `store` until done or cancelled.
    pub fn apply(&self, shutdown: &Shutdown, plan: &Plan, store: &StateStore) -> Report {
        let progress = Progress::new(plan.summary().requests, self.terminal);
        shutdown.runtime.block_on(run(
            plan,
            Arc::clone(&self.client),
            store,
            self.concurrency,
            progress,
            &shutdown.cancel,
        ))
    }
}

#[derive(Debug, Default)]
pub struct Report {
    /// Media X confirmed, recorded.
    pub applied: usize,
    /// State-only changes (fields no longer tracked).
    pub recorded: usize,
    /// Media removed from the state (`--prune`); nothing was sent.
    pub forgotten: usize,
    /// A signal stopped the run.
    pub interrupted: bool,
    pub failed: Vec<(MediaId, String)>,
    /// Requests not confirmed because a stop was requested.
    pub skipped: usize,
    /// Why no new request was started: a confirmation could not be made
    /// durable (disk full, I/O error), so sending more would be billed
    /// and then forgotten.
    pub halted: Option<String>,
}

impl Report {
    /// Each failure, then the summary line that ends every apply.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .failed
            .iter()
            .map(|(id, message)| format!("failed: media {id}: {message}"))
            .collect();
        if let Some(reason) = &self.halted {
            lines.push(format!(
                "stopped: the state cannot be written ({reason}); no new requests were started"
            ));
        }
        if self.skipped > 0 {
            lines.push(format!(
                "stopped: {} requests were not confirmed; they plan again next time",
                self.skipped
            ));
        }
        let outcome = if self.interrupted {
            "interrupted"
        } else if self.succeeded() {
            "complete"
        } else {
            "failed"
        };
        let forgotten = if self.forgotten > 0 {
            format!(", {} forgotten", self.forgotten)
        } else {
            String::new()
        };
        let not_sent = if self.skipped > 0 {
            format!(", {} not sent", self.skipped)
        } else {
            String::new()
        };
        lines.push(format!(
            "Apply {outcome}: {} applied{forgotten}, {} failed{not_sent}.",
            self.applied + self.recorded,
            self.failed.len()
        ));
        lines
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped == 0 && self.halted.is_none()
    }
}

/// Why one media did not go through.
enum Failure {
    /// X did not confirm it.
    Api(String),
    /// X confirmed it, but the state could not record it.
    NotRecorded(String),
}

/// How long requests in flight may take to finish once a stop was asked.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes `DRAIN_TIMEOUT` after the cancellation; never before.
async fn drain_deadline(cancel: &CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(DRAIN_TIMEOUT).await;
}

fn record(store: &StateStore, change: &Change) -> anyhow::Result<()> {
    // The store's writes flush to disk; keep them off the async workers.
    tokio::task::block_in_place(|| {
        let current = store.get(&change.id)?.map(|r| r.metadata);
        store.record(&change.id, change.next_record(current.as_ref()))
    })
}

pub async fn run(
    plan: &Plan,
    client: Arc<Client>,
    store: &StateStore,
    concurrency: usize,
    progress: Arc<Progress>,
    cancel: &CancellationToken,
) -> Report {
    let mut report = Report::default();
    // Local changes first: they send nothing and cannot fail remotely.
    let forgotten: Vec<MediaId> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Forget && plan.prune)
        .map(|c| c.id)
        .collect();
    if !forgotten.is_empty() {
        match tokio::task::block_in_place(|| store.remove(&forgotten)) {
            Ok(()) => report.forgotten += forgotten.len(),
            Err(e) => report
                .failed
                .extend(forgotten.into_iter().map(|id| (id, e.to_string()))),
        }
    }
    for change in plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Forget && !c.sends())
    {
        match record(store, change) {
            Ok(()) => report.recorded += 1,
            Err(e) => report.failed.push((change.id, e.to_string())),
        }
    }

    let total = plan.requests().count();
    let mut remote_failed = 0;
    let halted = AtomicBool::new(false);
    let halted = &halted;
    let ticker = progress.spawn_ticker(Arc::clone(&client));
    let mut results = futures::stream::iter(plan.requests())
        .map(|change| {
            let client = Arc::clone(&client);
            async move {
                if cancel.is_cancelled() || halted.load(Ordering::SeqCst) {
                    return (change, None);
                }
                let span = tracing::info_span!("media", id = %change.id);
                let Some(request) = change.request() else {
                    return (change, None);
                };
                let outcome = match client.post_metadata(&request).instrument(span).await {
                    Ok(()) => record(store, change).map_err(|e| {
                        halted.store(true, Ordering::SeqCst);
                        Failure::NotRecorded(format!("{e:#}"))
                    }),
                    Err(e) => Err(Failure::Api(e.to_string())),
                };
                (change, Some(outcome))
            }
        })
        .buffer_unordered(concurrency.max(1));
    loop {
        let next = tokio::select! {
            next = results.next() => next,
            () = drain_deadline(cancel) => {
                tracing::warn!("stopped waiting for requests in flight; they were not recorded and will plan again");
                None
            }
        };
        let Some((change, outcome)) = next else { break };
        match outcome {
            None => {}
            Some(Ok(())) => {
                tracing::debug!(media = %change.id, "applied and recorded");
                progress.finish_one(true);
                report.applied += 1;
            }
            Some(Err(failure)) => {
                let message = match failure {
                    Failure::Api(message) => message,
                    Failure::NotRecorded(reason) => {
                        report.halted.get_or_insert_with(|| reason.clone());
                        format!("confirmed by X but not recorded: {reason}")
                    }
                };
                tracing::warn!(media = %change.id, "failed: {message}");
                progress.finish_one(false);
                remote_failed += 1;
                report.failed.push((change.id, message));
            }
        }
    }
    // Not started after a stop, or abandoned in flight past the drain timeout.
    report.skipped = total - report.applied - remote_failed;
    report.interrupted = cancel.is_cancelled();
    ticker.abort();
    progress.finish();
    report.failed.sort();
    report
}
