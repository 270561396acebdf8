//! Refusals are counted, not stored one by one. Every refused request or
//! handshake adds one to a counter in memory, keyed by its kind, its code
//! and its source: the voter identity when the client certificate was
//! valid, otherwise `unauthenticated` (no address, no certificate subject:
//! an attacker's choices are not written to disk). The sequencer's writer
//! adds the counters to the `refusals` table inside the transaction it
//! commits anyway (a group of ballots), or once a second in a small
//! transaction of their own when no group came, so a flood of
//! refusals costs the ballot writer one upsert per counter, not one fsync
//! per refusal, and the table grows with the number of codes and voters,
//! never with the number of refusals. One sample detail per counter is
//! kept, escaped and cut to [`MAX_SAMPLE`] characters.

use crate::metrics::RefusalLabels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::sync::Mutex;

/// The longest sample detail kept.
pub const MAX_SAMPLE: usize = 256;
/// The most counters held in memory between flushes; refusals past that
/// are added to one `overflow` counter per kind and code.
pub const MAX_COUNTERS: usize = 4096;
/// The source of a refusal whose client showed no valid certificate.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// What a counter is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// `tls` or `rejection`.
    pub kind: &'static str,
    /// The stable error code.
    pub code: String,
    /// The voter identity, or [`UNAUTHENTICATED`].
    pub source: String,
}

/// A counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// How many.
    pub count: u64,
    /// The first and last time (Unix seconds).
    pub first_at: u64,
    /// The last time.
    pub last_at: u64,
    /// One detail, escaped and cut.
    pub sample: String,
}

/// The counters since the last flush.
#[derive(Debug, Default)]
pub struct Refusals {
    counters: Mutex<HashMap<Key, Count>>,
    /// Every refusal since start, by kind and code, for the metrics (never
    /// taken; bounded by the number of codes).
    totals: Family<RefusalLabels, Counter>,
}

impl Refusals {
    /// Counts one refusal.
    pub fn count(
        &self,
        kind: &'static str,
        code: &str,
        identity: Option<&str>,
        at: u64,
        detail: &str,
    ) {
        let code = cut(code, 64);
        self.totals
            .get_or_create(&RefusalLabels {
                kind,
                code: code.clone(),
            })
            .inc();
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        let mut key = Key {
            kind,
            code,
            source: identity.map_or_else(|| UNAUTHENTICATED.to_owned(), |i| cut(i, 128)),
        };
        if map.len() >= MAX_COUNTERS && !map.contains_key(&key) {
            key.source = "overflow".into();
        }
        let c = map.entry(key).or_insert_with(|| Count {
            count: 0,
            first_at: at,
            last_at: at,
            sample: cut(detail, MAX_SAMPLE),
        });
        c.count += 1;
        c.first_at = c.first_at.min(at);
        c.last_at = c.last_at.max(at);
    }

    /// The running totals by kind and code (the metrics register a handle).
    pub fn totals(&self) -> Family<RefusalLabels, Counter> {
        self.totals.clone()
    }

    /// Whether no refusal was counted since the last take.
    pub fn is_empty(&self) -> bool {
        self.counters.lock().map_or(true, |m| m.is_empty())
    }

    /// Takes the counters (for writing).
    pub fn take(&self) -> Vec<(Key, Count)> {
        match self.counters.lock() {
            Ok(mut m) => {
                let mut v: Vec<(Key, Count)> = m.drain().collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            Err(_) => Vec::new(),
        }
    }

    /// Puts counters back that could not be written.
    pub fn put_back(&self, taken: Vec<(Key, Count)>) {
        let Ok(mut map) = self.counters.lock() else {
            return;
        };
        for (k, c) in taken {
            let e = map.entry(k).or_insert_with(|| Count {
                count: 0,
                first_at: c.first_at,
                last_at: c.last_at,
                sample: c.sample.clone(),
            });
            e.count += c.count;
            e.first_at = e.first_at.min(c.first_at);
            e.last_at = e.last_at.max(c.last_at);
        }
    }
}

/// `s` escaped and cut to at most `max` characters.
fn cut(s: &str, max: usize) -> String {
    shared::text::printable(s).chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_code_and_source_and_stays_bounded() {
        let r = Refusals::default();
        for i in 0..1000u64 {
            r.count("tls", "certificate-revoked", None, 100 + i, "CN=\u{1b}[2Kx");
        }
        r.count(
            "rejection",
            "not-openpgp",
            Some("edipi:1"),
            50,
            &"d".repeat(1000),
        );
        let v = r.take();
        assert_eq!(v.len(), 2);
        let (k, c) = &v[1];
        assert_eq!(
            (k.kind, k.source.as_str(), c.count, c.first_at, c.last_at),
            ("tls", UNAUTHENTICATED, 1000, 100, 1099)
        );
        assert_eq!(c.sample, "CN=\\u{1b}[2Kx");
        assert_eq!(v[0].1.sample.len(), MAX_SAMPLE);
        assert!(r.take().is_empty());
        // Past the bound, new sources share one counter per code.
        for i in 0..(MAX_COUNTERS + 10) {
            r.count("rejection", "x", Some(&format!("edipi:{i}")), 1, "");
        }
        let v = r.take();
        assert_eq!(v.len(), MAX_COUNTERS + 1);
        assert_eq!(
            v.iter()
                .find(|(k, _)| k.source == "overflow")
                .map(|(_, c)| c.count),
            Some(10)
        );
        r.put_back(v);
        assert!(!r.is_empty());
        assert_eq!(r.take().len(), MAX_COUNTERS + 1);
        assert!(r.is_empty());
    }
}
