//! Hostile ballots a voter on the roster could build with their own card:
//! well signed, but shaped to make the verifier's decoding slow.

use der::{Decode, Header, Reader, SliceReader};

/// A DER element: `tag`, its definite length, `value`.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = (n as u64).to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// The elements inside the DER element `bytes` (each whole, header
/// included), and its tag byte.
fn children(bytes: &[u8]) -> (u8, Vec<Vec<u8>>) {
    let mut r = SliceReader::new(bytes).expect("DER");
    let header = Header::decode(&mut r).expect("a header");
    let value = r.read_slice(header.length).expect("a value");
    let mut inner = SliceReader::new(value).expect("DER");
    let mut out = Vec::new();
    while !inner.is_finished() {
        let start = usize::try_from(inner.position()).expect("position");
        let h = Header::decode(&mut inner).expect("a header");
        inner.read_slice(h.length).expect("a value");
        let end = usize::try_from(inner.position()).expect("position");
        out.push(value[start..end].to_vec());
    }
    (bytes[0], out)
}

/// `cms` (a voter's SignedData, as `shared::cms::sign` makes it) with
/// `n` digest algorithms in `digestAlgorithms`, in descending order, the
/// signer's own (SHA-256) among them. The field is not covered by the
/// signature, so the signature still verifies; an insertion sort on
/// decoding takes n²/2 comparisons.
pub fn with_digest_algorithms(cms: &[u8], n: usize) -> Vec<u8> {
    let (ci_tag, ci) = children(cms);
    let (explicit_tag, explicit) = children(&ci[1]);
    let (sd_tag, mut sd) = children(&explicit[0]);
    // Distinct OIDs 1.2.840.113549.2.(n-1) .. 1.2.840.113549.2.0, each
    // arc in base 128, descending; then SHA-256 (2.16.840.1.101.3.4.2.1).
    let mut algs = Vec::with_capacity(n);
    for k in (0..n.saturating_sub(1)).rev() {
        let mut oid = vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02];
        let mut arc = Vec::new();
        let mut v = k as u64;
        arc.push((v & 0x7f) as u8);
        v >>= 7;
        while v > 0 {
            arc.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        arc.reverse();
        oid.extend(arc);
        algs.extend(tlv(0x30, &tlv(0x06, &oid)));
    }
    algs.extend(tlv(
        0x30,
        &tlv(
            0x06,
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
        ),
    ));
    sd[1] = tlv(0x31, &algs);
    let sd = tlv(sd_tag, &sd.concat());
    let explicit = tlv(explicit_tag, &sd);
    tlv(ci_tag, &[ci[0].clone(), explicit].concat())
}

/// `cms` with `n` extra "other format" certificates of `size` bytes each
/// in its `certificates` SET (`[3]` OtherCertificateFormat, as the cms crate reads it: an OID
/// and an OCTET STRING), in descending order: the largest SET a shape
/// check lets through costs n²/2 comparisons, each of two elements of
/// `size` bytes. The certificates are not signed, so the signature still
/// verifies.
pub fn with_other_certificates(cms: &[u8], n: usize, size: usize) -> Vec<u8> {
    let (ci_tag, ci) = children(cms);
    let (explicit_tag, explicit) = children(&ci[1]);
    let (sd_tag, mut sd) = children(&explicit[0]);
    // SignedData: version, digestAlgorithms, encapContentInfo, [0]
    // certificates, signerInfos.
    let (certs_tag, mut certs) = children(&sd[3]);
    for k in (0..n).rev() {
        let mut body = vec![0u8; size];
        body[0] = k as u8;
        let other = [tlv(0x06, &[0x2a, 0x03, (k % 128) as u8]), tlv(0x04, &body)].concat();
        certs.push(tlv(0xa3, &tlv(0x30, &other)));
    }
    sd[3] = tlv(certs_tag, &certs.concat());
    let sd = tlv(sd_tag, &sd.concat());
    let explicit = tlv(explicit_tag, &sd);
    tlv(ci_tag, &[ci[0].clone(), explicit].concat())
}
