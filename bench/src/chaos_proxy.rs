//! The chaos run's slow S3: a TCP proxy in the bench process between the binaries and
//! SeaweedFS. It passes bytes through unchanged; while its delay is switched on, every
//! chunk read from a client (a request's headers, a piece of its body) waits a random
//! time in the configured range before it is forwarded, so each S3 call takes that
//! much longer. Answers are never delayed.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once (past that, new ones wait
//! in the listen backlog), one fixed buffer per direction, and every connection task
//! is aborted when the proxy is dropped.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Connections held at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Bytes read at once, per direction.
const BUFFER: usize = 16 * 1024;
/// How long connecting to SeaweedFS may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Shared {
    /// SeaweedFS's port (set once it is known).
    upstream: AtomicU16,
    on: AtomicBool,
    min_ms: AtomicU64,
    max_ms: AtomicU64,
    delayed_chunks: AtomicU64,
    connections: AtomicU64,
}

/// The running proxy; dropping it closes every connection.
pub struct DelayProxy {
    /// `http://127.0.0.1:<port>`: the S3 endpoint the binaries are given.
    pub endpoint: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl DelayProxy {
    /// Listens on a free loopback port; forwards to the port given to
    /// [`DelayProxy::front`]'s function. `seed` seeds the delays.
    pub async fn bind(seed: u64) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the S3 proxy")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept(listener, shared.clone(), seed));
        Ok(Self {
            endpoint,
            shared,
            accept,
        })
    }

    /// For [`crate::stack::FullOptions::s3_in_front`]: given SeaweedFS's port, forward
    /// there and hand out the proxy's endpoint.
    pub fn front(&self) -> crate::stack::S3InFront {
        let (shared, endpoint) = (self.shared.clone(), self.endpoint.clone());
        Box::new(move |port| {
            shared.upstream.store(port, Ordering::Relaxed);
            endpoint
        })
    }

    /// Delays every chunk a client sends by `min..=max` from now on.
    pub fn slow(&self, min: Duration, max: Duration) {
        let s = &self.shared;
        s.min_ms.store(min.as_millis() as u64, Ordering::Relaxed);
        s.max_ms
            .store(max.as_millis().max(min.as_millis()) as u64, Ordering::Relaxed);
        s.on.store(true, Ordering::Relaxed);
    }

    /// Forwards without delay again.
    pub fn fast(&self) {
        self.shared.on.store(false, Ordering::Relaxed);
    }

    /// Chunks delayed so far, and connections accepted.
    pub fn counts(&self) -> (u64, u64) {
        let s = &self.shared;
        (
            s.delayed_chunks.load(Ordering::Relaxed),
            s.connections.load(Ordering::Relaxed),
        )
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, seed: u64) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    let mut n = 0u64;
    loop {
        // Reap finished connections, so the set holds at most the open ones.
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        n += 1;
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let (shared, rng) = (shared.clone(), crate::rng::Rng::new(seed ^ n.wrapping_mul(0x9e37_79b9)));
        tasks.spawn(async move {
            let _permit = permit;
            let port = shared.upstream.load(Ordering::Relaxed);
            let Ok(Ok(server)) = tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(("127.0.0.1", port))).await
            else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let up = async {
                let mut rng = rng;
                let mut buf = vec![0u8; BUFFER];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if shared.on.load(Ordering::Relaxed) {
                        let (lo, hi) = (
                            shared.min_ms.load(Ordering::Relaxed),
                            shared.max_ms.load(Ordering::Relaxed),
                        );
                        shared.delayed_chunks.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(rng.between(lo, hi))).await;
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            };
            let down = async {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(up, down);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes what it reads.
    async fn echo() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    async fn round_trip(endpoint: &str) -> (Vec<u8>, Duration) {
        let addr = endpoint.strip_prefix("http://").unwrap();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        s.write_all(b"ping").await.unwrap();
        let mut got = vec![0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        (got, started.elapsed())
    }

    #[tokio::test]
    async fn passes_bytes_through_and_delays_them_while_slow() {
        let proxy = DelayProxy::bind(1).await.unwrap();
        let endpoint = (proxy.front())(echo().await);
        let (got, _) = round_trip(&endpoint).await;
        assert_eq!(got, b"ping");
        proxy.slow(Duration::from_millis(150), Duration::from_millis(200));
        let (got, took) = round_trip(&endpoint).await;
        assert_eq!(got, b"ping");
        assert!(took >= Duration::from_millis(150), "{took:?}");
        proxy.fast();
        let (delayed, connections) = proxy.counts();
        assert_eq!((delayed, connections), (1, 2));
    }
}
