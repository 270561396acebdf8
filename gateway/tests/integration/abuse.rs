//! Abuse on loopback, bounded: idle connections by the thousand, slowloris
//! (before and after the TLS handshake), slow bodies, oversized headers and
//! bodies, HTTP/2 rapid reset. Throughout, a legitimate voter opening a new
//! connection must be answered within a second.
//!
//! Attackers connect from 127.0.0.2 and 127.0.0.3 (the whole of 127/8 is
//! loopback on Linux); the voter from 127.0.0.1. The server runs with short
//! timeouts (3 s handshake and header, 8 s request and upload stall) so the
//! test ends soon;
//! the mechanisms are the ones the defaults use.

use crate::fixture::{post, Running, World};
use gateway::config::Limits;
use http::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HANDSHAKE: u64 = 3;
const HEADER: u64 = 3;
const REQUEST: u64 = 8;
/// What the voter is promised.
const SERVED_WITHIN: Duration = Duration::from_secs(1);

fn world() -> World {
    let mut w = World::with_voters(
        Limits {
            uploads_per_voter_per_hour: 10_000,
            max_ballots_per_voter: 10_000,
        },
        60,
        300 * 1024,
    );
    w.config.server.tls_handshake_timeout_secs = HANDSHAKE;
    w.config.server.header_read_timeout_secs = HEADER;
    w.config.server.request_timeout_secs = REQUEST;
    w.config.server.upload_stall_timeout_secs = REQUEST;
    w.config.server.max_connections = 8192;
    w.config.server.max_requests_per_connection = 5;
    w
}

async fn connect_from(ip: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((ip, 0)))?;
    s.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// The legitimate voter, on a new connection each time, until `stop`:
/// fetches the election and now and then uploads a ballot. Returns the
/// slowest answer.
async fn voter(w: Arc<World>, port: u16, stop: Arc<AtomicBool>) -> (Duration, usize) {
    let gw = w.client_at(port, &w.pki.voter("jane-p256").unwrap().issued);
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let a = if n % 5 == 4 {
            let b = w.ballot("jane-p256", &format!("probe {n}"));
            let t = Instant::now();
            let a = post(&gw, b).await.unwrap();
            slowest = slowest.max(t.elapsed());
            a
        } else {
            let a = gw.request(Method::GET, "/v1/election", None).await.unwrap();
            slowest = slowest.max(t.elapsed());
            a
        };
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (slowest, n)
}

/// Waits until the peer closes (EOF or error); returns how long it took, or
/// `None` if `limit` passed first. Anything the server sends is read and
/// returned too.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((t.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn tls_to(
    w: &World,
    port: u16,
    from: [u8; 4],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    tls_to_as(w, &w.extra[1], port, from, alpn).await
}

async fn tls_to_as(
    w: &World,
    voter: &devpki::Issued,
    port: u16,
    from: [u8; 4],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = connect_from(from, port).await.unwrap();
    let cfg = w.tls_for(voter, alpn);
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

fn start_voter(
    w: &Arc<World>,
    r: &Running,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<(Duration, usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(voter(w.clone(), r.port, stop.clone()));
    (stop, task)
}

async fn finish_voter(
    what: &str,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Duration, usize)>,
) {
    stop.store(true, Ordering::SeqCst);
    let (slowest, n) = task.await.unwrap();
    println!("{what}: the voter was answered {n} times, slowest {slowest:?}");
    assert!(n >= 5, "{what}: the voter got only {n} answers");
    assert!(
        slowest < SERVED_WITHIN,
        "{what}: the voter waited {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_do_not_starve_a_voter() {
    let _heavy = crate::fixture::heavy().await;
    let w = Arc::new(world());
    let r = w.start().await;
    let port = r.port;
    let idle_wanted = 3000u64;
    // Both ends of every connection live in this process.
    let limit = gateway::server::raise_file_limit((3 * idle_wanted) as usize + 1000);
    let idle_n = idle_wanted.min(limit.saturating_sub(1000) / 3) as usize;
    if idle_n < idle_wanted as usize {
        println!("NOTE: the open-file limit is {limit}; using {idle_n} idle connections");
    }

    let (stop, voter) = start_voter(&w, &r);

    // 1. Thousands of idle TCP connections that never start TLS.
    let mut idle = Vec::with_capacity(idle_n);
    for _ in 0..idle_n {
        idle.push(connect_from([127, 0, 0, 2], port).await.unwrap());
    }
    // 2. Slowloris before TLS: a ClientHello one byte at a time.
    let mut raw_slow = Vec::new();
    for _ in 0..100 {
        raw_slow.push(tokio::spawn(async move {
            let mut s = connect_from([127, 0, 0, 3], port).await.unwrap();
            let hello = [
                0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ];
            let t = Instant::now();
            for b in hello.iter().cycle() {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                if t.elapsed() > Duration::from_secs(HANDSHAKE + 10) {
                    return None;
                }
            }
            Some(t.elapsed())
        }));
    }
    // 3. Slowloris after TLS, with a valid card: headers one byte at a time.
    let mut tls_slow = Vec::new();
    for _ in 0..50 {
        let w = w.clone();
        tls_slow.push(tokio::spawn(async move {
            let s = tls_to(&w, port, [127, 0, 0, 3], &[b"http/1.1"]).await;
            let (mut rd, mut wr) = tokio::io::split(s);
            let t = Instant::now();
            let writer = tokio::spawn(async move {
                let _ = wr
                    .write_all(b"GET /v1/election HTTP/1.1\r\nHost: localhost\r\n")
                    .await;
                for b in b"X-Slow: ".iter().cycle() {
                    if wr.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
            let r = closed_within(&mut rd, Duration::from_secs(HEADER + 10)).await;
            writer.abort();
            r.map(|_| t.elapsed())
        }));
    }
    // 4. Slow bodies, with valid cards: a 200 KB upload at 20 bytes a second,
    // two per card (the most one voter may have in progress).
    let mut slow_body = Vec::new();
    for i in 0..50 {
        let w = w.clone();
        slow_body.push(tokio::spawn(async move {
            let s = tls_to_as(&w, &w.extra[i / 2], port, [127, 0, 0, 3], &[b"http/1.1"]).await;
            let (mut rd, mut wr) = tokio::io::split(s);
            let writer = tokio::spawn(async move {
                let head = format!(
                    "POST /v1/ballots HTTP/1.1\r\nHost: localhost\r\nContent-Length: 200000\r\nX-N: {i}\r\n\r\n"
                );
                let _ = wr.write_all(head.as_bytes()).await;
                loop {
                    if wr.write_all(&[0xc1; 10]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            let r = closed_within(&mut rd, Duration::from_secs(REQUEST + 10)).await;
            writer.abort();
            r.map(|(d, got)| (d, String::from_utf8_lossy(&got).into_owned()))
        }));
    }

    // The voter keeps being served while all of that is going on...
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A third upload from a card with two slow ones in progress is refused.
    let third = post(
        &w.client_at(port, &w.extra[0]),
        w.ballot_of(&w.extra[0], b"%PDF third".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(String::from_utf8_lossy(&third.body).contains("upload-in-progress"));

    // ...and every attacker is cut off by its own limit.
    for t in raw_slow {
        let d = t
            .await
            .unwrap()
            .expect("a byte-by-byte ClientHello was never cut off");
        assert!(d <= Duration::from_secs(HANDSHAKE + 3), "{d:?}");
    }
    for t in tls_slow {
        let d = t.await.unwrap().expect("slow headers were never cut off");
        assert!(d <= Duration::from_secs(HEADER + 3), "{d:?}");
    }
    for t in slow_body {
        let (d, got) = t.await.unwrap().expect("a slow body was never cut off");
        assert!(d <= Duration::from_secs(REQUEST + 3), "{d:?}");
        assert!(
            got.contains("408") && got.contains("request-timeout"),
            "{got}"
        );
    }
    let mut idle_closed = 0;
    for mut s in idle {
        if closed_within(&mut s, Duration::from_secs(1))
            .await
            .is_some()
        {
            idle_closed += 1;
        }
    }
    assert_eq!(
        idle_closed, idle_n,
        "idle connections outlived the handshake timeout"
    );
    finish_voter(
        &format!("{idle_n} idle connections, 100 slow ClientHellos, 50 slowloris, 50 slow bodies"),
        stop,
        voter,
    )
    .await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_bodies_are_refused_quickly() {
    let _heavy = crate::fixture::heavy().await;
    let w = Arc::new(world());
    let r = w.start().await;
    let port = r.port;
    let (stop, voter) = start_voter(&w, &r);
    let started = Instant::now();

    let mut attacks = Vec::new();
    for round in 0..20 {
        let w = w.clone();
        attacks.push(tokio::spawn(async move {
            let mut s = tls_to_as(&w, &w.extra[round], port, [127, 0, 0, 2], &[b"http/1.1"]).await;
            match round % 4 {
                // A 1 MiB header.
                0 => {
                    let _ = s
                        .write_all(b"GET /v1/election HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
                        .await;
                    let _ = s.write_all(&vec![b'a'; 1 << 20]).await;
                    let _ = s.write_all(b"\r\n\r\n").await;
                }
                // Ten thousand small headers.
                1 => {
                    let mut h = b"GET /v1/election HTTP/1.1\r\nHost: localhost\r\n".to_vec();
                    for i in 0..10_000 {
                        h.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
                    }
                    h.extend_from_slice(b"\r\n");
                    let _ = s.write_all(&h).await;
                }
                // A declared 50 GB body.
                2 => {
                    let _ = s
                        .write_all(b"POST /v1/ballots HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000000000\r\n\r\n")
                        .await;
                    let _ = s.write_all(&[0xc1; 65536]).await;
                }
                // A chunked body that never ends (10 MiB sent).
                _ => {
                    let _ = s
                        .write_all(b"POST /v1/ballots HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .await;
                    let chunk = [b"10000\r\n".as_slice(), &[0xc1; 0x10000], b"\r\n"].concat();
                    for _ in 0..160 {
                        if s.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let r = closed_within(&mut s, Duration::from_secs(10)).await;
            let (d, got) = r.expect("the server never ended an oversized request");
            (round % 4, d, String::from_utf8_lossy(&got).into_owned())
        }));
    }
    for a in attacks {
        let (kind, d, got) = a.await.unwrap();
        // Headers: hyper answers 431 or closes; bodies: our 413 JSON.
        match kind {
            0 | 1 => assert!(got.is_empty() || got.starts_with("HTTP/1.1 431"), "{got}"),
            _ => assert!(
                got.starts_with("HTTP/1.1 413") && got.contains("ballot-too-large"),
                "{got}"
            ),
        }
        assert!(d < Duration::from_secs(5), "kind {kind} took {d:?}");
    }
    // Let the voter make a few more requests after the attacks.
    tokio::time::sleep_until((started + Duration::from_secs(2)).into()).await;
    finish_voter("20 oversized header and body requests", stop, voter).await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_cut_off() {
    let _heavy = crate::fixture::heavy().await;
    let w = Arc::new(world());
    let r = w.start().await;
    let port = r.port;
    let (stop, voter) = start_voter(&w, &r);

    // Waves of four attacking connections, for three seconds.
    let started = Instant::now();
    let mut waves = 0;
    while started.elapsed() < Duration::from_secs(3) {
        waves += 1;
        let mut attackers = Vec::new();
        for _ in 0..4 {
            let w = w.clone();
            attackers.push(tokio::spawn(async move {
                let s = tls_to(&w, port, [127, 0, 0, 2], &[b"h2"]).await;
                assert_eq!(s.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
                let (mut rd, mut wr) = tokio::io::split(s);
                // Read (and drop) what the server sends, until it closes.
                let reader = tokio::spawn(async move {
                    closed_within(&mut rd, Duration::from_secs(20))
                        .await
                        .is_some()
                });
                // Written by hand, as the attack is: a client library would
                // never put a stream it has already reset on the wire.
                let mut head = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
                head.extend(frame(0x4, 0, 0, &[])); // SETTINGS
                let _ = wr.write_all(&head).await;
                let mut sent = 0u32;
                let mut id = 1u32;
                'attack: while sent < 100_000 {
                    let mut batch = Vec::new();
                    for _ in 0..100 {
                        batch.extend(frame(0x1, 0x4, id, &request_block())); // HEADERS, END_HEADERS
                        batch.extend(frame(0x3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
                        id += 2;
                    }
                    if wr.write_all(&batch).await.is_err() {
                        break 'attack;
                    }
                    sent += 100;
                }
                (sent, reader.await.unwrap())
            }));
        }
        for a in attackers {
            let (sent, ended) = a.await.unwrap();
            if waves == 1 {
                println!("rapid reset: the connection was cut off; {sent} streams were written before writes failed");
            }
            assert!(ended, "the attacking connection was never closed");
            assert!(
                sent < 100_000,
                "the server let 100000 reset streams through"
            );
        }
    }
    finish_voter(
        &format!("{waves} waves of 4 HTTP/2 rapid-reset connections"),
        stop,
        voter,
    )
    .await;
    r.stop().await;
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = payload.len();
    let mut f = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK header block: POST https://localhost/v1/ballots.
fn request_block() -> Vec<u8> {
    let mut b = vec![0x83, 0x87]; // :method POST, :scheme https (static table)
    b.extend([0x04, 11]); // :path, literal, not indexed
    b.extend_from_slice(b"/v1/ballots");
    b.extend([0x01, 9]); // :authority, literal, not indexed
    b.extend_from_slice(b"localhost");
    b
}

/// Reads one HTTP/1.1 response (head and a Content-Length body); `None` at
/// end of stream.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_is_closed_after_its_request_budget() {
    let w = world();
    let r = w.start().await;
    let mut s = tls_to(&w, r.port, [127, 0, 0, 2], &[b"http/1.1"]).await;
    let mut answered = 0;
    let mut last = String::new();
    for _ in 0..10 {
        if s.write_all(b"GET /v1/election HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .is_err()
        {
            break;
        }
        match read_response(&mut s).await {
            Some(head) => {
                assert!(head.starts_with("http/1.1 200"), "{head}");
                answered += 1;
                last = head;
            }
            None => break,
        }
    }
    // max_requests_per_connection is 5 in these tests: five answers, then
    // the server ends the connection (whether the fifth answer also says
    // `Connection: close` depends on when the close is asked for).
    assert_eq!(answered, 5, "last answer: {last}");
    assert!(closed_within(&mut s, Duration::from_secs(5))
        .await
        .is_some());
    r.stop().await;
}

/// Rows in the gateway's own record of refusals: one per refused request
/// or handshake before, one per (kind, code, source) counter after.
fn refusal_rows(w: &World) -> (i64, i64) {
    let db = w.db();
    let events: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM security_events WHERE kind IN ('tls', 'rejection')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let counters: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'refusals'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let counters = if counters == 0 {
        0
    } else {
        db.query_row("SELECT COUNT(*) FROM refusals", [], |r| r.get(0))
            .unwrap()
    };
    (events, counters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_counted_not_stored_one_by_one() {
    let _heavy = crate::fixture::heavy().await;
    let w = Arc::new(world());
    let r = w.start().await;
    let port = r.port;
    let (stop, voter) = start_voter(&w, &r);
    let flood = 600usize;
    let started = Instant::now();
    // Bad handshakes: a revoked card, from 127.0.0.2.
    let handshakes = {
        let w = w.clone();
        tokio::spawn(async move {
            let rick = &w.pki.voter("rick-revoked").unwrap().issued;
            let cfg = Arc::new(w.tls_for(rick, &[b"http/1.1"]));
            let mut refused = 0;
            for _ in 0..flood {
                let tcp = connect_from([127, 0, 0, 2], port).await.unwrap();
                let c = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect("localhost".try_into().unwrap(), tcp)
                    .await;
                // TLS 1.3: the refusal may arrive with the first read.
                if let Ok(mut s) = c {
                    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                    let mut b = [0u8; 1];
                    if !matches!(s.read(&mut b).await, Ok(n) if n > 0) {
                        refused += 1;
                    }
                } else {
                    refused += 1;
                }
            }
            refused
        })
    };
    // Refused requests from a card that is valid: damaged ballots.
    let requests = {
        let w = w.clone();
        tokio::spawn(async move {
            let gw = w.client_at(port, &w.extra[1]);
            let mut refused = 0;
            for _ in 0..flood {
                let a = post(&gw, b"not a ballot".to_vec()).await.unwrap();
                if a.status.is_client_error() {
                    refused += 1;
                }
            }
            refused
        })
    };
    let (handshakes, requests) = (handshakes.await.unwrap(), requests.await.unwrap());
    let took = started.elapsed();
    finish_voter("a flood of refusals", stop, voter).await;
    println!("{handshakes} refused handshakes and {requests} refused requests in {took:?}");
    assert_eq!((handshakes, requests), (flood, flood));
    // One more ballot: its group commit writes the counters.
    let gw = w.client_at(port, &w.pki.voter("jane-p256").unwrap().issued);
    assert_eq!(
        post(&gw, w.ballot("jane-p256", "after the flood"))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    let mut rows = refusal_rows(&w);
    for _ in 0..100 {
        if w.events("certificate-revoked") >= flood as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        rows = refusal_rows(&w);
    }
    println!(
        "security_events rows for refusals: {}, counters: {}",
        rows.0, rows.1
    );
    assert_eq!(rows.0, 0, "refusals are not stored one by one");
    assert!(rows.1 <= 8, "{} counters", rows.1);
    assert!(w.events("certificate-revoked") >= flood as u64);
    r.stop().await;
}

/// Sends `body` as an upload over raw HTTP/1.1 in `pieces` bytes every
/// `every`, stopping after `stop_after` bytes if given; returns what the
/// server sent before it closed, and when.
async fn paced_upload(
    w: &World,
    voter: &devpki::Issued,
    port: u16,
    body: Vec<u8>,
    (pieces, every): (usize, Duration),
    stop_after: Option<usize>,
) -> (Duration, String) {
    let s = tls_to_as(w, voter, port, [127, 0, 0, 1], &[b"http/1.1"]).await;
    let (mut rd, mut wr) = tokio::io::split(s);
    let head = format!(
        "POST /v1/ballots HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let end = stop_after.unwrap_or(body.len()).min(body.len());
        for piece in body[..end].chunks(pieces) {
            wr.write_all(piece).await?;
            wr.flush().await?;
            tokio::time::sleep(every).await;
        }
        // Held open (not closed) so that a stall is a stall.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, std::io::Error>(wr)
    });
    let got = closed_within(&mut rd, Duration::from_secs(60)).await;
    writer.abort();
    let (_, got) = got.expect("the server never answered");
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

/// A poor link: an upload that takes longer than the request timeout but
/// keeps its bytes coming is accepted; one that stops, or that trickles
/// below the minimum rate, is given up with a 408 that says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_timed_by_their_pace_not_their_length() {
    let _heavy = crate::fixture::heavy().await;
    let mut w = world();
    w.config.server.request_timeout_secs = 2;
    w.config.server.upload_stall_timeout_secs = 2;
    w.config.server.upload_min_rate_bytes_per_sec = 1000;
    let w = Arc::new(w);
    let r = w.start().await;
    let jane = &w.pki.voter("jane-p256").unwrap().issued;

    // About 2,000 bytes a second, for several times the request timeout.
    let ballot = w.ballot("jane-p256", "slow but steady");
    let pieces = ballot.len().div_ceil(20);
    let (took, got) = paced_upload(
        &w,
        jane,
        r.port,
        ballot,
        (pieces, Duration::from_millis(250)),
        None,
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "after {took:?}: {got}");
    assert!(took > Duration::from_secs(4), "{took:?}");

    // Stops half way, the connection left open.
    let (took, got) = paced_upload(
        &w,
        &w.extra[0],
        r.port,
        w.ballot_of(&w.extra[0], b"%PDF stalls".to_vec()),
        (1000, Duration::from_millis(10)),
        Some(3000),
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.contains("no part of the upload arrived for 2 seconds"),
        "{got}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Ten bytes every 200 ms (50 bytes a second): never a stall, far too slow.
    let (took, got) = paced_upload(
        &w,
        &w.extra[1],
        r.port,
        w.ballot_of(&w.extra[1], b"%PDF trickles".to_vec()),
        (10, Duration::from_millis(200)),
        None,
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("slower than 1000 bytes a second"), "{got}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    r.stop().await;
}
