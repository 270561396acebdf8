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
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn prepare(dir: &Path, n: usize, size: usize) {
    let now = testkit::now();
    let pki = devpki::generate(now).unwrap();
    std::fs::write(dir.join("root.der"), &pki.root.issued.cert_der).unwrap();
    let mut csv = String::from("voter_id,edipi,ballot_style\n");
    let mut voters = Vec::new();
    for i in 0..n {
        let edipi = format!("{:010}", 8_000_000_000u64 + i as u64);
        csv.push_str(&format!("V-{i:06},{edipi},s1\n"));
        voters.push(testkit::voters::issue_cac(&pki, &edipi));
    }
    // The county's real ceremony; its passphrase is testkit's.
    let county = testkit::ElectionSpec::new(&csv)
        .max_ballot((size + 1024) as u32)
        .origin("ballots.bench.example/2026")
        .set_up(dir);
    let clock = county.clock.clone();
    // Uploads are made one at a time as they are logged, so memory stays
    // flat in the number of ballots.
    let ballots = voters.iter().enumerate().map(|(i, v)| {
        let mut content = vec![b'x'; size];
        content[..8].copy_from_slice(&(i as u64).to_be_bytes());
        testkit::voters::Logged {
            voter_id: format!("V-{i:06}"),
            identity: format!("edipi:{:010}", 8_000_000_000u64 + i as u64),
            client_cert: v.cert_der.clone(),
            message: testkit::voters::upload(&county.manifest, &pki, v, "s1", content),
            at: None,
            witnessed_at: None,
        }
    });
    testkit::voters::log_directly(&county.gw, &clock, "2026-general", 5, &[], ballots);
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
    std::fs::copy(
        verifier::state::db_path(&dir.join("home")),
        dir.join("pristine.db"),
    )
    .unwrap();
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
    let pw = sequoia_openpgp::crypto::Password::from(testkit::election::PASSPHRASE);
    let inputs = verifier::process::Inputs::new(
        &loaded,
        Some(&pw),
        vec![Anchor {
            name: "root".into(),
            cert_der: std::fs::read(dir.join("root.der")).unwrap(),
            policy: IdentityPolicy::dod_default(),
        }],
    );
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
