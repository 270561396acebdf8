//! Per-voter limits held in memory: an hourly token bucket of uploads, and
//! the uploads a voter has in progress at once. (The cap on ballots logged
//! per voter is in the database, kept by the sequencer.)

use shared::clock::UnixTime;
use std::collections::HashMap;
use std::sync::Mutex;

/// Uploads one voter may have in progress at once. A voter sends one
/// ballot at a time; the limit keeps a few stolen cards from holding many
/// of the gateway's upload slots with slow bodies.
const UPLOADS_IN_PROGRESS_PER_VOTER: u32 = 2;

/// The per-voter limiter.
#[derive(Debug)]
pub(crate) struct VoterLimits {
    per_hour: u32,
    buckets: Mutex<HashMap<String, (f64, u64)>>,
    in_progress: Mutex<HashMap<String, u32>>,
}

/// Marks one upload of a voter as in progress until dropped.
pub(crate) struct InProgress<'a> {
    limits: &'a VoterLimits,
    voter_id: String,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.limits.in_progress.lock() {
            if let Some(n) = m.get_mut(&self.voter_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.voter_id);
                }
            }
        }
    }
}

impl VoterLimits {
    /// Limits of `per_hour` uploads per voter per hour.
    pub(crate) fn new(per_hour: u32) -> Self {
        VoterLimits {
            per_hour,
            buckets: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an upload of `voter_id` as in progress; `None` when the voter
    /// already has the most allowed.
    pub(crate) fn begin_upload(&self, voter_id: &str) -> Option<InProgress<'_>> {
        let mut m = self.in_progress.lock().ok()?;
        let n = m.entry(voter_id.to_owned()).or_insert(0);
        if *n >= UPLOADS_IN_PROGRESS_PER_VOTER {
            return None;
        }
        *n += 1;
        Some(InProgress {
            limits: self,
            voter_id: voter_id.to_owned(),
        })
    }

    /// Takes one upload token for `voter_id` at `now`; false when the voter
    /// is over the hourly rate.
    pub(crate) fn take_token(&self, voter_id: &str, now: UnixTime) -> bool {
        let capacity = f64::from(self.per_hour.max(1));
        let per_sec = capacity / 3600.0;
        let Ok(mut m) = self.buckets.lock() else {
            return false;
        };
        let (tokens, last) = m.entry(voter_id.to_owned()).or_insert((capacity, now.0));
        let elapsed = now.0.saturating_sub(*last) as f64;
        *tokens = (*tokens + elapsed * per_sec).min(capacity);
        *last = now.0;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
