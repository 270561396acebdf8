//! Routing, and the endpoints that only read: the election manifest, a
//! voter's ballot status, the checkpoint, proofs and the status file. The
//! paths and answer types are `shared::api`'s.

use super::auth::voter;
use super::refusal::Refusal;
use super::upload::upload;
use super::{AppState, ConnInfo};
use crate::store::{self, RecordedStatus, SecurityEvent};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use shared::api::{
    self, BallotState, ConsistencyAnswer, ErrorCode, InclusionAnswer, StatusAnswer, VoterAnswer,
};
use shared::status::Status;

/// A JSON answer that no cache keeps.
pub(crate) fn json(status: StatusCode, v: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
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

/// Answers one request; a refusal is logged, recorded as a security event
/// (unless it is only a wrong path or method) and answered as JSON.
pub(crate) async fn handle(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match route(req, state, info).await {
        Ok(r) => r,
        Err(e) => {
            let code = e.code.as_str();
            tracing::info!(code, peer = %info.peer, %path, detail = e.detail.as_deref().unwrap_or(""), "request refused");
            if e.is_security_event() {
                state.seq.record(SecurityEvent {
                    at: state.clock.now().0,
                    kind: "rejection",
                    code: code.into(),
                    identity: e.identity.clone(),
                    peer: Some(info.peer.to_string()),
                    detail: e.detail.clone().unwrap_or_else(|| e.text().to_owned()),
                });
            }
            e.response()
        }
    }
}

fn query_u64(req: &Request<Incoming>, name: &str) -> Result<u64, Refusal> {
    let q = req.uri().query().unwrap_or("");
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| {
            Refusal::from(ErrorCode::BadQuery).message(format!("the query needs a number {name}="))
        })
}

async fn route(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), path.as_str(), segments.as_slice()) {
        (&Method::GET, api::ELECTION, _) => Ok(bytes_response(
            "application/octet-stream",
            state.election.manifest_signed.clone(),
        )),
        (&Method::POST, api::BALLOTS, _) => upload(req, state, info).await,
        (&Method::GET, api::VOTER, _) => {
            let v = voter(state, info)?;
            Ok(json(
                StatusCode::OK,
                &VoterAnswer {
                    voter_id: v.voter_id,
                    ballot_style: v.ballot_style,
                },
            ))
        }
        (&Method::GET, _, ["v1", "ballots", index, "status"]) => {
            let index: u64 = index
                .parse()
                .map_err(|_| Refusal::from(ErrorCode::NotFound).message("no such ballot"))?;
            ballot_status(index, state, info)
        }
        (&Method::GET, api::CHECKPOINT, _) => {
            let cp = state
                .seq
                .log()
                .read()
                .ok()
                .and_then(|l| l.checkpoint.clone());
            match cp {
                Some(cp) => Ok(bytes_response("text/plain; charset=utf-8", cp.into_bytes())),
                None => Err(ErrorCode::LogEmpty.into()),
            }
        }
        (&Method::GET, api::WITNESSED, _) => {
            let w = state.witnessed.read().ok().and_then(|w| w.clone());
            match w {
                Some(w) => Ok(bytes_response(
                    "text/plain; charset=utf-8",
                    w.note.into_bytes(),
                )),
                None => Err(ErrorCode::NotWitnessedYet.into()),
            }
        }
        (&Method::GET, api::INCLUSION, _) => {
            let (index, size) = (query_u64(&req, "index")?, query_u64(&req, "size")?);
            let proof = proof(state, size, |t| t.inclusion_proof(index, size))?;
            Ok(json(
                StatusCode::OK,
                &InclusionAnswer { index, size, proof },
            ))
        }
        (&Method::GET, api::CONSISTENCY, _) => {
            let (from, to) = (query_u64(&req, "from")?, query_u64(&req, "to")?);
            let proof = proof(state, to, |t| t.consistency_proof(from, to))?;
            Ok(json(StatusCode::OK, &ConsistencyAnswer { from, to, proof }))
        }
        (&Method::GET, api::STATUS_FILE, _) => {
            let doc = {
                let c = state
                    .reader
                    .lock()
                    .map_err(|_| Refusal::from(ErrorCode::Internal))?;
                store::meta_get(&c, "status_file").map_err(|e| {
                    Refusal::from(ErrorCode::StorageUnavailable)
                        .message("try again later")
                        .detail(e.to_string())
                })?
            };
            match doc {
                Some(d) => Ok(bytes_response("application/octet-stream", d)),
                None => Err(ErrorCode::NoStatusYet.into()),
            }
        }
        (
            _,
            _,
            ["v1", "election"]
            | ["v1", "ballots"]
            | ["v1", "voter"]
            | ["v1", "log", ..]
            | ["v1", "status-file"],
        ) => Err(ErrorCode::MethodNotAllowed.into()),
        (&Method::GET, api::OBSERVER, _) => super::observer::answer(state),
        (&Method::GET, page, _) => {
            super::observer::asset(page).ok_or_else(|| ErrorCode::NotFound.into())
        }
        _ => Err(ErrorCode::NotFound.into()),
    }
}

/// A proof from the log: `size` (the largest tree size the request names)
/// must be within the latest committed checkpoint.
fn proof(
    state: &AppState,
    size: u64,
    make: impl FnOnce(
        &shared::merkle::Tree,
    ) -> Result<Vec<shared::merkle::Hash>, shared::merkle::TreeError>,
) -> Result<Vec<shared::merkle::Hash>, Refusal> {
    let log = state
        .seq
        .log()
        .read()
        .map_err(|_| Refusal::from(ErrorCode::Internal))?;
    if size > log.checkpoint_size {
        return Err(ErrorCode::BadSize.into());
    }
    make(&log.tree).map_err(|e| Refusal::from(ErrorCode::BadRequest).message(e.to_string()))
}

/// `GET /v1/ballots/{index}/status`: for the ballot's own voter only;
/// someone else's ballot looks exactly like no ballot.
fn ballot_status(
    index: u64,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let voter = voter(state, info)?;
    let row = {
        let c = state
            .reader
            .lock()
            .map_err(|_| Refusal::from(ErrorCode::Internal))?;
        store::ballot_status(&c, index).map_err(|e| {
            Refusal::from(ErrorCode::StorageUnavailable)
                .message("try again later")
                .detail(e.to_string())
        })?
    };
    let Some((_, recorded)) = row.filter(|(owner, _)| *owner == voter.voter_id) else {
        return Err(Refusal::from(ErrorCode::NotFound)
            .message("no such ballot of yours")
            .identity(&voter.identity));
    };
    let (status, explanation) = match recorded {
        RecordedStatus::NotProcessed => (
            BallotState::Received,
            "received and logged; the county has not processed it yet".to_owned(),
        ),
        RecordedStatus::Decided(s) => (
            match s {
                Status::Valid => BallotState::Valid,
                Status::Rejected(_) => BallotState::Rejected,
            },
            s.describe(),
        ),
        RecordedStatus::RejectedUnknownReason => (BallotState::Rejected, "rejected".to_owned()),
        RecordedStatus::Unreadable => (BallotState::Unknown, "unknown".to_owned()),
    };
    Ok(json(
        StatusCode::OK,
        &StatusAnswer {
            leaf_index: index,
            status,
            explanation,
        },
    ))
}
