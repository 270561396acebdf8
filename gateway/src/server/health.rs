//! `GET /healthz` and `GET /metrics` (Prometheus, [`crate::metrics`]) in
//! plain HTTP on their own listener, meant for loopback only (monitoring
//! on the same host).

use super::refusal::Refusal;
use super::routes::json;
use super::AppState;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use shared::api::{ErrorCode, HealthAnswer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Where the Prometheus metrics are served.
pub(crate) const METRICS: &str = "/metrics";

/// Serves the health endpoint on `listener` until `shutdown` completes.
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
                    let r = if req.uri().path() == shared::api::HEALTH {
                        let log_size = state.seq.checkpoint_size();
                        json(
                            StatusCode::OK,
                            &HealthAnswer {
                                status: "ok".into(),
                                log_size,
                            },
                        )
                    } else if req.uri().path() == METRICS {
                        let mut r =
                            Response::new(Full::new(Bytes::from(state.metrics.render(&state))));
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                        );
                        r
                    } else {
                        Refusal::from(ErrorCode::NotFound).response()
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
