//! Kafka sources against a real broker process (`tansu`, see `broker.rs`): every partition
//! consumed exactly once across a kill -9, metadata columns, malformed messages as dead
//! letters, a broker outage shown and recovered from, and windowed views over a Kafka source
//! with per-partition watermarks, checked against DataFusion's batch result.

mod broker;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use broker::Broker;

use crate::server::{TestServer, scrape_metrics, sorted_rows, wait_for};

const TOPIC_PARTITIONS: u32 = 4;

/// The source's unresolved error, or 'none'.
fn last_error_of(source: &str) -> String {
    format!("SELECT coalesce(last_error, 'none') FROM weir.sources WHERE name = '{source}'")
}

async fn wait_for_count(client: &tokio_postgres::Client, sql: &str, expected: usize) {
    let expected = expected.to_string();
    wait_for(client, sql, Duration::from_secs(90), |v| v == expected).await;
}

fn create_source(
    name: &str,
    topic: &str,
    broker: &Broker,
    extra_columns: &str,
    options: &str,
) -> String {
    format!(
        "CREATE SOURCE {name} (event_id VARCHAR NOT NULL, user_id VARCHAR, ts TIMESTAMPTZ, \
         amount DOUBLE{extra_columns}, WATERMARK FOR ts AS ts - INTERVAL '5 seconds') \
         WITH (connector = 'kafka', topic = '{topic}', properties.bootstrap.server = '{}', \
         scan.startup.mode = 'earliest', properties.group.id = 'weir-{name}'{options}) FORMAT JSON",
        broker.addr
    )
}

/// Event `i` as (partition, key, JSON payload); every `malformed_every`-th is not JSON.
fn event(
    i: usize,
    partition: i32,
    ts_ms: i64,
    malformed_every: usize,
) -> (i32, Option<String>, String) {
    let id = format!("e-{i}");
    let payload = if malformed_every > 0 && i % malformed_every == malformed_every - 1 {
        format!("{{\"event_id\": \"{id}\", broken")
    } else {
        format!(
            "{{\"event_id\":\"{id}\",\"user_id\":\"u{}\",\"ts\":{ts_ms},\"amount\":{}.5}}",
            i % 37,
            i % 100
        )
    };
    (partition, Some(id), payload)
}

async fn send(broker: &Broker, topic: &str, messages: Vec<(i32, Option<String>, String)>) {
    send_to(broker.addr, topic.to_string(), messages).await;
}

async fn send_to(addr: SocketAddr, topic: String, messages: Vec<(i32, Option<String>, String)>) {
    let producer = broker::producer(addr);
    tokio::task::spawn_blocking(move || {
        let borrowed: Vec<(i32, Option<&str>, String)> = messages
            .iter()
            .map(|(p, k, v)| (*p, k.as_deref(), v.clone()))
            .collect();
        producer.send_all(&topic, &borrowed);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partition_is_consumed_exactly_once_across_kill_9() {
    let broker = Broker::start().await;
    broker.create_topic("user_events", TOPIC_PARTITIONS);
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(&create_source(
            "clicks",
            "user_events",
            &broker,
            ", _partition INT, _offset BIGINT, _kafka_timestamp TIMESTAMPTZ, _key VARCHAR",
            "",
        ))
        .await
        .unwrap();
    let base = 1_700_000_000_000i64;
    let batch = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|i| event(i, (i % 4) as i32, base + i as i64, 50))
            .collect()
    };
    let valid = |n: usize| n - n / 50;
    send(&broker, "user_events", batch(0..2000)).await;
    wait_for_count(&client, "SELECT count(*) FROM clicks", valid(2000)).await;

    // Metadata columns come from each message: its partition, offset, key and timestamp.
    let wrong = sorted_rows(
        &client,
        "SELECT count(*) FROM clicks WHERE _partition <> CAST(substr(event_id, 3) AS INT) % 4 \
         OR _key <> event_id OR _kafka_timestamp IS NULL OR _offset < 0",
    )
    .await;
    assert_eq!(wrong, ["0"]);
    let offsets = sorted_rows(
        &client,
        "SELECT count(DISTINCT (_partition, _offset)) = count(*) FROM clicks",
    )
    .await;
    assert_eq!(offsets, ["t"]);
    // Malformed messages are dead letters with their place in the topic; consumption went on.
    let letters = sorted_rows(
        &client,
        "SELECT topic, count(*), count(DISTINCT (kafka_partition, kafka_offset)), \
         bool_and(reason LIKE 'malformed JSON%') FROM weir.dead_letters \
         WHERE source = 'clicks' GROUP BY topic",
    )
    .await;
    assert_eq!(letters, ["user_events | 40 | 40 | t"]);

    // kill -9 as soon as the next messages start to arrive, while they are still sent.
    let sending = tokio::spawn(send_to(
        broker.addr,
        "user_events".into(),
        batch(2000..5000),
    ));
    wait_for(
        &client,
        "SELECT count(*) FROM clicks",
        Duration::from_secs(60),
        |v| v.parse::<usize>().unwrap() > valid(2000),
    )
    .await;
    server.kill();
    sending.await.unwrap();
    let dir = server.dir.clone();
    drop(server);

    // With the failpoints compiled in (as CI builds), a server that dies just before its first
    // append commits: the entry and its offsets are lost together, never one without the other.
    if cfg!(feature = "failpoints") {
        let mut armed = TestServer::start_with_env(
            dir.clone(),
            &[("WEIR_FAILPOINTS", "source_log::before_commit")],
        );
        send(&broker, "user_events", batch(5000..8000)).await;
        let exit = armed.wait_exit(Duration::from_secs(60));
        assert!(
            exit.is_some_and(|s| !s.success()),
            "the armed server aborted"
        );
    } else {
        send(&broker, "user_events", batch(5000..8000)).await;
    }

    let server = TestServer::start_in(dir);
    let client = server.client().await;
    wait_for_count(&client, "SELECT count(*) FROM clicks", valid(8000)).await;
    let distinct = sorted_rows(&client, "SELECT count(DISTINCT event_id) FROM clicks").await;
    assert_eq!(
        distinct,
        [valid(8000).to_string()],
        "no message appended twice"
    );
    // Every partition caught up with the broker: lag 0.
    wait_for(
        &client,
        "SELECT count(*) || ' ' || sum(lag) || ' ' || sum(next_offset) FROM weir.kafka_partitions \
         WHERE source = 'clicks'",
        Duration::from_secs(30),
        |v| v == "4 0 8000",
    )
    .await;
    let letters = sorted_rows(
        &client,
        "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)) FROM weir.dead_letters \
         WHERE source = 'clicks'",
    )
    .await;
    assert_eq!(letters, ["160 | 160"], "each refused message recorded once");
    let sources = sorted_rows(
        &client,
        "SELECT connector, topic, events FROM weir.sources WHERE name = 'clicks'",
    )
    .await;
    assert_eq!(sources, [format!("kafka | user_events | {}", valid(8000))]);
    // Offsets are committed to the consumer group too, for monitoring tools.
    let addr = broker.addr;
    let committed = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let offsets = broker::committed_offsets(addr, "weir-clicks", "user_events", 4);
            if offsets.iter().sum::<i64>() == 8000 || Instant::now() > deadline {
                return offsets;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(committed, [2000, 2000, 2000, 2000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_is_shown_and_recovered_from_without_loss() {
    let broker = Broker::start().await;
    broker.create_topic("outage", 2);
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(&create_source("s", "outage", &broker, "", ""))
        .await
        .unwrap();
    let base = 1_700_000_000_000i64;
    let batch = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|i| event(i, (i % 2) as i32, base + i as i64, 0))
            .collect()
    };
    send(&broker, "outage", batch(0..500)).await;
    wait_for_count(&client, "SELECT count(*) FROM s", 500).await;

    broker.proxy.cut();
    // The consumer cannot reach the broker: weir.sources and /metrics say so.
    let error = wait_for(&client, &last_error_of("s"), Duration::from_secs(30), |v| {
        v != "none"
    })
    .await;
    assert!(!error.is_empty());
    let metrics = scrape_metrics(&server).await;
    assert!(
        metrics.contains("weir_kafka_source_up{source=\"s\"} 0"),
        "{metrics}"
    );

    broker.proxy.restore().await;
    send(&broker, "outage", batch(500..1500)).await;
    wait_for_count(&client, "SELECT count(*) FROM s", 1500).await;
    let distinct = sorted_rows(&client, "SELECT count(DISTINCT event_id) FROM s").await;
    assert_eq!(distinct, ["1500"]);
    wait_for(&client, &last_error_of("s"), Duration::from_secs(30), |v| {
        v == "none"
    })
    .await;
    let metrics = scrape_metrics(&server).await;
    assert!(
        metrics.contains("weir_kafka_source_up{source=\"s\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_source_events_total{source=\"s\"} 1500"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_kafka_keeps_a_watermark_per_partition_and_equals_the_batch_query() {
    let broker = Broker::start().await;
    broker.create_topic("partitioned", TOPIC_PARTITIONS);
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(&create_source("p", "partitioned", &broker, "", ""))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW per_10s AS SELECT window_start, count(*) AS n, \
             sum(amount) AS total, count(DISTINCT user_id) AS users \
             FROM TUMBLE(p, ts, INTERVAL '10 seconds') GROUP BY window_start, window_end",
        )
        .await
        .unwrap();
    // Partition 3 runs 30 s behind the others, far past the 5 s watermark delay: against one
    // watermark for the whole topic its events would all be late. Its first events come
    // first, so the view knows it before the others run ahead.
    let base = 1_700_000_000_000i64;
    let mut i = 0usize;
    let mut total = 0usize;
    let mut round = |rounds: std::ops::Range<usize>, partitions: &[i32]| {
        let mut messages = Vec::new();
        for r in rounds {
            for &partition in partitions {
                for k in 0..25 {
                    let lag = if partition == 3 { 30_000 } else { 0 };
                    // Disorder within the watermark delay, per partition.
                    let jitter = ((k * 7919) % 3000) as i64;
                    let ts = base + r as i64 * 1000 - lag - jitter;
                    messages.push(event(i, partition, ts, 0));
                    i += 1;
                }
            }
        }
        total += messages.len();
        (messages, total)
    };
    let (first, expected) = round(0..1, &[3]);
    send(&broker, "partitioned", first).await;
    wait_for_count(&client, "SELECT count(*) FROM p", expected).await;
    let (second, _) = round(1..30, &[0, 1, 2, 3]);
    send(&broker, "partitioned", second).await;
    let (third, expected) = round(30..60, &[0, 1, 2, 3]);
    let sending = send(&broker, "partitioned", third);
    let restart_midway = async {
        wait_for(
            &client,
            "SELECT count(*) FROM p",
            Duration::from_secs(60),
            |v| v.parse::<usize>().unwrap() > expected / 2,
        )
        .await;
    };
    tokio::join!(sending, restart_midway);
    // The partitions' clocks are committed with the view: a restart keeps them.
    server.kill_and_restart();
    let client = server.client().await;
    wait_for_count(&client, "SELECT count(*) FROM p", expected).await;
    client.batch_execute("FLUSH").await.unwrap();

    let late = sorted_rows(&client, "SELECT count(*) FROM weir.late_events").await;
    assert_eq!(late, ["0"], "the lagging partition held the watermark back");
    let watermark = sorted_rows(
        &client,
        "SELECT (SELECT max(ts) FROM p) - watermark > INTERVAL '30 seconds' FROM weir.views \
         WHERE name = 'per_10s'",
    )
    .await;
    assert_eq!(
        watermark,
        ["t"],
        "the watermark follows the slowest partition"
    );
    let view = sorted_rows(&client, "SELECT window_start, n, total, users FROM per_10s").await;
    let batch = sorted_rows(
        &client,
        "SELECT date_bin(INTERVAL '10 seconds', ts) AS w, count(*), sum(amount), \
         count(DISTINCT user_id) FROM p GROUP BY 1",
    )
    .await;
    assert!(!view.is_empty());
    assert_eq!(view, batch, "the view equals DataFusion's batch result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_that_appear_while_running_are_consumed() {
    let broker = Broker::start().await;
    let server = TestServer::start();
    let client = server.client().await;
    // The topic does not exist yet: the source waits for it, saying why.
    client
        .batch_execute(&create_source("later", "created_later", &broker, "", ""))
        .await
        .unwrap();
    let error = wait_for(
        &client,
        &last_error_of("later"),
        Duration::from_secs(30),
        |v| v != "none",
    )
    .await;
    assert!(error.contains("created_later"), "{error}");
    broker.create_topic("created_later", 3);
    let base = 1_700_000_000_000i64;
    let messages: Vec<_> = (0..300)
        .map(|i| event(i, (i % 3) as i32, base + i as i64, 0))
        .collect();
    send(&broker, "created_later", messages).await;
    wait_for_count(&client, "SELECT count(*) FROM later", 300).await;
    let partitions = sorted_rows(
        &client,
        "SELECT partition, next_offset FROM weir.kafka_partitions WHERE source = 'later'",
    )
    .await;
    assert_eq!(partitions, ["0 | 100", "1 | 100", "2 | 100"]);
    // HTTP does not feed a Kafka source.
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/events/later", server.http))
        .body("{\"event_id\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}
