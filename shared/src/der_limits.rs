//! A linear walk over a DER encoding that refuses shapes whose decoding
//! would be slow, before anything decodes it.
//!
//! The `der` crate sorts every SET OF it decodes with an insertion sort
//! (each comparison re-encodes both elements), so a SET of n elements in
//! descending order costs n²/2 comparisons: a voter signature whose
//! `digestAlgorithms` held 16,000 entries took seconds to decode, and one
//! at the size limit would take hours. No legitimate voter signature has a
//! SET of more than a handful of elements (digest algorithms, certificates,
//! signer infos, signed attributes, attribute values, the entries of a
//! relative distinguished name), so [`check`] refuses a SET of more than
//! [`Limits::max_set`] elements, a SEQUENCE of more than
//! [`Limits::max_sequence`], nesting deeper than [`Limits::max_depth`] and
//! more than [`Limits::max_nodes`] elements in all. It reads headers with
//! the `der` crate and looks at every byte once.

use der::{Decode, Header, Reader, SliceReader, Tag};
use thiserror::Error;

/// The shape a DER encoding may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most elements in one SET, or in one context-tagged constructed
    /// element (an IMPLICIT SET OF, such as CMS `certificates` and
    /// `signedAttrs`).
    pub max_set: usize,
    /// The most elements in one SEQUENCE.
    pub max_sequence: usize,
    /// The deepest nesting.
    pub max_depth: usize,
    /// The most elements in all.
    pub max_nodes: usize,
    /// The largest element of a SET, in bytes (the sort compares whole
    /// encodings, so its cost is the square of the count times this).
    pub max_set_element: usize,
}

impl Limits {
    /// For a voter's CMS signature: a handful of everything.
    pub const VOTER_SIGNATURE: Limits = Limits {
        max_set: 16,
        max_sequence: 256,
        max_depth: 32,
        max_nodes: 20_000,
        // A certificate is a few kilobytes; nothing else in a SET is large.
        max_set_element: 64 * 1024,
    };
}

/// Why an encoding was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    /// Not DER at all.
    #[error("not a DER encoding: {0}")]
    Malformed(String),
    /// A SET or SEQUENCE with too many elements.
    #[error("a {kind} with more than {max} elements (at byte {at})")]
    TooManyElements {
        /// "SET" or "SEQUENCE".
        kind: &'static str,
        /// The limit.
        max: usize,
        /// Where it starts.
        at: usize,
    },
    /// Nested too deeply.
    #[error("nested more than {0} levels deep")]
    TooDeep(usize),
    /// Too many elements in all.
    #[error("more than {0} elements in all")]
    TooManyNodes(usize),
    /// An element of a SET is too large.
    #[error("an element of a SET is more than {max} bytes (at byte {at})")]
    SetElementTooLarge {
        /// The limit.
        max: usize,
        /// Where it starts.
        at: usize,
    },
}

/// Checks that `bytes` is one DER element within `limits`, in one pass.
pub fn check(bytes: &[u8], limits: &Limits) -> Result<(), ShapeError> {
    let mut nodes = 0usize;
    let mut r = SliceReader::new(bytes).map_err(malformed)?;
    walk_one(&mut r, 0, 0, limits, &mut nodes)?;
    if !r.is_finished() {
        return Err(ShapeError::Malformed("bytes after the end".into()));
    }
    Ok(())
}

fn malformed(e: der::Error) -> ShapeError {
    ShapeError::Malformed(e.to_string())
}

/// Reads one element at `base` + the reader's position, and everything
/// inside it.
fn walk_one(
    r: &mut SliceReader<'_>,
    base: usize,
    depth: usize,
    limits: &Limits,
    nodes: &mut usize,
) -> Result<(), ShapeError> {
    *nodes += 1;
    if *nodes > limits.max_nodes {
        return Err(ShapeError::TooManyNodes(limits.max_nodes));
    }
    let at = base + usize::try_from(r.position()).map_err(malformed)?;
    let header = Header::decode(r).map_err(malformed)?;
    let value_at = base + usize::try_from(r.position()).map_err(malformed)?;
    let value = r.read_slice(header.length).map_err(malformed)?;
    if !header.tag.is_constructed() {
        return Ok(());
    }
    if depth >= limits.max_depth {
        return Err(ShapeError::TooDeep(limits.max_depth));
    }
    let (kind, max) = match header.tag {
        Tag::Sequence => ("SEQUENCE", limits.max_sequence),
        _ => ("SET", limits.max_set),
    };
    let mut inner = SliceReader::new(value).map_err(malformed)?;
    let mut count = 0usize;
    // The largest element so far and where it starts: a SET of one
    // element (an EXPLICIT tag around a large value, such as the signed
    // content) needs no comparison, so the size limit applies from the
    // second element on.
    let mut largest = (0usize, 0usize);
    while !inner.is_finished() {
        count += 1;
        if count > max {
            return Err(ShapeError::TooManyElements { kind, max, at });
        }
        let start = usize::try_from(inner.position()).map_err(malformed)?;
        walk_one(&mut inner, value_at, depth + 1, limits, nodes)?;
        let end = usize::try_from(inner.position()).map_err(malformed)?;
        if end - start > largest.0 {
            largest = (end - start, start);
        }
        if kind == "SET" && count >= 2 && largest.0 > limits.max_set_element {
            return Err(ShapeError::SetElementTooLarge {
                max: limits.max_set_element,
                at: value_at + largest.1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::hostile::tlv;

    fn set_of_ints(n: usize) -> Vec<u8> {
        let body: Vec<u8> = (0..n)
            .rev()
            .flat_map(|i| tlv(0x02, &[(i % 100) as u8 + 1]))
            .collect();
        tlv(0x31, &body)
    }

    #[test]
    fn counts_elements_of_sets_and_sequences() {
        let l = Limits::VOTER_SIGNATURE;
        assert_eq!(check(&set_of_ints(16), &l), Ok(()));
        assert_eq!(
            check(&tlv(0x30, &set_of_ints(17)), &l),
            Err(ShapeError::TooManyElements {
                kind: "SET",
                max: 16,
                at: 2
            })
        );
        // An IMPLICIT SET OF ([0] constructed) counts as a SET.
        let implicit = tlv(0xa0, &set_of_ints(17)[2..]);
        assert!(matches!(
            check(&implicit, &l),
            Err(ShapeError::TooManyElements { kind: "SET", .. })
        ));
        // One large element is fine (an EXPLICIT tag around the content);
        // two, one of them large, are not.
        let big = tlv(0x04, &vec![0u8; 70_000]);
        assert_eq!(check(&tlv(0xa0, &big), &l), Ok(()));
        assert!(matches!(
            check(&tlv(0x31, &[tlv(0x05, &[]), big].concat()), &l),
            Err(ShapeError::SetElementTooLarge { max: 65536, .. })
        ));
        let long_seq = tlv(0x30, &[0x05, 0x00].repeat(257));
        assert!(matches!(
            check(&long_seq, &l),
            Err(ShapeError::TooManyElements {
                kind: "SEQUENCE",
                max: 256,
                ..
            })
        ));
    }

    #[test]
    fn refuses_deep_nesting_many_nodes_and_junk() {
        let l = Limits::VOTER_SIGNATURE;
        let mut deep = vec![0x05, 0x00];
        for _ in 0..40 {
            deep = tlv(0x30, &deep);
        }
        assert_eq!(check(&deep, &l), Err(ShapeError::TooDeep(32)));
        // 200 sequences of 200 NULLs: each within limits, too many in all.
        let row = tlv(0x30, &[0x05, 0x00].repeat(200));
        let many = tlv(0x30, &row.repeat(200));
        assert_eq!(check(&many, &l), Err(ShapeError::TooManyNodes(20_000)));
        assert!(matches!(
            check(&[0x30, 0x05, 0x00], &l),
            Err(ShapeError::Malformed(_))
        ));
        assert!(matches!(
            check(&[0x05, 0x00, 0x00], &l),
            Err(ShapeError::Malformed(_))
        ));
        assert!(matches!(check(&[], &l), Err(ShapeError::Malformed(_))));
    }
}
