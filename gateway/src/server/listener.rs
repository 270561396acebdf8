//! Accepting connections: the connection limit, the TLS handshake with its
//! timeout, HTTP/1.1 and HTTP/2 with their limits, the per-connection
//! request budget, and the drain when the server stops.

use super::refusal::Refusal;
use super::routes::handle;
use super::{AppState, ConnInfo};
use crate::h2guard::StreamBudget;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use shared::api::ErrorCode;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Serves HTTPS on `listener` until `shutdown` completes, then stops
/// accepting and lets open requests finish (up to the request timeout).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<crate::reload::Live<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let max_connections = state
        .server
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stopping, _) = tokio::sync::watch::channel(false);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.server.header_read_timeout_secs))
        .max_buf_size(state.server.max_header_bytes.max(8192))
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(state.server.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(state.server.http2_max_pending_reset_streams)
        .max_header_list_size(u32::try_from(state.server.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(state.server.idle_timeout_secs)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the connection limit: close at once rather than queue.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The TLS configuration current now (a reload swaps it).
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.get());
        let state = state.clone();
        let builder = builder.clone();
        let stopping = stopping.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            let hs = Duration::from_secs(state.server.tls_handshake_timeout_secs);
            let tls = match tokio::time::timeout(hs, acceptor.accept(stream).into_fallible()).await
            {
                Ok(Ok(s)) => s,
                Ok(Err((e, stream))) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    linger(stream).await;
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let certs = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.to_vec()).collect::<Vec<_>>());
            let info = ConnInfo { peer, certs };
            let budget = Arc::new(RequestBudget {
                left: std::sync::atomic::AtomicU32::new(
                    state.server.max_requests_per_connection.max(1),
                ),
                spent: tokio::sync::Notify::new(),
            });
            if tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                // HTTP/2 streams are counted below hyper, where the ones a
                // client resets at once are still visible.
                let hard = 2 * u64::from(state.server.max_requests_per_connection)
                    + u64::from(state.server.http2_max_concurrent_streams);
                let io = crate::h2guard::FrameCounter::new(tls, budget.clone(), hard);
                serve_connection(io, info, state, &builder, stopping, budget, false).await;
            } else {
                serve_connection(tls, info, state, &builder, stopping, budget, true).await;
            }
        });
    }
    drop(listener);
    // Ask every connection to finish what it is doing, then wait until all
    // have given their permits back (or the drain period ends).
    let _ = stopping.send(true);
    let drain = Duration::from_secs(state.server.request_timeout_secs.min(30));
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the drain period");
    }
    Ok(())
}

/// Closes a connection whose handshake failed without throwing away the
/// alert that says why. With TLS 1.3 a client sends its request right after
/// its certificate, before the server's verdict arrives; closing with those
/// bytes unread makes the kernel send a reset, and a reset can reach the
/// client before it has read the alert (a revoked card would then look like
/// a broken line, and be retried). So: send FIN, read and discard what
/// is still coming for a short while (as nginx's lingering close), then
/// close.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const LINGER: Duration = Duration::from_secs(2);
    const MOST: usize = 1 << 20;
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0;
        while read < MOST {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Serves the requests of one authenticated TLS connection. The connection
/// is closed gracefully (HTTP/2 GOAWAY, or `Connection: close`) when the
/// server stops or when it has started `max_requests_per_connection`
/// requests or streams.
async fn serve_connection<S>(
    io: S,
    info: ConnInfo,
    state: Arc<AppState>,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    budget: Arc<RequestBudget>,
    count_requests: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = info.peer;
    let service = {
        let budget = budget.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            let info = info.clone();
            let last = count_requests && budget.take();
            async move {
                if last {
                    tracing::debug!(peer = %info.peer, "request budget of the connection spent; closing it");
                }
                // An upload's body has limits of its own, on stalls and
                // on its rate (upload.rs); the whole request is bounded by
                // the longest an upload may take.
                let is_upload =
                    req.method() == http::Method::POST && req.uri().path() == shared::api::BALLOTS;
                let timeout = Duration::from_secs(if is_upload {
                    state.server.upload_time_limit_secs
                } else {
                    state.server.request_timeout_secs
                });
                let mut r = match tokio::time::timeout(timeout, handle(req, &state, &info)).await {
                    Ok(r) => r,
                    Err(_) => Refusal::from(ErrorCode::RequestTimeout).response(),
                };
                if last {
                    // The last answer says so itself: hyper then closes
                    // the connection once it is written, and never reads
                    // a request past the budget, however quickly the
                    // client sends it (the graceful shutdown below may
                    // come after that request was read, on a busy
                    // machine).
                    r.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(r)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = budget.spent.notified(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stopping.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The requests a connection may still start.
pub(crate) struct RequestBudget {
    left: std::sync::atomic::AtomicU32,
    spent: tokio::sync::Notify,
}

impl crate::h2guard::StreamBudget for RequestBudget {
    /// Counts one request; true when it was the last one allowed.
    fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        let before = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        if before <= 1 {
            self.spent.notify_one();
            true
        } else {
            false
        }
    }
}

/// Raises the soft open-file limit toward what `max_connections` needs (one
/// descriptor per connection, plus a margin for the database, listeners and
/// files), never above the hard limit. Returns the limit now in force.
pub fn raise_file_limit(max_connections: usize) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let wanted = max_connections as u64 + 256;
    let mut l = getrlimit(Resource::Nofile);
    if l.current.is_some_and(|c| c < wanted) {
        l.current = Some(l.maximum.map_or(wanted, |m| wanted.min(m)));
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < wanted {
        tracing::warn!(
            limit = now,
            max_connections,
            "the open-file limit is below max_connections; raise LimitNOFILE (systemd) or ulimit -n"
        );
    }
    now
}
