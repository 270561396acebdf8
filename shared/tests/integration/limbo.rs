//! x509-limbo (`../shared/testdata/x509-limbo/limbo.json`) through the
//! project's own certificate validation, `shared::pki::TrustStore`: the
//! code the gateway runs on client certificates and the verifier on CMS
//! signers. CLIENT cases validate with client-authentication usage, SERVER
//! cases with server-authentication usage plus the peer-name check that
//! rustls (webpki) applies to the gateway's own certificate in the voter
//! client.
//!
//! Cases with CRLs run with revocation required, as in production (every
//! certificate below the anchor needs a current CRL); cases without CRLs
//! run without revocation checking, since production would refuse every one
//! of them for lack of a CRL and the case would test nothing else.
//!
//! Every result must match `expected_result`, except the cases listed with
//! their reason in `limbo-exceptions.txt` beside this file; a listed case
//! that now matches fails the test too, so the list stays true.

use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use shared::clock::UnixTime;
use shared::pki::{Anchor, Revocation, TrustStore, Usage};
use shared::x509::IdentityPolicy;
use std::collections::BTreeMap;

const EXCEPTIONS: &str = include_str!("limbo-exceptions.txt");

fn pem_ders(pems: &[Value], tag: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for p in pems {
        let text = p.as_str().ok_or("not a string")?;
        for block in pem::parse_many(text).map_err(|e| e.to_string())? {
            if block.tag() == tag {
                out.push(block.into_contents());
            }
        }
    }
    Ok(out)
}

fn time_of(case: &Value) -> Result<UnixTime, String> {
    match case.pointer("/validation_time").and_then(|v| v.as_str()) {
        None => Ok(UnixTime(
            time::OffsetDateTime::now_utc().unix_timestamp() as u64
        )),
        Some(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("validation_time {s}: {e}"))?;
            Ok(UnixTime(t.unix_timestamp() as u64))
        }
    }
}

/// Runs one case; `Ok(())` is SUCCESS, `Err(why)` is FAILURE.
fn run(case: &Value) -> Result<(), String> {
    let get = |k: &str| case.pointer(k).cloned().unwrap_or(Value::Null);
    let empty = Vec::new();
    let anchors: Vec<Anchor> = pem_ders(
        get("/trusted_certs").as_array().unwrap_or(&empty),
        "CERTIFICATE",
    )?
    .into_iter()
    .enumerate()
    .map(|(i, der)| Anchor {
        name: format!("limbo-anchor-{i}"),
        cert_der: der,
        policy: IdentityPolicy::dod_default(),
    })
    .collect();
    let intermediates = pem_ders(
        get("/untrusted_intermediates").as_array().unwrap_or(&empty),
        "CERTIFICATE",
    )?;
    let crls = pem_ders(get("/crls").as_array().unwrap_or(&empty), "X509 CRL")?;
    let revocation = if crls.is_empty() {
        Revocation::NotChecked
    } else {
        Revocation::Required
    };
    let peer = pem_ders(&[get("/peer_certificate")], "CERTIFICATE")?
        .pop()
        .ok_or("no peer certificate")?;
    let usage = match get("/validation_kind").as_str() {
        Some("CLIENT") => Usage::ClientAuth,
        _ => Usage::ServerAuth,
    };
    let at = time_of(case)?;
    // A store whose anchors or CRLs do not parse refuses everything.
    let store = TrustStore::new(anchors, vec![], crls).map_err(|e| e.to_string())?;
    // The case's intermediates are what a peer would present.
    store
        .check_path_with(&peer, &intermediates, usage, at, at, revocation)
        .map_err(|e| e.to_string())?;
    if usage == Usage::ServerAuth {
        if let Some(name) = case.pointer("/expected_peer_name") {
            let value = name
                .pointer("/value")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let server_name = match name.pointer("/kind").and_then(|v| v.as_str()) {
                Some("IP") => value
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ServerName::IpAddress(ip.into()))
                    .map_err(|e| e.to_string())?,
                Some("DNS") => ServerName::try_from(value.to_owned()).map_err(|e| e.to_string())?,
                other => return Err(format!("peer name kind {other:?} not supported")),
            };
            let der = CertificateDer::from(peer.as_slice());
            webpki::EndEntityCert::try_from(&der)
                .map_err(|e| format!("{e:?}"))?
                .verify_is_valid_for_subject_name(&server_name)
                .map_err(|e| format!("name: {e:?}"))?;
        }
    }
    Ok(())
}

fn exceptions() -> BTreeMap<String, String> {
    EXCEPTIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, why) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(!why.trim().is_empty(), "exception {id} has no reason");
            (id.to_owned(), why.trim().to_owned())
        })
        .collect()
}

#[test]
fn x509_limbo() {
    let dir = crate::testdata_or_skip!("x509-limbo");
    let data = std::fs::read(dir.join("limbo.json")).unwrap();
    let doc: Value = serde_json::from_slice(&data).unwrap();
    let cases = doc
        .pointer("/testcases")
        .and_then(|c| c.as_array())
        .unwrap();
    let exceptions = exceptions();
    let (mut matched, mut excused) = (0, 0);
    let mut wrong = Vec::new();
    let mut stale = Vec::new();
    for case in cases {
        let id = case.pointer("/id").and_then(|v| v.as_str()).unwrap();
        let expected = case
            .pointer("/expected_result")
            .and_then(|v| v.as_str())
            .unwrap();
        let got = run(case);
        let ok = (expected == "SUCCESS") == got.is_ok();
        match (ok, exceptions.contains_key(id)) {
            (true, false) => matched += 1,
            (false, true) => excused += 1,
            (true, true) => stale.push(id.to_owned()),
            (false, false) => wrong.push(format!(
                "{id}: expected {expected}, got {}",
                got.err().unwrap_or_else(|| "SUCCESS".into())
            )),
        }
    }
    let unknown: Vec<&String> = exceptions
        .keys()
        .filter(|id| {
            !cases
                .iter()
                .any(|c| c.pointer("/id").and_then(|v| v.as_str()) == Some(id.as_str()))
        })
        .collect();
    println!(
        "x509-limbo: {} cases, {matched} match the expected result, {excused} listed exceptions",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "cases with the wrong result:\n{}",
        wrong.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed as exceptions but now matching: {stale:?}"
    );
    assert!(
        unknown.is_empty(),
        "exceptions for cases that do not exist: {unknown:?}"
    );
}
