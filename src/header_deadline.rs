//! A deadline for each request's header block on every listener.
//!
//! axum's server sets no header read timeout, so a client that sends a
//! request header one byte at a time (or opens a connection and sends
//! nothing) held its connection, and its memory, forever. [`Deadlined`]
//! wraps a connection and fails its reads once a header block has taken
//! longer than the deadline: the clock starts when the connection is
//! accepted and again after each response is written, and stops at the
//! blank line that ends the headers (a body is read without it). An idle
//! keep-alive connection therefore closes after the same deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A listener whose connections are [`Deadlined`].
pub struct HeaderDeadline<L> {
    inner: L,
    deadline: Duration,
}

impl<L> HeaderDeadline<L> {
    /// Wrap `inner`; each header block must arrive within `deadline`.
    pub fn new(inner: L, deadline: Duration) -> HeaderDeadline<L> {
        HeaderDeadline { inner, deadline }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for HeaderDeadline<L> {
    type Io = Deadlined<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (Deadlined::new(io, self.deadline), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection whose reads fail once a header block is overdue.
pub struct Deadlined<T> {
    inner: T,
    deadline: Duration,
    /// When the header block awaited must have arrived (one allocation
    /// per connection, reset for each request).
    timer: Pin<Box<Sleep>>,
    /// Whether a header block is awaited or being read.
    armed: bool,
    /// How much of `\r\n\r\n` the bytes read last ended with.
    matched: usize,
}

impl<T> Deadlined<T> {
    fn new(inner: T, deadline: Duration) -> Deadlined<T> {
        Deadlined {
            inner,
            deadline,
            timer: Box::pin(tokio::time::sleep(deadline)),
            armed: true,
            matched: 0,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Start the clock for the next header block (after a response).
    fn arm(&mut self) {
        if !self.armed {
            self.timer.as_mut().reset(Instant::now() + self.deadline);
            self.armed = true;
            self.matched = 0;
        }
    }

    /// Look for the end of the header block in `bytes`.
    fn scan(&mut self, bytes: &[u8]) {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &byte in bytes {
            self.matched = if byte == END[self.matched] {
                self.matched + 1
            } else if byte == END[0] {
                1
            } else {
                0
            };
            if self.matched == END.len() {
                self.armed = false;
                self.matched = 0;
                return;
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlined<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let filled = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.armed {
                    this.scan(&buf.filled()[filled..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let overdue = this.armed && this.timer.as_mut().poll(cx).is_ready();
                if overdue {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request header did not arrive in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlined<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(_))) {
            self.arm();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(_))) {
            self.arm();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DEADLINE: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_slow_header_times_out_and_a_complete_one_does_not() {
        let (client, server) = tokio::io::duplex(1024);
        let mut server = Deadlined::new(server, DEADLINE);
        let mut client = client;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = server.read(&mut buf).await.unwrap();
        assert!(n > 0);
        // The rest never comes: the next read fails at the deadline.
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);

        let (mut client, server) = tokio::io::duplex(1024);
        let mut server = Deadlined::new(server, DEADLINE);
        client
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
            .await
            .unwrap();
        assert!(server.read(&mut buf).await.unwrap() > 0);
        // Headers complete: a slow body is not this deadline's business.
        tokio::time::sleep(DEADLINE * 2).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        // After the response, the next header block has its own deadline.
        server
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_end_of_headers_is_found_across_reads() {
        let (_client, server) = tokio::io::duplex(8);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut conn = Deadlined::new(server, Duration::from_secs(1));
            conn.scan(b"GET / HTTP/1.1\r\nA: b\r");
            assert!(conn.armed);
            conn.scan(b"\n\r");
            assert!(conn.armed);
            conn.scan(b"\n");
            assert!(!conn.armed);
        });
    }
}
