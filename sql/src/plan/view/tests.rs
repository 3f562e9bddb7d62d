//! How view queries are split, and what is refused by name.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::*;

fn plan(sql: &str) -> Result<ViewQuery, SqlError> {
    let query = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .unwrap()
        .parse_query()
        .unwrap();
    plan_view_query(&query, &|_| Vec::new())
}

#[test]
fn splits_a_tumbling_aggregate() {
    let view = plan(
        "SELECT window_start, region, count(*) AS orders, avg(amount), \
         count(*) FILTER (WHERE amount > 10)::double / count(*) AS big_share \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') WHERE event_name = 'buy' \
         GROUP BY window_start, window_end, region HAVING count(*) > 1",
    )
    .unwrap();
    assert_eq!(view.source, "events");
    assert_eq!(view.time_column.as_deref(), Some("ts"));
    assert_eq!(
        view.window,
        Some(WindowSpec::Tumble {
            size_ms: 60_000,
            offset_ms: 0
        })
    );
    assert_eq!(view.group_columns, 3);
    assert_eq!(
        view.window_end,
        Some(WindowEnd {
            group_column: 0,
            plus_ms: 60_000
        })
    );
    assert_eq!(
        view.partials,
        vec![Merge::Sum, Merge::Sum, Merge::Sum, Merge::Sum]
    );
    assert!(
        view.partial_sql
            .contains("count(*) FILTER (WHERE amount > 10) AS \"p3\""),
        "{}",
        view.partial_sql
    );
    assert!(
        view.partial_sql
            .contains("sum(amount) AS \"p1\", count(amount) AS \"p2\""),
        "{}",
        view.partial_sql
    );
    assert_eq!(view.final_items[0], "\"g0\"");
    assert_eq!(view.leading_key_output, Some(0));
    assert_eq!(view.final_items[1], "\"g2\"");
    assert_eq!(view.final_items[2], "(COALESCE(\"p0\", 0))");
    assert_eq!(
        view.final_items[4],
        "(COALESCE(\"p3\", 0))::DOUBLE / (COALESCE(\"p0\", 0))"
    );
    assert_eq!(
        view.final_filter.as_deref(),
        Some("(COALESCE(\"p0\", 0)) > 1")
    );
    assert!(view.batch_sql.contains("HAVING count(*) > 1"));
}

#[test]
fn distinct_counts_read_their_values_with_a_query_of_their_own() {
    let view = plan(
        "SELECT window_start, count(DISTINCT user_id) FILTER (WHERE amount > 1) AS users \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') WHERE kind = 'buy' \
         GROUP BY window_start",
    )
    .unwrap();
    assert_eq!(view.partials, vec![Merge::Distinct]);
    assert_eq!(view.distinct_sql.len(), 1);
    let sql = &view.distinct_sql[0].sql;
    assert!(
        sql.contains("AS \"g0\", user_id AS \"v\" FROM")
            && sql.ends_with("WHERE (kind = 'buy') AND (user_id IS NOT NULL AND (amount > 1))"),
        "{sql}"
    );
}

#[test]
fn hop_joins_each_event_with_its_windows() {
    let view = plan(
        "SELECT window_start, max(amount) FROM HOP(events, ts, INTERVAL '1 minute', \
         INTERVAL '5 minutes') GROUP BY window_start",
    )
    .unwrap();
    assert_eq!(
        view.window,
        Some(WindowSpec::Hop {
            slide_ms: 60_000,
            size_ms: 300_000,
            offset_ms: 0
        })
    );
    assert!(
        view.partial_sql.contains("AS __panes"),
        "the hop aggregates per pane: {}",
        view.partial_sql
    );
    assert!(
        view.partial_sql
            .contains("arrow_cast(240000000, 'Duration(Microsecond)')"),
        "{}",
        view.partial_sql
    );
    assert_eq!(view.partials, vec![Merge::Max]);
}

#[test]
fn distinct_users_per_sliding_window_merge_one_sketch_per_pane() {
    // WAU per day: each event is hashed into its day's HyperLogLog once, and the 7 days'
    // sketches are merged into each window, not the event into 7 sketches.
    let view = plan(
        "SELECT window_start, approx_count_distinct(user_id) AS wau, count(*) AS events \
         FROM HOP(events, ts, INTERVAL '1 day', INTERVAL '7 days') GROUP BY window_start",
    )
    .unwrap();
    assert!(
        view.partial_sql.contains("AS __panes"),
        "{}",
        view.partial_sql
    );
    assert!(
        view.partial_sql
            .contains("__weir_hll_merge(\"p0\") AS \"p0\""),
        "{}",
        view.partial_sql
    );
}

#[test]
fn approximate_aggregates_become_sketches() {
    let view = plan(
        "SELECT window_start, approx_count_distinct(user_id) AS users, \
         approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY amount DESC) AS p05, \
         approx_median(amount) FILTER (WHERE amount > 0) AS mid \
         FROM HOP(events, ts, INTERVAL '1 minute', INTERVAL '5 minutes') GROUP BY window_start",
    )
    .unwrap();
    assert_eq!(
        view.partials,
        vec![
            Merge::Sketch(Sketch::Hll),
            Merge::Sketch(Sketch::TDigest),
            Merge::Sketch(Sketch::TDigest)
        ]
    );
    assert!(
        !view.partial_sql.contains("__panes"),
        "t-digests are merged by the server, not per pane: {}",
        view.partial_sql
    );
    for part in [
        "__weir_hll_state(user_id) AS \"p0\"",
        "__weir_tdigest_state(amount, 0.050000000000000044) AS \"p1\"",
        "__weir_tdigest_state(amount, 0.5) FILTER (WHERE amount > 0) AS \"p2\"",
    ] {
        assert!(view.partial_sql.contains(part), "{}", view.partial_sql);
    }
    assert_eq!(view.final_items[1], "(__weir_hll_estimate(\"p0\"))");
    assert!(view.distinct_sql.is_empty());
    assert_eq!(
        view.final_items[2],
        "(__weir_tdigest_quantile(\"p1\", 0.050000000000000044))"
    );
}

#[test]
fn joins_reference_tables_under_their_aliases() {
    let view = plan(
        "SELECT e.window_start, u.plan, count(*) AS n \
         FROM TUMBLE(events, ts, INTERVAL '1 minute') AS e \
         LEFT JOIN users u ON e.user_id = u.id GROUP BY e.window_start, u.plan",
    )
    .unwrap();
    assert_eq!(view.source, "events");
    assert_eq!(view.tables, vec!["users".to_string()]);
    assert!(
        view.partial_sql
            .contains(") AS e LEFT JOIN users u ON e.user_id = u.id"),
        "{}",
        view.partial_sql
    );
    assert_eq!(
        view.window_end,
        Some(WindowEnd {
            group_column: 0,
            plus_ms: 60_000
        })
    );
    let error = plan("SELECT count(*) FROM events e JOIN (SELECT 1) s ON true")
        .unwrap_err()
        .to_string();
    assert!(error.contains("reference table"), "{error}");
}

#[test]
fn session_views_aggregate_per_partition_and_time() {
    let view = plan(
        "SELECT user_id, window_start, window_end, count(*) AS n, \
         count(DISTINCT page) AS pages FROM SESSION(events, ts, INTERVAL '30 minutes') \
         WHERE kind = 'view' GROUP BY user_id, window_start, window_end",
    )
    .unwrap();
    assert_eq!(
        view.window,
        Some(WindowSpec::Session {
            gap_ms: 1_800_000,
            max_duration_ms: None
        })
    );
    let keys = view.session.as_ref().unwrap();
    assert_eq!(
        (
            keys.start_column,
            keys.end_column,
            &keys.partition_columns[..]
        ),
        (1, 2, &[0][..])
    );
    assert_eq!(
        keys.partition_sql,
        "SELECT user_id AS \"g0\" FROM \"events\""
    );
    assert!(
        view.partial_sql.ends_with(
            "WHERE \"ts\" IS NOT NULL AND (kind = 'view') GROUP BY user_id, \"ts\", \"ts\""
        ),
        "{}",
        view.partial_sql
    );
    assert_eq!(
        view.window_end,
        Some(WindowEnd {
            group_column: 2,
            plus_ms: 0
        })
    );
    assert!(
        view.batch_sql.contains("PARTITION BY user_id ORDER BY")
            && view.batch_sql.contains("(kind = 'view')"),
        "{}",
        view.batch_sql
    );
    assert!(
        view.distinct_sql[0].sql.contains("\"ts\" IS NOT NULL"),
        "{}",
        view.distinct_sql[0].sql
    );
}

#[test]
fn refuses_what_it_cannot_maintain_by_name() {
    for (sql, named) in [
        ("SELECT sum(DISTINCT amount) FROM events", "DISTINCT"),
        ("SELECT stddev(amount) FROM events", "stddev"),
        (
            "SELECT approx_percentile_cont(amount) WITHIN GROUP (ORDER BY amount) FROM events",
            "percentile",
        ),
        (
            "SELECT count(*) FROM HOP(events, ts, INTERVAL '2 minutes', INTERVAL '3 minutes')",
            "multiple",
        ),
        (
            "SELECT count(*) FROM SESSION(events, ts, INTERVAL '1 minute') GROUP BY window_start",
            "window_end",
        ),
        (
            "SELECT count(*) FROM SESSION(events, ts, INTERVAL '1 minute') \
             WHERE window_start > now() GROUP BY window_start, window_end",
            "filter",
        ),
        ("SELECT * FROM events GROUP BY a", "*"),
    ] {
        let error = plan(sql).unwrap_err().to_string();
        assert!(error.contains(named), "{sql}: {error}");
    }
}
