//! The voter client, `ballot-return`: sends a ballot and checks its status.
//!
//! Everything the gateway says is checked: the election manifest against
//! the fingerprint the voter received with the ballot instructions, the
//! receipt's checkpoint against the manifest's log key, the inclusion of the
//! upload under it, and later checkpoints' consistency with the receipt's.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::api::{self, ConsistencyAnswer, ErrorBody, ErrorCode, ReceiptAnswer};
use shared::ballot::BallotPackage;
use shared::checkpoint::SignedCheckpoint;
use shared::clock::UnixTime;
use shared::log_entry::voter_commitment;
use shared::manifest::ElectionManifest;
use shared::note::NoteVerifier;
use shared::receipt::Receipt;
use shared::status::Status;
use std::sync::Arc;
use std::time::Duration;

/// The largest response read from the gateway.
const MAX_RESPONSE: usize = 2 * 1024 * 1024;

/// How long the client waits, and for what. A poor link (a satellite
/// terminal at 256 kbit/s, 600 ms away) is slow but moves: an upload is
/// given up when it stops moving, never for taking long.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Reaching the gateway: the TCP connection and the TLS handshake
    /// (which the card signs).
    pub connect: Duration,
    /// The longest an upload may go without a byte being taken by the
    /// network, and the longest a small answer may go without arriving.
    pub stall: Duration,
    /// A whole request that carries no ballot (the election details, a
    /// proof, the status file).
    pub request: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect: Duration::from_secs(60),
            stall: Duration::from_secs(60),
            request: Duration::from_secs(120),
        }
    }
}

/// The send buffer asked for an upload's socket. The progress shown is what
/// the network has taken; a small buffer keeps it close to what has left
/// the computer (Linux doubles it: 128 KiB still fills a 10 Mbit/s link
/// 100 ms away, and drains in 4 s at 256 kbit/s).
const UPLOAD_SEND_BUFFER: u32 = 64 * 1024;
/// The pieces an upload is handed to the connection in.
const UPLOAD_PIECE: usize = 16 * 1024;
/// After the last byte of an upload is handed over, the answer is awaited
/// this much longer than a stall: the send buffer still drains at the link's
/// rate, and the gateway commits the ballot to disk before it answers.
const ANSWER_ALLOWANCE: Duration = Duration::from_secs(120);

/// A connection target and TLS settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    /// How long to wait.
    pub timing: Timing,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The refusal's code and message, if the body is an error body
    /// (`("unknown", "")` when it is not), escaped for showing (they are
    /// the gateway's words, which may be hostile).
    pub fn error(&self) -> (String, String) {
        match ErrorBody::from_json(&self.body) {
            Some(b) => (
                shared::text::printable(&b.error.code).into_owned(),
                shared::text::printable(&b.error.message).into_owned(),
            ),
            None => ("unknown".to_owned(), String::new()),
        }
    }

    /// The body as the JSON answer `T`, when the status is 200.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        if self.status != StatusCode::OK {
            let (code, message) = self.error();
            bail!("the gateway refused ({code}): {message}");
        }
        serde_json::from_slice(&self.body).context("the gateway's answer is not readable")
    }
}

/// How far an upload has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes the network has taken.
    pub sent: u64,
    /// Bytes in the upload.
    pub total: u64,
    /// Since the connection was made.
    pub elapsed: Duration,
}

/// Why one try at an upload did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The gateway could not be reached, or the secure connection failed.
    #[error("{0:#}")]
    Connect(anyhow::Error),
    /// Nothing moved for the stall time.
    #[error("nothing moved for {} seconds, after {sent} of {total} bytes", .stall.as_secs())]
    Stalled {
        /// The stall time.
        stall: Duration,
        /// Bytes the network had taken.
        sent: u64,
        /// Bytes in the upload.
        total: u64,
    },
    /// The whole upload was sent but no answer came.
    #[error("all {total} bytes were sent but the gateway did not answer within {} seconds", .waited.as_secs())]
    NoAnswer {
        /// How long the answer was awaited.
        waited: Duration,
        /// Bytes in the upload.
        total: u64,
    },
    /// The gateway refused the card's certificate during the secure
    /// connection (with TLS 1.3 its verdict can arrive while the ballot is
    /// already on its way). Trying again cannot help.
    #[error("{0}")]
    CardRefused(CardRefusal),
    /// The connection broke.
    #[error("the connection was cut after {sent} of {total} bytes ({why})")]
    Cut {
        /// Bytes the network had taken.
        sent: u64,
        /// Bytes in the upload.
        total: u64,
        /// What the system said.
        why: String,
    },
}

impl UploadError {
    /// True when every byte of the upload had left before the failure: the
    /// gateway may have logged the ballot, and only the answer was lost.
    pub fn all_sent(&self) -> bool {
        match self {
            UploadError::NoAnswer { .. } => true,
            UploadError::Stalled { sent, total, .. } | UploadError::Cut { sent, total, .. } => {
                sent == total
            }
            UploadError::Connect(_) | UploadError::CardRefused(_) => false,
        }
    }
}

/// The gateway's refusal of the voter's card certificate, read from the TLS
/// alert it sent (RFC 8446 section 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardRefusal(pub rustls::AlertDescription);

impl std::fmt::Display for CardRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rustls::AlertDescription as A;
        let why = match self.0 {
            A::CertificateRevoked => "the certificate has been revoked. Contact your ID office or election office: a revoked card cannot send ballots",
            A::CertificateExpired => "the certificate has expired, or is not valid yet. Check your computer's date; if it is right, your card needs renewing",
            A::UnknownCA => "the certificate was not issued by an authority this election accepts",
            A::CertificateRequired => "no certificate was presented: is the card in the reader?",
            A::AccessDenied => "the certificate is not allowed to send ballots",
            _ => "the certificate was not accepted",
        };
        write!(
            f,
            "the gateway refused your card: {why} (TLS alert: {:?})",
            self.0
        )
    }
}

impl std::error::Error for CardRefusal {}

impl CardRefusal {
    /// The refusal somewhere in `e`'s chain of causes, if the gateway sent
    /// an alert about the client certificate. (`io::Error` hides the error
    /// it wraps from `source()`, so each link is looked into.)
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        use rustls::AlertDescription as A;
        let mut link = Some(e);
        while let Some(l) = link {
            let inner = l
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
            for candidate in [Some(l), inner].into_iter().flatten() {
                if let Some(rustls::Error::AlertReceived(a)) = candidate.downcast_ref() {
                    if matches!(
                        a,
                        A::BadCertificate
                            | A::UnsupportedCertificate
                            | A::CertificateRevoked
                            | A::CertificateExpired
                            | A::CertificateUnknown
                            | A::UnknownCA
                            | A::AccessDenied
                            | A::CertificateRequired
                            | A::BadCertificateStatusResponse
                    ) {
                        return Some(CardRefusal(*a));
                    }
                }
                if let Some(r) = candidate.downcast_ref::<CardRefusal>() {
                    return Some(*r);
                }
            }
            link = l.source();
        }
        None
    }

    /// [`CardRefusal::find`] through an [`anyhow::Error`]'s chain.
    pub fn find_in(e: &anyhow::Error) -> Option<Self> {
        e.chain().find_map(Self::find)
    }
}

/// A broken connection as the upload's failure: a card refusal when the
/// gateway's alert is anywhere in the causes, else a cut with the system's
/// words (hyper's "connection error" alone says little; the sources say
/// what happened).
fn cut(sent: u64, total: u64, e: &(dyn std::error::Error + 'static)) -> UploadError {
    if let Some(r) = CardRefusal::find(e) {
        return UploadError::CardRefused(r);
    }
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    UploadError::Cut { sent, total, why }
}

/// How a request on the upload connection failed.
enum ConnFailure {
    Hyper(hyper::Error),
    Body(String),
}

impl From<hyper::Error> for ConnFailure {
    fn from(e: hyper::Error) -> Self {
        ConnFailure::Hyper(e)
    }
}

impl ConnFailure {
    /// The failure as an [`UploadError`]. A request can fail with only
    /// "connection was not ready" or a broken pipe while the connection's
    /// own task holds the reason (the gateway's alert): that is asked for
    /// too, briefly.
    async fn into_upload_error(
        self,
        sent: u64,
        total: u64,
        conn: &mut tokio::task::JoinHandle<hyper::Result<()>>,
    ) -> UploadError {
        let first = match &self {
            ConnFailure::Hyper(e) => cut(sent, total, e),
            ConnFailure::Body(why) => UploadError::Cut {
                sent,
                total,
                why: why.clone(),
            },
        };
        if matches!(first, UploadError::CardRefused(_)) {
            return first;
        }
        match tokio::time::timeout(Duration::from_secs(2), conn).await {
            Ok(Ok(Err(e))) => match CardRefusal::find(&e) {
                Some(r) => UploadError::CardRefused(r),
                None => first,
            },
            _ => first,
        }
    }
}

/// An upload's body, handed to the connection a piece at a time; `sent`
/// counts what the connection has taken.
struct Pieces {
    data: Bytes,
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.data.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.data.len().min(UPLOAD_PIECE);
        let piece = self.data.split_to(n);
        // Asked for the next piece: the connection has taken the last one.
        let taken = self.sent.load(std::sync::atomic::Ordering::Relaxed);
        self.sent
            .store(taken + n as u64, std::sync::atomic::Ordering::Relaxed);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.data.len() as u64)
    }
}

impl Gateway {
    /// `url` is `https://host[:port]`.
    pub fn new(url: &str, tls: rustls::ClientConfig) -> Result<Self> {
        let (host, port) = parse_address(url)?;
        Ok(Gateway {
            host,
            port,
            tls: Arc::new(tls),
            timing: Timing::default(),
        })
    }

    /// One request on a new connection.
    pub async fn request(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Answer> {
        tokio::time::timeout(self.timing.request, self.request_inner(method, path, body))
            .await
            .map_err(|_| {
                anyhow!(
                    "the gateway did not answer within {} seconds",
                    self.timing.request.as_secs()
                )
            })?
    }

    /// A TLS connection to the gateway, within the connect time.
    async fn connect(
        &self,
        send_buffer: Option<u32>,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let work = async {
            let mut last = None;
            let mut tcp = None;
            for addr in tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .with_context(|| format!("cannot find {}", self.host))?
            {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }?;
                if let Some(n) = send_buffer {
                    let _ = socket.set_send_buffer_size(n);
                }
                match socket.connect(addr).await {
                    Ok(s) => {
                        tcp = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let tcp = match (tcp, last) {
                (Some(t), _) => t,
                (None, Some(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot reach {}:{}", self.host, self.port)))
                }
                (None, None) => bail!("{} has no address", self.host),
            };
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(self.host.clone()).context("bad host name")?;
            tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .context("the secure connection to the gateway failed")
        };
        tokio::time::timeout(self.timing.connect, work)
            .await
            .map_err(|_| {
                anyhow!(
                    "the gateway could not be reached within {} seconds",
                    self.timing.connect.as_secs()
                )
            })?
    }

    fn head(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, format!("{}:{}", self.host, self.port))
    }

    async fn request_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        let tls = self
            .connect(None)
            .await
            .map_err(|e| match CardRefusal::find_in(&e) {
                Some(r) => anyhow::Error::new(r),
                None => e,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = self.head(method, path);
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, api::UPLOAD_CONTENT_TYPE);
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| match CardRefusal::find(&e) {
                Some(r) => anyhow::Error::new(r),
                None => anyhow::Error::new(e).context("the request failed"),
            })?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// One try at an upload of `body` on a new connection, however long it
    /// takes while bytes move; `progress` hears how far it has got about
    /// once a second.
    ///
    /// The ballot follows a `GET /v1/voter` on the same connection: with
    /// TLS 1.3 the gateway's verdict on the card comes after the client has
    /// finished its handshake, and a ballot sent at once would be on the
    /// wire when a refusal arrives (the refusal lost behind a broken pipe,
    /// and megabytes spent on a slow link). One round trip buys a clear
    /// answer, and a voter who is not on the roster hears so before
    /// sending anything.
    pub async fn upload_once(
        &self,
        body: Bytes,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Answer, UploadError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let total = body.len() as u64;
        let tls =
            self.connect(Some(UPLOAD_SEND_BUFFER)).await.map_err(
                |e| match CardRefusal::find_in(&e) {
                    Some(r) => UploadError::CardRefused(r),
                    None => UploadError::Connect(e),
                },
            )?;
        let started = tokio::time::Instant::now();
        // hyper's own buffer kept small too, so that it takes the next
        // piece only once the last is nearly on its way.
        let handshake = hyper::client::conn::http1::Builder::new()
            .max_buf_size(UPLOAD_PIECE * 4)
            .handshake::<_, Pieces>(TokioIo::new(tls))
            .await;
        let (mut sender, conn) = match handshake {
            Ok(x) => x,
            Err(e) => return Err(cut(0, total, &e)),
        };
        let mut conn = tokio::spawn(conn);
        let sent = Arc::new(AtomicU64::new(0));

        // The card's verdict first.
        let check = self
            .head(Method::GET, api::VOTER)
            .body(Pieces {
                data: Bytes::new(),
                sent: Arc::new(AtomicU64::new(0)),
            })
            .map_err(|e| cut(0, total, &e))?;
        let checked = async {
            let resp = sender.send_request(check).await?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| ConnFailure::Body(e.to_string()))?
                .to_bytes();
            sender.ready().await?;
            Ok::<_, ConnFailure>((status, body))
        };
        match tokio::time::timeout(self.timing.stall, checked).await {
            Err(_) => {
                return Err(UploadError::NoAnswer {
                    waited: self.timing.stall,
                    total: 0,
                })
            }
            Ok(Err(e)) => return Err(e.into_upload_error(0, total, &mut conn).await),
            Ok(Ok((status, body))) if status != StatusCode::OK => {
                // Not on the roster, busy, …: the gateway's answer stands
                // for the upload's.
                return Ok(Answer { status, body });
            }
            Ok(Ok(_)) => {}
        }

        let req = self
            .head(Method::POST, api::BALLOTS)
            .header(http::header::CONTENT_TYPE, api::UPLOAD_CONTENT_TYPE)
            .header(http::header::CONTENT_LENGTH, total)
            .body(Pieces {
                data: body,
                sent: sent.clone(),
            })
            .map_err(|e| cut(0, total, &e))?;
        let answer = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body();
            Ok::<_, hyper::Error>((status, body))
        };
        tokio::pin!(answer);
        let second = Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(started + second, second);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_count = 0;
        let mut last_move = tokio::time::Instant::now();
        let (status, incoming) = loop {
            tokio::select! {
                r = &mut answer => match r {
                    Ok(a) => break a,
                    Err(e) => {
                        return Err(ConnFailure::Hyper(e)
                            .into_upload_error(sent.load(Ordering::Relaxed), total, &mut conn)
                            .await)
                    }
                },
                _ = tick.tick() => {
                    let now = tokio::time::Instant::now();
                    let count = sent.load(Ordering::Relaxed);
                    if count != last_count {
                        last_count = count;
                        last_move = now;
                    }
                    progress(Progress { sent: count, total, elapsed: now - started });
                    let limit = if count == total {
                        self.timing.stall + ANSWER_ALLOWANCE
                    } else {
                        self.timing.stall
                    };
                    if now - last_move >= limit {
                        return Err(if count == total {
                            UploadError::NoAnswer { waited: now - last_move, total }
                        } else {
                            UploadError::Stalled { stall: self.timing.stall, sent: count, total }
                        });
                    }
                }
            }
        };
        let read = http_body_util::Limited::new(incoming, MAX_RESPONSE).collect();
        let body = tokio::time::timeout(self.timing.stall, read)
            .await
            .map_err(|_| UploadError::NoAnswer {
                waited: self.timing.stall,
                total,
            })?
            .map_err(|e| cut(total, total, &*e))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// The roster entry of the voter whose certificate this connection
    /// presents (`GET /v1/voter`).
    pub async fn voter(&self) -> Result<api::VoterAnswer> {
        let a = self.request(Method::GET, api::VOTER, None).await?;
        if a.status != StatusCode::OK && a.error().0 == ErrorCode::NotOnRoster.as_str() {
            bail!("your card is valid, but the gateway does not find you on the county's roster of voters for this election; contact your election office");
        }
        a.json()
    }

    /// Fetches and verifies the election manifest.
    pub async fn manifest(&self, election_fingerprint: &str) -> Result<ElectionManifest> {
        let a = self.request(Method::GET, api::ELECTION, None).await?;
        if a.status != StatusCode::OK {
            bail!(
                "the gateway did not give the election details ({})",
                a.status
            );
        }
        ElectionManifest::open_signed(&a.body, election_fingerprint).context(
            "the election details are not signed by the election key you were given; do not send your ballot, and contact your election office",
        )
    }
}

/// The host and port of a gateway address `https://host[:port]`.
pub fn parse_address(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("the gateway address must start with https://"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().context("the port is not a number")?),
        None => (authority.to_owned(), 443),
    };
    if host.is_empty() {
        bail!("the gateway address has no host name");
    }
    Ok((host, port))
}

/// The ballot's media type from its file name: `.pdf` a marked PDF
/// ballot, `.json` a selections file.
pub fn media_type_for_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "pdf" => Some(shared::ballot::MEDIA_PDF),
        "json" => Some(shared::ballot::MEDIA_SELECTIONS),
        _ => None,
    }
}

/// The file name extension of a media type (for the voter's file picker).
pub fn extension_for(media_type: &str) -> &'static str {
    if media_type.eq_ignore_ascii_case(shared::ballot::MEDIA_PDF) {
        ".pdf"
    } else if media_type.eq_ignore_ascii_case(shared::ballot::MEDIA_SELECTIONS) {
        ".json"
    } else {
        ""
    }
}

/// What `ballot-return` saves after a successful upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedReceipt {
    /// The election.
    pub election_id: String,
    /// The pinned election fingerprint.
    pub election_fingerprint: String,
    /// The gateway address.
    pub gateway: String,
    /// The ballot's leaf index.
    pub leaf_index: u64,
    /// The voter id in the commitment.
    pub voter_id: String,
    /// The commitment salt (hex).
    pub salt: String,
    /// SHA-256 of the uploaded ciphertext (hex).
    pub message_sha256: String,
    /// The receipt (C2SP tlog-proof).
    pub receipt: String,
}

impl SavedReceipt {
    /// What to save for `receipt`, checked by [`check_receipt`] against the
    /// gateway's `answer`, in `manifest`'s election pinned by `fingerprint`.
    pub fn new(
        manifest: &ElectionManifest,
        fingerprint: &str,
        gateway: &str,
        receipt: &Receipt,
        answer: &ReceiptAnswer,
    ) -> Result<Self> {
        Ok(SavedReceipt {
            election_id: manifest.election_id.clone(),
            election_fingerprint: fingerprint.trim().to_uppercase(),
            gateway: gateway.to_owned(),
            leaf_index: receipt.index,
            voter_id: answer.voter_id.clone(),
            salt: answer.salt.clone(),
            message_sha256: hex::encode(receipt.entry.message_sha256),
            receipt: receipt.to_text()?,
        })
    }
}

/// What to send.
#[derive(Debug)]
pub struct Ballot {
    /// The marked ballot.
    pub content: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// The voter's ballot style.
    pub ballot_style: String,
}

/// The voter's signing credentials.
#[derive(Debug)]
pub struct Credentials {
    /// The voter's certificate (DER).
    pub cert: Vec<u8>,
    /// Intermediates to include in the signature.
    pub chain: Vec<Vec<u8>>,
    /// The key.
    pub key: Box<dyn shared::cms::CmsSigner>,
}

/// Progress messages for the person at the keyboard.
pub type Say<'a> = &'a mut dyn FnMut(&str);

/// Builds the signed and encrypted upload for `manifest`.
pub fn prepare(
    manifest: &ElectionManifest,
    ballot: &Ballot,
    creds: &Credentials,
) -> Result<Vec<u8>> {
    let limit = manifest.media_limit(&ballot.media_type).ok_or_else(|| {
        anyhow!(
            "this election accepts {} files, not {}",
            manifest
                .accepted_media
                .iter()
                .map(|m| m.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            ballot.media_type
        )
    })?;
    if ballot.content.len() > limit as usize {
        bail!(
            "the ballot file is {} bytes; the limit is {limit}",
            ballot.content.len()
        );
    }
    let package = BallotPackage::new(
        &manifest.election_id,
        &ballot.ballot_style,
        &ballot.media_type,
        ballot.content.clone(),
        &manifest.declaration,
    )
    .to_bytes()?;
    let signed = shared::cms::sign(&package, &creds.cert, &creds.chain, creds.key.as_ref())?;
    let cert = shared::pgp::read_public_cert(&manifest.election_cert)?;
    Ok(shared::pgp::encrypt(&cert, &signed)?)
}

/// Checks a receipt the gateway returned for `upload`.
pub fn check_receipt(
    manifest: &ElectionManifest,
    upload: &[u8],
    answer: &ReceiptAnswer,
) -> Result<(Receipt, SignedCheckpoint)> {
    let receipt = Receipt::parse(answer.receipt.as_bytes())?;
    let log_key = NoteVerifier::from_vkey(&manifest.log_key)?;
    let cp = receipt
        .verify(&log_key)
        .context("the receipt does not verify")?;
    let sha: [u8; 32] = Sha256::digest(upload).into();
    if receipt.entry.message_sha256 != sha {
        bail!("the receipt is for a different upload");
    }
    if receipt.entry.election_id != manifest.election_id {
        bail!("the receipt is for another election");
    }
    let salt = answer
        .salt_bytes()
        .ok_or_else(|| anyhow!("the gateway's answer has no valid salt"))?;
    if voter_commitment(&salt, &answer.voter_id) != receipt.entry.voter_commitment {
        bail!("the receipt's voter commitment does not match");
    }
    if answer.leaf_index != receipt.index {
        bail!("the receipt's index does not match the answer");
    }
    Ok((receipt, cp))
}

/// How many tries an upload gets, and the wait before each retry.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    /// Tries in all.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time, up to a
    /// minute.
    pub first_wait: Duration,
}

impl Retries {
    /// `attempts` tries with the usual waits between them.
    pub fn times(attempts: u32) -> Self {
        Retries {
            attempts,
            ..Default::default()
        }
    }
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: 8,
            first_wait: Duration::from_secs(2),
        }
    }
}

/// What became of an upload that never got its receipt, in words for the
/// voter: what happened, whether the gateway may have the ballot anyway,
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum NotSent {
    /// The gateway refused the ballot for good.
    #[error("the gateway refused the ballot ({code}): {message}")]
    Refused {
        /// The refusal code (escaped).
        code: String,
        /// Its message (escaped).
        message: String,
    },
    /// The gateway refused the card's certificate; nothing was kept.
    #[error("{0} Your ballot was not received.")]
    CardRefused(CardRefusal),
    /// Every try failed on the way.
    #[error("{}", not_sent_words(*.tries, .last, *.maybe_received))]
    GaveUp {
        /// Tries made.
        tries: u32,
        /// The last try's failure.
        last: UploadError,
        /// True when some try sent every byte: the gateway may have logged
        /// the ballot, and only its answer was lost.
        maybe_received: bool,
    },
    /// The gateway stayed busy.
    #[error("the gateway was busy at every one of {tries} tries ({code}): {message}")]
    Busy {
        /// Tries made.
        tries: u32,
        /// The last refusal's code (escaped).
        code: String,
        /// Its message (escaped).
        message: String,
    },
}

fn not_sent_words(tries: u32, last: &UploadError, maybe_received: bool) -> String {
    let mut s = format!(
        "the connection to the gateway failed at every one of {tries} tries (the last: {last})."
    );
    if maybe_received {
        s.push_str(" At least one try sent the whole ballot, so the gateway may have received it even though no receipt came back: without a receipt you cannot rely on it.");
    } else {
        s.push_str(" No try got the whole ballot through.");
    }
    s.push_str(" Try again when the connection is better: sending again is safe, since only your latest ballot counts and the gateway gives the same receipt for a ballot it already has.");
    s
}

/// Uploads `upload`, retrying the same bytes after a stall, a cut
/// connection or a temporary refusal (the gateway answers a retry of a
/// ballot it already logged with the same receipt). `progress` hears how
/// far each try has got; `say` hears what happens between tries.
pub async fn upload(
    gw: &Gateway,
    upload: &[u8],
    retries: Retries,
    progress: &mut dyn FnMut(Progress),
    say: Say<'_>,
) -> Result<ReceiptAnswer, NotSent> {
    let body = Bytes::copy_from_slice(upload);
    let attempts = retries.attempts.max(1);
    let mut wait = retries.first_wait;
    let mut maybe_received = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = gw.upload_once(body.clone(), progress).await;
        let why = match outcome {
            Ok(a) if a.status == StatusCode::OK => {
                return a.json().map_err(|e| NotSent::Refused {
                    code: "unreadable-answer".into(),
                    message: format!("{e:#}"),
                });
            }
            Ok(a) => {
                let (code, message) = a.error();
                let temporary = matches!(
                    a.status,
                    StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::REQUEST_TIMEOUT
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::GATEWAY_TIMEOUT
                ) || ErrorCode::parse(&code).is_some_and(ErrorCode::is_temporary);
                if !temporary {
                    return Err(NotSent::Refused { code, message });
                }
                if attempt == attempts {
                    return Err(NotSent::Busy {
                        tries: attempts,
                        code,
                        message,
                    });
                }
                format!("the gateway could not take it this time ({code}: {message})")
            }
            Err(UploadError::CardRefused(r)) => return Err(NotSent::CardRefused(r)),
            Err(e) => {
                maybe_received |= e.all_sent();
                if attempt == attempts {
                    return Err(NotSent::GaveUp {
                        tries: attempts,
                        last: e,
                        maybe_received,
                    });
                }
                format!("the connection failed: {e}")
            }
        };
        say(&format!(
            "Try {attempt} of {attempts}: {why}. Trying again in {} seconds with the same sealed ballot…",
            wait.as_secs()
        ));
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// How far a receipt's time may be from the voter's clock.
pub const RECEIPT_CLOCK_TOLERANCE: u64 = 15 * 60;

/// Refuses a receipt whose arrival time is far from the voter's own clock:
/// a gateway that backdates or postdates ballots is caught at once.
pub fn check_receipt_time(receipt: &Receipt, now: UnixTime) -> Result<()> {
    let at = receipt.entry.received_at;
    if at.0.abs_diff(now.0) > RECEIPT_CLOCK_TOLERANCE {
        bail!(
            "the gateway's receipt says your ballot arrived at {}, but your computer's clock says {}: keep the receipt and report this to your election office (if your clock is wrong, correct it and check again)",
            at.to_rfc3339(),
            now.to_rfc3339()
        );
    }
    Ok(())
}

/// Where a ballot stands, by the county's signed word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Logged, but no checkpoint a quorum of witnesses cosigned covers it
    /// yet.
    NotYetWitnessed,
    /// Witnessed; the county's latest status file predates it (or there is
    /// none yet).
    NotProcessedYet,
    /// Decided in the county's signed status file.
    Decided(Status),
}

/// The outcome of a status check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// Where the ballot stands.
    pub standing: Standing,
    /// Plain words for the voter.
    pub explanation: String,
    /// The size of the latest checkpoint a quorum of witnesses cosigned.
    pub witnessed_size: Option<u64>,
}

/// The words a voter sees when the gateway's log is not the witnessed one.
pub const FORK: &str = "the gateway showed you a log that the county's witnesses did not see";

/// The gateway's consistency proof between the checkpoints of sizes `a`
/// and `b`, in whichever order (none is needed when either is empty or they
/// are equal).
pub async fn consistency_proof(gw: &Gateway, a: u64, b: u64) -> Result<Vec<shared::merkle::Hash>> {
    let (m, n) = (a.min(b), a.max(b));
    if m == 0 || m == n {
        return Ok(Vec::new());
    }
    let a = gw
        .request(Method::GET, &api::consistency_path(m, n), None)
        .await?;
    Ok(a.json::<ConsistencyAnswer>()
        .context("no consistency proof")?
        .proof)
}

/// The latest checkpoint a quorum of `manifest`'s witnesses cosigned, as
/// the gateway serves it (verified), or `None` before the first.
pub async fn witnessed(
    gw: &Gateway,
    manifest: &ElectionManifest,
) -> Result<Option<shared::witness::Witnessed>> {
    let a = gw.request(Method::GET, api::WITNESSED, None).await?;
    if a.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if a.status != StatusCode::OK {
        let (code, message) = a.error();
        bail!("the gateway did not give its witnessed checkpoint ({code}): {message}");
    }
    let w = manifest.witness_policy()?.verify(&a.body).map_err(|e| {
        anyhow!("the gateway's checkpoint is not the county's word: {e}. Report this to your election office")
    })?;
    Ok(Some(w))
}

/// The county's signed word as the gateway serves it publicly, each part
/// verified: the manifest (pinned by the election fingerprint), the latest
/// checkpoint a quorum of its witnesses cosigned, and the signed status
/// file. Fetched once, it serves any number of receipts ([`standing`]).
#[derive(Debug, Clone)]
pub struct CountyWord {
    /// The election fingerprint it was pinned by.
    pub fingerprint: String,
    /// The manifest.
    pub manifest: ElectionManifest,
    /// The latest witnessed checkpoint, if any yet.
    pub witnessed: Option<shared::witness::Witnessed>,
    /// The status file, if the county has processed ballots yet.
    pub status_file: Option<shared::linkage::CheckedStatusFile>,
}

/// Fetches the county's signed word over `gw`, a connection that presents
/// no client certificate (so the gateway cannot tell whose check it is).
pub async fn county_word(gw: &Gateway, fingerprint: &str) -> Result<CountyWord> {
    let manifest = gw.manifest(fingerprint).await?;
    let witnessed = witnessed(gw, &manifest).await?;
    let a = gw.request(Method::GET, api::STATUS_FILE, None).await?;
    let status_file = if a.status == StatusCode::NOT_FOUND {
        None
    } else if a.status != StatusCode::OK {
        let (code, message) = a.error();
        bail!("the gateway did not give the county's status file ({code}): {message}");
    } else {
        Some(
            shared::linkage::CheckedStatusFile::open(&a.body, &manifest, fingerprint)
                .map_err(|e| anyhow!("{e}. Report this to your election office"))?,
        )
    };
    Ok(CountyWord {
        fingerprint: fingerprint.to_owned(),
        manifest,
        witnessed,
        status_file,
    })
}

/// Checks a saved receipt against the county's signed word, fetched from
/// the gateway's public endpoints over `gw` (no client certificate): the
/// latest checkpoint a quorum of the manifest's witnesses cosigned, a
/// consistency proof from the receipt's checkpoint to it, and the signed
/// status file with a proof tying its checkpoint to the receipt's. The
/// gateway's own (unsigned) status answer is never used.
pub async fn status(gw: &Gateway, saved: &SavedReceipt) -> Result<StatusReport> {
    let word = county_word(gw, &saved.election_fingerprint).await?;
    standing(gw, &word, saved).await
}

/// Where the ballot of `saved` stands by `word`; over `gw` only the
/// consistency proofs linking its receipt to `word` are fetched.
pub async fn standing(
    gw: &Gateway,
    word: &CountyWord,
    saved: &SavedReceipt,
) -> Result<StatusReport> {
    let log_key = NoteVerifier::from_vkey(&word.manifest.log_key)?;
    let receipt = Receipt::parse(saved.receipt.as_bytes())?;
    let mine = receipt
        .verify(&log_key)
        .context("the saved receipt does not verify")?
        .checkpoint;
    let fork = || {
        anyhow!("{FORK}: your receipt's log is not part of the log they cosigned. Keep your receipt and report this to your election office")
    };

    let Some(witnessed) = &word.witnessed else {
        return Ok(StatusReport {
            standing: Standing::NotYetWitnessed,
            explanation: format!(
                "your ballot is logged (entry {}), but the county's witnesses have not cosigned any checkpoint yet; check again later",
                receipt.index
            ),
            witnessed_size: None,
        });
    };
    let seen = &witnessed.checkpoint.checkpoint;
    let proof = consistency_proof(gw, mine.size, seen.size)
        .await
        .map_err(|_| fork())?;
    shared::linkage::consistent(&mine, seen, &proof).map_err(|_| fork())?;
    if seen.size <= receipt.index {
        return Ok(StatusReport {
            standing: Standing::NotYetWitnessed,
            explanation: format!(
                "your ballot is logged (entry {}), but the county's witnesses have cosigned the log only up to {} entries so far; check again later",
                receipt.index, seen.size
            ),
            witnessed_size: Some(seen.size),
        });
    }

    let not_processed = |why: &str| StatusReport {
        standing: Standing::NotProcessedYet,
        explanation: format!(
            "your ballot is logged (entry {}) and witnessed; {why}",
            receipt.index
        ),
        witnessed_size: Some(seen.size),
    };
    let Some(file) = &word.status_file else {
        return Ok(not_processed("the county has not processed it yet"));
    };
    let decided = &file.checkpoint.checkpoint;
    let unlinked = || {
        anyhow!("the county's status file is for a log your receipt is not part of: keep your receipt and report this to your election office")
    };
    let proof = consistency_proof(gw, mine.size, decided.size)
        .await
        .map_err(|_| unlinked())?;
    shared::linkage::consistent(&mine, decided, &proof).map_err(|_| unlinked())?;
    match file.status_of(receipt.index) {
        None => Ok(not_processed(
            "the county's latest status file predates it: it has not processed it yet",
        )),
        Some(st) => Ok(StatusReport {
            explanation: st.describe(),
            standing: Standing::Decided(st),
            witnessed_size: Some(seen.size),
        }),
    }
}
