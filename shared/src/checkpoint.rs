//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the signed tree
//! head of the ballot log, as the body of a signed note.
//!
//! ```text
//! <origin>\n
//! <tree size, ASCII decimal, no leading zeroes>\n
//! <base64 root hash>\n
//! [<extension line>\n ...]
//! ```
//!
//! The origin is also the log key's name, so a checkpoint signed by the
//! right key for another log is refused. Specification: `docs/spec/checkpoint.md`.

use crate::merkle::Hash;
use crate::note::{Note, NoteError, NoteSigner, NoteVerifier};
use base64::prelude::*;
use thiserror::Error;

/// The most extension lines read.
const MAX_EXTENSIONS: usize = 8;

/// Why a checkpoint was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed-note envelope is wrong or its signature does not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The checkpoint is for another log.
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    WrongOrigin {
        /// The origin that was expected.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
}

/// A tree head: the log's origin, its size and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, e.g. `ballots.example-county.gov/2026-general`.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root hash of those leaves.
    pub root: Hash,
    /// Optional extension lines (this project writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64_STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a note text as a checkpoint body.
    pub fn parse_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Malformed(
            "the text does not end in a newline",
        ))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin"));
        }
        let size = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing tree size"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(CheckpointError::Malformed(
                "the tree size is not a decimal without leading zeroes",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| CheckpointError::Malformed("the tree size is out of range"))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash"))?;
        let root: Hash = BASE64_STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "the root hash is not 32 bytes of base64",
            ))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(CheckpointError::Malformed("empty extension line"));
            }
            if extensions.len() == MAX_EXTENSIONS {
                return Err(CheckpointError::Malformed("too many extension lines"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint with the log key, whose name must be the origin.
    pub fn sign(&self, log_key: &NoteSigner) -> Result<String, CheckpointError> {
        if log_key.name() != self.origin {
            return Err(CheckpointError::WrongOrigin {
                expected: log_key.name().to_owned(),
                found: self.origin.clone(),
            });
        }
        Ok(log_key.sign_note(&self.to_text())?)
    }
}

/// A checkpoint whose log signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// The signed note it came from (with every signature line, including
    /// cosignatures), for re-publication.
    pub note: Note,
}

impl SignedCheckpoint {
    /// Parses and verifies a signed checkpoint against the log's key.
    pub fn verify(bytes: &[u8], log_key: &NoteVerifier) -> Result<Self, CheckpointError> {
        let note = Note::parse(bytes)?;
        note.verify(log_key)?;
        let checkpoint = Checkpoint::parse_text(note.text())?;
        if checkpoint.origin != log_key.name() {
            return Err(CheckpointError::WrongOrigin {
                expected: log_key.name().to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Verifies a witness's cosignature on this checkpoint; returns its time.
    pub fn verify_cosignature(&self, witness: &NoteVerifier) -> Result<u64, CheckpointError> {
        self.note.verify(witness)?.ok_or(CheckpointError::Malformed(
            "the witness key is not a cosigner key",
        ))
    }

    /// The signed note text.
    pub fn to_text(&self) -> String {
        self.note.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{TYPE_COSIGNATURE, TYPE_ED25519};

    const ORIGIN: &str = "ballots.example.gov/2026-general";

    fn sample() -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size: 12,
            root: [3; 32],
            extensions: vec![],
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        let signed = sample().sign(&key).unwrap();
        assert!(signed.starts_with(&format!("{ORIGIN}\n12\nAwMD")));
        let v = SignedCheckpoint::verify(signed.as_bytes(), &key.verifier()).unwrap();
        assert_eq!(v.checkpoint, sample());
        assert_eq!(v.to_text(), signed);
        let with_ext = Checkpoint {
            extensions: vec!["ext".into()],
            ..sample()
        };
        assert_eq!(
            Checkpoint::parse_text(&with_ext.to_text()).unwrap(),
            with_ext
        );
    }

    #[test]
    fn refuses_a_checkpoint_of_another_log() {
        let key = NoteSigner::generate("other.example/log", TYPE_ED25519).unwrap();
        let c = Checkpoint {
            origin: "other.example/log".into(),
            ..sample()
        };
        let signed = c.sign(&key).unwrap();
        let mine = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        assert!(SignedCheckpoint::verify(signed.as_bytes(), &mine.verifier()).is_err());
        assert!(sample().sign(&key).is_err());
    }

    #[test]
    fn a_witness_cosignature_verifies() {
        let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
        let witness = NoteSigner::generate("county.example/witness", TYPE_COSIGNATURE).unwrap();
        let v = SignedCheckpoint::verify(sample().sign(&key).unwrap().as_bytes(), &key.verifier())
            .unwrap();
        let cosigned = witness.cosign(&v.note, 99).unwrap();
        let v2 = SignedCheckpoint::verify(cosigned.as_bytes(), &key.verifier()).unwrap();
        assert_eq!(v2.verify_cosignature(&witness.verifier()).unwrap(), 99);
    }

    #[test]
    fn refuses_malformed_bodies() {
        for bad in [
            "",
            "origin\n",
            "origin\n12\n",
            "origin\n012\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "origin\n-1\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "origin\n99999999999999999999\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
            "origin\n1\nAwMD\n",
            "origin\n1\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
            "\n1\nAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n",
        ] {
            assert!(Checkpoint::parse_text(bad).is_err(), "{bad:?}");
        }
    }
}
