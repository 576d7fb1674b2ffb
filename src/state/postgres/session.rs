//! One PostgreSQL connection, used from synchronous code anywhere (inside
//! apply's runtime too): the connection lives on its own small runtime,
//! and each call is spawned there and waited for over a channel, so no
//! caller ever nests one runtime's `block_on` inside another.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::sync::RwLock;
use tokio_postgres::Client;

use super::target::Target;
use super::tls;

/// The longest xmeta waits for the server to accept a session.
const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// The longest a call may take before the state counts as not answering:
/// long enough for the biggest write (an import of 1,000,000 media), so
/// the server's own `statement_timeout` (the same) ends it first.
pub const CALL_WAIT: Duration = Duration::from_mins(5);
/// The longest a confirmation's write may take (`apply`): a store that
/// stops answering ends the run within this, not at the call bound.
pub const RECORD_WAIT: Duration = Duration::from_secs(30);
/// How long a clean close may take (the server acknowledging Terminate).
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often a wait looks at the drain deadline a signal sets.
const SLICE: Duration = Duration::from_millis(200);

pub struct Session {
    runtime: Option<tokio::runtime::Runtime>,
    /// `None` once closed.
    client: Option<Arc<RwLock<Client>>>,
    /// The task that drives the connection: it ends when the session does.
    connection: Option<tokio::task::JoinHandle<()>>,
    /// A call ran past its bound: the server stopped answering, and every
    /// later call fails at once instead of waiting again.
    stalled: AtomicBool,
    /// An answer started ahead and not yet taken (`stream_ahead`).
    ahead: Mutex<Option<Ahead>>,
    pub target: Target,
}

/// How many parts an answer streams ahead of whoever takes them.
const AHEAD: usize = 2;

/// An answer started ahead: its task, and the receiver of its parts (of
/// the type its `stream` takes).
struct Ahead {
    producer: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    received: Box<dyn std::any::Any + Send>,
}

type Started<P> = (
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    tokio::sync::mpsc::Receiver<P>,
);

impl Ahead {
    /// Its task and receiver, if its parts are `P`s; itself if not.
    fn of<P: Send + 'static>(self) -> Result<Started<P>, Ahead> {
        match self.received.downcast::<tokio::sync::mpsc::Receiver<P>>() {
            Ok(received) => Ok((self.producer, *received)),
            Err(received) => Err(Ahead {
                producer: self.producer,
                received,
            }),
        }
    }
}

/// Why a wait ended without an answer.
enum Unanswered {
    /// Past the bound, or the drain deadline after a signal.
    Stalled(Duration),
    /// The runtime's worker is gone.
    Gone,
}

impl Session {
    pub fn connect(target: &Target) -> anyhow::Result<Session> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("xmeta-postgres")
            .enable_all()
            .build()?;
        let tls = tls::connector(&target.tls)?;
        let config = target.config.clone();
        let settings = server_settings(config.get_options().unwrap_or(""));
        let connected = wait(&runtime, CONNECT_WAIT, async move {
            let (client, connection) = config.connect(tls).await?;
            let driver = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("the PostgreSQL connection ended: {e}");
                }
            });
            // Asked of the server for this session: it notices a vanished
            // client (and frees its lock) within a minute, not at its 2 h
            // keepalive default, and ends any statement that runs away.
            client.batch_execute(&settings).await?;
            Ok((client, driver))
        });
        let (client, driver) = match connected {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => {
                return Err(anyhow!(
                    "cannot connect to the PostgreSQL state at {target}: {}",
                    target.scrub(&chain(&e))
                ))
            }
            Err(Unanswered::Stalled(after)) => {
                runtime.shutdown_background();
                return Err(anyhow!(
                    "cannot connect to the PostgreSQL state at {target}: it did not answer within {} s",
                    after.as_secs()
                ));
            }
            Err(Unanswered::Gone) => {
                return Err(anyhow!(
                    "cannot connect to the PostgreSQL state at {target}"
                ))
            }
        };
        Ok(Session {
            runtime: Some(runtime),
            client: Some(Arc::new(RwLock::new(client))),
            connection: Some(driver),
            stalled: AtomicBool::new(false),
            ahead: Mutex::new(None),
            target: target.clone(),
        })
    }

    /// Runs `call` on the connection and waits for it (at most
    /// `CALL_WAIT`); errors name the state, never its password.
    pub fn run<T, F, Fut>(&self, call: F) -> anyhow::Result<T>
    where
        F: FnOnce(Arc<RwLock<Client>>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.run_within(CALL_WAIT, call)
    }

    /// Starts `produce` on the connection, which sends its answer in parts
    /// to the channel it is given, at most `AHEAD` parts ahead of whoever
    /// takes them (`stream`): the server then waits on the socket. For an
    /// answer wanted later (a plan's digests, asked for beside its parse,
    /// compared after it). Any other call first lets it go, so that its
    /// own answer is not queued behind rows nobody reads.
    pub fn stream_ahead<P, F, Fut>(&self, produce: F)
    where
        P: Send + 'static,
        F: FnOnce(Arc<RwLock<Client>>, tokio::sync::mpsc::Sender<P>) -> Fut,
        Fut: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        self.let_go_ahead();
        // A closed or stalled session is asked nothing; `stream` says why.
        if let Ok((producer, received)) = self.start(produce) {
            *self.ahead.lock().unwrap_or_else(PoisonError::into_inner) = Some(Ahead {
                producer,
                received: Box::new(received),
            });
        }
    }

    /// Spawns `produce` on the connection, its parts sent to the channel
    /// it is given (`AHEAD` at most waiting).
    fn start<P, F, Fut>(&self, produce: F) -> anyhow::Result<Started<P>>
    where
        P: Send + 'static,
        F: FnOnce(Arc<RwLock<Client>>, tokio::sync::mpsc::Sender<P>) -> Fut,
        Fut: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let (runtime, client) = self.open()?;
        let (parts, received) = tokio::sync::mpsc::channel::<P>(AHEAD);
        Ok((runtime.spawn(produce(client.clone(), parts)), received))
    }

    /// The runtime and the client, unless the session is closed or its
    /// server stopped answering (then nothing more is asked of it).
    fn open(&self) -> anyhow::Result<(&tokio::runtime::Runtime, &Arc<RwLock<Client>>)> {
        let (Some(runtime), Some(client)) = (self.runtime.as_ref(), self.client.as_ref()) else {
            return Err(anyhow!("the PostgreSQL state at {} is closed", self.target));
        };
        if self.stalled.load(Ordering::SeqCst) {
            return Err(anyhow!(
                "the state at {} stopped answering; nothing more was asked of it",
                self.target
            ));
        }
        Ok((runtime, client))
    }

    /// Hands each part of the answer `produce` sends (see `stream_ahead`)
    /// to `consume` on this thread as it comes: the one started ahead if
    /// there is one, else `produce` now. A read of every record is never
    /// held whole. Each part is waited for as a call is (`run`).
    /// `consume` returns `false` to stop early: the rest is let go. It
    /// must not call the session: that call's answer would queue behind
    /// the rows not yet taken.
    pub fn stream<P, F, Fut>(
        &self,
        produce: F,
        mut consume: impl FnMut(P) -> bool,
    ) -> anyhow::Result<()>
    where
        P: Send + 'static,
        F: FnOnce(Arc<RwLock<Client>>, tokio::sync::mpsc::Sender<P>) -> Fut,
        Fut: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let taken = self
            .ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let (producer, received) = match taken.map(Ahead::of::<P>) {
            Some(Ok(started)) => started,
            other => {
                if let Some(Err(other)) = other {
                    other.producer.abort();
                }
                self.start(produce)?
            }
        };
        let mut received = Some(received);
        let mut whole = || -> anyhow::Result<bool> {
            loop {
                let mut taken = received.take().expect("given back by each wait");
                let (back, part) = self.run_within_ahead(CALL_WAIT, |_| async move {
                    let part = taken.recv().await;
                    Ok((taken, part))
                })?;
                received = Some(back);
                match part {
                    Some(part) => {
                        if !consume(part) {
                            return Ok(false);
                        }
                    }
                    None => return Ok(true),
                }
            }
        };
        // Aborted on every way out but the end of the answer: dropping the
        // query's stream lets the connection discard the rest of it.
        match whole() {
            Ok(true) => {}
            stopped => {
                producer.abort();
                return stopped.map(drop);
            }
        }
        match self.run_within_ahead(CALL_WAIT, |_| async move { Ok(producer.await) })? {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow!(
                "the PostgreSQL state at {}: {}",
                self.target,
                self.target.scrub(&chain(&e))
            )),
            Err(_) => Err(anyhow!(
                "the PostgreSQL state at {}: a read failed unexpectedly",
                self.target
            )),
        }
    }

    /// Lets go of an answer started ahead and not taken.
    fn let_go_ahead(&self) {
        let ahead = self
            .ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ahead) = ahead {
            ahead.producer.abort();
        }
    }

    /// `run`, waiting at most `bound` (and, after a signal, no later than
    /// the drain deadline). A call that runs past it marks the session
    /// stalled: the server stopped answering, and nothing more is asked.
    pub fn run_within<T, F, Fut>(&self, bound: Duration, call: F) -> anyhow::Result<T>
    where
        F: FnOnce(Arc<RwLock<Client>>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.let_go_ahead();
        self.run_within_ahead(bound, call)
    }

    /// `run_within`, leaving an answer started ahead as it is (the waits
    /// of `stream`, which took it).
    fn run_within_ahead<T, F, Fut>(&self, bound: Duration, call: F) -> anyhow::Result<T>
    where
        F: FnOnce(Arc<RwLock<Client>>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (runtime, client) = self.open()?;
        match wait(runtime, bound, call(client.clone())) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(anyhow!(
                "the PostgreSQL state at {}: {}",
                self.target,
                self.target.scrub(&chain(&e))
            )),
            Err(Unanswered::Stalled(after)) => {
                self.stalled.store(true, Ordering::SeqCst);
                Err(anyhow!(
                    "the state at {} stopped answering after {} s",
                    self.target,
                    after.as_secs().max(1)
                ))
            }
            Err(Unanswered::Gone) => Err(anyhow!(
                "the PostgreSQL state at {}: the connection's worker stopped",
                self.target
            )),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Its task holds the client: the session would not end with it.
        // The server's rows of an answer let go are read and dropped
        // before the connection closes (a plan that failed after its
        // parse), within `CLOSE_WAIT`; past it the socket is closed.
        self.let_go_ahead();
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // A clean close: the last client's drop sends Terminate, and the
        // server ends the session (no "unexpected EOF" in its log, no
        // transaction left open). Bounded; skipped when it stopped answering.
        if let (false, Some(client), Some(driver)) = (
            self.stalled.load(Ordering::SeqCst),
            self.client.take(),
            self.connection.take(),
        ) {
            let _ = wait(&runtime, CLOSE_WAIT, async move {
                drop(client);
                let _ = driver.await;
            });
        }
        // Callable from inside another runtime, unlike dropping one; the
        // connection closes with it, ending the database session.
        runtime.shutdown_background();
    }
}

/// The `SET`s each session starts with, but those the URL's `options`
/// already sets (`-c statement_timeout=…`: the user's choice wins).
fn server_settings(options: &str) -> String {
    let wanted = [
        ("tcp_keepalives_idle", "10"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
        ("statement_timeout", "'300s'"),
        ("idle_in_transaction_session_timeout", "'600s'"),
    ];
    wanted
        .iter()
        .filter(|(name, _)| !options.contains(name))
        .map(|(name, value)| format!("SET {name} = {value};"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `call` on `runtime` and waits for its answer, at most `bound`,
/// and no later than the state's deadline once a signal came (just before
/// the drain's end: see `shutdown::state_deadline`).
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    bound: Duration,
    call: impl Future<Output = T> + Send + 'static,
) -> Result<T, Unanswered> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(call.await);
    });
    let started = Instant::now();
    loop {
        let mut until = started + bound;
        if let Some(deadline) = crate::shutdown::state_deadline() {
            until = until.min(deadline);
        }
        let now = Instant::now();
        if now >= until {
            return Err(Unanswered::Stalled(now - started));
        }
        // In slices: a signal may set the deadline while this waits.
        match rx.recv_timeout((until - now).min(SLICE)) {
            Ok(value) => return Ok(value),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(Unanswered::Gone),
        }
    }
}

/// The error with its causes: tokio-postgres says only "db error" at the
/// top and puts the server's message in the source.
pub fn chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
