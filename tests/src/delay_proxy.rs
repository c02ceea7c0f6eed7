//! `DelayProxy`: a TCP proxy on a free loopback port that forwards to one
//! upstream (a redis-server, the Flinks simulator...) and delays every chunk,
//! in both directions, by a delay the test changes while it runs — a slow
//! link. It can also hold every chunk (pause) and cut every connection.
//!
//! ```no_run
//! # async fn demo(redis: &flinkq_tests::redis_harness::RedisServer) {
//! use std::time::Duration;
//! use flinkq_tests::delay_proxy::DelayProxy;
//! let proxy = DelayProxy::start(("127.0.0.1", redis.port())).await.expect("proxy");
//! let url = proxy.redis_url(); // give this to the worker
//! proxy.set_delay(Duration::from_millis(800)); // answers now come late
//! proxy.pause(); // nothing gets through...
//! proxy.resume(); // ...until now
//! proxy.cut(); // every open connection is closed (new ones are accepted)
//! # }
//! ```
//!
//! Each chunk is stamped when it is read and written once its delay has
//! passed: the delay is latency, not a bandwidth limit, and chunks keep
//! their order. A chunk read before a change keeps the delay it was read
//! with. Bytes a client sent before closing are still delivered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What every connection obeys now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    delay: Duration,
    paused: bool,
    /// Bumped by [`DelayProxy::cut`]: connections opened before close.
    cuts: u64,
}

/// A running proxy. Dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    link: Arc<watch::Sender<Link>>,
    accept: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `upstream`, with no delay until [`DelayProxy::set_delay`].
    pub async fn start(upstream: impl ToSocketAddrs) -> std::io::Result<DelayProxy> {
        let upstream = tokio::net::lookup_host(upstream)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("the upstream address resolves to nothing"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (link, _) = watch::channel(Link {
            delay: Duration::ZERO,
            paused: false,
            cuts: 0,
        });
        let link = Arc::new(link);
        let accept = tokio::spawn(accept_loop(listener, upstream, link.clone()));
        Ok(DelayProxy { addr, link, accept })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>`, for a Redis upstream without password.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Delays every chunk read from now on by `delay`, in both directions.
    pub fn set_delay(&self, delay: Duration) {
        self.link.send_modify(|link| link.delay = delay);
    }

    /// Holds every chunk (none is delivered) until [`DelayProxy::resume`].
    pub fn pause(&self) {
        self.link.send_modify(|link| link.paused = true);
    }

    /// Delivers what was held, and everything after, with the current delay.
    pub fn resume(&self) {
        self.link.send_modify(|link| link.paused = false);
    }

    /// Closes every open connection at once (what was held is dropped);
    /// new connections are accepted.
    pub fn cut(&self) {
        self.link.send_modify(|link| link.cuts += 1);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, link: Arc<watch::Sender<Link>>) {
    while let Ok((client, _)) = listener.accept().await {
        let link = link.subscribe();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return; // the client sees its connection closed
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let born = link.borrow().cuts;
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let both = async {
                tokio::join!(
                    pump(client_read, server_write, link.clone()),
                    pump(server_read, client_write, link.clone()),
                )
            };
            let mut cut = link.clone();
            tokio::select! {
                _ = both => {}
                _ = cut.wait_for(|link| link.cuts != born) => {}
            }
        });
    }
}

/// Copies one direction: a reader stamps each chunk, a writer delivers it
/// when its time has come and the link is not paused.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, link: watch::Receiver<Link>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let stamp = link.clone();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + stamp.borrow().delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        // dropping tx ends the writer once it delivered what was read
    };
    let writer = async move {
        let mut link = link;
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if link.wait_for(|link| !link.paused).await.is_err() {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes what it receives.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(bytes).await?;
        let mut back = vec![0; bytes.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn delays_holds_and_cuts() {
        let proxy = DelayProxy::start(echo().await).await.expect("proxy");
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(
            round_trip(&mut stream, b"ping").await.expect("echo"),
            b"ping"
        );

        // both directions are delayed: at least twice the delay per round trip
        proxy.set_delay(Duration::from_millis(150));
        let sent = Instant::now();
        round_trip(&mut stream, b"slow").await.expect("echo");
        assert!(sent.elapsed() >= Duration::from_millis(300));
        proxy.set_delay(Duration::ZERO);

        // paused: nothing comes back until resumed
        proxy.pause();
        stream.write_all(b"held").await.expect("write");
        let mut back = [0; 4];
        let waited =
            tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut back)).await;
        assert!(waited.is_err(), "a paused proxy delivers nothing");
        proxy.resume();
        stream.read_exact(&mut back).await.expect("delivered");
        assert_eq!(&back, b"held");

        // cut: the open connection is closed, a new one works
        proxy.cut();
        let mut byte = [0; 1];
        assert!(matches!(stream.read(&mut byte).await, Ok(0) | Err(_)));
        let mut fresh = TcpStream::connect(proxy.addr()).await.expect("reconnect");
        assert_eq!(
            round_trip(&mut fresh, b"again").await.expect("echo"),
            b"again"
        );
    }
}
