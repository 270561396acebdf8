//! A signed document: a body, the OpenPGP certificate that signed it, and a
//! detached signature. Election manifests, rosters and status files travel
//! this way.
//!
//! ```text
//! struct {
//!     opaque magic[15] = "SIGNED-DOCUMENT";
//!     uint8  version = 1;
//!     opaque signer_cert<1..2^16>;   // binary OpenPGP public certificate
//!     opaque body<1..2^26>;          // the document; its own magic says which
//!     opaque signature<1..2^14>;     // binary detached signature over body
//! } SignedDocument;
//! ```
//!
//! Opening checks, in this order and before the body is parsed: the sizes,
//! the signer certificate's fingerprint against the pinned one, and the
//! signature. Specification: `docs/spec/signed-document.md`.

use crate::codec::{DecodeError, Reader, Writer};
use crate::pgp::{self, PgpError, MAX_CERT_LEN, MAX_SIGNATURE_LEN};
use sequoia_openpgp::crypto::Password;
use sequoia_openpgp::Cert;
use thiserror::Error;

/// The magic string.
pub const MAGIC: &[u8; 15] = b"SIGNED-DOCUMENT";
/// The version of this encoding.
pub const VERSION: u8 = 1;
/// The largest body any document may have (64 MiB).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a signed document was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The container is malformed.
    #[error("the signed document is malformed: {0}")]
    Decode(#[from] DecodeError),
    /// Signed by a key other than the pinned one.
    #[error("the document is signed by key {found}, not by the expected key {expected}")]
    WrongSigner {
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint found.
        found: String,
    },
    /// The certificate or signature is bad.
    #[error(transparent)]
    Pgp(#[from] PgpError),
}

/// Signs `body` with `signer` (which holds its secret signing key).
pub fn sign_document(
    body: &[u8],
    signer: &Cert,
    password: Option<&Password>,
) -> Result<Vec<u8>, DocumentError> {
    let signature = pgp::sign_detached(signer, password, body)?;
    let cert = pgp::public_bytes(&signer.clone().strip_secret_key_material())?;
    let mut w = Writer::new();
    w.raw(MAGIC);
    w.u8(VERSION);
    let enc = |e: crate::codec::EncodeError| {
        DocumentError::Decode(DecodeError::TooLong {
            what: e.what,
            len: e.len as u64,
            max: e.max as u64,
        })
    };
    w.vec32(&cert, MAX_CERT_LEN, "signer certificate")
        .map_err(enc)?;
    w.vec32(body, MAX_BODY, "document body").map_err(enc)?;
    w.vec16(&signature, MAX_SIGNATURE_LEN, "signature")
        .map_err(enc)?;
    Ok(w.into_bytes())
}

/// Verifies a signed document against a pinned fingerprint (hex, any case)
/// and returns the signer's certificate and the body. `max_body` bounds the
/// body for this kind of document.
pub fn open_document(
    bytes: &[u8],
    pinned_fingerprint: &str,
    max_body: usize,
) -> Result<(Cert, Vec<u8>), DocumentError> {
    let mut r = Reader::new(bytes);
    r.magic(MAGIC, "signed document")?;
    r.version(VERSION, "signed document")?;
    let cert = r.vec32(MAX_CERT_LEN, "signer certificate")?;
    let body = r.vec32(max_body.min(MAX_BODY), "document body")?;
    let signature = r.vec16(MAX_SIGNATURE_LEN, "signature")?;
    r.finish("signed document")?;
    let cert = pgp::read_public_cert(cert)?;
    let found = pgp::fingerprint_hex(&cert);
    if !found.eq_ignore_ascii_case(pinned_fingerprint.trim()) {
        return Err(DocumentError::WrongSigner {
            expected: pinned_fingerprint.trim().to_uppercase(),
            found,
        });
    }
    pgp::verify_detached(&cert, body, signature)?;
    Ok((cert, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> &'static Cert {
        static K: std::sync::OnceLock<Cert> = std::sync::OnceLock::new();
        K.get_or_init(|| pgp::generate_signing_key("Test document signer", None).unwrap())
    }

    #[test]
    fn round_trips_against_the_pinned_key() {
        let doc = sign_document(b"ROSTER body", key(), None).unwrap();
        let fp = pgp::fingerprint_hex(key());
        let (cert, body) = open_document(&doc, &fp.to_lowercase(), 1024).unwrap();
        assert_eq!(body, b"ROSTER body");
        assert_eq!(cert.fingerprint(), key().fingerprint());
        assert!(
            !cert.is_tsk(),
            "the container carries only the public certificate"
        );
    }

    #[test]
    fn refuses_another_signer_a_changed_body_and_bad_framing() {
        let doc = sign_document(b"body", key(), None).unwrap();
        let other = pgp::generate_signing_key("Another", None).unwrap();
        let other_fp = pgp::fingerprint_hex(&other);
        assert!(matches!(
            open_document(&doc, &other_fp, 1024),
            Err(DocumentError::WrongSigner { .. })
        ));
        let fp = pgp::fingerprint_hex(key());
        // The body is right after the certificate; find and change it.
        let pos = doc.windows(4).position(|w| w == b"body").unwrap();
        let mut changed = doc.clone();
        changed[pos] = b'B';
        assert!(matches!(
            open_document(&changed, &fp, 1024),
            Err(DocumentError::Pgp(_))
        ));
        let mut trailing = doc.clone();
        trailing.push(0);
        assert!(matches!(
            open_document(&trailing, &fp, 1024),
            Err(DocumentError::Decode(_))
        ));
        assert!(matches!(
            open_document(&doc, &fp, 3),
            Err(DocumentError::Decode(DecodeError::TooLong { .. }))
        ));
        // A document signed by another key but carrying our certificate.
        let forged = {
            let real = sign_document(b"body", &other, None).unwrap();
            let mut r = Reader::new(&real);
            r.magic(MAGIC, "").unwrap();
            r.version(VERSION, "").unwrap();
            r.vec32(MAX_CERT_LEN, "").unwrap();
            r.vec32(MAX_BODY, "").unwrap();
            let sig = r.vec16(MAX_SIGNATURE_LEN, "").unwrap();
            let mut w = Writer::new();
            w.raw(MAGIC);
            w.u8(VERSION);
            w.vec32(&pgp::public_bytes(key()).unwrap(), MAX_CERT_LEN, "")
                .unwrap();
            w.vec32(b"body", MAX_BODY, "").unwrap();
            w.vec16(sig, MAX_SIGNATURE_LEN, "").unwrap();
            w.into_bytes()
        };
        assert!(matches!(
            open_document(&forged, &fp, 1024),
            Err(DocumentError::Pgp(_))
        ));
    }
}
