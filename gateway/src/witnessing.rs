//! Having each checkpoint cosigned by the witnesses the signed manifest
//! names (C2SP tlog-witness), in the background: uploads never wait for a
//! witness.
//!
//! Every 200 ms the task looks at the latest checkpoint. If no quorum has
//! cosigned it yet, it submits it to every witness at once, each request
//! bounded in time, with a consistency proof from the size that witness
//! holds (learnt from its 409 answer when unknown). When a quorum's
//! cosignatures verify, the checkpoint with all of them is stored
//! (`witnessed` table) and served at `GET /v1/log/witnessed`. Failed rounds
//! are retried with a backoff from 1 to 30 seconds.
//!
//! At the deadline the latest checkpoint is submitted again at once, even if
//! it was witnessed before: its fresh cosignatures, timed at or after the
//! deadline, make it the closing checkpoint the verifier looks for.

use crate::sequencer::SharedLog;
use crate::store::{self, StoreError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rusqlite::{params, Connection, OptionalExtension};
use shared::clock::{Clock, UnixTime};
use shared::manifest::ElectionManifest;
use shared::note::{Note, NoteVerifier};
use shared::witness::{AddCheckpoint, WitnessPolicy};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long one add-checkpoint request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the task looks for a new checkpoint.
const TICK: Duration = Duration::from_millis(200);
/// The longest wait between failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest witness answer read.
const MAX_ANSWER: usize = 16 * 1024;

/// A checkpoint a quorum cosigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedCheckpoint {
    /// The signed note with the log's signature and every cosignature.
    pub note: String,
    /// Its tree size.
    pub size: u64,
    /// The quorum's time.
    pub time: UnixTime,
}

/// The latest witnessed checkpoint, shared with the request handlers.
pub type SharedWitnessed = Arc<RwLock<Option<WitnessedCheckpoint>>>;

/// The latest witnessed checkpoint stored.
pub fn load_latest(conn: &Connection) -> Result<Option<WitnessedCheckpoint>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT note, size, quorum_time FROM witnessed ORDER BY size DESC, quorum_time DESC LIMIT 1",
            [],
            |r| {
                Ok(WitnessedCheckpoint {
                    note: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    time: UnixTime(r.get::<_, i64>(2)? as u64),
                })
            },
        )
        .optional()?)
}

/// One witness as the gateway reaches it.
#[derive(Debug, Clone)]
struct Target {
    key: NoteVerifier,
    host: String,
    authority: String,
    path: String,
}

impl Target {
    fn new(key: NoteVerifier, url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("the witness URL {url} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "the witness URL {url}: only http:// submission prefixes are supported (cosignatures are signed; put TLS in front with a bastion if needed)"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("the witness URL {url} has no host"))?
            .to_string();
        let host = if uri.port().is_some() {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let prefix = uri.path().trim_end_matches('/');
        Ok(Target {
            key,
            host,
            authority,
            path: format!("{prefix}/add-checkpoint"),
        })
    }

    /// Posts `body`; returns the status and the body, bounded.
    async fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let work = async {
            let stream = tokio::net::TcpStream::connect(&self.host)
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let req = http::Request::post(&self.path)
                .header(http::header::HOST, &self.authority)
                .header(http::header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes()
                .to_vec();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
    }
}

/// The background task's inputs.
#[derive(Debug)]
pub struct Witnessing {
    log: SharedLog,
    policy: WitnessPolicy,
    targets: Vec<Target>,
    closes_at: UnixTime,
    clock: Arc<dyn Clock>,
    /// Opened once: every witnessed checkpoint is stored through it.
    db: Arc<Mutex<Connection>>,
    view: SharedWitnessed,
}

impl Witnessing {
    /// Prepares the task for `manifest`'s witnesses.
    pub fn new(
        manifest: &ElectionManifest,
        log: SharedLog,
        clock: Arc<dyn Clock>,
        db_path: &Path,
        view: SharedWitnessed,
    ) -> anyhow::Result<Self> {
        let policy = manifest.witness_policy()?;
        let targets = manifest
            .witnesses
            .iter()
            .zip(&policy.witnesses)
            .map(|(w, key)| Target::new(key.clone(), &w.url))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Witnessing {
            log,
            policy,
            targets,
            closes_at: manifest.closes_at,
            clock,
            db: Arc::new(Mutex::new(store::open(db_path)?)),
            view,
        })
    }

    /// Runs until `shutdown` says true.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut sizes: Vec<Option<u64>> = vec![None; this.targets.len()];
        let mut backoff = Duration::from_secs(1);
        let mut next_try = Instant::now();
        let mut closing_done = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            let Some((note, size)) = this
                .log
                .read()
                .ok()
                .and_then(|l| l.checkpoint.clone().map(|c| (c, l.checkpoint_size)))
            else {
                continue;
            };
            let witnessed = this.view.read().ok().and_then(|v| v.clone());
            let is_new = witnessed.as_ref().map(|w| w.size) != Some(size);
            let closing_due = !closing_done && this.clock.now() >= this.closes_at;
            if closing_due && !is_new {
                if let Some(w) = &witnessed {
                    if w.time >= this.closes_at {
                        closing_done = true;
                        continue;
                    }
                }
            }
            if !(is_new || closing_due) || Instant::now() < next_try {
                continue;
            }
            let outcome = tokio::select! {
                w = this.round(&note, size, &mut sizes) => w,
                _ = shutdown.changed() => break,
            };
            match outcome {
                Some(w) => {
                    backoff = Duration::from_secs(1);
                    if closing_due && w.time >= this.closes_at {
                        closing_done = true;
                        tracing::info!(size, "the closing checkpoint is witnessed");
                    }
                    if let Ok(mut v) = this.view.write() {
                        *v = Some(w);
                    }
                }
                None => {
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Submits one checkpoint to every witness; stores and returns it if a
    /// quorum cosigned.
    async fn round(
        self: &Arc<Self>,
        note: &str,
        size: u64,
        sizes: &mut [Option<u64>],
    ) -> Option<WitnessedCheckpoint> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, known) in sizes.iter().enumerate() {
            let this = self.clone();
            let note = note.to_owned();
            let known = *known;
            tasks.spawn(async move { (i, this.submit(i, &note, size, known).await) });
        }
        let mut merged = Note::parse(note.as_bytes()).ok()?;
        while let Some(done) = tasks.join_next().await {
            let Ok((i, (held, answer))) = done else {
                continue;
            };
            if let (Some(slot), Some(h)) = (sizes.get_mut(i), held) {
                *slot = Some(h);
            }
            let target = self.targets.get(i)?;
            match answer {
                Ok(lines) => match WitnessPolicy::attach(&merged, &target.key, &lines) {
                    Ok((n, _)) => merged = n,
                    Err(e) => {
                        tracing::warn!(witness = target.key.name(), error = %e, "a witness's cosignature does not verify")
                    }
                },
                Err(e) => {
                    tracing::warn!(witness = target.key.name(), size, error = %e, "a witness did not cosign")
                }
            }
        }
        let text = merged.to_text();
        match self.policy.verify(text.as_bytes()) {
            Ok(w) => {
                let stored = WitnessedCheckpoint {
                    note: text,
                    size,
                    time: w.time,
                };
                let db = self.db.clone();
                let row = stored.clone();
                let saved = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                    let conn = db.lock().map_err(|_| {
                        StoreError::Corrupt("the witnessing lock is poisoned".into())
                    })?;
                    conn.execute(
                        "INSERT INTO witnessed (size, quorum_time, note) VALUES (?1, ?2, ?3)",
                        params![row.size as i64, row.time.0 as i64, row.note],
                    )?;
                    Ok(())
                })
                .await;
                match saved {
                    Ok(Ok(())) => Some(stored),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot store a witnessed checkpoint");
                        None
                    }
                    Err(_) => None,
                }
            }
            Err(e) => {
                tracing::warn!(size, error = %e, "the checkpoint is not witnessed yet");
                None
            }
        }
    }

    /// One witness: up to two attempts (the second after a 409 taught the
    /// size it holds). Returns the size it holds afterwards, if known, and
    /// its signature lines.
    async fn submit(
        &self,
        i: usize,
        note: &str,
        size: u64,
        mut known: Option<u64>,
    ) -> (Option<u64>, Result<Vec<u8>, String>) {
        let Some(target) = self.targets.get(i) else {
            return (known, Err("no such witness".into()));
        };
        for _ in 0..2 {
            let old = known.unwrap_or(0);
            if old > size {
                return (
                    known,
                    Err(format!(
                        "the witness holds a checkpoint of size {old}, larger than this log's {size}: a fork, or this gateway's log was replaced"
                    )),
                );
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                match self
                    .log
                    .read()
                    .ok()
                    .map(|l| l.tree.consistency_proof(old, size))
                {
                    Some(Ok(p)) => p,
                    _ => return (known, Err("cannot make a consistency proof".into())),
                }
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.as_bytes().to_vec(),
            }
            .to_bytes();
            match target.post(body).await {
                Ok((200, lines)) => return (Some(size), Ok(lines)),
                Ok((409, held)) => match shared::witness::parse_size_body(&held) {
                    Some(h) => known = Some(h),
                    None => return (known, Err("a 409 answer without a size".into())),
                },
                Ok((status, body)) => {
                    let text =
                        String::from_utf8_lossy(body.get(..200).unwrap_or(&body)).into_owned();
                    return (known, Err(format!("HTTP {status}: {}", text.trim())));
                }
                Err(e) => return (known, Err(e)),
            }
        }
        (known, Err("the witness's size kept changing".into()))
    }
}
