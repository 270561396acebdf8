//! `POST /v1/ballots`: the acceptance checks of DESIGN section 5, in order
//! (voter, election window, uploads in progress, rate, size, OpenPGP
//! structure), then the sequencer, which answers only once the ballot is
//! committed and logged.

use super::auth::voter;
use super::refusal::{structure_code, Refusal};
use super::routes::json;
use super::{AppState, ConnInfo};
use crate::metrics::UploadLabels;
use crate::sequencer::{NewBallot, SubmitError};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use shared::api::{ErrorCode, ReceiptAnswer};
use std::time::Duration;

/// How much of a refused upload's body the gateway still reads (and discards)
/// before it answers, beyond the upload limit. An HTTP/1.1 client writes its
/// whole body before it reads the answer; if the server answered and closed
/// first, the client would see "broken pipe" instead of the reason. Bodies
/// declared larger than this are not read: the answer is sent and the
/// connection closed.
const DRAIN_ALLOWANCE: u64 = 1024 * 1024;
/// The longest the gateway spends discarding a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(15);

/// Handles an upload; a refused upload's body is drained (bounded) first.
pub(crate) async fn upload(
    req: Request<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = accept_upload(&parts, &mut body, state, info).await;
    let labels = match &result {
        Ok((_, duplicate)) => UploadLabels {
            outcome: if *duplicate { "duplicate" } else { "accepted" },
            code: "",
        },
        Err(r) => UploadLabels {
            outcome: "refused",
            code: r.code.as_str(),
        },
    };
    state
        .metrics
        .upload(labels, started.elapsed().as_secs_f64());
    if result.is_err() {
        if let Some(body) = body {
            let budget = state.election.max_upload() as u64 + DRAIN_ALLOWANCE;
            let declared = content_length(&parts.headers).unwrap_or(0);
            if declared <= budget {
                let _ = tokio::time::timeout(DRAIN_TIME, discard(body, budget)).await;
            }
        }
    }
    result.map(|(r, _)| r)
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

/// How an upload's body may arrive: no gap longer than `stall`, and on
/// average at least `min_rate` bytes a second once `stall` has passed (each
/// `min_rate` bytes received add a second to the body's deadline, as
/// Apache's `mod_reqtimeout` does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// The longest gap between two parts of the body.
    pub(crate) stall: Duration,
    /// Bytes a second, on average, after the first `stall`.
    pub(crate) min_rate: u64,
}

/// Why a body was not read whole.
#[derive(Debug)]
enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed.
    Broken(hyper::Error),
    /// Nothing arrived for the stall time.
    Stalled(Duration),
    /// Slower than the minimum rate.
    TooSlow { received: usize, rate: u64 },
}

/// Reads a whole body of at most `max` bytes at `pace`. `expected` (the
/// declared length, already checked against `max`) sizes the buffer once,
/// so a 200 KB upload is not copied while it grows.
async fn read_body(
    body: &mut Incoming,
    max: usize,
    expected: Option<u64>,
    pace: Pace,
) -> Result<Bytes, BodyError> {
    let hint = expected.map_or(64 * 1024, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut buf = bytes::BytesMut::with_capacity(hint);
    let start = tokio::time::Instant::now();
    loop {
        let earned = Duration::from_secs(buf.len() as u64 / pace.min_rate.max(1));
        let by_rate = start + pace.stall + earned;
        let by_stall = tokio::time::Instant::now() + pace.stall;
        let frame = match tokio::time::timeout_at(by_rate.min(by_stall), body.frame()).await {
            Ok(Some(frame)) => frame.map_err(BodyError::Broken)?,
            Ok(None) => return Ok(buf.freeze()),
            Err(_) if by_stall < by_rate => return Err(BodyError::Stalled(pace.stall)),
            Err(_) => {
                return Err(BodyError::TooSlow {
                    received: buf.len(),
                    rate: pace.min_rate,
                })
            }
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
}

async fn accept_upload(
    parts: &http::request::Parts,
    body: &mut Option<Incoming>,
    state: &AppState,
    info: &ConnInfo,
) -> Result<(Response<Full<Bytes>>, bool), Refusal> {
    let voter = voter(state, info)?;
    let identity = voter.identity.as_str();
    let refuse = |code: ErrorCode| Refusal::from(code).identity(identity);
    let m = &state.election.manifest;
    let now = state.clock.now();
    if now < m.opens_at {
        return Err(refuse(ErrorCode::ElectionNotOpen)
            .message(format!("ballots are accepted from {}", m.opens_at)));
    }
    if now >= m.closes_at {
        return Err(
            refuse(ErrorCode::ElectionClosed).message(format!("the deadline was {}", m.closes_at))
        );
    }
    let Some(_in_progress) = state.voter_limits.begin_upload(&voter.voter_id) else {
        return Err(refuse(ErrorCode::UploadInProgress));
    };
    if !state.voter_limits.take_token(&voter.voter_id, now) {
        return Err(refuse(ErrorCode::RateLimited));
    }
    let max = state.election.max_upload();
    let too_large = || {
        refuse(ErrorCode::BallotTooLarge).message(format!(
            "the upload is larger than the limit of {max} bytes"
        ))
    };
    if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    // Bodies are read a bounded number at a time, so memory does not grow
    // with the number of connections; the others wait here (their senders
    // are held back by TCP flow control) within the request timeout.
    let _slot = state
        .upload_slots
        .acquire()
        .await
        .map_err(|_| Refusal::from(ErrorCode::ShuttingDown))?;
    let Some(incoming) = body.as_mut() else {
        return Err(ErrorCode::Internal.into());
    };
    let pace = Pace {
        stall: Duration::from_secs(state.server.upload_stall_timeout_secs),
        min_rate: state.server.upload_min_rate_bytes_per_sec,
    };
    let read = read_body(incoming, max, content_length(&parts.headers), pace).await;
    if !matches!(read, Err(BodyError::TooLarge)) {
        // Read whole, or the connection is broken or given up: nothing is
        // left to drain.
        *body = None;
    }
    let message = match read {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Broken(e)) => {
            return Err(refuse(ErrorCode::UploadInterrupted).detail(e.to_string()))
        }
        Err(BodyError::Stalled(d)) => {
            return Err(refuse(ErrorCode::RequestTimeout).message(format!(
                "no part of the upload arrived for {} seconds",
                d.as_secs()
            )))
        }
        Err(BodyError::TooSlow { received, rate }) => {
            return Err(refuse(ErrorCode::RequestTimeout).message(format!(
                "the upload was slower than {rate} bytes a second on average ({received} bytes received)"
            )))
        }
    };
    shared::pgp::check_structure(&message, &state.election.subkeys, max)
        .map_err(|e| refuse(structure_code(&e)).detail(e.to_string()))?;
    let accepted = state
        .seq
        .submit(NewBallot {
            voter_id: voter.voter_id.clone(),
            identity: voter.identity.clone(),
            client_cert: voter.cert,
            message,
        })
        .await
        .map_err(|e| {
            let code = match &e {
                SubmitError::TooManyBallots(_) => ErrorCode::TooManyBallots,
                SubmitError::DiskFull => ErrorCode::StorageFull,
                SubmitError::ElectionClosed => ErrorCode::ElectionClosed,
                _ => ErrorCode::StorageUnavailable,
            };
            refuse(code).detail(e.to_string())
        })?;
    tracing::info!(
        leaf = accepted.leaf_index,
        duplicate = accepted.duplicate,
        "ballot logged"
    );
    Ok((
        json(
            StatusCode::OK,
            &ReceiptAnswer {
                leaf_index: accepted.leaf_index,
                voter_id: accepted.voter_id,
                salt: hex::encode(accepted.salt),
                duplicate: accepted.duplicate,
                receipt: accepted.receipt,
            },
        ),
        accepted.duplicate,
    ))
}
