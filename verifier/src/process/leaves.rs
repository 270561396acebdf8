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

pub(super) fn leaves(conn: &Connection, mut f: impl FnMut(Leaf) -> Result<()>) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT leaf_index, log_entry, salt, voter_id, identity, ciphertext FROM leaves ORDER BY leaf_index",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let index = r.get::<_, i64>(0)? as u64;
        let entry = LogEntry::from_bytes(&r.get::<_, Vec<u8>>(1)?)
            .with_context(|| format!("leaf {index}"))?;
        f(Leaf {
            index,
            entry,
            salt: r.get(2)?,
            voter_id: r.get(3)?,
            identity: r.get(4)?,
            ciphertext: r.get(5)?,
        })?;
    }
    Ok(())
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
