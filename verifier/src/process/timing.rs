//! The time rule (`docs/spec/witnesses.md`, "The time rule"): when a
//! ballot is proven to have existed comes from the witnesses, never from
//! the gateway's `received_at` alone.
//!
//! A leaf is proven to exist by the quorum time of the first witnessed
//! checkpoint that includes it. A leaf no witnessed checkpoint includes yet
//! is proven to exist by this computer's clock (it was imported). A ballot
//! is late when that time is after the deadline plus the grace, or when the
//! gateway itself stamped it at or after the deadline; its card is judged
//! at that time.

use anyhow::Result;
use rusqlite::Connection;
use shared::clock::UnixTime;
use shared::manifest::ElectionManifest;
use shared::witness::{Closing, WitnessedTimes};

/// When one ballot is proven to have existed, and what follows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    /// The time its card is judged at.
    pub(super) proven: UnixTime,
    /// Logged after the last checkpoint witnessed in time (or stamped late
    /// by the gateway).
    pub(super) late: bool,
    /// Before the election opened (by the witnesses or the gateway).
    pub(super) early: bool,
    /// Late by the witnesses although the gateway stamped it on time.
    pub(super) late_by_witnesses_only: bool,
}

/// The witnessed checkpoints, the manifest's window and this run's time.
#[derive(Debug)]
pub(super) struct TimeRule {
    times: WitnessedTimes,
    opens_at: UnixTime,
    closes_at: UnixTime,
    bound: UnixTime,
    now: UnixTime,
}

impl TimeRule {
    /// Reads the witnessed checkpoints every import verified.
    pub(super) fn load(conn: &Connection, m: &ElectionManifest, now: UnixTime) -> Result<Self> {
        let mut stmt = conn.prepare("SELECT size, quorum_time FROM witnessed")?;
        let points = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    UnixTime(r.get::<_, i64>(1)? as u64),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(TimeRule {
            times: WitnessedTimes::new(points),
            opens_at: m.opens_at,
            closes_at: m.closes_at,
            bound: m.closing_bound(),
            now,
        })
    }

    /// The timing of leaf `index`, which the gateway stamped `received_at`.
    pub(super) fn timing(&self, index: u64, received_at: UnixTime) -> Timing {
        let proven = self.times.witnessed_by(index).unwrap_or(self.now);
        let late_by_witnesses = proven > self.bound;
        let stamped_late = received_at >= self.closes_at;
        Timing {
            proven,
            late: late_by_witnesses || stamped_late,
            early: received_at < self.opens_at || proven < self.opens_at,
            late_by_witnesses_only: late_by_witnesses && !stamped_late,
        }
    }

    /// Whether this run is after the deadline plus the grace (a final run).
    pub(super) fn is_final(&self) -> bool {
        self.now > self.bound
    }

    /// What the board must look into, in words; empty when nothing.
    pub(super) fn alarms(&self, log_size: u64, late_by_witnesses_only: u64) -> Vec<String> {
        let mut out = Vec::new();
        let in_time = self.times.size_by(self.bound);
        if self.is_final() {
            match self.times.closing(self.closes_at, self.bound) {
                Closing::Witnessed { .. } => {}
                Closing::Late { time } => out.push(format!(
                    "LATE CLOSING CHECKPOINT: the witnesses first cosigned a checkpoint after the deadline at {time}, later than the deadline plus the grace period ({}). Only the {in_time} ballots logged before the last checkpoint witnessed in time count as on time; {} ballot(s) after it were rejected as late. Find out why (witnesses down, or the gateway held its closing checkpoint back) before certifying.",
                    self.bound,
                    log_size.saturating_sub(in_time),
                )),
                Closing::Missing => out.push(format!(
                    "NO CLOSING CHECKPOINT: no checkpoint of this log was cosigned by a quorum of the witnesses at or after the deadline ({}). Only the {in_time} ballots logged before the last checkpoint witnessed by the deadline plus the grace period count as on time; {} ballot(s) after it were rejected as late. Import the gateway's latest bundle, or find out why the witnesses did not cosign, before certifying.",
                    self.closes_at,
                    log_size.saturating_sub(in_time),
                )),
            }
        }
        if late_by_witnesses_only > 0 {
            out.push(format!(
                "BACKDATED OR UNWITNESSED BALLOTS: {late_by_witnesses_only} ballot(s) the gateway stamped as received before the deadline are in no checkpoint the witnesses cosigned by the deadline plus the grace period; they were rejected as late. A gateway whose clock is wrong, or one that backdates ballots, does this."
            ));
        }
        out
    }

    /// A line for the report on how time was judged.
    pub(super) fn summary(&self) -> String {
        if self.is_final() {
            format!(
                "Time: {} witnessed checkpoint(s); on time means in a checkpoint a quorum of the witnesses cosigned by {} (the deadline plus the grace period).",
                self.times.len(),
                self.bound
            )
        } else {
            format!(
                "Time: INTERIM RUN before the deadline plus the grace period ({}): ballots in no witnessed checkpoint yet were judged at this computer's time, {}.",
                self.bound, self.now
            )
        }
    }
}
