//! One rate-limit budget shared by every worker. It learns the window from
//! the `x-rate-limit-*` headers and counts requests still in flight, so
//! workers wait for the reset instead of sending into a 429.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use reqwest::header::HeaderMap;

#[derive(Debug, Default)]
struct Window {
    /// Requests the server still allows in this window.
    remaining: Option<u64>,
    /// Unix seconds when the window resets.
    reset: Option<u64>,
    in_flight: u64,
    /// "Nothing left" with a reset in the past (or 0): the server's clock
    /// or headers cannot be trusted, so claims back off exponentially
    /// until this instant instead of bursting.
    stale_until: Option<f64>,
    stale_count: u32,
}

/// A reset this far in the past is not a window that just ended.
const STALE_AFTER_SECS: f64 = 5.0;

#[derive(Debug, Default)]
pub struct RateBudget {
    window: Mutex<Window>,
}

/// What the headers of one response said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub remaining: Option<u64>,
    pub reset: Option<u64>,
    /// `Retry-After`, in seconds or as an HTTP date.
    pub retry_after: Option<Duration>,
}

impl Reading {
    pub fn from_headers(headers: &HeaderMap) -> Reading {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let num = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        Reading {
            remaining: num("x-rate-limit-remaining"),
            reset: num("x-rate-limit-reset"),
            retry_after: text("retry-after").and_then(retry_after),
        }
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
fn retry_after(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Time until a Unix-seconds instant, plus up to 250 ms of jitter so
/// workers do not all wake at once.
pub fn until_reset(reset: u64) -> Duration {
    let wait = (reset as f64 - unix_now()).max(0.0);
    let jitter = rand::rng().random_range(0.0..0.25);
    Duration::from_secs_f64(wait + jitter)
}

impl RateBudget {
    /// Claims one request slot, or says how long to wait for the next
    /// window when the known budget is spent.
    pub fn try_claim(&self) -> Result<(), Duration> {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = unix_now();
        if let Some(until) = w.stale_until {
            if now < until {
                return Err(Duration::from_secs_f64(until - now));
            }
            w.stale_until = None;
        }
        if let (Some(0), Some(reset)) = (w.remaining, w.reset) {
            if (reset as f64) + STALE_AFTER_SECS < now {
                // 1 s, 2 s, 4 s … up to a minute, while it lasts.
                w.stale_count += 1;
                let wait =
                    Duration::from_secs(1 << w.stale_count.min(6)).min(Duration::from_mins(1));
                w.stale_until = Some(now + wait.as_secs_f64());
                w.remaining = None;
                w.reset = None;
                return Err(wait);
            }
        }
        if let (Some(remaining), Some(reset)) = (w.remaining, w.reset) {
            if (reset as f64) <= now {
                // The window has reset: its new size is learnt from the
                // next response.
                w.remaining = None;
                w.reset = None;
            } else if remaining <= w.in_flight {
                return Err(until_reset(reset));
            }
        }
        w.in_flight += 1;
        Ok(())
    }

    /// Gives the slot back and learns from the response's headers (none
    /// when the request got no response).
    pub fn release(&self, reading: Option<Reading>) {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.in_flight = w.in_flight.saturating_sub(1);
        let Some(Reading {
            remaining: Some(remaining),
            reset: Some(reset),
            ..
        }) = reading
        else {
            return;
        };
        if remaining > 0 {
            w.stale_count = 0;
        }
        match w.reset {
            // Responses can arrive out of order: within one window the
            // lowest count is the truest.
            Some(current) if current == reset => {
                w.remaining = Some(w.remaining.map_or(remaining, |r| r.min(remaining)));
            }
            Some(current) if current > reset => {}
            _ => {
                w.remaining = Some(remaining);
                w.reset = Some(reset);
            }
        }
    }

    /// After a 429: nothing is left until `reset`.
    pub fn exhaust(&self, reset: u64) {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.remaining = Some(0);
        w.reset = Some(reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_when_the_budget_is_spent_counting_in_flight() {
        let b = RateBudget::default();
        let reset = unix_now() as u64 + 60;
        assert!(b.try_claim().is_ok());
        b.release(Some(Reading {
            remaining: Some(2),
            reset: Some(reset),
            retry_after: None,
        }));
        assert!(b.try_claim().is_ok());
        assert!(b.try_claim().is_ok());
        let wait = b.try_claim().unwrap_err();
        assert!(wait > Duration::from_secs(50));
    }

    #[test]
    fn a_past_reset_frees_the_budget() {
        let b = RateBudget::default();
        b.exhaust(unix_now() as u64 - 1);
        assert!(b.try_claim().is_ok());
    }
}
