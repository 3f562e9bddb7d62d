//! Kill -9 under load: clients POST continuously while the server is killed and restarted
//! several times. Every acknowledged event must be stored exactly once, and every request
//! that was cut off must be stored whole or not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::server::TestServer;

const CLIENTS: usize = 4;
const EVENTS_PER_REQUEST: usize = 50;
const ROUNDS: usize = 3;
/// Acknowledged requests per round before the kill.
const ACKS_PER_ROUND: u64 = 30;

#[derive(Default)]
struct Ledger {
    /// Requests answered 202, by request id.
    acknowledged: BTreeSet<String>,
    /// Requests that got no answer (the server died under them).
    cut_off: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_repeated_kill_9_exactly_once() {
    let mut server = TestServer::start();
    server
        .client()
        .await
        .batch_execute(
            "CREATE SOURCE events (event_id VARCHAR NOT NULL, request VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL) \
             WITH (connector = 'http')",
        )
        .await
        .unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        let (acks_tx, mut acks_rx) = watch::channel(0u64);
        let acks_tx = Arc::new(acks_tx);
        let url = format!("http://{}/api/events/events", server.http);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (url, ledger, acks_tx) = (url.clone(), ledger.clone(), acks_tx.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    for n in 0.. {
                        let request = format!("r{round}-{client}-{n}");
                        let events: Vec<String> = (0..EVENTS_PER_REQUEST)
                            .map(|i| format!(r#"{{"event_id":"{request}-{i}","request":"{request}","ts":{}}}"#, 1_777_800_000_000u64 + i as u64))
                            .collect();
                        let sent = http.post(&url).body(format!("[{}]", events.join(","))).send().await;
                        match sent {
                            Ok(response) if response.status() == 202 => {
                                ledger.lock().unwrap().acknowledged.insert(request);
                                acks_tx.send_modify(|n| *n += 1);
                            }
                            Ok(response) => panic!("unexpected status {}", response.status()),
                            Err(_) => {
                                // The server is gone: this request may or may not have landed.
                                ledger.lock().unwrap().cut_off.insert(request);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::timeout(
            Duration::from_secs(120),
            acks_rx.wait_for(|n| *n >= ACKS_PER_ROUND),
        )
        .await
        .expect("clients made progress")
        .unwrap();
        server.kill();
        for client in clients {
            tokio::time::timeout(Duration::from_secs(60), client)
                .await
                .expect("client noticed the kill")
                .unwrap();
        }
        server = TestServer::start_in(server.dir.clone());
    }

    let rows = server
        .client()
        .await
        .query(
            "SELECT request, count(*), count(DISTINCT event_id) FROM events GROUP BY request",
            &[],
        )
        .await
        .unwrap();
    let stored: BTreeMap<String, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let ledger = ledger.lock().unwrap();
    assert!(ledger.acknowledged.len() as u64 >= ACKS_PER_ROUND * ROUNDS as u64);
    let whole = (EVENTS_PER_REQUEST as i64, EVENTS_PER_REQUEST as i64);
    for request in &ledger.acknowledged {
        assert_eq!(
            stored.get(request),
            Some(&whole),
            "acknowledged request {request}"
        );
    }
    for (request, counts) in &stored {
        assert_eq!(counts, &whole, "request {request} is stored whole, once");
        assert!(
            ledger.acknowledged.contains(request) || ledger.cut_off.contains(request),
            "{request} was never sent"
        );
    }
}
