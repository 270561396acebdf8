//! The rules a ballot must pass (DESIGN section 8), in order, each with
//! its rejection reason; and the replacement rule the manifest names,
//! which decides which of a voter's valid ballots counts.

use super::bounded::{Bounded, Late};
use super::leaves::Leaf;
use super::timing::Timing;
use super::Inputs;
use sequoia_openpgp::Cert;
use shared::ballot::BallotPackage;
use shared::clock::UnixTime;
use shared::log_entry::voter_commitment;
use shared::manifest::ReplacementRule;
use shared::pki::{ChainError, TrustStore};
use shared::status::Reason;
use shared::x509::VoterIdentity;
use std::sync::Arc;

/// The largest decrypted ballot (the package plus the signature around it).
const MAX_SIGNED: usize = shared::cms::MAX_VOTER_SIGNATURE;

/// Why a run stops rather than deciding a ballot.
#[derive(Debug)]
pub(super) enum Stop {
    /// Too many ballots are still being opened past the time limit.
    TooManyLate,
    /// No current CRL from this CA covers a card's path: whether the card
    /// was revoked is unknown, which is the county's problem to fix (bring
    /// that CA's CRL), never a voter's ballot to reject.
    RevocationUnknown {
        /// The CA whose CRL is missing or stale.
        issuer: String,
    },
}

/// The decision on one ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Not decided yet (only before its turn comes).
    Pending,
    Rejected(Reason),
    Valid,
}

/// A ballot that passed every check.
pub(super) struct Valid {
    /// Its card was revoked after the time the ballot is proven to have
    /// existed (it counts).
    pub(super) revoked_later: Option<UnixTime>,
    /// The opened package.
    pub(super) package: BallotPackage,
}

/// What checking one ballot found.
pub(super) struct Checked {
    /// The package's nonce, when the signature verified and the package
    /// decoded, whatever the verdict (to find a package logged twice).
    pub(super) nonce: Option<[u8; 32]>,
    /// The CMS `signingTime`, when the signature verified and had one.
    pub(super) signed_at: Option<u64>,
    /// The verdict.
    pub(super) verdict: Result<Valid, Reason>,
}

/// Runs every check on a ballot, decrypting it and verifying its
/// signature once.
/// Opening (decryption, the CMS signature, the package) runs within
/// `bounded`'s time limit; a ballot that takes longer is `took-too-long`.
/// Err: too many ballots are still being opened past the limit, or a
/// card's revocation status is unknown.
pub(super) fn check(
    leaf: &mut Leaf,
    key: &Arc<Cert>,
    bounded: &Bounded,
    inputs: &Inputs<'_>,
    trust: &TrustStore,
    now: UnixTime,
    when: Timing,
) -> Result<Checked, Stop> {
    let ciphertext = std::mem::take(&mut leaf.ciphertext);
    let key = key.clone();
    let opened = bounded.run(move || {
        open_signed(&ciphertext, &key).map(|cms| {
            let package =
                BallotPackage::from_bytes(&cms.content).map_err(|_| Reason::MalformedPackage);
            (cms, package)
        })
    });
    let (cms, package) = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(r)) => return Ok(Checked::refused(r)),
        Err(Late::TimedOut) => return Ok(Checked::refused(Reason::TookTooLong)),
        Err(Late::Panicked) => return Ok(Checked::refused(Reason::MalformedPackage)),
        Err(Late::TooManyRunning) => return Err(Stop::TooManyLate),
    };
    Ok(Checked {
        nonce: package.as_ref().ok().map(|p| p.nonce),
        signed_at: cms.signing_time,
        verdict: judge(leaf, inputs, trust, now, when, &cms, package)?,
    })
}

impl Checked {
    fn refused(r: Reason) -> Self {
        Checked {
            nonce: None,
            signed_at: None,
            verdict: Err(r),
        }
    }
}

/// The checks after decryption and the signature, in order, each with its
/// reason. Err: the run must stop (see [`Stop::RevocationUnknown`]).
fn judge(
    leaf: &Leaf,
    inputs: &Inputs<'_>,
    trust: &TrustStore,
    now: UnixTime,
    when: Timing,
    cms: &shared::cms::SignedContent,
    package: Result<BallotPackage, Reason>,
) -> Result<Result<Valid, Reason>, Stop> {
    let voter = match trust.verify_voter(
        &cms.signer_cert,
        &cms.other_certs,
        shared::x509::Purpose::Signing,
        when.proven,
        now,
    ) {
        Ok(v) => v,
        Err(ChainError::RevocationUnknown { issuer }) => {
            return Err(Stop::RevocationUnknown { issuer })
        }
        Err(ChainError::Revoked { .. }) => return Ok(Err(Reason::CertificateRevoked)),
        Err(_) => return Ok(Err(Reason::CertificateInvalid)),
    };
    Ok(judge_signed(leaf, inputs, when, voter, package))
}

/// [`judge`]'s checks after the signer's certificate was validated.
fn judge_signed(
    leaf: &Leaf,
    inputs: &Inputs<'_>,
    when: Timing,
    voter: shared::pki::VerifiedVoter,
    package: Result<BallotPackage, Reason>,
) -> Result<Valid, Reason> {
    let m = inputs.manifest;
    let uploader =
        VoterIdentity::parse_canonical(&leaf.identity).ok_or(Reason::SignerNotUploader)?;
    if voter.facts.identity != uploader {
        // A voter on the roster signed it, and the gateway says another
        // uploaded it: a relabelled ballot, not a routine mistake.
        return Err(match inputs.roster.by_identity(&voter.facts.identity) {
            Some(_) => Reason::UploadedAsAnotherVoter,
            None => Reason::SignerNotUploader,
        });
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
    let package = package?;
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
    if when.early {
        return Err(Reason::BeforeOpening);
    }
    if when.late {
        return Err(Reason::AfterDeadline);
    }
    Ok(Valid {
        revoked_later: voter.revoked_later,
        package,
    })
}

/// Decrypts a ballot with the unlocked election key and verifies its CMS
/// signature (not yet its signer).
fn open_signed(ciphertext: &[u8], key: &Cert) -> Result<shared::cms::SignedContent, Reason> {
    let signed = shared::pgp::decrypt(ciphertext, key, None, MAX_SIGNED)
        .map_err(|_| Reason::DecryptionFailed)?;
    shared::cms::verify(&signed, MAX_SIGNED).map_err(|_| Reason::BadSignature)
}

/// The replacement rule of the manifest: which of one voter's valid
/// ballots counts, given the voter's leaves newest first (by their place in
/// the log, what the voter's receipts commit to; never the gateway's
/// `received_at`) and the decisions.
pub(super) fn counted_leaf(
    rule: ReplacementRule,
    newest_first: &[u64],
    decision: impl Fn(u64) -> Decision,
) -> Option<u64> {
    match rule {
        // The latest valid ballot before the deadline counts (every valid
        // ballot is on time): the valid one latest in the log. Earlier
        // valid ones are superseded.
        ReplacementRule::LatestBeforeDeadline => newest_first
            .iter()
            .copied()
            .find(|l| decision(*l) == Decision::Valid),
    }
}
