//! `ballot-witness`: a C2SP tlog-witness (<https://c2sp.org/tlog-witness>).
//!
//! For each log it is told of (origin and log key), it keeps the latest
//! checkpoint it cosigned, in SQLite with `synchronous=FULL`, and cosigns a
//! new one only if it is consistent with that one. The check of the old
//! size and the update happen in one immediate transaction, so two
//! concurrent requests cannot roll the log back (the race the spec
//! describes). A validly signed request that fails a consistency check is
//! kept as evidence: it may be proof of a forked log.
//!
//! Endpoints (the submission and monitoring prefixes are both `/`):
//! `POST /add-checkpoint` and `GET /<hex SHA-256 of the origin>/checkpoint`.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};
use shared::checkpoint::Checkpoint;
use shared::clock::Clock;
use shared::merkle::{self, Hash, EMPTY_ROOT};
use shared::note::{Note, NoteError, NoteSigner, NoteVerifier, TYPE_COSIGNATURE, TYPE_ED25519};
use shared::witness::{AddCheckpoint, SIZE_MEDIA_TYPE};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The key file in a witness's folder (0600).
pub const KEY_FILE: &str = "witness.key";
/// The database in a witness's folder.
pub const DB_FILE: &str = "witness.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    vkey   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    origin     TEXT PRIMARY KEY REFERENCES logs(origin),
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    checkpoint TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id          INTEGER PRIMARY KEY,
    origin      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    request     BLOB NOT NULL
);
";

/// An HTTP answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    fn text(status: u16, message: impl Into<String>) -> Self {
        let mut body = message.into().into_bytes();
        body.push(b'\n');
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

/// A witness: its key, its database and its clock.
#[derive(Debug)]
pub struct Witness {
    signer: NoteSigner,
    db: Mutex<Connection>,
    clock: Arc<dyn Clock>,
}

/// Creates a witness folder: a new cosigning key named `name` (0600) and
/// an empty database. Returns the verifier key to hand to the county.
pub fn init(dir: &Path, name: &str) -> Result<String> {
    let key_path = dir.join(KEY_FILE);
    if key_path.exists() {
        anyhow::bail!("{} already exists", key_path.display());
    }
    std::fs::create_dir_all(dir)?;
    let signer = NoteSigner::generate(name, TYPE_COSIGNATURE)
        .context("the name cannot be a witness name (no spaces or '+')")?;
    shared::files::write_new(&key_path, signer.to_skey().as_bytes(), 0o600)?;
    open_db(&dir.join(DB_FILE))?;
    Ok(signer.verifier().to_vkey())
}

fn open_db(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Why a request was refused, with the protocol's status.
enum Refused {
    BadRequest(String),
    UnknownLog,
    Forbidden(String),
    Conflict(u64),
    Unprocessable(&'static str),
    /// The witness's own fault (its database): 500, nothing cosigned.
    Internal(String),
}

impl Witness {
    /// Opens the witness in `dir` (made by [`init`]).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let key = shared::files::read_secret(&dir.join(KEY_FILE))
            .with_context(|| format!("no witness key in {}", dir.display()))?;
        let signer = NoteSigner::from_skey(
            std::str::from_utf8(&key)
                .context("the witness key file is not text")?
                .trim(),
        )?;
        let db_path: PathBuf = dir.join(DB_FILE);
        if !db_path.is_file() {
            anyhow::bail!(
                "{} is missing: a witness whose state is lost must be retired, not restarted",
                db_path.display()
            );
        }
        Ok(Witness {
            signer,
            db: Mutex::new(open_db(&db_path)?),
            clock,
        })
    }

    /// The witness's verifier key.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// Trusts a log: checkpoints for its origin must carry its signature.
    pub fn add_log(&self, log_vkey: &str) -> Result<String> {
        let k = NoteVerifier::from_vkey(log_vkey.trim()).context("not a log verifier key")?;
        if k.sig_type() != TYPE_ED25519 {
            anyhow::bail!("a log key signs with Ed25519 (type 0x01)");
        }
        let db = self.db.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let known: Option<String> = db
            .query_row("SELECT vkey FROM logs WHERE origin = ?1", [k.name()], |r| {
                r.get(0)
            })
            .optional()?;
        match known {
            Some(v) if v == k.to_vkey() => {}
            Some(_) => anyhow::bail!("the log {} is already known with another key", k.name()),
            None => {
                db.execute(
                    "INSERT INTO logs (origin, vkey) VALUES (?1, ?2)",
                    params![k.name(), k.to_vkey()],
                )?;
            }
        }
        Ok(k.name().to_owned())
    }

    /// How many refused-but-signed requests were kept as evidence.
    pub fn evidence_count(&self) -> Result<u64> {
        let db = self.db.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(db.query_row("SELECT COUNT(*) FROM evidence", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// `POST /add-checkpoint`.
    pub fn add_checkpoint(&self, body: &[u8]) -> Answer {
        match self.try_add(body) {
            Ok(lines) => Answer {
                status: 200,
                content_type: "text/plain; charset=utf-8",
                body: lines.into_bytes(),
            },
            Err(Refused::BadRequest(m)) => Answer::text(400, m),
            Err(Refused::UnknownLog) => Answer::text(404, "unknown log origin"),
            Err(Refused::Forbidden(m)) => Answer::text(403, m),
            Err(Refused::Conflict(size)) => Answer {
                status: 409,
                content_type: SIZE_MEDIA_TYPE,
                body: format!("{size}\n").into_bytes(),
            },
            Err(Refused::Unprocessable(m)) => Answer::text(422, m),
            Err(Refused::Internal(m)) => {
                tracing::error!(error = %m, "add-checkpoint failed inside the witness");
                Answer::text(
                    500,
                    "the witness cannot answer right now; nothing was cosigned",
                )
            }
        }
    }

    fn try_add(&self, body: &[u8]) -> Result<String, Refused> {
        let req = AddCheckpoint::parse(body).map_err(|e| Refused::BadRequest(e.to_string()))?;
        let note = Note::parse(&req.checkpoint).map_err(|e| {
            Refused::BadRequest(format!("the checkpoint is not a signed note: {e}"))
        })?;
        let cp = Checkpoint::parse_text(note.text())
            .map_err(|e| Refused::BadRequest(format!("not a checkpoint: {e}")))?;
        let mut db = self
            .db
            .lock()
            .map_err(|_| Refused::Internal("the database lock is poisoned".into()))?;
        let vkey: Option<String> = db
            .query_row(
                "SELECT vkey FROM logs WHERE origin = ?1",
                [&cp.origin],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Refused::Internal(e.to_string()))?;
        let log_key = vkey
            .and_then(|v| NoteVerifier::from_vkey(&v).ok())
            .ok_or(Refused::UnknownLog)?;
        note.verify(&log_key).map_err(|e| match e {
            NoteError::NotSigned(_) => Refused::Forbidden("no signature from the log's key".into()),
            other => Refused::Forbidden(format!("the log's signature does not verify: {other}")),
        })?;
        if req.old_size > cp.size {
            return Err(Refused::BadRequest(
                "the old size is larger than the checkpoint's".into(),
            ));
        }
        // One immediate transaction: the old-size check and the update.
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Refused::Internal(e.to_string()))?;
        let latest: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT size, root FROM latest WHERE origin = ?1",
                [&cp.origin],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| Refused::Internal(e.to_string()))?;
        let (stored_size, stored_root) = match latest {
            Some((s, r)) => (
                s as u64,
                <Hash>::try_from(r)
                    .map_err(|_| Refused::Internal("a stored root is not 32 bytes".into()))?,
            ),
            None => (0, EMPTY_ROOT),
        };
        if req.old_size != stored_size {
            return Err(Refused::Conflict(stored_size));
        }
        let now = self.clock.now().0.max(1);
        let evidence = |reason: &'static str| {
            let _ = tx.execute(
                "INSERT INTO evidence (origin, received_at, reason, request) VALUES (?1, ?2, ?3, ?4)",
                params![cp.origin, now as i64, reason, body],
            );
            Refused::Unprocessable(reason)
        };
        let consistent = if cp.size == 0 {
            cp.root == EMPTY_ROOT && req.proof.is_empty()
        } else if req.old_size == 0 {
            req.proof.is_empty()
        } else if req.old_size == cp.size {
            req.proof.is_empty() && cp.root == stored_root
        } else {
            merkle::verify_consistency(req.old_size, cp.size, &req.proof, &stored_root, &cp.root)
                .is_ok()
        };
        if !consistent {
            let e = evidence(
                "the checkpoint is not consistent with the one this witness cosigned before",
            );
            let _ = tx.commit();
            return Err(e);
        }
        let cosigned = self
            .signer
            .cosign(&note, now)
            .map_err(|e| Refused::Internal(e.to_string()))?;
        let line = cosigned
            .strip_prefix(&note.to_text())
            .unwrap_or_default()
            .to_owned();
        // What a monitor gets: the log's signature and this witness's.
        let stored = note
            .keep_signatures_of(&[&log_key])
            .and_then(|n| self.signer.cosign(&n, now))
            .unwrap_or(cosigned);
        tx.execute(
            "INSERT INTO latest (origin, size, root, checkpoint, cosigned_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(origin) DO UPDATE SET size = ?2, root = ?3, checkpoint = ?4, cosigned_at = ?5",
            params![cp.origin, cp.size as i64, cp.root.as_slice(), stored, now as i64],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| Refused::Internal(e.to_string()))?;
        Ok(line)
    }

    /// `GET /<origin hash>/checkpoint`: the latest cosigned checkpoint.
    pub fn latest(&self, origin_hash: &str) -> Answer {
        let Ok(db) = self.db.lock() else {
            return Answer::text(500, "poisoned");
        };
        let rows: Vec<(String, String)> = db
            .prepare("SELECT origin, checkpoint FROM latest")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        for (origin, checkpoint) in rows {
            if hex::encode(Sha256::digest(origin.as_bytes())) == origin_hash {
                return Answer {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body: checkpoint.into_bytes(),
                };
            }
        }
        Answer::text(404, "this witness has cosigned no checkpoint of that log")
    }

    /// Routes one request.
    pub fn handle(&self, method: &http::Method, path: &str, body: &[u8]) -> Answer {
        match (method, path.strip_prefix('/')) {
            (&http::Method::POST, Some("add-checkpoint")) => self.add_checkpoint(body),
            (&http::Method::GET, Some(p)) => match p.strip_suffix("/checkpoint") {
                Some(hash) if hash.len() == 64 => self.latest(hash),
                _ => Answer::text(404, "not found"),
            },
            _ => Answer::text(404, "not found"),
        }
    }
}
