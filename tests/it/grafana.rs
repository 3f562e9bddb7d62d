//! Grafana's PostgreSQL data source, by the SQL it sends: its health check, the metadata
//! queries of its query builder (`postgresMetaQuery.ts`, verbatim, with its `search_path`
//! schema list), and a time-series panel as its macros expand (`$__timeGroupAlias(ts, 1m)`,
//! `$__timeFilter(ts)` with RFC 3339 bounds).

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use super::server::{TestServer, post_events, wait_for};

/// `buildSchemaConstraint()`: the schemas on the search path, `"$user"` as the user.
const SCHEMA_CONSTRAINT: &str = "
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )";

const TIMESCALE_SCHEMAS: &str = "'_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental'";

fn show_tables() -> String {
    format!(
        "SELECT
    CASE WHEN {SCHEMA_CONSTRAINT}
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS \"table\"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             {TIMESCALE_SCHEMAS})
    ORDER BY CASE WHEN {SCHEMA_CONSTRAINT} THEN 0 ELSE 1 END, 1"
    )
}

fn show_tables_in(schema: &str) -> String {
    format!(
        "SELECT quote_ident(table_name) AS \"table\"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = '{schema}'
      ORDER BY 1"
    )
}

fn get_schema(table: &str) -> String {
    format!(
        "SELECT quote_ident(column_name) AS \"column\", data_type AS \"type\"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('{table}'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('{table}'))[1]
          AND quote_ident(table_name) = (parse_ident('{table}'))[2]
        ELSE quote_ident(table_name) = '{table}'
          AND {SCHEMA_CONSTRAINT}
      END"
    )
}

/// Rows of a simple-protocol query, cells joined by `|`.
async fn simple(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}\n{e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn grafana_health_check_query_builder_and_panel() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL);
             CREATE SOURCE events (ts TIMESTAMP, kind TEXT, \
               WATERMARK FOR ts AS ts - INTERVAL '5 seconds') WITH (connector = 'http');
             CREATE MATERIALIZED VIEW per_kind AS SELECT kind, count(*) AS n FROM events GROUP BY kind;",
        )
        .await
        .unwrap();
    let body: String = [
        "2024-03-01T09:29:59.999Z",
        "2024-03-01T09:30:00.123Z",
        "2024-03-01T09:30:10Z",
        "2024-03-01T09:31:05Z",
        "2024-03-01T09:35:00Z",
    ]
    .iter()
    .map(|ts| format!("{{\"ts\": \"{ts}\", \"kind\": \"view\"}}\n"))
    .collect();
    post_events(&server, "events", body).await;
    wait_for(
        &client,
        "SELECT count(*) FROM events",
        Duration::from_secs(10),
        |n| n == "5",
    )
    .await;

    // "Save & test".
    for ping in [";", "-- ping"] {
        let messages = client.simple_query(ping).await.unwrap();
        assert!(
            messages
                .iter()
                .all(|m| !matches!(m, SimpleQueryMessage::Row(_))),
            "{ping}"
        );
    }
    assert_eq!(
        simple(
            &client,
            "SELECT current_setting('server_version_num')::int/100 as version"
        )
        .await,
        ["1500"]
    );
    assert!(
        simple(
            &client,
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        )
        .await
        .is_empty()
    );

    // The query builder.
    let schemas = format!(
        "SELECT schema_name AS \"name\"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              {TIMESCALE_SCHEMAS})
    ORDER BY schema_name"
    );
    assert_eq!(simple(&client, &schemas).await, ["public", "weir"]);
    assert_eq!(
        simple(&client, &show_tables()).await,
        [
            "events",
            "per_kind",
            "users",
            "weir.dead_letters",
            "weir.kafka_partitions",
            "weir.late_events",
            "weir.sources",
            "weir.views"
        ]
    );
    assert_eq!(
        simple(&client, &show_tables_in("public")).await,
        ["events", "per_kind", "users"]
    );
    assert_eq!(
        simple(&client, &get_schema("events")).await,
        [
            "ts|timestamp without time zone",
            "kind|text",
            "_received_at|timestamp with time zone"
        ]
    );
    assert_eq!(
        simple(&client, &get_schema("public.per_kind")).await,
        ["kind|text", "n|bigint"]
    );

    // A time-series panel, macros expanded as Grafana's backend expands them, over 09:30 to
    // 09:35 with millisecond RFC 3339 bounds.
    let panel = "SELECT floor(extract(epoch from ts)/60)*60 AS \"time\", count(*) AS \"events\"
        FROM events
        WHERE ts BETWEEN '2024-03-01T09:30:00.123Z' AND '2024-03-01T09:35:00Z'
        GROUP BY 1
        ORDER BY 1";
    let points: Vec<(f64, i64)> = simple(&client, panel)
        .await
        .iter()
        .map(|row| {
            let (time, count) = row.split_once('|').unwrap();
            (time.parse().unwrap(), count.parse().unwrap())
        })
        .collect();
    assert_eq!(
        points,
        [(1709285400.0, 2), (1709285460.0, 1), (1709285700.0, 1)]
    );
    let statement = client.prepare(panel).await.unwrap();
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(types, [Type::FLOAT8, Type::INT8]);
}
