//! The log entry: the leaf of the public Merkle log (DESIGN section 6).
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     opaque election_id<1..64>;     // identifier alphabet
//!     uint64 received_at;            // seconds since the Unix epoch, UTC
//!     opaque message_sha256[32];     // SHA-256 of the uploaded OpenPGP message
//!     opaque voter_commitment[32];   // SHA-256(salt || voter_id)
//! } LogEntry;
//! ```
//!
//! The leaf hash is `SHA-256(0x00 || LogEntry)` (RFC 6962). The entry names
//! no voter: the commitment can be opened only with the salt, which only
//! the voter and the verifier receive. Specification: `docs/spec/log-entry.md`.

use crate::clock::UnixTime;
use crate::codec::{check_identifier, DecodeError, EncodeError, Reader, Writer};
use crate::merkle::{self, Hash};
use sha2::{Digest, Sha256};

/// The version of this encoding.
pub const VERSION: u8 = 1;
/// The longest election id.
pub const MAX_ELECTION_ID: usize = 64;
/// The longest voter id (a county's voter number, or `edipi:` and 10 digits).
pub const MAX_VOTER_ID: usize = 64;

/// One accepted upload, as the public log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The election the ballot is for.
    pub election_id: String,
    /// When the gateway received it (the gateway's clock).
    pub received_at: UnixTime,
    /// SHA-256 of the OpenPGP message exactly as uploaded.
    pub message_sha256: Hash,
    /// `SHA-256(salt || voter_id)`.
    pub voter_commitment: Hash,
}

/// `SHA-256(salt || voter_id)`: binds an entry to a voter without naming them.
pub fn voter_commitment(salt: &[u8; 32], voter_id: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(voter_id.as_bytes());
    h.finalize().into()
}

impl LogEntry {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.u8(VERSION);
        w.vec8(
            self.election_id.as_bytes(),
            MAX_ELECTION_ID,
            "log entry election id",
        )?;
        w.u64(self.received_at.0);
        w.raw(&self.message_sha256);
        w.raw(&self.voter_commitment);
        Ok(w.into_bytes())
    }

    /// Reads the canonical encoding; refuses anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "log entry";
        let mut r = Reader::new(bytes);
        r.version(VERSION, WHAT)?;
        let election_id = r.string8(MAX_ELECTION_ID, "log entry election id")?;
        check_identifier(election_id, MAX_ELECTION_ID, "log entry election id")?;
        let received_at = UnixTime(r.u64("log entry received_at")?);
        let message_sha256 = r.array("log entry message hash")?;
        let voter_commitment = r.array("log entry voter commitment")?;
        r.finish(WHAT)?;
        Ok(LogEntry {
            election_id: election_id.to_owned(),
            received_at,
            message_sha256,
            voter_commitment,
        })
    }

    /// The Merkle leaf hash of this entry.
    pub fn leaf_hash(&self) -> Result<Hash, EncodeError> {
        Ok(merkle::leaf_hash(&self.to_bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LogEntry {
        LogEntry {
            election_id: "2026-general".into(),
            received_at: UnixTime(1_793_700_000),
            message_sha256: [7; 32],
            voter_commitment: voter_commitment(&[1; 32], "V-0001"),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        let bytes = e.to_bytes().unwrap();
        assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), e);
        assert_eq!(bytes.len(), 1 + 1 + 12 + 8 + 32 + 32);
    }

    #[test]
    fn the_encoding_is_fixed() {
        // A vector for other implementations: docs/spec/log-entry.md repeats it.
        let e = LogEntry {
            election_id: "e1".into(),
            received_at: UnixTime(1),
            message_sha256: [0xaa; 32],
            voter_commitment: [0xbb; 32],
        };
        let bytes = e.to_bytes().unwrap();
        let expected = format!(
            "010265310000000000000001{}{}",
            "aa".repeat(32),
            "bb".repeat(32)
        );
        assert_eq!(hex::encode(&bytes), expected);
        // The specification states the vector's length; it must be this one.
        let spec = include_str!("../../docs/spec/log-entry.md");
        let stated = spec
            .split("…bb` (")
            .nth(1)
            .and_then(|rest| rest.split(" bytes").next())
            .and_then(|n| n.parse::<usize>().ok());
        assert_eq!(stated, Some(bytes.len()), "docs/spec/log-entry.md");
        assert_eq!(
            hex::encode(e.leaf_hash().unwrap()),
            hex::encode(merkle::leaf_hash(&bytes))
        );
    }

    #[test]
    fn the_commitment_depends_on_salt_and_voter() {
        assert_ne!(
            voter_commitment(&[1; 32], "V-1"),
            voter_commitment(&[2; 32], "V-1")
        );
        assert_ne!(
            voter_commitment(&[1; 32], "V-1"),
            voter_commitment(&[1; 32], "V-2")
        );
    }

    #[test]
    fn refuses_bad_encodings() {
        let good = sample().to_bytes().unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            LogEntry::from_bytes(&trailing),
            Err(DecodeError::TrailingBytes { .. })
        ));
        assert!(matches!(
            LogEntry::from_bytes(&good[..good.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut version = good.clone();
        version[0] = 2;
        assert!(matches!(
            LogEntry::from_bytes(&version),
            Err(DecodeError::UnknownVersion { .. })
        ));
        let mut bad_id = good.clone();
        bad_id[2] = b'/';
        assert!(matches!(
            LogEntry::from_bytes(&bad_id),
            Err(DecodeError::InvalidValue { .. })
        ));
        assert!(LogEntry::from_bytes(&[]).is_err());
    }
}
