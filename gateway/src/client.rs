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
use shared::ballot::BallotPackage;
use shared::checkpoint::SignedCheckpoint;
use shared::log_entry::voter_commitment;
use shared::manifest::ElectionManifest;
use shared::note::NoteVerifier;
use shared::receipt::Receipt;
use std::sync::Arc;
use std::time::Duration;

/// The largest response read from the gateway.
const MAX_RESPONSE: usize = 2 * 1024 * 1024;

/// A connection target and TLS settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    /// Per-request timeout.
    pub timeout: Duration,
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
    /// The JSON error's code and message, if the body is one.
    pub fn error(&self) -> (String, String) {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        (
            v.pointer("/error/code")
                .unwrap_or(&serde_json::Value::Null)
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            v.pointer("/error/message")
                .unwrap_or(&serde_json::Value::Null)
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    }
}

impl Gateway {
    /// `url` is `https://host[:port]`.
    pub fn new(url: &str, tls: rustls::ClientConfig) -> Result<Self> {
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
        Ok(Gateway {
            host,
            port,
            tls: Arc::new(tls),
            timeout: Duration::from_secs(120),
        })
    }

    /// One request on a new connection.
    pub async fn request(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Answer> {
        tokio::time::timeout(self.timeout, self.request_inner(method, path, body))
            .await
            .map_err(|_| {
                anyhow!(
                    "the gateway did not answer within {} seconds",
                    self.timeout.as_secs()
                )
            })?
    }

    async fn request_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("cannot reach {}:{}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone()).context("bad host name")?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .context("the secure connection to the gateway failed")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, format!("{}:{}", self.host, self.port));
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/octet-stream");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = sender
            .send_request(req)
            .await
            .context("the request failed")?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Fetches and verifies the election manifest.
    pub async fn manifest(&self, election_fingerprint: &str) -> Result<ElectionManifest> {
        let a = self.request(Method::GET, "/v1/election", None).await?;
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

/// The hashes of an inclusion or consistency proof answer
/// (`{"proof": [base64, …]}`) from the gateway's log endpoints.
pub fn proof_hashes(body: &[u8]) -> Result<Vec<shared::merkle::Hash>> {
    use base64::prelude::*;
    let v: serde_json::Value = serde_json::from_slice(body)?;
    v.pointer("/proof")
        .and_then(|p| p.as_array())
        .ok_or_else(|| anyhow!("the answer has no proof"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| BASE64_STANDARD.decode(s).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| anyhow!("a hash in the proof is not 32 base64 bytes"))
        })
        .collect()
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
    pub key: shared::cms::VoterKey,
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
    let signed = shared::cms::sign(&package, &creds.cert, &creds.chain, &creds.key)?;
    let cert = shared::pgp::read_public_cert(&manifest.election_cert)?;
    Ok(shared::pgp::encrypt(&cert, &signed)?)
}

/// Checks a receipt the gateway returned for `upload`.
pub fn check_receipt(
    manifest: &ElectionManifest,
    upload: &[u8],
    answer: &serde_json::Value,
) -> Result<(Receipt, SignedCheckpoint)> {
    let text = answer
        .pointer("/receipt")
        .unwrap_or(&serde_json::Value::Null)
        .as_str()
        .ok_or_else(|| anyhow!("the gateway's answer has no receipt"))?;
    let receipt = Receipt::parse(text.as_bytes())?;
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
    let salt: [u8; 32] = hex::decode(
        answer
            .pointer("/salt")
            .unwrap_or(&serde_json::Value::Null)
            .as_str()
            .unwrap_or(""),
    )
    .ok()
    .and_then(|s| s.try_into().ok())
    .ok_or_else(|| anyhow!("the gateway's answer has no valid salt"))?;
    let voter_id = answer
        .pointer("/voter_id")
        .unwrap_or(&serde_json::Value::Null)
        .as_str()
        .unwrap_or("");
    if voter_commitment(&salt, voter_id) != receipt.entry.voter_commitment {
        bail!("the receipt's voter commitment does not match");
    }
    if answer
        .pointer("/leaf_index")
        .unwrap_or(&serde_json::Value::Null)
        .as_u64()
        != Some(receipt.index)
    {
        bail!("the receipt's index does not match the answer");
    }
    Ok((receipt, cp))
}

/// Uploads `upload`, retrying on network failures and temporary refusals
/// with the same bytes (the gateway treats a retry as the same ballot).
pub async fn upload(
    gw: &Gateway,
    upload: &[u8],
    attempts: u32,
    say: Say<'_>,
) -> Result<serde_json::Value> {
    let body = Bytes::copy_from_slice(upload);
    let mut delay = Duration::from_secs(2);
    for attempt in 1..=attempts.max(1) {
        match gw
            .request(Method::POST, "/v1/ballots", Some(body.clone()))
            .await
        {
            Ok(a) if a.status == StatusCode::OK => {
                return serde_json::from_slice(&a.body)
                    .context("the gateway's answer is not readable");
            }
            Ok(a) => {
                let (code, message) = a.error();
                let temporary = matches!(
                    a.status,
                    StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::REQUEST_TIMEOUT
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::GATEWAY_TIMEOUT
                ) || code == "upload-interrupted";
                if !temporary || attempt == attempts {
                    bail!("the gateway refused the ballot ({code}): {message}");
                }
                say(&format!(
                    "The gateway is busy ({code}); trying again in {} seconds…",
                    delay.as_secs()
                ));
            }
            Err(e) => {
                if attempt == attempts {
                    return Err(e.context(format!(
                        "the ballot could not be sent after {attempts} attempts"
                    )));
                }
                say(&format!(
                    "The connection failed ({e:#}); trying again in {} seconds (attempt {}/{attempts})…",
                    delay.as_secs(),
                    attempt + 1
                ));
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(60));
    }
    bail!("the ballot could not be sent")
}

/// The outcome of a status check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// `received`, `accepted`, `rejected` or `superseded`.
    pub status: String,
    /// Plain words.
    pub explanation: String,
    /// The latest checkpoint's size.
    pub log_size: u64,
}

/// Checks a saved receipt against the gateway's latest checkpoint and asks
/// for the ballot's status.
pub async fn status(gw: &Gateway, saved: &SavedReceipt) -> Result<StatusReport> {
    let manifest = gw.manifest(&saved.election_fingerprint).await?;
    let log_key = NoteVerifier::from_vkey(&manifest.log_key)?;
    let receipt = Receipt::parse(saved.receipt.as_bytes())?;
    let old = receipt
        .verify(&log_key)
        .context("the saved receipt does not verify")?;
    let a = gw.request(Method::GET, "/v1/log/checkpoint", None).await?;
    if a.status != StatusCode::OK {
        bail!(
            "the gateway did not give its latest checkpoint ({})",
            a.status
        );
    }
    let latest = SignedCheckpoint::verify(&a.body, &log_key)
        .context("the gateway's checkpoint is not signed by the log key")?;
    let (m, n) = (old.checkpoint.size, latest.checkpoint.size);
    if n < m {
        bail!("the gateway's log is smaller than when your ballot was received: report this to your election office");
    }
    let a = gw
        .request(
            Method::GET,
            &format!("/v1/log/consistency?from={m}&to={n}"),
            None,
        )
        .await?;
    if a.status != StatusCode::OK {
        bail!(
            "the gateway did not give a consistency proof ({})",
            a.status
        );
    }
    let proof = proof_hashes(&a.body).context("bad consistency proof")?;
    if m == n {
        if old.checkpoint.root != latest.checkpoint.root {
            bail!("the gateway shows a different log than the one in your receipt: report this to your election office");
        }
    } else {
        shared::merkle::verify_consistency(m, n, &proof, &old.checkpoint.root, &latest.checkpoint.root).context(
            "the gateway's log is not an extension of the one in your receipt: report this to your election office",
        )?;
    }
    let a = gw
        .request(
            Method::GET,
            &format!("/v1/ballots/{}/status", saved.leaf_index),
            None,
        )
        .await?;
    if a.status != StatusCode::OK {
        let (code, message) = a.error();
        bail!("the gateway did not give the status ({code}): {message}");
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)?;
    Ok(StatusReport {
        status: v
            .pointer("/status")
            .unwrap_or(&serde_json::Value::Null)
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        explanation: v
            .pointer("/explanation")
            .unwrap_or(&serde_json::Value::Null)
            .as_str()
            .unwrap_or("")
            .to_owned(),
        log_size: n,
    })
}
