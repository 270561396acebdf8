//! `ballot-verifier process`: decides every imported ballot (DESIGN section
//! 8) and writes the canvass outputs.
//!
//! Pass 1 decrypts and checks every ballot, keeping only its decision and,
//! per voter, the latest valid ballot (memory is a few bytes per ballot,
//! never ballot contents). The checks, in order, each with its reason:
//! decryption; the CMS signature; the signer's certificate, validated at the
//! time the gateway received the ballot with the CRLs from the bundles; the
//! signer is the voter whose TLS certificate uploaded it; the voter is on
//! the roster under the voter id the gateway recorded, and the log entry's
//! commitment opens to that voter id; the ballot package; the election; the
//! ballot style; the media type and size; the declaration; and the voting
//! window. Then the replacement rule: per voter, the latest valid ballot
//! received before the deadline counts and earlier valid ones are
//! superseded.
//!
//! Pass 2 decrypts the counted ballots again and writes their contents in a
//! random order, under random names, with one fixed timestamp, and nothing
//! else: no voter, no leaf index, no time of receipt. The identity side
//! (`voters.csv`: voter, leaf, status, reason) is written separately.
//! Everything goes into a temporary folder that is renamed into place only
//! when complete; rejected and superseded ballots' contents are never
//! written.

use crate::import;
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rusqlite::Connection;
use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use shared::ballot::BallotPackage;
use shared::checkpoint::SignedCheckpoint;
use shared::clock::{Clock, UnixTime};
use shared::log_entry::{voter_commitment, LogEntry};
use shared::manifest::ElectionManifest;
use shared::note::{Note, NoteSigner, NoteVerifier};
use shared::pki::{Anchor, ChainError, TrustStore};
use shared::roster::Roster;
use shared::status::{Reason, Status, StatusFile};
use shared::x509::VoterIdentity;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What processing needs besides the imported data.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The election key with its secret keys.
    pub election_key: &'a Cert,
    /// Its passphrase, if protected.
    pub password: Option<&'a Password>,
    /// The verifier's witness key (cosigns the final checkpoint).
    pub witness: &'a NoteSigner,
    /// The election manifest.
    pub manifest: &'a ElectionManifest,
    /// The roster.
    pub roster: &'a Roster,
    /// Trust anchors for voter certificates.
    pub anchors: Vec<Anchor>,
}

/// Counts for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Ballots processed.
    pub total: u64,
    /// Counted.
    pub accepted: u64,
    /// Replaced by a later ballot of the same voter.
    pub superseded: u64,
    /// Rejections by reason.
    pub rejected: Vec<(Reason, u64)>,
    /// Voters whose counted ballot's certificate was revoked after receipt.
    pub revoked_after_receipt: u64,
    /// Where the outputs are.
    pub out_dir: PathBuf,
}

impl Outcome {
    /// Ballots rejected, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
}

/// The decision on one ballot in pass 1.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Rejected(Reason),
    Valid,
}

struct Leaf {
    index: u64,
    entry: LogEntry,
    salt: Vec<u8>,
    voter_id: String,
    identity: String,
    ciphertext: Vec<u8>,
}

fn leaf_at(conn: &Connection, index: u64) -> Result<Leaf> {
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

fn leaves(conn: &Connection, mut f: impl FnMut(Leaf) -> Result<()>) -> Result<()> {
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

/// The content of a ballot that passes every check.
fn check(
    leaf: &Leaf,
    inputs: &Inputs<'_>,
    trust: &TrustStore,
    now: UnixTime,
) -> Result<(BallotPackage, bool), Reason> {
    let m = inputs.manifest;
    let max = shared::ballot::MAX_PACKAGE + 256 * 1024;
    let signed = shared::pgp::decrypt(&leaf.ciphertext, inputs.election_key, inputs.password, max)
        .map_err(|_| Reason::DecryptionFailed)?;
    let cms = shared::cms::verify(&signed, max).map_err(|_| Reason::BadSignature)?;
    let at = leaf.entry.received_at;
    let voter = trust
        .verify_voter(&cms.signer_cert, &cms.other_certs, at, now)
        .map_err(|e| match e {
            ChainError::Revoked { .. } => Reason::CertificateRevoked,
            _ => Reason::CertificateInvalid,
        })?;
    let uploader =
        VoterIdentity::parse_canonical(&leaf.identity).ok_or(Reason::SignerNotUploader)?;
    if voter.facts.identity != uploader {
        return Err(Reason::SignerNotUploader);
    }
    let entry = inputs
        .roster
        .by_identity(&voter.facts.identity)
        .ok_or(Reason::NotOnRoster)?;
    let salt: [u8; 32] = leaf
        .salt
        .as_slice()
        .try_into()
        .map_err(|_| Reason::SignerNotUploader)?;
    if entry.voter_id != leaf.voter_id
        || voter_commitment(&salt, &leaf.voter_id) != leaf.entry.voter_commitment
    {
        // The gateway's record of who uploaded this does not match the log.
        return Err(Reason::SignerNotUploader);
    }
    let package = BallotPackage::from_bytes(&cms.content).map_err(|_| Reason::MalformedPackage)?;
    if package.election_id != m.election_id || leaf.entry.election_id != m.election_id {
        return Err(Reason::WrongElection);
    }
    if package.ballot_style != entry.ballot_style {
        return Err(Reason::WrongBallotStyle);
    }
    match m.media_limit(&package.media_type) {
        Some(limit) if package.content.len() <= limit as usize => {}
        _ => return Err(Reason::MediaNotAccepted),
    }
    if package.declaration != m.declaration {
        return Err(Reason::DeclarationMismatch);
    }
    if at < m.opens_at {
        return Err(Reason::BeforeOpening);
    }
    if at >= m.closes_at {
        return Err(Reason::AfterDeadline);
    }
    Ok((package, voter.revoked_later.is_some()))
}

/// Decrypts a ballot already decided valid and returns its package.
fn open_package(leaf: &Leaf, inputs: &Inputs<'_>) -> Result<BallotPackage, Reason> {
    let max = shared::ballot::MAX_PACKAGE + 256 * 1024;
    let signed = shared::pgp::decrypt(&leaf.ciphertext, inputs.election_key, inputs.password, max)
        .map_err(|_| Reason::DecryptionFailed)?;
    let cms = shared::cms::verify(&signed, max).map_err(|_| Reason::BadSignature)?;
    let package = BallotPackage::from_bytes(&cms.content).map_err(|_| Reason::MalformedPackage)?;
    if package.election_id != inputs.manifest.election_id {
        return Err(Reason::WrongElection);
    }
    Ok(package)
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        shared::ballot::MEDIA_PDF => "pdf",
        shared::ballot::MEDIA_SELECTIONS => "json",
        _ => "bin",
    }
}

fn write_new(path: &Path, data: &[u8], mtime: std::time::SystemTime) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)?;
    // Made durable all at once by `sync_outputs` before the folder is
    // renamed into place.
    f.set_modified(mtime)?;
    Ok(())
}

/// Flushes everything written under `dir` (one `syncfs` for the whole file
/// system instead of an `fsync` per ballot file), then the folders.
fn sync_outputs(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&d).context("cannot flush the outputs to disk")?;
    std::fs::File::open(dir.join("ballots"))?.sync_all()?;
    d.sync_all()?;
    Ok(())
}

/// Calls `f(leaf_index, voter_id)` for every leaf, in order.
fn voter_ids(conn: &Connection, mut f: impl FnMut(u64, String) -> Result<()>) -> Result<()> {
    let mut stmt = conn.prepare("SELECT leaf_index, voter_id FROM leaves ORDER BY leaf_index")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(r.get::<_, i64>(0)? as u64, r.get(1)?)?;
    }
    Ok(())
}

/// Runs `work` on every item `feed` sends, on all cores (at most eight
/// threads), and hands each result to `done` on the calling thread as it
/// comes (not in order). At most two items per worker wait in the queue,
/// so memory stays flat however many items there are.
fn in_parallel<I: Send, O: Send>(
    feed: impl FnOnce(&mut dyn FnMut(I) -> Result<()>) -> Result<()>,
    work: impl Fn(I) -> O + Sync,
    mut done: impl FnMut(O) -> Result<()>,
) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<I>(workers * 2);
    let in_rx = std::sync::Mutex::new(in_rx);
    let (out_tx, out_rx) = std::sync::mpsc::channel::<O>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (out_tx, in_rx, work) = (out_tx.clone(), &in_rx, &work);
            s.spawn(move || loop {
                let next = match in_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(item) = next else { return };
                if out_tx.send(work(item)).is_err() {
                    return;
                }
            });
        }
        drop(out_tx);
        let mut result = feed(&mut |item| {
            in_tx
                .send(item)
                .map_err(|_| anyhow::anyhow!("a worker thread stopped"))?;
            while let Ok(o) = out_rx.try_recv() {
                done(o)?;
            }
            Ok(())
        });
        drop(in_tx);
        for o in out_rx {
            if result.is_ok() {
                result = done(o);
            }
        }
        result
    })
}

/// Processes every imported ballot and writes the outputs into `out_dir`
/// (which must not exist). `progress(done, total, pass)` reports progress.
pub fn process(
    conn: &Connection,
    inputs: &Inputs<'_>,
    out_dir: &Path,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(u64, u64, u8),
) -> Result<Outcome> {
    if out_dir.exists() {
        bail!(
            "{} already exists; choose a new folder for this run's outputs",
            out_dir.display()
        );
    }
    let checkpoint = import::latest_checkpoint(conn)?.context("no bundle has been imported yet")?;
    let log_key = NoteVerifier::from_vkey(&inputs.manifest.log_key)?;
    let cp = SignedCheckpoint::verify(checkpoint.as_bytes(), &log_key)?;
    let total: u64 =
        conn.query_row("SELECT COUNT(*) FROM leaves", [], |r| r.get::<_, i64>(0))? as u64;
    if total != cp.checkpoint.size {
        bail!(
            "{total} ballots are imported but the latest checkpoint covers {}",
            cp.checkpoint.size
        );
    }

    let mut crls = Vec::new();
    let mut intermediates = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT kind, der FROM pki_files")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            let der: Vec<u8> = r.get(1)?;
            if kind == "crl" {
                crls.push(der);
            } else {
                intermediates.push(der);
            }
        }
    }
    // The import checked these files' hashes, not their content. A CRL that
    // does not parse is left out; certificates it would have covered then
    // fail closed ("revocation unknown").
    let crls: Vec<Vec<u8>> = crls
        .into_iter()
        .filter(|c| TrustStore::new(vec![], vec![], vec![c.clone()]).is_ok())
        .collect();
    let trust = TrustStore::new(inputs.anchors.clone(), intermediates, crls)?;
    let now = clock.now();
    // Unlock the election key once for the whole run (Argon2 is slow on
    // purpose); the unlocked copy lives only in this function's memory.
    let unlocked = match inputs.password {
        Some(pw) => shared::pgp::unlock(inputs.election_key, pw)?,
        None => inputs.election_key.clone(),
    };
    let inputs = &Inputs {
        election_key: &unlocked,
        password: None,
        witness: inputs.witness,
        manifest: inputs.manifest,
        roster: inputs.roster,
        anchors: Vec::new(),
    };

    // Pass 1: decide.
    let mut latest: HashMap<String, (UnixTime, u64)> = HashMap::new();
    let mut revoked_later_leaves: Vec<u64> = Vec::new();
    // Every slot is set by the worker that checks that leaf; the count is
    // verified below.
    let mut decisions: Vec<Decision> =
        vec![Decision::Rejected(Reason::MalformedPackage); usize::try_from(total)?];
    let mut checked = 0u64;
    in_parallel(
        |send| leaves(conn, send),
        |leaf: Leaf| {
            let d = check(&leaf, inputs, &trust, now).map(|(_, revoked_later)| revoked_later);
            (leaf.index, leaf.voter_id, leaf.entry.received_at, d)
        },
        |(index, voter_id, at, d)| {
            let slot = decisions
                .get_mut(usize::try_from(index).unwrap_or(usize::MAX))
                .with_context(|| format!("leaf {index} is beyond the {total} imported"))?;
            *slot = match d {
                Ok(revoked_later) => {
                    let best = latest.entry(voter_id).or_insert((at, index));
                    if (at, index) >= *best {
                        *best = (at, index);
                    }
                    if revoked_later {
                        revoked_later_leaves.push(index);
                    }
                    Decision::Valid
                }
                Err(r) => Decision::Rejected(r),
            };
            checked += 1;
            progress(checked, total, 1);
            Ok(())
        },
    )?;
    if checked != total {
        bail!("{checked} ballots were checked, but {total} were imported");
    }
    let counted: std::collections::HashSet<u64> = latest.values().map(|(_, i)| *i).collect();
    let statuses: Vec<Status> = decisions
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Decision::Rejected(r) => Status::Rejected(*r),
            Decision::Valid if counted.contains(&(i as u64)) => Status::Accepted,
            Decision::Valid => Status::Superseded,
        })
        .collect();

    // Pass 2: write. Everything goes into a temporary folder first.
    let parent = out_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.partial",
        out_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("outputs")
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(tmp.join("ballots"))?;
    let fixed_time = inputs.manifest.closes_at.to_system_time();
    let mut order: Vec<u64> = counted.iter().copied().collect();
    order.sort_unstable();
    order.shuffle(&mut rand::rngs::OsRng);
    let mut names: Vec<(String, String)> = Vec::with_capacity(order.len());
    let ballots_dir = tmp.join("ballots");
    in_parallel(
        |send| {
            for index in &order {
                send(leaf_at(conn, *index)?)?;
            }
            Ok(())
        },
        // Pass 1 decided these ballots; here they are only opened again.
        // Files are created in the shuffled order (give or take the
        // workers' timing), never in log order.
        |leaf: Leaf| -> Result<(String, String)> {
            let package = open_package(&leaf, inputs).map_err(|r| {
                anyhow::anyhow!("leaf {} can no longer be opened ({})", leaf.index, r.name())
            })?;
            let mut id = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
            let name = format!("{}.{}", hex::encode(id), extension(&package.media_type));
            write_new(&ballots_dir.join(&name), &package.content, fixed_time)?;
            Ok((name, package.media_type))
        },
        |r| {
            names.push(r?);
            progress(names.len() as u64, order.len() as u64, 2);
            Ok(())
        },
    )?;
    names.sort();
    let mut index = String::from("file,media_type\n");
    for (n, m) in &names {
        index.push_str(&format!("{n},{m}\n"));
    }
    write_new(&tmp.join("ballots/INDEX.csv"), index.as_bytes(), fixed_time)?;

    // The identity side.
    let mut voters = String::from("voter_id,leaf_index,status,reason\n");
    let mut outcome = Outcome {
        total,
        out_dir: out_dir.to_path_buf(),
        ..Outcome::default()
    };
    let mut by_reason: HashMap<Reason, u64> = HashMap::new();
    voter_ids(conn, |index, voter_id| {
        let s = statuses
            .get(index as usize)
            .copied()
            .unwrap_or(Status::Rejected(Reason::MalformedPackage));
        let (status, reason) = match s {
            Status::Accepted => {
                outcome.accepted += 1;
                ("accepted", "")
            }
            Status::Superseded => {
                outcome.superseded += 1;
                ("superseded", "")
            }
            Status::Rejected(r) => {
                *by_reason.entry(r).or_default() += 1;
                ("rejected", r.name())
            }
        };
        voters.push_str(&format!("{voter_id},{index},{status},{reason}\n"));
        Ok(())
    })?;
    outcome.revoked_after_receipt = revoked_later_leaves
        .iter()
        .filter(|l| counted.contains(l))
        .count() as u64;
    let mut rejected: Vec<(Reason, u64)> = by_reason.into_iter().collect();
    rejected.sort();
    outcome.rejected = rejected;
    write_new(&tmp.join("voters.csv"), voters.as_bytes(), fixed_time)?;
    write_new(
        &tmp.join("report.txt"),
        report_text(inputs.manifest, &outcome, &cp).as_bytes(),
        fixed_time,
    )?;
    write_new(
        &tmp.join("report.json"),
        report_json(inputs.manifest, &outcome, &cp).as_bytes(),
        fixed_time,
    )?;

    // The status file: the final checkpoint, cosigned by the witness key.
    let cosigned = inputs
        .witness
        .cosign(&Note::parse(checkpoint.as_bytes())?, now.0)?;
    let status = StatusFile {
        election_id: inputs.manifest.election_id.clone(),
        checkpoint: cosigned,
        statuses,
    };
    let signed =
        shared::signed::sign_document(&status.to_bytes()?, inputs.election_key, inputs.password)?;
    write_new(&tmp.join(shared::media::STATUS_FILE), &signed, fixed_time)?;
    sync_outputs(&tmp)?;
    std::fs::rename(&tmp, out_dir).context("cannot move the outputs into place")?;
    std::fs::File::open(parent)?.sync_all()?;
    Ok(outcome)
}

fn report_text(m: &ElectionManifest, o: &Outcome, cp: &SignedCheckpoint) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}\n{}\n\n", m.title, m.jurisdiction));
    s.push_str("Report of ballots returned electronically by overseas and military voters\n\n");
    s.push_str(&format!("Ballots received and logged:   {}\n", o.total));
    s.push_str(&format!("Accepted (to be counted):      {}\n", o.accepted));
    s.push_str(&format!(
        "Superseded by a later ballot:  {}\n",
        o.superseded
    ));
    s.push_str(&format!(
        "Rejected:                      {}\n",
        o.rejected_total()
    ));
    for (r, n) in &o.rejected {
        s.push_str(&format!("  {n:>5}  {}\n", r.explain()));
    }
    if o.revoked_after_receipt > 0 {
        s.push_str(&format!(
            "\n{} accepted ballot(s) came from a card revoked after the ballot was received; they count.\n",
            o.revoked_after_receipt
        ));
    }
    s.push_str(&format!(
        "\nThe accepted ballots are in the folder ballots/, in random order, with no names.\n\
         The list of voters and the status of each ballot is in voters.csv.\n\
         The signed status file for the gateway is {}.\n\
         Log: {} entries, checkpoint root {}.\n",
        shared::media::STATUS_FILE,
        cp.checkpoint.size,
        hex::encode(cp.checkpoint.root)
    ));
    s
}

fn report_json(m: &ElectionManifest, o: &Outcome, cp: &SignedCheckpoint) -> String {
    let mut rejected = String::new();
    for (i, (r, n)) in o.rejected.iter().enumerate() {
        if i > 0 {
            rejected.push(',');
        }
        rejected.push_str(&format!("\"{}\":{n}", r.name()));
    }
    format!(
        "{{\"election_id\":\"{}\",\"total\":{},\"accepted\":{},\"superseded\":{},\"rejected\":{{{rejected}}},\"revoked_after_receipt\":{},\"log_size\":{},\"log_root\":\"{}\"}}\n",
        m.election_id,
        o.total,
        o.accepted,
        o.superseded,
        o.revoked_after_receipt,
        cp.checkpoint.size,
        hex::encode(cp.checkpoint.root)
    )
}
