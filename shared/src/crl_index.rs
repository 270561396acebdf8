//! A CRL read for revocation checks without ever holding it parsed whole.
//! DoD CRLs list hundreds of thousands of certificates (a 35 MB file for a
//! million entries); parsing one with `CertificateRevocationList::from_der`
//! allocates several objects per entry (about 250 MB at the peak for that
//! file) and keeping a map of owned serials costs over 100 MB more. Here
//! the DER is walked with asn1-rs, each entry is parsed on its own by
//! x509-parser's `RevokedCertificate` and dropped, and what revocation
//! needs is kept in a sorted vector of 28-byte records.

use crate::pki::ChainError;
use x509_parser::asn1_rs::{Any, BitString, Tag};
use x509_parser::prelude::{ASN1Time, FromDer, X509Extension, X509Name};
use x509_parser::revocation_list::RevokedCertificate;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// CRLReason keyCompromise and certificateHold (RFC 5280 section 5.3.1).
const KEY_COMPROMISE: u8 = 1;
const CERTIFICATE_HOLD: u8 = 6;
/// Extensions by OID.
const CRL_NUMBER: &str = "2.5.29.20";
const AUTHORITY_KEY_ID: &str = "2.5.29.35";
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const FRESHEST_CRL: &str = "2.5.29.46";
const REASON_CODE: &str = "2.5.29.21";
const INVALIDITY_DATE: &str = "2.5.29.24";
/// RFC 5280 section 4.1.2.2: serial numbers are at most 20 octets.
const SERIAL_MAX: usize = 20;
/// Records per block of the two-level search.
const FENCE: usize = 128;

/// One listed certificate, in 28 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    /// The serial's content octets, left-aligned, zero-padded.
    serial: [u8; SERIAL_MAX],
    /// How many of them are the serial.
    len: u8,
    /// certificateHold.
    on_hold: bool,
    /// When it stopped counting (Unix seconds, clamped to u32).
    from: u32,
}

/// One listed certificate, as revocation checks read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// When it stopped counting: the revocationDate, or for keyCompromise
    /// an earlier invalidityDate (Unix seconds).
    pub(crate) from: i64,
    /// certificateHold: a suspension a later CRL may lift.
    pub(crate) on_hold: bool,
}

/// What revocation checks need of one CRL.
#[derive(Debug)]
pub(crate) struct CrlIndex {
    /// The issuer's name, DER.
    pub(crate) issuer_raw: Vec<u8>,
    /// The issuer's name, for messages.
    pub(crate) issuer: String,
    pub(crate) this_update: i64,
    pub(crate) next_update: Option<i64>,
    /// cRLNumber (big-endian content octets).
    pub(crate) number: Vec<u8>,
    /// It names a delta CRL (Freshest CRL).
    pub(crate) points_to_delta: bool,
    records: Vec<Record>,
    /// Every `FENCE`th record's key: searched first (it fits in the CPU's
    /// cache), it narrows the search to one block of `FENCE` records.
    fences: Vec<([u8; SERIAL_MAX], u8)>,
    /// Serials longer than RFC 5280 allows (kept, not dropped).
    long: Vec<(Vec<u8>, Entry)>,
}

/// The parts of a CRL's outer structure.
pub(crate) struct Signed<'a> {
    /// The DER of TBSCertList (what the signature covers).
    pub(crate) tbs: &'a [u8],
    algorithm: AlgorithmIdentifier<'a>,
    signature: BitString<'a>,
}

impl Signed<'_> {
    /// Whether the signature verifies with `key`.
    pub(crate) fn verifies_with(&self, key: &SubjectPublicKeyInfo<'_>) -> bool {
        x509_parser::verify::verify_signature(key, &self.algorithm, &self.signature, self.tbs)
            .is_ok()
    }
}

fn malformed(what: impl std::fmt::Display) -> ChainError {
    ChainError::Malformed(format!("CRL: {what}"))
}

/// One DER element of `input`: it and the bytes after it.
fn element(input: &[u8]) -> Result<(Any<'_>, &[u8], &[u8]), ChainError> {
    let (rest, any) = Any::from_der(input).map_err(malformed)?;
    let raw = input
        .get(..input.len() - rest.len())
        .ok_or_else(|| malformed("bad length"))?;
    Ok((any, raw, rest))
}

fn secs(t: ASN1Time) -> i64 {
    t.timestamp()
}

/// Splits a CRL into what its signature covers and the signature.
pub(crate) fn signed(der: &[u8]) -> Result<Signed<'_>, ChainError> {
    let (outer, _, rest) = element(der)?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    if outer.tag() != Tag::Sequence {
        return Err(malformed("not a SEQUENCE"));
    }
    let (_, tbs, rest) = element(outer.data)?;
    let (rest, algorithm) = AlgorithmIdentifier::from_der(rest).map_err(malformed)?;
    let (rest, signature) = BitString::from_der(rest).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after the signature"));
    }
    Ok(Signed {
        tbs,
        algorithm,
        signature,
    })
}

/// The issuer's name (DER) of a CRL, read without its entries.
pub(crate) fn issuer_raw(der: &[u8]) -> Result<&[u8], ChainError> {
    let s = signed(der)?;
    let (tbs, _, _) = element(s.tbs)?;
    let mut rest = tbs.data;
    let (first, _, after) = element(rest)?;
    if first.tag() == Tag::Integer {
        rest = after;
    }
    let (_, _, after) = element(rest)?; // signature AlgorithmIdentifier
    let (_, raw, _) = element(after)?;
    Ok(raw)
}

impl CrlIndex {
    /// Reads `der`: refuses a delta CRL by name, a critical extension not
    /// understood (a partitioned CRL), a critical entry extension, and a
    /// CRL without a non-critical cRLNumber.
    pub(crate) fn new(der: &[u8]) -> Result<Self, ChainError> {
        let s = signed(der)?;
        let (tbs, _, _) = element(s.tbs)?;
        if tbs.tag() != Tag::Sequence {
            return Err(malformed("TBSCertList is not a SEQUENCE"));
        }
        let mut rest = tbs.data;
        // version (v2), optional.
        let (first, _, after) = element(rest)?;
        if first.tag() == Tag::Integer {
            rest = after;
        }
        let (_, _, after) = element(rest)?; // signature AlgorithmIdentifier
        rest = after;
        let (after, issuer) = X509Name::from_der(rest).map_err(malformed)?;
        let issuer_raw = issuer.as_raw().to_vec();
        let issuer_text = issuer.to_string();
        rest = after;
        let (after, this_update) = ASN1Time::from_der(rest).map_err(malformed)?;
        rest = after;
        let mut next_update = None;
        if let Ok((any, _, _)) = element(rest) {
            if matches!(any.tag(), Tag::UtcTime | Tag::GeneralizedTime) {
                let (after, t) = ASN1Time::from_der(rest).map_err(malformed)?;
                next_update = Some(secs(t));
                rest = after;
            }
        }
        let mut revoked: &[u8] = &[];
        if !rest.is_empty() {
            let (any, _, after) = element(rest)?;
            if any.tag() == Tag::Sequence {
                revoked = any.data;
                rest = after;
            }
        }
        let mut number = None;
        let mut points_to_delta = false;
        if !rest.is_empty() {
            let (wrapper, _, after) = element(rest)?;
            if !after.is_empty() || wrapper.header.raw_tag() != Some(&[0xa0]) {
                return Err(malformed("unexpected field after the revoked certificates"));
            }
            let (list, _, after) = element(wrapper.data)?;
            if !after.is_empty() || list.tag() != Tag::Sequence {
                return Err(malformed("bad crlExtensions"));
            }
            let mut exts = list.data;
            while !exts.is_empty() {
                let (after, ext) = X509Extension::from_der(exts).map_err(malformed)?;
                exts = after;
                let oid = ext.oid.to_id_string();
                match oid.as_str() {
                    DELTA_CRL_INDICATOR => {
                        return Err(malformed(format!(
                            "a delta CRL from {issuer_text} (deltaCRLIndicator): delta CRLs are not applied; bring the complete CRL"
                        )))
                    }
                    CRL_NUMBER if ext.critical => {
                        return Err(malformed("its cRLNumber is marked critical"))
                    }
                    CRL_NUMBER => {
                        let (_, n) = Any::from_der(ext.value).map_err(malformed)?;
                        number = Some(n.data.to_vec());
                    }
                    FRESHEST_CRL => points_to_delta = true,
                    AUTHORITY_KEY_ID => {}
                    _ if ext.critical => {
                        return Err(malformed(format!(
                            "an unsupported critical extension {oid}"
                        )))
                    }
                    _ => {}
                }
            }
        }
        let number = number.ok_or_else(|| malformed("no cRLNumber"))?;
        // A DER entry takes at least ~30 bytes; reserve so that the vector
        // is not reallocated (and briefly doubled) while it fills.
        let mut records = Vec::with_capacity(revoked.len() / 30 + 1);
        let mut long = Vec::new();
        let mut list = revoked;
        while !list.is_empty() {
            let (after, r) = RevokedCertificate::from_der(list).map_err(malformed)?;
            list = after;
            let mut reason = None;
            let mut invalidity = None;
            for e in r.extensions() {
                if e.critical {
                    return Err(malformed("an entry has a critical extension"));
                }
                match e.oid.to_id_string().as_str() {
                    REASON_CODE => {
                        if let x509_parser::extensions::ParsedExtension::ReasonCode(c) =
                            e.parsed_extension()
                        {
                            reason = Some(c.0);
                        }
                    }
                    INVALIDITY_DATE => {
                        if let x509_parser::extensions::ParsedExtension::InvalidityDate(t) =
                            e.parsed_extension()
                        {
                            invalidity = Some(secs(*t));
                        }
                    }
                    _ => {}
                }
            }
            let revocation = secs(r.revocation_date);
            // RFC 5280 section 5.3.2: for a compromised key, anything it
            // signed since the invalidityDate is suspect.
            let from = match (reason, invalidity) {
                (Some(KEY_COMPROMISE), Some(i)) => i.min(revocation),
                _ => revocation,
            };
            let entry = Entry {
                from,
                on_hold: reason == Some(CERTIFICATE_HOLD),
            };
            let serial = r.raw_serial();
            if serial.len() <= SERIAL_MAX {
                let mut key = [0u8; SERIAL_MAX];
                if let Some(dst) = key.get_mut(..serial.len()) {
                    dst.copy_from_slice(serial);
                }
                records.push(Record {
                    serial: key,
                    len: serial.len() as u8,
                    on_hold: entry.on_hold,
                    from: u32::try_from(from.max(0)).unwrap_or(u32::MAX),
                });
            } else {
                long.push((serial.to_vec(), entry));
            }
        }
        // Sorted by serial, then earliest first: a serial listed twice
        // counts from its earliest moment.
        records.sort_unstable_by_key(|r| (r.serial, r.len, r.from));
        records.dedup_by(|later, first| later.serial == first.serial && later.len == first.len);
        records.shrink_to_fit();
        let fences = records
            .iter()
            .step_by(FENCE)
            .map(|r| (r.serial, r.len))
            .collect();
        Ok(CrlIndex {
            issuer_raw,
            issuer: issuer_text,
            this_update: secs(this_update),
            next_update,
            number,
            points_to_delta,
            records,
            fences,
            long,
        })
    }

    /// How many certificates it lists.
    pub(crate) fn len(&self) -> usize {
        self.records.len() + self.long.len()
    }

    /// The entry for `serial` (DER content octets), if listed.
    pub(crate) fn get(&self, serial: &[u8]) -> Option<Entry> {
        if serial.len() > SERIAL_MAX {
            return self
                .long
                .iter()
                .filter(|(s, _)| s == serial)
                .map(|(_, e)| *e)
                .min_by_key(|e| e.from);
        }
        let mut key = [0u8; SERIAL_MAX];
        key.get_mut(..serial.len())?.copy_from_slice(serial);
        let len = serial.len() as u8;
        // The block whose first key is the last one <= the serial, then
        // the record within it.
        let block = self.fences.partition_point(|f| *f <= (key, len));
        let start = block.saturating_sub(1) * FENCE;
        let end = (start + FENCE).min(self.records.len());
        let i = start
            + self
                .records
                .get(start..end)?
                .partition_point(|r| (r.serial, r.len) < (key, len));
        let r = self
            .records
            .get(i)
            .filter(|r| r.serial == key && r.len == len)?;
        Some(Entry {
            from: i64::from(r.from),
            on_hold: r.on_hold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_serial_is_found_across_blocks_and_no_other() {
        let now = time::OffsetDateTime::now_utc();
        let ca = devpki::Ca::new_root(&devpki::CertSpec {
            ca: Some(None),
            ..devpki::CertSpec::leaf("CN=Index CA", devpki::KeyAlg::P256, now, 30)
        })
        .unwrap();
        // Serials of 1 to 20 octets, positive, in no particular order.
        let serial = |i: u32| -> Vec<u8> {
            let len = 1 + (i as usize * 7) % 20;
            let mut s: Vec<u8> = (0..len)
                .map(|k| (i.wrapping_mul(2_654_435_761).rotate_left(k as u32 * 3) & 0x7f) as u8)
                .collect();
            s[0] |= 0x01; // no leading zero octet
            s
        };
        let listed: Vec<Vec<u8>> = (0..1000).map(|i| serial(i * 2)).collect();
        let entries: Vec<devpki::CrlEntry<'_>> = listed
            .iter()
            .enumerate()
            .map(|(i, s)| devpki::CrlEntry::new(s, now - time::Duration::seconds(i as i64 + 1)))
            .collect();
        let der = ca
            .crl_with(
                1,
                &entries,
                now - time::Duration::hours(1),
                now + time::Duration::days(1),
                devpki::CrlKind::Complete,
            )
            .unwrap();
        let index = CrlIndex::new(&der).unwrap();
        assert!(index.len() <= 1000 && index.fences.len() > 2);
        for (i, s) in listed.iter().enumerate() {
            let e = index
                .get(s)
                .unwrap_or_else(|| panic!("serial {i} not found"));
            // Serials listed twice (equal by chance) keep the earliest time.
            assert!(e.from <= (now - time::Duration::seconds(i as i64 + 1)).unix_timestamp());
        }
        for i in 0..1000 {
            let s = serial(i * 2 + 1);
            if !listed.contains(&s) {
                assert!(index.get(&s).is_none(), "{s:?} is not listed");
            }
        }
        assert!(index.get(&[0x7f; 21]).is_none());
    }
}
