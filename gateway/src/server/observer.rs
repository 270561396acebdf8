//! The observer's page: a public, read-only view of the log (its size, the
//! latest checkpoint and its witnesses' cosignatures), the counts of the
//! latest status file, and a receipt check that runs in the observer's
//! browser with Web Crypto (SHA-256 and Ed25519), so that it does not
//! depend on this gateway's word. The county's `ballot-audit` remains the
//! authoritative check, and the page says so.
//!
//! The page, its script and its style are files built into the binary. No
//! request leaves for anywhere but this gateway: the Content Security
//! Policy allows only this origin's script, style and `fetch`.

use super::refusal::Refusal;
use super::routes::json;
use super::AppState;
use crate::store;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use shared::api::{ErrorCode, ObserverAnswer, ObserverCounts, ObserverWitness};

const PAGE: &str = include_str!("observer/index.html");
const SCRIPT: &str = include_str!("observer/observer.js");
const STYLE: &str = include_str!("observer/observer.css");

/// The paths of the page's parts.
pub(crate) const SCRIPT_PATH: &str = "/observer.js";
pub(crate) const STYLE_PATH: &str = "/observer.css";

/// One of the page's files, with the headers a static, public page wants.
pub(crate) fn asset(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        shared::api::OBSERVER_PAGE => (PAGE, "text/html; charset=utf-8"),
        SCRIPT_PATH => (SCRIPT, "text/javascript; charset=utf-8"),
        STYLE_PATH => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in shared::api::PAGE_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    Some(r)
}

/// `GET /v1/observer`.
pub(crate) fn answer(state: &AppState) -> Result<Response<Full<Bytes>>, Refusal> {
    let m = &state.election.manifest;
    let checkpoint = state
        .seq
        .log()
        .read()
        .ok()
        .and_then(|l| l.checkpoint.clone());
    let witnessed = state
        .witnessed
        .read()
        .ok()
        .and_then(|w| w.as_ref().map(|w| w.note.clone()));
    let (fingerprint, status) = {
        let c = state
            .reader
            .lock()
            .map_err(|_| Refusal::from(ErrorCode::Internal))?;
        let unavailable = |e: store::StoreError| {
            Refusal::from(ErrorCode::StorageUnavailable)
                .message("try again later")
                .detail(e.to_string())
        };
        let fingerprint = store::meta_get(&c, "election_fingerprint")
            .map_err(unavailable)?
            .map(|f| String::from_utf8_lossy(&f).into_owned())
            .unwrap_or_default();
        let status = store::meta_get(&c, crate::export::STATUS_COUNTS)
            .map_err(unavailable)?
            .and_then(|b| serde_json::from_slice::<ObserverCounts>(&b).ok());
        (fingerprint, status)
    };
    let witnesses = m
        .witnesses
        .iter()
        .map(|w| ObserverWitness {
            name: w.key.split('+').next().unwrap_or_default().to_owned(),
            key: w.key.clone(),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ObserverAnswer {
            election_id: m.election_id.clone(),
            title: m.title.clone(),
            jurisdiction: m.jurisdiction.clone(),
            opens_at: m.opens_at.to_rfc3339(),
            closes_at: m.closes_at.to_rfc3339(),
            election_fingerprint: fingerprint,
            log_origin: m.log_origin.clone(),
            log_key: m.log_key.clone(),
            witnesses,
            witness_quorum: m.witness_quorum,
            checkpoint,
            witnessed,
            status,
        },
    ))
}
