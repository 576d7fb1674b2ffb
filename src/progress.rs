//! Apply progress on stderr: an indicatif bar on a terminal, plain periodic
//! lines otherwise. One count (finished of total), then failures and
//! waits for the rate limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::x_api::Client;

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Progress {
    pub fn new(total: usize, terminal: bool) -> Arc<Progress> {
        let bar = terminal.then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            // Log lines and messages now print around the bar.
            crate::logging::set_bar(Some(bar.clone()));
            bar
        });
        Arc::new(Progress {
            bar,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        })
    }

    pub fn finish_one(&self, ok: bool) {
        let counter = if ok { &self.done } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            // Position and message move together, so they never disagree.
            bar.set_message(self.status(0));
            bar.inc(1);
        }
    }

    /// What the count (finished of total) does not say: failures and
    /// waits. Never a second count of the same thing: `84/479 85 done`
    /// read as two numbers that disagree.
    fn status(&self, waiting: usize) -> String {
        let failed = self.failed.load(Ordering::Relaxed);
        let mut parts = Vec::new();
        if failed > 0 {
            parts.push(format!("{failed} failed"));
        }
        if waiting > 0 {
            parts.push(format!("{waiting} waiting for the rate limit"));
        }
        parts.join(", ")
    }

    /// Refreshes the display until the returned task is aborted (dropping
    /// a tokio `JoinHandle` would detach it, not stop it).
    pub fn spawn_ticker(self: &Arc<Self>, client: Arc<Client>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let every = if me.bar.is_some() {
                Duration::from_millis(200)
            } else {
                PLAIN_EVERY
            };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let status = me.status(client.waiting_for_rate_limit());
                if let Some(bar) = &me.bar {
                    bar.set_message(status);
                } else {
                    let finished =
                        me.done.load(Ordering::Relaxed) + me.failed.load(Ordering::Relaxed);
                    let status = if status.is_empty() {
                        String::new()
                    } else {
                        format!(" ({status})")
                    };
                    crate::logging::note(&format!("progress: {finished}/{}{status}", me.total));
                }
            }
        })
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            crate::logging::set_bar(None);
        }
    }
}
