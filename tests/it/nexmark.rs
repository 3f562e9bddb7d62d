//! Nexmark sources: the generated streams have the reference generator's shape, are the same
//! on every run, resume exactly after a kill -9, and views over them equal DataFusion's batch
//! answer.

use std::time::Duration;

use crate::server::{TestServer, sorted_rows, wait_for};

/// A fixed start, so two sources (or two runs) generate the same stream.
const BASE_TIME_MS: u64 = 1_500_000_000_000;

fn bid_source(name: &str, events: u64, options: &str) -> String {
    format!(
        "CREATE SOURCE {name} (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, \
         url VARCHAR, date_time TIMESTAMP, extra VARCHAR, \
         WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
         WITH (connector = 'nexmark', nexmark.table.type = 'bid', nexmark.event.num = '{events}', \
         nexmark.base.time = '{BASE_TIME_MS}'{options})"
    )
}

/// Waits until `source` has generated all `events` (of every kind).
async fn wait_generated(client: &tokio_postgres::Client, source: &str, events: u64) {
    let sql = format!("SELECT messages_consumed FROM weir.sources WHERE name = '{source}'");
    let expected = events.to_string();
    wait_for(client, &sql, Duration::from_secs(60), |v| v == expected).await;
}

#[tokio::test]
async fn bid_streams_resume_exactly_after_a_kill_and_repeat_exactly() {
    const EVENTS: u64 = 50_000;
    const BIDS: &str = "46000"; // 46 of every 50 events
    let mut server = TestServer::start();
    let client = server.client().await;
    // Paced at 50,000 events a second, 500 to an entry: the kill lands mid-stream.
    client
        .batch_execute(&bid_source(
            "bid",
            EVENTS,
            ", nexmark.min.event.gap.in.ns = '20000', nexmark.max.chunk.size = '500'",
        ))
        .await
        .unwrap();
    let progress = "SELECT messages_consumed FROM weir.sources WHERE name = 'bid'";
    let midway = wait_for(&client, progress, Duration::from_secs(30), |v| {
        v.parse::<u64>().is_ok_and(|n| n > 0)
    })
    .await;
    assert!(midway.parse::<u64>().unwrap() < EVENTS, "killed mid-stream");
    server.kill_and_restart();
    let client = server.client().await;
    let resumed = sorted_rows(&client, progress).await.join("");
    assert!(
        resumed.parse::<u64>().unwrap() >= midway.parse::<u64>().unwrap(),
        "the position survives the kill: {midway} before, {resumed} after"
    );
    wait_generated(&client, "bid", EVENTS).await;
    // Every event once: each has its own time.
    assert_eq!(
        sorted_rows(
            &client,
            "SELECT count(*), count(DISTINCT date_time) FROM bid"
        )
        .await,
        [format!("{BIDS} | {BIDS}")]
    );

    // The same options generate the same stream, unpaced and in other chunks.
    client
        .batch_execute(&bid_source("bid_again", EVENTS, ""))
        .await
        .unwrap();
    wait_generated(&client, "bid_again", EVENTS).await;
    let columns = "auction, bidder, price, channel, url, date_time, extra";
    for (left, right) in [("bid", "bid_again"), ("bid_again", "bid")] {
        assert_eq!(
            sorted_rows(
                &client,
                &format!(
                    "SELECT count(*) FROM (SELECT {columns} FROM {left} EXCEPT ALL \
                     SELECT {columns} FROM {right}) AS d"
                ),
            )
            .await,
            ["0"],
            "{left} against {right}"
        );
    }
    // The reference shape: half the bids on the four hot channels, ids from 1000.
    let shape = sorted_rows(
        &client,
        "SELECT round(avg(CASE WHEN channel IN ('Google', 'Facebook', 'Baidu', 'Apple') \
         THEN 1.0 ELSE 0.0 END), 1), min(auction) >= 1000, min(bidder) >= 1000, \
         min(price) >= 100 FROM bid",
    )
    .await;
    assert_eq!(shape, ["0.5 | t | t | t"]);

    // Nexmark q5's view and q7's view equal their batch queries over the same events.
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW hot AS SELECT auction, count(*) AS num, window_start \
             FROM HOP(bid, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND) \
             GROUP BY auction, window_start, window_end; \
             CREATE MATERIALIZED VIEW top_price AS SELECT window_start, max(price) AS maxprice \
             FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND) GROUP BY window_start; \
             CREATE MATERIALIZED VIEW every_123rd AS SELECT auction, price FROM bid \
             WHERE MOD(auction, 123) = 0; \
             FLUSH",
        )
        .await
        .unwrap();
    for (view, batch) in [
        (
            "SELECT * FROM hot",
            "SELECT auction, count(*), date_bin(INTERVAL '2 seconds', date_time) - shift \
             FROM bid CROSS JOIN (VALUES (INTERVAL '0 seconds'), (INTERVAL '2 seconds'), \
             (INTERVAL '4 seconds'), (INTERVAL '6 seconds'), (INTERVAL '8 seconds')) AS s(shift) \
             GROUP BY 1, 3",
        ),
        (
            "SELECT * FROM top_price",
            "SELECT date_bin(INTERVAL '10 seconds', date_time), max(price) FROM bid GROUP BY 1",
        ),
        (
            "SELECT * FROM every_123rd",
            "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        ),
    ] {
        let streamed = sorted_rows(&client, view).await;
        assert!(!streamed.is_empty(), "{view}");
        assert_eq!(streamed, sorted_rows(&client, batch).await, "{view}");
    }
}

#[tokio::test]
async fn people_and_auctions_take_any_subset_of_their_columns() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE person (date_time TIMESTAMPTZ, id BIGINT, state VARCHAR) \
             WITH (connector = 'nexmark', nexmark.table.type = 'person', \
             nexmark.event.num = '5000', nexmark.base.time = '{BASE_TIME_MS}'); \
             CREATE SOURCE auction (id BIGINT, seller BIGINT, category INT, expires TIMESTAMP, \
             date_time TIMESTAMP) WITH (connector = 'nexmark', nexmark.table.type = 'auction', \
             nexmark.event.num = '5000', nexmark.base.time = '{BASE_TIME_MS}')"
        ))
        .await
        .unwrap();
    wait_generated(&client, "person", 5000).await;
    wait_generated(&client, "auction", 5000).await;
    // One person and three auctions in every 50 events, with consecutive ids from 1000.
    assert_eq!(
        sorted_rows(
            &client,
            "SELECT count(*), min(id), max(id), \
             min(date_time) = to_timestamp_millis(1500000000000), \
             count(*) FILTER (WHERE state NOT IN ('AZ', 'CA', 'ID', 'OR', 'WA', 'WY')) FROM person"
        )
        .await,
        ["100 | 1000 | 1099 | t | 0"]
    );
    assert_eq!(
        sorted_rows(
            &client,
            "SELECT count(*), min(id), max(id), min(category), max(category), \
             bool_and(expires > date_time), max(seller) <= 1099 + 10 FROM auction"
        )
        .await,
        ["300 | 1000 | 1299 | 10 | 14 | t | t"]
    );
}

/// `FLUSH` right after creating a bounded source waits for its generator to finish, so the
/// README's example, pasted as written, counts every bid (as a view over it does).
#[tokio::test]
async fn flush_waits_for_a_bounded_generator() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(&format!(
            "{}; CREATE MATERIALIZED VIEW bids_per_auction AS \
             SELECT auction, count(*) AS n FROM bid GROUP BY auction; FLUSH",
            bid_source("bid", 100_000, "")
        ))
        .await
        .unwrap();
    // 46 of every 50 events are bids; no wait but FLUSH's.
    assert_eq!(
        sorted_rows(&client, "SELECT count(*) FROM bid").await,
        ["92000"]
    );
    assert_eq!(
        sorted_rows(&client, "SELECT sum(n) FROM bids_per_auction").await,
        ["92000"]
    );
}
