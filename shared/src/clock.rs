//! Injected time. Every check that depends on the time (deadlines,
//! certificate and CRL validity, checkpoint and cosignature timestamps) asks
//! a [`Clock`], so tests can move time instead of waiting for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in whole seconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The time as seconds since the epoch.
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// The time in RFC 3339 form (`2026-11-03T19:00:00Z`), for people.
    pub fn to_rfc3339(self) -> String {
        i64::try_from(self.0)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("@{}", self.0))
    }

    /// Parses an RFC 3339 time (`2026-11-03T19:00:00Z`, or with an offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        u64::try_from(t.unix_timestamp()).ok().map(UnixTime)
    }

    /// As the time type used by rustls and webpki.
    pub fn to_pki(self) -> rustls_pki_types::UnixTime {
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(self.0))
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_secs(self.0)
    }
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock set before 1970 is treated as the epoch: every deadline
        // check then fails closed ("not yet open").
        UnixTime(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

/// A clock that stands still until a test moves it. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: UnixTime) -> Self {
        ManualClock(Arc::new(AtomicU64::new(t.0)))
    }

    /// Sets the time.
    pub fn set(&self, t: UnixTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(UnixTime(100));
        let shared = c.clone();
        assert_eq!(c.now(), UnixTime(100));
        shared.advance(5);
        assert_eq!(c.now(), UnixTime(105));
        c.set(UnixTime(7));
        assert_eq!(shared.now(), UnixTime(7));
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = UnixTime::parse_rfc3339("2026-11-03T19:00:00Z").unwrap();
        assert_eq!(t, UnixTime(1_793_732_400));
        assert_eq!(t.to_rfc3339(), "2026-11-03T19:00:00Z");
        assert!(UnixTime::parse_rfc3339("yesterday").is_none());
        assert!(UnixTime::parse_rfc3339("1969-12-31T23:59:59Z").is_none());
    }
}
