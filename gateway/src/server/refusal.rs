//! Refusals: every request the gateway turns down is a [`Refusal`], an
//! [`ErrorCode`] of the HTTP contract (`shared::api`, with its status and
//! usual message) plus what the operator's log needs. The voter sees the
//! code and the message only; `detail` and `identity` go to the log and the
//! security events.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use shared::api::{ErrorBody, ErrorCode, RETRY_AFTER_SECS};
use shared::pgp::PgpError;
use shared::pki::ChainError;
use shared::x509::IdentityError;

/// A refused request.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    message: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) identity: Option<String>,
}

impl From<ErrorCode> for Refusal {
    fn from(code: ErrorCode) -> Self {
        Refusal {
            code,
            message: None,
            detail: None,
            identity: None,
        }
    }
}

impl Refusal {
    /// A message more specific than the code's usual one.
    pub(crate) fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    /// Details for the operator (never sent to the client).
    pub(crate) fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    /// The voter identity the request came with, for the security events.
    pub(crate) fn identity(mut self, id: &str) -> Self {
        self.identity = Some(id.to_owned());
        self
    }

    /// The message the client reads.
    pub(crate) fn text(&self) -> &str {
        self.message
            .as_deref()
            .unwrap_or_else(|| self.code.default_message())
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Whether the refusal is worth a security event: everything but a
    /// wrong path or method.
    pub(crate) fn is_security_event(&self) -> bool {
        !matches!(self.code, ErrorCode::NotFound | ErrorCode::MethodNotAllowed)
    }

    /// The answer: the JSON error body, and `Retry-After` on 429.
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        let body = ErrorBody::new(self.code, self.text());
        let mut r = super::routes::json(self.status(), &body);
        if self.status() == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(RETRY_AFTER_SECS),
            );
        }
        r
    }
}

/// The code of a certificate chain refusal (in the handshake's security
/// event, and in the answer to a request).
pub fn chain_code(e: &ChainError) -> ErrorCode {
    match e {
        ChainError::UnknownIssuer => ErrorCode::UnknownIssuer,
        ChainError::Expired(_) => ErrorCode::CertificateExpired,
        ChainError::NotYetValid(_) => ErrorCode::CertificateNotYetValid,
        ChainError::Revoked { .. } => ErrorCode::CertificateRevoked,
        ChainError::RevocationUnknown { .. } => ErrorCode::RevocationUnknown,
        ChainError::WrongUsage => ErrorCode::ClientAuthNotPermitted,
        ChainError::BadSignature => ErrorCode::BadCertificateSignature,
        ChainError::Malformed(_) => ErrorCode::MalformedCertificate,
        ChainError::TooLong => ErrorCode::ChainTooLong,
        _ => ErrorCode::CertificateRefused,
    }
}

/// The code of a voter certificate refused at a request: the content
/// rules first (card-auth, policy, identity), then the chain.
pub(crate) fn voter_cert_code(e: &ChainError) -> ErrorCode {
    match e {
        ChainError::Identity(IdentityError::CardAuthentication) => {
            ErrorCode::CardAuthenticationCertificate
        }
        ChainError::Identity(IdentityError::NoAcceptedPolicy { .. }) => {
            ErrorCode::PolicyNotAccepted
        }
        // A policy the card claims that its CAs were not authorised for.
        ChainError::Policy(_) => ErrorCode::PolicyNotAccepted,
        ChainError::Identity(IdentityError::NoClientAuth) => ErrorCode::ClientAuthNotPermitted,
        ChainError::Identity(_) => ErrorCode::NoVoterIdentity,
        other => chain_code(other),
    }
}

/// The code of an upload whose OpenPGP structure is refused.
pub(crate) fn structure_code(e: &PgpError) -> ErrorCode {
    match e {
        PgpError::TooLarge(_) => ErrorCode::BallotTooLarge,
        PgpError::NotOpenPgp(_) => ErrorCode::NotOpenpgp,
        PgpError::WrongRecipient(_) | PgpError::AnonymousRecipient => ErrorCode::WrongRecipient,
        PgpError::SeipdV1 | PgpError::OldPkesk => ErrorCode::SeipdV1NotAccepted,
        PgpError::PasswordEncrypted => ErrorCode::PasswordEncrypted,
        PgpError::Cipher(_) => ErrorCode::CipherNotAccepted,
        PgpError::SessionKey(_) => ErrorCode::WrongRecipient,
        _ => ErrorCode::BadBallotStructure,
    }
}
