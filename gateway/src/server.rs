//! The HTTPS server: `run(listener, state, tls, shutdown)`.
//!
//! Endpoints (all JSON errors are `{"error": {"code": …, "message": …}}`):
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `GET /v1/election` | anyone | the signed election manifest |
//! | `POST /v1/ballots` | a voter | upload an encrypted ballot; returns the receipt |
//! | `GET /v1/ballots/{index}/status` | that ballot's voter | its status |
//! | `GET /v1/log/checkpoint` | anyone | the latest signed checkpoint |
//! | `GET /v1/log/inclusion?index=I&size=N` | anyone | an inclusion proof |
//! | `GET /v1/log/consistency?from=M&to=N` | anyone | a consistency proof |
//! | `GET /v1/status-file` | anyone | the verifier's signed status file, once imported |
//!
//! Health is served on a separate listener ([`run_health`]).

use crate::config::{Limits, ServerConfig};
use crate::h2guard::StreamBudget;
use crate::sequencer::{NewBallot, Sequencer, SubmitError};
use crate::store::SecurityEvent;
use base64::prelude::*;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sequoia_openpgp::Fingerprint;
use shared::clock::Clock;
use shared::manifest::ElectionManifest;
use shared::pgp::PgpError;
use shared::pki::{ChainError, TrustStore};
use shared::roster::Roster;
use shared::x509::IdentityError;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the gateway knows about the election after `import-setup`.
#[derive(Debug)]
pub struct Election {
    /// The manifest.
    pub manifest: ElectionManifest,
    /// The signed manifest, served as is.
    pub manifest_signed: Vec<u8>,
    /// The roster.
    pub roster: Roster,
    /// The election encryption subkeys.
    pub subkeys: Vec<Fingerprint>,
}

impl Election {
    /// The largest upload accepted: the largest accepted ballot, plus room
    /// for the package fields, the voter's certificates in the signature and
    /// the OpenPGP envelope.
    pub fn max_upload(&self) -> usize {
        let largest = self
            .manifest
            .accepted_media
            .iter()
            .map(|m| m.max_size as usize)
            .max()
            .unwrap_or(0);
        largest + 64 * 1024
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Protocol limits.
    pub server: ServerConfig,
    /// Per-voter limits.
    pub limits: Limits,
    /// The election.
    pub election: Election,
    /// Trust anchors and CRLs.
    pub trust: Arc<TrustStore>,
    /// The log writer.
    pub seq: Sequencer,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// A read connection for status queries.
    pub reader: Mutex<rusqlite::Connection>,
    rate: Mutex<HashMap<String, (f64, u64)>>,
    /// Uploads whose bodies may be in memory at once.
    upload_slots: Semaphore,
    /// Uploads in progress per voter.
    in_progress: Mutex<HashMap<String, u32>>,
}

/// Uploads one voter may have in progress at once. A voter sends one
/// ballot at a time; the limit keeps a few stolen cards from holding many
/// of the gateway's upload slots with slow bodies.
const UPLOADS_IN_PROGRESS_PER_VOTER: u32 = 2;

/// Marks one upload of a voter as in progress until dropped.
struct InProgress<'a> {
    state: &'a AppState,
    voter_id: String,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.state.in_progress.lock() {
            if let Some(n) = m.get_mut(&self.voter_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.voter_id);
                }
            }
        }
    }
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        server: ServerConfig,
        limits: Limits,
        election: Election,
        trust: Arc<TrustStore>,
        seq: Sequencer,
        clock: Arc<dyn Clock>,
        reader: rusqlite::Connection,
    ) -> Self {
        let upload_slots = Semaphore::new(
            server
                .max_uploads_in_memory
                .clamp(1, Semaphore::MAX_PERMITS),
        );
        AppState {
            server,
            limits,
            election,
            trust,
            seq,
            clock,
            reader: Mutex::new(reader),
            rate: Mutex::new(HashMap::new()),
            upload_slots,
            in_progress: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an upload of `voter_id` as in progress; `None` when the voter
    /// already has the most allowed.
    fn begin_upload(&self, voter_id: &str) -> Option<InProgress<'_>> {
        let mut m = self.in_progress.lock().ok()?;
        let n = m.entry(voter_id.to_owned()).or_insert(0);
        if *n >= UPLOADS_IN_PROGRESS_PER_VOTER {
            return None;
        }
        *n += 1;
        Some(InProgress {
            state: self,
            voter_id: voter_id.to_owned(),
        })
    }

    /// Takes one upload token for `voter_id`; false when the voter is over
    /// the hourly rate.
    fn take_token(&self, voter_id: &str) -> bool {
        let capacity = f64::from(self.limits.uploads_per_voter_per_hour.max(1));
        let per_sec = capacity / 3600.0;
        let now = self.clock.now().0;
        let Ok(mut m) = self.rate.lock() else {
            return false;
        };
        let (tokens, last) = m.entry(voter_id.to_owned()).or_insert((capacity, now));
        let elapsed = now.saturating_sub(*last) as f64;
        *tokens = (*tokens + elapsed * per_sec).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The TLS connection's facts a handler may use.
#[derive(Debug, Clone)]
struct ConnInfo {
    peer: SocketAddr,
    certs: Option<Vec<Vec<u8>>>,
}

/// A refusal: the HTTP status, a stable code and a safe message. Details
/// for the operator go to the log and the security event table only.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<String>,
    identity: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            identity: None,
        }
    }

    /// A failure of the gateway itself (a poisoned lock and the like).
    fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    fn identity(mut self, id: &str) -> Self {
        self.identity = Some(id.to_owned());
        self
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn bytes_response(content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut r = json(
        e.status,
        &serde_json::json!({"error": {"code": e.code, "message": e.message}}),
    );
    if e.status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("300"));
    }
    r
}

/// Serves HTTPS on `listener` until `shutdown` completes, then stops
/// accepting and lets open requests finish (up to the request timeout).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let max_connections = state
        .server
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stopping, _) = tokio::sync::watch::channel(false);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.server.header_read_timeout_secs))
        .max_buf_size(state.server.max_header_bytes.max(8192))
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(state.server.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(state.server.http2_max_pending_reset_streams)
        .max_header_list_size(u32::try_from(state.server.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(state.server.idle_timeout_secs)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the connection limit: close at once rather than queue.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let builder = builder.clone();
        let stopping = stopping.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            let hs = Duration::from_secs(state.server.tls_handshake_timeout_secs);
            let tls = match tokio::time::timeout(hs, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let certs = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.to_vec()).collect::<Vec<_>>());
            let info = ConnInfo { peer, certs };
            let budget = Arc::new(RequestBudget {
                left: std::sync::atomic::AtomicU32::new(
                    state.server.max_requests_per_connection.max(1),
                ),
                spent: tokio::sync::Notify::new(),
            });
            if tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                // HTTP/2 streams are counted below hyper, where the ones a
                // client resets at once are still visible.
                let hard = 2 * u64::from(state.server.max_requests_per_connection)
                    + u64::from(state.server.http2_max_concurrent_streams);
                let io = crate::h2guard::FrameCounter::new(tls, budget.clone(), hard);
                serve_connection(io, info, state, &builder, stopping, budget, false).await;
            } else {
                serve_connection(tls, info, state, &builder, stopping, budget, true).await;
            }
        });
    }
    drop(listener);
    // Ask every connection to finish what it is doing, then wait until all
    // have given their permits back (or the drain period ends).
    let _ = stopping.send(true);
    let drain = Duration::from_secs(state.server.request_timeout_secs.min(30));
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the drain period");
    }
    Ok(())
}

/// Serves the requests of one authenticated TLS connection. The connection
/// is closed gracefully (HTTP/2 GOAWAY, or `Connection: close`) when the
/// server stops or when it has started `max_requests_per_connection`
/// requests or streams.
async fn serve_connection<S>(
    io: S,
    info: ConnInfo,
    state: Arc<AppState>,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    budget: Arc<RequestBudget>,
    count_requests: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = info.peer;
    let service = {
        let budget = budget.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            let info = info.clone();
            let last = count_requests && budget.take();
            async move {
                if last {
                    tracing::debug!(peer = %info.peer, "request budget of the connection spent; closing it");
                }
                let timeout = Duration::from_secs(state.server.request_timeout_secs);
                let r = match tokio::time::timeout(timeout, handle(req, &state, &info)).await {
                    Ok(r) => r,
                    Err(_) => error_response(&ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request-timeout",
                        "the request took too long; try again",
                    )),
                };
                Ok::<_, std::convert::Infallible>(r)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = budget.spent.notified(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stopping.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The requests a connection may still start.
pub(crate) struct RequestBudget {
    left: std::sync::atomic::AtomicU32,
    spent: tokio::sync::Notify,
}

impl crate::h2guard::StreamBudget for RequestBudget {
    /// Counts one request; true when it was the last one allowed.
    fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        let before = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        if before <= 1 {
            self.spent.notify_one();
            true
        } else {
            false
        }
    }
}

/// Raises the soft open-file limit toward what `max_connections` needs (one
/// descriptor per connection, plus a margin for the database, listeners and
/// files), never above the hard limit. Returns the limit now in force.
pub fn raise_file_limit(max_connections: usize) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let wanted = max_connections as u64 + 256;
    let mut l = getrlimit(Resource::Nofile);
    if l.current.is_some_and(|c| c < wanted) {
        l.current = Some(l.maximum.map_or(wanted, |m| wanted.min(m)));
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < wanted {
        tracing::warn!(
            limit = now,
            max_connections,
            "the open-file limit is below max_connections; raise LimitNOFILE (systemd) or ulimit -n"
        );
    }
    now
}

/// Serves `GET /healthz` in plain HTTP on a loopback listener.
pub async fn run_health(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let r = if req.uri().path() == "/healthz" {
                        let size = state
                            .seq
                            .log()
                            .read()
                            .map(|l| l.checkpoint_size)
                            .unwrap_or(0);
                        json(
                            StatusCode::OK,
                            &serde_json::json!({"status": "ok", "log_size": size}),
                        )
                    } else {
                        error_response(&ApiError::new(
                            StatusCode::NOT_FOUND,
                            "not-found",
                            "no such endpoint",
                        ))
                    };
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let result = route(req, state, info).await;
    match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(code = e.code, peer = %info.peer, %path, detail = e.detail.as_deref().unwrap_or(""), "request refused");
            if e.status != StatusCode::NOT_FOUND && e.status != StatusCode::METHOD_NOT_ALLOWED {
                state.seq.record(SecurityEvent {
                    at: state.clock.now().0,
                    kind: "rejection",
                    code: e.code.into(),
                    identity: e.identity.clone(),
                    peer: Some(info.peer.to_string()),
                    detail: e.detail.clone().unwrap_or_else(|| e.message.clone()),
                });
            }
            error_response(&e)
        }
    }
}

fn query_u64(req: &Request<Incoming>, name: &str) -> Result<u64, ApiError> {
    let q = req.uri().query().unwrap_or("");
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                format!("the query needs a number {name}="),
            )
        })
}

async fn route(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["v1", "election"]) => Ok(bytes_response(
            "application/octet-stream",
            state.election.manifest_signed.clone(),
        )),
        (&Method::POST, ["v1", "ballots"]) => upload(req, state, info).await,
        (&Method::GET, ["v1", "ballots", index, "status"]) => {
            let index: u64 = index
                .parse()
                .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such ballot"))?;
            ballot_status(index, state, info).await
        }
        (&Method::GET, ["v1", "log", "checkpoint"]) => {
            let cp = state
                .seq
                .log()
                .read()
                .ok()
                .and_then(|l| l.checkpoint.clone());
            match cp {
                Some(cp) => Ok(bytes_response("text/plain; charset=utf-8", cp.into_bytes())),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "log-empty",
                    "no ballot has been logged yet",
                )),
            }
        }
        (&Method::GET, ["v1", "log", "inclusion"]) => {
            let (index, size) = (query_u64(&req, "index")?, query_u64(&req, "size")?);
            proof_response(
                state,
                size,
                serde_json::json!({"index": index, "size": size}),
                |t| t.inclusion_proof(index, size),
            )
        }
        (&Method::GET, ["v1", "log", "consistency"]) => {
            let (from, to) = (query_u64(&req, "from")?, query_u64(&req, "to")?);
            proof_response(
                state,
                to,
                serde_json::json!({"from": from, "to": to}),
                |t| t.consistency_proof(from, to),
            )
        }
        (&Method::GET, ["v1", "status-file"]) => {
            let doc = {
                let c = state.reader.lock().map_err(|_| ApiError::internal())?;
                crate::store::meta_get(&c, "status_file").map_err(|e| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage-unavailable",
                        "try again later",
                    )
                    .detail(e.to_string())
                })?
            };
            match doc {
                Some(d) => Ok(bytes_response("application/octet-stream", d)),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no-status-yet",
                    "the county has not published statuses yet",
                )),
            }
        }
        (_, ["v1", "election"] | ["v1", "ballots"] | ["v1", "log", ..] | ["v1", "status-file"]) => {
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "method not allowed",
            ))
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such endpoint",
        )),
    }
}

/// Answers a proof request: `size` (the largest tree size it names) must be
/// within the latest committed checkpoint; `fields` echo the request.
fn proof_response(
    state: &AppState,
    size: u64,
    mut fields: serde_json::Value,
    make: impl FnOnce(
        &shared::merkle::Tree,
    ) -> Result<Vec<shared::merkle::Hash>, shared::merkle::TreeError>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let log = state.seq.log().read().map_err(|_| ApiError::internal())?;
    if size > log.checkpoint_size {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-size",
            "the size is beyond the latest checkpoint",
        ));
    }
    let proof = make(&log.tree)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.to_string()))?;
    if let Some(obj) = fields.as_object_mut() {
        obj.insert(
            "proof".into(),
            proof.iter().map(|h| BASE64_STANDARD.encode(h)).collect(),
        );
    }
    Ok(json(StatusCode::OK, &fields))
}

/// The voter behind the connection: a validated certificate (path,
/// revocation, content rules) whose identity is on the roster.
fn voter(state: &AppState, info: &ConnInfo) -> Result<(String, String, Vec<u8>), ApiError> {
    let Some(certs) = info.certs.as_ref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client-certificate-required",
            "this request needs your CAC or voter certificate; insert the card and try again",
        ));
    };
    let (ee, rest) = certs.split_first().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client-certificate-required",
            "no certificate",
        )
    })?;
    let now = state.clock.now();
    let v = state.trust.verify_voter(ee, rest, now, now).map_err(|e| {
        let (code, message) = match &e {
            ChainError::Identity(IdentityError::CardAuthentication) => (
                "card-authentication-certificate",
                "this is the card-authentication certificate; choose the PIV authentication certificate (the one with your name)",
            ),
            ChainError::Identity(IdentityError::NoAcceptedPolicy { .. }) => (
                "policy-not-accepted",
                "this certificate's assurance level is not accepted for voting; use the CAC's PIV authentication certificate",
            ),
            ChainError::Identity(IdentityError::NoClientAuth) => {
                ("client-auth-not-permitted", "this certificate is not for authentication")
            }
            ChainError::Identity(_) => ("no-voter-identity", "this certificate does not identify a voter"),
            other => (crate::tls::chain_code(other), "your certificate is not accepted"),
        };
        ApiError::new(StatusCode::FORBIDDEN, code, message).detail(e.to_string())
    })?;
    let identity = v.facts.identity.to_canonical();
    let entry = state.election.roster.by_identity(&v.facts.identity).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not-on-roster",
            "you are not on this county's list of overseas and military voters; contact your election office",
        )
        .identity(&identity)
    })?;
    Ok((entry.voter_id.clone(), identity, ee.clone()))
}

/// How much of a refused upload's body the gateway still reads (and discards)
/// before it answers, beyond the upload limit. An HTTP/1.1 client writes its
/// whole body before it reads the answer; if the server answered and closed
/// first, the client would see "broken pipe" instead of the reason. Bodies
/// declared larger than this are not read: the answer is sent and the
/// connection closed.
const DRAIN_ALLOWANCE: u64 = 1024 * 1024;
/// The longest the gateway spends discarding a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(15);

async fn upload(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = accept_upload(&parts, &mut body, state, info).await;
    if result.is_err() {
        if let Some(body) = body {
            let budget = state.election.max_upload() as u64 + DRAIN_ALLOWANCE;
            let declared = content_length(&parts.headers).unwrap_or(0);
            if declared <= budget {
                let _ = tokio::time::timeout(DRAIN_TIME, discard(body, budget)).await;
            }
        }
    }
    result
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads and drops up to `budget` bytes of a body.
async fn discard(mut body: Incoming, budget: u64) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > budget {
                return;
            }
        }
    }
}

/// Reads a whole body of at most `max` bytes. `Ok(None)` means it is larger.
/// `expected` (the declared length, already checked against `max`) sizes
/// the buffer once, so a 200 KB upload is not copied while it grows.
async fn read_body(
    body: &mut Incoming,
    max: usize,
    expected: Option<u64>,
) -> Result<Option<Bytes>, hyper::Error> {
    let hint = expected.map_or(64 * 1024, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut buf = bytes::BytesMut::with_capacity(hint);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > max {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

async fn accept_upload(
    parts: &http::request::Parts,
    body: &mut Option<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (voter_id, identity, cert) = voter(state, info)?;
    let m = &state.election.manifest;
    let now = state.clock.now();
    if now < m.opens_at {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "election-not-open",
            format!("ballots are accepted from {}", m.opens_at),
        )
        .identity(&identity));
    }
    if now >= m.closes_at {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "election-closed",
            format!("the deadline was {}", m.closes_at),
        )
        .identity(&identity));
    }
    let Some(_in_progress) = state.begin_upload(&voter_id) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "upload-in-progress",
            "another upload of yours is still in progress; wait for it to finish",
        )
        .identity(&identity));
    };
    if !state.take_token(&voter_id) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "too many uploads in the last hour; wait a few minutes and try again",
        )
        .identity(&identity));
    }
    let max = state.election.max_upload();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ballot-too-large",
            format!("the upload is larger than the limit of {max} bytes"),
        )
        .identity(&identity)
    };
    if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    // Bodies are read a bounded number at a time, so memory does not grow
    // with the number of connections; the others wait here (their senders
    // are held back by TCP flow control) within the request timeout.
    let _slot = state.upload_slots.acquire().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the gateway is stopping; try again shortly",
        )
    })?;
    let Some(incoming) = body.as_mut() else {
        return Err(ApiError::internal());
    };
    let body = match read_body(incoming, max, content_length(&parts.headers)).await {
        Ok(Some(b)) => {
            *body = None;
            b
        }
        Ok(None) => return Err(too_large()),
        Err(e) => {
            // The connection is broken; nothing is left to drain.
            *body = None;
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "upload-interrupted",
                "the upload was interrupted; send it again",
            )
            .detail(e.to_string())
            .identity(&identity));
        }
    };
    shared::pgp::check_structure(&body, &state.election.subkeys, max).map_err(|e| {
        let (status, code, message) = match &e {
            PgpError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "ballot-too-large", "the upload is too large"),
            PgpError::NotOpenPgp(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-openpgp",
                "the upload is not an encrypted ballot; use the ballot-return program",
            ),
            PgpError::WrongRecipient(_) | PgpError::AnonymousRecipient => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-recipient",
                "the ballot is not encrypted to this election's key; check the election fingerprint",
            ),
            PgpError::SeipdV1 | PgpError::OldPkesk => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "seipd-v1-not-accepted",
                "the ballot uses old OpenPGP encryption (SEIPD v1); SEIPD v2 is required",
            ),
            PgpError::PasswordEncrypted => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "password-encrypted",
                "the ballot is encrypted with a password; it must be encrypted to the election key",
            ),
            _ => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-ballot-structure",
                "the encrypted ballot is not in the expected form",
            ),
        };
        ApiError::new(status, code, message).detail(e.to_string()).identity(&identity)
    })?;
    let accepted = state
        .seq
        .submit(NewBallot {
            voter_id: voter_id.clone(),
            identity: identity.clone(),
            client_cert: cert,
            message: body,
        })
        .await
        .map_err(|e| {
            match &e {
                SubmitError::TooManyBallots(_) => ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-ballots",
                    "you have sent the most ballots allowed; the last one received before the deadline counts",
                ),
                SubmitError::DiskFull => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-full",
                    "the gateway cannot store ballots right now; nothing was stored; try again later",
                ),
                _ => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "the gateway cannot store ballots right now; nothing was stored; try again later",
                ),
            }
            .detail(e.to_string())
            .identity(&identity)
        })?;
    tracing::info!(
        leaf = accepted.leaf_index,
        duplicate = accepted.duplicate,
        "ballot logged"
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "leaf_index": accepted.leaf_index,
            "voter_id": accepted.voter_id,
            "salt": hex::encode(accepted.salt),
            "duplicate": accepted.duplicate,
            "receipt": accepted.receipt,
        }),
    ))
}

async fn ballot_status(
    index: u64,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (voter_id, identity, _) = voter(state, info)?;
    let row = {
        let c = state.reader.lock().map_err(|_| ApiError::internal())?;
        use rusqlite::OptionalExtension;
        c.query_row(
            "SELECT b.voter_id, s.status, s.reason FROM ballots b LEFT JOIN statuses s ON s.leaf_index = b.leaf_index
             WHERE b.leaf_index = ?1",
            rusqlite::params![index as i64],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)),
        )
        .optional()
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage-unavailable", "try again later").detail(e.to_string()))?
    };
    // Someone else's ballot looks exactly like no ballot.
    let Some((owner, status, reason)) = row.filter(|(owner, _, _)| *owner == voter_id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such ballot of yours",
        )
        .identity(&identity));
    };
    let _ = owner;
    let (name, words) = match (status, reason) {
        (None, _) => (
            "received",
            "received and logged; the county has not processed it yet".to_owned(),
        ),
        (Some(1), _) => ("accepted", shared::status::Status::Accepted.describe()),
        (Some(3), _) => ("superseded", shared::status::Status::Superseded.describe()),
        (Some(2), Some(r)) => match u8::try_from(r)
            .ok()
            .and_then(shared::status::Reason::from_code)
        {
            Some(r) => ("rejected", shared::status::Status::Rejected(r).describe()),
            None => ("rejected", "rejected".to_owned()),
        },
        _ => ("unknown", "unknown".to_owned()),
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"leaf_index": index, "status": name, "explanation": words}),
    ))
}
