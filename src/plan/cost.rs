//! What a plan will cost and how long its apply takes at least, from X's
//! published limits and price for `POST /2/media/metadata`.

use std::time::Duration;

/// Requests per user per 15-minute window.
pub const USER_WINDOW_REQUESTS: u64 = 500;
pub const USER_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Requests per app per 24 hours.
pub const APP_DAILY_REQUESTS: u64 = 50_000;
/// X's price of one request, in US dollars.
pub const PRICE_PER_REQUEST_USD: f64 = 0.005;

/// The estimate for some number of requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    pub requests: u64,
    /// Of `requests`, the reads of `--refresh` (`GET /2/media`).
    pub reads: u64,
    pub usd: f64,
    /// The least time X's per-user windows allow: the first 500 requests
    /// go at once, each further 500 one window later.
    pub minimum: Duration,
    /// Days the per-app daily cap stretches the apply over, past one.
    pub days: Option<u64>,
}

/// Posts and reads, each billed as a request.
pub fn estimate(posts: usize, reads: usize, price_per_request: f64) -> Cost {
    let requests = (posts + reads) as u64;
    let windows = requests.div_ceil(USER_WINDOW_REQUESTS);
    let secs = windows.saturating_sub(1) * USER_WINDOW.as_secs();
    Cost {
        requests,
        reads: reads as u64,
        usd: requests as f64 * price_per_request,
        minimum: Duration::from_secs(secs),
        days: (requests > APP_DAILY_REQUESTS).then(|| requests.div_ceil(APP_DAILY_REQUESTS)),
    }
}

impl Cost {
    /// `Cost: 1,000 requests ≈ $5.00; at least 15 min at 500 requests per 15 min.`
    pub fn line(&self) -> String {
        let reads = if self.reads > 0 {
            format!(
                " ({} read{})",
                thousands(self.reads),
                if self.reads == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        let head = format!(
            "Cost: {} request{}{reads} ≈ {}",
            thousands(self.requests),
            if self.requests == 1 { "" } else { "s" },
            dollars(self.usd)
        );
        let mut line = if self.requests == 0 {
            format!("{head}.")
        } else if self.minimum.is_zero() {
            format!("{head}; fits in one 15-minute window (500 requests).")
        } else {
            format!(
                "{head}; at least {} at 500 requests per 15 min.",
                crate::time::human(self.minimum)
            )
        };
        if let Some(days) = self.days {
            line.push_str(&format!(
                " Over X's 50,000 requests per day per app: the apply needs at least {days} days."
            ));
        }
        line
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money as it is read: cents, or a tenth of a cent under $0.01 (X's
/// price is half a cent), never float noise (`$0.000019999999999999998`).
pub fn dollars(usd: f64) -> String {
    if usd > 0.0 && usd < 0.01 {
        let mills = (usd * 1000.0).round() as u64;
        return if mills == 0 {
            "under $0.001".to_string()
        } else {
            format!("$0.00{mills}")
        };
    }
    let cents = (usd * 100.0).round() as u64;
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_small_and_large_plans() {
        assert_eq!(
            estimate(1, 0, 0.005).line(),
            "Cost: 1 request ≈ $0.005; fits in one 15-minute window (500 requests)."
        );
        assert_eq!(estimate(0, 0, 0.005).line(), "Cost: 0 requests ≈ $0.00.");
        assert_eq!(
            estimate(1_000, 0, 0.005).line(),
            "Cost: 1,000 requests ≈ $5.00; at least 15 min at 500 requests per 15 min."
        );
        assert_eq!(
            estimate(1, 0, 0.000_000_1).line(),
            "Cost: 1 request ≈ under $0.001; fits in one 15-minute window (500 requests)."
        );
        assert_eq!(
            estimate(100_000, 0, 0.005).line(),
            "Cost: 100,000 requests ≈ $500.00; at least 50 h at 500 requests per 15 min. Over X's 50,000 requests per day per app: the apply needs at least 2 days."
        );
    }
}
