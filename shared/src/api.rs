//! The gateway's HTTP API as a typed contract: the paths, the JSON answers,
//! the error body and every refusal code with its HTTP status. The gateway
//! writes these types and every client (the voter's program, the tests, the
//! load harness) reads them, so the two sides cannot drift apart.
//! Specification: `docs/spec/http-api.md`.
//!
//! Answers that are documents of their own (the signed election manifest,
//! the checkpoint note, the signed status file) are served as their bytes,
//! not as JSON; their formats have their own modules.

use crate::merkle::Hash;
use base64::prelude::*;
use serde::{Deserialize, Serialize};

/// `GET`: the signed election manifest (`application/octet-stream`).
pub const ELECTION: &str = "/v1/election";
/// `POST`: upload an encrypted ballot; answers a [`ReceiptAnswer`].
pub const BALLOTS: &str = "/v1/ballots";
/// `GET`: the latest signed checkpoint (`text/plain`, a C2SP signed note).
pub const CHECKPOINT: &str = "/v1/log/checkpoint";
/// `GET`: the latest checkpoint cosigned by a quorum of the manifest's
/// witnesses (`text/plain`, the signed note with every cosignature).
pub const WITNESSED: &str = "/v1/log/witnessed";
/// `GET ?index=I&size=N`: an [`InclusionAnswer`].
pub const INCLUSION: &str = "/v1/log/inclusion";
/// `GET ?from=M&to=N`: a [`ConsistencyAnswer`].
pub const CONSISTENCY: &str = "/v1/log/consistency";
/// `GET`: the verifier's signed status file, once imported.
pub const STATUS_FILE: &str = "/v1/status-file";
/// `GET`, with the voter's client certificate: the caller's own roster
/// entry, a [`VoterAnswer`] (what `ballot-return send` puts in the ballot).
pub const VOTER: &str = "/v1/voter";
/// `GET`: what an observer's page shows, an [`ObserverAnswer`] (public, no
/// certificate needed).
pub const OBSERVER: &str = "/v1/observer";
/// `GET`: the observer's page (HTML), with its script and style beside it.
pub const OBSERVER_PAGE: &str = "/";
/// The headers of every page a browser shows (the observer's page on the
/// gateway, the voter's page of `ballot-return`): the page may load and
/// reach nothing but its own server, in no frame, and is never cached.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
];
/// `GET` on the health listener: a [`HealthAnswer`].
pub const HEALTH: &str = "/healthz";
/// The media type of an upload's body.
pub const UPLOAD_CONTENT_TYPE: &str = "application/octet-stream";
/// Seconds a client waits before retrying after a 429 answer (`Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 300;

/// `GET`: the status of one of the caller's own ballots; answers a
/// [`StatusAnswer`].
pub fn ballot_status_path(leaf_index: u64) -> String {
    format!("{BALLOTS}/{leaf_index}/status")
}

/// The path and query of an inclusion proof request.
pub fn inclusion_path(index: u64, size: u64) -> String {
    format!("{INCLUSION}?index={index}&size={size}")
}

/// The path and query of a consistency proof request.
pub fn consistency_path(from: u64, to: u64) -> String {
    format!("{CONSISTENCY}?from={from}&to={to}")
}

/// The answer to an accepted upload (`200`), and to a retry of the same
/// upload (`duplicate` is then true and the receipt is byte for byte the
/// one given the first time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptAnswer {
    /// The ballot's leaf index in the log.
    pub leaf_index: u64,
    /// The voter id the gateway recorded, from the roster.
    pub voter_id: String,
    /// The salt of the log entry's voter commitment (64 hex digits).
    pub salt: String,
    /// True when the gateway already had this upload from this voter.
    pub duplicate: bool,
    /// The receipt: a C2SP tlog-proof (`docs/spec/receipt.md`).
    pub receipt: String,
}

impl ReceiptAnswer {
    /// The commitment salt as bytes; `None` unless it is 64 hex digits.
    pub fn salt_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.salt).ok()?.try_into().ok()
    }
}

/// The answer to `GET /v1/observer`: the public facts of the election and
/// its log, for the observer's page. Everything in it is the gateway's
/// word, but the checkpoints and keys can be checked: the checkpoints are
/// signed notes, and the keys are the signed manifest's (served whole at
/// `/v1/election`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverAnswer {
    /// The election id.
    pub election_id: String,
    /// Its title.
    pub title: String,
    /// The county or state.
    pub jurisdiction: String,
    /// When ballots are first accepted (RFC 3339).
    pub opens_at: String,
    /// The deadline (RFC 3339).
    pub closes_at: String,
    /// The fingerprint of the election key that signed the manifest.
    pub election_fingerprint: String,
    /// The log's origin line.
    pub log_origin: String,
    /// The log's verifier key (C2SP signed-note vkey).
    pub log_key: String,
    /// The witnesses the manifest names, and how many must cosign.
    pub witnesses: Vec<ObserverWitness>,
    /// How many witnesses must cosign a checkpoint.
    pub witness_quorum: u8,
    /// The latest signed checkpoint, if the log has one.
    pub checkpoint: Option<String>,
    /// The latest checkpoint a quorum of witnesses cosigned, if any.
    pub witnessed: Option<String>,
    /// Counts from the latest status file the gateway imported, if any.
    pub status: Option<ObserverCounts>,
}

/// A witness as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverWitness {
    /// Its name (the vkey's name).
    pub name: String,
    /// Its cosigner key (vkey).
    pub key: String,
}

/// The counts of the latest status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverCounts {
    /// Ballots the status file decides (the log size it covers).
    pub ballots: u64,
    /// Valid (counted or replaced by the same voter's later ballot: the
    /// public file does not say which).
    pub valid: u64,
    /// Rejected, by reason name, in the order of the reason codes.
    pub rejected: Vec<(String, u64)>,
}

/// The answer to `GET /v1/voter` (`200`): the roster entry of the voter
/// whose certificate authenticated the connection. It is the gateway's
/// word: the county's verifier checks the ballot style in each ballot
/// against its own signed roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoterAnswer {
    /// The county's voter number.
    pub voter_id: String,
    /// The ballot style the county issued this voter.
    pub ballot_style: String,
}

/// Where a ballot stands, as the gateway last heard from the county.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BallotState {
    /// Logged; the county has not processed it yet.
    Received,
    /// Passed every check: it counts if it is the voter's latest valid
    /// ballot (the county does not publish which valid ballot counted).
    Valid,
    /// Not counted; the explanation says why.
    Rejected,
    /// The gateway holds a status it cannot read.
    Unknown,
}

/// The answer to `GET /v1/ballots/{index}/status` (`200`), for the voter
/// who uploaded that ballot only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusAnswer {
    /// The ballot's leaf index.
    pub leaf_index: u64,
    /// Its state.
    pub status: BallotState,
    /// Plain words for the voter.
    pub explanation: String,
}

/// A proof's hashes, each as standard base64 of 32 bytes in JSON.
mod base64_hashes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(|h| BASE64_STANDARD.encode(h)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts: Vec<String> = Vec::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                BASE64_STANDARD
                    .decode(t)
                    .ok()
                    .and_then(|b| <Hash>::try_from(b).ok())
                    .ok_or_else(|| {
                        serde::de::Error::custom("a hash in the proof is not 32 base64 bytes")
                    })
            })
            .collect()
    }
}

/// The answer to an inclusion proof request (`200`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionAnswer {
    /// The leaf index asked about.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The RFC 6962 inclusion proof.
    #[serde(with = "base64_hashes")]
    pub proof: Vec<Hash>,
}

/// The answer to a consistency proof request (`200`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyAnswer {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The RFC 6962 consistency proof.
    #[serde(with = "base64_hashes")]
    pub proof: Vec<Hash>,
}

/// The health listener's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthAnswer {
    /// Always `ok` when the gateway answers.
    pub status: String,
    /// The size of the latest checkpoint.
    pub log_size: u64,
}

/// Every refused request's body: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The refusal.
    pub error: ErrorDetail,
}

/// The refusal inside an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The stable code ([`ErrorCode::as_str`]); clients decide by it.
    pub code: String,
    /// A sentence for the person at the keyboard; it may change.
    pub message: String,
}

impl ErrorBody {
    /// A body for `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_owned(),
                message: message.into(),
            },
        }
    }

    /// Reads an error body; `None` when the body is not one.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The code, when it is one this version knows.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.error.code)
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $message:literal), )*) => {
        /// Every refusal the gateway answers with: a stable code, its HTTP
        /// status, and the message a voter reads unless the gateway gives a
        /// more specific one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of `docs/spec/http-api.md`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable code, as in the error body.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status answered with this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The usual message for this code.
            pub fn default_message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }
        }
    };
}

error_codes! {
    // The request itself.
    /// No such endpoint, or someone else's ballot (which looks the same).
    NotFound = ("not-found", 404, "no such endpoint"),
    /// The endpoint exists but not with this method.
    MethodNotAllowed = ("method-not-allowed", 405, "method not allowed"),
    /// A query parameter is missing or not a number.
    BadQuery = ("bad-query", 400, "the query needs a number"),
    /// A proof request names a size beyond the latest checkpoint.
    BadSize = ("bad-size", 400, "the size is beyond the latest checkpoint"),
    /// A proof request the log cannot answer (for example from > to).
    BadRequest = ("bad-request", 400, "the request cannot be answered"),
    /// The whole request took longer than the gateway allows.
    RequestTimeout = ("request-timeout", 408, "the request took too long; try again"),
    /// No ballot is logged yet, so there is no checkpoint.
    LogEmpty = ("log-empty", 404, "no ballot has been logged yet"),
    /// No checkpoint has been cosigned by a quorum of witnesses yet.
    NotWitnessedYet = ("not-witnessed-yet", 404,
        "no checkpoint has been cosigned by a quorum of the election's witnesses yet"),
    /// The county has not published a status file yet.
    NoStatusYet = ("no-status-yet", 404, "the county has not published statuses yet"),
    // The voter's certificate and identity.
    /// The request needs a client certificate and none was presented.
    ClientCertificateRequired = ("client-certificate-required", 401,
        "this request needs your CAC or voter certificate; insert the card and try again"),
    /// The card-authentication certificate was presented.
    CardAuthenticationCertificate = ("card-authentication-certificate", 403,
        "this is the card-authentication certificate; choose the PIV authentication certificate (the one with your name)"),
    /// The certificate's policies are not accepted.
    PolicyNotAccepted = ("policy-not-accepted", 403,
        "this certificate's assurance level is not accepted for voting; use the CAC's PIV authentication certificate"),
    /// The certificate is not for client authentication.
    ClientAuthNotPermitted = ("client-auth-not-permitted", 403, "this certificate is not for authentication"),
    /// The certificate names no voter identity.
    NoVoterIdentity = ("no-voter-identity", 403, "this certificate does not identify a voter"),
    /// The certificate does not chain to a trust anchor.
    UnknownIssuer = ("unknown-issuer", 403, "your certificate is not accepted"),
    /// The certificate has expired.
    CertificateExpired = ("certificate-expired", 403, "your certificate is not accepted"),
    /// The certificate is not valid yet.
    CertificateNotYetValid = ("certificate-not-yet-valid", 403, "your certificate is not accepted"),
    /// The certificate is revoked.
    CertificateRevoked = ("certificate-revoked", 403, "your certificate is not accepted"),
    /// No current CRL covers the certificate's issuer.
    RevocationUnknown = ("revocation-unknown", 403, "your certificate is not accepted"),
    /// A signature in the chain does not verify.
    BadCertificateSignature = ("bad-certificate-signature", 403, "your certificate is not accepted"),
    /// A certificate in the chain is malformed.
    MalformedCertificate = ("malformed-certificate", 403, "your certificate is not accepted"),
    /// The chain is longer than allowed.
    ChainTooLong = ("chain-too-long", 403, "your certificate is not accepted"),
    /// The chain is refused for another reason.
    CertificateRefused = ("certificate-refused", 403, "your certificate is not accepted"),
    /// The voter is not on the county's roster.
    NotOnRoster = ("not-on-roster", 403,
        "you are not on this county's list of overseas and military voters; contact your election office"),
    // The upload.
    /// Before the election opens.
    ElectionNotOpen = ("election-not-open", 403, "ballots are not accepted yet"),
    /// At or after the deadline.
    ElectionClosed = ("election-closed", 403, "the deadline has passed"),
    /// The voter already has the most uploads in progress.
    UploadInProgress = ("upload-in-progress", 429,
        "another upload of yours is still in progress; wait for it to finish"),
    /// The voter is over the hourly upload rate.
    RateLimited = ("rate-limited", 429,
        "too many uploads in the last hour; wait a few minutes and try again"),
    /// The voter has logged the most ballots allowed.
    TooManyBallots = ("too-many-ballots", 429,
        "you have sent the most ballots allowed; the last one received before the deadline counts"),
    /// The upload is larger than the election allows.
    BallotTooLarge = ("ballot-too-large", 413, "the upload is too large"),
    /// The connection broke during the upload.
    UploadInterrupted = ("upload-interrupted", 400, "the upload was interrupted; send it again"),
    /// The body is not an OpenPGP message.
    NotOpenpgp = ("not-openpgp", 415,
        "the upload is not an encrypted ballot; use the ballot-return program"),
    /// The message is not encrypted to the election key.
    WrongRecipient = ("wrong-recipient", 422,
        "the ballot is not encrypted to this election's key; check the election fingerprint"),
    /// SEIPD v1 or an old session-key packet.
    SeipdV1NotAccepted = ("seipd-v1-not-accepted", 422,
        "the ballot uses old OpenPGP encryption (SEIPD v1); SEIPD v2 is required"),
    /// A cipher, AEAD mode or chunk size outside the accepted set.
    CipherNotAccepted = ("cipher-not-accepted", 422,
        "the ballot is encrypted with a cipher this election does not accept; use the ballot-return program"),
    /// Encrypted with a password.
    PasswordEncrypted = ("password-encrypted", 422,
        "the ballot is encrypted with a password; it must be encrypted to the election key"),
    /// Any other departure from the expected message structure.
    BadBallotStructure = ("bad-ballot-structure", 422, "the encrypted ballot is not in the expected form"),
    // The gateway.
    /// The disk is full; nothing was stored.
    StorageFull = ("storage-full", 503,
        "the gateway cannot store ballots right now; nothing was stored; try again later"),
    /// The database failed; nothing was stored.
    StorageUnavailable = ("storage-unavailable", 503,
        "the gateway cannot store ballots right now; nothing was stored; try again later"),
    /// The gateway is stopping.
    ShuttingDown = ("shutting-down", 503, "the gateway is stopping; try again shortly"),
    /// A fault of the gateway itself.
    Internal = ("internal", 500, "internal error"),
}

impl ErrorCode {
    /// The code with this text, if this version knows it.
    pub fn parse(code: &str) -> Option<Self> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// Whether sending the same request again later may succeed: the
    /// gateway was busy or stopping, or the connection broke.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorCode::RequestTimeout
                | ErrorCode::UploadInterrupted
                | ErrorCode::StorageFull
                | ErrorCode::StorageUnavailable
                | ErrorCode::ShuttingDown
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*c));
            assert!((400..600).contains(&c.http_status()));
        }
        assert_eq!(ErrorCode::parse("no-such-code"), None);
    }

    #[test]
    fn proof_hashes_are_base64_and_refused_otherwise() {
        let a = ConsistencyAnswer {
            from: 1,
            to: 2,
            proof: vec![[7u8; 32]],
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"from\":1,\"to\":2,\"proof\":[\"{}\"]}}",
                BASE64_STANDARD.encode([7u8; 32])
            )
        );
        assert_eq!(serde_json::from_str::<ConsistencyAnswer>(&text).unwrap(), a);
        let short = format!(
            "{{\"from\":1,\"to\":2,\"proof\":[\"{}\"]}}",
            BASE64_STANDARD.encode([7u8; 31])
        );
        assert!(serde_json::from_str::<ConsistencyAnswer>(&short).is_err());
    }

    #[test]
    fn error_body_round_trips_and_the_salt_is_checked() {
        let b = ErrorBody::new(ErrorCode::RateLimited, "wait");
        let text = serde_json::to_vec(&b).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&text),
            "{\"error\":{\"code\":\"rate-limited\",\"message\":\"wait\"}}"
        );
        assert_eq!(
            ErrorBody::from_json(&text).unwrap().code(),
            Some(ErrorCode::RateLimited)
        );
        let mut r = ReceiptAnswer {
            leaf_index: 0,
            voter_id: "V-1".into(),
            salt: "00".repeat(32),
            duplicate: false,
            receipt: String::new(),
        };
        assert_eq!(r.salt_bytes().unwrap(), [0u8; 32]);
        r.salt = "00".repeat(31);
        assert!(r.salt_bytes().is_none());
    }
}
