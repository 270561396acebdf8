//! The roster of eligible UOCAVA voters (DESIGN section 4), signed with the
//! election key.
//!
//! ```text
//! struct {
//!     opaque magic[12] = "VOTER-ROSTER";
//!     uint8  version = 1;
//!     opaque election_id<1..64>;
//!     uint32 count;                   // at most 1,000,000
//!     RosterEntry entries[count];     // sorted by voter_id, no duplicates
//! } Roster;
//! struct {
//!     opaque voter_id<1..64>;         // the county's voter number
//!     opaque identity<1..80>;         // "edipi:<10 digits>" or "county:<id>"
//!     opaque ballot_style<1..64>;
//! } RosterEntry;
//! ```
//!
//! No voter id and no identity appears twice. Specification:
//! `docs/spec/roster.md`, which also describes the CSV a county provides.

use crate::codec::{check_identifier, DecodeError, EncodeError, Reader, Writer};
use crate::signed::{open_document, DocumentError};
use crate::x509::VoterIdentity;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// The magic string.
pub const MAGIC: &[u8; 12] = b"VOTER-ROSTER";
/// The version of this encoding.
pub const VERSION: u8 = 1;
/// The most voters in one roster.
pub const MAX_VOTERS: u32 = 1_000_000;
/// The largest roster body.
pub const MAX_ROSTER: usize = 128 * 1024 * 1024;

/// One eligible voter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The county's voter number.
    pub voter_id: String,
    /// The certified identity that authenticates this voter.
    pub identity: VoterIdentity,
    /// The ballot style the voter is issued.
    pub ballot_style: String,
}

/// The roster, indexed both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// The election.
    pub election_id: String,
    entries: BTreeMap<String, RosterEntry>,
    by_identity: HashMap<VoterIdentity, String>,
}

/// A problem in the county's CSV file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct CsvError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl Roster {
    /// An empty roster for an election.
    pub fn new(election_id: &str) -> Result<Self, DecodeError> {
        check_identifier(election_id, 64, "election id")?;
        Ok(Roster {
            election_id: election_id.to_owned(),
            entries: BTreeMap::new(),
            by_identity: HashMap::new(),
        })
    }

    /// Adds a voter; refuses a duplicate voter id or identity.
    pub fn insert(&mut self, e: RosterEntry) -> Result<(), DecodeError> {
        check_identifier(&e.voter_id, 64, "voter id")?;
        check_identifier(&e.ballot_style, 64, "ballot style")?;
        if self.entries.len() as u64 >= u64::from(MAX_VOTERS) {
            return Err(DecodeError::InvalidValue {
                what: "roster",
                reason: "too many voters",
            });
        }
        if self.entries.contains_key(&e.voter_id) {
            return Err(DecodeError::InvalidValue {
                what: "voter id",
                reason: "appears twice",
            });
        }
        if self.by_identity.contains_key(&e.identity) {
            return Err(DecodeError::InvalidValue {
                what: "identity",
                reason: "appears twice",
            });
        }
        self.by_identity
            .insert(e.identity.clone(), e.voter_id.clone());
        self.entries.insert(e.voter_id.clone(), e);
        Ok(())
    }

    /// The voter with a certified identity.
    pub fn by_identity(&self, id: &VoterIdentity) -> Option<&RosterEntry> {
        self.by_identity.get(id).and_then(|v| self.entries.get(v))
    }

    /// The voter with a voter id.
    pub fn by_voter_id(&self, voter_id: &str) -> Option<&RosterEntry> {
        self.entries.get(voter_id)
    }

    /// The number of voters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the roster is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The voters, by voter id.
    pub fn iter(&self) -> impl Iterator<Item = &RosterEntry> {
        self.entries.values()
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.raw(MAGIC);
        w.u8(VERSION);
        w.vec8(self.election_id.as_bytes(), 64, "election id")?;
        w.u32(self.entries.len() as u32);
        for e in self.entries.values() {
            w.vec8(e.voter_id.as_bytes(), 64, "voter id")?;
            w.vec8(e.identity.to_canonical().as_bytes(), 80, "identity")?;
            w.vec8(e.ballot_style.as_bytes(), 64, "ballot style")?;
        }
        Ok(w.into_bytes())
    }

    /// Reads the canonical encoding; refuses anything else, including
    /// entries out of order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.magic(MAGIC, "roster")?;
        r.version(VERSION, "roster")?;
        let mut roster = Roster::new(r.string8(64, "election id")?)?;
        let count = r.u32("voter count")?;
        if count > MAX_VOTERS {
            return Err(DecodeError::TooLong {
                what: "voter count",
                len: u64::from(count),
                max: u64::from(MAX_VOTERS),
            });
        }
        let mut last: Option<String> = None;
        for _ in 0..count {
            let voter_id = r.string8(64, "voter id")?.to_owned();
            let identity = VoterIdentity::parse_canonical(r.string8(80, "identity")?).ok_or(
                DecodeError::InvalidValue {
                    what: "identity",
                    reason: "not edipi:<10 digits> or county:<id>",
                },
            )?;
            let ballot_style = r.string8(64, "ballot style")?.to_owned();
            if last.as_ref().is_some_and(|l| *l >= voter_id) {
                return Err(DecodeError::InvalidValue {
                    what: "roster",
                    reason: "entries are not sorted by voter id",
                });
            }
            last = Some(voter_id.clone());
            roster.insert(RosterEntry {
                voter_id,
                identity,
                ballot_style,
            })?;
        }
        r.finish("roster")?;
        Ok(roster)
    }

    /// Opens a signed roster; the signer must be the pinned election key.
    pub fn open_signed(bytes: &[u8], election_fingerprint: &str) -> Result<Self, DocumentError> {
        let (_, body) = open_document(bytes, election_fingerprint, MAX_ROSTER)?;
        Ok(Roster::from_bytes(&body)?)
    }

    /// Reads the county's CSV: a header line `voter_id,edipi,ballot_style`
    /// (DoD voters) or `voter_id,identity,ballot_style` (any identity in
    /// canonical form), then one voter per line. Blank lines are skipped.
    /// Every problem is reported with its line number.
    pub fn from_csv(election_id: &str, text: &str) -> Result<Self, Vec<CsvError>> {
        let mut roster = Roster::new(election_id).map_err(|e| {
            vec![CsvError {
                line: 0,
                reason: format!("election id: {e}"),
            }]
        })?;
        let mut errors = Vec::new();
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let edipi_column = match lines.next().map(|(_, h)| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()) {
            Some(h) if h == "voter_id,edipi,ballot_style" => true,
            Some(h) if h == "voter_id,identity,ballot_style" => false,
            _ => {
                return Err(vec![CsvError {
                    line: 1,
                    reason: "the first line must be the header voter_id,edipi,ballot_style (or voter_id,identity,ballot_style)".into(),
                }])
            }
        };
        for (i, line) in lines {
            let line_no = i + 1;
            let fields: Vec<&str> = line
                .trim_end_matches('\r')
                .split(',')
                .map(str::trim)
                .collect();
            let [voter_id, id, style] = fields.as_slice() else {
                errors.push(CsvError {
                    line: line_no,
                    reason: format!(
                        "expected 3 fields separated by commas, found {}",
                        fields.len()
                    ),
                });
                continue;
            };
            let identity = if edipi_column {
                if id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit()) {
                    Some(VoterIdentity::Edipi((*id).to_owned()))
                } else {
                    None
                }
            } else {
                VoterIdentity::parse_canonical(id)
            };
            let Some(identity) = identity else {
                errors.push(CsvError {
                    line: line_no,
                    reason: if edipi_column {
                        format!("EDIPI {id:?} is not 10 digits (it is the DoD ID number on the back of the CAC)")
                    } else {
                        format!("identity {id:?} is not edipi:<10 digits> or county:<id>")
                    },
                });
                continue;
            };
            let entry = RosterEntry {
                voter_id: (*voter_id).to_owned(),
                identity,
                ballot_style: (*style).to_owned(),
            };
            if let Err(e) = roster.insert(entry) {
                errors.push(CsvError {
                    line: line_no,
                    reason: e.to_string(),
                });
            }
        }
        if errors.is_empty() {
            Ok(roster)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Roster {
        Roster::from_csv(
            "2026-general",
            "voter_id,edipi,ballot_style\nV-0002,2345678901,style-2\nV-0001,1234567890,style-1\n\n",
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_looks_up_both_ways() {
        let r = sample();
        assert_eq!(r.len(), 2);
        let bytes = r.to_bytes().unwrap();
        let back = Roster::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        let jane = back
            .by_identity(&VoterIdentity::Edipi("1234567890".into()))
            .unwrap();
        assert_eq!(jane.voter_id, "V-0001");
        assert_eq!(back.by_voter_id("V-0002").unwrap().ballot_style, "style-2");
        assert!(back
            .by_identity(&VoterIdentity::Edipi("9999999999".into()))
            .is_none());
    }

    #[test]
    fn opens_a_signed_roster() {
        let key = crate::manifest::tests::election_key();
        let signed =
            crate::signed::sign_document(&sample().to_bytes().unwrap(), key, None).unwrap();
        let r = Roster::open_signed(&signed, &crate::pgp::fingerprint_hex(key)).unwrap();
        assert_eq!(r, sample());
    }

    #[test]
    fn reports_every_bad_csv_row_with_its_line() {
        let errs = Roster::from_csv(
            "2026-general",
            "voter_id,edipi,ballot_style\nV-1,123,s\nV-2,1234567890\nV-3,1234567890,s\nV-4,1234567890,s\nV 5,2222222222,s\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 6], "{errs:?}");
        assert!(errs[0].reason.contains("not 10 digits"));
        assert!(errs[2].reason.contains("appears twice"));
        assert!(Roster::from_csv("2026-general", "name,id\n").is_err());
        let county = Roster::from_csv(
            "e",
            "voter_id,identity,ballot_style\nTC-1,county:TC-000123,s\n",
        )
        .unwrap();
        assert!(county
            .by_identity(&VoterIdentity::County("TC-000123".into()))
            .is_some());
    }

    #[test]
    fn refuses_unsorted_duplicate_and_oversized_encodings() {
        let good = sample().to_bytes().unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Roster::from_bytes(&trailing).is_err());
        // Swap the two entries' voter ids to break the order.
        let swapped = {
            let s = String::from_utf8_lossy(&good)
                .replace("V-0001", "V-000X")
                .replace("V-0002", "V-0001")
                .replace("V-000X", "V-0002");
            s.into_bytes()
        };
        assert!(Roster::from_bytes(&swapped).is_err());
        let mut w = Writer::new();
        w.raw(MAGIC);
        w.u8(VERSION);
        w.vec8(b"e", 64, "").unwrap();
        w.u32(MAX_VOTERS + 1);
        assert!(matches!(
            Roster::from_bytes(&w.into_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
