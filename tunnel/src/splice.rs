//! Joins two byte streams in both directions, counting what passes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::Bytes;

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
}
