//! Accepting connections without letting unauthenticated clients exhaust the server: a cap on
//! open connections kept below the process's file-descriptor limit, a deadline on the TLS
//! handshake, eviction of the oldest connection still in its handshake when the cap (or the
//! descriptor limit) is reached, and backoff instead of a busy loop when `accept` fails.
//!
//! A client that opens connections and never speaks therefore holds at most
//! [`Limits::max_pending`] of them, each for at most [`Limits::handshake_timeout`], and a real
//! client's connection is still accepted and served.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Descriptors kept free for everything but client connections (database pool, files, webhooks).
const RESERVED_DESCRIPTORS: usize = 64;

/// How a [`Guard`] limits connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections still in their TLS handshake; the oldest is closed to admit a new one.
    pub max_pending: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to send a request's headers (HTTP/1), also between keep-alive requests.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    /// 10 s for the handshake, 30 s for headers, and a connection cap below the descriptor limit.
    fn default() -> Self {
        let cap = descriptor_limit()
            .map_or(10_000, |n| n.saturating_sub(RESERVED_DESCRIPTORS))
            .clamp(16, 10_000);
        Self {
            max_connections: cap,
            max_pending: (cap / 4).max(8),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (None where there is no such file).
pub fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Connections in their handshake, oldest first, each with the sender that evicts it.
#[derive(Default)]
struct Pending {
    queue: Mutex<VecDeque<(u64, oneshot::Sender<()>)>>,
    next: AtomicU64,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, oneshot::Sender<()>)>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the oldest connection still in its handshake; false if there is none.
    fn evict_oldest(&self) -> bool {
        // a sender whose receiver is gone belongs to a connection that already ended
        while let Some((_, tx)) = self.lock().pop_front() {
            if tx.send(()).is_ok() {
                return true;
            }
        }
        false
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|(i, _)| *i != id);
    }
}

/// A listener that admits connections within [`Limits`].
pub struct Guard {
    listener: TcpListener,
    limits: Limits,
    open: Arc<Semaphore>,
    pending: Arc<Pending>,
    /// Accept errors since the last success, for backoff.
    failures: u32,
}

/// An accepted connection; it counts against the cap until dropped.
pub struct Admitted {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    /// The admission: dropping it frees the connection's place.
    pub slot: Slot,
}

/// A connection's place under the cap, and its place among the pending ones until its
/// handshake completes.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    id: u64,
    pending: Arc<Pending>,
    evicted: Option<oneshot::Receiver<()>>,
    handshake_timeout: Duration,
}

/// Why a connection ended before it was served.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake not completed within {0:?}")]
    Timeout(Duration),
    #[error("closed to admit a newer connection while still in its TLS handshake")]
    Evicted,
    #[error("TLS handshake: {0}")]
    Tls(#[from] std::io::Error),
}

impl Slot {
    /// Runs `handshake` under the deadline, unless a newer connection evicts this one first;
    /// afterwards the connection is no longer evictable.
    pub async fn complete<T>(
        &mut self,
        handshake: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, HandshakeError> {
        let evicted = self.evicted.take();
        let result = tokio::select! {
            r = tokio::time::timeout(self.handshake_timeout, handshake) => match r {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(HandshakeError::Tls(e)),
                Err(_) => Err(HandshakeError::Timeout(self.handshake_timeout)),
            },
            Ok(()) = async move { match evicted { Some(rx) => rx.await, None => std::future::pending().await } } => {
                Err(HandshakeError::Evicted)
            }
        };
        self.pending.remove(self.id);
        result
    }
}

impl Slot {
    /// Marks a connection without a handshake (plain HTTP) as past it.
    pub fn settle(&mut self) {
        self.evicted = None;
        self.pending.remove(self.id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pending.remove(self.id);
    }
}

impl Guard {
    /// Guards `listener` with `limits`.
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        Self {
            listener,
            open: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            pending: Arc::default(),
            limits,
            failures: 0,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections admitted and not yet dropped.
    pub fn open_connections(&self) -> usize {
        self.limits.max_connections.max(1) - self.open.available_permits()
    }

    /// The next connection within the limits. A connection arriving at the cap makes the oldest
    /// connection still in its handshake close to make room; if every open connection is past
    /// its handshake, it waits for one to end (the rest wait in the kernel's backlog). A failed
    /// `accept` (out of descriptors, say) closes the oldest pending connection and backs off
    /// (1 ms doubling to 1 s) instead of spinning.
    pub async fn accept(&mut self) -> Admitted {
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => {
                    self.failures = 0;
                    let permit = match self.open.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            // evict only for a connection that is really there: a pending one
                            // is never closed just because the cap was reached
                            self.pending.evict_oldest();
                            match self.open.clone().acquire_owned().await {
                                Ok(p) => p,
                                Err(_) => continue,
                            }
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    return Admitted {
                        tcp,
                        peer,
                        slot: self.pending_slot(permit),
                    };
                }
                Err(e) => {
                    self.failures = self.failures.saturating_add(1);
                    if self.failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures = self.failures, "accept failed, backing off");
                    }
                    self.pending.evict_oldest();
                    let backoff =
                        Duration::from_millis(1 << self.failures.min(10).saturating_sub(1));
                    tokio::time::sleep(backoff.min(Duration::from_secs(1))).await;
                }
            }
        }
    }

    fn pending_slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        let (tx, rx) = oneshot::channel();
        let id = self.pending.next.fetch_add(1, Ordering::Relaxed);
        let over = {
            let mut q = self.pending.lock();
            q.push_back((id, tx));
            q.len() > self.limits.max_pending.max(1)
        };
        if over {
            self.pending.evict_oldest();
        }
        Slot {
            _permit: permit,
            id,
            pending: self.pending.clone(),
            evicted: Some(rx),
            handshake_timeout: self.limits.handshake_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `guard`: the "handshake" is the client's first byte `h`; then it answers `ok`.
    async fn serve(mut guard: Guard) {
        loop {
            let Admitted {
                mut tcp, mut slot, ..
            } = guard.accept().await;
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                let hello = slot.complete(tcp.read_exact(&mut b)).await;
                if hello.is_ok() && b[0] == b'h' {
                    let _ = tcp.write_all(b"ok").await;
                    let _ = tcp.read(&mut b).await;
                }
                drop(slot);
            });
        }
    }

    async fn guarded(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let guard = Guard::new(listener, limits);
        let addr = guard.local_addr().unwrap();
        tokio::spawn(serve(guard));
        addr
    }

    /// Whether the server closed the connection (reads EOF or a reset).
    async fn closed(tcp: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    async fn greet(addr: SocketAddr) -> TcpStream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"h").await.unwrap();
        let mut ok = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(20), tcp.read_exact(&mut ok))
            .await
            .expect("a real client is served")
            .unwrap();
        assert_eq!(&ok, b"ok");
        tcp
    }

    #[tokio::test]
    async fn silent_clients_are_evicted_so_a_real_client_gets_in() {
        let addr = guarded(Limits {
            max_connections: 6,
            max_pending: 3,
            handshake_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(600),
        })
        .await;
        let mut silent = Vec::new();
        for _ in 0..20 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        let served = greet(addr).await;
        // the oldest silent connections were closed to make room; the served one stays open
        assert!(closed(&mut silent[0]).await);
        let _ = served;
    }

    #[tokio::test]
    async fn established_connections_are_not_evicted_and_the_cap_holds() {
        let limits = Limits {
            max_connections: 3,
            max_pending: 3,
            handshake_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(600),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let guard = Guard::new(listener, limits);
        let addr = guard.local_addr().unwrap();
        let open = guard.open.clone();
        tokio::spawn(serve(guard));
        let a = greet(addr).await;
        let b = greet(addr).await;
        let c = greet(addr).await;
        assert_eq!(open.available_permits(), 0);
        // a fourth waits in the backlog: none of the three is evicted for it
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        fourth.write_all(b"h").await.unwrap();
        drop(a);
        let mut ok = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(20), fourth.read_exact(&mut ok))
            .await
            .expect("served once a place is free")
            .unwrap();
        assert_eq!(&ok, b"ok");
        let _ = (b, c);
    }

    #[tokio::test]
    async fn a_handshake_has_a_deadline() {
        let addr = guarded(Limits {
            max_connections: 10,
            max_pending: 10,
            handshake_timeout: Duration::from_millis(200),
            header_read_timeout: Duration::from_secs(600),
        })
        .await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(closed(&mut silent).await);
    }

    #[test]
    fn the_default_cap_stays_below_the_descriptor_limit() {
        let limits = Limits::default();
        if let Some(n) = descriptor_limit() {
            assert!(limits.max_connections <= n.saturating_sub(RESERVED_DESCRIPTORS).max(16));
        }
        assert!(limits.max_pending <= limits.max_connections.max(8));
    }
}
