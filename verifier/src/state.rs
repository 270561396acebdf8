//! The verifier's own state: an SQLite database (WAL, `synchronous=FULL`)
//! holding the pinned gateway keys and witness policy, every imported leaf
//! with its ciphertext, the imported bundles, the CRLs and intermediates
//! that came with them, and the checkpoints a quorum of witnesses cosigned.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// The database's file name in the verifier's home folder.
pub const DB_FILE: &str = "verifier.db";

/// The database file of the home folder `home`.
pub fn db_path(home: &Path) -> std::path::PathBuf {
    home.join(DB_FILE)
}

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Each version's schema change, in order.
const MIGRATIONS: [&str; 4] = [
    "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE leaves (
    leaf_index  INTEGER PRIMARY KEY,
    leaf_hash   BLOB NOT NULL,
    log_entry   BLOB NOT NULL,
    salt        BLOB NOT NULL,
    voter_id    TEXT NOT NULL,
    identity    TEXT NOT NULL,
    client_cert BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    ciphertext  BLOB NOT NULL,
    bundle      INTEGER NOT NULL
);
CREATE TABLE bundles (
    sequence        INTEGER PRIMARY KEY,
    first_index     INTEGER NOT NULL,
    entry_count     INTEGER NOT NULL,
    checkpoint      TEXT NOT NULL,
    manifest_sha256 BLOB NOT NULL,
    imported_at     INTEGER NOT NULL
);
CREATE TABLE pki_files (
    sha256 BLOB PRIMARY KEY,
    kind   TEXT NOT NULL,
    der    BLOB NOT NULL
);
",
    // Version 2: the witnessed checkpoints the bundles carried, each
    // verified against the manifest's witnesses and the imported leaves.
    "
CREATE TABLE witnessed (
    id          INTEGER PRIMARY KEY,
    size        INTEGER NOT NULL,
    quorum_time INTEGER NOT NULL,
    note        TEXT NOT NULL,
    bundle      INTEGER NOT NULL
);
",
    // Version 3: what the imports found the gateway doing wrong that does
    // not refuse a bundle (the leaves stay; the board is told).
    "
CREATE TABLE misbehaviour (
    id     INTEGER PRIMARY KEY,
    bundle INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    leaves TEXT NOT NULL,
    detail TEXT NOT NULL
);
",
    // Version 4: every run that wrote the ballots' contents (once, unless
    // the board overrides, with its reason).
    "
CREATE TABLE content_runs (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    out_dir    TEXT NOT NULL,
    log_size   INTEGER NOT NULL,
    override   TEXT
);
",
];

/// What the verifier pins about the gateway and the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// The election id.
    pub election_id: String,
    /// The gateway transfer key (public, binary OpenPGP).
    pub transfer_cert: Vec<u8>,
    /// The gateway log key (C2SP verifier key text).
    pub log_key: String,
    /// The witnesses the manifest names (C2SP verifier keys).
    pub witnesses: Vec<String>,
    /// How many of them must cosign a checkpoint.
    pub witness_quorum: u8,
}

impl Pins {
    /// What the manifest says of the log and its witnesses, as a policy.
    pub fn witness_policy(&self) -> anyhow::Result<shared::witness::WitnessPolicy> {
        use anyhow::Context;
        Ok(shared::witness::WitnessPolicy {
            log_key: shared::note::NoteVerifier::from_vkey(&self.log_key)
                .context("the pinned log key")?,
            witnesses: self
                .witnesses
                .iter()
                .map(|k| shared::note::NoteVerifier::from_vkey(k))
                .collect::<Result<_, _>>()
                .context("a pinned witness key")?,
            quorum: usize::from(self.witness_quorum),
        })
    }
}

/// Opens (creating if needed) the verifier's database.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Large pages suit rows that are mostly 200 KB ballots (fewer overflow
    // pages); it takes effect only when the file is created. A rollback
    // journal, not WAL: the verifier is one process, and an import is one
    // large transaction of new pages, which a rollback journal writes once
    // where WAL writes them twice (log, then checkpoint).
    conn.pragma_update(None, "page_size", 65536)?;
    conn.pragma_update(None, "journal_mode", "TRUNCATE")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the verifier database has schema version {version}, newer than this program"
        )));
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

/// One thing an import found the gateway doing wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misbehaviour {
    /// The bundle it came in.
    pub bundle: u64,
    /// What kind (`received-at-backwards`).
    pub kind: String,
    /// The leaves involved.
    pub leaves: Vec<u64>,
    /// In words, for the board.
    pub detail: String,
}

/// Everything recorded (of bundle `bundle` only, if given), in order.
pub fn misbehaviour(conn: &Connection, bundle: Option<u64>) -> rusqlite::Result<Vec<Misbehaviour>> {
    let mut stmt = conn.prepare(
        "SELECT bundle, kind, leaves, detail FROM misbehaviour WHERE ?1 IS NULL OR bundle = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![bundle.map(|b| b as i64)], |r| {
        let leaves: String = r.get(2)?;
        Ok(Misbehaviour {
            bundle: r.get::<_, i64>(0)? as u64,
            kind: r.get(1)?,
            leaves: leaves.split(',').filter_map(|l| l.parse().ok()).collect(),
            detail: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Reads a metadata value.
pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
        r.get(0)
    })
    .optional()
}

/// Writes a metadata value.
pub fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Records the pins (the setup ceremony).
pub fn set_pins(conn: &Connection, pins: &Pins) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    meta_put(&tx, "election_id", pins.election_id.as_bytes())?;
    meta_put(&tx, "transfer_cert", &pins.transfer_cert)?;
    meta_put(&tx, "log_key", pins.log_key.as_bytes())?;
    meta_put(&tx, "witnesses", pins.witnesses.join("\n").as_bytes())?;
    meta_put(&tx, "witness_quorum", &[pins.witness_quorum])?;
    tx.commit()
}

/// Reads the pins.
pub fn pins(conn: &Connection) -> anyhow::Result<Pins> {
    use anyhow::Context;
    let get = |k: &str| -> anyhow::Result<Vec<u8>> {
        meta_get(conn, k)?.with_context(|| {
            format!("the verifier is not set up ({k} is missing): run ballot-verifier init")
        })
    };
    Ok(Pins {
        election_id: String::from_utf8(get("election_id")?)?,
        transfer_cert: get("transfer_cert")?,
        log_key: String::from_utf8(get("log_key")?)?,
        witnesses: String::from_utf8(get("witnesses")?)?
            .lines()
            .map(str::to_owned)
            .collect(),
        witness_quorum: get("witness_quorum")?.first().copied().unwrap_or(0),
    })
}

/// A run that wrote the ballots' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRun {
    /// When (the verifier's clock).
    pub at: shared::clock::UnixTime,
    /// The folder it wrote.
    pub out_dir: String,
    /// The log size it decided.
    pub log_size: u64,
    /// The board's reason, for a run after the first.
    pub again: Option<String>,
}

/// The runs that wrote contents, oldest first.
pub fn content_runs(conn: &Connection) -> rusqlite::Result<Vec<ContentRun>> {
    let mut stmt =
        conn.prepare("SELECT at, out_dir, log_size, override FROM content_runs ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ContentRun {
            at: shared::clock::UnixTime(r.get::<_, i64>(0)? as u64),
            out_dir: r.get(1)?,
            log_size: r.get::<_, i64>(2)? as u64,
            again: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Records a run that wrote contents.
pub fn record_content_run(
    conn: &Connection,
    at: shared::clock::UnixTime,
    out_dir: &Path,
    log_size: u64,
    again: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO content_runs (at, out_dir, log_size, override) VALUES (?1, ?2, ?3, ?4)",
        params![
            at.0 as i64,
            out_dir.display().to_string(),
            log_size as i64,
            again
        ],
    )?;
    Ok(())
}
