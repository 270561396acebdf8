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
