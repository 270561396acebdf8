//! Linking a voter's receipt to the county's signed word: the checks that
//! `ballot-return status`, `ballot-verifier audit` and `ballot-audit` share.
//!
//! A receipt says "entry i is in the tree of size m with root r", signed by
//! the log key, that is, by the gateway alone. It means something only when
//! that tree is part of the log the witnesses saw and the county decided:
//! a consistency proof must link the receipt's checkpoint to the quorum's
//! checkpoint and to the status file's. Specification:
//! `docs/spec/witnesses.md`.

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::manifest::ElectionManifest;
use crate::merkle::{verify_consistency, Hash, ProofError};
use crate::note::NoteVerifier;
use crate::status::{Status, StatusFile};
use thiserror::Error;

/// Why the county's word could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The status file's signature, body or checkpoint is wrong.
    #[error("the status file is not the county's: {0}")]
    StatusFile(String),
    /// Two checkpoints that a consistency proof does not link.
    #[error("{0}")]
    Fork(#[from] ProofError),
}

/// Checks that `a` and `b` are views of one log: a consistency proof from
/// the smaller to the larger (no proof when the sizes are equal: the roots
/// must then be equal).
pub fn consistent(a: &Checkpoint, b: &Checkpoint, proof: &[Hash]) -> Result<(), ProofError> {
    let (small, large) = if a.size <= b.size { (a, b) } else { (b, a) };
    if small.size == 0 {
        // The empty tree is a prefix of every tree.
        return Ok(());
    }
    verify_consistency(small.size, large.size, proof, &small.root, &large.root)
}

/// A status file whose every signature checked out, and whose list covers
/// exactly its checkpoint's leaves.
#[derive(Debug, Clone)]
pub struct CheckedStatusFile {
    /// The file.
    pub file: StatusFile,
    /// Its checkpoint: signed by the log key, cosigned by the county.
    pub checkpoint: SignedCheckpoint,
}

impl CheckedStatusFile {
    /// Opens a signed status file of `manifest`'s election: the election
    /// key's signature, the log key's signature on its checkpoint, the
    /// county's own cosignature on it, and the list's length.
    pub fn open(
        bytes: &[u8],
        manifest: &ElectionManifest,
        election_fingerprint: &str,
    ) -> Result<Self, LinkError> {
        let bad = |e: &dyn std::fmt::Display| LinkError::StatusFile(e.to_string());
        let file = StatusFile::open_signed(bytes, election_fingerprint).map_err(|e| bad(&e))?;
        if file.election_id != manifest.election_id {
            return Err(LinkError::StatusFile(format!(
                "it is for election {}",
                file.election_id
            )));
        }
        let log_key = NoteVerifier::from_vkey(&manifest.log_key).map_err(|e| bad(&e))?;
        let checkpoint =
            SignedCheckpoint::verify(file.checkpoint.as_bytes(), &log_key).map_err(|e| bad(&e))?;
        let county = NoteVerifier::from_vkey(&manifest.witness_key).map_err(|e| bad(&e))?;
        checkpoint.verify_cosignature(&county).map_err(|_| {
            LinkError::StatusFile("its checkpoint lacks the county verifier's cosignature".into())
        })?;
        if file.statuses.len() as u64 != checkpoint.checkpoint.size {
            return Err(LinkError::StatusFile(
                "its list's length differs from its checkpoint's size".into(),
            ));
        }
        Ok(CheckedStatusFile { file, checkpoint })
    }

    /// Entry `index`'s status, or `None` when the file predates it.
    pub fn status_of(&self, index: u64) -> Option<Status> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.file.statuses.get(i))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, Tree};

    fn tree(leaves: &[&str]) -> Tree {
        let mut t = Tree::new();
        for l in leaves {
            t.push(leaf_hash(l.as_bytes()));
        }
        t
    }

    fn cp(t: &Tree, size: u64) -> Checkpoint {
        Checkpoint {
            origin: "o".into(),
            size,
            root: t.root(size).unwrap(),
            extensions: vec![],
        }
    }

    #[test]
    fn links_either_way_and_refuses_a_fork() {
        let t = tree(&["a", "b", "c", "d", "e"]);
        let proof = t.consistency_proof(2, 5).unwrap();
        assert!(consistent(&cp(&t, 2), &cp(&t, 5), &proof).is_ok());
        assert!(consistent(&cp(&t, 5), &cp(&t, 2), &proof).is_ok());
        assert!(consistent(&cp(&t, 3), &cp(&t, 3), &[]).is_ok());
        // The two-log gateway: the voter's tree has "jane" at 0, the
        // county's has someone else's ballot there.
        let fork = tree(&["jane"]);
        let county = tree(&["x", "y"]);
        let p = county.consistency_proof(1, 2).unwrap();
        assert!(consistent(&cp(&fork, 1), &cp(&county, 2), &p).is_err());
        assert!(consistent(&cp(&fork, 1), &cp(&tree(&["x"]), 1), &[]).is_err());
    }
}
