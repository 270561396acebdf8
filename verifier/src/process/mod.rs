//! `ballot-verifier process`: decides every imported ballot (DESIGN section
//! 8) and writes the canvass outputs.
//!
//! Pass 1 decrypts and checks every ballot, keeping only its decision and,
//! per voter, the latest valid ballot (memory is a few bytes per ballot,
//! never ballot contents). The checks, in order, each with its reason:
//! decryption; the CMS signature; the signer's certificate, validated with
//! the CRLs from the bundles at the time the ballot is proven to have existed
//! (the quorum time of the first witnessed checkpoint that includes it, see
//! `docs/spec/witnesses.md`, "The time rule"); the
//! signer is the voter whose TLS certificate uploaded it; the voter is on
//! the roster under the voter id the gateway recorded, and the log entry's
//! commitment opens to that voter id; the ballot package; the election; the
//! ballot style; the media type and size; the declaration; and the voting
//! window, by the witnesses' time as well as the gateway's. Then the
//! replacement rule: per voter, the valid ballot latest in the log (the
//! highest leaf index, what the voter's receipts commit to; never the
//! gateway's `received_at`) counts and earlier valid ones are superseded.
//!
//! Pass 2 decrypts the counted ballots again and writes their contents in a
//! random order, under random names, with one fixed timestamp, and nothing
//! else: no voter, no leaf index, no time of receipt. The identity side
//! (`voters.csv`: voter, leaf, status, reason) is written separately.
//! Everything goes into a temporary folder that is renamed into place only
//! when complete; rejected and superseded ballots' contents are never
//! written.

mod canvass;
mod leaves;
mod parallel;
mod rules;
mod timing;

use crate::import;
use anyhow::{bail, Context, Result};
use canvass::{extension, report_json, report_text, sync_outputs, write_new};
use leaves::{leaf_at, leaves, voter_ids, Leaf};
use parallel::in_parallel;
use rand::seq::SliceRandom;
use rules::{check, open_package, Decision, Replacement};
use rusqlite::Connection;
use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use shared::checkpoint::SignedCheckpoint;
use shared::clock::Clock;
use shared::manifest::ElectionManifest;
use shared::note::{Note, NoteSigner, NoteVerifier};
use shared::pki::{Anchor, TrustStore};
use shared::roster::Roster;
use shared::status::{Reason, Status, StatusFile};
use std::collections::HashMap;
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
    /// Where the outputs are.
    pub out_dir: PathBuf,
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
    let rule = timing::TimeRule::load(conn, inputs.manifest, now)?;
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
    let mut replacement = Replacement::new(inputs.manifest.replacement_rule);
    let mut revoked_later_leaves: Vec<u64> = Vec::new();
    let mut late_by_witnesses_only = 0u64;
    // Every slot is set by the worker that checks that leaf; the count is
    // verified below.
    let mut decisions: Vec<Decision> =
        vec![Decision::Rejected(Reason::MalformedPackage); usize::try_from(total)?];
    let mut checked = 0u64;
    in_parallel(
        |send| leaves(conn, send),
        |leaf: Leaf| {
            let when = rule.timing(leaf.index, leaf.entry.received_at);
            let d = check(&leaf, inputs, &trust, now, when);
            (leaf.index, leaf.voter_id, when, d)
        },
        |(index, voter_id, when, d)| {
            if when.late_by_witnesses_only {
                late_by_witnesses_only += 1;
            }
            let slot = decisions
                .get_mut(usize::try_from(index).unwrap_or(usize::MAX))
                .with_context(|| format!("leaf {index} is beyond the {total} imported"))?;
            *slot = match d {
                Ok(revoked_later) => {
                    replacement.valid(voter_id, index);
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
    let counted = replacement.counted();
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
    // A relative `--out canvass` has the empty path as its parent; the
    // folder that holds it is then the current one.
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
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
            .collect(),
        time_rule: rule.summary(),
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
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush the folder {}", parent.display()))?;
    Ok(outcome)
}
