//! The correctness oracle for materialized views: generated streams with disorder and
//! duplicates go in over HTTP while the server is killed with SIGKILL at arbitrary moments
//! (mid-ingest, mid-epoch) and restarted; after `FLUSH`, every view must equal what DataFusion
//! computes in batch over the accepted events, i.e. every event counted exactly once.
//!
//! `WEIR_ORACLE_SEEDS=N` runs N seeds instead of the few CI runs.

use super::server::TestServer;

const SOURCE: &str = "CREATE SOURCE events (event_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, \
     region VARCHAR, ts TIMESTAMPTZ NOT NULL, amount DOUBLE, \
     WATERMARK FOR ts AS ts - INTERVAL '5 seconds') \
     WITH (connector = 'http', dedup_key = 'event_id')";

/// Each view, and the batch query over the source that must give the same rows (written by
/// hand here, independently of how Weir rewrites windows).
const VIEWS: &[(&str, &str, &str)] = &[
    (
        "tumble",
        "SELECT window_start, region, count(*) AS n, sum(amount) AS total, min(amount) AS lo, \
         max(amount) AS hi, avg(amount) AS mean \
         FROM TUMBLE(events, ts, INTERVAL '10 seconds') WHERE kind = 'buy' \
         GROUP BY window_start, region",
        "SELECT date_bin(INTERVAL '10 seconds', ts) AS window_start, region, count(*), \
         sum(amount), min(amount), max(amount), avg(amount) FROM events WHERE kind = 'buy' \
         GROUP BY 1, 2",
    ),
    (
        "hop",
        "SELECT window_start, window_end, count(*) AS n, sum(amount) AS total \
         FROM HOP(events, ts, INTERVAL '10 seconds', INTERVAL '30 seconds') \
         GROUP BY window_start, window_end",
        "SELECT s - d, s - d + INTERVAL '30 seconds', count(*), sum(amount) FROM \
         (SELECT date_bin(INTERVAL '10 seconds', ts) AS s, amount FROM events) \
         CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '10 seconds'), \
         (INTERVAL '20 seconds')) AS shifts(d) GROUP BY 1, 2",
    ),
    (
        "hop_region",
        "SELECT window_end, region, max(amount) AS top, \
         count(*) FILTER (WHERE kind = 'buy') AS buys \
         FROM HOP(events, ts, INTERVAL '10 seconds', INTERVAL '20 seconds') \
         WHERE amount IS NOT NULL GROUP BY window_end, region",
        "SELECT s - d + INTERVAL '20 seconds', region, max(amount), \
         count(*) FILTER (WHERE kind = 'buy') FROM \
         (SELECT date_bin(INTERVAL '10 seconds', ts) AS s, region, amount, kind FROM events \
          WHERE amount IS NOT NULL) \
         CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '10 seconds')) AS shifts(d) \
         GROUP BY 1, 2",
    ),
    (
        "by_kind",
        "SELECT kind, count(*) FILTER (WHERE amount > 50) AS big, count(amount) AS priced \
         FROM events GROUP BY kind HAVING count(*) > 3",
        "SELECT kind, count(*) FILTER (WHERE amount > 50), count(amount) FROM events \
         GROUP BY kind HAVING count(*) > 3",
    ),
];

/// A reproducible stream of choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Requests of NDJSON events: time runs forward with disorder of up to 8 s, and about one
/// event in ten repeats an earlier event id (a client retry), which dedup must drop.
fn stream(seed: u64, requests: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut sent: Vec<String> = Vec::new();
    let mut next_id = 0;
    (0..requests)
        .map(|r| {
            (0..1 + rng.below(40))
                .map(|_| {
                    if !sent.is_empty() && rng.below(10) == 0 {
                        return sent[rng.below(sent.len() as u64) as usize].clone();
                    }
                    next_id += 1;
                    let ts_ms = 1_777_800_000_000 + r as u64 * 1_000 - rng.below(8_000);
                    let kind = ["buy", "view", "click"][rng.below(3) as usize];
                    let region = match rng.below(4) {
                        0 => "null".to_string(),
                        n => format!("\"r{n}\""),
                    };
                    let amount = match rng.below(5) {
                        0 => "null".to_string(),
                        _ => rng.below(100).to_string(),
                    };
                    let event = format!(
                        "{{\"event_id\":\"{seed}-{next_id}\",\"kind\":\"{kind}\",\"region\":{region},\
                         \"ts\":{ts_ms},\"amount\":{amount}}}"
                    );
                    sent.push(event.clone());
                    event
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Rows as sorted text lines, so a view and its batch query compare whatever their column names.
async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect();
    rows.sort();
    rows
}

async fn run_seed(seed: u64) {
    let mut server = TestServer::start();
    let client = server.client().await;
    client.batch_execute(SOURCE).await.unwrap();
    let requests = stream(seed, 120);
    // Half the stream is in the log before the views exist (backfill), half arrives live.
    let (before, live) = requests.split_at(60);
    let http = reqwest::Client::new();
    let post = |server: &TestServer, body: &String| {
        http.post(format!("http://{}/api/events/events", server.http))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
    };
    for body in before {
        assert_eq!(post(&server, body).await.unwrap().status(), 202);
    }
    for (name, query, _) in VIEWS {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .unwrap();
    }
    let mut rng = Rng(seed ^ 0x5eed);
    for body in live {
        assert_eq!(post(&server, body).await.unwrap().status(), 202);
        // Now and then the server dies with views mid-epoch; nothing acknowledged may be lost
        // or counted twice.
        if rng.below(20) == 0 {
            server.kill_and_restart();
        }
    }
    server.kill_and_restart();
    let client = server.client().await;
    client.batch_execute("FLUSH").await.unwrap();
    for (name, _, batch) in VIEWS {
        let view = rows(&client, &format!("SELECT * FROM {name}")).await;
        let oracle = rows(&client, batch).await;
        assert!(
            !oracle.is_empty(),
            "seed {seed}: the oracle for {name} is empty"
        );
        assert_eq!(
            view, oracle,
            "seed {seed}: view {name} differs from its batch query"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_equal_batch_queries_through_disorder_duplicates_and_kill_9() {
    let seeds: u64 = std::env::var("WEIR_ORACLE_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    for seed in 1..=seeds {
        run_seed(seed).await;
    }
}
