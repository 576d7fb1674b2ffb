//! The one apply pipeline, used by `apply` and `watch --apply`: posts each
//! request (at most `concurrency` in flight), records each media only after
//! X confirmed it, and stops starting new requests once cancelled, once the
//! budget is spent, or once going on would be pointless or harmful (the
//! credential is refused, the API is unreachable, the state cannot record).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::model::MediaId;
use crate::plan::{Action, Batches, Change, Plan};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::state::history::Event;
use crate::state::{Recording, StateWriter};
use crate::x_api::{ApiError, Client, ClientSettings};

mod prefetch;
use prefetch::Prefetch;

/// How much one run may do (`--max-requests`, `--max-duration`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    pub max_requests: Option<usize>,
    pub max_duration: Option<Duration>,
}

/// What applying needs besides a plan and a state: the client, the
/// budget, and how to show progress.
pub struct Runner {
    client: Arc<Client>,
    concurrency: usize,
    budget: Budget,
    terminal: bool,
}

impl Runner {
    pub fn new(
        settings: &ClientSettings,
        budget: Budget,
        stderr_is_terminal: bool,
    ) -> anyhow::Result<Runner> {
        Ok(Runner {
            client: Arc::new(Client::new(settings.clone())?),
            concurrency: settings.concurrency,
            budget,
            terminal: stderr_is_terminal,
        })
    }

    /// Applies `plan` to `store` until done, cancelled or out of budget,
    /// a batch at a time (see `Batches`): a saved plan too large to hold
    /// is read back as it is sent.
    pub fn apply(
        &self,
        shutdown: &Shutdown,
        plan: &dyn Batches,
        store: &dyn StateWriter,
    ) -> Report {
        // Counted against what the budget lets this run send.
        let summary = plan.summary();
        let planned = summary.requests;
        let total = self
            .budget
            .max_requests
            .map_or(planned, |max| planned.min(max));
        let progress = Progress::new(total, self.terminal);
        let deadline = self.budget.max_duration.map(|d| Instant::now() + d);
        self.client.set_deadline(deadline);
        self.client.set_stop(shutdown.cancel.clone());
        let limits = Limits {
            concurrency: self.concurrency,
            max_requests: self.budget.max_requests,
            deadline,
        };
        let mut report = Report::default();
        // The whole plan's local changes first, as for a plan in memory:
        // a stop or a halt while sending leaves none of them undone. A
        // plan without any is not read for them (a saved plan's copy is
        // read back once less).
        let local_count = summary.create + summary.update + summary.forget - planned;
        let local = if local_count == 0 {
            Ok(())
        } else {
            plan.each_batch(&mut |batch| {
                local_changes(batch, store, &mut report);
                Ok(())
            })
        };
        if planned > 0 {
            if let Err(e) = store.ready_to_record() {
                // Nothing sent: the state could not have recorded it.
                report.halted = Some(Halt::NotRecorded(format!("{e:#}")));
                report.skipped += planned;
                progress.finish();
                return report;
            }
        }
        let mut carry = Carry::default();
        let mut visited = 0;
        let walked = local.and_then(|()| {
            plan.each_batch(&mut |batch| {
                visited += batch.requests().count();
                let part = self.apply_batch(shutdown, batch, store, limits, &progress, &mut carry);
                report.add(part);
                Ok(())
            })
        });
        if let Err(e) = walked {
            // The rest of the plan cannot be read: none of it is sent.
            let reason = format!("the rest of the plan cannot be read: {e:#}");
            report.halted.get_or_insert(Halt::Unreadable(reason));
            report.skipped += planned.saturating_sub(visited);
        }
        progress.finish();
        report.failed.sort_by_key(|(id, _)| *id);
        report.requests = self.client.requests_sent();
        report
    }

    /// One batch through the pipeline; `carry` takes a halt and the
    /// requests started from one batch to the next.
    fn apply_batch(
        &self,
        shutdown: &Shutdown,
        plan: &Plan,
        store: &dyn StateWriter,
        limits: Limits,
        progress: &Arc<Progress>,
        carry: &mut Carry,
    ) -> Report {
        let prefetch = Prefetch::new(store);
        let prefetch = &prefetch;
        std::thread::scope(|scope| {
            // The records of the media sent, read on a thread of their
            // own while X answers, from a state a round trip away;
            // otherwise (or without the thread) each group reads them.
            let _closing = prefetch.closing();
            let reading = store.reads_wait_on_a_server().then(|| {
                std::thread::Builder::new()
                    .name("xmeta-prefetch".into())
                    .spawn_scoped(scope, move || prefetch.run())
            });
            if !matches!(reading, Some(Ok(_))) {
                prefetch.close();
            }
            // The state's writes on a thread of their own: the request
            // stream goes on while a group is written (a write to a
            // remote state takes round trips). Made in here, so that a
            // panic drops the recorder, and the thread ends, before the
            // scope waits for it.
            let (recorder, queue) = Recorder::new();
            let writer = std::thread::Builder::new()
                .name("xmeta-recorder".into())
                .spawn_scoped(scope, move || record_groups(store, prefetch, queue));
            if let Err(e) = writer {
                recorder.close();
                let halt = Halt::NotRecorded(format!("cannot start the state's recorder: {e}"));
                carry.halt.get_or_insert(halt.clone());
                return Report {
                    halted: Some(halt),
                    skipped: plan.requests().count(),
                    ..Report::default()
                };
            }
            let pipeline = Pipeline {
                client: Arc::clone(&self.client),
                limits,
                progress: Arc::clone(progress),
                cancel: &shutdown.cancel,
            };
            shutdown
                .runtime
                .block_on(run(plan, &pipeline, &recorder, prefetch, carry))
        })
    }
}

/// What one batch leaves the next: why requests stopped, if they did,
/// and how many were started (for `--max-requests`).
#[derive(Default)]
struct Carry {
    halt: Option<Halt>,
    started: usize,
}

/// Why no new request was started before the plan was done.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    /// A confirmation could not be made durable (disk full, I/O error):
    /// more requests would be billed and then forgotten.
    NotRecorded(String),
    /// X refused the credential (401/403): it is wrong for every request.
    Credentials(String),
    /// The API cannot be reached, or asks for an absurd wait.
    Unreachable(String),
    /// `--max-requests` or `--max-duration` reached; not a failure.
    Budget(String),
    /// A saved plan's verified copy could not be read back (a disk error).
    Unreadable(String),
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
    pub failed: Vec<(MediaId, ApplyFailure)>,
    /// Requests never started (a stop, a budget, a halt).
    pub skipped: usize,
    /// Requests sent whose outcome was not recorded by the drain timeout
    /// (in flight, or confirmed and waiting for a place among the
    /// confirmations): X may have applied them; they plan again (sending
    /// twice is harmless).
    pub unconfirmed: usize,
    /// Why no new request was started, when the run stopped early.
    pub halted: Option<Halt>,
    /// Requests sent to X, retries included (what is billed).
    pub requests: usize,
}

impl Report {
    /// Adds a batch's report to the run's (`requests` is the client's
    /// count, read at the end).
    fn add(&mut self, part: Report) {
        self.applied += part.applied;
        self.recorded += part.recorded;
        self.forgotten += part.forgotten;
        self.interrupted |= part.interrupted;
        self.failed.extend(part.failed);
        self.skipped += part.skipped;
        self.unconfirmed += part.unconfirmed;
        if self.halted.is_none() {
            self.halted = part.halted;
        }
    }

    /// Each failure, then the summary line that ends every apply.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .failed
            .iter()
            .map(|(id, failure)| format!("failed: media {id}: {failure}"))
            .collect();
        match &self.halted {
            Some(Halt::NotRecorded(reason)) => {
                let unrecorded = self
                    .failed
                    .iter()
                    .filter(|(_, f)| matches!(f, ApplyFailure::NotRecorded(_)))
                    .count();
                lines.push(format!(
                    "stopped: the state cannot be written ({reason}); {unrecorded} media confirmed by X are not recorded and will be re-sent; no new requests were started"
                ));
            }
            Some(
                Halt::Credentials(reason) | Halt::Unreachable(reason) | Halt::Unreadable(reason),
            ) => {
                lines.push(format!("stopped: {reason}"));
            }
            Some(Halt::Budget(reason)) => lines.push(format!("budget: {reason}")),
            None => {}
        }
        if self.at_budget() {
            lines.push(format!(
                "Apply stopped at the budget: {} applied, {} failed, {} remaining.",
                self.applied + self.recorded,
                self.failed.len(),
                self.skipped + self.unconfirmed
            ));
            return lines;
        }
        if self.skipped > 0 {
            lines.push(format!(
                "stopped: {} requests were not sent; they plan again next time",
                self.skipped
            ));
        }
        if self.unconfirmed > 0 {
            lines.push(format!(
                "stopped: {} requests were sent but not confirmed in time; they plan again (sending them twice is harmless)",
                self.unconfirmed
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
        let mut not_sent = String::new();
        if self.skipped > 0 {
            not_sent.push_str(&format!(", {} not sent", self.skipped));
        }
        if self.unconfirmed > 0 {
            not_sent.push_str(&format!(", {} not confirmed", self.unconfirmed));
        }
        lines.push(format!(
            "Apply {outcome}: {} applied{forgotten}, {} failed{not_sent}.",
            self.applied + self.recorded,
            self.failed.len()
        ));
        lines
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.skipped == 0
            && self.unconfirmed == 0
            && self.halted.is_none()
    }

    /// Whether a later run may well get through what this one could not:
    /// X or the state was out of reach, or X failed a media with a 5xx or
    /// a dropped connection. A 4xx (a refused body, a wrong token) would
    /// fail, and be billed, again; it waits for a change or a person.
    pub fn may_succeed_later(&self) -> bool {
        let transient = |e: &ApiError| match e {
            ApiError::Exhausted { last, .. } => matches!(
                **last,
                ApiError::Transport(_)
                    | ApiError::Status {
                        status: 500..=599,
                        ..
                    }
            ),
            ApiError::Transport(_) | ApiError::Unreachable(_) => true,
            ApiError::Status { status, .. } => *status >= 500,
            _ => false,
        };
        !self.interrupted
            && (matches!(
                self.halted,
                Some(Halt::Unreachable(_) | Halt::NotRecorded(_))
            ) || self.failed.iter().any(|(_, f)| match f {
                ApplyFailure::Api(e) => transient(e),
                ApplyFailure::NotRecorded(_) => true,
                ApplyFailure::NotStored(_) => false,
            }))
    }

    /// Stopped by the budget alone: a success that leaves work for later.
    pub fn at_budget(&self) -> bool {
        matches!(self.halted, Some(Halt::Budget(_))) && self.failed.is_empty() && !self.interrupted
    }
}

/// Why one media did not go through.
#[derive(Debug)]
pub enum ApplyFailure {
    /// X did not confirm it.
    Api(ApiError),
    /// X confirmed it, but the state could not record it.
    NotRecorded(String),
    /// A state-only change (a forget, an untracked field) could not be
    /// written; nothing was sent.
    NotStored(String),
}

impl std::fmt::Display for ApplyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The credential's explanation is given once, in the halt line.
            ApplyFailure::Api(ApiError::Credentials(_)) => {
                f.write_str("X refused the credentials (see below)")
            }
            ApplyFailure::Api(e) => write!(f, "{e}"),
            ApplyFailure::NotRecorded(reason) => {
                write!(f, "confirmed by X but not recorded: {reason}")
            }
            ApplyFailure::NotStored(reason) => f.write_str(reason),
        }
    }
}

/// The run's limits, fixed at its start.
#[derive(Clone, Copy)]
struct Limits {
    concurrency: usize,
    max_requests: Option<usize>,
    deadline: Option<Instant>,
}

/// How long requests in flight may take to finish once a stop was asked.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes `DRAIN_TIMEOUT` after the cancellation; never before.
async fn drain_deadline(cancel: &CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(DRAIN_TIMEOUT).await;
}

/// The drift a `--refresh` plan found for a media, if any.
fn drift_of(plan: &Plan, id: MediaId) -> Option<&crate::refresh::Drift> {
    let drifted = &plan.refresh.as_ref()?.drifted;
    // Sorted by ID (see `refresh::read`).
    let at = drifted.binary_search_by_key(&id, |d| d.id).ok()?;
    drifted.get(at)
}

/// Records a change X confirmed. With `drift`, what X held was not the
/// record but the live value read: that is what the change overwrote, and
/// the history says so (`before`), as `refresh` would have.
fn record(
    store: &dyn StateWriter,
    change: &Change,
    drift: Option<&crate::refresh::Drift>,
) -> anyhow::Result<()> {
    let current = store.get(&change.id)?.map(|r| r.metadata);
    let (recording, event) = recording(change, current, drift);
    store.record(recording, event)
}

/// What recording `change` writes, after what the state holds for it
/// (`current`).
fn recording(
    change: &Change,
    current: Option<crate::model::Metadata>,
    drift: Option<&crate::refresh::Drift>,
) -> (Recording, Event) {
    let event = match current {
        Some(_) => Event::Update,
        None => Event::Create,
    };
    let after = change.next_record(current.as_ref());
    let before = match (current, drift) {
        (Some(current), Some(drift)) => Some(crate::refresh::with_live(&current, drift)),
        (current, _) => current,
    };
    (
        Recording {
            id: change.id,
            before,
            after,
        },
        event,
    )
}

/// The most confirmations recorded in one group.
const GROUP_MAX: usize = 256;

/// A confirmation waiting to be recorded (with the drift a `--refresh`
/// plan found for it), and who waits for it.
type Queued<'a> = (
    &'a Change,
    Option<&'a crate::refresh::Drift>,
    oneshot::Sender<Result<(), String>>,
);

/// Where requests hand their confirmations to `record_groups`.
struct Recorder<'a> {
    /// `None` once closed: `record_groups` then ends.
    queue: Mutex<Option<mpsc::UnboundedSender<Queued<'a>>>>,
    /// Why a group could not be recorded, set by `record_groups` before
    /// it tells anyone: no request starts after it.
    broken: Arc<OnceLock<String>>,
}

/// What `record_groups` takes: the queue, and where it says it broke.
type Intake<'a> = (mpsc::UnboundedReceiver<Queued<'a>>, Arc<OnceLock<String>>);

impl<'a> Recorder<'a> {
    fn new() -> (Recorder<'a>, Intake<'a>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let broken = Arc::new(OnceLock::new());
        let recorder = Recorder {
            queue: Mutex::new(Some(queue)),
            broken: Arc::clone(&broken),
        };
        (recorder, (receiver, broken))
    }

    /// Why the state cannot record, once a group failed.
    fn broken(&self) -> Option<&String> {
        self.broken.get()
    }

    /// No more confirmations: what is queued is recorded, then
    /// `record_groups` ends.
    fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
    }

    /// Queues `change`'s confirmation now; what it returns completes
    /// once that is durable (or could not be).
    fn record(
        &self,
        change: &'a Change,
        drift: Option<&'a crate::refresh::Drift>,
    ) -> impl std::future::Future<Output = Result<(), String>> {
        let (done, outcome) = oneshot::channel();
        let queue = self.queue.lock().ok().and_then(|q| q.clone());
        let queued = queue
            .ok_or(())
            .and_then(|q| q.send((change, drift, done)).map_err(|_| ()))
            .map_err(|()| "the state's recorder stopped".to_string());
        async move {
            queued?;
            outcome
                .await
                .unwrap_or_else(|_| Err("the state's recorder stopped".into()))
        }
    }
}

/// Group commit, on the recorder's thread: takes every confirmation
/// queued while the previous group was written (at most `GROUP_MAX`),
/// records them as one group, and tells each request its outcome. Ends
/// when the queue closes (or every sender is dropped).
fn record_groups(
    store: &dyn StateWriter,
    prefetch: &Prefetch<'_>,
    (mut queue, broken): Intake<'_>,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let changes: Vec<_> = group
            .iter()
            .map(|(change, drift, _)| (*change, *drift))
            .collect();
        let outcomes = record_group(store, prefetch, &changes);
        if let Some(Err(e)) = outcomes.iter().find(|o| o.is_err()) {
            let _ = broken.set(format!("{e:#}"));
        }
        for ((_, _, done), outcome) in group.into_iter().zip(outcomes) {
            let _ = done.send(outcome.map_err(|e| format!("{e:#}")));
        }
    }
}

/// Records the confirmations of `changes` as one group (see
/// `StateWriter::record_group`): one outcome per change, in order. What
/// the state holds for them was read while X answered (`Prefetch`); what
/// was not is read at once (one read, not one each).
fn record_group(
    store: &dyn StateWriter,
    prefetch: &Prefetch<'_>,
    changes: &[(&Change, Option<&crate::refresh::Drift>)],
) -> Vec<anyhow::Result<()>> {
    let ids: Vec<MediaId> = changes.iter().map(|(change, _)| change.id).collect();
    let read = prefetch.take(&ids).and_then(|(mut held, unread)| {
        if !unread.is_empty() {
            held.extend(store.get_present(&unread).map_err(|e| format!("{e:#}"))?);
        }
        Ok(held)
    });
    let mut held = match read {
        Ok(held) => held,
        Err(reason) => {
            return changes
                .iter()
                .map(|_| Err(anyhow::anyhow!(reason.clone())))
                .collect();
        }
    };
    let group = changes
        .iter()
        .map(|(change, drift)| {
            let current = held.remove(&change.id).map(|r| r.metadata);
            recording(change, current, *drift)
        })
        .collect();
    store.record_group(group)
}

/// How a request ended, as the request stream hands it over.
enum Answer<'r> {
    /// Not sent: stopped, over the budget, or nothing to send.
    NotSent,
    Failed(ApplyFailure),
    /// X confirmed it; this completes once the confirmation is durable.
    Confirmed(futures::future::LocalBoxFuture<'r, Result<(), String>>),
}

/// What every batch of a run shares.
struct Pipeline<'r> {
    client: Arc<Client>,
    limits: Limits,
    progress: Arc<Progress>,
    cancel: &'r CancellationToken,
}

/// A batch's local changes, which send nothing and cannot fail remotely:
/// forgets (with `--prune`) and fields no longer tracked.
fn local_changes(plan: &Plan, store: &dyn StateWriter, report: &mut Report) {
    let forgotten: Vec<MediaId> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Forget && plan.prune)
        .map(|c| c.id)
        .collect();
    if !forgotten.is_empty() {
        match store.remove(&forgotten, Event::Forget) {
            Ok(()) => report.forgotten += forgotten.len(),
            Err(e) => report.failed.extend(
                forgotten
                    .into_iter()
                    .map(|id| (id, ApplyFailure::NotStored(e.to_string()))),
            ),
        }
    }
    for change in plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Forget && !c.sends())
    {
        match record(store, change, drift_of(plan, change.id)) {
            Ok(()) => report.recorded += 1,
            Err(e) => report
                .failed
                .push((change.id, ApplyFailure::NotStored(e.to_string()))),
        }
    }
}

async fn run<'a>(
    plan: &'a Plan,
    pipeline: &Pipeline<'_>,
    recorder: &Recorder<'a>,
    prefetch: &Prefetch<'_>,
    carry: &mut Carry,
) -> Report {
    let client = Arc::clone(&pipeline.client);
    let (limits, progress, cancel) = (pipeline.limits, &pipeline.progress, pipeline.cancel);
    let mut report = Report::default();
    let total = plan.requests().count();
    let mut remote_failed = 0;
    // The first reason to stop starting requests wins; it is reported.
    let halt: Mutex<Option<Halt>> = Mutex::new(carry.halt.clone());
    let halt = &halt;
    let stop = |why: Halt| {
        if let Ok(mut h) = halt.lock() {
            h.get_or_insert(why);
        }
    };
    let halted = || halt.lock().map_or(true, |h| h.is_some());
    let started = AtomicUsize::new(carry.started);
    let started = &started;
    let sent = AtomicUsize::new(0);
    let sent = &sent;
    // Confirmed media waiting for their group to be durable, at most
    // `concurrency` of them: they wait off the request slots, so the
    // stream goes on while a group is written (a round trip to a remote
    // state), and at most twice `concurrency` media are ever sent but not
    // recorded (in flight, and waiting).
    let waiting = tokio::sync::Semaphore::new(limits.concurrency.max(1));
    let waiting = &waiting;
    let ticker = progress.spawn_ticker(Arc::clone(&client));
    let mut results = futures::stream::iter(plan.requests())
        .map(|change| {
            let client = Arc::clone(&client);
            async move {
                if let Some(reason) = recorder.broken() {
                    stop(Halt::NotRecorded(reason.clone()));
                }
                if cancel.is_cancelled() || halted() {
                    return (change, Answer::NotSent);
                }
                if let Some(max) = limits.max_requests {
                    if started.fetch_add(1, Ordering::SeqCst) >= max {
                        stop(Halt::Budget(format!("--max-requests {max} reached")));
                        return (change, Answer::NotSent);
                    }
                }
                if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                    stop(Halt::Budget("--max-duration reached".into()));
                    return (change, Answer::NotSent);
                }
                let span = tracing::info_span!("media", id = %change.id);
                let Some(request) = change.request() else {
                    return (change, Answer::NotSent);
                };
                sent.fetch_add(1, Ordering::SeqCst);
                prefetch.ask(change.id);
                // On a task of its own: while this stream waits (for a
                // slot among the confirmations), the other exchanges
                // still read their answers, instead of timing out and
                // sending again what X already answered.
                let exchange = tokio::spawn(
                    async move { client.post_metadata(&request).await }.instrument(span),
                );
                let answered = exchange.await.unwrap_or_else(|e| {
                    Err(ApiError::Transport(format!(
                        "the request's task ended: {e}"
                    )))
                });
                if answered.is_err() {
                    prefetch.let_go(change.id);
                }
                let failure = match answered {
                    Ok(()) => {
                        // The slot is held until a place among the
                        // waiting confirmations is free.
                        let place = waiting.acquire().await.ok();
                        let durable = recorder.record(change, drift_of(plan, change.id));
                        let durable = async move {
                            let outcome = durable.await;
                            drop(place);
                            outcome
                        };
                        return (change, Answer::Confirmed(durable.boxed_local()));
                    }
                    Err(ApiError::OverBudget(reason)) => {
                        // Not sent: waiting would pass the budget.
                        sent.fetch_sub(1, Ordering::SeqCst);
                        stop(Halt::Budget(reason));
                        return (change, Answer::NotSent);
                    }
                    Err(ApiError::Stopped) => {
                        // A signal came while it waited for a retry or a
                        // window: X holds nothing new from it, so it counts
                        // as not sent and plans again.
                        sent.fetch_sub(1, Ordering::SeqCst);
                        return (change, Answer::NotSent);
                    }
                    Err(e) => {
                        match &e {
                            ApiError::Credentials(reason) => {
                                stop(Halt::Credentials(reason.clone()));
                            }
                            ApiError::Unreachable(reason) | ApiError::WaitTooLong(reason) => {
                                stop(Halt::Unreachable(reason.clone()));
                            }
                            _ => {}
                        }
                        ApplyFailure::Api(e)
                    }
                };
                (change, Answer::Failed(failure))
            }
        })
        .buffer_unordered(limits.concurrency.max(1));
    let mut confirmed = futures::stream::FuturesUnordered::new();
    let mut outcome = |change: &Change, result: Result<(), ApplyFailure>| match result {
        Ok(()) => {
            tracing::debug!(media = %change.id, "applied and recorded");
            progress.finish_one(true);
            report.applied += 1;
        }
        Err(failure) => {
            tracing::warn!(media = %change.id, "failed: {failure}");
            progress.finish_one(false);
            remote_failed += 1;
            report.failed.push((change.id, failure));
        }
    };
    let durable = |change: &'a Change, result: Result<(), String>| {
        let result = result.map_err(|reason| {
            stop(Halt::NotRecorded(reason.clone()));
            ApplyFailure::NotRecorded(reason)
        });
        (change, result)
    };
    // Once a stop was asked, the requests in flight have this long in all.
    let drain = drain_deadline(cancel);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            next = results.next() => match next {
                None => break,
                Some((_, Answer::NotSent)) => {}
                Some((change, Answer::Failed(failure))) => outcome(change, Err(failure)),
                Some((change, Answer::Confirmed(pending))) => {
                    confirmed.push(async move { (change, pending.await) });
                }
            },
            Some((change, result)) = confirmed.next(), if !confirmed.is_empty() => {
                let (change, result) = durable(change, result);
                outcome(change, result);
            }
            () = &mut drain => {
                tracing::warn!("stopped waiting for requests in flight; they were not recorded and will plan again");
                break;
            }
        }
    }
    // No request can confirm anything more: what was confirmed is
    // recorded (the store's own timeouts bound it), then the queue closes.
    drop(results);
    while let Some((change, result)) = confirmed.next().await {
        let (change, result) = durable(change, result);
        outcome(change, result);
    }
    recorder.close();
    // Not started after a stop, or abandoned in flight past the drain timeout.
    let sent = sent.load(Ordering::SeqCst);
    report.skipped = total.saturating_sub(sent);
    report.unconfirmed = sent.saturating_sub(report.applied + remote_failed);
    report.interrupted = cancel.is_cancelled();
    report.halted = halt.lock().ok().and_then(|h| h.clone());
    carry.halt.clone_from(&report.halted);
    carry.started = started.load(Ordering::SeqCst);
    ticker.abort();
    report
}

/// Records what X holds for media that drifted, sending nothing: their
/// records must say what X holds, or the next plan would send it again.
/// `all`: every drifted media (`refresh`); otherwise only those the plan
/// does not change (they drifted to what the manifests now want). The
/// image URLs the read found are kept too, for later reviews.
pub fn record_drift(plan: &Plan, store: &dyn StateWriter, all: bool) -> anyhow::Result<usize> {
    let Some(refresh) = &plan.refresh else {
        return Ok(0);
    };
    store.record_previews(&refresh.previews)?;
    let mut group = Vec::new();
    for drift in &refresh.drifted {
        if !all && plan.changes.iter().any(|c| c.id == drift.id) {
            continue;
        }
        if let Some(record) = store.get(&drift.id)? {
            let live = crate::refresh::with_live(&record.metadata, drift);
            let recording = Recording {
                id: drift.id,
                before: Some(record.metadata),
                after: live,
            };
            group.push((recording, Event::Refresh));
        }
    }
    // One group: a bucket writes one journal object, not one per media.
    let mut recorded = 0;
    for outcome in store.record_group(group) {
        outcome?;
        recorded += 1;
    }
    Ok(recorded)
}
