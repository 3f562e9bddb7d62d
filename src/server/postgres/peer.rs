//! Noticing a client that goes away while its statement computes. pgwire reads the socket only
//! between messages, so without this a client that closes its connection (or dies) before its
//! first row would be seen only when the statement's answer is written, after all its work.
//! Like Postgres' `client_connection_check_interval`, a running statement watches its socket
//! for the peer's close, through a second descriptor of the socket pgwire owns.

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::Arc;

use tokio::net::TcpStream;

tokio::task_local! {
    /// The watch of the connection whose task this is, from accept until its startup takes it.
    static ACCEPTED: Peer;
}

/// A watch on a client's socket.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// A duplicate of the connection's descriptor: it shares the socket, so it sees the peer's
    /// close; `None` when the descriptor could not be duplicated (out of descriptors), and the
    /// close is then noticed when the answer is written.
    socket: Option<Arc<TcpStream>>,
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
            Ok(socket) => Self {
                socket: Some(Arc::new(socket)),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch a connection for its client leaving");
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
            match socket.peek(&mut byte).await {
                Ok(0) | Err(_) => {}
                Ok(_) => std::future::pending().await,
            }
        }
    }
}
