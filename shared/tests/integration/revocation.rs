//! Certificate policy and revocation edge cases, on chains built here: every
//! DoD mediumHardware level, RSA and ECDSA chains, a revoked intermediate,
//! and CRLs that were current when a ballot arrived but have expired since.

use devpki::{cac_spec, oid, Ca, CertSpec, KeyAlg};
use shared::clock::UnixTime;
use shared::pki::{Anchor, ChainError, TrustStore};
use shared::x509::{IdentityError, IdentityPolicy, VoterIdentity};
use time::{Duration, OffsetDateTime};

fn t(d: OffsetDateTime) -> UnixTime {
    UnixTime(d.unix_timestamp() as u64)
}

/// A root and an ID CA under it, both with key type `alg`.
struct Chain {
    root: Ca,
    ca: Ca,
    now: OffsetDateTime,
}

impl Chain {
    fn new(root_alg: KeyAlg, ca_alg: KeyAlg) -> Chain {
        let now = OffsetDateTime::now_utc();
        let root = Ca::new_root(&CertSpec {
            ca: Some(None),
            not_before: now - Duration::days(3650),
            ..CertSpec::leaf(
                "CN=Edge Root CA,OU=PKI,OU=DoD,O=U.S. Government,C=US",
                root_alg,
                now,
                3650,
            )
        })
        .unwrap();
        let ca = root
            .issue_ca(&CertSpec {
                ca: Some(Some(0)),
                // As a real DoD ID CA: the levels it may issue at.
                policies: vec![
                    oid::DOD_MEDIUM_HARDWARE,
                    oid::DOD_MEDIUM_HARDWARE_112,
                    oid::DOD_MEDIUM_HARDWARE_128,
                    oid::DOD_MEDIUM_HARDWARE_192,
                    oid::DOD_MEDIUM,
                ],
                not_before: now - Duration::days(1000),
                ..CertSpec::leaf(
                    "CN=Edge ID CA-1,OU=PKI,OU=DoD,O=U.S. Government,C=US",
                    ca_alg,
                    now,
                    1000,
                )
            })
            .unwrap();
        Chain { root, ca, now }
    }

    /// CRLs from both CAs, current now, revoking nothing.
    fn crls(&self) -> Vec<Vec<u8>> {
        vec![self.root_crl(&[]), self.ca_crl(&[])]
    }

    fn root_crl(&self, revoked: &[(&[u8], OffsetDateTime)]) -> Vec<u8> {
        self.root
            .crl(
                1,
                revoked,
                self.now - Duration::hours(1),
                self.now + Duration::days(7),
            )
            .unwrap()
    }

    fn ca_crl(&self, revoked: &[(&[u8], OffsetDateTime)]) -> Vec<u8> {
        self.ca
            .crl(
                1,
                revoked,
                self.now - Duration::hours(1),
                self.now + Duration::days(7),
            )
            .unwrap()
    }

    fn store(&self, crls: Vec<Vec<u8>>) -> TrustStore {
        TrustStore::new(
            vec![Anchor {
                name: "edge".into(),
                cert_der: self.root.issued.cert_der.clone(),
                policy: IdentityPolicy::dod_default(),
            }],
            vec![self.ca.issued.cert_der.clone()],
            crls,
        )
        .unwrap()
    }

    fn voter(&self, alg: KeyAlg, policies: Vec<const_oid::ObjectIdentifier>) -> Vec<u8> {
        self.ca
            .issue(&CertSpec {
                policies,
                ..cac_spec("EDGE", "CASE", "X", "1112223334", alg, self.now)
            })
            .unwrap()
            .cert_der
    }
}

#[test]
fn every_dod_medium_hardware_level_is_accepted_and_nothing_weaker() {
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let s = c.store(c.crls());
    let now = t(c.now);
    for (name, policy) in [
        ("mediumHardware", oid::DOD_MEDIUM_HARDWARE),
        ("mediumHardware-112", oid::DOD_MEDIUM_HARDWARE_112),
        ("mediumHardware-128", oid::DOD_MEDIUM_HARDWARE_128),
        ("mediumHardware-192", oid::DOD_MEDIUM_HARDWARE_192),
    ] {
        let v = s
            .verify_voter(
                &c.voter(KeyAlg::P256, vec![policy]),
                &[],
                shared::x509::Purpose::Authentication,
                now,
                now,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.facts.identity, VoterIdentity::Edipi("1112223334".into()));
    }
    // Software keys (id-US-dod-medium), an unrelated policy, and no policy
    // extension at all are refused.
    for (name, policies) in [
        ("medium (software)", vec![oid::DOD_MEDIUM]),
        ("unrelated", vec![oid::DEV_COUNTY_VOTER]),
        ("none", vec![]),
    ] {
        let e = s
            .verify_voter(
                &c.voter(KeyAlg::P256, policies),
                &[],
                shared::x509::Purpose::Authentication,
                now,
                now,
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                ChainError::Identity(IdentityError::NoAcceptedPolicy { .. })
            ),
            "{name}: {e:?}"
        );
    }
    // One accepted policy among others is enough.
    s.verify_voter(
        &c.voter(
            KeyAlg::P256,
            vec![oid::DOD_MEDIUM, oid::DOD_MEDIUM_HARDWARE_128],
        ),
        &[],
        shared::x509::Purpose::Authentication,
        now,
        now,
    )
    .unwrap();
}

#[test]
fn rsa_and_ecdsa_chains_in_every_combination() {
    let algs = [KeyAlg::Rsa2048, KeyAlg::P256, KeyAlg::P384];
    for root in algs {
        for ca in algs {
            let c = Chain::new(root, ca);
            let s = c.store(c.crls());
            let now = t(c.now);
            for leaf in algs {
                let cert = c.voter(leaf, vec![oid::DOD_MEDIUM_HARDWARE_112]);
                s.verify_voter(&cert, &[], shared::x509::Purpose::Authentication, now, now)
                    .unwrap_or_else(|e| panic!("root {root:?}, CA {ca:?}, voter {leaf:?}: {e}"));
                // And revocation works with that CA's signature algorithm.
                let serial = serial_of(&cert);
                let revoked = c.store(vec![
                    c.root_crl(&[]),
                    c.ca_crl(&[(&serial, c.now - Duration::hours(2))]),
                ]);
                assert!(
                    matches!(
                        revoked.verify_voter(
                            &cert,
                            &[],
                            shared::x509::Purpose::Authentication,
                            now,
                            now
                        ),
                        Err(ChainError::Revoked { .. })
                    ),
                    "root {root:?}, CA {ca:?}, voter {leaf:?}"
                );
            }
        }
    }
}

#[test]
fn a_revoked_intermediate_revokes_its_voters_from_that_moment() {
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let ca_serial = serial_of(&c.ca.issued.cert_der);
    let when = c.now - Duration::days(2);
    let s = c.store(vec![c.root_crl(&[(&ca_serial, when)]), c.ca_crl(&[])]);
    let now = t(c.now);
    // A ballot received after the CA was revoked does not count...
    assert!(matches!(
        s.verify_voter(&cert, &[], shared::x509::Purpose::Authentication, now, now),
        Err(ChainError::Revoked { .. })
    ));
    // ...one received before does, and says so.
    let v = s
        .verify_voter(
            &cert,
            &[],
            shared::x509::Purpose::Authentication,
            t(c.now - Duration::days(3)),
            now,
        )
        .unwrap();
    assert_eq!(v.revoked_later, Some(t(when)));
    // Without the root's CRL the intermediate's status is unknown.
    assert!(matches!(
        c.store(vec![c.ca_crl(&[])]).verify_voter(
            &cert,
            &[],
            shared::x509::Purpose::Authentication,
            now,
            now
        ),
        Err(ChainError::RevocationUnknown { .. })
    ));
}

#[test]
fn a_crl_current_at_receipt_still_decides_after_it_expires() {
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let serial = serial_of(&cert);
    // The ballot arrived ten days ago; the CRLs the bundle carried were
    // current then (issued 15 days ago, expired 5 days ago).
    let received = t(c.now - Duration::days(10));
    let (from, to) = (c.now - Duration::days(15), c.now - Duration::days(5));
    let root_crl = c.root.crl(2, &[], from, to).unwrap();
    let clean = c.ca.crl(2, &[], from, to).unwrap();
    let s = c.store(vec![root_crl.clone(), clean]);
    s.verify_voter(
        &cert,
        &[],
        shared::x509::Purpose::Authentication,
        received,
        t(c.now),
    )
    .unwrap();
    // The same with the card revoked 12 days ago: refused.
    let listed =
        c.ca.crl(3, &[(&serial, c.now - Duration::days(12))], from, to)
            .unwrap();
    let s = c.store(vec![root_crl.clone(), listed]);
    assert!(matches!(
        s.verify_voter(
            &cert,
            &[],
            shared::x509::Purpose::Authentication,
            received,
            t(c.now)
        ),
        Err(ChainError::Revoked { .. })
    ));
    // A CRL that expired before the ballot arrived decides nothing.
    let older =
        c.ca.crl(
            4,
            &[],
            c.now - Duration::days(30),
            c.now - Duration::days(20),
        )
        .unwrap();
    let s = c.store(vec![root_crl, older]);
    assert!(matches!(
        s.verify_voter(
            &cert,
            &[],
            shared::x509::Purpose::Authentication,
            received,
            t(c.now)
        ),
        Err(ChainError::RevocationUnknown { .. })
    ));
}

#[test]
fn a_crl_signed_by_another_key_of_the_same_name_is_ignored() {
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    // Another "Edge ID CA-1" under the same root, with its own key: its CRL
    // (listing nothing) must not vouch for certificates of the real one.
    let twin = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let s = c.store(vec![c.root_crl(&[]), twin.ca_crl(&[])]);
    let now = t(c.now);
    assert!(matches!(
        s.verify_voter(&cert, &[], shared::x509::Purpose::Authentication, now, now),
        Err(ChainError::RevocationUnknown { .. })
    ));
    // A garbled CRL is refused when the store is built.
    let mut bad = c.ca_crl(&[]);
    bad.truncate(bad.len() - 3);
    assert!(TrustStore::new(vec![], vec![], vec![bad]).is_err());
}

/// The serial number's content bytes, as CRLs list them.
fn serial_of(der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    c.raw_serial().to_vec()
}

/// Validates `cert` as received at `received`, checked now.
fn check(
    s: &TrustStore,
    cert: &[u8],
    received: UnixTime,
    now: UnixTime,
) -> Result<Option<UnixTime>, ChainError> {
    s.verify_voter(
        cert,
        &[],
        shared::x509::Purpose::Authentication,
        received,
        now,
    )
    .map(|v| v.revoked_later)
}

#[test]
fn a_compromised_key_is_revoked_from_its_invalidity_date() {
    use devpki::{CrlEntry, CrlKind, CrlReason};
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let serial = serial_of(&cert);
    let now = t(c.now);
    // The ballot arrived 3 days ago; the card was revoked yesterday.
    let received = t(c.now - Duration::days(3));
    let crl = |reason: Option<CrlReason>, invalid_days_ago: Option<i64>| {
        c.ca.crl_with(
            5,
            &[CrlEntry {
                reason,
                invalidity: invalid_days_ago.map(|d| c.now - Duration::days(d)),
                ..CrlEntry::new(&serial, c.now - Duration::days(1))
            }],
            c.now - Duration::hours(1),
            c.now + Duration::days(7),
            CrlKind::Complete,
        )
        .unwrap()
    };
    // keyCompromise, the key suspect since 5 days ago: before the ballot.
    let s = c.store(vec![
        c.root_crl(&[]),
        crl(Some(CrlReason::KeyCompromise), Some(5)),
    ]);
    assert!(
        matches!(check(&s, &cert, received, now), Err(ChainError::Revoked { revoked_at }) if revoked_at == t(c.now - Duration::days(5))),
        "revoked from the invalidity date"
    );
    // keyCompromise, suspect only since 2 days ago: after the ballot, so it
    // counts, and the later revocation is reported from that date.
    let s = c.store(vec![
        c.root_crl(&[]),
        crl(Some(CrlReason::KeyCompromise), Some(2)),
    ]);
    assert_eq!(
        check(&s, &cert, received, now).unwrap(),
        Some(t(c.now - Duration::days(2)))
    );
    // Another reason with an invalidity date (the card was superseded):
    // the revocationDate decides.
    let s = c.store(vec![
        c.root_crl(&[]),
        crl(Some(CrlReason::Superseded), Some(5)),
    ]);
    assert_eq!(
        check(&s, &cert, received, now).unwrap(),
        Some(t(c.now - Duration::days(1)))
    );
}

#[test]
fn the_newest_crl_covering_the_receipt_decides_a_hold_and_nothing_undoes_a_revocation() {
    use devpki::{CrlEntry, CrlKind, CrlReason};
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let serial = serial_of(&cert);
    let now = t(c.now);
    let received = t(c.now - Duration::hours(2));
    let issued = |number: u64, hours_ago: i64, entries: &[CrlEntry<'_>]| {
        c.ca.crl_with(
            number,
            entries,
            c.now - Duration::hours(hours_ago),
            c.now + Duration::days(7),
            CrlKind::Complete,
        )
        .unwrap()
    };
    let held = CrlEntry {
        reason: Some(CrlReason::CertificateHold),
        ..CrlEntry::new(&serial, c.now - Duration::days(2))
    };
    // On hold in an older CRL, lifted in the newest: the card counts.
    let s = c.store(vec![
        c.root_crl(&[]),
        issued(6, 48, &[held]),
        issued(7, 3, &[]),
    ]);
    assert_eq!(check(&s, &cert, received, now).unwrap(), None);
    // Still on hold in the newest: refused.
    let s = c.store(vec![
        c.root_crl(&[]),
        issued(6, 48, &[]),
        issued(7, 3, &[held]),
    ]);
    assert!(matches!(
        check(&s, &cert, received, now),
        Err(ChainError::Revoked { .. })
    ));
    // Revoked (no hold) in an older CRL and missing from the newest: a
    // revocation is final, whatever a later CRL leaves out.
    let revoked = CrlEntry::new(&serial, c.now - Duration::days(2));
    let s = c.store(vec![
        c.root_crl(&[]),
        issued(6, 48, &[revoked]),
        issued(7, 3, &[]),
    ]);
    assert!(matches!(
        check(&s, &cert, received, now),
        Err(ChainError::Revoked { .. })
    ));
}

#[test]
fn a_delta_crl_is_refused_by_name_and_a_base_naming_one_is_not_complete() {
    use devpki::CrlKind;
    let c = Chain::new(KeyAlg::P384, KeyAlg::P384);
    let cert = c.voter(KeyAlg::P256, vec![oid::DOD_MEDIUM_HARDWARE_112]);
    let now = t(c.now);
    let (from, to) = (c.now - Duration::hours(1), c.now + Duration::days(7));
    let delta =
        c.ca.crl_with(9, &[], from, to, CrlKind::Delta { base: 8 })
            .unwrap();
    let e = TrustStore::new(vec![], vec![], vec![delta.clone()]).unwrap_err();
    assert!(
        e.to_string().contains("a delta CRL from") && e.to_string().contains("Edge ID CA-1"),
        "{e}"
    );
    assert!(shared::pki::crl_info(&delta).is_err());
    // A base CRL that names a delta is the CA saying it is not complete:
    // alone, the card's status is unknown, and the CA is named.
    let base =
        c.ca.crl_with(
            8,
            &[],
            from,
            to,
            CrlKind::PointsToDelta {
                url: "http://crl.example/delta.crl",
            },
        )
        .unwrap();
    assert!(shared::pki::crl_info(&base).unwrap().points_to_delta);
    let s = c.store(vec![c.root_crl(&[]), base]);
    assert!(
        matches!(check(&s, &cert, now, now), Err(ChainError::RevocationUnknown { issuer }) if issuer.contains("Edge ID CA-1"))
    );
}
