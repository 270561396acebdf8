//! The DoD-scale CRL benchmark (issue 15 part 6): a CRL listing a million
//! certificates, loaded into the trust store as the gateway loads it.
//!
//! `cargo run --release -p ballot-shared --example crl-scale` makes a dev CA
//! chain and a CRL of `CRL_ENTRIES` (default 1,000,000) entries with
//! 10-byte serials and reason codes (about the size of a DoD CRL), then runs
//! itself twice in fresh processes, once loading the chain with that CRL
//! and once with a small one, and prints for each: load time, resident
//! memory after loading (VmRSS) and its peak (VmHWM), and the cost of one
//! voter's path and revocation check (the handshake's share), median of
//! 2,000.

// A benchmark stops at the first thing that goes wrong.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use devpki::{cac_spec, oid, Ca, CertSpec, CrlEntry, CrlKind, CrlReason, KeyAlg};
use shared::clock::UnixTime;
use shared::pki::{Anchor, TrustStore, Usage};
use shared::x509::IdentityPolicy;
use std::path::Path;
use std::time::{Duration, Instant};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.trim_start_matches(field).trim().to_owned())
        .unwrap_or_default()
}

fn load(dir: &Path, crl_file: &str) {
    let read = |n: &str| std::fs::read(dir.join(n)).expect("read");
    let rss0 = status("VmRSS:");
    let t = Instant::now();
    let store = TrustStore::new(
        vec![Anchor {
            name: "root".into(),
            cert_der: read("root.der"),
            policy: IdentityPolicy::dod_default(),
        }],
        vec![read("ca.der")],
        vec![read("root.crl"), read(crl_file)],
    )
    .expect("trust store");
    let took = t.elapsed();
    let (rss, hwm) = (status("VmRSS:"), status("VmHWM:"));
    let voter = read("voter.der");
    let now = UnixTime(time::OffsetDateTime::now_utc().unix_timestamp() as u64);
    let mut times: Vec<Duration> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            store
                .check_path(&voter, &[], Usage::ClientAuth, now, now)
                .expect("the voter is valid");
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "{crl_file}: {} bytes; load {:.2} s; VmRSS {rss0} before, {rss} after; VmHWM {hwm}; path+revocation check median {:.1} µs",
        std::fs::metadata(dir.join(crl_file)).map(|m| m.len()).unwrap_or(0),
        took.as_secs_f64(),
        median.as_secs_f64() * 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, dir, file] = args.as_slice() {
        if mode == "load" {
            load(Path::new(dir), file);
            return;
        }
    }
    let n: u64 = std::env::var("CRL_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let now = time::OffsetDateTime::now_utc();
    let ca_spec = |subject: &str, path_len: Option<u8>| CertSpec {
        ca: Some(path_len),
        not_before: now - time::Duration::days(365),
        policies: vec![oid::DOD_MEDIUM_HARDWARE_112],
        ..CertSpec::leaf(subject, KeyAlg::P256, now, 3650)
    };
    let root =
        Ca::new_root(&ca_spec("CN=Scale Root CA,O=U.S. Government,C=US", None)).expect("root");
    let ca = root
        .issue_ca(&ca_spec("CN=Scale ID CA-1,O=U.S. Government,C=US", Some(0)))
        .expect("ca");
    let voter = ca
        .issue(&cac_spec(
            "SCALE",
            "VOTER",
            "V",
            "1112223334",
            KeyAlg::P256,
            now,
        ))
        .expect("voter");
    let (from, to) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(7),
    );
    let t = Instant::now();
    let serials: Vec<[u8; 10]> = (0..n)
        .map(|i| {
            let mut s = [0u8; 10];
            s[0] = 0x40; // positive, no leading zero
            s[2..].copy_from_slice(&(i * 2_654_435_761).to_be_bytes());
            s
        })
        .collect();
    let entries: Vec<CrlEntry<'_>> = serials
        .iter()
        .map(|s| CrlEntry {
            reason: Some(CrlReason::Superseded),
            ..CrlEntry::new(s, now - time::Duration::days(3))
        })
        .collect();
    let big = ca
        .crl_with(1, &entries, from, to, CrlKind::Complete)
        .expect("crl");
    eprintln!(
        "made a {n}-entry CRL of {} bytes in {:.1} s",
        big.len(),
        t.elapsed().as_secs_f64()
    );
    let w = |name: &str, data: &[u8]| std::fs::write(dir.path().join(name), data).expect("write");
    w("root.der", &root.issued.cert_der);
    w("ca.der", &ca.issued.cert_der);
    w("voter.der", &voter.cert_der);
    w("root.crl", &root.crl(1, &[], from, to).expect("root crl"));
    w("big.crl", &big);
    w("small.crl", &ca.crl(2, &[], from, to).expect("small crl"));
    drop(big);
    drop(entries);
    drop(serials);
    let me = std::env::current_exe().expect("current exe");
    for file in ["small.crl", "big.crl"] {
        let st = std::process::Command::new(&me)
            .args(["load", &dir.path().display().to_string(), file])
            .status()
            .expect("run");
        assert!(st.success());
    }
}
