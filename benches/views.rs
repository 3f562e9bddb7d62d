//! View maintenance benchmark: events/s from the source log through a materialized view, for
//! the shared workload's tumble and hop queries (`../shared/bench/`), beside DataFusion's time
//! for the same query in batch over the same events, measured in the same run on the same
//! server. The source is filled over HTTP first (not measured); then each view is created over
//! it and timed until `FLUSH` returns, i.e. until it has processed every event (the view's
//! backfill path is the same epoch loop as live maintenance).
//!
//! Then freshness: p50/p99 time from a POST's 202 to its event being visible in a view while
//! 100,000 events a second arrive.
//!
//! `cargo bench --bench views -- [--events N] [--events-file F] [--queries a,b] [--users N]`
//! (`--users`: user ids drawn from N users instead of the workload's 100,000, for many
//! concurrent sessions)

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{Server, events};

/// The shared workload's queries (`../shared/bench/README.md`), and each one's batch form.
const QUERIES: &[(&str, &str, &str)] = &[
    (
        "tumble_count",
        "SELECT window_start, window_end, event_name, region, count(*) AS n, sum(amount) AS total, \
         count(DISTINCT user_id) AS users \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') GROUP BY window_start, window_end, event_name, region",
        "SELECT date_bin(INTERVAL '1 minute', ts) AS window_start, event_name, region, count(*), \
         sum(amount), count(DISTINCT user_id) FROM events GROUP BY 1, 2, 3",
    ),
    // Issue 4's view: every kind of aggregate state, sketches included.
    (
        "purchases_per_min",
        "SELECT window_start, window_end, region, count(*) AS orders, sum(amount) AS revenue, \
         avg(amount) AS avg_amount, min(amount) AS min_amount, max(amount) AS max_amount, \
         count(DISTINCT user_id) AS buyers, approx_count_distinct(user_id) AS buyers_approx, \
         approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY amount) AS p95_amount \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') WHERE event_name = 'purchase' \
         GROUP BY window_start, window_end, region",
        "SELECT date_bin(INTERVAL '1 minute', ts) AS window_start, region, count(*), \
         sum(amount), avg(amount), min(amount), max(amount), count(DISTINCT user_id), \
         approx_distinct(user_id), approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY amount) \
         FROM events WHERE event_name = 'purchase' GROUP BY 1, 2",
    ),
    (
        "hop_agg",
        "SELECT window_start, window_end, event_name, region, count(*) AS n, sum(amount) AS total, \
         max(amount) AS top FROM HOP(events, ts, INTERVAL '1 minute', INTERVAL '5 minutes') \
         GROUP BY window_start, window_end, event_name, region",
        "SELECT date_bin(INTERVAL '1 minute', ts) - d AS window_start, event_name, region, \
         count(*), sum(amount), max(amount) FROM events CROSS JOIN (VALUES (INTERVAL '0 minutes'), \
         (INTERVAL '1 minute'), (INTERVAL '2 minutes'), (INTERVAL '3 minutes'), \
         (INTERVAL '4 minutes')) AS shifts(d) GROUP BY 1, 2, 3",
    ),
    // Sessions per user, 30 minutes of inactivity apart; the batch form numbers them by gaps
    // and islands.
    (
        "session_count",
        "SELECT window_start, window_end, user_id, count(*) AS n, sum(amount) AS total \
         FROM SESSION(events, ts, INTERVAL '30 minutes') GROUP BY window_start, window_end, user_id",
        "SELECT user_id, session, count(*), sum(amount) FROM \
         (SELECT user_id, amount, sum(CASE WHEN previous IS NULL \
          OR ts - previous >= INTERVAL '30 minutes' THEN 1 ELSE 0 END) \
          OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session FROM \
         (SELECT user_id, amount, ts, lag(ts) OVER (PARTITION BY user_id ORDER BY ts) AS previous \
          FROM events)) GROUP BY 1, 2",
    ),
    // The funnel step each session reached: page view, add to cart, checkout, purchase.
    (
        "session_funnel",
        "SELECT window_start, window_end, user_id, window_funnel(INTERVAL '30 minutes', ts, \
         event_name = 'page_view', event_name = 'add_to_cart', event_name = 'checkout_start', \
         event_name = 'purchase') AS step \
         FROM SESSION(events, ts, INTERVAL '30 minutes') GROUP BY window_start, window_end, user_id",
        "SELECT user_id, session, window_funnel(INTERVAL '30 minutes', ts, \
         event_name = 'page_view', event_name = 'add_to_cart', event_name = 'checkout_start', \
         event_name = 'purchase') FROM \
         (SELECT user_id, ts, event_name, sum(CASE WHEN previous IS NULL \
          OR ts - previous >= INTERVAL '30 minutes' THEN 1 ELSE 0 END) \
          OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session FROM \
         (SELECT user_id, ts, event_name, lag(ts) OVER (PARTITION BY user_id ORDER BY ts) \
          AS previous FROM events)) GROUP BY 1, 2",
    ),
];

fn main() {
    let mut events_count = 1_000_000;
    let mut events_file = None;
    let mut cache_mb: u64 = 64;
    let mut only: Option<Vec<String>> = None;
    let mut users: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events_count = support::flag_value(&mut args, "--events N"),
            "--events-file" => events_file = args.next(),
            "--state-cache-mb" => cache_mb = support::flag_value(&mut args, "--state-cache-mb N"),
            "--users" => users = Some(support::flag_value(&mut args, "--users N")),
            "--queries" => {
                only = args
                    .next()
                    .map(|list| list.split(',').map(str::to_string).collect());
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let queries: Vec<&(&str, &str, &str)> = QUERIES
        .iter()
        .filter(|(name, _, _)| {
            only.as_ref()
                .is_none_or(|only| only.iter().any(|o| o == name))
        })
        .collect();
    let lines = match &events_file {
        Some(path) => events::read(path.as_ref()),
        None => match users {
            Some(users) => events::generate_among(0, events_count, 42, false, users),
            None => events::generate(events_count, 42, false),
        },
    };
    let total = lines.len();
    let bodies: Vec<Bytes> = lines
        .chunks(1000)
        .map(|c| Bytes::from(c.concat()))
        .collect();
    drop(lines);

    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The source is filled and the batch queries run on a first server; the views run on a
    // second, so its peak memory is the views' own.
    let batch = runtime.block_on(async {
        let server = Server::start(&data);
        let sql = server.client().await;
        sql.batch_execute(events::CREATE_SOURCE)
            .await
            .expect("create source");
        eprintln!("filling the source with {total} events over HTTP ...");
        let http = reqwest::Client::new();
        let url = format!("http://{}/api/events/events", server.http);
        for (i, body) in bodies.iter().enumerate() {
            let response = http
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 202);
            if i % 500 == 0 {
                eprintln!("  {} events", i * 1000);
            }
        }
        let mut batch = Vec::new();
        for (name, _, query) in &queries {
            eprintln!("{name}: the batch query ...");
            let started = Instant::now();
            let rows = sql
                .query(&format!("SELECT count(*) FROM ({query}) AS q"), &[])
                .await
                .expect("batch query")[0]
                .get::<_, i64>(0);
            batch.push((started.elapsed(), rows));
        }
        batch
    });
    let server = Server::start_configured(
        &data,
        &format!("view_state_cache_bytes = {}\n", cache_mb << 20),
    );
    runtime.block_on(async {
        let sql = server.client().await;
        let idle_rss = server.rss();
        println!("\n## View maintenance: {total} events, 2 cores, state cache {cache_mb} MB a view");
        println!("| view | events/s through the view | server cores busy | events/s per core | DataFusion batch, s | streaming/batch time | view rows |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for ((name, view, _), (batch_time, batch_rows)) in queries.iter().zip(batch) {
            eprintln!("{name}: the view ...");
            let cpu = server.cpu_time();
            let started = Instant::now();
            sql.batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {view}"))
                .await
                .expect("create view");
            sql.batch_execute("FLUSH").await.expect("flush");
            let streaming = started.elapsed();
            let cores = (server.cpu_time() - cpu).as_secs_f64() / streaming.as_secs_f64();
            let view_rows: i64 = sql
                .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .await
                .expect("count view")
                .get(0);
            assert_eq!(view_rows, batch_rows, "{name}: the view and its batch query agree");
            let rate = total as f64 / streaming.as_secs_f64();
            println!(
                "| {name} | {rate:.0} | {cores:.2} | {:.0} | {:.2} | {:.2} | {view_rows} |",
                rate / cores.max(f64::EPSILON),
                batch_time.as_secs_f64(),
                ratio(streaming, batch_time),
            );
        }
        println!(
            "\nserver RSS: {:.0} MB idle after start, {:.0} MB peak through the {} views",
            idle_rss as f64 / 1e6,
            server.peak_rss() as f64 / 1e6,
            queries.len()
        );
        freshness(&server, total).await;
    });
}

/// Requests per second of the freshness run (1,000 events each: 100,000 events/s).
const FRESHNESS_RATE: u64 = 100;
const FRESHNESS_SECONDS: u64 = 10;
/// Every this many requests carries a probe event.
const PROBE_EVERY: u64 = 10;

/// Freshness: time from a POST's 202 to its event being visible in a view, while events arrive
/// at 100,000 a second. Every tenth request carries a probe event with a region of its own; one
/// poller queries the view for every probe every 2 ms (a poller per probe would load the
/// server with its own queries), and a probe's latency runs from its 202 until the poll that
/// first sees it. The events go
/// on from the `first`-th of the stream the views were built over, in event time too, so the
/// windowed views keep up with them as live views do (older events would all be late).
async fn freshness(server: &Server, first: usize) {
    let events = (FRESHNESS_RATE * FRESHNESS_SECONDS * 1000) as usize;
    let bodies: Vec<Bytes> = events::generate_from(first, events, 7, false)
        .chunks(1000)
        .map(|c| Bytes::from(c.concat()))
        .collect();
    let sql = server.client().await;
    sql.batch_execute(
        "CREATE MATERIALIZED VIEW fresh AS SELECT region, count(*) AS n FROM events GROUP BY region",
    )
    .await
    .expect("create view");
    sql.batch_execute("FLUSH").await.expect("flush");
    eprintln!(
        "freshness: {} events/s for {FRESHNESS_SECONDS} s ...",
        FRESHNESS_RATE * 1000
    );
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/events/events", server.http);
    let poller = server.client().await;
    let probes = (FRESHNESS_RATE * FRESHNESS_SECONDS / PROBE_EVERY) as usize;
    let acknowledged = Arc::new(Mutex::new(HashMap::<String, Instant>::new()));
    let latencies = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut seen = HashMap::new();
            while seen.len() < probes {
                let rows = poller
                    .query("SELECT region FROM fresh WHERE region LIKE 'probe-%'", &[])
                    .await
                    .expect("probe query");
                let now = Instant::now();
                {
                    let acknowledged = acknowledged.lock().expect("probe times");
                    for row in rows {
                        let region: String = row.get(0);
                        // Seen before its 202 was read: as fresh as can be measured.
                        let latency = acknowledged
                            .get(&region)
                            .map_or(Duration::ZERO, |at| now.saturating_duration_since(*at));
                        seen.entry(region).or_insert(latency);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            seen.into_values().collect::<Vec<_>>()
        })
    };
    let mut ticks = tokio::time::interval(Duration::from_millis(1000 / FRESHNESS_RATE));
    let mut requests = Vec::new();
    let cpu = server.cpu_time();
    let started = Instant::now();
    for i in 0..FRESHNESS_RATE * FRESHNESS_SECONDS {
        ticks.tick().await;
        let mut body = bodies[i as usize].to_vec();
        let probe = (i % PROBE_EVERY == 0).then(|| format!("probe-{i}"));
        if let Some(region) = &probe {
            body.extend(
                format!(
                    "{{\"event_id\":\"{region}\",\"event_name\":\"probe\",\"user_id\":\"p\",\
                 \"ts\":\"{}\",\"amount\":1.0,\"region\":\"{region}\",\"device\":\"d\"}}\n",
                    events::time_of(first + i as usize * 1000)
                )
                .as_bytes(),
            );
        }
        // Open-loop: each request is sent on its tick whether or not earlier ones have been
        // answered, as independent clients would; one request at a time could not offer the
        // rate once a synced commit takes longer than the tick.
        let (http, url, acknowledged) = (http.clone(), url.clone(), acknowledged.clone());
        requests.push(tokio::spawn(async move {
            let response = http
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 202);
            if let Some(region) = probe {
                acknowledged
                    .lock()
                    .expect("probe times")
                    .entry(region)
                    .or_insert_with(Instant::now);
            }
        }));
    }
    for request in requests {
        request.await.expect("request");
    }
    let samples = latencies.await.expect("poller");
    let elapsed = started.elapsed();
    let cores = (server.cpu_time() - cpu).as_secs_f64() / elapsed.as_secs_f64();
    let latencies = support::Latencies::new(samples);
    println!(
        "\n## Freshness at {} events/s offered ({:.0} achieved), {} probes\n\
         | p50 | p99 | server cores busy |\n| ---: | ---: | ---: |\n| {} | {} | {cores:.2} |",
        FRESHNESS_RATE * 1000,
        (FRESHNESS_RATE * FRESHNESS_SECONDS * 1000) as f64 / elapsed.as_secs_f64(),
        probes,
        support::ms(latencies.percentile(50.0)),
        support::ms(latencies.percentile(99.0)),
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
}
