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
use shared::status::Reason;

const PAGE: &str = include_str!("observer/index.html");
const SCRIPT: &str = include_str!("observer/observer.js");
const STYLE: &str = include_str!("observer/observer.css");

/// The paths of the page's parts.
pub(crate) const SCRIPT_PATH: &str = "/observer.js";
pub(crate) const STYLE_PATH: &str = "/observer.css";

/// Only this origin's script, style and connections; no frames, forms,
/// plugins or base changes.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

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
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
        (fingerprint, counts(&c).map_err(unavailable)?)
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

/// The counts of the imported status file, if one was imported.
fn counts(c: &rusqlite::Connection) -> Result<Option<ObserverCounts>, store::StoreError> {
    let mut stmt =
        c.prepare("SELECT status, reason, COUNT(*) FROM statuses GROUP BY status, reason")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = ObserverCounts {
        ballots: 0,
        valid: 0,
        rejected: Vec::new(),
    };
    let mut by_code: Vec<(u8, String, u64)> = Vec::new();
    for row in rows {
        let (status, reason, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        out.ballots += n;
        let reason = u8::try_from(reason).ok().and_then(Reason::from_code);
        match (status, reason) {
            (4, _) => out.valid += n,
            (_, Some(r)) => by_code.push((r.code(), r.name().to_owned(), n)),
            _ => by_code.push((u8::MAX, "unknown".to_owned(), n)),
        }
    }
    if out.ballots == 0 {
        return Ok(None);
    }
    by_code.sort();
    out.rejected = by_code.into_iter().map(|(_, name, n)| (name, n)).collect();
    Ok(Some(out))
}
