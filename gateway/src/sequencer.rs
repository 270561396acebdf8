//! The log sequencer: one writer thread that owns the database connection,
//! appends accepted ballots as leaves, and commits them in groups.
//!
//! For each group the writer, in one transaction: stores each new ballot and
//! its leaf, signs one checkpoint covering all of them (never one per
//! ballot), builds each ballot's receipt against that checkpoint, and
//! commits (`synchronous=FULL`, so the commit is on disk). Only then does it
//! answer the uploads. A ballot that got a receipt is therefore durable, and
//! so is the checkpoint its receipt names. If the commit fails (a full disk,
//! say), nothing of the group remains, in the database or in memory, and
//! every upload of the group gets an error.
//!
//! A retry of the same bytes by the same voter gets the receipt stored the
//! first time, byte for byte.

use crate::refusals::Refusals;
use crate::store::{self, SecurityEvent, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use shared::checkpoint::{Checkpoint, SignedCheckpoint};
use shared::clock::{Clock, UnixTime};
use shared::log_entry::{voter_commitment, LogEntry};
use shared::merkle::{self, Hash, Tree};
use shared::note::{NoteSigner, NoteVerifier};
use shared::receipt::Receipt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// The most uploads committed in one group (DESIGN section 6: a checkpoint
/// every 256 entries at most).
pub const MAX_BATCH: usize = 256;

/// The log as readers see it: the tree and the latest committed checkpoint.
#[derive(Debug, Default)]
pub struct LogView {
    /// The tree. It may hold leaves of a group that is being committed;
    /// readers use sizes up to `checkpoint_size` only.
    pub tree: Tree,
    /// The latest committed signed checkpoint (none while the log is empty).
    pub checkpoint: Option<String>,
    /// Its size.
    pub checkpoint_size: u64,
}

/// The log shared between the writer and readers.
pub type SharedLog = Arc<RwLock<LogView>>;

/// An upload that passed every check and is to be logged.
#[derive(Debug, Clone)]
pub struct NewBallot {
    /// The roster voter id.
    pub voter_id: String,
    /// The canonical identity of the client certificate.
    pub identity: String,
    /// The client certificate (DER).
    pub client_cert: Vec<u8>,
    /// The OpenPGP message as uploaded.
    pub message: bytes::Bytes,
}

/// A logged upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its leaf index.
    pub leaf_index: u64,
    /// The receipt (C2SP tlog-proof text).
    pub receipt: String,
    /// The salt of the voter commitment.
    pub salt: [u8; 32],
    /// The voter id in the commitment.
    pub voter_id: String,
    /// Whether this was a retry of an upload already logged.
    pub duplicate: bool,
}

/// Why an upload could not be logged.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The voter has sent the most ballots allowed.
    #[error("the voter has already sent {0} ballots, the most allowed")]
    TooManyBallots(u64),
    /// The disk is full; nothing was stored.
    #[error("the gateway's disk is full")]
    DiskFull,
    /// Storage failed; nothing was stored.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The deadline passed before the upload could be logged.
    #[error("the deadline passed before the ballot could be logged")]
    ElectionClosed,
}

enum Job {
    Submit(NewBallot, oneshot::Sender<Result<Accepted, SubmitError>>),
    Event(SecurityEvent),
    /// Write the refusal counters (when no ballot group did lately).
    FlushRefusals,
    Stop,
}

/// Counted refusals are written within this long when no ballot group
/// writes them first: at most one small transaction a second, however many
/// refusals arrive.
const REFUSAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// The handle through which the server submits uploads.
#[derive(Debug, Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Job>,
    log: SharedLog,
    refusals: Arc<Refusals>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Submit(b, _) => write!(f, "Submit({})", b.voter_id),
            Job::Event(e) => write!(f, "Event({})", e.code),
            Job::FlushRefusals => write!(f, "FlushRefusals"),
            Job::Stop => write!(f, "Stop"),
        }
    }
}

/// What the writer needs to know.
#[derive(Debug)]
pub struct SequencerConfig {
    /// The election id written into every log entry.
    pub election_id: String,
    /// The most ballots one voter may send.
    pub max_ballots_per_voter: u64,
    /// The deadline: nothing is logged at or after it, whenever it
    /// arrived (the upload route checks on arrival; this is the check at
    /// the moment the time is stamped). `None` only for tools that log
    /// directly.
    pub closes_at: Option<UnixTime>,
}

/// Reads the whole log from the database and verifies it: leaves are
/// numbered 0, 1, 2, … without gaps; each stored leaf hash is the hash of
/// its stored log entry; each log entry's message hash is the hash of the
/// stored message; every stored checkpoint is signed by the log key and its
/// root is the root of the stored leaves at its size; the latest checkpoint
/// covers every leaf.
pub fn load_and_verify(conn: &Connection, log_key: &NoteVerifier) -> Result<LogView, StoreError> {
    let corrupt = |m: String| StoreError::Corrupt(m);
    let mut tree = Tree::new();
    let mut stmt = conn.prepare(
        "SELECT leaf_index, log_entry, leaf_hash, message FROM ballots ORDER BY leaf_index",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let index: i64 = row.get(0)?;
        let entry: Vec<u8> = row.get(1)?;
        let leaf: Vec<u8> = row.get(2)?;
        let message: Vec<u8> = row.get(3)?;
        if index as u64 != tree.size() {
            return Err(corrupt(format!("leaf {} is missing", tree.size())));
        }
        let parsed =
            LogEntry::from_bytes(&entry).map_err(|e| corrupt(format!("leaf {index}: {e}")))?;
        let computed = merkle::leaf_hash(&entry);
        if leaf != computed {
            return Err(corrupt(format!(
                "leaf {index}: the stored leaf hash is not the hash of its entry"
            )));
        }
        let digest: Hash = Sha256::digest(&message).into();
        if digest != parsed.message_sha256 {
            return Err(corrupt(format!(
                "leaf {index}: the stored ballot does not match its log entry"
            )));
        }
        tree.push(computed);
    }
    drop(rows);
    drop(stmt);

    let mut latest: Option<(u64, String)> = None;
    let mut stmt = conn.prepare("SELECT size, note FROM checkpoints ORDER BY size")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let size: i64 = row.get(0)?;
        let note: String = row.get(1)?;
        let cp = SignedCheckpoint::verify(note.as_bytes(), log_key)
            .map_err(|e| corrupt(format!("checkpoint of size {size}: {e}")))?;
        if cp.checkpoint.size != size as u64 {
            return Err(corrupt(format!(
                "checkpoint of size {size} says size {}",
                cp.checkpoint.size
            )));
        }
        let root = tree
            .root(cp.checkpoint.size)
            .map_err(|_| corrupt(format!("checkpoint of size {size} is larger than the log")))?;
        if root != cp.checkpoint.root {
            return Err(corrupt(format!(
                "checkpoint of size {size} does not match the stored leaves"
            )));
        }
        latest = Some((size as u64, note));
    }
    let (checkpoint_size, checkpoint) = match latest {
        Some((s, n)) => (s, Some(n)),
        None => (0, None),
    };
    if checkpoint_size != tree.size() {
        return Err(corrupt(format!(
            "the latest checkpoint covers {checkpoint_size} of {} leaves",
            tree.size()
        )));
    }
    Ok(LogView {
        tree,
        checkpoint,
        checkpoint_size,
    })
}

impl Sequencer {
    /// Opens the database, verifies the stored log, and starts the writer
    /// thread.
    pub fn start(
        db_path: &Path,
        log_key: NoteSigner,
        clock: Arc<dyn Clock>,
        config: SequencerConfig,
    ) -> Result<(Sequencer, std::thread::JoinHandle<()>), StoreError> {
        let conn = store::open(db_path)?;
        let view = load_and_verify(&conn, &log_key.verifier())?;
        let last_at: i64 = conn.query_row(
            "SELECT COALESCE(MAX(received_at), 0) FROM ballots",
            [],
            |r| r.get(0),
        )?;
        let log: SharedLog = Arc::new(RwLock::new(view));
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let refusals = Arc::new(Refusals::default());
        let writer = Writer {
            conn,
            log: log.clone(),
            log_key,
            clock: clock.clone(),
            config,
            last_at: UnixTime(last_at.max(0) as u64),
            refusals: refusals.clone(),
            unwritten: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        // Asks the writer to write the counters once a second while there
        // are any; ends with the writer (it holds only a weak sender).
        let (weak, counted) = (tx.downgrade(), refusals.clone());
        std::thread::Builder::new()
            .name("refusal-flush".into())
            .spawn(move || loop {
                std::thread::sleep(REFUSAL_FLUSH);
                let Some(tx) = weak.upgrade() else { break };
                if tx.is_closed() {
                    break;
                }
                if !counted.is_empty() {
                    let _ = tx.try_send(Job::FlushRefusals);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the flush thread: {e}")))?;
        Ok((Sequencer { tx, log, refusals }, handle))
    }

    /// Every refusal counted since start, by kind and code (for the
    /// metrics).
    pub fn refusal_totals(
        &self,
    ) -> prometheus_client::metrics::family::Family<
        crate::metrics::RefusalLabels,
        prometheus_client::metrics::counter::Counter,
    > {
        self.refusals.totals()
    }

    /// The shared log.
    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    /// The size of the latest signed checkpoint (0 before the first, or if the lock is poisoned).
    pub fn checkpoint_size(&self) -> u64 {
        self.log.read().map(|l| l.checkpoint_size).unwrap_or(0)
    }

    /// Logs an upload; returns its receipt once it is durable.
    pub async fn submit(&self, ballot: NewBallot) -> Result<Accepted, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Submit(ballot, reply))
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        rx.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Asks the writer to finish the work queued so far and stop. Uploads
    /// submitted afterwards fail with [`SubmitError::ShuttingDown`].
    pub async fn stop(&self) {
        let _ = self.tx.send(Job::Stop).await;
    }

    /// Records a security event without waiting. A refusal (`tls` or
    /// `rejection`) is only counted ([`crate::refusals`]); an
    /// administrative event is written as its own row (dropped, with a log
    /// line, if the writer is overwhelmed).
    pub fn record(&self, event: SecurityEvent) {
        if matches!(event.kind, "tls" | "rejection") {
            self.refusals.count(
                event.kind,
                &event.code,
                event.identity.as_deref(),
                event.at,
                &event.detail,
            );
            return;
        }
        if let Err(e) = self.tx.try_send(Job::Event(event)) {
            tracing::warn!(error = %e, "security event not recorded: the writer queue is full");
        }
    }
}

/// Takes the refusal counters and adds them in `tx` (kept in `unwritten`
/// until the transaction is known to have committed).
fn write_refusals(
    refusals: &Refusals,
    unwritten: &mut Vec<(crate::refusals::Key, crate::refusals::Count)>,
    tx: &Connection,
) -> Result<(), StoreError> {
    unwritten.extend(refusals.take());
    store::add_refusals(tx, unwritten)
}

struct Writer {
    conn: Connection,
    log: SharedLog,
    log_key: NoteSigner,
    clock: Arc<dyn Clock>,
    config: SequencerConfig,
    /// The latest `received_at` stamped: a clock set back never stamps a
    /// later leaf with an earlier time.
    last_at: UnixTime,
    /// The refusal counters, written with each group.
    refusals: Arc<Refusals>,
    /// Counters taken for the transaction being committed (put back if it
    /// fails).
    unwritten: Vec<(crate::refusals::Key, crate::refusals::Count)>,
}

/// A new leaf being committed.
struct Pending {
    index: u64,
    entry: LogEntry,
    entry_bytes: Vec<u8>,
    salt: [u8; 32],
    ballot: NewBallot,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut stopping = false;
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if let Some(pos) = jobs.iter().position(|j| matches!(j, Job::Stop)) {
                // Work queued before the stop is done; anything after it is
                // refused when the channel closes.
                jobs.truncate(pos);
                stopping = true;
            }
            self.process(jobs);
            if stopping {
                break;
            }
        }
        self.flush_refusals();
        rx.close();
        while let Ok(job) = rx.try_recv() {
            if let Job::Submit(_, reply) = job {
                let _ = reply.send(Err(SubmitError::ShuttingDown));
            }
        }
        tracing::info!("sequencer stopped");
    }

    fn process(&mut self, jobs: Vec<Job>) {
        let mut submits = Vec::new();
        for job in jobs {
            match job {
                Job::Submit(b, reply) => submits.push((b, reply)),
                Job::Event(e) => {
                    if let Err(err) = store::record_event(&self.conn, &e) {
                        tracing::error!(error = %err, code = %e.code, "cannot record a security event");
                    }
                }
                Job::Stop => {}
                Job::FlushRefusals => {
                    if submits.is_empty() {
                        self.flush_refusals();
                    }
                }
            }
        }
        if submits.is_empty() {
            return;
        }
        let size_before = self.log.read().map(|l| l.tree.size()).unwrap_or(0);
        match self.commit_group(&submits, size_before) {
            Ok(results) => {
                self.unwritten.clear();
                for ((_, reply), result) in submits.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // Undo the appends of the failed group in memory too.
                if let Ok(mut l) = self.log.write() {
                    l.tree.truncate(size_before);
                }
                let err = match e {
                    StoreError::DiskFull => SubmitError::DiskFull,
                    other => SubmitError::Storage(other.to_string()),
                };
                self.refusals.put_back(std::mem::take(&mut self.unwritten));
                tracing::error!(error = %err, uploads = submits.len(), "a group of uploads could not be committed");
                for (_, reply) in submits {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Writes the refusal counters in a transaction of their own.
    fn flush_refusals(&mut self) {
        let r = (|| -> Result<(), StoreError> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            write_refusals(&self.refusals, &mut self.unwritten, &tx)?;
            tx.commit().map_err(StoreError::classify)
        })();
        match r {
            Ok(()) => self.unwritten.clear(),
            Err(e) => {
                tracing::error!(error = %e, "cannot write the refusal counters");
                self.refusals.put_back(std::mem::take(&mut self.unwritten));
            }
        }
    }

    /// One transaction for the whole group.
    fn commit_group(
        &mut self,
        submits: &[(NewBallot, oneshot::Sender<Result<Accepted, SubmitError>>)],
        size_before: u64,
    ) -> Result<Vec<Result<Accepted, SubmitError>>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut results: Vec<Option<Result<Accepted, SubmitError>>> =
            Vec::with_capacity(submits.len());
        let mut pending: Vec<(usize, Pending)> = Vec::new();
        let mut next = size_before;
        for (i, (b, _)) in submits.iter().enumerate() {
            let sha: Hash = Sha256::digest(&b.message).into();
            // A retry: the same bytes from the same voter, either already
            // committed or earlier in this group.
            let existing: Option<(i64, String, Vec<u8>)> = tx
                .query_row(
                    "SELECT leaf_index, receipt, salt FROM ballots WHERE voter_id = ?1 AND message_sha256 = ?2",
                    params![b.voter_id, sha.as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((index, receipt, salt)) = existing {
                let salt: [u8; 32] = salt
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(format!("leaf {index}: bad salt")))?;
                results.push(Some(Ok(Accepted {
                    leaf_index: index as u64,
                    receipt,
                    salt,
                    voter_id: b.voter_id.clone(),
                    duplicate: true,
                })));
                continue;
            }
            if pending
                .iter()
                .any(|(_, p)| p.ballot.voter_id == b.voter_id && p.entry.message_sha256 == sha)
            {
                // Answered below, once the original's receipt exists.
                results.push(None);
                continue;
            }
            let stored: i64 = tx.query_row(
                "SELECT COUNT(*) FROM ballots WHERE voter_id = ?1",
                params![b.voter_id],
                |r| r.get(0),
            )?;
            let in_group = pending
                .iter()
                .filter(|(_, p)| p.ballot.voter_id == b.voter_id)
                .count() as i64;
            if (stored + in_group) as u64 >= self.config.max_ballots_per_voter {
                results.push(Some(Err(SubmitError::TooManyBallots(
                    self.config.max_ballots_per_voter,
                ))));
                continue;
            }
            let at = self.last_at.max(self.clock.now());
            if self.config.closes_at.is_some_and(|c| at >= c) {
                results.push(Some(Err(SubmitError::ElectionClosed)));
                continue;
            }
            let mut salt = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
            self.last_at = at;
            let entry = LogEntry {
                election_id: self.config.election_id.clone(),
                received_at: self.last_at,
                message_sha256: sha,
                voter_commitment: voter_commitment(&salt, &b.voter_id),
            };
            let entry_bytes = entry
                .to_bytes()
                .map_err(|e| StoreError::Corrupt(format!("cannot encode a log entry: {e}")))?;
            pending.push((
                i,
                Pending {
                    index: next,
                    entry,
                    entry_bytes,
                    salt,
                    ballot: b.clone(),
                },
            ));
            results.push(None);
            next += 1;
        }

        if !pending.is_empty() {
            // Append to the shared tree; undone by the caller on failure.
            let checkpoint = {
                let mut l = self
                    .log
                    .write()
                    .map_err(|_| StoreError::Corrupt("the log lock is poisoned".into()))?;
                for (_, p) in &pending {
                    l.tree.push(merkle::leaf_hash(&p.entry_bytes));
                }
                let root = l
                    .tree
                    .root(next)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let cp = Checkpoint {
                    origin: self.log_key.name().to_owned(),
                    size: next,
                    root,
                    extensions: vec![],
                };
                cp.sign(&self.log_key)
                    .map_err(|e| StoreError::Corrupt(format!("cannot sign a checkpoint: {e}")))?
            };
            tx.execute(
                "INSERT INTO checkpoints (size, note, created_at) VALUES (?1, ?2, ?3)",
                params![next as i64, checkpoint, self.clock.now().0 as i64],
            )
            .map_err(StoreError::classify)?;
            let l = self
                .log
                .read()
                .map_err(|_| StoreError::Corrupt("the log lock is poisoned".into()))?;
            for (slot, p) in &pending {
                let proof = l
                    .tree
                    .inclusion_proof(p.index, next)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let receipt = Receipt {
                    entry: p.entry.clone(),
                    index: p.index,
                    proof,
                    checkpoint: checkpoint.clone(),
                }
                .to_text()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                tx.execute(
                    "INSERT INTO ballots (leaf_index, voter_id, identity, client_cert, received_at, message,
                         message_sha256, salt, log_entry, leaf_hash, receipt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        p.index as i64,
                        p.ballot.voter_id,
                        p.ballot.identity,
                        p.ballot.client_cert,
                        p.entry.received_at.0 as i64,
                        p.ballot.message.as_ref(),
                        p.entry.message_sha256.as_slice(),
                        p.salt.as_slice(),
                        p.entry_bytes,
                        merkle::leaf_hash(&p.entry_bytes).as_slice(),
                        receipt,
                    ],
                )
                .map_err(StoreError::classify)?;
                if let Some(r) = results.get_mut(*slot) {
                    *r = Some(Ok(Accepted {
                        leaf_index: p.index,
                        receipt,
                        salt: p.salt,
                        voter_id: p.ballot.voter_id.clone(),
                        duplicate: false,
                    }));
                }
            }
            drop(l);
            write_refusals(&self.refusals, &mut self.unwritten, &tx)?;
            tx.commit().map_err(StoreError::classify)?;
            let mut l = self
                .log
                .write()
                .map_err(|_| StoreError::Corrupt("the log lock is poisoned".into()))?;
            l.checkpoint = Some(checkpoint);
            l.checkpoint_size = next;
        } else {
            write_refusals(&self.refusals, &mut self.unwritten, &tx)?;
            tx.commit().map_err(StoreError::classify)?;
        }

        // Retries within the group get the original's receipt.
        let mut out = Vec::with_capacity(results.len());
        for (i, r) in results.iter().enumerate() {
            match r {
                Some(r) => out.push(r.clone()),
                None => {
                    let Some((b, _)) = submits.get(i) else {
                        out.push(Err(SubmitError::Storage("internal: lost an upload".into())));
                        continue;
                    };
                    let sha: Hash = Sha256::digest(&b.message).into();
                    let original = pending
                        .iter()
                        .find(|(_, p)| {
                            p.ballot.voter_id == b.voter_id && p.entry.message_sha256 == sha
                        })
                        .and_then(|(slot, _)| results.get(*slot).cloned().flatten());
                    out.push(match original {
                        Some(Ok(a)) => Ok(Accepted {
                            duplicate: true,
                            ..a
                        }),
                        Some(Err(e)) => Err(e),
                        None => Err(SubmitError::Storage("a retry lost its original".into())),
                    });
                }
            }
        }
        Ok(out)
    }
}
