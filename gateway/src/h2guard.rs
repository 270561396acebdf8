//! Counts the streams an HTTP/2 client opens, below hyper.
//!
//! hyper never sees a stream the client resets before the server accepts
//! it (the HTTP/2 "rapid reset" attack, CVE-2023-44487): the h2 crate drops
//! it quietly, so a request counter in the service cannot see the flood.
//! This wrapper reads the frame headers of the client's byte stream as they
//! pass and counts HEADERS frames (new streams and trailers alike, an upper
//! bound on streams). When a connection has opened its budget of streams it
//! asks for a graceful close (GOAWAY); a client that keeps going after
//! twice the budget gets its connection cut.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 section 3.4).
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;

/// What the counter reports to the connection.
pub(crate) trait StreamBudget: Send + Sync {
    /// One more stream opened; true once the budget is spent.
    fn take(&self) -> bool;
}

/// An I/O stream whose incoming HTTP/2 frames are counted.
pub(crate) struct FrameCounter<S> {
    inner: S,
    preface_left: usize,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    payload_left: usize,
    streams: u64,
    hard_limit: u64,
    budget: Arc<dyn StreamBudget>,
}

impl<S> FrameCounter<S> {
    /// Wraps a connection that speaks HTTP/2 (ALPN `h2`).
    pub(crate) fn new(inner: S, budget: Arc<dyn StreamBudget>, hard_limit: u64) -> Self {
        FrameCounter {
            inner,
            preface_left: PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            payload_left: 0,
            streams: 0,
            hard_limit,
            budget,
        }
    }

    /// Scans bytes the client sent; an error means "cut the connection".
    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = bytes.get(n..).unwrap_or_default();
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                bytes = bytes.get(n..).unwrap_or_default();
            } else {
                let want = FRAME_HEADER_LEN - self.header_len;
                let n = want.min(bytes.len());
                if let (Some(dst), Some(src)) = (
                    self.header.get_mut(self.header_len..self.header_len + n),
                    bytes.get(..n),
                ) {
                    dst.copy_from_slice(src);
                }
                self.header_len += n;
                bytes = bytes.get(n..).unwrap_or_default();
                if self.header_len == FRAME_HEADER_LEN {
                    self.header_len = 0;
                    let [l0, l1, l2, kind, ..] = self.header;
                    self.payload_left =
                        usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                    if kind == HEADERS {
                        self.streams += 1;
                        self.budget.take();
                        if self.streams > self.hard_limit {
                            return Err(io::Error::other(
                                "the client kept opening HTTP/2 streams after being told to stop",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameCounter<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = buf.filled().get(before..).unwrap_or_default();
            if let Err(e) = self.scan(new) {
                return Poll::Ready(Err(e));
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameCounter<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Count(AtomicU64);
    impl StreamBudget for Count {
        fn take(&self) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            false
        }
    }

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let l = payload.len();
        let mut f = vec![
            (l >> 16) as u8,
            (l >> 8) as u8,
            l as u8,
            kind,
            0,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn counts_headers_frames_however_the_bytes_are_split() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(0x4, &[0; 12])); // SETTINGS
        for _ in 0..5 {
            wire.extend(frame(HEADERS, &[0x82, 0x86, 0x84])); // HEADERS
            wire.extend(frame(0x3, &[0, 0, 0, 8])); // RST_STREAM
            wire.extend(frame(0x0, &[0x1; 300])); // DATA containing 0x01 bytes
        }
        for chunk in [1usize, 2, 7, 9, 4096] {
            let c = Arc::new(Count(AtomicU64::new(0)));
            let mut f = FrameCounter::new((), c.clone(), 100);
            for part in wire.chunks(chunk) {
                f.scan(part).unwrap();
            }
            assert_eq!(c.0.load(Ordering::SeqCst), 5, "chunks of {chunk}");
        }
        let c = Arc::new(Count(AtomicU64::new(0)));
        let mut f = FrameCounter::new((), c, 3);
        assert!(
            f.scan(&wire).is_err(),
            "past the hard limit the connection is cut"
        );
    }
}
