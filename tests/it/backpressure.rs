//! Backpressure on the event collector: while a commit is slow (a failpoint stalls it),
//! requests that would pass the in-flight bound get 429 with `Retry-After` instead of
//! queueing, and are accepted when retried. Nothing refused is stored; nothing accepted is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::TestServer;

const SOURCE: &str = "CREATE SOURCE clicks (id BIGINT, ts TIMESTAMPTZ NOT NULL) \
     WITH (connector = 'http')";

fn body(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|id| format!("{{\"id\":{id},\"ts\":\"2026-05-03T10:00:00Z\"}}\n"))
        .collect()
}

/// Events in the request starting at `first`: requests differ in size.
fn size(first: u64) -> u64 {
    10 + first / 1000 % 7
}

async fn post(client: reqwest::Client, url: String, body: String) -> reqwest::Response {
    client
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn busy_collector_answers_429_with_retry_after_then_accepts() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = TestServer::start_configured(
        dir,
        &[("WEIR_FAILPOINTS", "source_log::before_commit=sleep:500")],
        "max_inflight_ingest_bytes = 1000\n",
    );
    server.client().await.batch_execute(SOURCE).await.unwrap();
    let url = format!("http://{}/api/events/clicks", server.http);
    let http = reqwest::Client::new();

    // Concurrent requests while commits stall: the first admitted holds the bound, and the
    // others must be refused, not queued. Which one is admitted is the server's race, so
    // every request is tracked.
    let mut accepted: Vec<u64> = Vec::new();
    let mut refused: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while refused.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no 429 while commits were stalled"
        );
        let firsts: Vec<u64> = (0..8).map(|i| (round * 8 + i) * 1000).collect();
        round += 1;
        let responses = futures::future::join_all(
            firsts
                .iter()
                .map(|&first| post(http.clone(), url.clone(), body(first, size(first)))),
        )
        .await;
        for (first, response) in firsts.into_iter().zip(responses) {
            match response.status().as_u16() {
                202 => accepted.push(first),
                429 => {
                    assert_eq!(response.headers()["retry-after"], "1");
                    let reply: serde_json::Value =
                        serde_json::from_str(&response.text().await.unwrap()).unwrap();
                    let message = reply["error"].as_str().unwrap();
                    assert!(
                        message.contains("busy") && message.contains("retry"),
                        "{message}"
                    );
                    refused.push(first);
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
    // Idle again: every refused request goes through when retried.
    for &first in &refused {
        let retried = post(http.clone(), url.clone(), body(first, size(first))).await;
        assert_eq!(retried.status(), 202);
        accepted.push(first);
    }

    let mut expected: Vec<i64> = accepted
        .iter()
        .flat_map(|&first| (first..first + size(first)).map(|id| id as i64))
        .collect();
    expected.sort_unstable();
    let client = server.client().await;
    let stored: Vec<i64> = client
        .query("SELECT id FROM clicks ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        stored, expected,
        "accepted requests stored once, refused ones not at all"
    );
}
