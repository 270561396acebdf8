//! `ballot-verifier process`: decides every imported ballot (DESIGN section
//! 8) and writes the canvass outputs.
//!
//! Each ballot is decrypted and its signature verified once. The checks, in
//! order, each with its reason: decryption; the CMS signature; the signer's
//! certificate, validated with the CRLs from the bundles at the time the
//! ballot is proven to have existed (the quorum time of the first witnessed
//! checkpoint that includes it, see `docs/spec/witnesses.md`, "The time
//! rule"); the signer is the voter whose TLS certificate uploaded it (a
//! voter on the roster who is not is `uploaded-as-another-voter`, gateway
//! misbehaviour); the voter is on the roster under the voter id the gateway
//! recorded, and the log entry's commitment opens to that voter id; the
//! ballot package; the election; the ballot style; the media type and
//! size; the declaration; and the voting window, by the witnesses' time as
//! well as the gateway's. A ciphertext or ballot package already at an
//! earlier leaf is `replayed` and never counts. Then the replacement rule:
//! per voter, the valid ballot latest in the log (the highest leaf index,
//! what the voter's receipts commit to; never the gateway's `received_at`)
//! counts and earlier valid ones are superseded.
//!
//! Voters' leaves are taken newest first, in rounds (every voter's newest
//! leaf, in a random order; then every second newest; and so on), so the
//! ballot that counts is known when it is opened: its content is written
//! then, in a random order, under a random name, with one fixed timestamp,
//! and nothing else: no voter, no leaf index, no time of receipt. Contents
//! are written only by the final canvass (after the deadline plus the
//! grace period), and once: an interim run writes the statuses, the counts
//! and the signed status file and no content, and a second content run
//! needs an override the report records. Rejected and superseded ballots'
//! contents are never written. The identity side (`voters.csv`: voter,
//! leaf, status, reason) is written separately. Everything goes into a
//! temporary folder that is renamed into place only when complete.

mod bounded;
mod canvass;
mod leaves;
mod parallel;
mod pdf;
mod report_pdf;
mod rules;
mod timing;

use crate::import;
use anyhow::{bail, Context, Result};
use canvass::{report_json, report_text, sync_outputs, write_content, write_new, Flusher, Written};
use leaves::{leaf_at, voter_ids, Leaf};
use parallel::in_parallel;
use rand::seq::SliceRandom;
use report_pdf::report_pdf;
use rules::{check, counted_leaf, Decision};
use rusqlite::Connection;
use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use sha2::{Digest, Sha256};
use shared::checkpoint::SignedCheckpoint;
use shared::clock::Clock;
use shared::manifest::{ElectionManifest, ReplacementRule};
use shared::note::{Note, NoteSigner, NoteVerifier};
use shared::pki::{Anchor, TrustStore};
use shared::roster::Roster;
use shared::status::{Reason, Status, StatusFile};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
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
    /// Why the contents are written again, when a final canvass already
    /// wrote them (recorded in the report and the verifier's state).
    pub again: Option<&'a str>,
    /// The longest one ballot may take to open (decrypt, verify its
    /// signature, read its package); longer is `took-too-long`.
    pub open_time_limit: std::time::Duration,
}

/// The default for [`Inputs::open_time_limit`]: the largest ballot opens
/// in well under a second on a 2-core machine.
pub const OPEN_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl<'a> Inputs<'a> {
    /// What [`crate::ceremony::load`] read, with the passphrase that
    /// unlocks the election key and the trust anchors.
    pub fn new(
        loaded: &'a crate::ceremony::Loaded,
        password: Option<&'a Password>,
        anchors: Vec<Anchor>,
    ) -> Self {
        Inputs {
            election_key: &loaded.election_key,
            password,
            witness: &loaded.witness,
            manifest: &loaded.manifest,
            roster: &loaded.roster,
            anchors,
            again: None,
            open_time_limit: OPEN_TIME_LIMIT,
        }
    }
}

/// A signing time later than the time of receipt by more than this (one
/// hour, in seconds) is evidence: the gateway stamped the ballot as
/// received before it was signed, or the voter's clock was wrong.
pub const SIGNING_SLACK: u64 = 3600;

/// Creates `dir` (which must not exist yet) with mode 0700.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// Removes the partial output folders `.{base}.*.partial` in `parent`
/// that earlier runs left (folders only; a link is not followed).
fn remove_partials(parent: &Path, base: &str) -> Result<()> {
    let prefix = format!(".{base}.");
    let entries = std::fs::read_dir(parent)
        .with_context(|| format!("cannot list the folder {}", parent.display()))?;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&prefix) && name.ends_with(".partial") && e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path()).with_context(|| {
                format!(
                    "cannot remove the unfinished outputs {}",
                    e.path().display()
                )
            })?;
        }
    }
    Ok(())
}

/// The error that stops a run when ballots keep running past the limit.
/// Why the run stopped, in words for the board.
fn stopped(e: rules::Stop, b: &bounded::Bounded) -> anyhow::Error {
    match e {
        rules::Stop::TooManyLate => too_many_late(b),
        rules::Stop::RevocationUnknown { issuer } => anyhow::anyhow!(
            "revocation status unknown: no current CRL from {issuer} covers the time a ballot \
             signed under it was received. The run stops here and writes nothing, because \
             without that CRL no one can tell whether the card was revoked; this is not the \
             voter's fault and is never reported as an invalid certificate. Bring a CRL from \
             that CA covering the time of receipt on the county's media \
             (ballot-verifier import-crls MEDIA) and run process again"
        ),
    }
}

fn too_many_late(b: &bounded::Bounded) -> anyhow::Error {
    anyhow::anyhow!(
        "{} ballots are still being opened after {} seconds each; stopping rather than \
         piling up more. The ballots named took-too-long so far are evidence: keep the bundle \
         and have them examined",
        bounded::MAX_RUNNING_LATE,
        b.limit().as_secs()
    )
}

/// Whether this run writes the ballots' contents: only a final run, and
/// only once unless `again` says why.
fn contents_allowed(conn: &Connection, final_run: bool, again: Option<&str>) -> Result<bool> {
    if !final_run {
        if again.is_some() {
            bail!("this is an interim run (before the deadline plus the grace period): it writes no ballot content, so there is nothing to write again");
        }
        return Ok(false);
    }
    let before = crate::state::content_runs(conn)?;
    match (before.first(), again) {
        (None, _) => Ok(true),
        (Some(_), Some(why)) if !why.trim().is_empty() => Ok(true),
        (Some(first), _) => bail!(
            "the ballots' contents were already written by the final canvass at {} into {}; \
             writing them again would let anyone holding both sets compare them. If the board \
             decided to (the first set was lost or damaged), run again with --again \"REASON\"; \
             the reason goes into the report",
            first.at,
            first.out_dir
        ),
    }
}

fn get(decisions: &[Decision], leaf: u64) -> Result<Decision> {
    decisions
        .get(usize::try_from(leaf).unwrap_or(usize::MAX))
        .copied()
        .with_context(|| format!("leaf {leaf} is beyond the imported log"))
}

fn set(decisions: &mut [Decision], leaf: u64, d: Decision) -> Result<()> {
    let slot = decisions
        .get_mut(usize::try_from(leaf).unwrap_or(usize::MAX))
        .with_context(|| format!("leaf {leaf} is beyond the imported log"))?;
    *slot = d;
    Ok(())
}

/// Gateway misbehaviour found while deciding, with the leaves involved.
#[derive(Debug, Default)]
struct Evidence {
    /// `(original, copy)` with the same ciphertext.
    same_ciphertext: Vec<(u64, u64)>,
    /// `(original, copy)` with the same ballot package nonce.
    same_package: Vec<(u64, u64)>,
    /// Signed by a voter on the roster, recorded as another's upload.
    relabelled: Vec<u64>,
    /// Signed more than [`SIGNING_SLACK`] after the stamped receipt.
    signed_after_receipt: Vec<u64>,
    /// Not opened within the time limit (seconds).
    too_long: Vec<u64>,
    /// The time limit.
    limit: std::time::Duration,
}

/// At most this many leaves are listed in one alarm (voters.csv has all).
const LISTED: usize = 40;

fn list(leaves: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = leaves.collect();
    let mut s = all
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > LISTED {
        s.push_str(&format!(" and {} more", all.len() - LISTED));
    }
    s
}

impl Evidence {
    fn alarms(&mut self) -> Vec<String> {
        self.same_ciphertext.sort_unstable();
        self.same_package.sort_unstable();
        self.relabelled.sort_unstable();
        self.signed_after_receipt.sort_unstable();
        self.too_long.sort_unstable();
        let mut out = Vec::new();
        let pairs =
            |v: &[(u64, u64)]| list(v.iter().map(|(a, b)| format!("leaf {b} repeats leaf {a}")));
        if !self.same_ciphertext.is_empty() {
            out.push(format!(
                "GATEWAY MISBEHAVIOUR: REPLAYED CIPHERTEXT: the gateway logged a ciphertext it had already logged ({}). A client retry returns the first receipt and is never logged twice. The copies are rejected as replayed and never count.",
                pairs(&self.same_ciphertext)
            ));
        }
        if !self.same_package.is_empty() {
            out.push(format!(
                "GATEWAY MISBEHAVIOUR: REPLAYED BALLOT: the same signed ballot (the same package nonce) is at two leaves ({}). The later copy is rejected as replayed and never counts.",
                pairs(&self.same_package)
            ));
        }
        if !self.relabelled.is_empty() {
            out.push(format!(
                "GATEWAY MISBEHAVIOUR: RELABELLED BALLOTS: {} ballot(s) signed by a voter on the roster were recorded by the gateway as uploaded by another voter (leaves {}). They were rejected as uploaded-as-another-voter; the signer's other ballots were judged as usual. Contact the signers (voters.csv names the uploader the gateway claims) before certifying.",
                self.relabelled.len(),
                list(self.relabelled.iter().map(u64::to_string))
            ));
        }
        if !self.signed_after_receipt.is_empty() {
            out.push(format!(
                "GATEWAY MISBEHAVIOUR: SIGNED AFTER RECEIPT: {} ballot(s) carry a signing time more than {} minutes after the time the gateway stamped as their receipt (leaves {}): the gateway backdated them, or the voter's computer clock was that far ahead. They were judged as usual, by the witnesses' time; the gateway's times are not to be trusted.",
                self.signed_after_receipt.len(),
                SIGNING_SLACK / 60,
                list(self.signed_after_receipt.iter().map(u64::to_string))
            ));
        }
        if !self.too_long.is_empty() {
            out.push(format!(
                "BALLOTS THAT TOOK TOO LONG: {} ballot(s) could not be decrypted, their signature checked and their package read within {} seconds each (leaves {}). They were rejected as took-too-long so that the canvass could go on. A ballot built to stall the verifier, or a fault: keep the bundle, have the ballots examined, and contact the voters (voters.csv names them) before certifying.",
                self.too_long.len(),
                self.limit.as_secs(),
                list(self.too_long.iter().map(u64::to_string))
            ));
        }
        out
    }
}

/// The verifier's whole decision on a ballot, as `voters.csv` (the
/// county's own record) gives it. The public status file shows only
/// [`Decided::public`]: whether a valid ballot counted or was replaced is
/// the county's to know, not a vote buyer's (`docs/threat-model.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decided {
    /// Valid, and the voter's latest valid ballot: counted.
    Accepted,
    /// Valid, but replaced by a later valid ballot of the same voter.
    Superseded,
    /// Not counted, for a reason.
    Rejected(Reason),
}

impl Decided {
    /// What the public status file says.
    pub fn public(self) -> Status {
        match self {
            Decided::Accepted | Decided::Superseded => Status::Valid,
            Decided::Rejected(r) => Status::Rejected(r),
        }
    }

    /// The status and reason columns of `voters.csv`.
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            Decided::Accepted => ("accepted", ""),
            Decided::Superseded => ("superseded", ""),
            Decided::Rejected(r) => ("rejected", r.name()),
        }
    }
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
    /// Ballots the gateway stamped on time that no checkpoint witnessed in
    /// time includes (rejected as late).
    pub late_by_witnesses_only: u64,
    /// What the board must look into before certifying, in words.
    pub alarms: Vec<String>,
    /// How time was judged, in words.
    pub time_rule: String,
    /// Whether this run wrote the ballots' contents.
    pub contents: Contents,
    /// Accepted PDF ballots whose metadata could not be removed (written
    /// as sent).
    pub pdfs_with_metadata: u64,
    /// Where the outputs are.
    pub out_dir: PathBuf,
    /// Counted ballots whose card was revoked after the ballot was proven
    /// to exist: voter, log entry, revocation time (for the board).
    pub counted_though_revoked_later: Vec<(String, u64, shared::clock::UnixTime)>,
    /// The trust anchors voters were validated with (all pinned).
    pub anchors: Vec<shared::manifest::PinnedAnchor>,
    /// The CRLs revocation was checked with.
    pub crls: Vec<CrlUsed>,
}

/// A CRL a run used, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlUsed {
    /// Its issuer's name.
    pub issuer: String,
    /// thisUpdate and nextUpdate.
    pub this_update: shared::clock::UnixTime,
    /// nextUpdate, if it has one.
    pub next_update: Option<shared::clock::UnixTime>,
    /// How many certificates it lists.
    pub entries: usize,
    /// SHA-256 of the file, in hex.
    pub sha256: String,
}

/// Whether a run wrote the ballots' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// An interim run: statuses and counts only; contents are written by
    /// the final canvass, after this time (the deadline plus the grace).
    NotYet {
        /// The deadline plus the grace period.
        after: shared::clock::UnixTime,
    },
    /// The final canvass wrote them; `again` is the override's reason when
    /// an earlier run had written them too.
    Written {
        /// The board's reason for writing them a second time.
        again: Option<String>,
    },
}

impl Default for Contents {
    fn default() -> Self {
        Contents::NotYet {
            after: shared::clock::UnixTime(0),
        }
    }
}

impl Outcome {
    /// Ballots rejected, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
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
    // Only anchors the signed manifest pins decide who may vote as whom.
    crate::ceremony::check_offered_anchors(&inputs.anchors, inputs.manifest)?;
    anyhow::ensure!(
        !inputs.anchors.is_empty(),
        "no trust anchor to validate voters with (the manifest pins {})",
        inputs.manifest.trust_anchors.len()
    );
    let anchors_used: Vec<_> = inputs.anchors.iter().map(shared::pins::pin_of).collect();
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
    // cannot be used (a delta CRL, a critical extension not understood, bad
    // DER) is left out and named in the alarms, never dropped silently;
    // certificates only it would have covered stop the run ("revocation
    // status unknown").
    let mut crl_alarms = Vec::new();
    let mut crls_used = Vec::new();
    let crls: Vec<Vec<u8>> = crls
        .into_iter()
        .filter(|c| match shared::pki::crl_info(c) {
            Ok(info) => {
                crls_used.push(CrlUsed {
                    issuer: info.issuer,
                    this_update: shared::clock::UnixTime(
                        u64::try_from(info.this_update).unwrap_or(0),
                    ),
                    next_update: info
                        .next_update
                        .map(|t| shared::clock::UnixTime(u64::try_from(t).unwrap_or(0))),
                    entries: info.entries,
                    sha256: hex::encode(Sha256::digest(c)),
                });
                true
            }
            Err(e) => {
                crl_alarms.push(format!(
                    "CRL REFUSED: the CRL with SHA-256 {} was not used: {e}",
                    hex::encode(Sha256::digest(c))
                ));
                false
            }
        })
        .collect();
    let trust = TrustStore::new(inputs.anchors.clone(), intermediates, crls)?;
    let now = clock.now();
    let rule = timing::TimeRule::load(conn, inputs.manifest, now)?;
    // Unlock the election key once for the whole run (Argon2 is slow on
    // purpose); the unlocked copy lives only in this function's memory.
    let unlocked = match inputs.password {
        Some(pw) => shared::pgp::unlock(inputs.election_key, pw)?,
        None => inputs.election_key.clone(),
    };
    let key = std::sync::Arc::new(unlocked);
    let bounded = bounded::Bounded::new(inputs.open_time_limit);
    let inputs = &Inputs {
        election_key: &key,
        password: None,
        witness: inputs.witness,
        manifest: inputs.manifest,
        roster: inputs.roster,
        anchors: Vec::new(),
        again: inputs.again,
        open_time_limit: inputs.open_time_limit,
    };

    let plan = leaves::plan(conn)?;
    let write_contents = contents_allowed(conn, rule.is_final(), inputs.again)?;

    // Everything goes into a temporary folder first. A relative
    // `--out canvass` has the empty path as its parent; the folder that
    // holds it is then the current one.
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    let base = out_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("outputs");
    // An earlier run that stopped half way left its partial folder (which
    // may hold ballot contents): removed first. A link by that name is
    // someone else's and is left alone.
    remove_partials(parent, base)?;
    // A fresh, unpredictable name, created here (never an existing folder
    // or a link someone prepared), readable by the county's account only.
    let mut id = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    let tmp = parent.join(format!(".{base}.{}.partial", hex::encode(id)));
    private_dir(&tmp)?;
    let ballots_dir = tmp.join("ballots");
    if write_contents {
        private_dir(&ballots_dir)?;
    }
    let fixed_time = inputs.manifest.closes_at.to_system_time();
    let flusher = Flusher::start();

    // Decide, opening each ballot once. Round k takes every voter's k-th
    // newest leaf, in a random order; a valid ballot whose voter has no
    // valid newer one is the one that counts, and its content is written
    // there and then (files are created in a random order, never in log
    // order). Memory: a few dozen bytes per ballot, never contents.
    let slots = usize::try_from(total)?;
    let mut decisions: Vec<Decision> = vec![Decision::Pending; slots];
    let mut evidence = Evidence {
        limit: bounded.limit(),
        ..Evidence::default()
    };
    for &(original, copy) in &plan.same_ciphertext {
        set(&mut decisions, copy, Decision::Rejected(Reason::Replayed))?;
        evidence.same_ciphertext.push((original, copy));
    }
    let mut checked = plan.same_ciphertext.len() as u64;
    let mut written: HashMap<u64, Written> = HashMap::new();
    let mut nonces: HashMap<[u8; 32], u64> = HashMap::new();
    let mut revoked_later: HashMap<u64, shared::clock::UnixTime> = HashMap::new();
    let mut late_by_witnesses_only = 0u64;
    // Voters with more leaves first: round k looks only at the voters that
    // have a k-th leaf (a gateway that logs a million leaves for one voter
    // makes a million small rounds, not a million passes over every
    // voter). `newer_valid`: one of the voter's newer leaves is valid, so
    // under the manifest's rule this one cannot count.
    let mut voters: Vec<(&[u64], bool)> = plan
        .voters
        .iter()
        .map(|(_, l)| (l.as_slice(), false))
        .collect();
    voters.sort_unstable_by_key(|(l, _)| std::cmp::Reverse(l.len()));
    for round in 0.. {
        let active = voters.partition_point(|(l, _)| l.len() > round);
        if active == 0 {
            break;
        }
        let mut batch: Vec<(u64, bool)> = Vec::new();
        for &(newest_first, newer_valid) in voters.iter().take(active) {
            let Some(&leaf) = newest_first.get(round) else {
                continue;
            };
            if get(&decisions, leaf)? != Decision::Pending {
                continue;
            }
            let counts_if_valid = match inputs.manifest.replacement_rule {
                ReplacementRule::LatestBeforeDeadline => !newer_valid,
            };
            batch.push((leaf, write_contents && counts_if_valid));
        }
        batch.shuffle(&mut rand::rngs::OsRng);
        in_parallel(
            |send| {
                for &(index, write) in &batch {
                    send((leaf_at(conn, index)?, write))?;
                }
                Ok(())
            },
            |(mut leaf, write): (Leaf, bool)| {
                let when = rule.timing(leaf.index, leaf.entry.received_at);
                let c = check(&mut leaf, &key, &bounded, inputs, &trust, now, when)
                    .map_err(|e| stopped(e, &bounded))?;
                let file = match (&c.verdict, write) {
                    (Ok(v), true) => Some(write_content(
                        &ballots_dir,
                        &v.package,
                        fixed_time,
                        &flusher,
                        &bounded,
                    )),
                    _ => None,
                };
                let signed_after = c
                    .signed_at
                    .is_some_and(|t| t > leaf.entry.received_at.0.saturating_add(SIGNING_SLACK));
                Ok((leaf.index, when, signed_after, c, file))
            },
            |r: Result<_>| {
                let (index, when, signed_after, c, file) = r?;
                if when.late_by_witnesses_only {
                    late_by_witnesses_only += 1;
                }
                if signed_after {
                    evidence.signed_after_receipt.push(index);
                }
                let d = match &c.verdict {
                    Ok(v) => {
                        if let Some(t) = v.revoked_later {
                            revoked_later.insert(index, t);
                        }
                        Decision::Valid
                    }
                    Err(Reason::UploadedAsAnotherVoter) => {
                        evidence.relabelled.push(index);
                        Decision::Rejected(Reason::UploadedAsAnotherVoter)
                    }
                    Err(Reason::TookTooLong) => {
                        evidence.too_long.push(index);
                        Decision::Rejected(Reason::TookTooLong)
                    }
                    Err(r) => Decision::Rejected(*r),
                };
                set(&mut decisions, index, d)?;
                if let Some(file) = file {
                    written.insert(index, file?);
                }
                if let Some(nonce) = c.nonce {
                    match nonces.entry(nonce) {
                        Entry::Vacant(v) => {
                            v.insert(index);
                        }
                        Entry::Occupied(mut o) => {
                            let first = (*o.get()).min(index);
                            evidence.same_package.push((first, (*o.get()).max(index)));
                            o.insert(first);
                        }
                    }
                }
                checked += 1;
                progress(checked, total, 1);
                Ok(())
            },
        )?;
        for (newest_first, newer_valid) in voters.iter_mut().take(active) {
            if let Some(&leaf) = newest_first.get(round) {
                *newer_valid |= get(&decisions, leaf)? == Decision::Valid;
            }
        }
    }
    drop(nonces);
    if checked != total {
        bail!("{checked} ballots were checked, but {total} were imported");
    }
    // A package at two leaves: the later is the copy and never counts,
    // whatever it was decided (the rounds go newest first, so the copy may
    // have been met first).
    for &(_, copy) in &evidence.same_package {
        set(&mut decisions, copy, Decision::Rejected(Reason::Replayed))?;
    }

    // The replacement rule, now that every ballot is decided.
    let mut counted: HashSet<u64> = HashSet::new();
    for (_, newest_first) in &plan.voters {
        if let Some(l) = counted_leaf(inputs.manifest.replacement_rule, newest_first, |l| {
            get(&decisions, l).unwrap_or(Decision::Pending)
        }) {
            counted.insert(l);
        }
    }
    let statuses: Vec<Decided> = decisions
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Decision::Rejected(r) => Decided::Rejected(*r),
            Decision::Valid if counted.contains(&(i as u64)) => Decided::Accepted,
            Decision::Valid => Decided::Superseded,
            // Every leaf was decided (counted above).
            Decision::Pending => Decided::Rejected(Reason::MalformedPackage),
        })
        .collect();

    if write_contents {
        // Only a replay found after its copy was written (a gateway
        // attack) leaves a file that does not count, or a counted ballot
        // without one; then that ballot is opened a second time.
        written.retain(|leaf, w| {
            counted.contains(leaf) || std::fs::remove_file(ballots_dir.join(&w.name)).is_err()
        });
        if let Some(l) = written.keys().find(|l| !counted.contains(l)) {
            bail!("cannot remove the content of leaf {l}, which does not count");
        }
        let mut missing: Vec<u64> = counted
            .iter()
            .copied()
            .filter(|l| !written.contains_key(l))
            .collect();
        missing.shuffle(&mut rand::rngs::OsRng);
        for index in missing {
            let mut leaf = leaf_at(conn, index)?;
            let when = rule.timing(index, leaf.entry.received_at);
            let c = check(&mut leaf, &key, &bounded, inputs, &trust, now, when)
                .map_err(|e| stopped(e, &bounded))?;
            let Ok(v) = c.verdict else {
                bail!("leaf {index} can no longer be opened");
            };
            written.insert(
                index,
                write_content(&ballots_dir, &v.package, fixed_time, &flusher, &bounded)?,
            );
        }
        let mut names: Vec<&Written> = written.values().collect();
        names.sort();
        let mut index = String::from("file,media_type\n");
        for w in names {
            index.push_str(&format!("{},{}\n", w.name, w.media_type));
        }
        flusher.send(write_new(
            &ballots_dir.join("INDEX.csv"),
            index.as_bytes(),
            fixed_time,
        )?)?;
    }

    // The identity side.
    let mut voters = String::from("voter_id,leaf_index,status,reason\n");
    let mut outcome = Outcome {
        total,
        out_dir: out_dir.to_path_buf(),
        anchors: anchors_used,
        crls: crls_used,
        late_by_witnesses_only,
        alarms: rule
            .alarms(total, late_by_witnesses_only)
            .into_iter()
            .chain(
                crate::state::misbehaviour(conn, None)?
                    .into_iter()
                    .map(|m| {
                        format!(
                            "GATEWAY MISBEHAVIOUR: {} (found importing bundle {})",
                            m.detail, m.bundle
                        )
                    }),
            )
            .chain(evidence.alarms())
            .chain(crl_alarms)
            .collect(),
        time_rule: rule.summary(),
        pdfs_with_metadata: written.values().filter(|w| w.metadata_kept).count() as u64,
        contents: if write_contents {
            Contents::Written {
                again: inputs.again.map(str::to_owned),
            }
        } else {
            Contents::NotYet {
                after: inputs.manifest.closing_bound(),
            }
        },
        ..Outcome::default()
    };
    let mut by_reason: HashMap<Reason, u64> = HashMap::new();
    voter_ids(conn, |index, voter_id| {
        let s = statuses
            .get(index as usize)
            .copied()
            .unwrap_or(Decided::Rejected(Reason::MalformedPackage));
        match s {
            Decided::Accepted => outcome.accepted += 1,
            Decided::Superseded => outcome.superseded += 1,
            Decided::Rejected(r) => *by_reason.entry(r).or_default() += 1,
        }
        let (status, reason) = s.columns();
        voters.push_str(&format!("{voter_id},{index},{status},{reason}\n"));
        if let Some(t) = revoked_later
            .get(&index)
            .filter(|_| counted.contains(&index))
        {
            outcome
                .counted_though_revoked_later
                .push((voter_id.to_owned(), index, *t));
        }
        Ok(())
    })?;
    outcome.revoked_after_receipt = outcome.counted_though_revoked_later.len() as u64;
    let mut rejected: Vec<(Reason, u64)> = by_reason.into_iter().collect();
    rejected.sort();
    outcome.rejected = rejected;
    flusher.send(write_new(
        &tmp.join("voters.csv"),
        voters.as_bytes(),
        fixed_time,
    )?)?;
    flusher.send(write_new(
        &tmp.join("report.txt"),
        report_text(inputs.manifest, &outcome, &cp).as_bytes(),
        fixed_time,
    )?)?;
    flusher.send(write_new(
        &tmp.join("report.pdf"),
        &report_pdf(inputs.manifest, &outcome, &cp)?,
        fixed_time,
    )?)?;
    flusher.send(write_new(
        &tmp.join("report.json"),
        report_json(inputs.manifest, &outcome, &cp).as_bytes(),
        fixed_time,
    )?)?;

    // The status file: the final checkpoint, cosigned by the witness key.
    let cosigned = inputs
        .witness
        .cosign(&Note::parse(checkpoint.as_bytes())?, now.0)?;
    let status = StatusFile {
        election_id: inputs.manifest.election_id.clone(),
        checkpoint: cosigned,
        statuses: statuses.into_iter().map(Decided::public).collect(),
    };
    let signed =
        shared::signed::sign_document(&status.to_bytes()?, inputs.election_key, inputs.password)?;
    flusher.send(write_new(
        &tmp.join(shared::media::STATUS_FILE),
        &signed,
        fixed_time,
    )?)?;
    flusher.finish()?;
    sync_outputs(&tmp)?;
    std::fs::rename(&tmp, out_dir).context("cannot move the outputs into place")?;
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush the folder {}", parent.display()))?;
    if write_contents {
        crate::state::record_content_run(conn, now, out_dir, cp.checkpoint.size, inputs.again)?;
    }
    Ok(outcome)
}
