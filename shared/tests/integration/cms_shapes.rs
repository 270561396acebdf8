//! Voter signatures shaped to make decoding slow: each is refused, quickly,
//! by its shape, before anything decodes it.

use shared::cms::{sign, verify, SignatureError, VoterKey};
use std::time::{Duration, Instant};

/// Far beyond a refusal by shape even in a debug build on a loaded
/// machine; decoding 4,000 descending digest algorithms takes longer.
const QUICK: Duration = Duration::from_secs(5);

fn jane_signed(content: &[u8]) -> Vec<u8> {
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    let v = pki.voter("jane-p256").unwrap();
    let key = VoterKey::from_pem(v.issued.key.pkcs8_pem().as_bytes()).unwrap();
    sign(
        content,
        &v.issued.cert_der,
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
        &key,
    )
    .unwrap()
}

#[test]
fn a_signature_with_thousands_of_digest_algorithms_is_refused_by_its_shape() {
    let good = jane_signed(b"a ballot package");
    // Two: still a good signature (the field is not signed).
    let two = testkit::hostile::with_digest_algorithms(&good, 2);
    assert_eq!(verify(&two, 1 << 24).unwrap().content, b"a ballot package");
    for n in [4_000, 17, 16_000] {
        let bad = testkit::hostile::with_digest_algorithms(&good, n);
        let t = Instant::now();
        let r = verify(&bad, 1 << 24);
        let took = t.elapsed();
        println!(
            "{n} digest algorithms ({} bytes): {:?} in {took:?}",
            bad.len(),
            r.as_ref().map(|_| "verified")
        );
        assert!(
            matches!(&r, Err(SignatureError::Malformed(m)) if m.contains("a SET with more than 16 elements")),
            "{n}: {r:?}"
        );
        assert!(took < QUICK, "{n}: {took:?}");
    }
}

#[test]
fn the_costliest_set_the_shape_check_lets_through_is_decoded_quickly() {
    let good = jane_signed(b"a ballot package");
    // The certificates SET with 14 extra elements of 1 MiB in descending
    // order (about 15 MB, within a voter signature's size limit): before
    // the element-size limit this decoded in about a second and verified
    // (the extra "other format" certificates were skipped).
    let big = testkit::hostile::with_other_certificates(&good, 14, 1 << 20);
    let t = Instant::now();
    let r = verify(&big, shared::cms::MAX_VOTER_SIGNATURE);
    let took = t.elapsed();
    println!(
        "16 certificates, 14 of 1 MiB ({} bytes): {:?} in {took:?}",
        big.len(),
        r.as_ref().map(|_| "verified")
    );
    assert!(
        matches!(&r, Err(SignatureError::Malformed(m)) if m.contains("an element of a SET is more than 65536 bytes")),
        "{r:?}"
    );
    assert!(took < QUICK, "{took:?}");
    // The costliest SET the shape check lets through: 16 elements just
    // under 64 KiB each, in descending order. Decoded, then refused for
    // its non-X.509 certificates.
    let worst = testkit::hostile::with_other_certificates(&good, 14, 65_000);
    let t = Instant::now();
    let r = verify(&worst, shared::cms::MAX_VOTER_SIGNATURE);
    let took = t.elapsed();
    println!(
        "16 certificates, 14 of 65,000 bytes ({} bytes): {:?} in {took:?}",
        worst.len(),
        r.as_ref().map(|_| "verified")
    );
    assert_eq!(
        r.map(|_| ()),
        Err(SignatureError::Unacceptable(
            "only X.509 certificates are accepted in a voter signature"
        ))
    );
    assert!(took < QUICK, "{took:?}");
}
