//! The development PKI generator writes what certs/README.md promises.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;
use x509_parser::prelude::{FromDer, X509Certificate};

#[test]
fn writes_the_documented_layout_with_private_keys_0600_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    pki.write_to(dir.path()).unwrap();
    for f in [
        "anchors/test-dod-root-ca-3.pem",
        "anchors/test-county-voter-ca.pem",
        "intermediates/test-dod-id-ca-59.pem",
        "crls/test-dod-id-ca-59.crl",
        "server/localhost.cert.pem",
        "untrusted/rogue-root-ca.pem",
        "voters/INDEX.csv",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    for v in &pki.voters {
        let key = dir.path().join(format!("voters/{}.key.pem", v.label));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    let mode = std::fs::metadata(dir.path().join("server/localhost.key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A second run into the same folder refuses rather than overwrite keys.
    assert!(pki.write_to(dir.path()).is_err());
}

#[test]
fn voter_certificates_are_shaped_like_cac_piv_authentication_certificates() {
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    for (label, alg) in [
        ("jane-p256", "1.2.840.10045.2.1"),
        ("john-p384", "1.2.840.10045.2.1"),
        ("maria-rsa", "1.2.840.113549.1.1.1"),
    ] {
        let der = &pki.voter(label).unwrap().issued.cert_der;
        let (rest, c) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty());
        let subject = c.subject().to_string();
        assert!(
            subject.starts_with("C=US, O=U.S. Government, OU=DoD, OU=PKI, OU=USN, CN="),
            "{subject}"
        );
        assert_eq!(c.public_key().algorithm.algorithm.to_id_string(), alg);
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert!(eku
            .other
            .iter()
            .any(|o| o.to_id_string() == "1.3.6.1.4.1.311.20.2.2"));
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        assert!(c.issuer().to_string().contains("CN=Test DOD ID CA-59"));
    }
    // The ID CA's CRL lists exactly the revoked voter.
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&pki.id_ca_crl).unwrap();
    let serials: Vec<&[u8]> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial())
        .collect();
    assert_eq!(
        serials,
        vec![pki.voter("rick-revoked").unwrap().issued.serial.as_slice()]
    );
}
