//! `ballot-verifier audit`: a voter's receipt checked offline, with
//! nothing secret: the checkpoint's signature by the manifest's log key,
//! the inclusion, optionally the consistency with a later checkpoint, and
//! the ballot's status in the county's signed status file.

use anyhow::{bail, Context, Result};
use shared::checkpoint::SignedCheckpoint;
use shared::linkage::CheckedStatusFile;
use shared::manifest::ElectionManifest;
use shared::merkle::Hash;
use shared::note::NoteVerifier;
use shared::receipt::Receipt;

/// What a receipt audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The leaf index.
    pub index: u64,
    /// The receipt's checkpoint size.
    pub size: u64,
    /// A later checkpoint's size it was checked against, if any.
    pub later_size: Option<u64>,
    /// The status, in words, if a status file was given.
    pub status: Option<String>,
}

/// Verifies a receipt offline: the checkpoint's signature with the log key
/// of the election manifest, the inclusion; optionally its consistency
/// with a later checkpoint, and its status in a signed status file, which
/// must come with the consistency proof between the receipt's checkpoint
/// and the file's (without it, the receipt could be from a log the county
/// never saw, and its index someone else's ballot in the county's log).
pub fn audit(
    receipt: &[u8],
    manifest: &ElectionManifest,
    election_fingerprint: &str,
    later: Option<(&[u8], &[Hash])>,
    status_file: Option<(&[u8], &[Hash])>,
) -> Result<AuditReport> {
    let log_key = NoteVerifier::from_vkey(&manifest.log_key)?;
    let r = Receipt::parse(receipt).context("the receipt is not readable")?;
    let cp = r.verify(&log_key).context("the receipt does not verify")?;
    if r.entry.election_id != manifest.election_id {
        bail!("the receipt is for election {}", r.entry.election_id);
    }
    let mut later_size = None;
    if let Some((note, proof)) = later {
        let l = SignedCheckpoint::verify(note, &log_key)
            .context("the later checkpoint is not signed by the log key")?;
        let (m, n) = (cp.checkpoint.size, l.checkpoint.size);
        if m == n {
            if cp.checkpoint.root != l.checkpoint.root {
                bail!("the later checkpoint has the same size but a different root: the log was forked");
            }
        } else {
            shared::merkle::verify_consistency(
                m,
                n,
                proof,
                &cp.checkpoint.root,
                &l.checkpoint.root,
            )
            .context(
                "the later checkpoint is not an extension of the receipt's: the log was rewritten",
            )?;
        }
        later_size = Some(n);
    }
    let status = match status_file {
        None => None,
        Some((bytes, proof)) => {
            let s = CheckedStatusFile::open(bytes, manifest, election_fingerprint)?;
            let decided = &s.checkpoint.checkpoint;
            shared::linkage::consistent(&cp.checkpoint, decided, proof).with_context(|| {
                format!(
                    "the receipt's log ({} entries) is not the log the county decided ({} entries): the gateway kept a second log (a fork), or the consistency proof is not for these two checkpoints",
                    cp.checkpoint.size, decided.size
                )
            })?;
            match s.status_of(r.index) {
                Some(st) => Some(st.describe()),
                None => Some(format!(
                    "not processed yet: the status file covers {} ballots; this receipt is entry {}",
                    decided.size, r.index
                )),
            }
        }
    };
    Ok(AuditReport {
        index: r.index,
        size: cp.checkpoint.size,
        later_size,
        status,
    })
}
