//! The election manifest (DESIGN section 4): everything the gateway and
//! voters need to know about the election, signed with the election key.
//!
//! ```text
//! struct {
//!     opaque magic[17] = "ELECTION-MANIFEST";
//!     uint8  version = 2;
//!     opaque election_id<1..64>;            // identifier alphabet
//!     opaque title<1..512>;                 // UTF-8 text
//!     opaque jurisdiction<1..256>;          // UTF-8 text
//!     uint64 opens_at;                      // Unix seconds, UTC
//!     uint64 closes_at;                     // > opens_at
//!     opaque election_cert<1..2^16>;        // binary OpenPGP public certificate
//!     opaque gateway_transfer_fpr<64>;      // hex, uppercase
//!     opaque log_origin<1..255>;            // checkpoint origin = log key name
//!     opaque log_key<1..512>;               // C2SP verifier key, type 0x01
//!     opaque witness_key<1..512>;           // C2SP verifier key, type 0x04
//!     MediaRule accepted_media<1..16>;      // u8 count
//!     uint8  replacement_rule;              // 1 = latest valid before the deadline counts
//!     opaque declaration<1..4096>;          // the text voters accept
//!     Witness witnesses<1..16>;             // u8 count
//!     uint8  witness_quorum;                // 1..count
//!     uint32 grace_seconds;                 // 0..86400
//!     PinnedAnchor trust_anchors<1..16>;    // u8 count (version 3)
//! } ElectionManifest;
//! struct {
//!     opaque name<1..64>;                   // UTF-8 text, for reports
//!     opaque cert_sha256[32];               // SHA-256 of the anchor's DER
//!     opaque identity<1..255>;              // "edipi" | "uri-prefix:<prefix>"
//!     PolicyOid policies<1..16>;            // u8 count
//! } PinnedAnchor;
//! struct { opaque oid<1..64>; } PolicyOid;  // dotted decimal
//! struct { opaque media_type<1..127>; uint32 max_size; } MediaRule;
//! struct { opaque key<1..512>; opaque url<1..512>; } Witness;  // vkey type 0x04
//! ```
//!
//! It travels as a [`crate::signed`] document signed by the election key,
//! whose certificate must also be `election_cert`. Specification:
//! `docs/spec/election-manifest.md`.

use crate::ballot::check_media_type;
use crate::clock::UnixTime;
use crate::codec::{check_identifier, check_text, DecodeError, EncodeError, Reader, Writer};
use crate::note::NoteVerifier;
use crate::pgp;
use crate::signed::{open_document, DocumentError};
use crate::witness::{WitnessPolicy, MAX_WITNESSES};
use crate::x509::IdentityRule;
use sha2::{Digest, Sha256};

/// The magic string.
pub const MAGIC: &[u8; 17] = b"ELECTION-MANIFEST";
/// The version of this encoding (2 adds the witnesses, quorum and grace;
/// 3 pins the trust anchors).
pub const VERSION: u8 = 3;
/// The most trust anchors a manifest pins.
pub const MAX_ANCHORS: usize = 16;
/// The most accepted policies per anchor.
pub const MAX_POLICIES: usize = 16;
/// The longest grace period: a day.
pub const MAX_GRACE_SECONDS: u32 = 86_400;
/// The largest manifest body.
pub const MAX_MANIFEST: usize = 128 * 1024;

/// Which of a voter's ballots counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplacementRule {
    /// The latest valid ballot received before the deadline counts; the
    /// earlier ones are superseded (this also blunts coercion).
    LatestBeforeDeadline,
}

/// A media type voters may send, with its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRule {
    /// `type/subtype`.
    pub media_type: String,
    /// The largest marked ballot of this type, in bytes.
    pub max_size: u32,
}

/// A witness the county trusts, run by an observer: its cosigning key and
/// where the gateway submits checkpoints to it (C2SP tlog-witness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWitness {
    /// The witness's verifier key (C2SP vkey, type 0x04); its name is the
    /// witness's name.
    pub key: String,
    /// The submission prefix: `add-checkpoint` is appended.
    pub url: String,
}

/// A trust anchor the county accepts voter certificates under, pinned by
/// its certificate's hash, with the rules for the certificates under it.
/// The gateway's configuration must name exactly these, and the verifier
/// uses these and no others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedAnchor {
    /// A short name for logs and reports.
    pub name: String,
    /// SHA-256 of the anchor certificate's DER encoding.
    pub cert_sha256: [u8; 32],
    /// Where its voter certificates carry the voter's identity.
    pub identity: IdentityRule,
    /// The certificate policies (dotted OIDs) a voter certificate under it
    /// must assert, one of them at least.
    pub policies: Vec<String>,
}

impl PinnedAnchor {
    /// The hash in lowercase hex, as reports print it.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.cert_sha256)
    }

    /// Whether `policies` is the same set as this pin's.
    pub fn same_policies(&self, policies: &[String]) -> bool {
        let mut a: Vec<&str> = self.policies.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = policies.iter().map(String::as_str).collect();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        a == b
    }
}

/// Whether `s` is a dotted-decimal OID (at least two arcs, no leading
/// zeros, first arc 0..2).
pub fn is_dotted_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && s.len() <= 64
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a == &"0" || !a.starts_with('0'))
        })
        && matches!(arcs.first(), Some(&"0" | &"1" | &"2"))
}

/// The election manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionManifest {
    /// The election id.
    pub election_id: String,
    /// The title voters see.
    pub title: String,
    /// The county or state.
    pub jurisdiction: String,
    /// The first moment a ballot is accepted.
    pub opens_at: UnixTime,
    /// The deadline: ballots received after it do not count.
    pub closes_at: UnixTime,
    /// The election certificate (public, binary OpenPGP).
    pub election_cert: Vec<u8>,
    /// The gateway transfer key's fingerprint.
    pub gateway_transfer_fpr: String,
    /// The log's origin line.
    pub log_origin: String,
    /// The log's verifier key.
    pub log_key: String,
    /// The verifier's witness (cosigner) key.
    pub witness_key: String,
    /// Accepted media types.
    pub accepted_media: Vec<MediaRule>,
    /// The replacement rule.
    pub replacement_rule: ReplacementRule,
    /// The declaration text voters accept.
    pub declaration: String,
    /// The witnesses whose cosignatures make a checkpoint the county's word.
    pub witnesses: Vec<ManifestWitness>,
    /// How many of them must cosign a checkpoint.
    pub witness_quorum: u8,
    /// After the deadline, how long the closing checkpoint may take to be
    /// cosigned by a quorum (the tolerance of the time rule).
    pub grace_seconds: u32,
    /// The trust anchors for voter certificates.
    pub trust_anchors: Vec<PinnedAnchor>,
}

fn invalid(what: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidValue { what, reason }
}

impl ElectionManifest {
    /// Checks every rule the reader checks.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_identifier(&self.election_id, 64, "election id")?;
        check_text(&self.title, "title")?;
        check_text(&self.jurisdiction, "jurisdiction")?;
        if self.title.is_empty() || self.jurisdiction.is_empty() {
            return Err(invalid("title", "title and jurisdiction must not be empty"));
        }
        if self.closes_at <= self.opens_at {
            return Err(invalid(
                "closes_at",
                "the election must close after it opens",
            ));
        }
        if self.gateway_transfer_fpr.len() != 64
            || !self
                .gateway_transfer_fpr
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            return Err(invalid(
                "gateway transfer fingerprint",
                "must be 64 uppercase hex digits",
            ));
        }
        let log = NoteVerifier::from_vkey(&self.log_key)
            .map_err(|_| invalid("log key", "not a verifier key"))?;
        if log.sig_type() != crate::note::TYPE_ED25519 || log.name() != self.log_origin {
            return Err(invalid(
                "log key",
                "must be an Ed25519 note key named after the log origin",
            ));
        }
        let w = NoteVerifier::from_vkey(&self.witness_key)
            .map_err(|_| invalid("witness key", "not a verifier key"))?;
        if w.sig_type() != crate::note::TYPE_COSIGNATURE {
            return Err(invalid(
                "witness key",
                "must be a cosignature (type 0x04) key",
            ));
        }
        if self.accepted_media.is_empty() || self.accepted_media.len() > 16 {
            return Err(invalid("accepted media", "between 1 and 16 media types"));
        }
        for m in &self.accepted_media {
            check_media_type(&m.media_type)?;
            if m.max_size == 0 || m.max_size as usize > crate::ballot::MAX_CONTENT {
                return Err(invalid("accepted media", "a size limit is 1 byte to 8 MiB"));
            }
        }
        check_text(&self.declaration, "declaration")?;
        if self.declaration.is_empty() {
            return Err(invalid("declaration", "must not be empty"));
        }
        pgp::read_public_cert(&self.election_cert)
            .map_err(|_| invalid("election certificate", "not a public OpenPGP certificate"))?;
        self.validate_witnesses(&w)
    }

    fn validate_witnesses(&self, county: &NoteVerifier) -> Result<(), DecodeError> {
        if self.witnesses.is_empty() || self.witnesses.len() > MAX_WITNESSES {
            return Err(invalid("witnesses", "between 1 and 16 witnesses"));
        }
        let mut names = vec![county.name().to_owned()];
        for w in &self.witnesses {
            let k = NoteVerifier::from_vkey(&w.key)
                .map_err(|_| invalid("witness", "not a verifier key"))?;
            if k.sig_type() != crate::note::TYPE_COSIGNATURE {
                return Err(invalid("witness", "must be a cosignature (type 0x04) key"));
            }
            if names.iter().any(|n| n == k.name()) {
                return Err(invalid("witness", "two witnesses with one name"));
            }
            names.push(k.name().to_owned());
            let url_ok = (w.url.starts_with("https://") || w.url.starts_with("http://"))
                && w.url.len() <= 512
                && w.url.bytes().all(|b| b.is_ascii_graphic());
            if !url_ok {
                return Err(invalid("witness", "the URL must be http(s) without spaces"));
            }
        }
        if self.witness_quorum == 0 || usize::from(self.witness_quorum) > self.witnesses.len() {
            return Err(invalid(
                "witness quorum",
                "between 1 and the number of witnesses",
            ));
        }
        if self.grace_seconds > MAX_GRACE_SECONDS {
            return Err(invalid("grace", "at most a day"));
        }
        self.validate_anchors()
    }

    fn validate_anchors(&self) -> Result<(), DecodeError> {
        if self.trust_anchors.is_empty() || self.trust_anchors.len() > MAX_ANCHORS {
            return Err(invalid("trust anchors", "between 1 and 16 anchors"));
        }
        for (i, a) in self.trust_anchors.iter().enumerate() {
            check_text(&a.name, "anchor name")?;
            if a.name.is_empty() || a.name.len() > 64 {
                return Err(invalid("anchor name", "1 to 64 bytes"));
            }
            if let IdentityRule::UriPrefix(p) = &a.identity {
                // A URI prefix: printable ASCII without spaces (RFC 3986).
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        "anchor identity rule",
                        "a URI prefix is printable ASCII without spaces",
                    ));
                }
                if a.identity.to_string().len() > 255 {
                    return Err(invalid("anchor identity rule", "at most 255 bytes"));
                }
            }
            if a.policies.is_empty() || a.policies.len() > MAX_POLICIES {
                return Err(invalid("anchor policies", "between 1 and 16 policies"));
            }
            if !a.policies.iter().all(|p| is_dotted_oid(p)) {
                return Err(invalid("anchor policies", "not a dotted-decimal OID"));
            }
            if self
                .trust_anchors
                .iter()
                .take(i)
                .any(|b| b.cert_sha256 == a.cert_sha256)
            {
                return Err(invalid("trust anchors", "one certificate pinned twice"));
            }
        }
        Ok(())
    }

    /// The pin of the anchor certificate `der`, if it is pinned.
    pub fn pinned_anchor(&self, der: &[u8]) -> Option<&PinnedAnchor> {
        let h: [u8; 32] = Sha256::digest(der).into();
        self.trust_anchors.iter().find(|a| a.cert_sha256 == h)
    }

    /// The rule a checkpoint must meet to be the county's word.
    pub fn witness_policy(&self) -> Result<WitnessPolicy, DecodeError> {
        let log_key = NoteVerifier::from_vkey(&self.log_key)
            .map_err(|_| invalid("log key", "not a verifier key"))?;
        let witnesses = self
            .witnesses
            .iter()
            .map(|w| NoteVerifier::from_vkey(&w.key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("witness", "not a verifier key"))?;
        Ok(WitnessPolicy {
            log_key,
            witnesses,
            quorum: usize::from(self.witness_quorum),
        })
    }

    /// The deadline plus the grace: the latest quorum time a closing
    /// checkpoint may have.
    pub fn closing_bound(&self) -> UnixTime {
        UnixTime(
            self.closes_at
                .0
                .saturating_add(u64::from(self.grace_seconds)),
        )
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        self.validate().map_err(|_| EncodeError {
            what: "election manifest",
            len: 0,
            max: 0,
        })?;
        let mut w = Writer::new();
        w.raw(MAGIC);
        w.u8(VERSION);
        w.vec8(self.election_id.as_bytes(), 64, "election id")?;
        w.vec16(self.title.as_bytes(), 512, "title")?;
        w.vec16(self.jurisdiction.as_bytes(), 256, "jurisdiction")?;
        w.u64(self.opens_at.0);
        w.u64(self.closes_at.0);
        w.vec32(
            &self.election_cert,
            pgp::MAX_CERT_LEN,
            "election certificate",
        )?;
        w.vec8(
            self.gateway_transfer_fpr.as_bytes(),
            64,
            "gateway transfer fingerprint",
        )?;
        w.vec8(self.log_origin.as_bytes(), 255, "log origin")?;
        w.vec16(self.log_key.as_bytes(), 512, "log key")?;
        w.vec16(self.witness_key.as_bytes(), 512, "witness key")?;
        w.u8(self.accepted_media.len() as u8);
        for m in &self.accepted_media {
            w.vec8(m.media_type.as_bytes(), 127, "media type")?;
            w.u32(m.max_size);
        }
        w.u8(match self.replacement_rule {
            ReplacementRule::LatestBeforeDeadline => 1,
        });
        w.vec16(
            self.declaration.as_bytes(),
            crate::ballot::MAX_DECLARATION,
            "declaration",
        )?;
        w.u8(self.witnesses.len() as u8);
        for x in &self.witnesses {
            w.vec16(x.key.as_bytes(), 512, "witness key")?;
            w.vec16(x.url.as_bytes(), 512, "witness URL")?;
        }
        w.u8(self.witness_quorum);
        w.u32(self.grace_seconds);
        w.u8(self.trust_anchors.len() as u8);
        for a in &self.trust_anchors {
            w.vec8(a.name.as_bytes(), 64, "anchor name")?;
            w.raw(&a.cert_sha256);
            w.vec8(
                a.identity.to_string().as_bytes(),
                255,
                "anchor identity rule",
            )?;
            w.u8(a.policies.len() as u8);
            for p in &a.policies {
                w.vec8(p.as_bytes(), 64, "anchor policy")?;
            }
        }
        Ok(w.into_bytes())
    }

    /// Reads the canonical encoding; refuses anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic(MAGIC, "election manifest")?;
        r.version(VERSION, "election manifest")?;
        let election_id = r.string8(64, "election id")?.to_owned();
        let title = r.string16(512, "title")?.to_owned();
        let jurisdiction = r.string16(256, "jurisdiction")?.to_owned();
        let opens_at = UnixTime(r.u64("opens_at")?);
        let closes_at = UnixTime(r.u64("closes_at")?);
        let election_cert = r.vec32(pgp::MAX_CERT_LEN, "election certificate")?.to_vec();
        let gateway_transfer_fpr = r.string8(64, "gateway transfer fingerprint")?.to_owned();
        let log_origin = r.string8(255, "log origin")?.to_owned();
        let log_key = r.string16(512, "log key")?.to_owned();
        let witness_key = r.string16(512, "witness key")?.to_owned();
        let n = r.u8("accepted media count")?;
        let mut accepted_media = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let media_type = r.string8(127, "media type")?.to_owned();
            let max_size = r.u32("media size limit")?;
            accepted_media.push(MediaRule {
                media_type,
                max_size,
            });
        }
        let replacement_rule = match r.u8("replacement rule")? {
            1 => ReplacementRule::LatestBeforeDeadline,
            _ => return Err(invalid("replacement rule", "unknown rule")),
        };
        let declaration = r
            .string16(crate::ballot::MAX_DECLARATION, "declaration")?
            .to_owned();
        let n = r.u8("witness count")?;
        let mut witnesses = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let key = r.string16(512, "witness key")?.to_owned();
            let url = r.string16(512, "witness URL")?.to_owned();
            witnesses.push(ManifestWitness { key, url });
        }
        let witness_quorum = r.u8("witness quorum")?;
        let grace_seconds = r.u32("grace")?;
        let n = r.u8("trust anchor count")?;
        let mut trust_anchors = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let name = r.string8(64, "anchor name")?.to_owned();
            let cert_sha256 = r.array::<32>("anchor certificate hash")?;
            let identity = r
                .string8(255, "anchor identity rule")?
                .parse()
                .map_err(|_| invalid("anchor identity rule", "not edipi or uri-prefix:<prefix>"))?;
            let k = r.u8("anchor policy count")?;
            let mut policies = Vec::with_capacity(usize::from(k));
            for _ in 0..k {
                policies.push(r.string8(64, "anchor policy")?.to_owned());
            }
            trust_anchors.push(PinnedAnchor {
                name,
                cert_sha256,
                identity,
                policies,
            });
        }
        r.finish("election manifest")?;
        let m = ElectionManifest {
            election_id,
            title,
            jurisdiction,
            opens_at,
            closes_at,
            election_cert,
            gateway_transfer_fpr,
            log_origin,
            log_key,
            witness_key,
            accepted_media,
            replacement_rule,
            declaration,
            witnesses,
            witness_quorum,
            grace_seconds,
            trust_anchors,
        };
        m.validate()?;
        Ok(m)
    }

    /// The size limit for a media type, if it is accepted.
    pub fn media_limit(&self, media_type: &str) -> Option<u32> {
        self.accepted_media
            .iter()
            // RFC 6838 section 4.2: type and subtype names are
            // case-insensitive.
            .find(|m| m.media_type.eq_ignore_ascii_case(media_type))
            .map(|m| m.max_size)
    }

    /// Opens a signed manifest: the signer must be the pinned election key,
    /// and the manifest's election certificate must be that same key.
    pub fn open_signed(bytes: &[u8], election_fingerprint: &str) -> Result<Self, DocumentError> {
        let (cert, body) = open_document(bytes, election_fingerprint, MAX_MANIFEST)?;
        let m = ElectionManifest::from_bytes(&body)?;
        let inner = pgp::read_public_cert(&m.election_cert)?;
        if inner.fingerprint() != cert.fingerprint() {
            return Err(DocumentError::WrongSigner {
                expected: pgp::fingerprint_hex(&inner),
                found: pgp::fingerprint_hex(&cert),
            });
        }
        Ok(m)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::note::{NoteSigner, TYPE_COSIGNATURE, TYPE_ED25519};
    use sequoia_openpgp::Cert;

    pub(crate) fn election_key() -> &'static Cert {
        static K: std::sync::OnceLock<Cert> = std::sync::OnceLock::new();
        K.get_or_init(|| pgp::generate_election_key("Test County Election", None).unwrap())
    }

    #[test]
    fn media_types_compare_without_case_as_rfc_6838_says() {
        let m = sample();
        let limit = m.media_limit("application/pdf");
        assert!(limit.is_some());
        assert_eq!(m.media_limit("Application/PDF"), limit);
        assert_eq!(m.media_limit("APPLICATION/pdf"), limit);
        assert_eq!(m.media_limit("application/pdfx"), None);
        assert_eq!(m.media_limit("text/pdf"), None);
    }

    pub(crate) fn sample() -> ElectionManifest {
        let origin = "ballots.test-county.example/2026-general";
        ElectionManifest {
            election_id: "2026-general".into(),
            title: "General Election, November 3, 2026".into(),
            jurisdiction: "Test County".into(),
            opens_at: UnixTime(1_790_000_000),
            closes_at: UnixTime(1_793_732_400),
            election_cert: pgp::public_bytes(election_key()).unwrap(),
            gateway_transfer_fpr: "A".repeat(64),
            log_origin: origin.into(),
            log_key: NoteSigner::generate(origin, TYPE_ED25519)
                .unwrap()
                .verifier()
                .to_vkey(),
            witness_key: NoteSigner::generate("county.example/witness", TYPE_COSIGNATURE)
                .unwrap()
                .verifier()
                .to_vkey(),
            accepted_media: vec![MediaRule {
                media_type: crate::ballot::MEDIA_PDF.into(),
                max_size: 5 * 1024 * 1024,
            }],
            replacement_rule: ReplacementRule::LatestBeforeDeadline,
            declaration: "I swear or affirm that I am eligible to vote in this election.".into(),
            witnesses: (1..=3)
                .map(|i| ManifestWitness {
                    key: NoteSigner::generate(&format!("observer-{i}.example/w"), TYPE_COSIGNATURE)
                        .unwrap()
                        .verifier()
                        .to_vkey(),
                    url: format!("https://observer-{i}.example/witness/"),
                })
                .collect(),
            witness_quorum: 2,
            grace_seconds: 600,
            trust_anchors: vec![
                PinnedAnchor {
                    name: "DoD Root CA 6".into(),
                    cert_sha256: [6; 32],
                    identity: IdentityRule::Edipi,
                    policies: vec!["2.16.840.1.101.2.1.11.9".into()],
                },
                PinnedAnchor {
                    name: "Test County Voter CA".into(),
                    cert_sha256: [7; 32],
                    identity: IdentityRule::UriPrefix("urn:test-county:voter:".into()),
                    policies: vec!["1.3.6.1.4.1.99999.1".into()],
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_opens_against_the_pinned_key() {
        let m = sample();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(ElectionManifest::from_bytes(&bytes).unwrap(), m);
        let signed = crate::signed::sign_document(&bytes, election_key(), None).unwrap();
        let fp = pgp::fingerprint_hex(election_key());
        assert_eq!(ElectionManifest::open_signed(&signed, &fp).unwrap(), m);
        assert_eq!(m.media_limit("application/pdf"), Some(5 * 1024 * 1024));
        assert_eq!(m.media_limit("image/png"), None);
    }

    #[test]
    fn refuses_a_manifest_signed_by_a_key_other_than_its_election_key() {
        let other = pgp::generate_election_key("Impostor", None).unwrap();
        let signed =
            crate::signed::sign_document(&sample().to_bytes().unwrap(), &other, None).unwrap();
        assert!(ElectionManifest::open_signed(&signed, &pgp::fingerprint_hex(&other)).is_err());
        assert!(
            ElectionManifest::open_signed(&signed, &pgp::fingerprint_hex(election_key())).is_err()
        );
    }

    #[test]
    fn refuses_invalid_manifests() {
        let cases = [
            ElectionManifest {
                closes_at: UnixTime(1_790_000_000),
                ..sample()
            },
            ElectionManifest {
                election_id: "bad id".into(),
                ..sample()
            },
            ElectionManifest {
                gateway_transfer_fpr: "abc".into(),
                ..sample()
            },
            ElectionManifest {
                log_origin: "another.example/log".into(),
                ..sample()
            },
            ElectionManifest {
                witness_key: sample().log_key,
                ..sample()
            },
            ElectionManifest {
                accepted_media: vec![],
                ..sample()
            },
            ElectionManifest {
                declaration: String::new(),
                ..sample()
            },
            ElectionManifest {
                election_cert: b"junk".to_vec(),
                ..sample()
            },
            ElectionManifest {
                witnesses: vec![],
                witness_quorum: 0,
                ..sample()
            },
            ElectionManifest {
                witness_quorum: 0,
                ..sample()
            },
            ElectionManifest {
                witness_quorum: 4,
                ..sample()
            },
            ElectionManifest {
                grace_seconds: MAX_GRACE_SECONDS + 1,
                ..sample()
            },
            ElectionManifest {
                witnesses: vec![sample().witnesses[0].clone(), sample().witnesses[0].clone()],
                ..sample()
            },
            ElectionManifest {
                witnesses: vec![ManifestWitness {
                    key: sample().log_key,
                    url: "https://w.example/".into(),
                }],
                witness_quorum: 1,
                ..sample()
            },
            ElectionManifest {
                witnesses: vec![ManifestWitness {
                    url: "ftp://w.example/".into(),
                    ..sample().witnesses[0].clone()
                }],
                witness_quorum: 1,
                ..sample()
            },
        ];
        let pin = |f: &dyn Fn(&mut PinnedAnchor)| {
            let mut m = sample();
            if let Some(a) = m.trust_anchors.first_mut() {
                f(a);
            }
            m
        };
        let anchor_cases = [
            ElectionManifest {
                trust_anchors: vec![],
                ..sample()
            },
            ElectionManifest {
                trust_anchors: vec![sample().trust_anchors[0].clone(); 2],
                ..sample()
            },
            pin(&|a| a.policies.clear()),
            pin(&|a| a.policies = vec!["2.16.840.01".into()]),
            pin(&|a| a.policies = vec!["7.1".into()]),
            pin(&|a| a.policies = vec!["1".into()]),
            pin(&|a| a.policies = vec!["1.2.".into()]),
            pin(&|a| a.name = String::new()),
            pin(&|a| a.name = "x".repeat(65)),
            pin(&|a| a.identity = IdentityRule::UriPrefix("a\nb".into())),
        ];
        for m in cases.into_iter().chain(anchor_cases) {
            assert!(
                m.to_bytes().is_err(),
                "{:?} {:?}",
                m.election_id,
                m.trust_anchors
            );
        }
        let good = sample().to_bytes().unwrap();
        let mut trailing = good.clone();
        trailing.push(1);
        assert!(ElectionManifest::from_bytes(&trailing).is_err());
        let mut version = good.clone();
        version[MAGIC.len()] = 9;
        assert!(matches!(
            ElectionManifest::from_bytes(&version),
            Err(DecodeError::UnknownVersion { .. })
        ));
        assert!(ElectionManifest::from_bytes(&good[..good.len() - 3]).is_err());
    }
}
