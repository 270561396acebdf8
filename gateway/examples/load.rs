//! The gateway load harness (not a test): sets up an election, starts the
//! real `ballot-gateway serve` binary as a child process on 127.0.0.1, then
//! many distinct voters upload ballots over mutual TLS, each upload on a new
//! connection as `ballot-return` does. Reports accepted ballots per second,
//! receipt latency (p50, p99, max) and the server process's peak memory.
//!
//! ```sh
//! cargo build --release -p ballot-gateway --bins --examples
//! ./target/release/examples/load [voters] [uploads] [concurrency] [ballot bytes] [rate]
//! ```
//! Defaults: 200 voters, 2000 uploads, 64 at a time, 200000-byte ballots.
//! `rate` (uploads per second) makes the load open-loop: upload i starts at
//! i/rate seconds whether or not earlier ones have finished (still at most
//! `concurrency` at a time); 0 or absent means closed-loop.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    unreachable_pub,
    dead_code
)]

use gateway::config::Limits;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let voters = args.first().copied().unwrap_or(200);
    let uploads = args.get(1).copied().unwrap_or(2000);
    let concurrency = args.get(2).copied().unwrap_or(64);
    let size = args.get(3).copied().unwrap_or(200_000);
    let rate = args.get(4).copied().unwrap_or(0);
    let per_voter = uploads.div_ceil(voters) as u64;
    eprintln!("setting up {voters} voters (distinct certificates)…");
    let w = Arc::new(testkit::world::World::with_voters(
        Limits {
            uploads_per_voter_per_hour: 10_000,
            max_ballots_per_voter: per_voter + 1,
        },
        voters,
        (size + 1024) as u32,
    ));
    eprintln!("signing and encrypting {uploads} ballots of {size} bytes…");
    let t0 = Instant::now();
    let bodies: Vec<(usize, Vec<u8>)> = (0..uploads)
        .map(|i| {
            let v = i % voters;
            let mut content = vec![b'x'; size];
            content[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (v, w.ballot_of(&w.extra[v], content))
        })
        .collect();
    let prep = t0.elapsed();
    let upload_bytes = bodies.first().map(|b| b.1.len()).unwrap_or(0);
    // The real server binary, beside this example in target/<profile>/.
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("ballot-gateway");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p ballot-gateway --bins --examples",
        bin.display()
    );
    let (mut server, port) = testkit::server::spawn_server(&bin, &w.config_file());
    let before = vm_kib(server.id(), "VmRSS:");
    let cpu_before = cpu_ns(server.id());
    let clients: Vec<_> = (0..voters)
        .map(|v| w.client_at(port, &w.extra[v]))
        .collect();
    let clients = Arc::new(clients);
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(uploads);
    for (i, (v, body)) in bodies.into_iter().enumerate() {
        if rate > 0 {
            tokio::time::sleep_until(
                (start + Duration::from_secs_f64(i as f64 / rate as f64)).into(),
            )
            .await;
        }
        let permit = sem.clone().acquire_owned().await.unwrap();
        let clients = clients.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let a = testkit::world::post(&clients[v], body).await;
            drop(permit);
            (t.elapsed(), a.map(|a| a.status.as_u16()).unwrap_or(0))
        }));
    }
    let mut lat = Vec::with_capacity(uploads);
    let mut ok = 0;
    for t in tasks {
        let (d, status) = t.await.unwrap();
        if status == 200 {
            ok += 1;
        }
        lat.push(d);
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let peak = vm_kib(server.id(), "VmHWM:");
    let server_cpu = cpu_ns(server.id()).saturating_sub(cpu_before);
    let mode = if rate > 0 {
        format!("open loop at {rate}/s, at most {concurrency} at a time")
    } else {
        format!("closed loop, concurrency {concurrency}")
    };
    println!("uploads: {uploads} ({ok} accepted), {voters} voters, {mode}, upload size {upload_bytes} bytes");
    println!(
        "client-side preparation (CMS sign + ML-KEM encrypt): {:.1} ms per ballot",
        ms(prep) / uploads as f64
    );
    println!(
        "accepted per second: {:.0}",
        ok as f64 / total.as_secs_f64()
    );
    println!(
        "receipt latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*lat.last().unwrap())
    );
    println!(
        "server CPU time: {:.2} ms per upload (all threads; {:.0} uploads/s per core it would take)",
        server_cpu as f64 / 1e6 / uploads as f64,
        uploads as f64 / (server_cpu as f64 / 1e9)
    );
    println!(
        "server peak memory (VmHWM): {:.1} MB (resident before the load: {:.1} MB)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    println!("log size after the run: {}", w.ballots_stored());
}

/// CPU time of every thread of a process so far, in nanoseconds (the
/// first field of each thread's schedstat).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| {
                    s.split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A field of /proc/PID/status, in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
