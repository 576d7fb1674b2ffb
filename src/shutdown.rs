//! The one shutdown path of `apply` and `watch`: the first Ctrl-C or
//! SIGTERM cancels (no new request starts; those in flight finish, within a
//! bounded wait, and are recorded), the second exits at once with 130.
//! The token is cancelled before anything is written, and writing never
//! panics, so a closed stderr can not leave the process unstoppable.

use std::sync::OnceLock;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// When the first signal came, if one did.
static STOPPED_AT: OnceLock<Instant> = OnceLock::new();

/// How much sooner than the drain's end a wait on the state gives up:
/// confirmations are written on apply's recorder thread, so a state that
/// stopped answering must say so before apply stops waiting for the
/// requests whose confirmations it holds, or the run would blame X
/// ("not confirmed in time") for the state's stall.
const STATE_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// After a signal, the last moment a wait on the state may last: no wait
/// goes past the drain's end (`apply::DRAIN_TIMEOUT` after the signal).
pub fn state_deadline() -> Option<Instant> {
    STOPPED_AT
        .get()
        .map(|at| *at + crate::apply::DRAIN_TIMEOUT.saturating_sub(STATE_MARGIN))
}

/// A runtime with the signal handlers installed on it.
pub struct Shutdown {
    pub runtime: tokio::runtime::Runtime,
    pub cancel: CancellationToken,
}

impl Shutdown {
    pub fn install() -> anyhow::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        // Named: its workers outlive a watch's cycles, and the binary's
        // allocator gives them the C library's blocks (`pool_blocks.rs`).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("xmeta-requests")
            .enable_all()
            .build()?;
        let cancel = CancellationToken::new();
        // Registered here, before any request can start.
        let (mut term, mut int) = {
            let _context = runtime.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            )
        };
        let token = cancel.clone();
        runtime.spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = STOPPED_AT.set(Instant::now());
            token.cancel();
            crate::logging::line(
                "warning",
                "stopping: no new requests; waiting for those in flight (signal again to quit now)",
            );
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            // Every confirmed media is already recorded; the kernel
            // releases the state lock with the process.
            std::process::exit(130);
        });
        Ok(Shutdown { runtime, cancel })
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
