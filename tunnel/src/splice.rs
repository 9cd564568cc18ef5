//! Joins two byte streams in both directions, counting what passes, and [`H2Io`]: an HTTP/2
//! stream of the agent connection as a byte stream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use hyper::body::Buf as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::Bytes;

type Data = hyper::body::Bytes;

/// The side of a splice that faces the controller: what is read from it goes to the member,
/// what is written to it came from the member.
struct Counted<T> {
    inner: T,
    bytes: Arc<Bytes>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.bytes.to_member.fetch_add(n as u64, Ordering::Relaxed);
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.bytes
                .from_member
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One HTTP/2 stream of the agent connection (a CONNECT stream) as a byte stream, read and
/// written by the task that splices it, so bytes go straight from the socket to `h2`'s send
/// queue and back. (hyper's upgraded HTTP/2 streams hand every write to a task of their own over
/// a channel: one more task wake-up per write, at both ends of the tunnel.)
pub(crate) struct H2Io {
    send: h2::SendStream<Data>,
    recv: h2::RecvStream,
    /// Received and not yet read.
    buf: Data,
    /// `END_STREAM` sent.
    ended: bool,
}

impl H2Io {
    pub(crate) fn new(send: h2::SendStream<Data>, recv: h2::RecvStream) -> Self {
        Self {
            send,
            recv,
            buf: Data::new(),
            ended: false,
        }
    }
}

fn h2_io_error(e: h2::Error) -> std::io::Error {
    if e.is_io() {
        e.into_io()
            .unwrap_or_else(|| std::io::ErrorKind::BrokenPipe.into())
    } else {
        std::io::Error::other(e)
    }
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.buf.is_empty() {
            self.buf = match ready!(self.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => data,
                Some(Err(e)) => {
                    return Poll::Ready(match e.reason() {
                        Some(h2::Reason::NO_ERROR | h2::Reason::CANCEL) => Ok(()),
                        _ => Err(h2_io_error(e)),
                    });
                }
            };
        }
        let n = self.buf.len().min(buf.remaining());
        buf.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        let _ = self.recv.flow_control().release_capacity(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    /// Waits until the stream has send capacity, then hands all of `buf` to `h2`, which sends
    /// what the window allows and keeps the rest: at most one write is buffered beyond the
    /// peer's window, so a slow reader slows the writer.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.send.capacity() == 0 {
            // reserve only with data in hand: capacity held by an idle stream would be taken
            // from the connection's window
            self.send.reserve_capacity(1);
            while self.send.capacity() == 0 {
                match ready!(self.send.poll_capacity(cx)) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Poll::Ready(Err(h2_io_error(e))),
                    None => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
                }
            }
        }
        self.send
            .send_data(Data::copy_from_slice(buf), false)
            .map_err(h2_io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // the agent connection's task writes and flushes what is queued
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.send
                .send_data(Data::new(), true)
                .map_err(h2_io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// Bytes read and written at once in each direction: a LIST of megabytes crosses the agent
/// connection in frames of this size instead of tokio's default 8 KiB (a quarter of the frames,
/// writes and wake-ups per byte).
pub const COPY_BUFFER: usize = 64 * 1024;

/// Copies between `controller_side` and `member_side` until both directions end or one fails;
/// returns the bytes (to member, from member).
pub async fn splice<A, B>(controller_side: A, mut member_side: B, bytes: Arc<Bytes>) -> (u64, u64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut a = Counted {
        inner: controller_side,
        bytes,
    };
    tokio::io::copy_bidirectional_with_sizes(&mut a, &mut member_side, COPY_BUFFER, COPY_BUFFER)
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn copies_both_ways_and_counts() {
        let (mut controller, a) = tokio::io::duplex(64);
        let (b, mut member) = tokio::io::duplex(64);
        let bytes = Arc::new(Bytes::default());
        let task = tokio::spawn(splice(a, b, bytes.clone()));
        controller.write_all(b"GET /readyz").await.unwrap();
        let mut buf = [0u8; 11];
        member.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET /readyz");
        member.write_all(b"ok").await.unwrap();
        let mut buf = [0u8; 2];
        controller.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        drop(controller);
        drop(member);
        let _ = task.await.unwrap();
        assert_eq!(bytes.to_member.load(Ordering::Relaxed), 11);
        assert_eq!(bytes.from_member.load(Ordering::Relaxed), 2);
    }

    /// Two ends of one CONNECT stream over an in-memory HTTP/2 connection whose stream
    /// window is `window` bytes.
    async fn h2_pair(window: u32) -> (H2Io, H2Io) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let mut conn = h2::server::Builder::new()
                .initial_window_size(window)
                .handshake::<_, Data>(b)
                .await
                .unwrap();
            let (req, mut respond) = conn.accept().await.unwrap().unwrap();
            let send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            H2Io::new(send, req.into_body())
        });
        let (sender, conn) = h2::client::Builder::new()
            .initial_window_size(window)
            .handshake::<_, Data>(a)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut sender = sender.ready().await.unwrap();
        let req = http::Request::connect("member1.cluster.internal:443")
            .body(())
            .unwrap();
        let (response, send) = sender.send_request(req, false).unwrap();
        let response = response.await.unwrap();
        let client = H2Io::new(send, response.into_body());
        (client, server.await.unwrap())
    }

    #[tokio::test]
    async fn h2_streams_carry_bytes_and_half_closes() {
        let (mut client, mut agent) = h2_pair(65_535).await;
        client.write_all(b"GET /readyz").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        agent.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"GET /readyz");
        // the other direction still works after the client's half-close
        let big = vec![7u8; 300_000];
        agent.write_all(&big).await.unwrap();
        agent.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, big);
    }

    #[tokio::test]
    async fn h2_writes_wait_for_a_reader_that_is_behind() {
        let (mut client, mut agent) = h2_pair(16_384).await;
        // the agent does not read: writes stop being accepted once the 16 KiB window (plus
        // at most the write in hand) is queued, instead of buffering the whole megabyte
        let mut written = 0usize;
        while written < 1 << 20 {
            let write = client.write_all(&[1u8; 8192]);
            match tokio::time::timeout(std::time::Duration::from_millis(500), write).await {
                Ok(done) => {
                    done.unwrap();
                    written += 8192;
                }
                Err(_) => break,
            }
        }
        assert!(
            written <= 16_384 + 8192,
            "{written} bytes queued for a stalled reader"
        );
        // once the agent reads, the writer goes on
        let mut got = vec![0u8; written];
        agent.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|b| *b == 1));
        client.write_all(&[2u8; 8192]).await.unwrap();
        let mut got = [0u8; 8192];
        agent.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [2u8; 8192]);
    }
}
