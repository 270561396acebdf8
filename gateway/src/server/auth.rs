//! The voter behind a connection: a validated client certificate (path,
//! revocation, content rules) whose identity is on the roster.

use super::refusal::{voter_cert_code, Refusal};
use super::{AppState, ConnInfo};
use shared::api::ErrorCode;

/// A voter the request may act for.
#[derive(Debug)]
pub(crate) struct Voter {
    /// The roster's voter id.
    pub(crate) voter_id: String,
    /// The roster's ballot style for this voter.
    pub(crate) ballot_style: String,
    /// The certificate's identity, canonical (`edipi:…`, `county:…`).
    pub(crate) identity: String,
    /// The client certificate (DER).
    pub(crate) cert: Vec<u8>,
}

/// Identifies the voter of `info`'s connection.
pub(crate) fn voter(state: &AppState, info: &ConnInfo) -> Result<Voter, Refusal> {
    let Some((ee, rest)) = info.certs.as_deref().and_then(|c| c.split_first()) else {
        return Err(ErrorCode::ClientCertificateRequired.into());
    };
    let now = state.clock.now();
    let v = state
        .trust
        .get()
        .verify_voter(ee, rest, shared::x509::Purpose::Authentication, now, now)
        .map_err(|e| Refusal::from(voter_cert_code(&e)).detail(e.to_string()))?;
    let identity = v.facts.identity.to_canonical();
    let entry = state
        .election
        .roster
        .by_identity(&v.facts.identity)
        .ok_or_else(|| Refusal::from(ErrorCode::NotOnRoster).identity(&identity))?;
    Ok(Voter {
        voter_id: entry.voter_id.clone(),
        ballot_style: entry.ballot_style.clone(),
        identity,
        cert: ee.clone(),
    })
}
