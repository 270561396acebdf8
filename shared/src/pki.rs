//! Certificate path validation and revocation, one code path for the
//! gateway (client certificates, "now") and the verifier (CMS signers, "at
//! the time the gateway received the ballot"). Specification:
//! `docs/spec/identity.md`.
//!
//! Path building, signatures, validity periods, name constraints, basic
//! constraints and extended key usage are checked by webpki. Revocation is
//! checked here, on the path webpki verified, because the verifier needs a
//! rule webpki does not have: a certificate revoked *after* the ballot was
//! received still counts (RFC 5280 section 5.3.2's revocationDate).
//!
//! A CRL is authentic if its issuer name equals the certificate's issuer,
//! its signature verifies with the issuer's key and the issuer may sign
//! CRLs; it is read only if it has no critical extension this code does not
//! understand (a delta CRL is refused by name; so are partitioned ones).
//! The status is known only if a complete CRL (one that does not name a
//! delta CRL) was current: `thisUpdate <= now` and `nextUpdate >= at`;
//! otherwise `RevocationUnknown` names the CA. A certificate stops counting
//! at its revocationDate, or for keyCompromise at an earlier invalidityDate;
//! a hold counts only while the newest covering CRL lists it, any other
//! revocation on any authentic CRL is final. Voter certificates also pass
//! certificate policy processing through the path (`crate::policy`).
//!
//! Why one file of ~1,300 lines: about 840 are path validation, the RFC 5280 profile checks and
//! revocation at the time of receipt, one security boundary; the rest are tests. It is the
//! first file to split next (the profile checks and the CRL index into their own files).

use crate::clock::UnixTime;
use crate::crl_index::CrlIndex;
use crate::x509::{voter_facts, CertFacts, IdentityError, IdentityPolicy, IdentityRule, Purpose};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use thiserror::Error;

/// The longest chain accepted, counting the end entity and the anchor.
/// DoD chains are three deep; five leaves room for a bridge.
pub const MAX_CHAIN_LEN: usize = 5;

/// Which extended key usage the end entity must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// id-kp-clientAuth: voters.
    ClientAuth,
    /// id-kp-serverAuth: TLS servers (used by the x509-limbo harness).
    ServerAuth,
    /// A voter's signature on a ballot: id-kp-emailProtection (the CAC's
    /// Digital Signature certificate) or id-kp-clientAuth, in every
    /// certificate of the path that names extended key usages.
    BallotSigning,
}

/// The extended key usage check of [`Usage::BallotSigning`]: webpki's own
/// checks take one purpose, a ballot signature accepts either of two.
struct BallotSigningEku;

impl webpki::ExtendedKeyUsageValidator for BallotSigningEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // DER of 1.3.6.1.5.5.7.3.4 and 1.3.6.1.5.5.7.3.2, without tag and length.
        const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
        const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
        let accepted = [
            webpki::KeyPurposeId::new(EMAIL_PROTECTION),
            webpki::KeyPurposeId::new(CLIENT_AUTH),
        ];
        let mut empty = true;
        for id in iter {
            empty = false;
            if accepted.contains(&id?) {
                return Ok(());
            }
        }
        if empty {
            // No extension: the certificate does not restrict its key (the
            // end entity's extension is required by `voter_facts`).
            return Ok(());
        }
        #[allow(deprecated)] // the context variant cannot be built outside webpki
        Err(webpki::Error::RequiredEkuNotFound)
    }
}

/// Whether [`TrustStore::check_path_with`] checks revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Every certificate below the anchor must be covered by a current CRL
    /// and not revoked (the project's only mode).
    Required,
    /// No revocation check (only for test suites without CRLs).
    NotChecked,
}

/// Why a certificate chain was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// A certificate or CRL cannot be parsed.
    #[error("malformed certificate or CRL: {0}")]
    Malformed(String),
    /// No path to a trust anchor.
    #[error("the certificate does not chain to a trusted authority")]
    UnknownIssuer,
    /// A certificate in the path had expired at the time of the check.
    #[error("the certificate (or one above it) had expired at {0}")]
    Expired(UnixTime),
    /// A certificate in the path was not yet valid at the time of the check.
    #[error("the certificate (or one above it) was not yet valid at {0}")]
    NotYetValid(UnixTime),
    /// The end entity lacks the required extended key usage.
    #[error("the certificate is not allowed for this use (extended key usage)")]
    WrongUsage,
    /// A signature in the path does not verify.
    #[error("a signature in the certificate chain does not verify")]
    BadSignature,
    /// Revoked at or before the time of the check.
    #[error("the certificate was revoked at {revoked_at}")]
    Revoked {
        /// The CRL's revocationDate.
        revoked_at: UnixTime,
    },
    /// No current, valid CRL covers a certificate of the path.
    #[error("revocation status unknown: no current CRL from {issuer}")]
    RevocationUnknown {
        /// The issuer whose CRL is missing or stale.
        issuer: String,
    },
    /// The path is longer than [`MAX_CHAIN_LEN`].
    #[error("the certificate chain is too long")]
    TooLong,
    /// Anything else webpki refused (name constraints, basic constraints…).
    #[error("the certificate chain is not valid: {0}")]
    Invalid(String),
    /// The certificate's content does not make it a voter's.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// No accepted certificate policy is valid through the whole path.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
}

impl ChainError {
    fn from_webpki(e: webpki::Error, at: UnixTime) -> Self {
        use webpki::Error as W;
        match e {
            W::UnknownIssuer => ChainError::UnknownIssuer,
            W::CertExpired { .. } => ChainError::Expired(at),
            W::CertNotValidYet { .. } => ChainError::NotYetValid(at),
            W::InvalidSignatureForPublicKey
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => ChainError::BadSignature,
            // The plain variant is what `BallotSigningEku` can build.
            #[allow(deprecated)]
            W::RequiredEkuNotFoundContext(_) | W::RequiredEkuNotFound => ChainError::WrongUsage,
            W::MaximumPathDepthExceeded | W::MaximumPathBuildCallsExceeded => ChainError::TooLong,
            W::BadDer | W::BadDerTime | W::TrailingData(_) => {
                ChainError::Malformed(format!("{e:?}"))
            }
            other => ChainError::Invalid(format!("{other:?}")),
        }
    }
}

/// A trust anchor with the rules for the voter certificates under it.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// A short name for logs and reports.
    pub name: String,
    /// The anchor certificate DER.
    pub cert_der: Vec<u8>,
    /// Which policies and which identity field its voters carry.
    pub policy: IdentityPolicy,
}

/// A trust anchor as configured: the file holding its certificate(s),
/// the identity rule and the accepted policies of the voter certificates
/// under it. The gateway's configuration and the verifier's command line
/// both resolve to this type, and [`AnchorSpec::load`] reads it the same
/// way for both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorSpec {
    /// A short name for logs and reports.
    pub name: String,
    /// The anchor certificate file (PEM, possibly several, or one DER).
    pub certificate: std::path::PathBuf,
    /// Where the voter identity is.
    pub identity: IdentityRule,
    /// Accepted certificate policy OIDs; empty means the DoD
    /// mediumHardware set.
    pub policies: Vec<String>,
}

impl AnchorSpec {
    /// A DoD anchor (EDIPI, mediumHardware) named after its file.
    pub fn dod(certificate: std::path::PathBuf) -> Self {
        AnchorSpec {
            name: certificate.display().to_string(),
            certificate,
            identity: IdentityRule::Edipi,
            policies: Vec::new(),
        }
    }

    /// The policy its voter certificates must meet.
    pub fn policy(&self) -> IdentityPolicy {
        IdentityPolicy {
            accepted_policies: if self.policies.is_empty() {
                IdentityPolicy::dod_default().accepted_policies
            } else {
                self.policies.clone()
            },
            rule: self.identity.clone(),
        }
    }

    /// Reads the certificate file: one [`Anchor`] per certificate in it.
    pub fn load(&self) -> Result<Vec<Anchor>, AnchorLoadError> {
        let data = std::fs::read(&self.certificate).map_err(|e| AnchorLoadError {
            path: self.certificate.clone(),
            reason: e.to_string(),
        })?;
        let certs = certs_from_pem_or_der(&data).map_err(|e| AnchorLoadError {
            path: self.certificate.clone(),
            reason: e.to_string(),
        })?;
        let policy = self.policy();
        Ok(certs
            .into_iter()
            .map(|cert_der| Anchor {
                name: self.name.clone(),
                cert_der,
                policy: policy.clone(),
            })
            .collect())
    }
}

/// A trust anchor file that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("trust anchor {}: {reason}", path.display())]
pub struct AnchorLoadError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    pub reason: String,
}

/// A path [`TrustStore::checked_path`] verified.
struct CheckedPath {
    /// The index of its anchor.
    anchor: usize,
    /// When a certificate of it was revoked after `at`, if one was.
    revoked_later: Option<UnixTime>,
    /// Its intermediates, the end entity's issuer first.
    intermediates: Vec<Vec<u8>>,
}

/// Trust anchors, known intermediates and CRLs.
#[derive(Debug)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
    webpki_anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<IndexedCrl>,
    algs: Vec<CachedAlg>,
}

/// A signature algorithm that remembers the signatures it has verified.
/// Every voter's chain repeats the same intermediate-under-anchor
/// signature; this verifies it once. Only successes are kept, keyed by the
/// SHA-256 of everything verified (algorithm, key, message, signature).
#[derive(Debug)]
struct CachedAlg {
    inner: &'static dyn rustls_pki_types::SignatureVerificationAlgorithm,
    seen: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Verified signatures remembered per algorithm before the memory is reset.
const SIGNATURE_CACHE: usize = 1024;

impl rustls_pki_types::SignatureVerificationAlgorithm for CachedAlg {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), rustls_pki_types::InvalidSignature> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [
            self.inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let key: [u8; 32] = h.finalize().into();
        if self.seen.lock().is_ok_and(|s| s.contains(&key)) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        if let Ok(mut s) = self.seen.lock() {
            if s.len() >= SIGNATURE_CACHE {
                s.clear();
            }
            s.insert(key);
        }
        Ok(())
    }

    fn public_key_alg_id(&self) -> rustls_pki_types::AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> rustls_pki_types::AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// A CRL indexed once (`crate::crl_index`), with its signature verified
/// once per issuer key. Its DER is kept only until a configured CA's key
/// verified it (a DoD CRL is tens of megabytes).
#[derive(Debug)]
struct IndexedCrl {
    index: CrlIndex,
    der: std::sync::Mutex<Option<Vec<u8>>>,
    /// Issuer public keys (raw SPKI) already tried, and whether the CRL's
    /// signature verified with each.
    verified: std::sync::Mutex<Vec<(Vec<u8>, bool)>>,
}

impl std::ops::Deref for IndexedCrl {
    type Target = CrlIndex;
    fn deref(&self) -> &CrlIndex {
        &self.index
    }
}

impl IndexedCrl {
    /// Indexes `der`, verifying it now with each of `cas` that bears its
    /// issuer's name; once one verifies, the DER is dropped.
    fn new(der: Vec<u8>, cas: &[&[u8]]) -> Result<Self, ChainError> {
        let index = CrlIndex::new(&der)?;
        let crl = IndexedCrl {
            index,
            der: std::sync::Mutex::new(Some(der)),
            verified: std::sync::Mutex::new(Vec::new()),
        };
        let mut any = false;
        for ca in cas {
            if let Ok(c) = crate::x509::parse_cert(ca) {
                if c.subject().as_raw() == crl.issuer_raw.as_slice() {
                    any |= crl.signed_by(&c);
                }
            }
        }
        if any {
            if let Ok(mut d) = crl.der.lock() {
                *d = None;
            }
        }
        Ok(crl)
    }

    /// Whether the CRL's signature verifies with `issuer`'s key (cached;
    /// a key not tried before the DER was dropped did not sign it).
    fn signed_by(&self, issuer: &x509_parser::certificate::X509Certificate<'_>) -> bool {
        let spki = issuer.public_key().raw;
        if let Ok(v) = self.verified.lock() {
            if let Some((_, ok)) = v.iter().find(|(k, _)| k.as_slice() == spki) {
                return *ok;
            }
        }
        let ok = match self.der.lock() {
            Ok(d) => d.as_deref().is_some_and(|der| {
                crate::crl_index::signed(der).is_ok_and(|s| s.verifies_with(issuer.public_key()))
            }),
            Err(_) => false,
        };
        if let Ok(mut v) = self.verified.lock() {
            // Bounded: a client could present many different issuer keys.
            if v.len() < 64 {
                v.push((spki.to_vec(), ok));
            }
        }
        ok
    }
}

/// A validated voter certificate.
#[derive(Debug, Clone)]
pub struct VerifiedVoter {
    /// The identity and policies read from it.
    pub facts: CertFacts,
    /// The name of the anchor it chains to.
    pub anchor: String,
    /// A revocation dated after `at` (the certificate still counted).
    pub revoked_later: Option<UnixTime>,
}

/// Reads every certificate of a PEM file (or one DER certificate).
pub fn certs_from_pem_or_der(data: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
    if data.starts_with(b"-----BEGIN") || data.iter().take(64).all(|b| b.is_ascii()) {
        let blocks = pem::parse_many(data).map_err(|e| ChainError::Malformed(e.to_string()))?;
        let certs: Vec<Vec<u8>> = blocks
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| p.into_contents())
            .collect();
        if certs.is_empty() {
            return Err(ChainError::Malformed("no CERTIFICATE block".into()));
        }
        return Ok(certs);
    }
    Ok(vec![data.to_vec()])
}

/// Reads a certificate chain file (PEM, or one DER certificate) for TLS.
pub fn tls_chain_from_pem(
    data: &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ChainError> {
    Ok(certs_from_pem_or_der(data)?
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect())
}

/// Why a TLS private key file cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file is not PEM.
    #[error("the private key file is not PEM")]
    NotPem,
    /// The PEM block is not a private key this program reads.
    #[error("the private key file holds a {0} block, not a PKCS #8, SEC1 or PKCS #1 private key")]
    Unsupported(String),
}

/// Reads a PEM private key (PKCS #8, SEC1 or PKCS #1) for TLS. The key's
/// bytes are moved, not copied, into the answer.
pub fn tls_key_from_pem(
    data: &[u8],
) -> Result<rustls_pki_types::PrivateKeyDer<'static>, KeyFileError> {
    use rustls_pki_types::PrivateKeyDer;
    let p = pem::parse(data).map_err(|_| KeyFileError::NotPem)?;
    let wrap: fn(Vec<u8>) -> PrivateKeyDer<'static> = match p.tag() {
        "PRIVATE KEY" => |der| PrivateKeyDer::Pkcs8(der.into()),
        "EC PRIVATE KEY" => |der| PrivateKeyDer::Sec1(der.into()),
        "RSA PRIVATE KEY" => |der| PrivateKeyDer::Pkcs1(der.into()),
        other => return Err(KeyFileError::Unsupported(other.to_owned())),
    };
    Ok(wrap(p.into_contents()))
}

/// Reads every CRL of a PEM file (or one DER CRL).
pub fn crls_from_pem_or_der(data: &[u8]) -> Result<Vec<Vec<u8>>, ChainError> {
    if data.starts_with(b"-----BEGIN") {
        let blocks = pem::parse_many(data).map_err(|e| ChainError::Malformed(e.to_string()))?;
        return Ok(blocks
            .into_iter()
            .filter(|p| p.tag() == "X509 CRL")
            .map(|p| p.into_contents())
            .collect());
    }
    Ok(vec![data.to_vec()])
}

impl TrustStore {
    /// A store of `anchors`, with `intermediates` offered for path building
    /// and `crls` for revocation.
    pub fn new(
        anchors: Vec<Anchor>,
        intermediates: Vec<Vec<u8>>,
        crls: Vec<Vec<u8>>,
    ) -> Result<Self, ChainError> {
        let mut webpki_anchors = Vec::with_capacity(anchors.len());
        for a in &anchors {
            let der = CertificateDer::from(a.cert_der.clone());
            let ta = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| ChainError::Malformed(format!("trust anchor {}: {e:?}", a.name)))?
                .to_owned();
            webpki_anchors.push(ta);
        }
        // Configured CAs verify each CRL now, so its DER need not be kept.
        let cas: Vec<&[u8]> = anchors
            .iter()
            .map(|a| a.cert_der.as_slice())
            .chain(intermediates.iter().map(Vec::as_slice))
            .collect();
        let crls = crls
            .into_iter()
            .map(|der| IndexedCrl::new(der, &cas))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustStore {
            anchors,
            webpki_anchors,
            intermediates: intermediates
                .into_iter()
                .map(CertificateDer::from)
                .collect(),
            crls,
            algs: webpki::ALL_VERIFICATION_ALGS
                .iter()
                .map(|a| CachedAlg {
                    inner: *a,
                    seen: std::sync::Mutex::new(std::collections::HashSet::new()),
                })
                .collect(),
        })
    }

    /// The anchors.
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Each loaded CRL's issuer and nextUpdate (Unix seconds), for
    /// monitoring: the newest CRL per issuer decides how long the store
    /// stays current.
    pub fn crl_next_updates(&self) -> Vec<(String, Option<i64>)> {
        let mut latest: std::collections::BTreeMap<&str, Option<i64>> = Default::default();
        for c in &self.crls {
            let e = latest.entry(c.issuer.as_str()).or_insert(c.next_update);
            if c.next_update > *e {
                *e = c.next_update;
            }
        }
        latest.into_iter().map(|(i, n)| (i.to_owned(), n)).collect()
    }

    /// Validates the path from `end_entity` (with `presented`
    /// intermediates) to an anchor at time `at`, and its revocation status
    /// as of `at`, using CRLs current at `now` (see the module
    /// documentation). Returns the anchor's index and the date of any
    /// revocation that happened after `at`.
    pub fn check_path(
        &self,
        end_entity: &[u8],
        presented: &[Vec<u8>],
        usage: Usage,
        at: UnixTime,
        now: UnixTime,
    ) -> Result<(usize, Option<UnixTime>), ChainError> {
        self.check_path_with(end_entity, presented, usage, at, now, Revocation::Required)
    }

    /// [`Self::check_path`] with a choice of revocation checking. Everything
    /// in this project uses [`Revocation::Required`]; the other exists for
    /// test suites (x509-limbo) whose cases carry no CRLs.
    pub fn check_path_with(
        &self,
        end_entity: &[u8],
        presented: &[Vec<u8>],
        usage: Usage,
        at: UnixTime,
        now: UnixTime,
        revocation: Revocation,
    ) -> Result<(usize, Option<UnixTime>), ChainError> {
        self.checked_path(end_entity, presented, usage, at, now, revocation)
            .map(|p| (p.anchor, p.revoked_later))
    }

    /// [`Self::check_path_with`], also returning the path it verified.
    fn checked_path(
        &self,
        end_entity: &[u8],
        presented: &[Vec<u8>],
        usage: Usage,
        at: UnixTime,
        now: UnixTime,
        revocation: Revocation,
    ) -> Result<CheckedPath, ChainError> {
        let ee_der = CertificateDer::from(end_entity);
        let ee =
            webpki::EndEntityCert::try_from(&ee_der).map_err(|e| ChainError::from_webpki(e, at))?;
        let mut pool: Vec<CertificateDer<'_>> = presented
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        pool.extend(self.intermediates.iter().cloned());
        let algs: Vec<&dyn rustls_pki_types::SignatureVerificationAlgorithm> = self
            .algs
            .iter()
            .map(|a| a as &dyn rustls_pki_types::SignatureVerificationAlgorithm)
            .collect();
        let (time, anchors) = (at.to_pki(), &self.webpki_anchors);
        let path = match usage {
            Usage::ClientAuth => {
                let eku = webpki::KeyUsage::client_auth();
                ee.verify_for_usage(&algs, anchors, &pool, time, eku, None, None)
            }
            Usage::ServerAuth => {
                let eku = webpki::KeyUsage::server_auth();
                ee.verify_for_usage(&algs, anchors, &pool, time, eku, None, None)
            }
            Usage::BallotSigning => {
                ee.verify_for_usage(&algs, anchors, &pool, time, BallotSigningEku, None, None)
            }
        }
        .map_err(|e| ChainError::from_webpki(e, at))?;

        // The path, end entity first, then intermediates; the anchor's SPKI last.
        let intermediates: Vec<CertificateDer<'_>> =
            path.intermediate_certificates().map(|c| c.der()).collect();
        let mut chain: Vec<&[u8]> = vec![end_entity];
        chain.extend(intermediates.iter().map(|c| c.as_ref()));
        if chain.len() + 1 > MAX_CHAIN_LEN {
            return Err(ChainError::TooLong);
        }
        let anchor = path.anchor();
        let anchor_index = self
            .webpki_anchors
            .iter()
            .position(|a| {
                a.subject_public_key_info == anchor.subject_public_key_info
                    && a.subject == anchor.subject
            })
            .ok_or(ChainError::UnknownIssuer)?;
        let anchor_der = self
            .anchors
            .get(anchor_index)
            .map(|a| a.cert_der.as_slice())
            .ok_or(ChainError::UnknownIssuer)?;

        profile(&chain, anchor_der, at)?;

        let mut revoked_later: Option<UnixTime> = None;
        if revocation == Revocation::Required {
            for (i, cert_der) in chain.iter().enumerate() {
                let issuer_der = chain.get(i + 1).copied().unwrap_or(anchor_der);
                if let Some(t) = self.revocation(cert_der, issuer_der, at, now)? {
                    revoked_later = Some(revoked_later.map_or(t, |r| r.min(t)));
                }
            }
        }
        Ok(CheckedPath {
            anchor: anchor_index,
            revoked_later,
            intermediates: intermediates.iter().map(|c| c.to_vec()).collect(),
        })
    }

    /// Checks `cert` against the CRLs from `issuer`. Returns the date of a
    /// revocation that happened after `at`, if any.
    fn revocation(
        &self,
        cert: &[u8],
        issuer: &[u8],
        at: UnixTime,
        now: UnixTime,
    ) -> Result<Option<UnixTime>, ChainError> {
        let cert = crate::x509::parse_cert(cert)?;
        let issuer = crate::x509::parse_cert(issuer)?;
        if let Ok(Some(ku)) = issuer.key_usage() {
            if !ku.value.crl_sign() {
                return Err(ChainError::RevocationUnknown {
                    issuer: issuer.subject().to_string(),
                });
            }
        }
        // This issuer's authentic CRLs.
        let authentic: Vec<&IndexedCrl> = self
            .crls
            .iter()
            .filter(|crl| {
                crl.issuer_raw == cert.issuer().as_raw()
                    && crl.issuer_raw == issuer.subject().as_raw()
                    && crl.signed_by(&issuer)
            })
            .collect();
        // The newest complete CRL covering the time of receipt decides
        // whether the status is known (a base that names a delta CRL is
        // not complete on its own, and delta CRLs are refused).
        let newest = authentic
            .iter()
            .filter(|crl| {
                !crl.points_to_delta
                    && crl.this_update <= now.0 as i64
                    && crl.next_update.is_some_and(|n| n >= at.0 as i64)
            })
            .max_by(|a, b| {
                (a.this_update, a.number.len(), &a.number).cmp(&(
                    b.this_update,
                    b.number.len(),
                    &b.number,
                ))
            })
            .ok_or_else(|| ChainError::RevocationUnknown {
                issuer: issuer.subject().to_string(),
            })?;
        let serial = cert.raw_serial();
        // A hold counts only while the newest CRL still lists it; any other
        // revocation is final, even when a later CRL dropped the entry
        // (RFC 5280 lets a CA drop it once the certificate has expired).
        let mut from: Option<i64> = newest.get(serial).map(|e| e.from);
        for crl in authentic.iter().filter(|c| !std::ptr::eq(**c, *newest)) {
            if let Some(e) = crl.get(serial).filter(|e| !e.on_hold) {
                from = Some(from.map_or(e.from, |f| f.min(e.from)));
            }
        }
        match from {
            Some(when) if when <= at.0 as i64 => Err(ChainError::Revoked {
                revoked_at: UnixTime(u64::try_from(when).unwrap_or(0)),
            }),
            Some(when) => Ok(Some(UnixTime(u64::try_from(when).unwrap_or(0)))),
            None => Ok(None),
        }
    }

    /// Validates a voter's certificate completely, for `purpose`: the path
    /// and revocation ([`Self::check_path`], for client authentication or
    /// for signing a ballot), then the content rules of the anchor it chains
    /// to ([`voter_facts`]).
    pub fn verify_voter(
        &self,
        end_entity: &[u8],
        presented: &[Vec<u8>],
        purpose: Purpose,
        at: UnixTime,
        now: UnixTime,
    ) -> Result<VerifiedVoter, ChainError> {
        let usage = match purpose {
            Purpose::Authentication => Usage::ClientAuth,
            Purpose::Signing => Usage::BallotSigning,
        };
        let path =
            self.checked_path(end_entity, presented, usage, at, now, Revocation::Required)?;
        let revoked_later = path.revoked_later;
        let anchor = self
            .anchors
            .get(path.anchor)
            .ok_or(ChainError::UnknownIssuer)?;
        let facts = voter_facts(end_entity, &anchor.policy, purpose)?;
        // The policy the card claims must be one every CA above it was
        // authorised for (RFC 5280 section 6.1, strict subset).
        let mut top_down = Vec::with_capacity(path.intermediates.len() + 1);
        for der in path.intermediates.iter().rev() {
            top_down.push(crate::x509::parse_cert(der)?);
        }
        top_down.push(crate::x509::parse_cert(end_entity)?);
        crate::policy::valid_policies(&top_down, &anchor.policy.accepted_policies)?;
        Ok(VerifiedVoter {
            facts,
            anchor: anchor.name.clone(),
            revoked_later,
        })
    }
}

/// RFC 5280 rules webpki leaves to the caller, checked on the validated
/// path (`chain`: end entity first, then intermediates) and its anchor:
///
/// - every extension parses, and no critical one is unknown (the anchor
///   included, which webpki takes as given);
/// - serial numbers below the anchor are positive and at most 20 octets;
/// - keys are RSA of at least 2048 bits (a whole number of bytes), ECDSA on
///   P-256, P-384 or P-521, or Ed25519;
/// - CAs (intermediates and the anchor) have a critical basicConstraints
///   with cA set, keyCertSign if they have a keyUsage, a subject key
///   identifier and a non-empty subject; the anchor is within its validity
///   at `at`;
/// - certificates below the anchor that are not issued by themselves carry
///   an authority key identifier; key identifiers are not critical;
/// - policy and name constraints are critical, name constraints only in
///   CAs and never empty;
/// - the end entity is not a CA, does not claim keyCertSign, names an
///   extended key usage, and, with an empty subject, has a critical
///   subjectAltName.
fn profile(chain: &[&[u8]], anchor: &[u8], at: UnixTime) -> Result<(), ChainError> {
    use x509_parser::extensions::ParsedExtension as P;
    let bad = |what: &str| ChainError::Invalid(what.to_owned());
    let mut all: Vec<&[u8]> = chain.to_vec();
    all.push(anchor);
    let anchor_index = all.len() - 1;
    for (i, der) in all.iter().enumerate() {
        let c = crate::x509::parse_cert(der)?;
        let is_anchor = i == anchor_index;
        let is_ee = i == 0;
        // Compared as names, not bytes: a root's issuer and subject may use
        // different string types for the same name.
        let self_issued = c.issuer().to_string() == c.subject().to_string();
        // Serial number.
        let serial = c.raw_serial();
        let serial_ok = match serial.split_first() {
            Some((0, rest)) => {
                !rest.is_empty()
                    && rest.len() <= 20
                    && rest.iter().any(|b| *b != 0)
                    && rest.first().is_some_and(|b| b & 0x80 != 0)
            }
            Some((first, _)) => serial.len() <= 20 && first & 0x80 == 0,
            None => false,
        };
        // The anchor is configured, not presented; its serial is not ours
        // to judge (real roots have serial 0).
        if !serial_ok && !is_anchor {
            return Err(bad(
                "a serial number is zero, negative or longer than 20 octets",
            ));
        }
        check_key(&c)?;
        let mut basic = None;
        let (mut ski, mut aki, mut eku, mut san_critical) = (false, false, None, None);
        for ext in c.extensions() {
            match ext.parsed_extension() {
                P::ParseError { .. } => {
                    return Err(bad(&format!("extension {} is malformed", ext.oid)));
                }
                P::UnsupportedExtension { .. } if ext.critical => {
                    return Err(bad(&format!("unknown critical extension {}", ext.oid)));
                }
                P::BasicConstraints(b) => basic = Some((b.ca, ext.critical)),
                P::SubjectKeyIdentifier(_) => {
                    if ext.critical {
                        return Err(bad("a subject key identifier is marked critical"));
                    }
                    ski = true;
                }
                P::AuthorityKeyIdentifier(a) => {
                    if ext.critical {
                        return Err(bad("an authority key identifier is marked critical"));
                    }
                    aki = a.key_identifier.is_some();
                }
                P::PolicyConstraints(_) if !ext.critical => {
                    return Err(bad("policy constraints are not marked critical"));
                }
                P::NameConstraints(nc) => {
                    let empty = |t: &Option<Vec<_>>| t.as_ref().is_none_or(|v| v.is_empty());
                    if !ext.critical
                        || is_ee
                        || (empty(&nc.permitted_subtrees) && empty(&nc.excluded_subtrees))
                    {
                        return Err(bad(
                            "name constraints are not critical, empty, or in an end entity",
                        ));
                    }
                }
                P::KeyUsage(ku) if is_ee && ku.key_cert_sign() => {
                    return Err(bad("the end entity claims keyCertSign"));
                }
                P::KeyUsage(ku) if !is_ee && !ku.key_cert_sign() => {
                    return Err(bad("a CA's key usage lacks keyCertSign"));
                }
                P::ExtendedKeyUsage(e) => {
                    eku = Some(
                        e.client_auth || e.server_auth || e.email_protection || !e.other.is_empty(),
                    )
                }
                P::SubjectAlternativeName(_) => san_critical = Some(ext.critical),
                _ => {}
            }
        }
        if is_ee {
            if basic.is_some_and(|(ca, _)| ca) {
                return Err(bad("the end entity is a CA certificate"));
            }
            if eku != Some(true) {
                return Err(bad("the end entity names no extended key usage"));
            }
            if c.subject().as_raw().len() <= 2 && san_critical != Some(true) {
                return Err(bad(
                    "an end entity with an empty subject needs a critical subjectAltName",
                ));
            }
        } else {
            if basic != Some((true, true)) {
                return Err(bad(
                    "a CA certificate lacks a critical basicConstraints with cA set",
                ));
            }
            if !ski {
                return Err(bad("a CA certificate has no subject key identifier"));
            }
            if c.subject().as_raw().len() <= 2 {
                return Err(bad("a CA certificate has an empty subject"));
            }
        }
        // An anchor is a configured name and key (RFC 5280 section 6.1.1);
        // only what lies below it must carry the identifier.
        if !self_issued && !aki && !is_anchor {
            return Err(bad("a certificate has no authority key identifier"));
        }
        if is_anchor {
            let v = c.validity();
            let t = at.0 as i64;
            if t < asn1_secs(v.not_before) {
                return Err(ChainError::NotYetValid(at));
            }
            if t > asn1_secs(v.not_after) {
                return Err(ChainError::Expired(at));
            }
        }
    }
    Ok(())
}

/// The public key kinds accepted anywhere in a path.
fn check_key(c: &x509_parser::certificate::X509Certificate<'_>) -> Result<(), ChainError> {
    use x509_parser::public_key::PublicKey;
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    const P521: &str = "1.3.132.0.35";
    const ED25519: &str = "1.3.101.112";
    let spki = c.public_key();
    let weak =
        |why: &str| ChainError::Invalid(format!("a certificate's key is not accepted: {why}"));
    if spki.algorithm.algorithm.to_id_string() == ED25519 {
        return Ok(());
    }
    match spki.parsed().map_err(|_| weak("it does not parse"))? {
        PublicKey::RSA(rsa) => {
            let m = rsa.modulus;
            let m = m
                .get(m.iter().take_while(|b| **b == 0).count()..)
                .unwrap_or_default();
            let bits = m
                .first()
                .map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize);
            if bits < 2048 || bits % 8 != 0 {
                return Err(weak(&format!("RSA with a {bits}-bit modulus")));
            }
            Ok(())
        }
        PublicKey::EC(_) => match crate::x509::named_curve(spki).as_deref() {
            Some(P256 | P384 | P521) => Ok(()),
            other => Err(weak(&format!("elliptic curve {other:?}"))),
        },
        _ => Err(weak("neither RSA, ECDSA nor Ed25519")),
    }
}

fn asn1_secs(t: x509_parser::time::ASN1Time) -> i64 {
    t.timestamp()
}

/// What a CRL says about itself, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The issuer's name.
    pub issuer: String,
    /// thisUpdate (Unix seconds).
    pub this_update: i64,
    /// nextUpdate (Unix seconds), if present.
    pub next_update: Option<i64>,
    /// How many certificates it lists.
    pub entries: usize,
    /// It names a delta CRL (Freshest CRL): not complete on its own.
    pub points_to_delta: bool,
}

/// Reads a CRL with the rules revocation checks use (a delta CRL and an
/// unknown critical extension are refused).
pub fn crl_info(der: &[u8]) -> Result<CrlInfo, ChainError> {
    let index = CrlIndex::new(der)?;
    Ok(CrlInfo {
        issuer: index.issuer.clone(),
        this_update: index.this_update,
        next_update: index.next_update,
        entries: index.len(),
        points_to_delta: index.points_to_delta,
    })
}

/// Whether the CRL `crl_der` was issued by the CA certificate `ca_der`:
/// the issuer names match, the CA may sign CRLs, and the signature
/// verifies with its key.
pub fn crl_signed_by(crl_der: &[u8], ca_der: &[u8]) -> bool {
    // The name first: a DoD CRL is not indexed once per candidate CA.
    let (Ok(issuer), Ok(signed), Ok(ca)) = (
        crate::crl_index::issuer_raw(crl_der),
        crate::crl_index::signed(crl_der),
        crate::x509::parse_cert(ca_der),
    ) else {
        return false;
    };
    if issuer != ca.subject().as_raw() {
        return false;
    }
    if let Ok(Some(ku)) = ca.key_usage() {
        if !ku.value.crl_sign() {
            return false;
        }
    }
    signed.verifies_with(ca.public_key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::{IdentityRule, VoterIdentity};
    use devpki::{CertSpec, KeyAlg};
    use time::Duration;

    struct Fixture {
        pki: devpki::DevPki,
        now: time::OffsetDateTime,
    }

    fn fixture() -> &'static Fixture {
        static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        F.get_or_init(|| {
            let now = time::OffsetDateTime::now_utc();
            Fixture {
                pki: devpki::generate(now).unwrap(),
                now,
            }
        })
    }

    fn t(dt: time::OffsetDateTime) -> UnixTime {
        UnixTime(dt.unix_timestamp() as u64)
    }

    fn store_with(crls: Vec<Vec<u8>>) -> TrustStore {
        let p = &fixture().pki;
        TrustStore::new(
            vec![
                Anchor {
                    name: "Test DoD Root CA 3".into(),
                    cert_der: p.root.issued.cert_der.clone(),
                    policy: IdentityPolicy::dod_default(),
                },
                Anchor {
                    name: "Test County Voter CA".into(),
                    cert_der: p.county_ca.issued.cert_der.clone(),
                    policy: IdentityPolicy {
                        accepted_policies: vec![devpki::oid::DEV_COUNTY_VOTER.to_string()],
                        rule: IdentityRule::UriPrefix("urn:test-county:voter:".into()),
                    },
                },
            ],
            vec![p.id_ca.issued.cert_der.clone()],
            crls,
        )
        .unwrap()
    }

    fn store() -> TrustStore {
        let p = &fixture().pki;
        store_with(vec![
            p.root_crl.clone(),
            p.id_ca_crl.clone(),
            p.county_crl.clone(),
        ])
    }

    #[test]
    fn a_signature_certificate_chains_for_signing_and_not_for_logging_in() {
        let store = store();
        let now = t(fixture().now);
        let sig = &fixture()
            .pki
            .voter("jane-signature")
            .unwrap()
            .issued
            .cert_der;
        let v = store
            .verify_voter(sig, &[], Purpose::Signing, now, now)
            .unwrap();
        assert_eq!(v.facts.identity.to_canonical(), "edipi:1234567890");
        // The path check itself refuses it for client authentication
        // (emailProtection only), before the content rules are read.
        assert_eq!(
            store
                .verify_voter(sig, &[], Purpose::Authentication, now, now)
                .unwrap_err(),
            ChainError::WrongUsage
        );
        // A certificate for neither purpose (the TLS server's, serverAuth
        // only) is named as the wrong usage, as for authentication.
        let server = &fixture().pki.server.cert_der;
        assert_eq!(
            store
                .verify_voter(server, &[], Purpose::Signing, now, now)
                .unwrap_err(),
            ChainError::WrongUsage
        );
        let card = &fixture()
            .pki
            .voter("jane-cardauth")
            .unwrap()
            .issued
            .cert_der;
        assert!(matches!(
            store.verify_voter(card, &[], Purpose::Signing, now, now),
            Err(ChainError::Identity(IdentityError::CardAuthentication))
        ));
    }

    #[test]
    fn remembered_signatures_do_not_let_an_altered_one_through() {
        let store = store();
        let now = t(fixture().now);
        let jane = &fixture().pki.voter("jane-p256").unwrap().issued.cert_der;
        // Twice: the second time the ID CA's signature comes from memory.
        for _ in 0..2 {
            store
                .verify_voter(jane, &[], Purpose::Authentication, now, now)
                .unwrap();
        }
        // The same certificate with its signature's last byte changed.
        let mut bad = jane.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            store
                .verify_voter(&bad, &[], Purpose::Authentication, now, now)
                .unwrap_err(),
            ChainError::BadSignature
        );
        // And an intermediate presented with an altered signature, while
        // the genuine one is remembered.
        let mut ca = fixture().pki.id_ca.issued.cert_der.clone();
        *ca.last_mut().unwrap() ^= 1;
        let lone = store_with(vec![
            fixture().pki.root_crl.clone(),
            fixture().pki.id_ca_crl.clone(),
        ]);
        lone.verify_voter(jane, &[], Purpose::Authentication, now, now)
            .unwrap();
        let mut no_intermediates = lone;
        no_intermediates.intermediates.clear();
        assert!(no_intermediates
            .verify_voter(jane, &[ca], Purpose::Authentication, now, now)
            .is_err());
    }

    fn verify(label: &str) -> Result<VerifiedVoter, ChainError> {
        let now = t(fixture().now);
        store().verify_voter(
            &fixture().pki.voter(label).unwrap().issued.cert_der,
            &[],
            Purpose::Authentication,
            now,
            now,
        )
    }

    #[test]
    fn accepts_valid_cacs_of_every_key_type_and_a_county_voter() {
        for (label, id) in [
            ("jane-p256", VoterIdentity::Edipi("1234567890".into())),
            ("john-p384", VoterIdentity::Edipi("2345678901".into())),
            ("maria-rsa", VoterIdentity::Edipi("3456789012".into())),
            ("omar-county", VoterIdentity::County("TC-000123".into())),
        ] {
            let v = verify(label).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(v.facts.identity, id);
            assert_eq!(v.revoked_later, None);
        }
    }

    #[test]
    fn refuses_each_bad_certificate_for_its_own_reason() {
        assert!(matches!(
            verify("rick-revoked"),
            Err(ChainError::Revoked { .. })
        ));
        assert!(matches!(verify("ed-expired"), Err(ChainError::Expired(_))));
        assert!(matches!(
            verify("jane-cardauth"),
            Err(ChainError::Identity(IdentityError::CardAuthentication))
        ));
        assert!(matches!(
            verify("ned-nopolicy"),
            Err(ChainError::Identity(IdentityError::NoAcceptedPolicy { .. }))
        ));
        assert_eq!(
            verify("nora-noclientauth").unwrap_err(),
            ChainError::WrongUsage
        );
        // The rogue root copies the real root's name, so path building finds
        // the real root, whose key did not sign the certificate.
        assert_eq!(
            verify("mallory-rogue").unwrap_err(),
            ChainError::BadSignature
        );
    }

    #[test]
    fn a_revocation_after_the_time_of_receipt_does_not_count() {
        let f = fixture();
        let rick = f.pki.voter("rick-revoked").unwrap();
        // The CRL revokes rick two days before `now`.
        let before = t(f.now - Duration::days(3));
        let v = store()
            .verify_voter(
                &rick.issued.cert_der,
                &[],
                Purpose::Authentication,
                before,
                t(f.now),
            )
            .unwrap();
        assert_eq!(v.revoked_later, Some(t(f.now - Duration::days(2))));
        let after = t(f.now - Duration::days(1));
        assert!(matches!(
            store().verify_voter(
                &rick.issued.cert_der,
                &[],
                Purpose::Authentication,
                after,
                t(f.now)
            ),
            Err(ChainError::Revoked { .. })
        ));
    }

    #[test]
    fn fails_closed_without_a_current_crl() {
        let f = fixture();
        let p = &f.pki;
        let now = t(f.now);
        let jane = &p.voter("jane-p256").unwrap().issued.cert_der;
        // No CRL for the ID CA at all.
        let s = store_with(vec![p.root_crl.clone()]);
        assert!(matches!(
            s.verify_voter(jane, &[], Purpose::Authentication, now, now),
            Err(ChainError::RevocationUnknown { .. })
        ));
        // An expired CRL.
        let stale = p
            .id_ca
            .crl(
                2,
                &[],
                f.now - Duration::days(20),
                f.now - Duration::days(10),
            )
            .unwrap();
        let s = store_with(vec![p.root_crl.clone(), stale]);
        assert!(matches!(
            s.verify_voter(jane, &[], Purpose::Authentication, now, now),
            Err(ChainError::RevocationUnknown { .. })
        ));
        // A CRL that is not valid yet.
        let future = p
            .id_ca
            .crl(3, &[], f.now + Duration::days(1), f.now + Duration::days(8))
            .unwrap();
        let s = store_with(vec![p.root_crl.clone(), future]);
        assert!(matches!(
            s.verify_voter(jane, &[], Purpose::Authentication, now, now),
            Err(ChainError::RevocationUnknown { .. })
        ));
        // A CRL with the ID CA's name signed by another key is ignored.
        let impostor = p.rogue_ca.issue_ca(&CertSpec {
            ca: Some(Some(0)),
            ..CertSpec::leaf(
                "CN=Test DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US",
                KeyAlg::P384,
                f.now,
                30,
            )
        });
        let forged = impostor
            .unwrap()
            .crl(
                4,
                &[],
                f.now - Duration::hours(1),
                f.now + Duration::days(1),
            )
            .unwrap();
        let s = store_with(vec![p.root_crl.clone(), forged]);
        assert!(matches!(
            s.verify_voter(jane, &[], Purpose::Authentication, now, now),
            Err(ChainError::RevocationUnknown { .. })
        ));
    }

    #[test]
    fn checks_validity_at_the_time_given() {
        let f = fixture();
        let ed = &f.pki.voter("ed-expired").unwrap().issued.cert_der;
        // Ed's certificate was valid a year ago (a ballot received then counts).
        let then = t(f.now - Duration::days(365));
        let s = store_with(vec![f.pki.root_crl.clone(), f.pki.id_ca_crl.clone()]);
        // The CRLs are current now, and were issued after `then`.
        s.verify_voter(ed, &[], Purpose::Authentication, then, t(f.now))
            .unwrap();
    }

    #[test]
    fn uses_presented_intermediates() {
        let f = fixture();
        let p = &f.pki;
        let s = TrustStore::new(
            vec![Anchor {
                name: "root".into(),
                cert_der: p.root.issued.cert_der.clone(),
                policy: IdentityPolicy::dod_default(),
            }],
            vec![],
            vec![p.root_crl.clone(), p.id_ca_crl.clone()],
        )
        .unwrap();
        let jane = &p.voter("jane-p256").unwrap().issued.cert_der;
        let now = t(f.now);
        assert_eq!(
            s.verify_voter(jane, &[], Purpose::Authentication, now, now)
                .unwrap_err(),
            ChainError::UnknownIssuer
        );
        s.verify_voter(
            jane,
            std::slice::from_ref(&p.id_ca.issued.cert_der),
            Purpose::Authentication,
            now,
            now,
        )
        .unwrap();
    }
}
