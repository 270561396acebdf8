//! A poor link for tests: a TCP proxy in front of the gateway that adds a
//! fixed delay each way, and stalls or cuts chosen uploads; and the shaping
//! of the proxy's port with `tc` (HTB classes, each with a token bucket
//! filter as its queue) inside a network namespace of the test's own.
//!
//! The proxy sees only TLS records, so it tells an upload by its size: a
//! connection that carries more than [`UPLOAD_BYTES`] from the client is
//! the next upload, and meets the next fate of the plan.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Client bytes past which a connection counts as an upload.
pub const UPLOAD_BYTES: u64 = 64 * 1024;

/// What happens to one upload.
#[derive(Debug, Clone)]
pub enum Fate {
    /// Goes through.
    Pass,
    /// After `at` bytes from the client, nothing is read from it for
    /// `stall`; then, if `cut_at` is given, the connection is cut (both
    /// sides closed) once that many bytes have gone through.
    Stall {
        /// Client bytes before the stall.
        at: u64,
        /// How long.
        stall: Duration,
        /// Client bytes at which the connection is cut.
        cut_at: Option<u64>,
    },
    /// The whole request goes through; the answer is thrown away and the
    /// connection cut when it comes (the gateway has logged the ballot).
    DropAnswer,
}

/// What the proxy does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Added to every piece of data, each way.
    pub delay: Duration,
    /// The fates of the first uploads, in order; the others pass.
    pub uploads: Vec<Fate>,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// What it did, one line each (for the test's output).
    pub events: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    target: SocketAddr,
    plan: Plan,
    uploads: Mutex<usize>,
    events: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    fn note(&self, what: String) {
        self.events.lock().unwrap().push(what);
    }
}

impl Proxy {
    /// Listens on `listener` and forwards to `target` by `plan`.
    pub fn start(listener: TcpListener, target: SocketAddr, plan: Plan) -> Proxy {
        let port = listener.local_addr().unwrap().port();
        let events = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            target,
            plan,
            uploads: Mutex::new(0),
            events: events.clone(),
        });
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((client, _)) = listener.accept().await {
                n += 1;
                tokio::spawn(connection(n, client, shared.clone()));
            }
        });
        Proxy { port, events, task }
    }

    /// Binds 127.0.0.1 on a free port (to shape that port before starting).
    pub async fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }
}

/// What a connection's two pumps share.
#[derive(Default)]
struct State {
    /// The fate, once the connection is known to be an upload.
    fate: Option<Fate>,
    /// Set to close both sides.
    cut: bool,
}

async fn connection(n: usize, client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    let state = Arc::new(Mutex::new(State::default()));
    let delay = shared.plan.delay;
    let (up_tx, up_rx) = mpsc::channel(64);
    let (down_tx, down_rx) = mpsc::channel(64);
    let up = tokio::spawn(upstream(n, client_rd, up_tx, state.clone(), shared.clone()));
    let down = tokio::spawn(downstream(server_rd, down_tx, state.clone()));
    let up_w = tokio::spawn(delayed(up_rx, server_wr, delay));
    let down_w = tokio::spawn(delayed(down_rx, client_wr, delay));
    // Whichever way the connection ends, both sides are closed.
    let _ = tokio::join!(up, down);
    up_w.abort();
    down_w.abort();
}

/// Reads the client; decides the connection's fate when it turns out to be
/// an upload; stalls and cuts by it.
async fn upstream(
    n: usize,
    mut rd: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::Sender<(tokio::time::Instant, Vec<u8>)>,
    state: Arc<Mutex<State>>,
    shared: Arc<Shared>,
) {
    let mut seen = 0u64;
    let mut stalled = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if state.lock().unwrap().cut {
            return;
        }
        let fate = state.lock().unwrap().fate.clone();
        if let Some(Fate::Stall { at, stall, cut_at }) = &fate {
            if !stalled && seen >= *at {
                stalled = true;
                shared.note(format!(
                    "connection {n}: stalled for {} s after {seen} bytes",
                    stall.as_secs()
                ));
                tokio::time::sleep(*stall).await;
            }
            if cut_at.is_some_and(|c| seen >= c) {
                shared.note(format!("connection {n}: cut after {seen} bytes"));
                state.lock().unwrap().cut = true;
                return;
            }
        }
        // Reads no further than the next point of the plan.
        let mut room = buf.len() as u64;
        if let Some(Fate::Stall { at, cut_at, .. }) = &fate {
            for p in [Some(*at).filter(|_| !stalled), *cut_at]
                .into_iter()
                .flatten()
            {
                if p > seen {
                    room = room.min(p - seen);
                }
            }
        }
        let room = usize::try_from(room).unwrap_or(buf.len()).max(1);
        let got = tokio::select! {
            r = rd.read(&mut buf[..room]) => r,
            () = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        let got = match got {
            Ok(0) | Err(_) => return,
            Ok(k) => k,
        };
        seen += got as u64;
        if seen > UPLOAD_BYTES && state.lock().unwrap().fate.is_none() {
            let ordinal = {
                let mut u = shared.uploads.lock().unwrap();
                *u += 1;
                *u
            };
            let fate = shared
                .plan
                .uploads
                .get(ordinal - 1)
                .cloned()
                .unwrap_or(Fate::Pass);
            shared.note(format!("connection {n}: upload {ordinal}, {fate:?}"));
            state.lock().unwrap().fate = Some(fate);
        }
        let due = tokio::time::Instant::now();
        if tx.send((due, buf[..got].to_vec())).await.is_err() {
            return;
        }
    }
}

/// Reads the gateway; throws the answer away and cuts the connection when
/// the fate says so.
async fn downstream(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::Sender<(tokio::time::Instant, Vec<u8>)>,
    state: Arc<Mutex<State>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let got = tokio::select! {
            r = rd.read(&mut buf) => r,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if state.lock().unwrap().cut {
                    return;
                }
                continue;
            }
        };
        let got = match got {
            Ok(0) | Err(_) => return,
            Ok(k) => k,
        };
        {
            let mut s = state.lock().unwrap();
            if s.cut {
                return;
            }
            if matches!(s.fate, Some(Fate::DropAnswer)) {
                s.cut = true;
                return;
            }
        }
        if tx
            .send((tokio::time::Instant::now(), buf[..got].to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Writes what arrives on `rx` to `wr`, each piece `delay` after it was
/// read; closes `wr` when `rx` ends.
async fn delayed(
    mut rx: mpsc::Receiver<(tokio::time::Instant, Vec<u8>)>,
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    while let Some((read_at, data)) = rx.recv().await {
        tokio::time::sleep_until(read_at + delay).await;
        if wr.write_all(&data).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// Shapes the traffic to and from `port` on this network namespace's
/// loopback to `kbit` kbit/s each way with token bucket filters (the
/// loopback's MTU set to 1500 first: at its usual 64 KiB, tbf drops the
/// large segments). Other loopback traffic is not shaped. Needs root in a
/// network namespace of its own (`unshare --net`).
pub fn shape_port(port: u16, kbit: u32) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| format!("{}: {e}", args.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "{}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    };
    let port = port.to_string();
    let rate = format!("{kbit}kbit");
    run(&["ip", "link", "set", "lo", "mtu", "1500", "up"])?;
    run(&[
        "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10",
    ])?;
    for (class, handle) in [("1:10", None), ("1:20", Some("20:")), ("1:30", Some("30:"))] {
        run(&[
            "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", class, "htb", "rate",
            "10gbit", "quantum", "60000",
        ])?;
        if let Some(h) = handle {
            run(&[
                "tc", "qdisc", "add", "dev", "lo", "parent", class, "handle", h, "tbf", "rate",
                &rate, "burst", "4kb", "latency", "2s",
            ])?;
        }
    }
    // To the proxy (the uploads) and from it (the answers).
    for (field, class) in [("dport", "1:20"), ("sport", "1:30")] {
        run(&[
            "tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1",
            "u32", "match", "ip", field, &port, "0xffff", "flowid", class,
        ])?;
    }
    Ok(())
}
