//! The voter's page: `ballot-return` with no arguments serves a page on
//! 127.0.0.1, on a random port, for this voter's browser only, and walks
//! the voter through returning a ballot. Every cryptographic step (the
//! manifest's signature, signing, sealing, the receipt's proofs) stays in
//! this program; the page only shows and asks.
//!
//! Who may use it: the browser that opens the one-time address. Its token
//! is exchanged, once, for a session cookie (HttpOnly, SameSite=Strict);
//! every request must carry the cookie and name this very host and port in
//! `Host` (a web page elsewhere that points a name at 127.0.0.1 is refused),
//! and every POST must come from this origin. The page's policy lets it
//! load nothing and talk to nothing but this server.

mod send;

use crate::client::{Gateway, SavedReceipt};
use crate::receipts::Folder;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};
use shared::manifest::ElectionManifest;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/page.js");
const STYLE: &str = include_str!("assets/page.css");

const COOKIE: &str = "ballot_return_session";
/// The largest JSON request the page sends.
const MAX_JSON: usize = 16 * 1024;
/// The largest ballot read, whatever the manifest says.
const MAX_BALLOT: usize = 64 * 1024 * 1024;

/// What the page needs from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The gateway address, if the instructions were given.
    pub gateway: Option<String>,
    /// The election key fingerprint, likewise.
    pub fingerprint: Option<String>,
    /// The gateway's CA (test setups); else the system trust store.
    pub ca: Option<PathBuf>,
    /// Development: a certificate and key in PEM instead of a card.
    pub pem: Option<(PathBuf, PathBuf)>,
    /// Issuing CA certificates to send along (PEM).
    pub chain: Option<PathBuf>,
    /// The card's PKCS #11 module, if not found in the usual places.
    pub pkcs11_module: Option<PathBuf>,
    /// The card's label, when several are inserted.
    pub card_label: Option<String>,
    /// The receipts folder.
    pub receipts: PathBuf,
    /// How many tries on a poor connection.
    pub attempts: u32,
}

/// A running page.
#[derive(Debug)]
pub struct Serving {
    /// The one-time address to open (it carries the token).
    pub url: String,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// Ends when the voter closes the page (or the server fails).
    pub done: tokio::task::JoinHandle<()>,
}

/// The election the voter chose, as its signed manifest says.
#[derive(Debug, Clone)]
struct Chosen {
    url: String,
    fingerprint: String,
    manifest: ElectionManifest,
}

/// The ballot file the voter picked.
#[derive(Debug, Clone)]
struct BallotFile {
    media_type: String,
    content: Vec<u8>,
}

/// Where the voter is.
#[derive(Debug, Default)]
struct Flow {
    election: Option<Chosen>,
    ballot: Option<BallotFile>,
    accepted: bool,
    sending: Option<send::Sending>,
}

struct Shared {
    opts: Options,
    roots: Vec<CertificateDer<'static>>,
    host: String,
    origin: String,
    token: Mutex<Option<String>>,
    session: String,
    flow: Mutex<Flow>,
    quit: tokio::sync::Notify,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    hex::encode(b)
}

/// Starts the page's server on 127.0.0.1 (a port the system picks).
pub async fn serve(opts: Options) -> Result<Serving> {
    let roots = crate::tls::server_roots(opts.ca.as_deref())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot open a port on 127.0.0.1 for the page")?;
    let port = listener.local_addr()?.port();
    let token = random_hex();
    let shared = Arc::new(Shared {
        opts,
        roots,
        host: format!("127.0.0.1:{port}"),
        origin: format!("http://127.0.0.1:{port}"),
        token: Mutex::new(Some(token.clone())),
        session: random_hex(),
        flow: Mutex::new(Flow::default()),
        quit: tokio::sync::Notify::new(),
    });
    let done = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shared.quit.notified() => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, &shared).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Serving {
        url: format!("http://127.0.0.1:{port}/?t={token}"),
        port,
        done,
    })
}

/// A refusal or failure the page shows as it is.
struct Said {
    status: StatusCode,
    text: String,
}

fn said(status: StatusCode, text: impl Into<String>) -> Said {
    Said {
        status,
        text: text.into(),
    }
}

impl From<anyhow::Error> for Said {
    fn from(e: anyhow::Error) -> Self {
        said(
            StatusCode::BAD_GATEWAY,
            shared::text::printable(&format!("{e:#}")),
        )
    }
}

fn secured(mut r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let h = r.headers_mut();
    for (name, value) in shared::api::PAGE_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

fn body(status: StatusCode, content_type: &'static str, b: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(b));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secured(r)
}

fn json_answer(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    body(
        status,
        "application/json",
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

fn refused(s: Said) -> Response<Full<Bytes>> {
    json_answer(s.status, &json!({ "error": s.text }))
}

fn cookie_of(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

async fn answer(req: Request<Incoming>, s: &Arc<Shared>) -> Response<Full<Bytes>> {
    // A name other than this host and port: a page elsewhere pointing a
    // name of its own at 127.0.0.1 (DNS rebinding).
    let host_ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h == s.host);
    if !host_ok {
        return refused(said(
            StatusCode::MISDIRECTED_REQUEST,
            "this page answers only at its own address",
        ));
    }
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET && path == "/" {
        if let Some(t) = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("t=")))
        {
            return exchange_token(s, t);
        }
    }
    let session_ok = cookie_of(&req).is_some_and(|c| same(&c, &s.session));
    if !session_ok {
        return body(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            Bytes::from_static(
                b"This page is open in another window already, or its address was used before.\n\
                  Run ballot-return again to open a new one.\n",
            ),
        );
    }
    if req.method() == Method::POST {
        let origin_ok = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o == s.origin);
        if !origin_ok {
            return refused(said(
                StatusCode::FORBIDDEN,
                "requests from other pages are refused",
            ));
        }
    }
    match route(req, s, &path).await {
        Ok(r) => r,
        Err(e) => refused(e),
    }
}

/// The one-time address: its token is exchanged for the session cookie,
/// once; the address is then dead.
fn exchange_token(s: &Shared, t: &str) -> Response<Full<Bytes>> {
    let mut token = match s.token.lock() {
        Ok(t) => t,
        Err(_) => return refused(said(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
    };
    let ok = token.as_deref().is_some_and(|want| same(want, t));
    if !ok {
        return body(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            Bytes::from_static(
                b"This address was used already. Run ballot-return again to open a new page.\n",
            ),
        );
    }
    *token = None;
    let mut r = body(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", s.session);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    r
}

async fn read_json(req: Request<Incoming>) -> Result<Value, Said> {
    let bytes = Limited::new(req.into_body(), MAX_JSON)
        .collect()
        .await
        .map_err(|_| said(StatusCode::PAYLOAD_TOO_LARGE, "the request is too large"))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|_| said(StatusCode::BAD_REQUEST, "not JSON"))
}

fn flow(s: &Shared) -> Result<std::sync::MutexGuard<'_, Flow>, Said> {
    s.flow
        .lock()
        .map_err(|_| said(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

async fn route(
    req: Request<Incoming>,
    s: &Arc<Shared>,
    path: &str,
) -> Result<Response<Full<Bytes>>, Said> {
    let text = |ct: &'static str, b: &'static str| {
        Ok(body(StatusCode::OK, ct, Bytes::from_static(b.as_bytes())))
    };
    match (req.method().clone(), path) {
        (Method::GET, "/") => text("text/html; charset=utf-8", PAGE),
        (Method::GET, "/page.js") => text("text/javascript; charset=utf-8", SCRIPT),
        (Method::GET, "/page.css") => text("text/css; charset=utf-8", STYLE),
        (Method::GET, "/api/start") => Ok(json_answer(
            StatusCode::OK,
            &json!({
                "gateway": s.opts.gateway,
                "fingerprint": s.opts.fingerprint,
                "card": if s.opts.pem.is_some() { "files" } else { "card" },
                "receipts": s.opts.receipts.display().to_string(),
            }),
        )),
        (Method::POST, "/api/election") => {
            let v = read_json(req).await?;
            election(s, &v).await
        }
        (Method::POST, "/api/ballot") => ballot(req, s).await,
        (Method::POST, "/api/declaration") => {
            let v = read_json(req).await?;
            let mut f = flow(s)?;
            if f.election.is_none() {
                return Err(said(StatusCode::CONFLICT, "choose the election first"));
            }
            f.accepted = v.get("accept").and_then(Value::as_bool) == Some(true);
            Ok(json_answer(
                StatusCode::OK,
                &json!({ "accepted": f.accepted }),
            ))
        }
        (Method::GET, "/api/card") => send::card_info(s).await,
        (Method::POST, "/api/send") => {
            let v = read_json(req).await?;
            send::start(s, v).await
        }
        (Method::GET, "/api/progress") => send::progress(s),
        (Method::GET, "/api/receipt.pdf") => {
            let saved = last_receipt(s)?;
            let pdf = crate::printable::receipt_pdf(&saved)?;
            Ok(body(StatusCode::OK, "application/pdf", Bytes::from(pdf)))
        }
        (Method::GET, "/api/receipt.json") => {
            let saved = last_receipt(s)?;
            let mut r = body(
                StatusCode::OK,
                "application/json",
                Bytes::from(serde_json::to_vec_pretty(&saved).unwrap_or_default()),
            );
            let name = format!(
                "attachment; filename=\"ballot-receipt-entry-{}.json\"",
                saved.leaf_index
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(r)
        }
        (Method::GET, "/api/status") => status(s).await,
        (Method::POST, "/api/quit") => {
            s.quit.notify_one();
            Ok(json_answer(StatusCode::OK, &json!({ "closed": true })))
        }
        _ => Err(said(StatusCode::NOT_FOUND, "no such page")),
    }
}

fn last_receipt(s: &Shared) -> Result<SavedReceipt, Said> {
    flow(s)?
        .sending
        .as_ref()
        .and_then(|x| x.saved.clone())
        .ok_or_else(|| {
            said(
                StatusCode::NOT_FOUND,
                "no ballot was sent from this page yet",
            )
        })
}

fn anonymous(s: &Shared, url: &str) -> Result<Gateway> {
    Gateway::new(
        url,
        crate::tls::client_config(&s.roots, None, &[b"http/1.1"])?,
    )
}

/// The election from the instructions: the signed manifest, fetched
/// without a card and checked against the fingerprint.
async fn election(s: &Shared, v: &Value) -> Result<Response<Full<Bytes>>, Said> {
    let url = v
        .get("gateway")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let fingerprint = shared::pgp::parse_fingerprint(
        v.get("fingerprint")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
    .map_err(|e| said(StatusCode::BAD_REQUEST, format!("the fingerprint: {e}")))?;
    if !url.starts_with("https://") {
        return Err(said(
            StatusCode::BAD_REQUEST,
            "the gateway address from your instructions begins with https://",
        ));
    }
    let gw = anonymous(s, &url).map_err(|e| said(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let manifest = gw.manifest(&fingerprint).await.map_err(|e| {
        said(
            StatusCode::BAD_GATEWAY,
            format!(
                "Cannot get the election from the gateway at {url}: {}",
                shared::text::printable(&format!("{e:#}"))
            ),
        )
    })?;
    let now = shared::clock::Clock::now(&shared::clock::SystemClock);
    let open = if now < manifest.opens_at {
        Err(format!(
            "Voting has not opened yet: ballots are accepted from {}.",
            manifest.opens_at
        ))
    } else if now >= manifest.closes_at {
        Err(format!(
            "Voting closed at {}. A ballot cannot be returned here any more; contact your election office.",
            manifest.closes_at
        ))
    } else {
        Ok(())
    };
    let answer = json!({
        "title": manifest.title,
        "jurisdiction": manifest.jurisdiction,
        "election_id": manifest.election_id,
        "opens_at": manifest.opens_at.to_rfc3339(),
        "closes_at": manifest.closes_at.to_rfc3339(),
        "open": open.is_ok(),
        "closed_reason": open.err(),
        "declaration": manifest.declaration,
        "accepted": manifest.accepted_media.iter().map(|m| json!({
            "media_type": m.media_type,
            "max_size": m.max_size,
            "extension": crate::client::extension_for(&m.media_type),
        })).collect::<Vec<_>>(),
    });
    let mut f = flow(s)?;
    *f = Flow {
        election: Some(Chosen {
            url,
            fingerprint,
            manifest,
        }),
        ..Flow::default()
    };
    Ok(json_answer(StatusCode::OK, &answer))
}

/// The ballot file: its type (from its name, and its content must be
/// that type) and size are checked against the manifest before anything
/// is signed.
async fn ballot(req: Request<Incoming>, s: &Shared) -> Result<Response<Full<Bytes>>, Said> {
    let manifest = flow(s)?
        .election
        .as_ref()
        .map(|e| e.manifest.clone())
        .ok_or_else(|| said(StatusCode::CONFLICT, "choose the election first"))?;
    let name = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
        .map(percent_decode)
        .unwrap_or_default();
    let Some(media_type) = crate::client::media_type_for_name(&name) else {
        return Err(said(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "\"{}\" is not a ballot file this program can send: choose your marked ballot as a PDF ({})",
                shared::text::printable(&name),
                accepted_words(&manifest)
            ),
        ));
    };
    let Some(limit) = manifest.media_limit(media_type) else {
        return Err(said(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "this election does not accept {media_type} files; it accepts {}",
                accepted_words(&manifest)
            ),
        ));
    };
    let limit = usize::try_from(limit).unwrap_or(MAX_BALLOT).min(MAX_BALLOT);
    let too_big = || {
        said(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "your ballot file is larger than this election accepts ({limit} bytes at most)"
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    let content = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| too_big())?
        .to_bytes()
        .to_vec();
    if content.is_empty() {
        return Err(said(StatusCode::BAD_REQUEST, "the file is empty"));
    }
    let looks_right = match media_type {
        shared::ballot::MEDIA_PDF => content.starts_with(b"%PDF-"),
        _ => serde_json::from_slice::<Value>(&content).is_ok(),
    };
    if !looks_right {
        return Err(said(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "\"{}\" is named like a {media_type} file but is not one: choose your marked ballot itself",
                shared::text::printable(&name)
            ),
        ));
    }
    let size = content.len();
    let mut f = flow(s)?;
    f.ballot = Some(BallotFile {
        media_type: media_type.to_owned(),
        content,
    });
    Ok(json_answer(
        StatusCode::OK,
        &json!({ "name": name, "size": size, "media_type": media_type }),
    ))
}

fn accepted_words(m: &ElectionManifest) -> String {
    m.accepted_media
        .iter()
        .map(|r| format!("{} up to {} bytes", r.media_type, r.max_size))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `%XX` escapes of a query value (the page encodes the file name).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// "Check my ballot": every receipt in the folder, by the county's signed
/// word.
async fn status(s: &Shared) -> Result<Response<Full<Bytes>>, Said> {
    let Some(folder) = Folder::existing(&s.opts.receipts) else {
        return Ok(json_answer(StatusCode::OK, &json!({ "receipts": [] })));
    };
    let listed = folder.list()?;
    let mut out = Vec::new();
    for l in listed {
        let Ok(saved) = l.receipt else { continue };
        let result = match anonymous(s, &saved.gateway) {
            Ok(gw) => crate::client::status(&gw, &saved).await,
            Err(e) => Err(e),
        };
        let received = shared::receipt::Receipt::parse(saved.receipt.as_bytes())
            .map(|r| r.entry.received_at.to_rfc3339())
            .unwrap_or_default();
        out.push(match result {
            Ok(r) => json!({
                "election": saved.election_id,
                "entry": saved.leaf_index,
                "received": received,
                "status": match r.standing {
                    crate::client::Standing::NotYetWitnessed => "logged",
                    crate::client::Standing::NotProcessedYet => "witnessed",
                    crate::client::Standing::Decided(shared::status::Status::Valid) => "valid",
                    crate::client::Standing::Decided(_) => "rejected",
                },
                "explanation": r.explanation,
            }),
            Err(e) => json!({
                "election": saved.election_id,
                "entry": saved.leaf_index,
                "received": received,
                "status": "failed",
                "explanation": format!(
                    "THE CHECK FAILED: {}",
                    shared::text::printable(&format!("{e:#}"))
                ),
            }),
        });
    }
    Ok(json_answer(StatusCode::OK, &json!({ "receipts": out })))
}

/// Opens `url` in the system's browser without putting it on a command
/// line (other users can read those): a private file that forwards to it
/// is opened instead. Returns the file, to be removed once the page was
/// opened.
pub fn open_browser(url: &str) -> Result<forwarder::Forwarder> {
    forwarder::Forwarder::open(url)
}

mod forwarder {
    //! The forwarding file, in a fresh private folder.

    use anyhow::{bail, Context, Result};
    use std::path::PathBuf;

    /// A private file that forwards the browser to the page; removed on
    /// drop.
    #[derive(Debug)]
    pub struct Forwarder {
        dir: PathBuf,
    }

    impl Drop for Forwarder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Forwarder {
        pub(super) fn open(url: &str) -> Result<Forwarder> {
            let mut id = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
            let dir = std::env::temp_dir().join(format!("ballot-return-{}", hex::encode(id)));
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let fwd = Forwarder { dir };
            let file = fwd.dir.join("open-ballot-return.html");
            let html = format!(
                "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
                 <title>ballot-return</title><p><a href=\"{url}\">Open ballot-return</a></p>\n"
            );
            shared::files::write_new(&file, html.as_bytes(), 0o600)?;
            let opener = if cfg!(target_os = "macos") {
                "open"
            } else if cfg!(windows) {
                "explorer"
            } else {
                "xdg-open"
            };
            let status = std::process::Command::new(opener)
                .arg(&file)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match status {
                Ok(s) if s.success() => Ok(fwd),
                Ok(s) => bail!("{opener} failed ({s})"),
                Err(e) => Err(anyhow::Error::from(e).context(format!("cannot run {opener}"))),
            }
        }
    }
}

/// A panic-free error for the send thread's channel.
fn gone() -> anyhow::Error {
    anyhow!("the sending stopped unexpectedly")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_decoded_and_compared_in_constant_time() {
        assert_eq!(percent_decode("marked%20ballot.pdf"), "marked ballot.pdf");
        assert_eq!(percent_decode("%C3%A9lection.pdf"), "élection.pdf");
        // A stray or short escape is kept as it is.
        assert_eq!(percent_decode("100%.pdf"), "100%.pdf");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
