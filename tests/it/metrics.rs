//! `GET /metrics` moves with what happens: an ingest raises the source's counters and its
//! latency histogram, refused events and unreadable bodies the dead-letter count, a late or
//! far-ahead event the view's late count by reason, a commit the view's watermark and its
//! ingest-to-visible histogram; a view's lag returns to zero after `FLUSH`, statements are
//! timed by kind.

use super::server::{TestServer, metric_sample as sample, scrape_metrics as scrape};

async fn post(server: &TestServer, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{}/api/events/clicks", server.http))
        .header("content-type", "application/x-ndjson")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn metrics_move_with_ingest_late_events_lag_and_queries() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE SOURCE clicks (id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, \
             WATERMARK FOR ts AS ts - INTERVAL '1 second') \
             WITH (connector = 'http', dedup_key = 'id'); \
             CREATE MATERIALIZED VIEW per_minute AS SELECT window_start, count(*) AS n \
             FROM TUMBLE(clicks, ts, INTERVAL '1 minute') GROUP BY window_start, window_end",
        )
        .await
        .unwrap();
    let source = "{source=\"clicks\"}";

    // Two good events, one repeat, one refused.
    let body = "{\"id\":\"a\",\"ts\":\"2026-01-01T00:00:10Z\"}\n\
                {\"id\":\"b\",\"ts\":\"2026-01-01T00:05:00Z\"}\n\
                {\"id\":\"a\",\"ts\":\"2026-01-01T00:00:10Z\"}\n\
                {\"id\":\"c\",\"ts\":\"not a time\"}\n";
    assert_eq!(post(&server, body).await, 400);
    client.batch_execute("FLUSH").await.unwrap();
    let text = scrape(&server).await;
    assert_eq!(
        sample(&text, &format!("weir_source_events_total{source}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("weir_source_duplicates_total{source}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_source_rejected_total{source}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_source_bytes_total{source}")),
        Some(body.len() as f64)
    );
    assert_eq!(
        sample(&text, &format!("weir_ingest_request_seconds_count{source}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_source_dead_letters_total{source}")),
        Some(1.0),
        "{text}"
    );
    let view = "{view=\"per_minute\",source=\"clicks\"}";
    assert_eq!(
        sample(&text, &format!("weir_view_lag_events{view}")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("weir_view_lag_seconds{view}")),
        Some(0.0)
    );
    assert!(sample(&text, &format!("weir_view_watermark_delay_seconds{view}")).is_some());
    // The newest event less the watermark's one second of delay, in event time.
    let newest = "2026-01-01T00:05:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    assert_eq!(
        sample(&text, &format!("weir_view_watermark_seconds{view}")),
        Some(newest.timestamp() as f64 - 1.0),
        "{text}"
    );
    // The entry holding the two events became visible once: one observation.
    assert_eq!(
        sample(
            &text,
            "weir_view_visible_seconds_count{view=\"per_minute\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "weir_view_visible_seconds_sum{view=\"per_minute\"}")
            .is_some_and(|s| (0.0..60.0).contains(&s))
    );
    // The newest event (2026-01-01T00:05:00Z) is older than now by about the time since then.
    let freshness = sample(&text, &format!("weir_view_freshness_seconds{view}")).unwrap();
    let since = (chrono::Utc::now()
        - "2026-01-01T00:05:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap())
    .num_seconds() as f64;
    assert!((freshness - since).abs() < 60.0, "{freshness} vs {since}");
    assert!(
        sample(
            &text,
            "weir_view_state_cache_lookups_total{view=\"per_minute\"}"
        )
        .is_some_and(|n| n >= 2.0)
    );
    assert!(
        sample(
            &text,
            "weir_view_epoch_commit_seconds_count{view=\"per_minute\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    let late = |text: &str, reason: &str| {
        sample(
            text,
            &format!("weir_view_late_events_total{{view=\"per_minute\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(late(&text, "behind_watermark"), None, "nothing late yet");

    // An event behind the watermark (00:04:59) is late; one a century ahead of its arrival
    // is set aside too; a body that is not JSON is a dead letter.
    assert_eq!(
        post(
            &server,
            "{\"id\":\"d\",\"ts\":\"2026-01-01T00:01:00Z\"}\n\
             {\"id\":\"e\",\"ts\":\"2126-01-01T00:00:00Z\"}\n"
        )
        .await,
        202
    );
    assert_eq!(post(&server, "{not json").await, 400);
    client.batch_execute("FLUSH").await.unwrap();
    let text = scrape(&server).await;
    assert_eq!(late(&text, "behind_watermark"), Some(1.0), "{text}");
    assert_eq!(late(&text, "ahead_of_arrival"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, &format!("weir_source_dead_letters_total{source}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("weir_source_events_total{source}")),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_view_lag_events{view}")),
        Some(0.0)
    );

    // Statements are timed by kind, a query once, when its last row is out; storage reports
    // its size.
    let queries = |text: &str| sample(text, "weir_query_seconds_count{kind=\"query\"}");
    let before = queries(&text).unwrap_or(0.0);
    let rows = client
        .query(
            "SELECT * FROM clicks CROSS JOIN generate_series(1, 5000)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 20_000);
    let text = scrape(&server).await;
    assert_eq!(queries(&text), Some(before + 1.0), "{text}");
    assert!(sample(&text, "weir_query_seconds_count{kind=\"flush\"}").is_some_and(|n| n >= 2.0));
    assert!(sample(&text, "weir_query_seconds_count{kind=\"ddl\"}").is_some_and(|n| n >= 2.0));
    assert!(sample(&text, "weir_rocksdb_live_data_bytes").is_some());
    assert!(sample(&text, "weir_rocksdb_pending_compaction_bytes").is_some());
    assert!(sample(&text, "weir_rocksdb_running_background_jobs").is_some());
}
