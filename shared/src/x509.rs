//! Who a voter certificate names, and whether its policy is accepted
//! (DESIGN section 2). Specification: `docs/spec/identity.md`.
//!
//! - DoD CAC: the identity is the EDIPI, the ten digits of the UPN otherName
//!   `<EDIPI>@mil` in subjectAltName, else the last dot-separated field of a
//!   common name `LAST.FIRST.MIDDLE.EDIPI`. If both are present they must
//!   agree.
//! - County voter CA: the identity is the rest of a subjectAltName URI after
//!   a prefix configured for that trust anchor.
//! - Card-authentication certificates (EKU id-PIV-cardAuth) prove that a
//!   card is present, not who holds it: they are never accepted.
//! - A CAC carries two certificates for its holder: PIV Authentication
//!   (clientAuth), which the gateway requires of the connection, and Digital
//!   Signature (emailProtection, digitalSignature and nonRepudiation), which
//!   signs documents. A ballot's signature may be made with either
//!   ([`Purpose::Signing`]); the connection only with the first
//!   ([`Purpose::Authentication`]).

use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Object identifiers, in dotted form.
pub mod oids {
    /// Microsoft User Principal Name otherName.
    pub const UPN: &str = "1.3.6.1.4.1.311.20.2.3";
    /// id-PIV-cardAuth.
    pub const PIV_CARD_AUTH: &str = "2.16.840.1.101.3.6.8";
    /// id-kp-clientAuth.
    pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
    /// id-kp-emailProtection (the CAC's Digital Signature certificate).
    pub const EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
    /// id-US-dod-mediumHardware (legacy).
    pub const DOD_MEDIUM_HARDWARE: &str = "2.16.840.1.101.2.1.11.9";
    /// id-US-dod-mediumHardware-112.
    pub const DOD_MEDIUM_HARDWARE_112: &str = "2.16.840.1.101.2.1.11.42";
    /// id-US-dod-mediumHardware-128.
    pub const DOD_MEDIUM_HARDWARE_128: &str = "2.16.840.1.101.2.1.11.43";
    /// id-US-dod-mediumHardware-192.
    pub const DOD_MEDIUM_HARDWARE_192: &str = "2.16.840.1.101.2.1.11.44";
    /// The DoD default accepted policies (DESIGN section 2).
    pub const DOD_DEFAULT_POLICIES: [&str; 4] = [
        DOD_MEDIUM_HARDWARE_112,
        DOD_MEDIUM_HARDWARE_128,
        DOD_MEDIUM_HARDWARE_192,
        DOD_MEDIUM_HARDWARE,
    ];
}

/// How a trust anchor's certificates name their holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRule {
    /// DoD: the EDIPI.
    Edipi,
    /// A county voter CA: a subjectAltName URI starting with this prefix;
    /// the identity is the rest of the URI.
    UriPrefix(String),
}

impl IdentityRule {
    /// The text form: `edipi`, or `uri-prefix:<prefix>`.
    pub const SYNTAX: &'static str = "\"edipi\" or \"uri-prefix:<prefix>\"";
}

impl std::str::FromStr for IdentityRule {
    type Err = String;

    /// Reads `edipi` or `uri-prefix:<prefix>` (a non-empty prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "edipi" => Ok(IdentityRule::Edipi),
            _ => match s.strip_prefix("uri-prefix:") {
                Some(p) if !p.is_empty() => Ok(IdentityRule::UriPrefix(p.to_owned())),
                _ => Err(format!(
                    "the identity rule must be {}, not {s:?}",
                    IdentityRule::SYNTAX
                )),
            },
        }
    }
}

impl std::fmt::Display for IdentityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityRule::Edipi => f.write_str("edipi"),
            IdentityRule::UriPrefix(p) => write!(f, "uri-prefix:{p}"),
        }
    }
}

/// What a trust anchor's voter certificates must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// Certificate policy OIDs (dotted) of which at least one must be asserted.
    pub accepted_policies: Vec<String>,
    /// Where the identity is.
    pub rule: IdentityRule,
}

impl IdentityPolicy {
    /// The DoD defaults: mediumHardware-112/128/192 and legacy mediumHardware, EDIPI.
    pub fn dod_default() -> Self {
        IdentityPolicy {
            accepted_policies: oids::DOD_DEFAULT_POLICIES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            rule: IdentityRule::Edipi,
        }
    }
}

/// A voter's identity as certified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoterIdentity {
    /// A DoD EDIPI (ten digits).
    Edipi(String),
    /// A county voter id.
    County(String),
}

impl VoterIdentity {
    /// The canonical text form: `edipi:<digits>` or `county:<id>`.
    pub fn to_canonical(&self) -> String {
        match self {
            VoterIdentity::Edipi(e) => format!("edipi:{e}"),
            VoterIdentity::County(c) => format!("county:{c}"),
        }
    }

    /// Reads the canonical text form.
    pub fn parse_canonical(s: &str) -> Option<Self> {
        if let Some(e) = s.strip_prefix("edipi:") {
            return is_edipi(e).then(|| VoterIdentity::Edipi(e.to_owned()));
        }
        let c = s.strip_prefix("county:")?;
        crate::codec::check_identifier(c, 64, "county voter id").ok()?;
        Some(VoterIdentity::County(c.to_owned()))
    }
}

impl std::fmt::Display for VoterIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

/// What a voter's certificate is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Authenticating the voter's connection to the gateway: extended key
    /// usage clientAuth (the CAC's PIV Authentication certificate).
    Authentication,
    /// Signing the ballot: extended key usage emailProtection (the CAC's
    /// Digital Signature certificate) or clientAuth, and a key usage, if
    /// present, with digitalSignature or nonRepudiation.
    Signing,
}

/// Why a certificate cannot stand for a voter.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The certificate is not parseable DER.
    #[error("the certificate cannot be parsed: {0}")]
    Malformed(String),
    /// A card-authentication certificate (id-PIV-cardAuth).
    #[error("a card-authentication certificate proves a card is present, not who holds it; use the PIV authentication certificate")]
    CardAuthentication,
    /// No extendedKeyUsage extension with clientAuth.
    #[error("the certificate is not for client authentication (no clientAuth extended key usage)")]
    NoClientAuth,
    /// No extendedKeyUsage extension with emailProtection or clientAuth.
    #[error(
        "the certificate is not for signing (no emailProtection or clientAuth extended key usage)"
    )]
    NotForSigning,
    /// The key usage extension does not allow digital signatures.
    #[error("the certificate's key usage does not allow digital signatures")]
    KeyUsage,
    /// None of the asserted policies is accepted.
    #[error("the certificate asserts no accepted policy (it has {found:?})")]
    NoAcceptedPolicy {
        /// The policies it asserts.
        found: Vec<String>,
    },
    /// No identity where the rule looks for it.
    #[error("the certificate carries no voter identity ({0})")]
    NoIdentity(&'static str),
    /// The UPN and the common name name different EDIPIs, or there are several.
    #[error("the certificate names conflicting identities")]
    Conflict,
}

/// What was read from a voter certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The certified identity.
    pub identity: VoterIdentity,
    /// The policy OIDs asserted.
    pub policies: Vec<String>,
    /// The subject, for people (in certificate order, `C=US, O=…, CN=…`).
    pub subject: String,
}

/// Parses one certificate, refusing trailing bytes.
pub fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, IdentityError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(IdentityError::Malformed(
            "trailing bytes after the certificate".into(),
        ));
    }
    Ok(cert)
}

/// The certificate policy OIDs a certificate asserts.
pub fn policies(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CertificatePolicies(ps) = ext.parsed_extension() {
            out.extend(ps.iter().map(|p| p.policy_id.to_id_string()));
        }
    }
    out
}

fn is_edipi(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The EDIPI of a UPN `<EDIPI>@mil`.
fn edipi_of_upn(upn: &str) -> Option<&str> {
    upn.strip_suffix("@mil").filter(|e| is_edipi(e))
}

/// The EDIPI of a common name `LAST.FIRST.MIDDLE.EDIPI`.
fn edipi_of_cn(cn: &str) -> Option<&str> {
    cn.rsplit_once('.').map(|(_, e)| e).filter(|e| is_edipi(e))
}

/// The subjectAltName entries of `cert` (none without the extension).
fn subject_alt_names<'a>(
    cert: &'a X509Certificate<'_>,
) -> Result<Vec<GeneralName<'a>>, IdentityError> {
    Ok(cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::Malformed(e.to_string()))?
        .map(|s| s.value.general_names.clone())
        .unwrap_or_default())
}

/// The dotted OID of the named curve of an EC key, if it names one.
pub(crate) fn named_curve(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<String> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
}

/// Decodes an otherName value (`[0] EXPLICIT UTF8String`) as text.
fn other_name_utf8(raw: &[u8]) -> Option<String> {
    use der::{Decode, Tag, TagNumber, Tagged};
    let any = der::Any::from_der(raw).ok()?;
    // x509-parser hands over the [0] EXPLICIT wrapper; unwrap it if present.
    let inner = if any.tag()
        == (Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        }) {
        der::Any::from_der(any.value()).ok()?
    } else {
        any
    };
    if inner.tag() != Tag::Utf8String {
        return None;
    }
    std::str::from_utf8(inner.value()).ok().map(str::to_owned)
}

/// Checks a voter certificate against an identity policy and extracts the
/// identity. Chain, validity and revocation are checked elsewhere
/// ([`crate::pki`]); this is everything about the certificate's content.
pub fn voter_facts(
    der: &[u8],
    policy: &IdentityPolicy,
    purpose: Purpose,
) -> Result<CertFacts, IdentityError> {
    let cert = parse_cert(der)?;

    // Refuse card-authentication certificates first: they may otherwise
    // look exactly like a person's certificate.
    let eku = cert
        .extended_key_usage()
        .map_err(|e| IdentityError::Malformed(e.to_string()))?;
    let missing = match purpose {
        Purpose::Authentication => IdentityError::NoClientAuth,
        Purpose::Signing => IdentityError::NotForSigning,
    };
    let Some(eku) = eku else {
        return Err(missing);
    };
    if eku
        .value
        .other
        .iter()
        .any(|o| o.to_id_string() == oids::PIV_CARD_AUTH)
    {
        return Err(IdentityError::CardAuthentication);
    }
    let usable = match purpose {
        Purpose::Authentication => eku.value.client_auth,
        Purpose::Signing => eku.value.client_auth || eku.value.email_protection,
    };
    if !usable {
        return Err(missing);
    }
    if let Some(ku) = cert
        .key_usage()
        .map_err(|e| IdentityError::Malformed(e.to_string()))?
    {
        let signs = match purpose {
            Purpose::Authentication => ku.value.digital_signature(),
            Purpose::Signing => ku.value.digital_signature() || ku.value.non_repudiation(),
        };
        if !signs {
            return Err(IdentityError::KeyUsage);
        }
    }
    let found = policies(&cert);
    if !found
        .iter()
        .any(|p| policy.accepted_policies.iter().any(|a| a == p))
    {
        return Err(IdentityError::NoAcceptedPolicy { found });
    }

    let sans = subject_alt_names(&cert)?;

    let identity = match &policy.rule {
        IdentityRule::Edipi => {
            let mut upns = Vec::new();
            for gn in &sans {
                if let GeneralName::OtherName(oid, raw) = gn {
                    if oid.to_id_string() == oids::UPN {
                        let v = other_name_utf8(raw)
                            .ok_or(IdentityError::Malformed("bad UPN otherName".into()))?;
                        upns.push(v);
                    }
                }
            }
            let from_upn = match upns.as_slice() {
                [] => None,
                [one] => {
                    let edipi = edipi_of_upn(one)
                        .ok_or(IdentityError::NoIdentity("the UPN is not <10 digits>@mil"))?;
                    Some(edipi.to_owned())
                }
                _ => return Err(IdentityError::Conflict),
            };
            let mut cns = cert.subject().iter_common_name();
            let cn = cns.next().and_then(|a| a.as_str().ok());
            if cns.next().is_some() {
                return Err(IdentityError::Conflict);
            }
            let from_cn = cn.and_then(edipi_of_cn).map(str::to_owned);
            match (from_upn, from_cn) {
                (Some(u), Some(c)) if u != c => return Err(IdentityError::Conflict),
                (Some(u), _) => VoterIdentity::Edipi(u),
                (None, Some(c)) => VoterIdentity::Edipi(c),
                (None, None) => {
                    return Err(IdentityError::NoIdentity(
                        "neither a UPN <EDIPI>@mil nor a common name LAST.FIRST.MIDDLE.EDIPI",
                    ))
                }
            }
        }
        IdentityRule::UriPrefix(prefix) => {
            let ids: Vec<&str> = sans
                .iter()
                .filter_map(|gn| match gn {
                    GeneralName::URI(u) => u.strip_prefix(prefix.as_str()),
                    _ => None,
                })
                .collect();
            match ids.as_slice() {
                [] => {
                    return Err(IdentityError::NoIdentity(
                        "no subjectAltName URI with the county's prefix",
                    ))
                }
                [one] => {
                    crate::codec::check_identifier(one, 64, "county voter id").map_err(|_| {
                        IdentityError::NoIdentity("the county voter id is not a valid identifier")
                    })?;
                    VoterIdentity::County((*one).to_owned())
                }
                _ => return Err(IdentityError::Conflict),
            }
        }
    };
    Ok(CertFacts {
        identity,
        policies: found,
        subject: cert.subject().to_string(),
    })
}

/// What a certificate on a voter's card is for, read from its content
/// (a card's object labels are the middleware's words, not the
/// certificate's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardRole {
    /// PIV Authentication (clientAuth): authenticates the connection.
    Authentication,
    /// Digital Signature (emailProtection, with digitalSignature or
    /// nonRepudiation): signs documents, and so the ballot.
    Signature,
    /// Card Authentication (id-PIV-cardAuth): proves a card is present,
    /// not who holds it; never used.
    CardAuthentication,
    /// Anything else (the key management certificate, for encryption).
    Other,
}

impl CardRole {
    /// Plain words for a support desk.
    pub fn describe(self) -> &'static str {
        match self {
            CardRole::Authentication => "PIV Authentication (logs in; used for the connection)",
            CardRole::Signature => "Digital Signature (signs documents; used to sign the ballot)",
            CardRole::CardAuthentication => {
                "Card Authentication (proves a card is present; not usable for voting)"
            }
            CardRole::Other => "other (not used by ballot-return)",
        }
    }
}

/// A certificate found on a voter's card, summarised for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCertificate {
    /// What it is for.
    pub role: CardRole,
    /// The subject (`CN=…, OU=…`).
    pub subject: String,
    /// The issuer.
    pub issuer: String,
    /// The EDIPI it names (UPN `<EDIPI>@mil`, else the common name's last
    /// field), if any.
    pub edipi: Option<String>,
    /// The start of validity (seconds since 1970).
    pub not_before: i64,
    /// The end of validity (seconds since 1970).
    pub not_after: i64,
    /// The key: `ECDSA P-256`, `ECDSA P-384`, `RSA 2048`, ….
    pub key: String,
    /// The key as a voter signature can use it, if it can.
    pub kind: Option<crate::cms::KeyKind>,
}

/// Reads a certificate from a card for [`CardCertificate`].
pub fn card_certificate(der: &[u8]) -> Result<CardCertificate, IdentityError> {
    let cert = parse_cert(der)?;
    let bad = |e: x509_parser::error::X509Error| IdentityError::Malformed(e.to_string());
    let eku = cert.extended_key_usage().map_err(bad)?.map(|e| e.value);
    let ku = cert.key_usage().map_err(bad)?.map(|k| k.value);
    let signs = ku.is_none_or(|k| k.digital_signature() || k.non_repudiation());
    let role = match eku {
        Some(e)
            if e.other
                .iter()
                .any(|o| o.to_id_string() == oids::PIV_CARD_AUTH) =>
        {
            CardRole::CardAuthentication
        }
        Some(e) if e.client_auth => CardRole::Authentication,
        Some(e) if e.email_protection && signs => CardRole::Signature,
        _ => CardRole::Other,
    };
    let from_upn = subject_alt_names(&cert)?.iter().find_map(|gn| match gn {
        GeneralName::OtherName(oid, raw) if oid.to_id_string() == oids::UPN => {
            edipi_of_upn(&other_name_utf8(raw)?).map(str::to_owned)
        }
        _ => None,
    });
    let from_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .and_then(edipi_of_cn)
        .map(str::to_owned);
    let spki = cert.public_key();
    use crate::cms::KeyKind;
    let (key, kind) = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                (format!("RSA {}", rsa.key_size()), Some(KeyKind::Rsa))
            }
            _ => ("RSA (unreadable)".to_owned(), None),
        },
        "1.2.840.10045.2.1" => match named_curve(spki).as_deref() {
            Some("1.2.840.10045.3.1.7") => ("ECDSA P-256".to_owned(), Some(KeyKind::P256)),
            Some("1.3.132.0.34") => ("ECDSA P-384".to_owned(), Some(KeyKind::P384)),
            Some(other) => (format!("ECDSA on curve {other}"), None),
            None => ("ECDSA (no curve named)".to_owned(), None),
        },
        other => (format!("algorithm {other}"), None),
    };
    Ok(CardCertificate {
        role,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        edipi: from_upn.or(from_cn),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use devpki::{cac_spec, oid, CertSpec, KeyAlg};

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    fn pki() -> &'static devpki::DevPki {
        static PKI: std::sync::OnceLock<devpki::DevPki> = std::sync::OnceLock::new();
        PKI.get_or_init(|| devpki::generate(now()).unwrap())
    }

    fn facts(label: &str) -> Result<CertFacts, IdentityError> {
        voter_facts(
            &pki().voter(label).unwrap().issued.cert_der,
            &IdentityPolicy::dod_default(),
            Purpose::Authentication,
        )
    }

    #[test]
    fn reads_the_edipi_of_every_valid_cac() {
        for (label, edipi) in [
            ("jane-p256", "1234567890"),
            ("john-p384", "2345678901"),
            ("maria-rsa", "3456789012"),
        ] {
            let f = facts(label).unwrap();
            assert_eq!(f.identity, VoterIdentity::Edipi(edipi.into()));
            assert_eq!(f.policies, vec![oids::DOD_MEDIUM_HARDWARE_112.to_owned()]);
            assert!(f.subject.contains("OU=DoD"), "{}", f.subject);
        }
    }

    #[test]
    fn refuses_a_card_authentication_certificate() {
        assert_eq!(
            facts("jane-cardauth"),
            Err(IdentityError::CardAuthentication)
        );
    }

    #[test]
    fn the_digital_signature_certificate_signs_but_cannot_log_in() {
        let der = &pki().voter("jane-signature").unwrap().issued.cert_der;
        let policy = IdentityPolicy::dod_default();
        let signing = voter_facts(der, &policy, Purpose::Signing).unwrap();
        // The same voter as her PIV Authentication certificate, by the
        // common name (the signature certificate has no UPN).
        assert_eq!(signing.identity, facts("jane-p256").unwrap().identity);
        assert_eq!(
            voter_facts(der, &policy, Purpose::Authentication),
            Err(IdentityError::NoClientAuth)
        );
        // The PIV Authentication certificate may sign too (cards and
        // county certificates with one certificate).
        let auth = &pki().voter("jane-p256").unwrap().issued.cert_der;
        assert!(voter_facts(auth, &policy, Purpose::Signing).is_ok());
        // A card-authentication certificate does neither.
        let card = &pki().voter("jane-cardauth").unwrap().issued.cert_der;
        assert_eq!(
            voter_facts(card, &policy, Purpose::Signing),
            Err(IdentityError::CardAuthentication)
        );
    }

    #[test]
    fn a_card_shows_what_each_certificate_is_for() {
        let role = |label: &str| {
            card_certificate(&pki().voter(label).unwrap().issued.cert_der)
                .unwrap()
                .role
        };
        assert_eq!(role("jane-p256"), CardRole::Authentication);
        assert_eq!(role("jane-signature"), CardRole::Signature);
        assert_eq!(role("jane-cardauth"), CardRole::CardAuthentication);
        let c = card_certificate(&pki().voter("maria-rsa").unwrap().issued.cert_der).unwrap();
        assert_eq!(c.edipi.as_deref(), Some("3456789012"));
        assert_eq!(c.key, "RSA 2048");
        assert_eq!(c.kind, Some(crate::cms::KeyKind::Rsa));
        assert!(c.not_before < c.not_after);
        let s = card_certificate(&pki().voter("jane-signature").unwrap().issued.cert_der).unwrap();
        assert_eq!(s.edipi.as_deref(), Some("1234567890"));
        assert_eq!(s.key, "ECDSA P-256");
    }

    #[test]
    fn refuses_a_certificate_without_an_accepted_policy() {
        assert!(matches!(
            facts("ned-nopolicy"),
            Err(IdentityError::NoAcceptedPolicy { .. })
        ));
    }

    #[test]
    fn refuses_a_certificate_without_client_auth() {
        assert_eq!(facts("nora-noclientauth"), Err(IdentityError::NoClientAuth));
    }

    #[test]
    fn falls_back_to_the_common_name_and_refuses_a_conflict() {
        let ca = &pki().id_ca;
        let no_upn = ca
            .issue(&CertSpec {
                upn: None,
                ..cac_spec("DOE", "JOHN", "X", "1111111111", KeyAlg::P256, now())
            })
            .unwrap();
        assert_eq!(
            voter_facts(
                &no_upn.cert_der,
                &IdentityPolicy::dod_default(),
                Purpose::Authentication
            )
            .unwrap()
            .identity,
            VoterIdentity::Edipi("1111111111".into())
        );
        let conflict = ca
            .issue(&CertSpec {
                upn: Some("2222222222@mil".into()),
                ..cac_spec("DOE", "JOHN", "X", "1111111111", KeyAlg::P256, now())
            })
            .unwrap();
        assert_eq!(
            voter_facts(
                &conflict.cert_der,
                &IdentityPolicy::dod_default(),
                Purpose::Authentication
            ),
            Err(IdentityError::Conflict)
        );
        let nothing = ca
            .issue(&CertSpec {
                upn: Some("someone@example.mil".into()),
                subject: "CN=DOE.JOHN,OU=USN,OU=PKI,OU=DoD,O=U.S. Government,C=US".into(),
                ..cac_spec("DOE", "JOHN", "X", "1111111111", KeyAlg::P256, now())
            })
            .unwrap();
        assert!(matches!(
            voter_facts(
                &nothing.cert_der,
                &IdentityPolicy::dod_default(),
                Purpose::Authentication
            ),
            Err(IdentityError::NoIdentity(_))
        ));
    }

    #[test]
    fn accepts_every_dod_medium_hardware_level() {
        for p in [
            oid::DOD_MEDIUM_HARDWARE_112,
            oid::DOD_MEDIUM_HARDWARE_128,
            der::oid::ObjectIdentifier::new_unwrap(oids::DOD_MEDIUM_HARDWARE_192),
            der::oid::ObjectIdentifier::new_unwrap(oids::DOD_MEDIUM_HARDWARE),
        ] {
            let c = pki()
                .id_ca
                .issue(&CertSpec {
                    policies: vec![p],
                    ..cac_spec("DOE", "JOHN", "X", "1111111111", KeyAlg::P256, now())
                })
                .unwrap();
            voter_facts(
                &c.cert_der,
                &IdentityPolicy::dod_default(),
                Purpose::Authentication,
            )
            .unwrap();
        }
    }

    #[test]
    fn reads_a_county_voter_id_from_a_uri() {
        let policy = IdentityPolicy {
            accepted_policies: vec![oid::DEV_COUNTY_VOTER.to_string()],
            rule: IdentityRule::UriPrefix("urn:test-county:voter:".into()),
        };
        let f = voter_facts(
            &pki().voter("omar-county").unwrap().issued.cert_der,
            &policy,
            Purpose::Authentication,
        )
        .unwrap();
        assert_eq!(f.identity, VoterIdentity::County("TC-000123".into()));
        assert_eq!(f.identity.to_canonical(), "county:TC-000123");
        assert_eq!(
            VoterIdentity::parse_canonical("county:TC-000123"),
            Some(f.identity)
        );
        // The same certificate under DoD rules has no EDIPI and no DoD policy.
        assert!(voter_facts(
            &pki().voter("omar-county").unwrap().issued.cert_der,
            &IdentityPolicy::dod_default(),
            Purpose::Authentication,
        )
        .is_err());
    }

    #[test]
    fn canonical_identities_round_trip_and_refuse_junk() {
        let e = VoterIdentity::Edipi("1234567890".into());
        assert_eq!(VoterIdentity::parse_canonical(&e.to_canonical()), Some(e));
        for bad in [
            "edipi:123",
            "edipi:12345678901",
            "county:",
            "county:a/b",
            "1234567890",
        ] {
            assert_eq!(VoterIdentity::parse_canonical(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_garbage_and_trailing_bytes() {
        assert!(matches!(
            voter_facts(
                b"not a certificate",
                &IdentityPolicy::dod_default(),
                Purpose::Authentication
            ),
            Err(IdentityError::Malformed(_))
        ));
        let mut der = pki().voter("jane-p256").unwrap().issued.cert_der.clone();
        der.push(0);
        assert!(matches!(
            voter_facts(
                &der,
                &IdentityPolicy::dod_default(),
                Purpose::Authentication
            ),
            Err(IdentityError::Malformed(_))
        ));
    }
}
