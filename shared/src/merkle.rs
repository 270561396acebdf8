//! The Merkle tree of RFC 6962 section 2.1 (RFC 9162 section 2.1): hashing,
//! inclusion and consistency proofs, their generation and their verification.
//!
//! Specification: `docs/spec/merkle.md`. Verification follows RFC 9162
//! sections 2.1.3.2 and 2.1.4.2; generation follows the `PATH` and `PROOF`
//! definitions of RFC 6962 sections 2.1.1 and 2.1.2.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// `MTH({})`: the hash of the empty tree, `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The most hashes a proof can have: a tree of at most 2^64 leaves has
/// depth 64 (RFC 9162 section 2.1.3.2 bounds it the same way).
pub const MAX_PROOF_HASHES: usize = 64;

/// "The hash of a leaf": `SHA-256(0x00 || data)` (RFC 6962 section 2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof did not verify.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the sizes involved.
    #[error("the proof has {got} hashes where {want} are needed")]
    WrongProofSize {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes call for.
        want: usize,
    },
    /// The proof does not lead to the expected root.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// A consistency proof from the empty tree was offered; RFC 6962 defines
    /// none, and it would prove nothing.
    #[error("a consistency proof needs a non-empty first tree")]
    FromEmptyTree,
    /// The second tree is smaller than the first: the log went backwards.
    #[error("tree size went down from {size1} to {size2}")]
    SizeDecreased {
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
}

/// Verifies that `leaf` is at `index` in the tree of `size` with `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The root that an inclusion proof leads to.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion_proof(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want: inner + border,
        });
    }
    let (inner_part, border_part) = proof.split_at(inner);
    let hash = chain_inner(*leaf, inner_part, index);
    Ok(chain_border_right(hash, border_part))
}

/// Verifies that the tree of `size2` with `root2` extends the tree of
/// `size1` with `root1` (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizeDecreased { size1, size2 });
    }
    if size1 == size2 && size1 > 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize {
                got: proof.len(),
                want: 0,
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if size1 == 0 {
        // RFC 6962 section 2.1.2 defines PROOF(m, D[n]) for 0 < m < n only:
        // a "proof" from the empty tree proves nothing, so it is refused
        // rather than accepted vacuously. A first import checks its leaves
        // against the root directly instead.
        return Err(ProofError::FromEmptyTree);
    }
    // 0 < size1 < size2 from here on.
    let (inner, border) = decompose_inclusion_proof(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner.saturating_sub(shift);

    // The proof starts with the root of the subtree of size 2^shift that
    // contains leaf size1-1, unless size1 is itself that power of two, in
    // which case that subtree's root is root1.
    let (seed, rest) = if size1 == 1u64 << shift {
        (*root1, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => {
                return Err(ProofError::WrongProofSize {
                    got: 0,
                    want: 1 + inner + border,
                })
            }
        }
    };
    if rest.len() != inner + border {
        let start = proof.len() - rest.len();
        return Err(ProofError::WrongProofSize {
            got: proof.len(),
            want: start + inner + border,
        });
    }
    let (inner_part, border_part) = rest.split_at(inner);
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_border_right(chain_inner_right(seed, inner_part, mask), border_part);
    if hash1 != *root1 {
        return Err(ProofError::RootMismatch);
    }
    let hash2 = chain_border_right(chain_inner(seed, inner_part, mask), border_part);
    if hash2 != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Splits an inclusion proof's length into the part below the point where
/// the paths to `index` and to `size - 1` meet ("inner") and the part above
/// it ("border"). Requires `index < size`.
fn decompose_inclusion_proof(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index.checked_shr(inner as u32).unwrap_or(0)).count_ones() as usize;
    (inner, border)
}

fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 0 {
            seed = node_hash(&seed, h);
        } else {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

fn chain_border_right(mut seed: Hash, proof: &[Hash]) -> Hash {
    for h in proof {
        seed = node_hash(h, &seed);
    }
    seed
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Why a proof could not be produced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeError {
    /// The request names a size larger than the tree.
    #[error("the tree has {have} leaves; size {asked} was requested")]
    SizeBeyondTree {
        /// Leaves in the tree.
        have: u64,
        /// The size asked for.
        asked: u64,
    },
    /// The leaf index is not inside the requested tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The first size is larger than the second.
    #[error("size {size1} is larger than size {size2}")]
    SizesOutOfOrder {
        /// The first size.
        size1: u64,
        /// The second size.
        size2: u64,
    },
}

/// An append-only Merkle tree kept in memory as the hashes of all complete
/// subtrees: `levels[k][i]` is the root of the 2^k leaves starting at
/// `i * 2^k`. Memory is about two hashes per leaf; roots and proofs for any
/// earlier size take O(log n) hashes to compute.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Tree {
            levels: vec![Vec::new()],
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf by its leaf hash; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let mut level = 0;
        let mut carry = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(carry);
            // A completed pair at this level makes one node at the next.
            match row.as_slice() {
                [.., left, right] if row.len() % 2 == 0 => carry = node_hash(left, right),
                _ => break,
            }
            level += 1;
        }
        self.size() - 1
    }

    /// Drops every leaf from `size` on (used to undo appends whose
    /// transaction failed). Does nothing if the tree is not larger.
    pub fn truncate(&mut self, size: u64) {
        for (k, row) in self.levels.iter_mut().enumerate() {
            // Level k holds the complete subtrees of 2^k leaves.
            let keep =
                usize::try_from(size.checked_shr(k as u32).unwrap_or(0)).unwrap_or(usize::MAX);
            row.truncate(keep);
        }
        while self.levels.len() > 1 && self.levels.last().is_some_and(|r| r.is_empty()) {
            self.levels.pop();
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(EMPTY_ROOT);
        }
        Ok(self.subtree(0, size))
    }

    /// `PATH(index, D[0:size])` of RFC 6962 section 2.1.1.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// `PROOF(size1, D[0:size2])` of RFC 6962 section 2.1.2.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(TreeError::SizesOutOfOrder { size1, size2 });
        }
        let mut proof = Vec::new();
        if size1 > 0 && size1 < size2 {
            self.subproof(size1, 0, size2, true, &mut proof);
        }
        Ok(proof)
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.size() {
            return Err(TreeError::SizeBeyondTree {
                have: self.size(),
                asked: size,
            });
        }
        Ok(())
    }

    /// `MTH(D[start:end])`, where `start` is aligned the way the recursive
    /// definition aligns it.
    fn subtree(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n.is_power_of_two() && start % n == 0 {
            let level = n.trailing_zeros() as usize;
            if let Some(h) = self
                .levels
                .get(level)
                .and_then(|row| row.get((start >> level) as usize))
            {
                return *h;
            }
        }
        if n == 1 {
            // Only reachable with an inconsistent tree, which `push` cannot build.
            return EMPTY_ROOT;
        }
        let k = split_point(n);
        node_hash(
            &self.subtree(start, start + k),
            &self.subtree(start + k, end),
        )
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.subtree(start, start + k));
        }
    }

    fn subproof(&self, m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !complete {
                out.push(self.subtree(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, complete, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.subtree(start, start + k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(n: u64) -> Tree {
        let mut t = Tree::new();
        for i in 0..n {
            t.push(leaf_hash(&i.to_be_bytes()));
        }
        t
    }

    /// The root by the recursive definition, straight from the leaves.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_empty_root_is_the_hash_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(Tree::new().root(0).unwrap(), EMPTY_ROOT);
    }

    #[test]
    fn roots_match_the_recursive_definition_for_every_size() {
        let t = tree_of(70);
        let leaves: Vec<Hash> = (0..70).map(|i| t.leaf(i).unwrap()).collect();
        for size in 0..=70u64 {
            assert_eq!(
                t.root(size).unwrap(),
                reference_root(&leaves[..size as usize]),
                "size {size}"
            );
        }
    }

    #[test]
    fn every_generated_inclusion_proof_verifies_and_a_changed_one_does_not() {
        let t = tree_of(40);
        for size in 1..=40u64 {
            let root = t.root(size).unwrap();
            for index in 0..size {
                let leaf = t.leaf(index).unwrap();
                let proof = t.inclusion_proof(index, size).unwrap();
                verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                }
                let other = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(index, size, &other, &proof, &root).is_err());
            }
        }
    }

    #[test]
    fn every_generated_consistency_proof_verifies_and_a_changed_one_does_not() {
        let t = tree_of(40);
        for size2 in 0..=40u64 {
            let root2 = t.root(size2).unwrap();
            for size1 in 0..=size2 {
                let root1 = t.root(size1).unwrap();
                let proof = t.consistency_proof(size1, size2).unwrap();
                if size1 == 0 {
                    assert_eq!(
                        verify_consistency(size1, size2, &proof, &root1, &root2),
                        Err(ProofError::FromEmptyTree)
                    );
                    continue;
                }
                verify_consistency(size1, size2, &proof, &root1, &root2)
                    .unwrap_or_else(|e| panic!("{size1} -> {size2}: {e}"));
                if size1 > 0 && size1 < size2 {
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last][0] ^= 1;
                    assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err());
                    assert!(verify_consistency(size1, size2, &proof, &root2, &root1).is_err());
                }
            }
        }
    }

    #[test]
    fn proofs_are_refused_for_sizes_the_tree_does_not_have() {
        let t = tree_of(5);
        assert!(t.root(6).is_err());
        assert!(t.inclusion_proof(5, 5).is_err());
        assert!(t.consistency_proof(4, 3).is_err());
        assert!(t.consistency_proof(1, 9).is_err());
    }

    #[test]
    fn truncating_undoes_appends_exactly() {
        for n in [1u64, 2, 7, 8, 23, 40] {
            let mut t = tree_of(40);
            t.truncate(n);
            let fresh = tree_of(n);
            assert_eq!(t.size(), n);
            assert_eq!(t.root(n).unwrap(), fresh.root(n).unwrap());
            // Appending again gives the same tree as never having truncated.
            for i in n..40 {
                t.push(leaf_hash(&i.to_be_bytes()));
            }
            assert_eq!(t.root(40).unwrap(), tree_of(40).root(40).unwrap());
        }
    }

    #[test]
    fn a_shrinking_log_is_refused() {
        assert_eq!(
            verify_consistency(5, 4, &[], &EMPTY_ROOT, &EMPTY_ROOT),
            Err(ProofError::SizeDecreased { size1: 5, size2: 4 })
        );
    }
}
