//! `ballot-audit`: what an auditor or observer checks with no secret and no
//! county access, only the gateway's public endpoints (over a connection
//! without a client certificate) and the election key's fingerprint.
//!
//! - [`check_receipts`]: a folder of receipts voters handed in, each checked
//!   on its own (signatures, inclusion, the commitment it opens) and against
//!   the county's signed word ([`voter::client::standing`]), and all of them
//!   against each other (two receipts for one log entry that differ are a
//!   fork, with no network needed).
//! - [`Monitor`]: follows a gateway's log over time. Every checkpoint seen
//!   (the latest, and the latest a quorum of witnesses cosigned) is stored
//!   once it is found consistent with the largest stored before; one that
//!   is not is a fork, and both signed checkpoints are written down as
//!   evidence. A witnessed checkpoint short of the quorum is refused.
//! - [`check_status_file`]: the county's signed status file: its
//!   signatures, that it lists one status per leaf of its checkpoint, that
//!   its checkpoint is part of the witnessed log and how much of it it
//!   covers, and the counts per status.
//!
//! Specification of the checks: `docs/spec/witnesses.md`.

use anyhow::{anyhow, bail, Context, Result};
use http::{Method, StatusCode};
use rusqlite::{params, Connection, OptionalExtension};
use shared::api;
use shared::checkpoint::{Checkpoint, SignedCheckpoint};
use shared::clock::UnixTime;
use shared::log_entry::voter_commitment;
use shared::manifest::ElectionManifest;
use shared::merkle::{self, Hash};
use shared::note::NoteVerifier;
use shared::receipt::Receipt;
use shared::status::{Reason, Status};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use voter::client::{Gateway, SavedReceipt};

/// The largest receipt file read.
pub const MAX_RECEIPT_FILE: u64 = 64 * 1024;
/// The most receipt files one run reads.
pub const MAX_RECEIPTS: usize = 100_000;
/// The largest status file read from the gateway or a file.
pub const MAX_STATUS_FILE: u64 = 256 * 1024 * 1024;

/// One thing checked, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about (a file, a checkpoint).
    pub subject: String,
    /// Whether it holds.
    pub ok: bool,
    /// In words.
    pub message: String,
}

impl Finding {
    fn ok(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            subject: subject.into(),
            ok: true,
            message: message.into(),
        }
    }

    fn problem(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            subject: subject.into(),
            ok: false,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok     " } else { "PROBLEM" };
        // Subjects are file names from the auditor's folder; messages may
        // quote the gateway. Both are shown escaped.
        write!(
            f,
            "{mark} {}: {}",
            shared::text::printable(&self.subject),
            shared::text::printable(&self.message)
        )
    }
}

/// The number of findings that do not hold.
pub fn problems(findings: &[Finding]) -> usize {
    findings.iter().filter(|f| !f.ok).count()
}

/// The offline checks of one saved receipt: its election and fingerprint,
/// the log key's signature and the inclusion proof, the index, the message
/// hash and the commitment to the voter id.
pub fn check_saved(saved: &SavedReceipt, manifest: &ElectionManifest) -> Result<Receipt> {
    if saved.election_id != manifest.election_id {
        bail!(
            "it is for election {}, not {}",
            saved.election_id,
            manifest.election_id
        );
    }
    let log_key = NoteVerifier::from_vkey(&manifest.log_key)?;
    let receipt = Receipt::parse(saved.receipt.as_bytes()).context("the receipt is malformed")?;
    receipt
        .verify(&log_key)
        .context("the receipt does not verify with the gateway's log key")?;
    if receipt.index != saved.leaf_index {
        bail!(
            "the receipt is for log entry {}, the file says {}",
            receipt.index,
            saved.leaf_index
        );
    }
    if hex::encode(receipt.entry.message_sha256) != saved.message_sha256.to_ascii_lowercase() {
        bail!("the receipt's ballot hash is not the one the file says was sent");
    }
    let salt: [u8; 32] = hex::decode(&saved.salt)
        .ok()
        .and_then(|s| s.try_into().ok())
        .context("the salt is not 32 bytes of hex")?;
    if voter_commitment(&salt, &saved.voter_id) != receipt.entry.voter_commitment {
        bail!("the log entry does not commit to the voter id in the file");
    }
    Ok(receipt)
}

/// Reads the regular files of `folder` (not following links), sorted by
/// name, at most [`MAX_RECEIPTS`], each at most [`MAX_RECEIPT_FILE`].
fn receipt_files(folder: &Path) -> Result<Vec<(String, Result<Vec<u8>>)>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(folder)
        .with_context(|| format!("cannot read the folder {}", folder.display()))?
    {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        names.push((name, e.path()));
        if names.len() > MAX_RECEIPTS {
            bail!("more than {MAX_RECEIPTS} files in {}", folder.display());
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|(name, path)| {
            let data = (|| {
                let meta = std::fs::symlink_metadata(&path)?;
                if !meta.is_file() {
                    bail!("not a regular file (a link, folder or device)");
                }
                if meta.len() > MAX_RECEIPT_FILE {
                    bail!("{} bytes, more than a receipt", meta.len());
                }
                Ok(shared::files::read_bounded(&path, MAX_RECEIPT_FILE)?)
            })();
            (name, data)
        })
        .collect())
}

/// Checks every receipt in `folder` (files `ballot-return` saved) against
/// each other and, over `gw`, against the county's signed word.
pub async fn check_receipts(
    gw: &Gateway,
    fingerprint: &str,
    folder: &Path,
) -> Result<Vec<Finding>> {
    // The county's word once for the folder; per receipt, only the proofs
    // linking it.
    let word = voter::client::county_word(gw, fingerprint).await?;
    let manifest = &word.manifest;
    let mut findings = Vec::new();
    let mut by_index: HashMap<u64, (String, Hash)> = HashMap::new();
    let mut checked: Vec<(String, SavedReceipt)> = Vec::new();
    for (name, data) in receipt_files(folder)? {
        let saved = match data.and_then(|d| {
            serde_json::from_slice::<SavedReceipt>(&d).context("not a saved ballot receipt")
        }) {
            Ok(s) => s,
            Err(e) => {
                findings.push(Finding::problem(&name, format!("{e:#}")));
                continue;
            }
        };
        if !saved
            .election_fingerprint
            .eq_ignore_ascii_case(fingerprint.trim())
        {
            findings.push(Finding::problem(
                &name,
                "it pins another election key fingerprint than the one given",
            ));
            continue;
        }
        let receipt = match check_saved(&saved, manifest) {
            Ok(r) => r,
            Err(e) => {
                findings.push(Finding::problem(&name, format!("forged or damaged: {e:#}")));
                continue;
            }
        };
        let leaf = merkle::leaf_hash(&receipt.entry.to_bytes()?);
        match by_index.get(&receipt.index) {
            Some((other, h)) if *h != leaf => findings.push(Finding::problem(
                format!("{other} and {name}"),
                format!(
                    "FORK: receipts {other} and {name} are both signed by the gateway for log entry {} but the entries differ: the gateway gave out conflicting logs. Keep both files as evidence",
                    receipt.index
                ),
            )),
            Some(_) => {}
            None => {
                by_index.insert(receipt.index, (name.clone(), leaf));
            }
        }
        checked.push((name, saved));
    }
    for (name, saved) in checked {
        match voter::client::standing(gw, &word, &saved).await {
            Ok(r) => findings.push(Finding::ok(
                &name,
                format!("entry {}: {}", saved.leaf_index, r.explanation),
            )),
            Err(e) => findings.push(Finding::problem(&name, format!("{e:#}"))),
        }
    }
    Ok(findings)
}

/// The monitor's database file in its folder.
pub const MONITOR_DB: &str = "monitor.db";
/// The folder (in the monitor's folder) where fork evidence is written.
pub const EVIDENCE_DIR: &str = "evidence";

const MONITOR_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    id      INTEGER PRIMARY KEY,
    seen_at INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    size    INTEGER NOT NULL,
    root    BLOB NOT NULL,
    note    TEXT NOT NULL,
    UNIQUE (size, root)
);
CREATE TABLE IF NOT EXISTS alarms (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    message  TEXT NOT NULL,
    evidence TEXT NOT NULL
);
";

/// Follows one gateway's log: see the module documentation.
#[derive(Debug)]
pub struct Monitor {
    conn: Connection,
    dir: PathBuf,
}

/// What one look at the gateway found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Each check.
    pub findings: Vec<Finding>,
    /// Evidence files written for forks.
    pub evidence: Vec<PathBuf>,
}

impl Monitor {
    /// Opens (creating) the monitor's state in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join(EVIDENCE_DIR))?;
        let conn = Connection::open(dir.join(MONITOR_DB))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(MONITOR_SCHEMA)?;
        Ok(Monitor {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    /// Every checkpoint stored, oldest first: (kind, size, note).
    pub fn stored(&self) -> Result<Vec<(String, u64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, size, note FROM checkpoints ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Looks at the gateway once, at time `now`.
    pub async fn observe(
        &mut self,
        gw: &Gateway,
        manifest: &ElectionManifest,
        now: UnixTime,
    ) -> Result<Observation> {
        let mut obs = Observation {
            findings: Vec::new(),
            evidence: Vec::new(),
        };
        let log_key = NoteVerifier::from_vkey(&manifest.log_key)?;
        let mut seen: Vec<(&'static str, SignedCheckpoint, String)> = Vec::new();

        let a = gw.request(Method::GET, api::WITNESSED, None).await?;
        if a.status == StatusCode::NOT_FOUND {
            obs.findings.push(Finding::ok(
                "witnessed checkpoint",
                "none yet (no checkpoint has been cosigned by a quorum)",
            ));
        } else if a.status != StatusCode::OK {
            let (code, message) = a.error();
            bail!("the gateway did not give its witnessed checkpoint ({code}): {message}");
        } else {
            match manifest.witness_policy()?.verify(&a.body) {
                Ok(w) => {
                    let text = String::from_utf8_lossy(&a.body).into_owned();
                    seen.push(("witnessed", w.checkpoint, text));
                }
                Err(e) => obs.findings.push(Finding::problem(
                    "witnessed checkpoint",
                    format!("refused, not the county's word: {e}"),
                )),
            }
        }
        let a = gw.request(Method::GET, api::CHECKPOINT, None).await?;
        if a.status == StatusCode::OK {
            match SignedCheckpoint::verify(&a.body, &log_key) {
                Ok(cp) => seen.push(("latest", cp, String::from_utf8_lossy(&a.body).into_owned())),
                Err(e) => obs.findings.push(Finding::problem(
                    "latest checkpoint",
                    format!("refused, not signed by the log key: {e}"),
                )),
            }
        } else if a.status != StatusCode::NOT_FOUND {
            let (code, message) = a.error();
            bail!("the gateway did not give its latest checkpoint ({code}): {message}");
        }

        for (kind, cp, note) in seen {
            let c = &cp.checkpoint;
            let subject = format!("{kind} checkpoint of size {}", c.size);
            let known: Option<i64> = self
                .conn
                .query_row(
                    "SELECT id FROM checkpoints WHERE size = ?1 AND root = ?2",
                    params![c.size as i64, c.root.as_slice()],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_some() {
                obs.findings
                    .push(Finding::ok(&subject, "seen before, nothing new"));
                continue;
            }
            let largest: Option<(String, i64)> = self
                .conn
                .query_row(
                    "SELECT note, size FROM checkpoints ORDER BY size DESC, id DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((old_note, _)) = largest {
                let old = SignedCheckpoint::verify(old_note.as_bytes(), &log_key).context(
                    "a stored checkpoint no longer verifies: the monitor's database is damaged",
                )?;
                let proof = if old.checkpoint.size == c.size {
                    Ok(Vec::new())
                } else {
                    voter::client::consistency_proof(gw, old.checkpoint.size, c.size).await
                };
                let holds = proof
                    .as_ref()
                    .is_ok_and(|p| shared::linkage::consistent(&old.checkpoint, c, p).is_ok());
                if !holds {
                    let path = self.write_evidence(&old_note, &note, proof.as_deref().ok(), now)?;
                    let message = format!(
                        "FORK: the gateway signed a log of {} entries and one of {} entries, and does not prove that the larger extends the smaller (no valid consistency proof): it keeps more than one log, or withholds the proof; evidence in {}",
                        c.size.max(old.checkpoint.size),
                        c.size.min(old.checkpoint.size),
                        path.display()
                    );
                    self.conn.execute(
                        "INSERT INTO alarms (at, message, evidence) VALUES (?1, ?2, ?3)",
                        params![now.0 as i64, message, path.to_string_lossy()],
                    )?;
                    obs.findings.push(Finding::problem(&subject, message));
                    obs.evidence.push(path);
                    continue;
                }
            }
            self.conn.execute(
                "INSERT INTO checkpoints (seen_at, kind, size, root, note) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now.0 as i64, kind, c.size as i64, c.root.as_slice(), note],
            )?;
            obs.findings.push(Finding::ok(
                &subject,
                "new, consistent with every checkpoint seen before; stored",
            ));
        }
        Ok(obs)
    }

    /// Writes both signed checkpoints (and the proof the gateway gave, if
    /// any) into a new evidence file.
    fn write_evidence(
        &self,
        old: &str,
        new: &str,
        proof: Option<&[Hash]>,
        now: UnixTime,
    ) -> Result<PathBuf> {
        use base64::prelude::*;
        let mut text = format!(
            "Fork evidence written by ballot-audit at {now}.\n\
             Both checkpoints below are signed by the gateway's log key, and the gateway does not\n\
             prove that the larger extends the smaller: the consistency proof it gave (below) does\n\
             not verify, or it gave none.\n\n\
             == checkpoint seen before\n{old}\n== checkpoint seen at {now}\n{new}\n== the gateway's consistency proof\n"
        );
        match proof {
            Some(p) => {
                for h in p {
                    text.push_str(&BASE64_STANDARD.encode(h));
                    text.push('\n');
                }
            }
            None => text.push_str("(the gateway gave none)\n"),
        }
        for n in 0u32.. {
            let path = self
                .dir
                .join(EVIDENCE_DIR)
                .join(format!("fork-{}-{n}.txt", now.0));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(anyhow!("no free evidence file name"))
    }
}

/// What a status file says, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Leaves covered.
    pub size: u64,
    /// Valid: counted or replaced by the same voter's later valid ballot
    /// (the public file does not say which; the county's report gives
    /// accepted and superseded, which must add up to this).
    pub valid: u64,
    /// Rejected, by reason.
    pub rejected: BTreeMap<Reason, u64>,
}

/// Checks the county's signed status file (`file`, or the one the gateway
/// serves): its signatures and coverage of its checkpoint, its checkpoint
/// against the witnessed log, and counts it. `now` decides whether a
/// status file that covers less than the witnessed log is expected (before
/// the deadline plus the grace) or a problem.
pub async fn check_status_file(
    gw: &Gateway,
    fingerprint: &str,
    file: Option<Vec<u8>>,
    now: UnixTime,
) -> Result<(Vec<Finding>, Option<StatusCounts>)> {
    let manifest = gw.manifest(fingerprint).await?;
    let bytes = match file {
        Some(b) => b,
        None => {
            let a = gw.request(Method::GET, api::STATUS_FILE, None).await?;
            if a.status == StatusCode::NOT_FOUND {
                return Ok((
                    vec![Finding::ok(
                        "status file",
                        "the gateway has none yet: the county has not processed any ballot",
                    )],
                    None,
                ));
            }
            if a.status != StatusCode::OK {
                let (code, message) = a.error();
                bail!("the gateway did not give the status file ({code}): {message}");
            }
            a.body.to_vec()
        }
    };
    let mut findings = Vec::new();
    let file = match shared::linkage::CheckedStatusFile::open(&bytes, &manifest, fingerprint) {
        Ok(f) => f,
        Err(e) => {
            findings.push(Finding::problem("status file", e.to_string()));
            return Ok((findings, None));
        }
    };
    let decided: &Checkpoint = &file.checkpoint.checkpoint;
    findings.push(Finding::ok(
        "status file",
        format!(
            "signed by the election key; its checkpoint signed by the log key and cosigned by the county; one status for each of its {} ballots",
            decided.size
        ),
    ));
    let mut counts = StatusCounts {
        size: decided.size,
        ..StatusCounts::default()
    };
    for s in &file.file.statuses {
        match s {
            Status::Valid => counts.valid += 1,
            Status::Rejected(r) => *counts.rejected.entry(*r).or_default() += 1,
        }
    }
    match voter::client::witnessed(gw, &manifest).await {
        Ok(None) => findings.push(Finding::problem(
            "coverage",
            "the gateway serves no witnessed checkpoint to compare the status file with",
        )),
        Ok(Some(w)) => {
            let seen = &w.checkpoint.checkpoint;
            let linked = match voter::client::consistency_proof(gw, decided.size, seen.size).await {
                Ok(p) => shared::linkage::consistent(decided, seen, &p).is_ok(),
                Err(_) => false,
            };
            if !linked {
                findings.push(Finding::problem(
                    "coverage",
                    format!(
                        "FORK: the status file's log ({} entries) is not part of the log the witnesses cosigned ({} entries)",
                        decided.size, seen.size
                    ),
                ));
            } else if seen.size > decided.size {
                let missing = seen.size - decided.size;
                let message = format!(
                    "the status file covers {} of the {} ballots in the witnessed log; {missing} have no status yet",
                    decided.size, seen.size
                );
                if now > manifest.closing_bound() && w.time <= manifest.closing_bound() {
                    findings.push(Finding::problem(
                        "coverage",
                        format!("{message}, although they were witnessed by the deadline plus the grace period"),
                    ));
                } else {
                    findings.push(Finding::ok("coverage", message));
                }
            } else {
                findings.push(Finding::ok(
                    "coverage",
                    format!(
                        "every one of the {} ballots in the witnessed log has a status",
                        seen.size
                    ),
                ));
            }
        }
        Err(e) => findings.push(Finding::problem("coverage", format!("{e:#}"))),
    }
    Ok((findings, Some(counts)))
}

/// The counts in words, one line each.
pub fn describe_counts(c: &StatusCounts) -> String {
    let rejected: u64 = c.rejected.values().sum();
    let mut s = format!(
        "Ballots with a status: {}\n  valid:      {}  (the county's report splits these into accepted and superseded)\n  rejected:   {}\n",
        c.size, c.valid, rejected
    );
    for (r, n) in &c.rejected {
        s.push_str(&format!("    {n:>6}  {} ({})\n", r.name(), r.explain()));
    }
    s
}
