//! Admission control for ingestion: a request is refused with "retry later" (HTTP 429 with
//! `Retry-After`) instead of queued when the bytes already taken in but not yet committed
//! would pass a bound, so a burst cannot grow the server's memory without limit and clients
//! slow down to what the log can commit.
//!
//! One request is always admitted when none is in flight, so a body larger than the bound
//! (but within the body limit) still gets through on an idle server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long a refused client is told to wait before retrying.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The server-wide bound on ingest bytes in flight.
#[derive(Debug)]
pub struct IngestGate {
    limit: usize,
    in_flight: AtomicUsize,
}

/// A request's share of the bound, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<IngestGate>,
    bytes: usize,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server is busy: {in_flight} bytes of events are waiting to be committed (limit {limit}); \
     retry after {RETRY_AFTER_SECS} s"
)]
pub struct Busy {
    /// Bytes in flight when the request came.
    pub in_flight: usize,
    /// The bound.
    pub limit: usize,
}

impl IngestGate {
    /// A gate admitting up to `limit` bytes at once.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Admits a request of `bytes`, or says the server is busy.
    pub fn try_admit(self: &Arc<Self>, bytes: usize) -> Result<Admission, Busy> {
        let admitted =
            self.in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_flight| {
                    (in_flight == 0 || in_flight.saturating_add(bytes) <= self.limit)
                        .then(|| in_flight + bytes)
                });
        match admitted {
            Ok(_) => Ok(Admission {
                gate: self.clone(),
                bytes,
            }),
            Err(in_flight) => Err(Busy {
                in_flight,
                limit: self.limit,
            }),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_within_the_bound_and_one_request_when_idle() {
        let gate = IngestGate::new(100);
        let big = gate
            .try_admit(500)
            .expect("an idle server takes any one request");
        assert_eq!(
            gate.try_admit(1).unwrap_err(),
            Busy {
                in_flight: 500,
                limit: 100
            }
        );
        drop(big);
        let a = gate.try_admit(60).unwrap();
        let b = gate.try_admit(40).unwrap();
        assert!(gate.try_admit(1).is_err());
        drop(a);
        assert!(
            gate.try_admit(60).is_ok(),
            "a finished request frees its share"
        );
        drop(b);
    }
}
