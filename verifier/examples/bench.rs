//! Verifier throughput and memory: import + process of one bundle.
//!
//! `cargo run --release -p ballot-verifier --example bench -- prepare DIR [ballots] [bytes]`
//! builds a verifier (key ceremony), a gateway, and a bundle of distinct
//! voters' real ballots (CMS-signed, encrypted) in DIR, using the real
//! gateway code. Then, in a fresh process,
//! `cargo run --release -p ballot-verifier --example bench -- run DIR`
//! imports and processes it and reports the time per ballot and the peak
//! resident memory of that process (VmHWM).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use shared::clock::{ManualClock, UnixTime};
use shared::pki::Anchor;
use shared::x509::IdentityPolicy;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const PASS: &str = "benchmark passphrase, not secret";

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn prepare(dir: &Path, n: usize, size: usize) {
    let now = time::OffsetDateTime::now_utc();
    let t = now.unix_timestamp() as u64;
    let clock = ManualClock::new(UnixTime(t));
    let pki = devpki::generate(now).unwrap();
    std::fs::write(dir.join("root.der"), &pki.root.issued.cert_der).unwrap();
    gateway::setup::init(
        &dir.join("gw"),
        "ballots.bench.example/2026",
        &dir.join("gw-media"),
        &clock,
    )
    .unwrap();
    let mut csv = String::from("voter_id,edipi,ballot_style\n");
    let mut voters = Vec::new();
    for i in 0..n {
        let edipi = format!("{:010}", 8_000_000_000u64 + i as u64);
        csv.push_str(&format!("V-{i:06},{edipi},s1\n"));
        voters.push(
            pki.id_ca
                .issue(&devpki::cac_spec(
                    "BENCH",
                    "VOTER",
                    "X",
                    &edipi,
                    devpki::KeyAlg::P256,
                    now,
                ))
                .unwrap(),
        );
    }
    let params = verifier::ceremony::ElectionParams {
        election_id: "2026-general".into(),
        title: "Benchmark election".into(),
        jurisdiction: "Bench County".into(),
        opens_at: UnixTime(t - 3600),
        closes_at: UnixTime(t + 86_400),
        declaration: "I am eligible.".into(),
        accepted_media: vec![shared::manifest::MediaRule {
            media_type: "application/pdf".into(),
            max_size: (size + 1024) as u32,
        }],
        witness_name: "bench.example/witness".into(),
    };
    let pw = sequoia_openpgp::crypto::Password::from(PASS);
    let fpr = verifier::ceremony::init(
        &dir.join("home"),
        &dir.join("gw-media"),
        &dir.join("v-media"),
        &params,
        &csv,
        &pw,
        &clock,
    )
    .unwrap();
    gateway::setup::import_setup(&dir.join("gw"), &dir.join("v-media"), &fpr, &clock).unwrap();
    let manifest = shared::manifest::ElectionManifest::open_signed(
        &std::fs::read(dir.join("v-media/election-manifest.signed")).unwrap(),
        &fpr,
    )
    .unwrap();
    let keys = gateway::setup::load_keys(&dir.join("gw")).unwrap();
    let (seq, writer) = gateway::sequencer::Sequencer::start(
        &dir.join("gw/gateway.db"),
        keys.log,
        Arc::new(clock.clone()),
        gateway::sequencer::SequencerConfig {
            election_id: "2026-general".into(),
            max_ballots_per_voter: 5,
        },
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (i, v) in voters.iter().enumerate() {
            let mut content = vec![b'x'; size];
            content[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let upload = gateway::client::prepare(
                &manifest,
                &gateway::client::Ballot {
                    content,
                    media_type: "application/pdf".into(),
                    ballot_style: "s1".into(),
                },
                &gateway::client::Credentials {
                    cert: v.cert_der.clone(),
                    chain: vec![pki.id_ca.issued.cert_der.clone()],
                    key: shared::cms::VoterKey::from_pem(v.key.pkcs8_pem().as_bytes()).unwrap(),
                },
            )
            .unwrap();
            seq.submit(gateway::sequencer::NewBallot {
                voter_id: format!("V-{i:06}"),
                identity: format!("edipi:{:010}", 8_000_000_000u64 + i as u64),
                client_cert: v.cert_der.clone(),
                message: upload.into(),
            })
            .await
            .unwrap();
        }
        seq.stop().await;
    });
    writer.join().unwrap();
    let s = gateway::export::export(
        &dir.join("gw"),
        &[pki.root_crl.clone(), pki.id_ca_crl.clone()],
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
        &dir.join("usb"),
        false,
        &clock,
    )
    .unwrap()
    .unwrap();
    std::fs::copy(dir.join("home/verifier.db"), dir.join("pristine.db")).unwrap();
    println!(
        "prepared {} ballots of {size} bytes in {}",
        s.entries,
        s.dir.display()
    );
}

fn run(dir: &Path) {
    let clock = ManualClock::new(UnixTime(
        time::OffsetDateTime::now_utc().unix_timestamp() as u64
    ));
    let loaded = verifier::ceremony::load(&dir.join("home")).unwrap();
    // Each run starts from the state right after the ceremony.
    let db = dir.join(format!("run-{}.db", std::process::id()));
    std::fs::copy(dir.join("pristine.db"), &db).unwrap();
    let mut conn = verifier::state::open(&db).unwrap();
    let bundle = verifier::import::bundles_on(&dir.join("usb"))
        .unwrap()
        .remove(0);
    let rss0 = peak_rss_mb();
    let t0 = Instant::now();
    let r = verifier::import::import(&mut conn, &bundle, &clock, &mut |_, _| {}).unwrap();
    let import_time = t0.elapsed();
    let n = match r {
        verifier::import::Imported::New { entries, .. } => entries,
        other => panic!("{other:?}"),
    };
    let pw = sequoia_openpgp::crypto::Password::from(PASS);
    let inputs = verifier::process::Inputs {
        election_key: &loaded.election_key,
        password: Some(&pw),
        witness: &loaded.witness,
        manifest: &loaded.manifest,
        roster: &loaded.roster,
        anchors: vec![Anchor {
            name: "root".into(),
            cert_der: std::fs::read(dir.join("root.der")).unwrap(),
            policy: IdentityPolicy::dod_default(),
        }],
    };
    let out = dir.join(format!("canvass-{}", std::process::id()));
    let t1 = Instant::now();
    let o = verifier::process::process(&conn, &inputs, &out, &clock, &mut |_, _, _| {}).unwrap();
    let process_time = t1.elapsed();
    let total = import_time + process_time;
    println!(
        "ballots: {n} (accepted {}, rejected {})",
        o.accepted,
        o.rejected_total()
    );
    println!(
        "import: {:.2} s ({:.0} ballots/s); process: {:.2} s ({:.0} ballots/s)",
        import_time.as_secs_f64(),
        n as f64 / import_time.as_secs_f64(),
        process_time.as_secs_f64(),
        n as f64 / process_time.as_secs_f64()
    );
    println!(
        "import + process: {:.2} s, {:.0} ballots/s, {:.2} ms per ballot",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "peak resident memory: {:.1} MB (before import: {rss0:.1} MB)",
        peak_rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.get(1).expect("DIR"));
    match args.first().map(String::as_str) {
        Some("prepare") => {
            std::fs::create_dir_all(dir).unwrap();
            let n = args.get(2).map_or(1000, |a| a.parse().unwrap());
            let size = args.get(3).map_or(200_000, |a| a.parse().unwrap());
            prepare(dir, n, size)
        }
        Some("run") => run(dir),
        _ => eprintln!("usage: bench prepare DIR [ballots] [bytes] | bench run DIR"),
    }
}
