//! Capped exponential backoff between failed watch cycles, as a
//! controller's error policy retries a failed reconcile.

use std::time::{Duration, Instant};

/// Capped exponential backoff between failed cycles (1 s, 2 s, … 60 s).
#[derive(Default)]
pub struct Retry {
    failures: u32,
    /// When the failed cycle is tried again.
    pub due: Option<Instant>,
}

impl Retry {
    const FIRST: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_mins(1);

    /// One more failure: when to try again.
    pub fn fail(&mut self) -> Duration {
        let wait = Self::FIRST
            .saturating_mul(1 << self.failures.min(6))
            .min(Self::CAP);
        self.failures += 1;
        self.due = Some(Instant::now() + wait);
        wait
    }
}
