//! The rules a ballot must pass (DESIGN section 8), in order, each with
//! its rejection reason; and the replacement rule the manifest names,
//! which decides which of a voter's valid ballots counts.

use super::leaves::Leaf;
use super::timing::Timing;
use super::Inputs;
use shared::ballot::BallotPackage;
use shared::clock::UnixTime;
use shared::log_entry::voter_commitment;
use shared::manifest::ReplacementRule;
use shared::pki::{ChainError, TrustStore};
use shared::status::Reason;
use shared::x509::VoterIdentity;
use std::collections::HashMap;

/// The largest decrypted ballot (the package plus the signature around it).
const MAX_SIGNED: usize = shared::ballot::MAX_PACKAGE + 256 * 1024;

/// The decision on one ballot in pass 1.
#[derive(Debug, Clone, Copy)]
pub(super) enum Decision {
    Rejected(Reason),
    Valid,
}

/// Runs every check on a ballot: `Ok(revoked_later)` when it passes
/// (`revoked_later`: its card was revoked after the time the ballot is
/// proven to have existed, `when.proven`).
pub(super) fn check(
    leaf: &Leaf,
    inputs: &Inputs<'_>,
    trust: &TrustStore,
    now: UnixTime,
    when: Timing,
) -> Result<bool, Reason> {
    let m = inputs.manifest;
    let cms = open_signed(leaf, inputs)?;
    let at = when.proven;
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
    if when.early {
        return Err(Reason::BeforeOpening);
    }
    if when.late {
        return Err(Reason::AfterDeadline);
    }
    Ok(voter.revoked_later.is_some())
}

/// Decrypts a ballot and verifies its CMS signature (not yet its signer).
fn open_signed(leaf: &Leaf, inputs: &Inputs<'_>) -> Result<shared::cms::SignedContent, Reason> {
    let signed = shared::pgp::decrypt(
        &leaf.ciphertext,
        inputs.election_key,
        inputs.password,
        MAX_SIGNED,
    )
    .map_err(|_| Reason::DecryptionFailed)?;
    shared::cms::verify(&signed, MAX_SIGNED).map_err(|_| Reason::BadSignature)
}

/// Decrypts a ballot already decided valid and returns its package.
pub(super) fn open_package(leaf: &Leaf, inputs: &Inputs<'_>) -> Result<BallotPackage, Reason> {
    let cms = open_signed(leaf, inputs)?;
    let package = BallotPackage::from_bytes(&cms.content).map_err(|_| Reason::MalformedPackage)?;
    if package.election_id != inputs.manifest.election_id {
        return Err(Reason::WrongElection);
    }
    Ok(package)
}

/// The replacement rule of the manifest, applied as pass 1 decides: it is
/// told of every valid ballot and names the ones that count. Ballots are
/// ordered by their place in the log (what the voter's receipts commit
/// to), never by the gateway's `received_at`.
pub(super) struct Replacement {
    rule: ReplacementRule,
    /// Per voter id, the leaf that counts so far.
    latest: HashMap<String, u64>,
}

impl Replacement {
    /// The rule named by the manifest.
    pub(super) fn new(rule: ReplacementRule) -> Self {
        Replacement {
            rule,
            latest: HashMap::new(),
        }
    }

    /// A valid ballot of `voter_id` at leaf `index`.
    pub(super) fn valid(&mut self, voter_id: String, index: u64) {
        match self.rule {
            // The latest valid ballot before the deadline counts (every
            // valid ballot is on time): the one latest in the log. Earlier
            // ones are superseded.
            ReplacementRule::LatestBeforeDeadline => {
                let best = self.latest.entry(voter_id).or_insert(index);
                if index >= *best {
                    *best = index;
                }
            }
        }
    }

    /// The leaves that count, one per voter.
    pub(super) fn counted(&self) -> std::collections::HashSet<u64> {
        self.latest.values().copied().collect()
    }
}
