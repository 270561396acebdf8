//! The voter's receipt: a C2SP tlog-proof (<https://c2sp.org/tlog-proof>)
//! whose `extra` line carries the log entry (DESIGN section 6).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 LogEntry>
//! index <leaf index>
//! <base64 inclusion proof hash>   (zero or more lines)
//!
//! <signed checkpoint>
//! ```
//!
//! A receipt shows that an upload with a given SHA-256 was logged at an
//! index under a signed checkpoint. It carries neither the ballot nor the
//! voter's identity, so it can neither reveal nor prove a vote. The salt
//! that opens the voter commitment is given to the voter apart from it.
//! Specification: `docs/spec/receipt.md`.

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::codec::DecodeError;
use crate::log_entry::LogEntry;
use crate::merkle::{self, Hash, ProofError, MAX_PROOF_HASHES};
use crate::note::NoteVerifier;
use base64::prelude::*;
use thiserror::Error;

/// The first line of a tlog-proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The largest receipt read.
pub const MAX_RECEIPT_LEN: usize = 32 * 1024;

/// Why a receipt was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The text is not a tlog-proof.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The `extra` line is not a log entry.
    #[error("the receipt's log entry is malformed: {0}")]
    Entry(#[from] DecodeError),
    /// The checkpoint is malformed, for another log, or badly signed.
    #[error("the receipt's checkpoint is not valid: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("the receipt's inclusion proof does not match its checkpoint: {0}")]
    Inclusion(ProofError),
}

/// A receipt as read; [`Receipt::verify`] checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The logged entry.
    pub entry: LogEntry,
    /// Its leaf index.
    pub index: u64,
    /// The inclusion proof from the leaf to the checkpoint's root.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl Receipt {
    /// The tlog-proof text.
    pub fn to_text(&self) -> Result<String, crate::codec::EncodeError> {
        let mut s = format!(
            "{HEADER}\nextra {}\nindex {}\n",
            BASE64_STANDARD.encode(self.entry.to_bytes()?),
            self.index
        );
        for h in &self.proof {
            s.push_str(&BASE64_STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        Ok(s)
    }

    /// Parses a receipt. Nothing is verified yet.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_LEN {
            return Err(ReceiptError::Malformed("too large"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| ReceiptError::Malformed("not UTF-8"))?;
        let rest = s
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(ReceiptError::Malformed("not a c2sp.org/tlog-proof@v1"))?;
        let (head, checkpoint) = rest.split_once("\n\n").ok_or(ReceiptError::Malformed(
            "no blank line before the checkpoint",
        ))?;
        let mut lines = head.split('\n');
        let extra =
            lines
                .next()
                .and_then(|l| l.strip_prefix("extra "))
                .ok_or(ReceiptError::Malformed(
                    "the log entry (extra line) is missing",
                ))?;
        let entry_bytes = BASE64_STANDARD
            .decode(extra)
            .map_err(|_| ReceiptError::Malformed("the extra line is not base64"))?;
        let entry = LogEntry::from_bytes(&entry_bytes)?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .ok_or(ReceiptError::Malformed("the index line is missing"))?;
        if index.is_empty()
            || !index.bytes().all(|b| b.is_ascii_digit())
            || (index.len() > 1 && index.starts_with('0'))
        {
            return Err(ReceiptError::Malformed(
                "the index is not a decimal without leading zeroes",
            ));
        }
        let index: u64 = index
            .parse()
            .map_err(|_| ReceiptError::Malformed("the index is out of range"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_HASHES {
                return Err(ReceiptError::Malformed("the inclusion proof is too long"));
            }
            let h: Hash = BASE64_STANDARD
                .decode(line)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or(ReceiptError::Malformed(
                    "an inclusion proof line is not a base64 hash",
                ))?;
            proof.push(h);
        }
        Ok(Receipt {
            entry,
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies the checkpoint's signature with the log key and the
    /// inclusion of the entry under it. Returns the verified checkpoint.
    pub fn verify(&self, log_key: &NoteVerifier) -> Result<SignedCheckpoint, ReceiptError> {
        let cp = SignedCheckpoint::verify(self.checkpoint.as_bytes(), log_key)?;
        let leaf = merkle::leaf_hash(
            &self
                .entry
                .to_bytes()
                .map_err(|_| ReceiptError::Malformed("entry too large"))?,
        );
        merkle::verify_inclusion(
            self.index,
            cp.checkpoint.size,
            &leaf,
            &self.proof,
            &cp.checkpoint.root,
        )
        .map_err(ReceiptError::Inclusion)?;
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::clock::UnixTime;
    use crate::merkle::Tree;
    use crate::note::{NoteSigner, TYPE_ED25519};

    const ORIGIN: &str = "ballots.example.gov/2026-general";

    fn entry(i: u8) -> LogEntry {
        LogEntry {
            election_id: "2026-general".into(),
            received_at: UnixTime(1_793_700_000 + u64::from(i)),
            message_sha256: [i; 32],
            voter_commitment: [i ^ 0xff; 32],
        }
    }

    fn receipt_for(i: u64, n: u8, key: &NoteSigner) -> Receipt {
        let mut t = Tree::new();
        for k in 0..n {
            t.push(entry(k).leaf_hash().unwrap());
        }
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: t.size(),
            root: t.root(t.size()).unwrap(),
            extensions: vec![],
        };
        Receipt {
            entry: entry(i as u8),
            index: i,
            proof: t.inclusion_proof(i, t.size()).unwrap(),
            checkpoint: cp.sign(key).unwrap(),
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        for (i, n) in [(0, 1), (0, 7), (6, 7), (3, 12)] {
            let r = receipt_for(i, n, &key);
            let text = r.to_text().unwrap();
            assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
            let parsed = Receipt::parse(text.as_bytes()).unwrap();
            assert_eq!(parsed, r);
            assert_eq!(
                parsed.verify(&key.verifier()).unwrap().checkpoint.size,
                u64::from(n)
            );
        }
    }

    #[test]
    fn refuses_a_receipt_for_another_entry_or_index() {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        let mut r = receipt_for(3, 12, &key);
        r.entry.received_at = UnixTime(1);
        assert!(matches!(
            r.verify(&key.verifier()),
            Err(ReceiptError::Inclusion(_))
        ));
        let mut r = receipt_for(3, 12, &key);
        r.index = 4;
        assert!(matches!(
            r.verify(&key.verifier()),
            Err(ReceiptError::Inclusion(_))
        ));
        let other = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        assert!(matches!(
            receipt_for(3, 12, &key).verify(&other.verifier()),
            Err(ReceiptError::Checkpoint(_))
        ));
    }

    #[test]
    fn refuses_malformed_text() {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        let good = receipt_for(1, 4, &key).to_text().unwrap();
        let cases = [
            good.replace("tlog-proof@v1", "tlog-proof@v2"),
            good.replacen("extra ", "extra !", 1),
            good.replacen("index 1", "index 01", 1),
            good.replacen("index 1", "index x", 1),
            good.replacen("\n\n", "\n", 1),
            good.replacen("index 1\n", "index 1\nnot-base64\n", 1),
            good.replacen("index 1\n", "", 1),
            "x".repeat(MAX_RECEIPT_LEN + 1),
        ];
        for bad in cases {
            assert!(Receipt::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
