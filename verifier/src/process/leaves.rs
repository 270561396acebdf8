//! The imported leaves, read from the verifier's database one at a time.

use anyhow::{Context, Result};
use rusqlite::Connection;
use shared::log_entry::LogEntry;

/// One imported leaf: its log entry, what the gateway recorded with it,
/// and the ciphertext.
pub(super) struct Leaf {
    pub(super) index: u64,
    pub(super) entry: LogEntry,
    pub(super) salt: Vec<u8>,
    pub(super) voter_id: String,
    pub(super) identity: String,
    pub(super) ciphertext: Vec<u8>,
}

pub(super) fn leaf_at(conn: &Connection, index: u64) -> Result<Leaf> {
    let mut found = None;
    let mut stmt = conn.prepare(
        "SELECT log_entry, salt, voter_id, identity, ciphertext FROM leaves WHERE leaf_index = ?1",
    )?;
    let mut rows = stmt.query([index as i64])?;
    if let Some(r) = rows.next()? {
        found = Some(Leaf {
            index,
            entry: LogEntry::from_bytes(&r.get::<_, Vec<u8>>(0)?)?,
            salt: r.get(1)?,
            voter_id: r.get(2)?,
            identity: r.get(3)?,
            ciphertext: r.get(4)?,
        });
    }
    found.with_context(|| format!("leaf {index} is missing"))
}

/// The order of work: every voter's leaves, newest first (the gateway's
/// voter id groups them), and the leaves whose ciphertext is already at
/// an earlier leaf. A few dozen bytes per ballot; no ciphertext.
pub(super) struct Plan {
    /// Per voter id, the leaves newest first.
    pub(super) voters: Vec<(String, Vec<u64>)>,
    /// `(original, copy)`: the copy carries the same ciphertext as the
    /// original, an earlier leaf.
    pub(super) same_ciphertext: Vec<(u64, u64)>,
}

pub(super) fn plan(conn: &Connection) -> Result<Plan> {
    let mut stmt =
        conn.prepare("SELECT leaf_index, voter_id, log_entry FROM leaves ORDER BY leaf_index")?;
    let mut rows = stmt.query([])?;
    let mut by_voter: std::collections::HashMap<String, Vec<u64>> = Default::default();
    let mut first_seen: std::collections::HashMap<shared::merkle::Hash, u64> = Default::default();
    let mut same_ciphertext = Vec::new();
    while let Some(r) = rows.next()? {
        let index = r.get::<_, i64>(0)? as u64;
        let entry = LogEntry::from_bytes(&r.get::<_, Vec<u8>>(2)?)
            .with_context(|| format!("leaf {index}"))?;
        match first_seen.entry(entry.message_sha256) {
            std::collections::hash_map::Entry::Occupied(o) => {
                same_ciphertext.push((*o.get(), index))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
        }
        by_voter.entry(r.get(1)?).or_default().push(index);
    }
    let mut voters: Vec<(String, Vec<u64>)> = by_voter
        .into_iter()
        .map(|(v, mut l)| {
            l.reverse();
            (v, l)
        })
        .collect();
    voters.sort_unstable();
    Ok(Plan {
        voters,
        same_ciphertext,
    })
}

/// Calls `f(leaf_index, voter_id)` for every leaf, in order.
pub(super) fn voter_ids(
    conn: &Connection,
    mut f: impl FnMut(u64, String) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare("SELECT leaf_index, voter_id FROM leaves ORDER BY leaf_index")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(r.get::<_, i64>(0)? as u64, r.get(1)?)?;
    }
    Ok(())
}
