//! The correctness oracle for materialized views: generated streams with disorder (beyond the
//! watermark delay, so some events are late) and duplicates go in over HTTP while the server is
//! killed with SIGKILL at arbitrary moments (mid-ingest, mid-epoch) and restarted; after
//! `FLUSH`, every view must equal what DataFusion computes in batch over the accepted events
//! that the view did not record as late, i.e. every event counted exactly once or set aside
//! exactly once.
//!
//! `WEIR_ORACLE_SEEDS=N` runs N seeds instead of the few CI runs.

use super::server::{TestServer, sorted_rows as rows};

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
    // Distinct users per sliding window, as WAU/MAU views are: each pane's HyperLogLog is
    // merged into its windows (merging loses nothing, so the estimates equal the batch's).
    (
        "hop_approx",
        "SELECT window_start, region, approx_count_distinct(event_id) AS ids, count(*) AS n \
         FROM HOP(events, ts, INTERVAL '10 seconds', INTERVAL '30 seconds') \
         GROUP BY window_start, region",
        "SELECT s - d, region, approx_distinct(event_id), count(*) FROM \
         (SELECT date_bin(INTERVAL '10 seconds', ts) AS s, region, event_id FROM events) \
         CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '10 seconds'), \
         (INTERVAL '20 seconds')) AS shifts(d) GROUP BY 1, 2",
    ),
    (
        "closed",
        "SELECT window_start, count(*) AS n, sum(amount) AS total \
         FROM TUMBLE(events, ts, INTERVAL '10 seconds') GROUP BY window_start \
         EMIT ON WINDOW CLOSE",
        "SELECT date_bin(INTERVAL '10 seconds', ts), count(*), sum(amount) FROM events \
         GROUP BY 1 HAVING date_bin(INTERVAL '10 seconds', ts) + INTERVAL '10 seconds' <= {watermark}",
    ),
    (
        "distinct",
        "SELECT window_start, count(DISTINCT region) AS regions, \
         count(DISTINCT kind) FILTER (WHERE amount > 50) AS kinds \
         FROM TUMBLE(events, ts, INTERVAL '10 seconds') GROUP BY window_start",
        "SELECT date_bin(INTERVAL '10 seconds', ts), count(DISTINCT region), \
         count(DISTINCT kind) FILTER (WHERE amount > 50) FROM events GROUP BY 1",
    ),
    (
        "big_amounts",
        "SELECT event_id, kind, amount * 2 AS doubled FROM events WHERE amount > 90",
        "SELECT event_id, kind, amount * 2 FROM events WHERE amount > 90",
    ),
    // HyperLogLogs merge without loss, so the view's estimates equal the batch query's.
    // (t-digests do not beyond 100 values a group: percentiles are checked in
    // views_approx.slt, on fewer.)
    (
        "approx",
        "SELECT window_start, approx_count_distinct(event_id) AS ids, \
         approx_count_distinct(region) FILTER (WHERE kind = 'buy') AS regions \
         FROM TUMBLE(events, ts, INTERVAL '10 seconds') GROUP BY window_start",
        "SELECT date_bin(INTERVAL '10 seconds', ts), approx_distinct(event_id), \
         approx_distinct(region) FILTER (WHERE kind = 'buy') FROM events GROUP BY 1",
    ),
    (
        "by_kind",
        "SELECT kind, count(*) FILTER (WHERE amount > 50) AS big, count(amount) AS priced \
         FROM events GROUP BY kind HAVING count(*) > 3",
        "SELECT kind, count(*) FILTER (WHERE amount > 50), count(amount) FROM events \
         GROUP BY kind HAVING count(*) > 3",
    ),
    // A view over a view: the closed windows of `tumble`, rolled up. Its input set the late
    // events aside already.
    (
        "rollup",
        "SELECT window_start, region, sum(n) AS n, sum(total) AS total, count(*) AS windows \
         FROM TUMBLE(tumble, window_start, INTERVAL '30 seconds') GROUP BY window_start, region",
        "SELECT date_bin(INTERVAL '30 seconds', ts), region, count(*), sum(amount), \
         count(DISTINCT date_bin(INTERVAL '10 seconds', ts)) FROM events \
         WHERE kind = 'buy' AND date_bin(INTERVAL '10 seconds', ts) + INTERVAL '10 seconds' \
         <= {watermark} GROUP BY 1, 2",
    ),
    // Sessions per (kind, region) of the big amounts, 2 s apart at most: keys come and go,
    // late events bridge sessions. The oracle numbers sessions by gaps and islands: a running
    // sum of the events that are the first of their key or 2 s or more after the previous one.
    (
        "session",
        "SELECT kind, region, window_start, window_end, count(*) AS n, sum(amount) AS total, \
         count(DISTINCT event_id) FILTER (WHERE amount > 90) AS big \
         FROM SESSION(events, ts, INTERVAL '2 seconds') WHERE amount > 85 \
         GROUP BY kind, region, window_start, window_end",
        "SELECT kind, region, min(ts), max(ts) + INTERVAL '2 seconds', count(*), sum(amount), \
         count(DISTINCT event_id) FILTER (WHERE amount > 90) FROM \
         (SELECT *, sum(CASE WHEN previous IS NULL OR ts - previous >= INTERVAL '2 seconds' \
          THEN 1 ELSE 0 END) OVER (PARTITION BY kind, region ORDER BY ts \
          ROWS UNBOUNDED PRECEDING) AS session FROM \
         (SELECT *, lag(ts) OVER (PARTITION BY kind, region ORDER BY ts) AS previous \
          FROM events WHERE amount > 85)) GROUP BY kind, region, session",
    ),
    (
        "session_closed",
        "SELECT region, window_start, window_end, count(*) AS n, max(amount) AS top \
         FROM SESSION(events, ts, INTERVAL '1 second') WHERE kind = 'buy' \
         GROUP BY region, window_start, window_end EMIT ON WINDOW CLOSE",
        "SELECT region, min(ts), max(ts) + INTERVAL '1 second', count(*), max(amount) FROM \
         (SELECT *, sum(CASE WHEN previous IS NULL OR ts - previous >= INTERVAL '1 second' \
          THEN 1 ELSE 0 END) OVER (PARTITION BY region ORDER BY ts \
          ROWS UNBOUNDED PRECEDING) AS session FROM \
         (SELECT *, lag(ts) OVER (PARTITION BY region ORDER BY ts) AS previous \
          FROM events WHERE kind = 'buy')) GROUP BY region, session \
         HAVING max(ts) + INTERVAL '1 second' <= {watermark}",
    ),
    // The funnel step each session reached, and retention per window: product-analytics
    // states (entries, masks) merged across epochs and restarts.
    (
        "session_funnel",
        "SELECT region, window_start, window_end, window_funnel(INTERVAL '3 seconds', ts, \
         kind = 'view', kind = 'click', kind = 'buy', 'strict_increase') AS step \
         FROM SESSION(events, ts, INTERVAL '2 seconds') GROUP BY region, window_start, window_end",
        "SELECT region, min(ts), max(ts) + INTERVAL '2 seconds', window_funnel(INTERVAL '3 seconds', \
         ts, kind = 'view', kind = 'click', kind = 'buy', 'strict_increase') FROM \
         (SELECT *, sum(CASE WHEN previous IS NULL OR ts - previous >= INTERVAL '2 seconds' \
          THEN 1 ELSE 0 END) OVER (PARTITION BY region ORDER BY ts \
          ROWS UNBOUNDED PRECEDING) AS session FROM \
         (SELECT *, lag(ts) OVER (PARTITION BY region ORDER BY ts) AS previous \
          FROM events)) GROUP BY region, session",
    ),
    // Sessions with a max_duration split as well as grow: an out-of-order event moves the
    // start of every later session of its run (events less than a gap apart). The oracle
    // numbers runs by gaps and islands, then walks each run's session starts recursively: the
    // first event, then the first event max_duration or more after the last start.
    (
        "session_bounded",
        "SELECT region, window_start, window_end, count(*) AS n, sum(amount) AS total, \
         count(DISTINCT kind) FILTER (WHERE amount > 50) AS kinds \
         FROM SESSION(events, ts, INTERVAL '2 seconds', INTERVAL '5 seconds') \
         GROUP BY region, window_start, window_end",
        "WITH RECURSIVE runs AS (SELECT *, sum(CASE WHEN previous IS NULL OR \
          ts - previous >= INTERVAL '2 seconds' THEN 1 ELSE 0 END) OVER (PARTITION BY region \
          ORDER BY ts ROWS UNBOUNDED PRECEDING) AS run FROM \
          (SELECT *, lag(ts) OVER (PARTITION BY region ORDER BY ts) AS previous FROM events)), \
         starts AS (SELECT region, run, min(ts) AS start FROM runs GROUP BY region, run \
          UNION ALL SELECT s.region, s.run, min(r.ts) FROM starts s JOIN runs r \
          ON r.run = s.run AND (r.region IS NOT DISTINCT FROM s.region) \
          AND r.ts >= s.start + INTERVAL '5 seconds' GROUP BY s.region, s.run), \
         placed AS (SELECT r.event_id, max(s.start) AS start FROM runs r JOIN starts s \
          ON r.run = s.run AND (r.region IS NOT DISTINCT FROM s.region) AND s.start <= r.ts \
          GROUP BY r.event_id) \
         SELECT region, start, least(max(ts) + INTERVAL '2 seconds', start + INTERVAL '5 seconds'), \
         count(*), sum(amount), count(DISTINCT kind) FILTER (WHERE amount > 50) \
         FROM runs JOIN placed USING (event_id) GROUP BY region, start",
    ),
    (
        "session_bounded_closed",
        "SELECT kind, window_start, window_end, count(*) FILTER (WHERE amount > 20) AS n, \
         max(amount) AS top FROM SESSION(events, ts, INTERVAL '1 second', INTERVAL '3 seconds') \
         WHERE region IS NOT NULL GROUP BY kind, window_start, window_end EMIT ON WINDOW CLOSE",
        "WITH RECURSIVE runs AS (SELECT *, sum(CASE WHEN previous IS NULL OR \
          ts - previous >= INTERVAL '1 second' THEN 1 ELSE 0 END) OVER (PARTITION BY kind \
          ORDER BY ts ROWS UNBOUNDED PRECEDING) AS run FROM \
          (SELECT *, lag(ts) OVER (PARTITION BY kind ORDER BY ts) AS previous FROM events \
          WHERE region IS NOT NULL)), \
         starts AS (SELECT kind, run, min(ts) AS start FROM runs GROUP BY kind, run \
          UNION ALL SELECT s.kind, s.run, min(r.ts) FROM starts s JOIN runs r \
          ON r.run = s.run AND r.kind = s.kind AND r.ts >= s.start + INTERVAL '3 seconds' \
          GROUP BY s.kind, s.run), \
         placed AS (SELECT r.event_id, max(s.start) AS start FROM runs r JOIN starts s \
          ON r.run = s.run AND r.kind = s.kind AND s.start <= r.ts GROUP BY r.event_id) \
         SELECT kind, start, least(max(ts) + INTERVAL '1 second', start + INTERVAL '3 seconds'), \
         count(*) FILTER (WHERE amount > 20), max(amount) \
         FROM runs JOIN placed USING (event_id) GROUP BY kind, start \
         HAVING least(max(ts) + INTERVAL '1 second', start + INTERVAL '3 seconds') <= {watermark}",
    ),
    (
        "retention",
        "SELECT window_start, retention(kind = 'view', kind = 'click', kind = 'buy') AS r, \
         window_funnel(INTERVAL '4 seconds', ts, kind = 'view', kind = 'buy') AS step \
         FROM TUMBLE(events, ts, INTERVAL '10 seconds') GROUP BY window_start",
        "SELECT date_bin(INTERVAL '10 seconds', ts), \
         retention(kind = 'view', kind = 'click', kind = 'buy'), \
         window_funnel(INTERVAL '4 seconds', ts, kind = 'view', kind = 'buy') \
         FROM events GROUP BY 1",
    ),
];

/// The SESSION views of [`VIEWS`] and their gaps (ms): late when a gap or more behind the
/// watermark, or inside or before a closed session of their key.
const SESSION_VIEWS: &[(&str, u64)] = &[
    ("session", 2_000),
    ("session_closed", 1_000),
    ("session_funnel", 2_000),
    ("session_bounded", 2_000),
    ("session_bounded_closed", 1_000),
];

/// The view whose late events a view's oracle leaves out: its own, or its input's.
fn late_set_of(view: &str) -> &str {
    match view {
        "rollup" => "tumble",
        other => other,
    }
}

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

/// One request: its NDJSON body and the (event id, event time ms) of each event in it.
struct Request {
    body: String,
    events: Vec<(String, u64)>,
}

/// Requests of NDJSON events: time runs forward with disorder of up to 8 s (beyond the 5 s
/// watermark delay), and about one event in ten repeats an earlier event (a client retry),
/// which dedup must drop.
fn stream(seed: u64, requests: usize) -> Vec<Request> {
    let mut rng = Rng(seed);
    let mut sent: Vec<(String, (String, u64))> = Vec::new();
    let mut next_id = 0;
    (0..requests)
        .map(|r| {
            let lines: Vec<(String, (String, u64))> = (0..1 + rng.below(40))
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
                    let line = (event, (format!("{seed}-{next_id}"), ts_ms));
                    sent.push(line.clone());
                    line
                })
                .collect();
            Request {
                body: lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join("\n"),
                events: lines.into_iter().map(|(_, e)| e).collect(),
            }
        })
        .collect()
}

/// The events that must be late, computed from the stream alone, and the final watermark (ms):
/// the log holds each request's new events as one entry, in order; an event is late when its
/// time is behind the watermark (largest time so far less 5 s) reached before its entry.
fn expected_late(
    requests: &[Request],
    allowance_ms: u64,
) -> (std::collections::BTreeSet<String>, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut watermark: Option<u64> = None;
    let mut late = std::collections::BTreeSet::new();
    for request in requests {
        let stored: Vec<&(String, u64)> = request
            .events
            .iter()
            .filter(|(id, _)| seen.insert(id.clone()))
            .collect();
        for (id, ts) in &stored {
            let behind = match allowance_ms {
                0 => watermark.is_some_and(|w| *ts < w),
                allowance => watermark.is_some_and(|w| *ts + allowance <= w),
            };
            if behind {
                late.insert(id.clone());
            }
        }
        if let Some(newest) = stored.iter().map(|(_, ts)| *ts).max() {
            watermark = Some(watermark.map_or(newest - 5_000, |w| w.max(newest - 5_000)));
        }
    }
    (late, watermark.expect("the stream has events"))
}

/// The event ids each view recorded as late; each at most once.
async fn late_events(
    client: &tokio_postgres::Client,
) -> std::collections::HashMap<String, std::collections::BTreeSet<String>> {
    let mut late: std::collections::HashMap<String, std::collections::BTreeSet<String>> =
        std::collections::HashMap::new();
    for row in client
        .query("SELECT view, payload FROM weir.late_events", &[])
        .await
        .unwrap()
    {
        let payload: serde_json::Value = serde_json::from_str(row.get::<_, &str>(1)).unwrap();
        let id = payload["event_id"].as_str().unwrap().to_string();
        let view: String = row.get(0);
        assert!(
            late.entry(view.clone()).or_default().insert(id.clone()),
            "late event {id} recorded twice for {view}"
        );
    }
    late
}

async fn run_seed(seed: u64) {
    // A state cache far smaller than the views' state: epochs keep reading states back from
    // RocksDB, which must change nothing.
    let mut server = TestServer::start_configured(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        &[],
        "view_state_cache_bytes = 4096\n",
    );
    let client = server.client().await;
    client.batch_execute(SOURCE).await.unwrap();
    let requests = stream(seed, 120);
    // Half the stream is in the log before the views exist (backfill), half arrives live.
    let (before, live) = requests.split_at(60);
    let http = reqwest::Client::new();
    let post = |server: &TestServer, request: &Request| {
        http.post(format!("http://{}/api/events/events", server.http))
            .header("content-type", "application/x-ndjson")
            .body(request.body.clone())
            .send()
    };
    for request in before {
        assert_eq!(post(&server, request).await.unwrap().status(), 202);
    }
    for (name, query, _) in VIEWS {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .unwrap();
    }
    let mut rng = Rng(seed ^ 0x5eed);
    for request in live {
        assert_eq!(post(&server, request).await.unwrap().status(), 202);
        // Now and then the server dies with views mid-epoch; nothing acknowledged may be lost
        // or counted twice.
        if rng.below(20) == 0 {
            server.kill_and_restart();
        }
    }
    server.kill_and_restart();
    let client = server.client().await;
    client.batch_execute("FLUSH").await.unwrap();
    // States were read back from RocksDB (after each restart, and past the tiny cache).
    let evicted: i64 = client
        .query_one(
            "SELECT count(*) FROM weir.views WHERE cached_groups < state_groups",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(evicted > 0, "seed {seed}: no view had states out of memory");
    let late = late_events(&client).await;
    let (expected, watermark) = expected_late(&requests, 0);
    // A SESSION view sets aside every event a gap behind the watermark, and of those behind
    // it, the ones inside or before a closed session of their key.
    let empty = std::collections::BTreeSet::new();
    for &(name, gap_ms) in SESSION_VIEWS {
        let (session_late, _) = expected_late(&requests, gap_ms);
        let recorded = late.get(name).unwrap_or(&empty);
        assert!(
            recorded.is_superset(&session_late) && recorded.is_subset(&expected),
            "seed {seed}: late events of {name}: {} recorded, {} a gap behind, {} behind",
            recorded.len(),
            session_late.len(),
            expected.len()
        );
    }
    assert!(
        !expected.is_empty(),
        "seed {seed}: the stream has no late event to check"
    );
    let watermark = chrono::DateTime::from_timestamp_millis(watermark as i64).unwrap();
    let watermark = format!(
        "'{}'::timestamptz",
        watermark.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    for name in [
        "tumble",
        "hop",
        "hop_region",
        "hop_approx",
        "closed",
        "distinct",
        "approx",
        "retention",
    ] {
        assert_eq!(
            late.get(name),
            Some(&expected),
            "seed {seed}: late events of {name}"
        );
    }
    for (name, _, batch) in VIEWS {
        let view = rows(&client, &format!("SELECT * FROM {name}")).await;
        // The oracle counts the accepted events the view did not set aside as late.
        let batch = match late.get(late_set_of(name)) {
            Some(ids) => batch.replacen(
                "FROM events",
                &format!(
                    "FROM (SELECT * FROM events WHERE event_id NOT IN ({})) AS events",
                    ids.iter()
                        .map(|id| format!("'{id}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                1,
            ),
            None => batch.to_string(),
        }
        .replace("{watermark}", &watermark);
        let oracle = rows(&client, &batch).await;
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

/// An idle source's watermark follows the wall clock after `idle_timeout`, so a window on a
/// quiet stream still closes: its `EMIT ON WINDOW CLOSE` row appears with no later event.
#[tokio::test]
async fn idle_source_watermark_follows_the_clock_and_closes_windows() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE SOURCE quiet (id BIGINT, ts TIMESTAMPTZ NOT NULL, \
             WATERMARK FOR ts AS ts - INTERVAL '1 second') \
             WITH (connector = 'http', idle_timeout = '300 milliseconds'); \
             CREATE MATERIALIZED VIEW per_second AS SELECT window_start, count(*) AS n \
             FROM TUMBLE(quiet, ts, INTERVAL '1 second') GROUP BY window_start \
             EMIT ON WINDOW CLOSE; \
             CREATE MATERIALIZED VIEW quiet_sessions AS SELECT window_start, window_end, \
             count(*) AS n FROM SESSION(quiet, ts, INTERVAL '1 second') \
             GROUP BY window_start, window_end EMIT ON WINDOW CLOSE",
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    client
        .execute("INSERT INTO quiet VALUES (1, $1), (2, $1)", &[&now])
        .await
        .unwrap();
    client.batch_execute("FLUSH").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Tumble windows and sessions alike.
    for view in ["per_second", "quiet_sessions"] {
        loop {
            let rows = client
                .query(&format!("SELECT n FROM {view}"), &[])
                .await
                .unwrap();
            if let Some(row) = rows.first() {
                assert_eq!(row.get::<_, i64>(0), 2, "{view}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{view}: the window never closed on the idle source"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let watermark: Option<chrono::DateTime<chrono::Utc>> = client
        .query_one(
            "SELECT watermark FROM weir.views WHERE name = 'per_second'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        watermark.unwrap() > now,
        "the watermark moved past the last event"
    );
}
