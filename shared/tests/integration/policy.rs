//! Certificate policies through the path (RFC 5280 section 6.1, the strict
//! subset in docs/spec/identity.md): a card's policy counts only if every
//! CA above it was authorised for it.

use devpki::{cac_spec, oid, Ca, CertSpec, KeyAlg};
use shared::clock::UnixTime;
use shared::pki::{Anchor, ChainError, TrustStore};
use shared::policy::{valid_policies, PolicyError};
use shared::x509::{parse_cert, IdentityPolicy, Purpose};
use spki::ObjectIdentifier;
use time::{Duration, OffsetDateTime};

fn ca_spec(name: &str, now: OffsetDateTime, policies: Vec<ObjectIdentifier>) -> CertSpec {
    CertSpec {
        ca: Some(None),
        not_before: now - Duration::days(1000),
        policies,
        ..CertSpec::leaf(
            &format!("CN={name},OU=PKI,OU=DoD,O=U.S. Government,C=US"),
            KeyAlg::P256,
            now,
            1000,
        )
    }
}

/// A root (the anchor), then CAs down from it as `cas` says, then a card
/// claiming `claimed`. Validates the card as a voter's (no CRLs needed:
/// each CA's CRL is made current).
fn validate(cas: Vec<CertSpec>, claimed: Vec<ObjectIdentifier>) -> Result<(), ChainError> {
    let now = OffsetDateTime::now_utc();
    let root = Ca::new_root(&ca_spec("Policy Root CA", now, vec![])).unwrap();
    let mut chain: Vec<Ca> = Vec::new();
    for spec in &cas {
        let next = chain.last().unwrap_or(&root).issue_ca(spec).unwrap();
        chain.push(next);
    }
    let issuer = chain.last().unwrap_or(&root);
    let card = issuer
        .issue(&CertSpec {
            policies: claimed,
            ..cac_spec("POLICY", "PAT", "P", "1112223334", KeyAlg::P256, now)
        })
        .unwrap();
    let mut crls = vec![root
        .crl(1, &[], now - Duration::hours(1), now + Duration::days(7))
        .unwrap()];
    for ca in &chain {
        crls.push(
            ca.crl(1, &[], now - Duration::hours(1), now + Duration::days(7))
                .unwrap(),
        );
    }
    let store = TrustStore::new(
        vec![Anchor {
            name: "policy".into(),
            cert_der: root.issued.cert_der.clone(),
            policy: IdentityPolicy::dod_default(),
        }],
        chain.iter().map(|c| c.issued.cert_der.clone()).collect(),
        crls,
    )
    .unwrap();
    let at = UnixTime(now.unix_timestamp() as u64);
    store
        .verify_voter(&card.cert_der, &[], Purpose::Authentication, at, at)
        .map(|_| ())
}

fn hardware_ca(name: &str) -> CertSpec {
    ca_spec(
        name,
        OffsetDateTime::now_utc(),
        vec![oid::DOD_MEDIUM_HARDWARE_112, oid::DOD_MEDIUM],
    )
}

#[test]
fn an_intermediate_authorised_for_software_keys_cannot_issue_a_hardware_card() {
    // The control: an ID CA authorised for mediumHardware-112.
    validate(
        vec![hardware_ca("DOD ID CA-90")],
        vec![oid::DOD_MEDIUM_HARDWARE_112],
    )
    .unwrap();
    // An intermediate authorised only for id-US-dod-medium (software keys)
    // issues a card that claims mediumHardware-112: refused, and the error
    // names the card where no policy was left.
    let software = ca_spec(
        "DOD SW CA-91",
        OffsetDateTime::now_utc(),
        vec![oid::DOD_MEDIUM],
    );
    let e = validate(vec![software], vec![oid::DOD_MEDIUM_HARDWARE_112]).unwrap_err();
    assert!(
        matches!(&e, ChainError::Policy(PolicyError::NoneValid { subject, .. }) if subject.contains("POLICY.PAT")),
        "{e}"
    );
    // Two levels down: a software-only CA between the root and a hardware
    // CA taints everything below it.
    let e = validate(
        vec![
            ca_spec(
                "DOD SW CA-92",
                OffsetDateTime::now_utc(),
                vec![oid::DOD_MEDIUM],
            ),
            hardware_ca("DOD ID CA-93"),
        ],
        vec![oid::DOD_MEDIUM_HARDWARE_112],
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::Policy(PolicyError::NoneValid { subject, .. }) if subject.contains("POLICY.PAT")),
        "{e}"
    );
}

#[test]
fn any_policy_passes_through_unless_inhibited() {
    let now = OffsetDateTime::now_utc();
    let any = |name: &str| ca_spec(name, now, vec![oid::ANY_POLICY]);
    // anyPolicy in a CA lets the policies below it through.
    validate(vec![any("Bridge CA-1")], vec![oid::DOD_MEDIUM_HARDWARE_128]).unwrap();
    validate(
        vec![any("Bridge CA-2"), any("Bridge CA-3")],
        vec![oid::DOD_MEDIUM_HARDWARE_128],
    )
    .unwrap();
    // inhibitAnyPolicy 0 in the first: the second CA's anyPolicy no longer
    // stands for every policy, and it asserts nothing else. (Marked
    // critical, as RFC 5280 requires, webpki refuses the path before
    // policy processing: fail closed. Non-critical, it reaches this code.)
    let mut inhibiting = any("Bridge CA-4");
    inhibiting.inhibit_any_policy = Some(0);
    let e = validate(
        vec![inhibiting.clone(), any("Bridge CA-5")],
        vec![oid::DOD_MEDIUM_HARDWARE_128],
    )
    .unwrap_err();
    assert!(matches!(&e, ChainError::Invalid(_)), "{e}");
    inhibiting.policy_extensions_critical = false;
    let e = validate(
        vec![inhibiting.clone(), any("Bridge CA-5")],
        vec![oid::DOD_MEDIUM_HARDWARE_128],
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::Policy(PolicyError::NoneValid { subject, .. }) if subject.contains("CA-5")),
        "{e}"
    );
    // skipCerts 1 lets one more certificate use it.
    inhibiting.inhibit_any_policy = Some(1);
    validate(
        vec![inhibiting, any("Bridge CA-6")],
        vec![oid::DOD_MEDIUM_HARDWARE_128],
    )
    .unwrap();
}

#[test]
fn what_the_subset_does_not_implement_is_refused() {
    let now = OffsetDateTime::now_utc();
    // A CA with no certificatePolicies at all.
    let e = validate(
        vec![ca_spec("DOD ID CA-94", now, vec![])],
        vec![oid::DOD_MEDIUM_HARDWARE_112],
    )
    .unwrap_err();
    assert!(
        matches!(&e, ChainError::Policy(PolicyError::NoPolicies { .. })),
        "{e}"
    );
    // A bridge that maps policies.
    let mut bridge = hardware_ca("Bridge CA-95");
    bridge.policy_mappings = vec![(oid::DOD_MEDIUM, oid::DOD_MEDIUM_HARDWARE_112)];
    let e = validate(vec![bridge.clone()], vec![oid::DOD_MEDIUM_HARDWARE_112]).unwrap_err();
    assert!(
        matches!(&e, ChainError::Invalid(_)),
        "critical: webpki refuses it: {e}"
    );
    bridge.policy_extensions_critical = false;
    let e = validate(vec![bridge], vec![oid::DOD_MEDIUM_HARDWARE_112]).unwrap_err();
    assert!(
        matches!(&e, ChainError::Policy(PolicyError::Mappings { .. })),
        "{e}"
    );
}

#[test]
fn real_dod_id_cas_authorise_what_they_assert_and_nothing_else() {
    let dir = crate::testdata_or_skip!("dod-pki");
    let pem = std::fs::read(dir.join("dod-ca-certs.pem")).unwrap();
    let certs = shared::pki::certs_from_pem_or_der(&pem).unwrap();
    let ca49 = certs
        .iter()
        .find(|d| {
            parse_cert(d)
                .unwrap()
                .subject()
                .to_string()
                .contains("CN=DOD ID CA-49")
        })
        .expect("DOD ID CA-49 is in the test data");
    // A card under it (policy processing reads names and extensions; the
    // signatures were checked before it runs).
    let now = OffsetDateTime::now_utc();
    let issuer = Ca::new_root(&ca_spec("Stand-in", now, vec![])).unwrap();
    let card = |p: ObjectIdentifier| {
        issuer
            .issue(&CertSpec {
                policies: vec![p],
                ..cac_spec("REAL", "PATH", "R", "1112223334", KeyAlg::P256, now)
            })
            .unwrap()
            .cert_der
    };
    let accepted = IdentityPolicy::dod_default().accepted_policies;
    // CA-49 asserts mediumHardware-112 (…11.42): a card claiming it passes.
    let ok = card(oid::DOD_MEDIUM_HARDWARE_112);
    let path = [parse_cert(ca49).unwrap(), parse_cert(&ok).unwrap()];
    let valid = valid_policies(&path, &accepted).unwrap();
    assert!(valid.contains("2.16.840.1.101.2.1.11.42"), "{valid:?}");
    // It does not assert the legacy mediumHardware (…11.9): a card under
    // it claiming that level is refused.
    let legacy = card(oid::DOD_MEDIUM_HARDWARE);
    let path = [parse_cert(ca49).unwrap(), parse_cert(&legacy).unwrap()];
    assert!(matches!(
        valid_policies(&path, &accepted),
        Err(PolicyError::NoneValid { .. })
    ));
}
