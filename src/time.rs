//! Instants as xmeta keeps them: UTC, to the second, stored and shown as
//! RFC 3339 (`2026-11-27T15:21:07Z`), so that states, exports and history
//! written by any version read back the same.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since the Unix epoch: ordered, copied, compared for free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    #[must_use]
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// `2026-11-27T15:21:07Z` (fractions and offsets `Z` only, as written).
    pub fn parse(text: &str) -> Option<Timestamp> {
        humantime::parse_rfc3339_weak(text)
            .ok()
            .map(Timestamp::from)
    }

    #[must_use]
    pub fn as_unix(self) -> u64 {
        self.0
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        // Before 1970 (a badly set clock) counts as the epoch.
        Timestamp(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_secs(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not an RFC 3339 time",
                crate::untrusted::neutralise(&text, 40)
            ))
        })
    }
}

/// A duration as people read it: `45 s`, `30 min`, `50 h`, `3 days`.
pub fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs.div_ceil(60)),
        7200..=259_199 => format!("{} h", secs.div_ceil(3600)),
        _ => format!("{} days", secs.div_ceil(86_400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let t = Timestamp::parse("2026-11-27T15:21:07Z").expect("valid");
        assert_eq!(t.to_string(), "2026-11-27T15:21:07Z");
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            "\"2026-11-27T15:21:07Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2026-11-27T15:21:07Z\"").expect("json");
        assert_eq!(back, t);
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(serde_json::from_str::<Timestamp>("\"2026-13-01T00:00:00Z\"").is_err());
    }
}
