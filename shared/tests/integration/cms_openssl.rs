//! The voter signature against an independent implementation: structures
//! made by `openssl cms -sign` verify with this crate (and one altered byte
//! anywhere makes them fail), and structures made by this crate verify with
//! `openssl cms -verify`.

use shared::clock::{Clock, SystemClock};
use shared::pki::{Anchor, TrustStore};
use shared::x509::{IdentityPolicy, VoterIdentity};
use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is part of every machine this project runs on");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn store(pki: &devpki::DevPki) -> TrustStore {
    // The root alone: the intermediate must come from the signature.
    TrustStore::new(
        vec![Anchor {
            name: "Test DoD Root CA 3".into(),
            cert_der: pki.root.issued.cert_der.clone(),
            policy: IdentityPolicy::dod_default(),
        }],
        vec![],
        vec![pki.root_crl.clone(), pki.id_ca_crl.clone()],
    )
    .unwrap()
}

fn full_check(store: &TrustStore, der: &[u8]) -> Result<(Vec<u8>, VoterIdentity), String> {
    let v = shared::cms::verify(der, 1 << 20).map_err(|e| e.to_string())?;
    let now = SystemClock.now();
    let voter = store
        .verify_voter(
            &v.signer_cert,
            &v.other_certs,
            shared::x509::Purpose::Signing,
            now,
            now,
        )
        .map_err(|e| e.to_string())?;
    Ok((v.content, voter.facts.identity))
}

#[test]
fn a_signature_made_by_openssl_verifies_and_one_altered_byte_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    pki.write_to(dir.path()).unwrap();
    let store = store(&pki);
    let ballot = b"%PDF-1.7 a marked ballot, as the voter's package would carry it";
    std::fs::write(dir.path().join("package.bin"), ballot).unwrap();

    for (label, edipi) in [
        ("jane-p256", "1234567890"),
        ("john-p384", "2345678901"),
        ("maria-rsa", "3456789012"),
    ] {
        let out = format!("{label}.p7m");
        testkit::voters::openssl_cms_sign(
            dir.path(),
            label,
            &dir.path().join("package.bin"),
            &dir.path().join(&out),
        );
        let der = std::fs::read(dir.path().join(&out)).unwrap();
        let (content, identity) =
            full_check(&store, &der).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(content, ballot);
        assert_eq!(identity, VoterIdentity::Edipi(edipi.into()));

        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0x01;
            assert!(
                full_check(&store, &bad).is_err(),
                "{label}: altering byte {i} of {} went unnoticed",
                der.len()
            );
        }
    }
}

#[test]
fn a_signature_made_here_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    pki.write_to(dir.path()).unwrap();
    for label in ["jane-p256", "john-p384", "maria-rsa"] {
        let v = pki.voter(label).unwrap();
        let key = shared::cms::VoterKey::from_pem(v.issued.key.pkcs8_pem().as_bytes()).unwrap();
        let der = shared::cms::sign(
            b"package",
            &v.issued.cert_der,
            std::slice::from_ref(&pki.id_ca.issued.cert_der),
            &key,
        )
        .unwrap();
        let file = format!("{label}.ours.p7m");
        std::fs::write(dir.path().join(&file), &der).unwrap();
        let out = openssl(
            &[
                "cms",
                "-verify",
                "-inform",
                "DER",
                "-in",
                &file,
                "-binary",
                "-CAfile",
                "anchors/test-dod-root-ca-3.pem",
                "-purpose",
                "any",
            ],
            dir.path(),
        );
        assert_eq!(out.stdout, b"package", "{label}");
    }
}
