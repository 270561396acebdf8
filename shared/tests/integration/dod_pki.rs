//! Parses the 42 real DoD CA certificates of
//! `../shared/testdata/dod-pki/dod-ca-certs.pem` with the project's own
//! certificate reader and checks the policy OIDs they assert.

use shared::pki::certs_from_pem_or_der;
use shared::x509::{oids, parse_cert, policies};

#[test]
fn parses_every_real_dod_ca_certificate_and_reads_its_policies() {
    let dir = crate::testdata_or_skip!("dod-pki");
    let pem = std::fs::read(dir.join("dod-ca-certs.pem")).unwrap();
    let certs = certs_from_pem_or_der(&pem).unwrap();
    assert_eq!(certs.len(), 42);

    let mut roots = 0;
    let mut id_cas = 0;
    for der in &certs {
        let cert = parse_cert(der).unwrap();
        let full = cert.subject().to_string();
        assert!(
            full.starts_with("C=US, O=U.S. Government, OU=DoD, OU=PKI, CN="),
            "{full}"
        );
        let subject = format!(
            "CN={},",
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
        );
        let ps = policies(&cert);
        for p in &ps {
            // Every policy the DoD asserts is under the DoD or federal PKI arcs.
            assert!(
                p.starts_with("2.16.840.1.101.2.1.11.") || p.starts_with("2.16.840.1.101.3.2.1.3."),
                "{subject}: {p}"
            );
        }
        if subject.starts_with("CN=DoD Root CA") {
            roots += 1;
            assert!(ps.is_empty(), "roots assert no policy: {subject}");
            assert_eq!(
                cert.subject().as_raw(),
                cert.issuer().as_raw(),
                "{subject} is self-issued"
            );
        }
        if subject.starts_with("CN=DOD ID CA-") {
            id_cas += 1;
            // Every ID CA (the issuers of CAC identity certificates) asserts at
            // least one policy that this project accepts by default.
            assert!(
                ps.iter()
                    .any(|p| oids::DOD_DEFAULT_POLICIES.contains(&p.as_str())),
                "{subject}: {ps:?}"
            );
        }
        if subject.starts_with("CN=DOD ID CA-49,") {
            assert_eq!(
                ps,
                [
                    "2.16.840.1.101.2.1.11.36",
                    "2.16.840.1.101.2.1.11.39",
                    "2.16.840.1.101.2.1.11.42",
                    "2.16.840.1.101.2.1.11.59",
                    "2.16.840.1.101.3.2.1.3.13",
                    "2.16.840.1.101.3.2.1.3.17",
                    "2.16.840.1.101.3.2.1.3.39",
                ]
            );
        }
        if subject.starts_with("CN=DOD ID CA-33,") {
            assert!(ps.iter().any(|p| p == oids::DOD_MEDIUM_HARDWARE), "{ps:?}");
        }
    }
    assert_eq!(roots, 4, "DoD Root CA 2, 3, 4 and 5");
    assert_eq!(id_cas, 12);
}
