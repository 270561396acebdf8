//! The status file (DESIGN section 7): the verifier's decision on every
//! logged ballot, with the final checkpoint cosigned by the verifier's
//! witness key, signed with the election key (as a [`crate::signed`]
//! document). It tells each voter what became of their ballot without
//! revealing any vote.
//!
//! ```text
//! struct {
//!     opaque magic[13] = "BALLOT-STATUS";
//!     uint8  version = 2;
//!     opaque election_id<1..64>;
//!     opaque checkpoint<1..2^14>;     // signed note with the log's signature
//!                                     // and the verifier's tlog-cosignature
//!     uint64 count;                   // = the checkpoint's tree size
//!     StatusEntry entries[count];     // leaf 0, 1, 2, ... in order
//! } StatusFile;
//! struct { uint64 leaf_index; uint8 status; uint8 reason; } StatusEntry;
//! ```
//!
//! `status`: 2 rejected, 4 valid. `reason` is 0 unless the ballot was
//! rejected, then one of [`Reason`]. The file does not say which valid
//! ballot counted: a voter's latest valid ballot does, and a vote buyer
//! holding the receipt of an earlier one cannot tell that it was replaced
//! (`docs/threat-model.md`). Codes 1 (accepted) and 3 (superseded) were
//! version 1's and are refused. Specification: `docs/spec/status-file.md`.

use crate::codec::{check_identifier, DecodeError, EncodeError, Reader, Writer};
use crate::signed::{open_document, DocumentError};

/// The magic string.
pub const MAGIC: &[u8; 13] = b"BALLOT-STATUS";
/// The version of this encoding.
pub const VERSION: u8 = 2;
/// The most entries.
pub const MAX_ENTRIES: u64 = 10_000_000;

/// Why a ballot was rejected. The numbers are part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The ciphertext could not be decrypted with the election key.
    DecryptionFailed = 1,
    /// The voter signature (CMS) is malformed or does not verify.
    BadSignature = 2,
    /// The signer's certificate does not chain to a trust anchor, or had
    /// expired when the ballot was received.
    CertificateInvalid = 3,
    /// The signer's certificate was revoked before the ballot was received.
    CertificateRevoked = 4,
    /// The signer is not the voter whose client certificate uploaded it.
    SignerNotUploader = 5,
    /// The voter is not on the roster.
    NotOnRoster = 6,
    /// The ballot style is not the voter's.
    WrongBallotStyle = 7,
    /// The ballot is for another election.
    WrongElection = 8,
    /// Received after the deadline.
    AfterDeadline = 9,
    /// Received before the election opened.
    BeforeOpening = 10,
    /// The ballot package is malformed.
    MalformedPackage = 11,
    /// The media type is not accepted, or the ballot is over its limit.
    MediaNotAccepted = 12,
    /// The declaration is not the one in the election manifest.
    DeclarationMismatch = 13,
    /// Gateway misbehaviour: the same ciphertext, or the same ballot
    /// package (its nonce), is at an earlier leaf; this is the copy.
    Replayed = 14,
    /// Gateway misbehaviour (or a voter handing a signed ballot to
    /// another): the ballot is signed by a voter on the roster, but the
    /// gateway recorded another voter as its uploader.
    UploadedAsAnotherVoter = 15,
    /// Opening the ballot (decryption, the signature, the package) took
    /// longer than the verifier's limit: a ballot built to stall the
    /// canvass, or a fault. The board is told.
    TookTooLong = 16,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 16] = [
        Reason::DecryptionFailed,
        Reason::BadSignature,
        Reason::CertificateInvalid,
        Reason::CertificateRevoked,
        Reason::SignerNotUploader,
        Reason::NotOnRoster,
        Reason::WrongBallotStyle,
        Reason::WrongElection,
        Reason::AfterDeadline,
        Reason::BeforeOpening,
        Reason::MalformedPackage,
        Reason::MediaNotAccepted,
        Reason::DeclarationMismatch,
        Reason::Replayed,
        Reason::UploadedAsAnotherVoter,
        Reason::TookTooLong,
    ];

    /// The code in the status file.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason with a code.
    pub fn from_code(code: u8) -> Option<Self> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A stable short name (`bad-signature`), for CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Reason::DecryptionFailed => "decryption-failed",
            Reason::BadSignature => "bad-signature",
            Reason::CertificateInvalid => "certificate-invalid",
            Reason::CertificateRevoked => "certificate-revoked",
            Reason::SignerNotUploader => "signer-not-uploader",
            Reason::NotOnRoster => "not-on-roster",
            Reason::WrongBallotStyle => "wrong-ballot-style",
            Reason::WrongElection => "wrong-election",
            Reason::AfterDeadline => "after-deadline",
            Reason::BeforeOpening => "before-opening",
            Reason::MalformedPackage => "malformed-package",
            Reason::MediaNotAccepted => "media-not-accepted",
            Reason::DeclarationMismatch => "declaration-mismatch",
            Reason::Replayed => "replayed",
            Reason::UploadedAsAnotherVoter => "uploaded-as-another-voter",
            Reason::TookTooLong => "took-too-long",
        }
    }

    /// A sentence for voters and the canvass board.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::DecryptionFailed => "the ballot could not be opened with the election key",
            Reason::BadSignature => "the voter's digital signature on the ballot is not valid",
            Reason::CertificateInvalid => {
                "the voter's certificate was not valid when the ballot was received"
            }
            Reason::CertificateRevoked => {
                "the voter's certificate had been revoked before the ballot was received"
            }
            Reason::SignerNotUploader => {
                "the ballot was signed by someone other than the voter who sent it"
            }
            Reason::NotOnRoster => "the voter is not on the roster of eligible voters",
            Reason::WrongBallotStyle => "the ballot is not the style issued to this voter",
            Reason::WrongElection => "the ballot is for a different election",
            Reason::AfterDeadline => "the ballot was received after the deadline",
            Reason::BeforeOpening => "the ballot was received before the election opened",
            Reason::MalformedPackage => "the ballot file is damaged or not in the expected format",
            Reason::MediaNotAccepted => "the ballot's file type or size is not accepted",
            Reason::DeclarationMismatch => {
                "the voter declaration is not, byte for byte, the text in the election manifest \
                 (a changed word, space or line break, such as a line break added at the end, is enough)"
            }
            Reason::Replayed => {
                "this is a second copy of a ballot already in the log; the gateway appended it again \
                 (the copy never counts)"
            }
            Reason::UploadedAsAnotherVoter => {
                "the ballot is signed by another voter on the roster than the one the gateway says sent it"
            }
            Reason::TookTooLong => {
                "the ballot could not be opened and checked within the county's time limit; \
                 the election office has been told and will contact you"
            }
        }
    }
}

/// A ballot's status as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Passed every check. It counts if it is the voter's latest valid
    /// ballot; the public file does not say whether it is.
    Valid,
    /// Not counted, for a reason.
    Rejected(Reason),
}

impl Status {
    /// The (status, reason) codes of a status-file entry.
    pub fn to_codes(self) -> (u8, u8) {
        match self {
            Status::Rejected(r) => (2, r.code()),
            Status::Valid => (4, 0),
        }
    }

    fn from_codes(status: u8, reason: u8) -> Result<Self, DecodeError> {
        let bad = |reason| DecodeError::InvalidValue {
            what: "status",
            reason,
        };
        match (status, reason) {
            (4, 0) => Ok(Status::Valid),
            (2, r) => Reason::from_code(r)
                .map(Status::Rejected)
                .ok_or(bad("unknown rejection reason")),
            (4, _) => Err(bad("a reason is given for a ballot that was not rejected")),
            (1 | 3, _) => Err(bad(
                "accepted (1) and superseded (3) are not published: a valid ballot is 4",
            )),
            _ => Err(bad("unknown status")),
        }
    }

    /// Words for people.
    pub fn describe(self) -> String {
        match self {
            Status::Valid => "valid: your ballot passed every check; it counts unless you sent \
                               a later ballot that is valid too (then that one counts)"
                .into(),
            Status::Rejected(r) => format!("rejected: {}", r.explain()),
        }
    }
}

/// The status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFile {
    /// The election.
    pub election_id: String,
    /// The final checkpoint, cosigned.
    pub checkpoint: String,
    /// The status of leaf 0, 1, 2, ...
    pub statuses: Vec<Status>,
}

impl StatusFile {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.raw(MAGIC);
        w.u8(VERSION);
        w.vec8(self.election_id.as_bytes(), 64, "election id")?;
        w.vec16(self.checkpoint.as_bytes(), 1 << 14, "checkpoint")?;
        w.u64(self.statuses.len() as u64);
        for (i, s) in self.statuses.iter().enumerate() {
            let (status, reason) = s.to_codes();
            w.u64(i as u64);
            w.u8(status);
            w.u8(reason);
        }
        Ok(w.into_bytes())
    }

    /// Reads the canonical encoding; refuses anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic(MAGIC, "status file")?;
        r.version(VERSION, "status file")?;
        let election_id = r.string8(64, "election id")?.to_owned();
        check_identifier(&election_id, 64, "election id")?;
        let checkpoint = r.string16(1 << 14, "checkpoint")?.to_owned();
        let count = r.u64("entry count")?;
        // One status per leaf of the checkpoint, no more and no fewer: a
        // shorter list would hide ballots, a longer one invent them.
        let size = checkpoint
            .split('\n')
            .nth(1)
            .and_then(|l| crate::witness::parse_decimal(l.as_bytes()))
            .ok_or(DecodeError::InvalidValue {
                what: "checkpoint",
                reason: "its second line is not a tree size",
            })?;
        if size != count {
            return Err(DecodeError::InvalidValue {
                what: "status entries",
                reason: "the list's length differs from its checkpoint's size",
            });
        }
        // Each entry is 10 bytes: refuse a count the data cannot hold
        // before allocating for it.
        if count > MAX_ENTRIES {
            return Err(DecodeError::TooLong {
                what: "entry count",
                len: count,
                max: MAX_ENTRIES,
            });
        }
        let need = count * 10;
        let have = r.remaining() as u64;
        if need > have {
            return Err(DecodeError::Truncated {
                what: "status entries",
            });
        }
        if need < have {
            return Err(DecodeError::TrailingBytes {
                what: "status file",
                count: (have - need) as usize,
            });
        }
        let mut statuses = Vec::with_capacity(count as usize);
        for i in 0..count {
            if r.u64("leaf index")? != i {
                return Err(DecodeError::InvalidValue {
                    what: "leaf index",
                    reason: "entries must list leaves 0, 1, 2, ... in order",
                });
            }
            let status = r.u8("status")?;
            let reason = r.u8("reason")?;
            statuses.push(Status::from_codes(status, reason)?);
        }
        r.finish("status file")?;
        Ok(StatusFile {
            election_id,
            checkpoint,
            statuses,
        })
    }

    /// Opens a status file signed by the pinned election key.
    pub fn open_signed(bytes: &[u8], election_fingerprint: &str) -> Result<Self, DocumentError> {
        let (_, body) = open_document(bytes, election_fingerprint, 11 * MAX_ENTRIES as usize)?;
        Ok(StatusFile::from_bytes(&body)?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_declaration_mismatch_says_what_must_match() {
        let text = super::Reason::DeclarationMismatch.explain();
        assert!(text.contains("byte for byte"), "{text}");
        assert!(text.contains("line break"), "{text}");
    }

    use super::*;

    fn sample() -> StatusFile {
        StatusFile {
            election_id: "2026-general".into(),
            checkpoint: "origin\n3\nAAAA\n\n— origin AAAA\n".into(),
            statuses: vec![
                Status::Valid,
                Status::Rejected(Reason::NotOnRoster),
                Status::Valid,
            ],
        }
    }

    #[test]
    fn round_trips_and_opens_signed() {
        let s = sample();
        let bytes = s.to_bytes().unwrap();
        assert_eq!(StatusFile::from_bytes(&bytes).unwrap(), s);
        let key = crate::manifest::tests::election_key();
        let signed = crate::signed::sign_document(&bytes, key, None).unwrap();
        assert_eq!(
            StatusFile::open_signed(&signed, &crate::pgp::fingerprint_hex(key)).unwrap(),
            s
        );
    }

    #[test]
    fn every_reason_has_a_stable_code_and_words() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i + 1);
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            assert!(!r.explain().is_empty() && !r.name().is_empty());
        }
        assert_eq!(Reason::from_code(0), None);
        assert_eq!(Reason::from_code(17), None);
    }

    #[test]
    fn refuses_a_list_whose_length_differs_from_its_checkpoint() {
        for statuses in [vec![Status::Valid, Status::Valid], vec![Status::Valid; 4]] {
            let s = StatusFile {
                statuses,
                ..sample()
            };
            let e = StatusFile::from_bytes(&s.to_bytes().unwrap()).unwrap_err();
            assert!(e.to_string().contains("differs from its checkpoint"), "{e}");
        }
    }

    #[test]
    fn refuses_bad_entries() {
        let good = sample().to_bytes().unwrap();
        let n = good.len();
        let mut bad_status = good.clone();
        bad_status[n - 2] = 9;
        assert!(StatusFile::from_bytes(&bad_status).is_err());
        let mut reason_on_valid = good.clone();
        reason_on_valid[n - 1] = 4;
        assert!(StatusFile::from_bytes(&reason_on_valid).is_err());
        // Version 1's codes that told counted from replaced ballots.
        for old in [1, 3] {
            let mut told = good.clone();
            told[n - 2] = old;
            let e = StatusFile::from_bytes(&told).unwrap_err();
            assert!(e.to_string().contains("not published"), "{e}");
        }
        let mut out_of_order = good.clone();
        out_of_order[n - 3] = 7;
        assert!(StatusFile::from_bytes(&out_of_order).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(StatusFile::from_bytes(&trailing).is_err());
        assert!(StatusFile::from_bytes(&good[..n - 1]).is_err());
    }
}
