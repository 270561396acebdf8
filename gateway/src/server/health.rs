//! `GET /healthz` in plain HTTP on its own listener, meant for loopback
//! only (monitoring on the same host).

use super::refusal::Refusal;
use super::routes::json;
use super::AppState;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use shared::api::{ErrorCode, HealthAnswer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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
                        let log_size = state
                            .seq
                            .log()
                            .read()
                            .map(|l| l.checkpoint_size)
                            .unwrap_or(0);
                        json(
                            StatusCode::OK,
                            &HealthAnswer {
                                status: "ok".into(),
                                log_size,
                            },
                        )
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
