//! Verifier throughput and memory: import + process of one bundle.
//!
//! `cargo run --release -p ballot-verifier --example bench -- prepare DIR [ballots] [bytes]`
//! builds a verifier (key ceremony), a gateway, and a bundle of distinct
//! voters' real ballots (CMS-signed, encrypted) in DIR, using the real
//! gateway code. Then, in a fresh process,
//! `cargo run --release -p ballot-verifier --example bench -- run DIR`
//! imports and processes it and reports the time per ballot and the peak
//! resident memory of that process (VmHWM). Then it decrypts the same
//! ciphertexts with the same key in a bare sequoia loop on the same cores
//! (the floor no verifier can beat) and prints the ratio of the two.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use shared::clock::{ManualClock, UnixTime};
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

/// CPU seconds this process used so far, all threads (user, system).
fn cpu_seconds() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: utime and stime are fields
    // 14 and 15, in clock ticks (100 per second on Linux).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f[11] / 100.0, f[12] / 100.0)
}

fn prepare(dir: &Path, n: usize, size: usize) {
    let now = testkit::now();
    let pki = devpki::generate(now).unwrap();
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
        .anchors(vec![testkit::election::dod_anchor(&pki)])
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
    // The county's stand-in witnesses cosign as the ballots are logged, so
    // the final canvass finds every ballot on time.
    testkit::voters::log_directly(
        &county.gw,
        &clock,
        "2026-general",
        5,
        &county.stand_in_keys,
        ballots,
    );
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
    let pw = sequoia_openpgp::crypto::Password::from(testkit::election::PASSPHRASE);
    let loaded = verifier::ceremony::load(&dir.join("home"), &pw).unwrap();
    // The final canvass (it writes the contents): after the deadline plus
    // the grace period.
    let clock = ManualClock::new(UnixTime(loaded.manifest.closing_bound().0 + 60));
    // Each run starts from the state right after the ceremony.
    let db = dir.join(format!("run-{}.db", std::process::id()));
    std::fs::copy(dir.join("pristine.db"), &db).unwrap();
    let mut conn = verifier::state::open(&db).unwrap();
    let bundle = verifier::import::bundles_on(&dir.join("usb"))
        .unwrap()
        .remove(0);
    // Unlocking the election key's custody (Argon2id) peaked above what
    // the run needs; the peak is reset here (Linux: writing 5 to
    // clear_refs sets VmHWM to the current resident size), so the figure
    // below is the import's and processing's own.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss0 = peak_rss_mb();
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    let r = verifier::import::import(&mut conn, &bundle, &clock, &mut |_, _| {}).unwrap();
    let import_time = t0.elapsed();
    let c1 = cpu_seconds();
    let n = match r {
        verifier::import::Imported::New { entries, .. } => entries,
        other => panic!("{other:?}"),
    };
    let anchors = verifier::ceremony::pinned_anchors(&conn, &loaded.manifest).unwrap();
    let inputs = verifier::process::Inputs::new(&loaded, Some(&pw), anchors);
    let out = dir.join(format!("canvass-{}", std::process::id()));
    let t1 = Instant::now();
    let o = verifier::process::process(&conn, &inputs, &out, &clock, &mut |_, _, _| {}).unwrap();
    let process_time = t1.elapsed();
    let c2 = cpu_seconds();
    let total = import_time + process_time;
    println!(
        "ballots: {n} (accepted {}, rejected {}; contents written: {})",
        o.accepted,
        o.rejected_total(),
        matches!(o.contents, verifier::process::Contents::Written { .. })
    );
    println!(
        "import: {:.2} s ({:.0} ballots/s); process: {:.2} s ({:.0} ballots/s)",
        import_time.as_secs_f64(),
        n as f64 / import_time.as_secs_f64(),
        process_time.as_secs_f64(),
        n as f64 / process_time.as_secs_f64()
    );
    println!(
        "CPU time (user + system): import {:.2} + {:.2} s; process {:.2} + {:.2} s",
        c1.0 - c0.0,
        c1.1 - c0.1,
        c2.0 - c1.0,
        c2.1 - c1.1
    );
    println!(
        "import + process: {:.2} s, {:.0} ballots/s, {:.2} ms per ballot",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "peak resident memory during import + process: {:.1} MB (resident before: {rss0:.1} MB{})",
        peak_rss_mb(),
        if reset {
            ""
        } else {
            "; the earlier peak could not be reset, so this may be the key unlocking's"
        }
    );
    // The floor: bare sequoia decrypting the same messages with the same
    // key, on the same cores, in this process.
    let unlocked = shared::pgp::unlock(&loaded.election_key, &pw).unwrap();
    let messages: Vec<Vec<u8>> = {
        let mut stmt = conn
            .prepare("SELECT ciphertext FROM leaves ORDER BY leaf_index")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let t2 = Instant::now();
    let bytes = bare::decrypt_all(&unlocked, &messages);
    let bare_time = t2.elapsed();
    let ours = n as f64 / total.as_secs_f64();
    let floor = messages.len() as f64 / bare_time.as_secs_f64();
    println!(
        "bare sequoia decrypt, {} threads: {:.2} s, {floor:.0} ballots/s ({:.0} MB of plaintext)",
        bare::threads(),
        bare_time.as_secs_f64(),
        bytes as f64 / 1e6
    );
    println!(
        "ratio (import + process) / bare decrypt: {:.2}",
        ours / floor
    );
}

/// The reference loop: the decryption sequoia's own examples show, with
/// nothing around it.
mod bare {
    use openpgp::crypto::SessionKey;
    use openpgp::packet::{PKESK, SKESK};
    use openpgp::parse::stream::{
        DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper,
    };
    use openpgp::parse::Parse;
    use openpgp::policy::StandardPolicy;
    use openpgp::types::SymmetricAlgorithm;
    use openpgp::{Cert, KeyHandle};
    use sequoia_openpgp as openpgp;
    use std::io::Read;

    struct Helper<'a>(&'a Cert);

    impl VerificationHelper for Helper<'_> {
        fn get_certs(&mut self, _: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
            Ok(Vec::new())
        }
        fn check(&mut self, _: MessageStructure<'_>) -> openpgp::Result<()> {
            Ok(())
        }
    }

    impl DecryptionHelper for Helper<'_> {
        fn decrypt(
            &mut self,
            pkesks: &[PKESK],
            _: &[SKESK],
            sym_algo: Option<SymmetricAlgorithm>,
            decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
        ) -> openpgp::Result<Option<Cert>> {
            let p = StandardPolicy::new();
            for ka in self
                .0
                .keys()
                .with_policy(&p, None)
                .for_transport_encryption()
                .secret()
            {
                let mut pair = ka.key().clone().into_keypair()?;
                for pkesk in pkesks {
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
            }
            Err(openpgp::anyhow::anyhow!("no key"))
        }
    }

    pub(crate) fn threads() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// Decrypts every message on all cores; returns the plaintext bytes.
    pub(crate) fn decrypt_all(key: &Cert, messages: &[Vec<u8>]) -> usize {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let p = StandardPolicy::new();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads())
                .map(|_| {
                    s.spawn(|| {
                        let mut bytes = 0;
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(m) = messages.get(i) else {
                                break bytes;
                            };
                            let mut d = DecryptorBuilder::from_bytes(m)
                                .unwrap()
                                .with_policy(&p, None, Helper(key))
                                .unwrap();
                            let mut out = Vec::new();
                            d.read_to_end(&mut out).unwrap();
                            bytes += out.len();
                        }
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        })
    }
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
