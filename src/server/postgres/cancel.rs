//! Query cancellation. A `CancelRequest` arrives on a new connection naming a backend's pid and
//! secret key; the registry finds that connection and bumps its cancel counter. A statement
//! notes the counter when it starts and stops when the counter moves, whether it is still
//! planning or already streaming rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use tokio::sync::watch;

type Key = (i32, Vec<u8>);

/// Live connections by `(pid, secret key)`.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    connections: Mutex<HashMap<Key, watch::Sender<u64>>>,
}

/// A connection's side of cancellation; unregisters it when the connection ends.
#[derive(Debug)]
pub struct CancelSignal {
    registry: Arc<CancelRegistry>,
    key: Key,
    receiver: watch::Receiver<u64>,
}

impl CancelRegistry {
    /// Registers the connection with `pid` and `secret`.
    pub fn register(self: &Arc<Self>, pid: i32, secret: &SecretKey) -> CancelSignal {
        let key = (pid, secret.to_bytes().to_vec());
        let (sender, receiver) = watch::channel(0);
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), sender);
        CancelSignal {
            registry: self.clone(),
            key,
            receiver,
        }
    }
}

impl CancelSignal {
    /// A future that resolves once the statement starting now is cancelled.
    pub fn cancelled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.receiver.clone();
        let start = *receiver.borrow_and_update();
        async move {
            if receiver.wait_for(|n| *n != start).await.is_err() {
                // The connection is gone; nothing will cancel this statement any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for CancelSignal {
    fn drop(&mut self) {
        self.registry
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[async_trait]
impl CancelHandler for CancelRegistry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes().to_vec());
        if let Some(sender) = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            sender.send_modify(|n| *n += 1);
        }
    }
}
