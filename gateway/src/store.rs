//! Durable storage: SQLite in WAL mode with `synchronous=FULL`, so a
//! committed transaction survives a power cut or `kill -9`.
//!
//! Only the sequencer's writer thread writes ballots, leaves and
//! checkpoints; other connections (the export and import-status commands,
//! the security-event log) take the database's write lock briefly and wait
//! for it with a busy timeout.

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use thiserror::Error;

/// The database's file name in the gateway's data folder.
pub const DB_FILE: &str = "gateway.db";

/// The database file of the data folder `data_dir`.
pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join(DB_FILE)
}

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Why storage failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk is full.
    #[error("the disk is full")]
    DiskFull,
    /// The database was written by a newer version of this program.
    #[error("the database has schema version {0}, newer than this program understands ({SCHEMA_VERSION})")]
    TooNew(i64),
    /// The stored log does not verify.
    #[error("the stored log is not consistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Maps SQLite's "disk full" to [`StoreError::DiskFull`].
    pub fn classify(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if f.code == rusqlite::ErrorCode::DiskFull {
                return StoreError::DiskFull;
            }
        }
        StoreError::Sqlite(e)
    }
}

const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE ballots (
        leaf_index     INTEGER PRIMARY KEY,
        voter_id       TEXT NOT NULL,
        identity       TEXT NOT NULL,
        client_cert    BLOB NOT NULL,
        received_at    INTEGER NOT NULL,
        message        BLOB NOT NULL,
        message_sha256 BLOB NOT NULL,
        salt           BLOB NOT NULL,
        log_entry      BLOB NOT NULL,
        leaf_hash      BLOB NOT NULL,
        receipt        TEXT NOT NULL,
        UNIQUE (voter_id, message_sha256)
    );
    CREATE TABLE checkpoints (
        size       INTEGER PRIMARY KEY,
        note       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE exports (
        sequence        INTEGER PRIMARY KEY,
        first_index     INTEGER NOT NULL,
        entry_count     INTEGER NOT NULL,
        checkpoint_size INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    );
    CREATE TABLE security_events (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        code     TEXT NOT NULL,
        identity TEXT,
        peer     TEXT,
        detail   TEXT NOT NULL
    );
    CREATE TABLE statuses (
        leaf_index INTEGER PRIMARY KEY,
        status     INTEGER NOT NULL,
        reason     INTEGER NOT NULL
    );
    ",
    // Version 2: checkpoints cosigned by a quorum of the manifest's
    // witnesses (each with every cosignature gathered), oldest first.
    "
    CREATE TABLE witnessed (
        id          INTEGER PRIMARY KEY,
        size        INTEGER NOT NULL,
        quorum_time INTEGER NOT NULL,
        note        TEXT NOT NULL
    );
    ",
    // Version 3: each export records the last witnessed row it considered,
    // so the next bundle carries the checkpoints witnessed since.
    "
    ALTER TABLE exports ADD COLUMN witnessed_upto INTEGER NOT NULL DEFAULT 0;
    ",
    // Version 4: refused requests and handshakes are counters
    // (`crate::refusals`), not one row each; `security_events` keeps the
    // administrative actions.
    "
    CREATE TABLE refusals (
        kind     TEXT NOT NULL,
        code     TEXT NOT NULL,
        source   TEXT NOT NULL,
        count    INTEGER NOT NULL,
        first_at INTEGER NOT NULL,
        last_at  INTEGER NOT NULL,
        sample   TEXT NOT NULL,
        PRIMARY KEY (kind, code, source)
    );
    ",
    // Version 5: an export is recorded (state `moving`, with where its
    // finished folder is and where it goes) before it is moved into place,
    // and marked `done` after; the next export finishes an interrupted move.
    "
    ALTER TABLE exports ADD COLUMN state TEXT NOT NULL DEFAULT 'done';
    ALTER TABLE exports ADD COLUMN partial_dir TEXT;
    ALTER TABLE exports ADD COLUMN final_dir TEXT;
    ",
];

/// Opens (creating if needed) the database at `path`, applies migrations
/// and sets the durability pragmas.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Rows are mostly ~200 KB ballots: 64 KiB pages need a sixteenth of the
    // overflow pages 4 KiB pages do. Takes effect only when the file is
    // created (before WAL mode is set).
    conn.pragma_update(None, "page_size", 65536)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 1;
        if version < target {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", target)?;
            tx.commit()?;
        }
    }
    Ok(conn)
}

/// Reads a metadata value.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Writes a metadata value.
pub fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(StoreError::classify)?;
    Ok(())
}

/// A security event: a refusal or an administrative action. Never ballot bytes.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    /// When (Unix seconds).
    pub at: u64,
    /// `rejection`, `tls`, `admin`.
    pub kind: &'static str,
    /// The stable error code or action name.
    pub code: String,
    /// The voter identity, when known.
    pub identity: Option<String>,
    /// The peer address, when known.
    pub peer: Option<String>,
    /// Details for the operator.
    pub detail: String,
}

/// Records a security event.
pub fn record_event(conn: &Connection, e: &SecurityEvent) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO security_events (at, kind, code, identity, peer, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.at as i64, e.kind, e.code, e.identity, e.peer, e.detail],
    )
    .map_err(StoreError::classify)?;
    Ok(())
}

/// Adds refusal counters (in the caller's transaction).
pub fn add_refusals(
    conn: &Connection,
    counters: &[(crate::refusals::Key, crate::refusals::Count)],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO refusals (kind, code, source, count, first_at, last_at, sample)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (kind, code, source) DO UPDATE SET
             count = count + excluded.count,
             first_at = MIN(first_at, excluded.first_at),
             last_at = MAX(last_at, excluded.last_at)",
    )?;
    for (k, c) in counters {
        stmt.execute(params![
            k.kind,
            k.code,
            k.source,
            c.count as i64,
            c.first_at as i64,
            c.last_at as i64,
            c.sample
        ])
        .map_err(StoreError::classify)?;
    }
    Ok(())
}

/// How many times `code` was recorded: refusals counted plus
/// administrative events (for tests and the health report).
pub fn count_events(conn: &Connection, code: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM security_events WHERE code = ?1)
              + (SELECT COALESCE(SUM(count), 0) FROM refusals WHERE code = ?1)",
        params![code],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// What the database says of one ballot's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedStatus {
    /// No status file has covered it yet.
    NotProcessed,
    /// The county's decision.
    Decided(shared::status::Status),
    /// Rejected, for a reason this version does not know.
    RejectedUnknownReason,
    /// A stored status this version cannot read.
    Unreadable,
}

/// The voter id that uploaded ballot `leaf_index` and its recorded status;
/// `None` when there is no such ballot.
pub fn ballot_status(
    conn: &Connection,
    leaf_index: u64,
) -> Result<Option<(String, RecordedStatus)>, StoreError> {
    use shared::status::{Reason, Status};
    let row = conn
        .query_row(
            "SELECT b.voter_id, s.status, s.reason FROM ballots b
             LEFT JOIN statuses s ON s.leaf_index = b.leaf_index
             WHERE b.leaf_index = ?1",
            params![leaf_index as i64],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            },
        )
        .optional()?;
    Ok(row.map(|(owner, status, reason)| {
        let recorded = match (status, reason) {
            (None, _) => RecordedStatus::NotProcessed,
            (Some(4), Some(0)) => RecordedStatus::Decided(Status::Valid),
            (Some(2), Some(r)) => u8::try_from(r)
                .ok()
                .and_then(Reason::from_code)
                .map_or(RecordedStatus::RejectedUnknownReason, |r| {
                    RecordedStatus::Decided(Status::Rejected(r))
                }),
            _ => RecordedStatus::Unreadable,
        };
        (owner, recorded)
    }))
}
