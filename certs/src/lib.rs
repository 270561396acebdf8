//! A development PKI shaped like the DoD's, for tests and the demo.
//!
//! Every name says "Test". Nothing here is a trust anchor for a real
//! election: production anchors and CRLs are installed as described in
//! `certs/README.md`.
//!
//! Certificates and CRLs are built from `x509-cert`'s DER types and signed
//! with aws-lc-rs. (rcgen was the first choice, but its distinguished name
//! holds one value per attribute type, and a CAC subject has three `OU`s.)
//!
//! Why one file of ~960 lines: the development PKI is one generator (names, extensions, keys,
//! CRLs for every development voter), used only by tests and the demo.
#![forbid(unsafe_code)]

use anyhow::{anyhow, Context, Result};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, UtcTime, Utf8StringRef};
use der::{Any, Decode, Encode};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::name::{GeneralName, OtherName};
pub use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::pkix::{FreshestCrl, PolicyMapping, PolicyMappings};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

/// Object identifiers used by the DoD PKI and by this project.
pub mod oid {
    use spki::ObjectIdentifier;

    /// id-kp-clientAuth.
    pub const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    /// id-kp-serverAuth.
    pub const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
    /// id-kp-emailProtection.
    pub const EMAIL_PROTECTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
    /// Microsoft smartcard logon, present on CAC PIV-authentication certificates.
    pub const SMARTCARD_LOGON: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.2");
    /// Microsoft User Principal Name otherName (`<EDIPI>@mil` on a CAC).
    pub const UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");
    /// id-PIV-cardAuth: a card-authentication certificate, which proves a
    /// card is present, not who holds it.
    pub const PIV_CARD_AUTH: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.6.8");
    /// id-US-dod-mediumHardware-112.
    pub const DOD_MEDIUM_HARDWARE_112: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.11.42");
    /// id-US-dod-mediumHardware-128.
    pub const DOD_MEDIUM_HARDWARE_128: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.11.43");
    /// id-US-dod-mediumHardware (the original, legacy level).
    pub const DOD_MEDIUM_HARDWARE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.11.9");
    /// id-US-dod-mediumHardware-192.
    pub const DOD_MEDIUM_HARDWARE_192: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.11.44");
    /// id-US-dod-medium (software keys), not accepted for voters.
    pub const DOD_MEDIUM: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.11.5");
    /// The policy of the development county voter CA (an arc under the
    /// documentation OID space, never a real policy).
    pub const DEV_COUNTY_VOTER: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.55555.1.1");
    /// anyPolicy.
    pub const ANY_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32.0");

    pub(crate) const ECDSA_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    pub(crate) const ECDSA_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    pub(crate) const RSA_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    pub(crate) const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
}

/// The key types that CACs carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// ECDSA on P-256, signing with SHA-256.
    P256,
    /// ECDSA on P-384, signing with SHA-384.
    P384,
    /// RSA 2048, PKCS #1 v1.5 with SHA-256.
    Rsa2048,
}

/// A private key with its algorithm.
pub struct PrivateKey {
    alg: KeyAlg,
    pkcs8: Zeroizing<Vec<u8>>,
    inner: Inner,
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A new random key.
    pub fn generate(alg: KeyAlg) -> Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            KeyAlg::P256 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| anyhow!("P-256 key generation failed"))?
                    .as_ref()
                    .to_vec()
            }
            KeyAlg::P384 => {
                EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                    .map_err(|_| anyhow!("P-384 key generation failed"))?
                    .as_ref()
                    .to_vec()
            }
            KeyAlg::Rsa2048 => {
                let k = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| anyhow!("RSA key generation failed"))?;
                k.as_der()
                    .map_err(|_| anyhow!("RSA key export failed"))?
                    .as_ref()
                    .to_vec()
            }
        };
        Self::from_pkcs8(alg, Zeroizing::new(pkcs8))
    }

    fn from_pkcs8(alg: KeyAlg, pkcs8: Zeroizing<Vec<u8>>) -> Result<Self> {
        let inner = match alg {
            KeyAlg::P256 => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
                    .map_err(|_| anyhow!("bad P-256 key"))?,
            ),
            KeyAlg::P384 => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &pkcs8)
                    .map_err(|_| anyhow!("bad P-384 key"))?,
            ),
            KeyAlg::Rsa2048 => {
                Inner::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| anyhow!("bad RSA key"))?)
            }
        };
        Ok(PrivateKey { alg, pkcs8, inner })
    }

    /// The algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// The key as PKCS #8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as a PKCS #8 PEM (`PRIVATE KEY`). Store only in 0600 files.
    pub fn pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.pkcs8.to_vec(),
        )))
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        let der: PublicKeyX509Der<'static> = match &self.inner {
            Inner::Ec(k) => k.public_key().as_der(),
            Inner::Rsa(k) => k.public_key().as_der(),
        }
        .map_err(|_| anyhow!("public key export failed"))?;
        Ok(der.as_ref().to_vec())
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.alg {
            KeyAlg::P256 => AlgorithmIdentifierOwned {
                oid: oid::ECDSA_SHA256,
                parameters: None,
            },
            KeyAlg::P384 => AlgorithmIdentifierOwned {
                oid: oid::ECDSA_SHA384,
                parameters: None,
            },
            KeyAlg::Rsa2048 => AlgorithmIdentifierOwned {
                oid: oid::RSA_SHA256,
                parameters: Some(Any::null()),
            },
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(k) => Ok(k
                .sign(&rng, msg)
                .map_err(|_| anyhow!("ECDSA signing failed"))?
                .as_ref()
                .to_vec()),
            Inner::Rsa(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(|_| anyhow!("RSA signing failed"))?;
                Ok(out)
            }
        }
    }
}

fn der_time(t: time::OffsetDateTime) -> Result<Time> {
    let secs = u64::try_from(t.unix_timestamp()).context("time before 1970")?;
    let d = Duration::from_secs(secs);
    // RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime after.
    if t.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

fn key_id(spki_der: &[u8]) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)?;
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        spki.subject_public_key.raw_bytes(),
    );
    Ok(digest.as_ref().get(..20).unwrap_or_default().to_vec())
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness"))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x10;
    Ok(SerialNumber::new(&bytes)?)
}

fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// One revoked certificate on a CRL.
#[derive(Debug, Clone, Copy)]
pub struct CrlEntry<'a> {
    /// The serial number (DER content bytes).
    pub serial: &'a [u8],
    /// revocationDate.
    pub revoked_at: time::OffsetDateTime,
    /// reasonCode (none: no extension).
    pub reason: Option<CrlReason>,
    /// invalidityDate: since when the key is suspect (none: no extension).
    pub invalidity: Option<time::OffsetDateTime>,
}

impl<'a> CrlEntry<'a> {
    /// `serial` revoked at `revoked_at`, with no reason or invalidity date.
    pub fn new(serial: &'a [u8], revoked_at: time::OffsetDateTime) -> Self {
        CrlEntry {
            serial,
            revoked_at,
            reason: None,
            invalidity: None,
        }
    }
}

/// What kind of CRL [`Ca::crl_with`] makes.
#[derive(Debug, Clone, Copy)]
pub enum CrlKind<'a> {
    /// A complete CRL.
    Complete,
    /// A delta CRL (deltaCRLIndicator, critical) on top of CRL number `base`.
    Delta {
        /// The base CRL's number.
        base: u64,
    },
    /// A complete-looking base CRL that names a delta CRL (Freshest CRL).
    PointsToDelta {
        /// Where the delta is published.
        url: &'a str,
    },
}

/// What goes into one certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// The subject in RFC 4514 form, most specific first.
    pub subject: String,
    /// The start of validity.
    pub not_before: time::OffsetDateTime,
    /// The end of validity.
    pub not_after: time::OffsetDateTime,
    /// The key type.
    pub alg: KeyAlg,
    /// A CA certificate, with its path length constraint.
    pub ca: Option<Option<u8>>,
    /// Extended key usages (none: no extension).
    pub ekus: Vec<ObjectIdentifier>,
    /// Certificate policies (none: no extension).
    pub policies: Vec<ObjectIdentifier>,
    /// A UPN otherName in subjectAltName.
    pub upn: Option<String>,
    /// A URI in subjectAltName.
    pub uri: Option<String>,
    /// DNS names in subjectAltName.
    pub dns: Vec<String>,
    /// An e-mail address (rfc822Name) in subjectAltName.
    pub email: Option<String>,
    /// Key usage digitalSignature and nonRepudiation (a signature
    /// certificate) rather than digitalSignature alone.
    pub non_repudiation: bool,
    /// policyMappings (issuer domain policy, subject domain policy), as a
    /// bridge CA has; none: no extension.
    pub policy_mappings: Vec<(ObjectIdentifier, ObjectIdentifier)>,
    /// inhibitAnyPolicy's skipCerts; none: no extension.
    pub inhibit_any_policy: Option<u32>,
    /// Whether policyMappings and inhibitAnyPolicy are marked critical, as
    /// RFC 5280 says they should and must be (false reaches a verifier's
    /// policy processing past a path builder that refuses them).
    pub policy_extensions_critical: bool,
}

impl CertSpec {
    /// An end-entity spec valid from `now - 30 days` to `now + days`.
    pub fn leaf(subject: &str, alg: KeyAlg, now: time::OffsetDateTime, days: i64) -> Self {
        CertSpec {
            subject: subject.to_owned(),
            not_before: now - time::Duration::days(30),
            not_after: now + time::Duration::days(days),
            alg,
            ca: None,
            ekus: Vec::new(),
            policies: Vec::new(),
            upn: None,
            uri: None,
            dns: Vec::new(),
            email: None,
            non_repudiation: false,
            policy_mappings: Vec::new(),
            inhibit_any_policy: None,
            policy_extensions_critical: true,
        }
    }
}

/// An issued certificate with its private key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate DER.
    pub cert_der: Vec<u8>,
    /// The private key.
    pub key: PrivateKey,
    /// The serial number (big-endian bytes).
    pub serial: Vec<u8>,
}

impl Issued {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.cert_der.clone()))
    }
}

/// A certificate authority that can issue certificates and CRLs.
#[derive(Debug)]
pub struct Ca {
    /// The CA's own certificate and key.
    pub issued: Issued,
    name: Name,
    ski: Vec<u8>,
}

/// What [`build_cert`] produces: the certificate DER, its serial, its
/// subject and its subject key identifier.
struct Built {
    der: Vec<u8>,
    serial: Vec<u8>,
    subject: Name,
    ski: Vec<u8>,
}

fn build_cert(
    spec: &CertSpec,
    key: &PrivateKey,
    issuer: Option<(&Name, &[u8], &PrivateKey)>,
) -> Result<Built> {
    let spki_der = key.spki_der()?;
    match issuer {
        Some((n, aki, k)) => build_cert_for(spec, &spki_der, Some((n, aki)), k),
        None => build_cert_for(spec, &spki_der, None, key),
    }
}

/// [`build_cert`] for a public key whose private half is elsewhere (a
/// card): `signer` is the issuer's key, or the subject's own for a root.
fn build_cert_for(
    spec: &CertSpec,
    spki_der: &[u8],
    issuer: Option<(&Name, &[u8])>,
    signer: &PrivateKey,
) -> Result<Built> {
    let subject =
        Name::from_str(&spec.subject).with_context(|| format!("bad subject {}", spec.subject))?;
    let ski = key_id(spki_der)?;
    let (issuer_name, aki) = match issuer {
        Some((n, aki)) => (n.clone(), aki.to_vec()),
        None => (subject.clone(), ski.clone()),
    };
    let serial = random_serial()?;
    let mut exts = Vec::new();
    match spec.ca {
        Some(path_len) => {
            exts.push(ext(
                const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: path_len,
                },
            )?);
            exts.push(ext(
                const_oid::db::rfc5280::ID_CE_KEY_USAGE,
                true,
                &KeyUsage(
                    KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature,
                ),
            )?);
        }
        None => {
            exts.push(ext(
                const_oid::db::rfc5280::ID_CE_KEY_USAGE,
                true,
                &KeyUsage(if spec.non_repudiation {
                    KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
                } else {
                    KeyUsages::DigitalSignature.into()
                }),
            )?);
        }
    }
    exts.push(ext(
        const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(OctetString::new(ski.clone())?),
    )?);
    exts.push(ext(
        const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )?);
    if !spec.ekus.is_empty() {
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(spec.ekus.clone()),
        )?);
    }
    if !spec.policies.is_empty() {
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES,
            false,
            &CertificatePolicies(
                spec.policies
                    .iter()
                    .map(|p| PolicyInformation {
                        policy_identifier: *p,
                        policy_qualifiers: None,
                    })
                    .collect(),
            ),
        )?);
    }
    if !spec.policy_mappings.is_empty() {
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_POLICY_MAPPINGS,
            spec.policy_extensions_critical,
            &PolicyMappings(
                spec.policy_mappings
                    .iter()
                    .map(|(i, s)| PolicyMapping {
                        issuer_domain_policy: *i,
                        subject_domain_policy: *s,
                    })
                    .collect(),
            ),
        )?);
    }
    if let Some(skip) = spec.inhibit_any_policy {
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_INHIBIT_ANY_POLICY,
            spec.policy_extensions_critical,
            &skip,
        )?);
    }
    let mut sans = Vec::new();
    if let Some(upn) = &spec.upn {
        sans.push(GeneralName::OtherName(OtherName {
            type_id: oid::UPN,
            value: Any::encode_from(&Utf8StringRef::new(upn)?)?,
        }));
    }
    if let Some(uri) = &spec.uri {
        sans.push(GeneralName::UniformResourceIdentifier(Ia5String::new(uri)?));
    }
    for d in &spec.dns {
        sans.push(GeneralName::DnsName(Ia5String::new(d)?));
    }
    if let Some(email) = &spec.email {
        sans.push(GeneralName::Rfc822Name(Ia5String::new(email)?));
    }
    if !sans.is_empty() {
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
            false,
            &SubjectAltName(sans),
        )?);
    }

    let sig_alg = signer.signature_algorithm();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial.clone(),
        signature: sig_alg.clone(),
        issuer: issuer_name,
        validity: Validity {
            not_before: der_time(spec.not_before)?,
            not_after: der_time(spec.not_after)?,
        },
        subject: subject.clone(),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(exts),
    };
    let signature = signer.sign(&tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sig_alg,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(Built {
        der: cert.to_der()?,
        serial: serial.as_bytes().to_vec(),
        subject,
        ski,
    })
}

impl Ca {
    /// A self-signed root CA.
    pub fn new_root(spec: &CertSpec) -> Result<Self> {
        let key = PrivateKey::generate(spec.alg)?;
        let Built {
            der: cert_der,
            serial,
            subject: name,
            ski,
        } = build_cert(spec, &key, None)?;
        Ok(Ca {
            issued: Issued {
                cert_der,
                key,
                serial,
            },
            name,
            ski,
        })
    }

    /// Issues a certificate with a fresh key.
    pub fn issue(&self, spec: &CertSpec) -> Result<Issued> {
        let key = PrivateKey::generate(spec.alg)?;
        let Built {
            der: cert_der,
            serial,
            ..
        } = build_cert(spec, &key, Some((&self.name, &self.ski, &self.issued.key)))?;
        Ok(Issued {
            cert_der,
            key,
            serial,
        })
    }

    /// Issues a certificate for a public key whose private key is held
    /// elsewhere (generated on a card, say): `spki_der` is its
    /// SubjectPublicKeyInfo. Returns the certificate DER and its serial.
    pub fn issue_for(&self, spec: &CertSpec, spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let Built { der, serial, .. } = build_cert_for(
            spec,
            spki_der,
            Some((&self.name, &self.ski)),
            &self.issued.key,
        )?;
        Ok((der, serial))
    }

    /// Issues a subordinate CA.
    pub fn issue_ca(&self, spec: &CertSpec) -> Result<Ca> {
        let key = PrivateKey::generate(spec.alg)?;
        let Built {
            der: cert_der,
            serial,
            subject: name,
            ski,
        } = build_cert(spec, &key, Some((&self.name, &self.ski, &self.issued.key)))?;
        Ok(Ca {
            issued: Issued {
                cert_der,
                key,
                serial,
            },
            name,
            ski,
        })
    }

    /// A CRL (DER) listing `revoked` as (serial, revocation time).
    pub fn crl(
        &self,
        number: u64,
        revoked: &[(&[u8], time::OffsetDateTime)],
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let entries: Vec<CrlEntry<'_>> = revoked
            .iter()
            .map(|(serial, at)| CrlEntry::new(serial, *at))
            .collect();
        self.crl_with(
            number,
            &entries,
            this_update,
            next_update,
            CrlKind::Complete,
        )
    }

    /// A CRL whose entries may carry a reason and an invalidity date, and
    /// which may be a delta CRL or point to one.
    pub fn crl_with(
        &self,
        number: u64,
        entries: &[CrlEntry<'_>],
        this_update: time::OffsetDateTime,
        next_update: time::OffsetDateTime,
        kind: CrlKind<'_>,
    ) -> Result<Vec<u8>> {
        let sig_alg = self.issued.key.signature_algorithm();
        let entries = entries
            .iter()
            .map(|e| {
                let mut exts = Vec::new();
                if let Some(reason) = e.reason {
                    exts.push(ext(
                        const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                        false,
                        &reason,
                    )?);
                }
                if let Some(when) = e.invalidity {
                    exts.push(ext(
                        const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE,
                        false,
                        &GeneralizedTime::from_unix_duration(Duration::from_secs(
                            when.unix_timestamp().max(0) as u64,
                        ))?,
                    )?);
                }
                Ok(RevokedCert {
                    serial_number: SerialNumber::new(e.serial)?,
                    revocation_date: der_time(e.revoked_at)?,
                    crl_entry_extensions: if exts.is_empty() { None } else { Some(exts) },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut crl_exts = vec![
            ext(
                oid::CRL_NUMBER,
                false,
                &der::asn1::Uint::new(&number.to_be_bytes())?,
            )?,
            ext(
                const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(self.ski.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
        ];
        match kind {
            CrlKind::Complete => {}
            CrlKind::Delta { base } => crl_exts.push(ext(
                const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR,
                true,
                &der::asn1::Uint::new(&base.to_be_bytes())?,
            )?),
            CrlKind::PointsToDelta { url } => crl_exts.push(ext(
                const_oid::db::rfc5280::ID_CE_FRESHEST_CRL,
                false,
                &FreshestCrl(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![
                        GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
                    ])),
                    reasons: None,
                    crl_issuer: None,
                }]),
            )?),
        }
        let tbs = TbsCertList {
            version: Version::V2,
            signature: sig_alg.clone(),
            issuer: self.name.clone(),
            this_update: der_time(this_update)?,
            next_update: Some(der_time(next_update)?),
            revoked_certificates: if entries.is_empty() {
                None
            } else {
                Some(entries)
            },
            crl_extensions: Some(crl_exts),
        };
        let signature = self.issued.key.sign(&tbs.to_der()?)?;
        Ok(CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: sig_alg,
            signature: BitString::from_bytes(&signature)?,
        }
        .to_der()?)
    }
}

/// The subject of a CAC PIV-authentication certificate.
pub fn cac_subject(last: &str, first: &str, middle: &str, edipi: &str, service: &str) -> String {
    format!("CN={last}.{first}.{middle}.{edipi},OU={service},OU=PKI,OU=DoD,O=U.S. Government,C=US")
}

/// A CAC-shaped voter certificate spec: PIV authentication, UPN
/// `EDIPI@mil`, mediumHardware-112, clientAuth and smartcardLogon, key
/// usage digitalSignature.
pub fn cac_spec(
    last: &str,
    first: &str,
    middle: &str,
    edipi: &str,
    alg: KeyAlg,
    now: time::OffsetDateTime,
) -> CertSpec {
    CertSpec {
        ekus: vec![oid::CLIENT_AUTH, oid::SMARTCARD_LOGON],
        policies: vec![oid::DOD_MEDIUM_HARDWARE_112],
        upn: Some(format!("{edipi}@mil")),
        ..CertSpec::leaf(
            &cac_subject(last, first, middle, edipi, "USN"),
            alg,
            now,
            3 * 365,
        )
    }
}

/// The CAC's other certificate for its holder, Digital Signature: the
/// same subject, SAN e-mail address instead of the UPN, emailProtection,
/// key usage digitalSignature and nonRepudiation, mediumHardware-112. It
/// signs ballots; it cannot authenticate a connection (no clientAuth).
pub fn cac_signature_spec(
    last: &str,
    first: &str,
    middle: &str,
    edipi: &str,
    alg: KeyAlg,
    now: time::OffsetDateTime,
) -> CertSpec {
    CertSpec {
        ekus: vec![oid::EMAIL_PROTECTION],
        upn: None,
        email: Some(format!(
            "{}.{}.{}.mil@mail.mil",
            first.to_ascii_lowercase(),
            middle.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        )),
        non_repudiation: true,
        ..cac_spec(last, first, middle, edipi, alg, now)
    }
}

/// One voter of the development PKI.
#[derive(Debug)]
pub struct DevVoter {
    /// A short file-name-safe label (`jane-p256`).
    pub label: &'static str,
    /// The identity the certificate carries (EDIPI or county voter id).
    pub identity: String,
    /// What the certificate is for in tests.
    pub purpose: &'static str,
    /// The certificate and key.
    pub issued: Issued,
}

/// The whole development PKI.
#[derive(Debug)]
pub struct DevPki {
    /// "Test DoD Root CA 3".
    pub root: Ca,
    /// "Test DOD ID CA-59", issued by the root.
    pub id_ca: Ca,
    /// "Test County Voter CA", a separate root for overseas citizens.
    pub county_ca: Ca,
    /// A root no one trusts, for "unknown CA" tests.
    pub rogue_ca: Ca,
    /// The voters (see [`DevVoter::purpose`]).
    pub voters: Vec<DevVoter>,
    /// A localhost TLS server certificate issued by the root.
    pub server: Issued,
    /// The root's CRL (DER): revokes nothing.
    pub root_crl: Vec<u8>,
    /// The ID CA's CRL (DER): revokes the `revoked` voter.
    pub id_ca_crl: Vec<u8>,
    /// The county CA's CRL (DER): revokes nothing.
    pub county_crl: Vec<u8>,
}

impl DevPki {
    /// The voter with `label`.
    pub fn voter(&self, label: &str) -> Option<&DevVoter> {
        self.voters.iter().find(|v| v.label == label)
    }
}

/// Generates the development PKI as of `now`.
pub fn generate(now: time::OffsetDateTime) -> Result<DevPki> {
    let ca_spec = |subject: &str, path_len: Option<u8>| CertSpec {
        ca: Some(path_len),
        not_before: now - time::Duration::days(5 * 365),
        not_after: now + time::Duration::days(10 * 365),
        ..CertSpec::leaf(subject, KeyAlg::P384, now, 0)
    };
    let root = Ca::new_root(&ca_spec(
        "CN=Test DoD Root CA 3,OU=PKI,OU=DoD,O=U.S. Government,C=US",
        None,
    ))?;
    let id_ca = root.issue_ca(&CertSpec {
        policies: vec![
            oid::DOD_MEDIUM_HARDWARE_112,
            oid::DOD_MEDIUM_HARDWARE_128,
            oid::DOD_MEDIUM,
        ],
        ..ca_spec(
            "CN=Test DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US",
            Some(0),
        )
    })?;
    let county_ca = Ca::new_root(&ca_spec(
        "CN=Test County Voter CA,O=Test County Elections,C=US",
        Some(0),
    ))?;
    let rogue_ca = Ca::new_root(&ca_spec(
        "CN=Test DoD Root CA 3,OU=PKI,OU=DoD,O=U.S. Government,C=US",
        None,
    ))?;

    let mut voters = Vec::new();
    let mut add = |label, identity: &str, purpose, issued| {
        voters.push(DevVoter {
            label,
            identity: identity.to_owned(),
            purpose,
            issued,
        })
    };
    add(
        "jane-p256",
        "1234567890",
        "a valid CAC, ECDSA P-256",
        id_ca.issue(&cac_spec(
            "DOE",
            "JANE",
            "Q",
            "1234567890",
            KeyAlg::P256,
            now,
        ))?,
    );
    add(
        "john-p384",
        "2345678901",
        "a valid CAC, ECDSA P-384",
        id_ca.issue(&cac_spec(
            "SMITH",
            "JOHN",
            "A",
            "2345678901",
            KeyAlg::P384,
            now,
        ))?,
    );
    add(
        "maria-rsa",
        "3456789012",
        "a valid CAC, RSA 2048",
        id_ca.issue(&cac_spec(
            "GARCIA",
            "MARIA",
            "L",
            "3456789012",
            KeyAlg::Rsa2048,
            now,
        ))?,
    );
    add(
        "jane-signature",
        "1234567890",
        "jane-p256's Digital Signature certificate: signs ballots, cannot log in",
        id_ca.issue(&cac_signature_spec(
            "DOE",
            "JANE",
            "Q",
            "1234567890",
            KeyAlg::P256,
            now,
        ))?,
    );
    let revoked = id_ca.issue(&cac_spec(
        "BROWN",
        "RICK",
        "R",
        "4567890123",
        KeyAlg::P256,
        now,
    ))?;
    let revoked_serial = revoked.serial.clone();
    add(
        "rick-revoked",
        "4567890123",
        "a CAC revoked in the ID CA's CRL",
        revoked,
    );
    add(
        "ed-expired",
        "5678901234",
        "a CAC that expired 30 days ago",
        id_ca.issue(&CertSpec {
            not_before: now - time::Duration::days(3 * 365),
            not_after: now - time::Duration::days(30),
            ..cac_spec("EVANS", "ED", "E", "5678901234", KeyAlg::P256, now)
        })?,
    );
    add(
        "jane-cardauth",
        "1234567890",
        "a PIV card-authentication certificate (never a person)",
        id_ca.issue(&CertSpec {
            subject: "CN=1234567890,OU=USN,OU=PKI,OU=DoD,O=U.S. Government,C=US".into(),
            ekus: vec![oid::CLIENT_AUTH, oid::PIV_CARD_AUTH],
            ..cac_spec("DOE", "JANE", "Q", "1234567890", KeyAlg::P256, now)
        })?,
    );
    add(
        "ned-nopolicy",
        "6789012345",
        "a CAC-shaped certificate under id-US-dod-medium, not an accepted policy",
        id_ca.issue(&CertSpec {
            policies: vec![oid::DOD_MEDIUM],
            ..cac_spec("NOLAN", "NED", "N", "6789012345", KeyAlg::P256, now)
        })?,
    );
    add(
        "nora-noclientauth",
        "7890123456",
        "a CAC-shaped certificate without the clientAuth EKU (an e-mail certificate)",
        id_ca.issue(&CertSpec {
            ekus: vec![oid::EMAIL_PROTECTION],
            ..cac_spec("NASH", "NORA", "N", "7890123456", KeyAlg::P256, now)
        })?,
    );
    add(
        "omar-county",
        "TC-000123",
        "an overseas citizen with a county voter certificate (URI identity)",
        county_ca.issue(&CertSpec {
            ekus: vec![oid::CLIENT_AUTH],
            policies: vec![oid::DEV_COUNTY_VOTER],
            uri: Some("urn:test-county:voter:TC-000123".into()),
            ..CertSpec::leaf(
                "CN=OMAR OVERSEAS,O=Test County Elections,C=US",
                KeyAlg::P256,
                now,
                365,
            )
        })?,
    );
    add(
        "mallory-rogue",
        "1234567890",
        "a CAC-shaped certificate from an untrusted CA with a valid voter's EDIPI",
        rogue_ca.issue(&cac_spec(
            "DOE",
            "JANE",
            "Q",
            "1234567890",
            KeyAlg::P256,
            now,
        ))?,
    );

    let server = root.issue(&CertSpec {
        ekus: vec![oid::SERVER_AUTH],
        dns: vec!["localhost".into()],
        ..CertSpec::leaf(
            "CN=localhost,O=Test Ballot Gateway,C=US",
            KeyAlg::P256,
            now,
            365,
        )
    })?;

    let (this_update, next_update) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(7),
    );
    let root_crl = root.crl(1, &[], this_update, next_update)?;
    let id_ca_crl = id_ca.crl(
        1,
        &[(&revoked_serial, now - time::Duration::days(2))],
        this_update,
        next_update,
    )?;
    let county_crl = county_ca.crl(1, &[], this_update, next_update)?;
    Ok(DevPki {
        root,
        id_ca,
        county_ca,
        rogue_ca,
        voters,
        server,
        root_crl,
        id_ca_crl,
        county_crl,
    })
}

fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn crl_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("X509 CRL", der.to_vec()))
}

impl DevPki {
    /// Writes the PKI under `dir` in the layout `certs/README.md` describes:
    /// `anchors/`, `intermediates/`, `crls/`, `voters/`, `server/`, and
    /// `untrusted/`. Private keys are written 0600.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        for sub in [
            "anchors",
            "intermediates",
            "crls",
            "voters",
            "server",
            "untrusted",
        ] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        write_file(
            &dir.join("anchors/test-dod-root-ca-3.pem"),
            self.root.issued.cert_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("anchors/test-county-voter-ca.pem"),
            self.county_ca.issued.cert_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("intermediates/test-dod-id-ca-59.pem"),
            self.id_ca.issued.cert_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("crls/test-dod-root-ca-3.crl"),
            crl_pem(&self.root_crl).as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("crls/test-dod-id-ca-59.crl"),
            crl_pem(&self.id_ca_crl).as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("crls/test-county-voter-ca.crl"),
            crl_pem(&self.county_crl).as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("untrusted/rogue-root-ca.pem"),
            self.rogue_ca.issued.cert_pem().as_bytes(),
            false,
        )?;
        for v in &self.voters {
            write_file(
                &dir.join(format!("voters/{}.cert.pem", v.label)),
                v.issued.cert_pem().as_bytes(),
                false,
            )?;
            write_file(
                &dir.join(format!("voters/{}.key.pem", v.label)),
                v.issued.key.pkcs8_pem().as_bytes(),
                true,
            )?;
        }
        write_file(
            &dir.join("server/localhost.cert.pem"),
            self.server.cert_pem().as_bytes(),
            false,
        )?;
        write_file(
            &dir.join("server/localhost.key.pem"),
            self.server.key.pkcs8_pem().as_bytes(),
            true,
        )?;
        let mut index = String::from("label,identity,purpose\n");
        for v in &self.voters {
            index.push_str(&format!(
                "{},{},{}\n",
                v.label,
                v.identity,
                v.purpose.replace(',', ";")
            ));
        }
        write_file(&dir.join("voters/INDEX.csv"), index.as_bytes(), false)?;
        Ok(())
    }
}
