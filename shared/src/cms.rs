//! The voter signature: CMS SignedData (RFC 5652), attached, with signed
//! attributes, made with the key of the voter's X.509 certificate (DESIGN
//! section 5.2). `openssl cms -sign -binary -nodetach -md sha256 -outform
//! DER` makes the same structure, and so can a CAC through PKCS #11.
//!
//! What is accepted (specification: `docs/spec/voter-signature.md`):
//! - `ContentInfo` of type id-signedData, DER, nothing after it;
//! - `encapContentInfo` of type id-data with the content attached;
//! - exactly one `SignerInfo`, identified by issuer and serial number or by
//!   subject key identifier, whose certificate is in `certificates`;
//! - signed attributes with exactly one content-type (id-data) and exactly
//!   one message-digest attribute equal to the digest of the content;
//! - digest SHA-256 (or SHA-384), and a signature algorithm that agrees with
//!   it: ecdsa-with-SHA256/384 on P-256 or P-384, or RSA PKCS #1 v1.5 with
//!   SHA-256 (2048 to 8192 bits). The signature covers the DER encoding of
//!   the signed attributes as a SET OF (RFC 5652 section 5.4).
//!
//! Whether the signer's certificate is trusted (chain, validity, revocation,
//! policy, identity) is checked by [`crate::pki::TrustStore::verify_voter`].
//!
//! Why one file of ~680 lines: about 550 are the signer and the strict verifier, whose refusals
//! are read against each other; the rest are their tests.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair, UnparsedPublicKey};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use thiserror::Error;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;
use zeroize::Zeroizing;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The largest certificate set carried (signer plus chain).
pub const MAX_CERTS: usize = 8;

/// The largest voter signature a verifier reads: the largest ballot
/// package plus room for the certificates and the signature around it.
pub const MAX_VOTER_SIGNATURE: usize = crate::ballot::MAX_PACKAGE + 256 * 1024;

/// Why a voter signature was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Larger than the caller's limit.
    #[error("the signed ballot is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Not DER, or not the structures of RFC 5652.
    #[error("the voter signature is not a valid CMS structure: {0}")]
    Malformed(String),
    /// Valid CMS, but not what a voter signature must be (the reason says what).
    #[error("the voter signature is not acceptable: {0}")]
    Unacceptable(&'static str),
    /// The signer's certificate is not among the certificates carried.
    #[error("the signer's certificate is not included")]
    SignerCertificateMissing,
    /// An algorithm outside the accepted set.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The message-digest attribute does not match the content.
    #[error("the content does not match the signed digest")]
    DigestMismatch,
    /// The signature does not verify with the signer's key.
    #[error("the voter's signature does not verify")]
    BadSignature,
    /// The signing key (a card, say) could not sign; the reason says why.
    #[error("{0}")]
    Signer(String),
}

fn malformed(e: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(e.to_string())
}

/// A voter's signing key (PEM: PKCS #8, SEC1 EC, or PKCS #1 RSA).
pub struct VoterKey {
    inner: KeyInner,
}

enum KeyInner {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for VoterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            KeyInner::P256(_) => "P-256",
            KeyInner::P384(_) => "P-384",
            KeyInner::Rsa(_) => "RSA",
        };
        f.debug_struct("VoterKey")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl VoterKey {
    /// Reads a private key from PEM.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, SignatureError> {
        let p = pem::parse(pem_text)
            .map_err(|_| SignatureError::Malformed("the key file is not PEM".into()))?;
        let der = Zeroizing::new(p.contents().to_vec());
        match p.tag() {
            "PRIVATE KEY" | "EC PRIVATE KEY" => {
                if let Ok(k) =
                    EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                {
                    return Ok(VoterKey {
                        inner: KeyInner::P256(k),
                    });
                }
                if let Ok(k) =
                    EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &der)
                {
                    return Ok(VoterKey {
                        inner: KeyInner::P384(k),
                    });
                }
                if p.tag() == "PRIVATE KEY" {
                    if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
                        return Ok(VoterKey {
                            inner: KeyInner::Rsa(k),
                        });
                    }
                }
                Err(SignatureError::UnsupportedAlgorithm(
                    "the key is not ECDSA P-256, P-384 or RSA".into(),
                ))
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(|k| VoterKey {
                    inner: KeyInner::Rsa(k),
                })
                .map_err(|_| SignatureError::Malformed("bad RSA key".into())),
            "ENCRYPTED PRIVATE KEY" => Err(SignatureError::Unacceptable(
                "the key file is encrypted; decrypt it first (openssl pkey)",
            )),
            _ => Err(SignatureError::Malformed(format!(
                "unexpected PEM block {}",
                p.tag()
            ))),
        }
    }
}

/// The kind of a voter's key, which fixes the signature's algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256, with SHA-256.
    P256,
    /// ECDSA on P-384, with SHA-384 (RFC 5753 pairs them; aws-lc-rs
    /// signs P-384 with SHA-384 only).
    P384,
    /// RSA PKCS #1 v1.5 with SHA-256.
    Rsa,
}

impl KeyKind {
    fn algorithms(
        self,
    ) -> (
        ObjectIdentifier,
        ObjectIdentifier,
        &'static digest::Algorithm,
    ) {
        match self {
            KeyKind::P256 => (SHA256, ECDSA_SHA256, &digest::SHA256),
            KeyKind::P384 => (SHA384, ECDSA_SHA384, &digest::SHA384),
            KeyKind::Rsa => (SHA256, RSA_SHA256, &digest::SHA256),
        }
    }
}

/// Something that makes a voter's signature: a key in memory
/// ([`VoterKey`]) or a key on a card that never leaves it (the voter
/// program's PKCS #11 key).
pub trait CmsSigner: std::fmt::Debug + Send + Sync {
    /// The key's kind.
    fn kind(&self) -> KeyKind;
    /// Signs `message` (the DER of the signed attributes): for ECDSA a DER
    /// `ECDSA-Sig-Value` over its SHA-256 (P-256) or SHA-384 (P-384), for
    /// RSA PKCS #1 v1.5 over its SHA-256.
    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError>;
}

impl CmsSigner for VoterKey {
    fn kind(&self) -> KeyKind {
        match self.inner {
            KeyInner::P256(_) => KeyKind::P256,
            KeyInner::P384(_) => KeyKind::P384,
            KeyInner::Rsa(_) => KeyKind::Rsa,
        }
    }

    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        let fail = |_| SignatureError::Unacceptable("the signing operation failed");
        match &self.inner {
            KeyInner::P256(k) | KeyInner::P384(k) => {
                Ok(k.sign(&rng, msg).map_err(fail)?.as_ref().to_vec())
            }
            KeyInner::Rsa(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(fail)?;
                Ok(out)
            }
        }
    }
}

/// Converts an ECDSA signature from the fixed-width `r || s` form that
/// PKCS #11 tokens return (`CKM_ECDSA`) to the DER `ECDSA-Sig-Value` that
/// CMS (RFC 5753) and TLS carry.
pub fn ecdsa_fixed_to_der(fixed: &[u8]) -> Result<Vec<u8>, SignatureError> {
    if fixed.is_empty() || fixed.len() % 2 != 0 || fixed.len() > 2 * 66 {
        return Err(SignatureError::Malformed(format!(
            "an ECDSA signature of {} bytes is not r || s",
            fixed.len()
        )));
    }
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let mut body = der::asn1::UintRef::new(r)
        .and_then(|r| r.to_der())
        .map_err(malformed)?;
    body.extend(
        der::asn1::UintRef::new(s)
            .and_then(|s| s.to_der())
            .map_err(malformed)?,
    );
    let mut out = der::Header::new(der::Tag::Sequence, body.len())
        .and_then(|h| h.to_der())
        .map_err(malformed)?;
    out.extend(body);
    Ok(out)
}

/// The `signingTime` attribute a signature carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningTime {
    /// This computer's clock (what [`sign`] does).
    Now,
    /// A given time (tests, and signers whose clock is elsewhere).
    At(std::time::SystemTime),
    /// None (the attribute is optional; some card middleware leaves it out).
    Omit,
}

/// Signs `content` with the voter's key; `cert_der` is the voter's
/// certificate and `chain` the intermediates to include. Returns the
/// ContentInfo DER.
pub fn sign(
    content: &[u8],
    cert_der: &[u8],
    chain: &[Vec<u8>],
    key: &dyn CmsSigner,
) -> Result<Vec<u8>, SignatureError> {
    sign_with(content, cert_der, chain, key, SigningTime::Now)
}

/// [`sign`] with a chosen `signingTime` attribute.
pub fn sign_with(
    content: &[u8],
    cert_der: &[u8],
    chain: &[Vec<u8>],
    key: &dyn CmsSigner,
    time: SigningTime,
) -> Result<Vec<u8>, SignatureError> {
    let cert = Certificate::from_der(cert_der).map_err(malformed)?;
    let (digest_oid, sig_oid, alg) = key.kind().algorithms();
    let content_digest = digest::digest(alg, content);

    let mut attrs = SetOfVec::new();
    let attr = |oid, value: Any| -> Result<Attribute, SignatureError> {
        let mut values = SetOfVec::new();
        values.insert(value).map_err(malformed)?;
        Ok(Attribute { oid, values })
    };
    attrs
        .insert(attr(
            ID_CONTENT_TYPE,
            Any::encode_from(&ID_DATA).map_err(malformed)?,
        )?)
        .map_err(malformed)?;
    attrs
        .insert(attr(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(content_digest.as_ref()).map_err(malformed)?)
                .map_err(malformed)?,
        )?)
        .map_err(malformed)?;
    let at = match time {
        SigningTime::Now => Some(std::time::SystemTime::now()),
        SigningTime::At(t) => Some(t),
        SigningTime::Omit => None,
    };
    if let Some(at) = at {
        let since = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| SignatureError::Unacceptable("the clock is before 1970"))?;
        // RFC 5652 section 11.3: UTCTime for dates through 2049.
        let signing_time = x509_cert::time::Time::UtcTime(
            der::asn1::UtcTime::from_unix_duration(since).map_err(malformed)?,
        );
        attrs
            .insert(attr(
                ID_SIGNING_TIME,
                Any::encode_from(&signing_time).map_err(malformed)?,
            )?)
            .map_err(malformed)?;
    }
    let signature = key.sign_message(&attrs.to_der().map_err(malformed)?)?;

    let digest_alg = spki::AlgorithmIdentifierOwned {
        oid: digest_oid,
        parameters: None,
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm: spki::AlgorithmIdentifierOwned {
            oid: sig_oid,
            parameters: if sig_oid == RSA_SHA256 {
                Some(Any::null())
            } else {
                None
            },
        },
        signature: OctetString::new(signature).map_err(malformed)?,
        unsigned_attrs: None,
    };
    let mut certs = SetOfVec::new();
    certs
        .insert(CertificateChoices::Certificate(cert))
        .map_err(malformed)?;
    for c in chain {
        certs
            .insert(CertificateChoices::Certificate(
                Certificate::from_der(c).map_err(malformed)?,
            ))
            .map_err(malformed)?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_alg).map_err(malformed)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer).map_err(malformed)?;
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: Some(
                Any::encode_from(&OctetString::new(content).map_err(malformed)?)
                    .map_err(malformed)?,
            ),
        },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let out = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(malformed)?,
    }
    .to_der()
    .map_err(malformed)?;
    // What was made must pass the verifier: this catches a key that is not
    // the certificate's (a card holds several) and a faulty signature
    // (a fault in an RSA signature can leak the key), before it is sent.
    match verify(&out, usize::MAX) {
        Ok(_) => Ok(out),
        Err(SignatureError::BadSignature) => Err(SignatureError::Unacceptable(
            "the key does not belong to the certificate",
        )),
        Err(e) => Err(e),
    }
}

/// A voter signature whose cryptography checked out. The signer's
/// certificate still has to be validated ([`crate::pki`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedContent {
    /// The signed content (the ballot package).
    pub content: Vec<u8>,
    /// The signer's certificate DER.
    pub signer_cert: Vec<u8>,
    /// The other certificates carried (candidate intermediates).
    pub other_certs: Vec<Vec<u8>>,
    /// The signed `signingTime` attribute (RFC 5652 section 11.3), in
    /// seconds since 1970, if the signer included one. It is the signer's
    /// clock: evidence to compare, never a time to judge the ballot by.
    pub signing_time: Option<u64>,
}

fn single_value(
    attrs: &SetOfVec<Attribute>,
    oid: ObjectIdentifier,
) -> Result<Option<&Any>, SignatureError> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(a) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(SignatureError::Unacceptable(
            "a signed attribute appears twice",
        ));
    }
    let mut values = a.values.iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(Some(v)),
        _ => Err(SignatureError::Unacceptable(
            "a signed attribute must have exactly one value",
        )),
    }
}

/// Verifies a voter signature of at most `max_len` bytes (section comment
/// at the top of this module says what is accepted).
pub fn verify(der_bytes: &[u8], max_len: usize) -> Result<SignedContent, SignatureError> {
    if der_bytes.len() > max_len {
        return Err(SignatureError::TooLarge(max_len));
    }
    // Before any decoding that sorts SETs (quadratic in their length): a
    // linear look at the shape.
    crate::der_limits::check(der_bytes, &crate::der_limits::Limits::VOTER_SIGNATURE)
        .map_err(malformed)?;
    let ci = ContentInfo::from_der(der_bytes).map_err(malformed)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(SignatureError::Unacceptable("not a SignedData"));
    }
    let sd: SignedData = ci.content.decode_as().map_err(malformed)?;
    if sd.encap_content_info.econtent_type != ID_DATA {
        return Err(SignatureError::Unacceptable(
            "the signed content is not of type id-data",
        ));
    }
    let content: OctetString = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or(SignatureError::Unacceptable(
            "the content is detached; it must be attached",
        ))?
        .decode_as()
        .map_err(malformed)?;
    let content = content.into_bytes();

    let mut signers = sd.signer_infos.0.iter();
    let signer = match (signers.next(), signers.next()) {
        (Some(s), None) => s,
        _ => {
            return Err(SignatureError::Unacceptable(
                "there must be exactly one signer",
            ))
        }
    };
    // X.509 certificates only: anything else in the set is refused, not
    // skipped (nothing unsigned may ride along unexamined).
    let certs: Vec<&Certificate> = sd
        .certificates
        .as_ref()
        .map(|c| {
            c.0.iter()
                .map(|c| match c {
                    CertificateChoices::Certificate(c) => Ok(c),
                    CertificateChoices::Other(_) => Err(SignatureError::Unacceptable(
                        "only X.509 certificates are accepted in a voter signature",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    if certs.len() > MAX_CERTS {
        return Err(SignatureError::Unacceptable("too many certificates"));
    }
    let signer_cert = certs
        .iter()
        .copied()
        .find(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                c.tbs_certificate.issuer == ias.issuer
                    && c.tbs_certificate.serial_number == ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => c
                .tbs_certificate
                .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, s)| s.0 == ski.0),
        })
        .ok_or(SignatureError::SignerCertificateMissing)?;

    // RFC 5652 sections 5.1 and 5.3: with id-data content and no attribute
    // certificates, SignedData is version 1 if its one SignerInfo is
    // identified by issuer and serial number (then version 1), and version 3
    // if by subject key identifier (then version 3).
    let expected = match signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(_) => CmsVersion::V1,
        SignerIdentifier::SubjectKeyIdentifier(_) => CmsVersion::V3,
    };
    if sd.version != expected || signer.version != expected {
        return Err(SignatureError::Unacceptable(
            "wrong SignedData or SignerInfo version",
        ));
    }

    // The digest, and a signature algorithm that agrees with it.
    let digest_oid = signer.digest_alg.oid;
    let alg: &'static digest::Algorithm = match digest_oid {
        SHA256 => &digest::SHA256,
        SHA384 => &digest::SHA384,
        other => {
            return Err(SignatureError::UnsupportedAlgorithm(format!(
                "digest {other}"
            )))
        }
    };
    if !sd.digest_algorithms.iter().any(|a| a.oid == digest_oid) {
        return Err(SignatureError::Unacceptable(
            "the signer's digest is not listed in digestAlgorithms",
        ));
    }

    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or(SignatureError::Unacceptable(
            "signed attributes are required",
        ))?;
    let ct = single_value(attrs, ID_CONTENT_TYPE)?.ok_or(SignatureError::Unacceptable(
        "the content-type attribute is missing",
    ))?;
    if ct.decode_as::<ObjectIdentifier>().map_err(malformed)? != ID_DATA {
        return Err(SignatureError::Unacceptable(
            "the content-type attribute is not id-data",
        ));
    }
    let md = single_value(attrs, ID_MESSAGE_DIGEST)?.ok_or(SignatureError::Unacceptable(
        "the message-digest attribute is missing",
    ))?;
    let md: OctetString = md.decode_as().map_err(malformed)?;
    let actual = digest::digest(alg, &content);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        md.as_bytes(),
        actual.as_ref(),
    )) {
        return Err(SignatureError::DigestMismatch);
    }

    // Algorithm parameters: absent or NULL for digests and RSA (RFC 5754,
    // RFC 4055), absent for ECDSA (RFC 5758). Anything else is refused so
    // that no unsigned byte of the structure can vary.
    let null_or_absent = |p: &Option<Any>| p.as_ref().is_none_or(|a| a == &Any::null());
    if !null_or_absent(&signer.digest_alg.parameters)
        || !sd
            .digest_algorithms
            .iter()
            .all(|a| null_or_absent(&a.parameters))
    {
        return Err(SignatureError::Unacceptable(
            "digest algorithm parameters must be absent or NULL",
        ));
    }
    let sig_params_ok = match signer.signature_algorithm.oid {
        ECDSA_SHA256 | ECDSA_SHA384 => signer.signature_algorithm.parameters.is_none(),
        _ => null_or_absent(&signer.signature_algorithm.parameters),
    };
    if !sig_params_ok {
        return Err(SignatureError::Unacceptable(
            "unexpected signature algorithm parameters",
        ));
    }

    let signed = attrs.to_der().map_err(malformed)?;
    let spki = &signer_cert.tbs_certificate.subject_public_key_info;
    let key_bytes = spki.subject_public_key.raw_bytes();
    let sig_oid = signer.signature_algorithm.oid;
    let verify_alg: &'static dyn sig::VerificationAlgorithm =
        match (spki.algorithm.oid, sig_oid, digest_oid) {
            (EC_PUBLIC_KEY, ECDSA_SHA256, SHA256) | (EC_PUBLIC_KEY, ECDSA_SHA384, SHA384) => {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .ok_or(SignatureError::Unacceptable("the EC key names no curve"))?
                    .decode_as()
                    .map_err(malformed)?;
                match (curve, digest_oid) {
                    (P256, SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
                    (P256, _) => &sig::ECDSA_P256_SHA384_ASN1,
                    (P384, SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
                    (P384, _) => &sig::ECDSA_P384_SHA384_ASN1,
                    (other, _) => {
                        return Err(SignatureError::UnsupportedAlgorithm(format!(
                            "curve {other}"
                        )))
                    }
                }
            }
            (RSA_ENCRYPTION, RSA_SHA256 | RSA_ENCRYPTION, SHA256) => {
                &sig::RSA_PKCS1_2048_8192_SHA256
            }
            (k, s, d) => {
                return Err(SignatureError::UnsupportedAlgorithm(format!(
                    "key {k} with signature {s} and digest {d}"
                )))
            }
        };
    UnparsedPublicKey::new(verify_alg, key_bytes)
        .verify(&signed, signer.signature.as_bytes())
        .map_err(|_| SignatureError::BadSignature)?;

    let signer_cert_der = signer_cert.to_der().map_err(malformed)?;
    let other_certs = certs
        .iter()
        .filter(|c| !std::ptr::eq(**c, signer_cert))
        .map(|c| c.to_der().map_err(malformed))
        .collect::<Result<Vec<_>, _>>()?;
    let signing_time = match single_value(attrs, ID_SIGNING_TIME)? {
        None => None,
        Some(v) => Some(
            // `Time` is a CHOICE of UTCTime and GeneralizedTime.
            x509_cert::time::Time::from_der(&v.to_der().map_err(malformed)?)
                .map_err(malformed)?
                .to_unix_duration()
                .as_secs(),
        ),
    };
    Ok(SignedContent {
        content,
        signer_cert: signer_cert_der,
        other_certs,
        signing_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pki() -> &'static devpki::DevPki {
        static PKI: std::sync::OnceLock<devpki::DevPki> = std::sync::OnceLock::new();
        PKI.get_or_init(|| devpki::generate(time::OffsetDateTime::now_utc()).unwrap())
    }

    fn key_of(label: &str) -> VoterKey {
        VoterKey::from_pem(
            pki()
                .voter(label)
                .unwrap()
                .issued
                .key
                .pkcs8_pem()
                .as_bytes(),
        )
        .unwrap()
    }

    fn signed_by(label: &str, content: &[u8]) -> Vec<u8> {
        let v = pki().voter(label).unwrap();
        sign(
            content,
            &v.issued.cert_der,
            &[pki().id_ca.issued.cert_der.clone()],
            &key_of(label),
        )
        .unwrap()
    }

    #[test]
    fn signs_and_verifies_with_every_cac_key_type() {
        for label in ["jane-p256", "john-p384", "maria-rsa"] {
            let der = signed_by(label, b"ballot package bytes");
            let v = verify(&der, 1 << 20).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(v.content, b"ballot package bytes");
            assert_eq!(v.signer_cert, pki().voter(label).unwrap().issued.cert_der);
            assert_eq!(v.other_certs, vec![pki().id_ca.issued.cert_der.clone()]);
        }
    }

    /// The whole check a verifier makes: the CMS structure and signature,
    /// then the signer's chain to the root alone (so that the intermediate
    /// the signature carries is needed too).
    fn full_check(der: &[u8]) -> Result<Vec<u8>, String> {
        let p = pki();
        let v = verify(der, 1 << 20).map_err(|e| e.to_string())?;
        let store = crate::pki::TrustStore::new(
            vec![crate::pki::Anchor {
                name: "root".into(),
                cert_der: p.root.issued.cert_der.clone(),
                policy: crate::x509::IdentityPolicy::dod_default(),
            }],
            vec![],
            vec![p.root_crl.clone(), p.id_ca_crl.clone()],
        )
        .unwrap();
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        store
            .verify_voter(
                &v.signer_cert,
                &v.other_certs,
                crate::x509::Purpose::Signing,
                now,
                now,
            )
            .map_err(|e| e.to_string())?;
        Ok(v.content)
    }

    #[test]
    fn one_altered_byte_anywhere_is_refused() {
        for label in ["jane-p256", "maria-rsa"] {
            let der = signed_by(label, b"the ballot");
            assert_eq!(full_check(&der).unwrap(), b"the ballot");
            for i in 0..der.len() {
                let mut bad = der.clone();
                bad[i] ^= 0x01;
                assert!(
                    full_check(&bad).is_err(),
                    "{label}: flipping byte {i} of {} went unnoticed",
                    der.len()
                );
            }
        }
    }

    #[test]
    fn refuses_a_key_that_is_not_the_certificates() {
        let jane = pki().voter("jane-p256").unwrap();
        assert_eq!(
            sign(b"x", &jane.issued.cert_der, &[], &key_of("rick-revoked")),
            Err(SignatureError::Unacceptable(
                "the key does not belong to the certificate"
            ))
        );
    }

    #[test]
    fn refuses_oversized_and_non_cms_input() {
        let der = signed_by("jane-p256", b"x");
        assert_eq!(verify(&der, 10), Err(SignatureError::TooLarge(10)));
        assert!(matches!(
            verify(b"not der", 1 << 20),
            Err(SignatureError::Malformed(_))
        ));
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            verify(&trailing, 1 << 20),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(&der[..der.len() - 1], 1 << 20),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_encrypted_and_unknown_key_files() {
        // An encrypted PKCS #8 file (a dummy body), assembled at run time so the
        // repository holds nothing that looks like key material.
        let label = ["ENCRYPTED", "PRIVATE", "KEY"].join(" ");
        let encrypted = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        assert!(VoterKey::from_pem(encrypted.as_bytes()).is_err());
        assert!(VoterKey::from_pem(b"not pem").is_err());
    }

    #[test]
    fn a_fixed_width_ecdsa_signature_becomes_der_that_verifies() {
        let rng = SystemRandom::new();
        for (signing, verifying) in [
            (
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                &sig::ECDSA_P256_SHA256_ASN1,
            ),
            (
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                &sig::ECDSA_P384_SHA384_ASN1,
            ),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
            let key = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref()).unwrap();
            use aws_lc_rs::signature::KeyPair;
            // Many signatures, so that r or s with a high bit or leading
            // zero bytes (both need care in DER) are among them.
            for i in 0..64u8 {
                let msg = [i; 20];
                let fixed = key.sign(&rng, &msg).unwrap();
                let der = ecdsa_fixed_to_der(fixed.as_ref()).unwrap();
                UnparsedPublicKey::new(verifying, key.public_key().as_ref())
                    .verify(&msg, &der)
                    .unwrap();
            }
        }
        // Leading zeros are dropped and a high bit gets a zero byte.
        let mut fixed = vec![0u8; 64];
        fixed[31] = 0x01;
        fixed[32] = 0x80;
        let der = ecdsa_fixed_to_der(&fixed).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
        for bad in [&[][..], &[1u8; 3][..], &[1u8; 200][..]] {
            assert!(ecdsa_fixed_to_der(bad).is_err());
        }
    }
}
