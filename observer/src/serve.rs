//! The witness's HTTP/1.1 listener: bounded headers, bodies and time per
//! request, one request per connection and at most [`MAX_CONNECTIONS`] at
//! once, so a slow or hostile client costs little.

use crate::witness::Witness;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The most time one request may take, body included.
const REQUEST_TIME: Duration = Duration::from_secs(30);
/// The most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;

async fn answer(witness: Arc<Witness>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(
        REQUEST_TIME,
        Limited::new(body, shared::witness::MAX_REQUEST).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        _ => {
            return plain(
                413,
                "text/plain",
                b"the body is too large or too slow\n".to_vec(),
            );
        }
    };
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    // SQLite with fsync: off the async threads.
    let a = tokio::task::spawn_blocking(move || witness.handle(&method, &path, &body)).await;
    match a {
        Ok(a) => plain(a.status, a.content_type, a.body),
        Err(_) => plain(500, "text/plain", b"internal error\n".to_vec()),
    }
}

fn plain(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// Serves `witness` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    witness: Arc<Witness>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (permit, stream) = tokio::select! {
            r = async {
                let permit = slots.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => match r {
                (Ok(p), Ok((s, _))) => (p, s),
                _ => continue,
            },
            () = &mut shutdown => break,
        };
        let witness = witness.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let witness = witness.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(witness, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                // One request per connection (the gateway opens one per
                // submission): no idle connection is held open.
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
