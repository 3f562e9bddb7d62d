//! The Postgres wire protocol front end (pgwire): startup, simple and extended queries,
//! cancellation. Every statement goes through Weir's parser and the shared [`Engine`].

mod cancel;
mod encode;
pub mod error;
mod handler;
mod peer;
mod startup;
mod text;
mod tls;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::query::Engine;

pub use handler::Handlers;
pub use tls::{TlsError, acceptor as tls_acceptor};

/// Accepts connections until `shutdown` turns true. Each connection runs on its own task, over
/// TLS when the client asks for it and `tls` is set.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    auth: crate::auth::AuthMode,
    mut shutdown: watch::Receiver<bool>,
) {
    let handlers = Arc::new(Handlers::new(engine, auth));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _open = crate::telemetry::InFlight::new(crate::telemetry::PG_CONNECTIONS);
                        let client = peer::Peer::of(&socket);
                        let connection = pgwire::tokio::process_socket(socket, tls, handlers);
                        if let Err(e) = client.serve(connection).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
        }
    }
}
