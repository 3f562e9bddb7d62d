//! The client's socket, beside pgwire's use of it, through a second descriptor of the socket
//! pgwire owns. Two things pgwire does not do:
//!
//! - Notice a client that goes away while its statement computes. pgwire reads the socket
//!   only between messages, so a client that closes its connection (or dies) before its first
//!   row would be seen only when the statement's answer is written, after all its work. Like
//!   Postgres' `client_connection_check_interval`, a running statement watches its socket for
//!   the peer's close.
//! - Send the replies to one extended-protocol exchange (Parse, Bind, Execute, Sync) together,
//!   as Postgres does. pgwire flushes after `ParseComplete`, `BindComplete` and
//!   `CommandComplete` as well as at `ReadyForQuery`, and on loopback each flush is a segment
//!   the client wakes up for: three times the network work of a point lookup. The socket is
//!   corked from the exchange's first message until its `Sync` (or `Flush`).

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpStream;

tokio::task_local! {
    /// The watch of the connection whose task this is, from accept until its startup takes it.
    static ACCEPTED: Peer;
}

/// A client's socket, seen beside pgwire.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// A duplicate of the connection's descriptor: it shares the socket, so it sees the peer's
    /// close; `None` when the descriptor could not be duplicated (out of descriptors), and the
    /// close is then noticed when the answer is written, and replies are not held.
    socket: Option<Arc<Socket>>,
}

#[derive(Debug)]
struct Socket {
    stream: TcpStream,
    /// Whether replies are held (`TCP_CORK` is on).
    corked: AtomicBool,
}

impl Peer {
    /// A watch on `socket`, which pgwire will own.
    pub fn of(socket: &TcpStream) -> Self {
        let duplicate = socket
            .as_fd()
            .try_clone_to_owned()
            .map(std::net::TcpStream::from)
            .and_then(TcpStream::from_std);
        match duplicate {
            Ok(stream) => Self {
                socket: Some(Arc::new(Socket {
                    stream,
                    corked: AtomicBool::new(false),
                })),
            },
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot watch a connection for its client leaving, nor hold its replies"
                );
                Self::default()
            }
        }
    }

    /// Runs `connection` (pgwire's processing of the socket) with this watch available to its
    /// startup through [`Peer::accepted`]. The duplicate descriptor closes when it ends, so the
    /// socket is closed as soon as pgwire drops its own.
    pub async fn serve<F: Future>(self, connection: F) -> F::Output {
        ACCEPTED.scope(self, connection).await
    }

    /// The watch of the connection being started on this task.
    pub fn accepted() -> Self {
        ACCEPTED.try_with(Clone::clone).unwrap_or_default()
    }

    /// Resolves once the client has closed the connection or reset it. Never resolves while it
    /// is connected, nor once it has sent its next message (pipelined, pgwire's to read), since
    /// a close behind it can't be seen without reading it.
    pub fn gone(&self) -> impl Future<Output = ()> + Send + 'static {
        let socket = self.socket.clone();
        async move {
            let Some(socket) = socket else {
                return std::future::pending().await;
            };
            let mut byte = [0u8; 1];
            match socket.stream.peek(&mut byte).await {
                Ok(0) | Err(_) => {}
                Ok(_) => std::future::pending().await,
            }
        }
    }

    /// Holds what pgwire writes from now on in the kernel, until [`Peer::send_held`]: an
    /// exchange has begun whose replies should leave together. Linux sends a held partial
    /// segment after 200 ms in any case.
    pub fn hold_replies(&self) {
        if let Some(socket) = &self.socket
            && !socket.corked.swap(true, Ordering::AcqRel)
        {
            cork(&socket.stream, true);
        }
    }

    /// Sends what is held: the exchange has ended (`Sync`, `Flush`), or a simple query begins.
    pub fn send_held(&self) {
        if let Some(socket) = &self.socket
            && socket.corked.swap(false, Ordering::AcqRel)
        {
            cork(&socket.stream, false);
        }
    }
}

#[cfg(target_os = "linux")]
fn cork(stream: &TcpStream, on: bool) {
    // A socket that fails this is closing: its writes fail too, and pgwire reports that.
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_cork(on) {
        tracing::debug!(error = %e, on, "TCP_CORK");
    }
}

#[cfg(not(target_os = "linux"))]
fn cork(_stream: &TcpStream, _on: bool) {}
