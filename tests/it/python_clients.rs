//! Python's Postgres clients against a real server: psycopg 3 (extended protocol, binary
//! parameters and results, prepared statements), asyncpg (binary everything), psycopg2, and
//! SQLAlchemy's inspector in the 2.x line and in 1.4, which Superset pins. `tests/clients/python_clients.py` drives them and
//! prints what it saw; the venvs are made by `scripts/test.sh` from
//! `tests/clients/requirements-*.txt`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::server::{TestServer, create_clients_schema, post_events, wait_for};

/// A venv `scripts/test.sh` made, by the name of its requirements file.
fn venv_python(name: &str) -> PathBuf {
    let venvs = std::env::var_os("WEIR_CLIENT_VENVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/weir-venvs")
        });
    let python = venvs.join(name).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh makes the client venvs",
        python.display()
    );
    python
}

async fn run_clients(venv: &str) -> Value {
    let server = TestServer::start();
    let client = server.client().await;
    create_clients_schema(&client).await;
    let events = [
        ("2024-03-01T09:30:10Z", "view"),
        ("2024-03-01T09:30:40Z", "buy"),
        ("2024-03-01T09:31:05Z", "view"),
        // Outside the chart's hour.
        ("2024-03-01T10:31:05Z", "view"),
    ];
    let body: String = events
        .iter()
        .map(|(ts, kind)| format!("{}\n", json!({"ts": ts, "user_id": 1, "kind": kind})))
        .collect();
    post_events(&server, "events", body).await;
    wait_for(
        &client,
        "SELECT count(*) FROM events",
        Duration::from_secs(10),
        |n| n == "4",
    )
    .await;

    let output = Command::new(venv_python(venv))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/python_clients.py"
        ))
        .arg(server.pg.port().to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python_clients.py in {venv} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

/// What every client line must see alike.
fn check_common(seen: &Value) {
    let round_trip = json!([
        1.5,
        -7,
        "naïve text",
        true,
        null,
        "12.25",
        "2024-03-01 09:30:00.123000"
    ]);
    assert_eq!(seen["psycopg2"], round_trip);
    // float8, int8, text, bool, text, numeric, timestamp
    assert_eq!(
        seen["psycopg2_types"],
        json!([701, 20, 25, 16, 25, 1700, 1114])
    );
    assert!(
        seen["version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 15.0 ")
    );
    assert_eq!(seen["server_version_info"], json!([15, 0]));
    // `::json` results are typed json (114), so psycopg2 parses them.
    assert_eq!(seen["psycopg2_json"], json!([{"a": 1}, [1, 2]]));
    assert_eq!(seen["psycopg2_json_types"], json!([114, 114]));
    assert_eq!(seen["preview"], json!([[1, "ada"], [2, "grace"]]));
    assert_eq!(
        seen["chart"],
        json!([["2024-03-01 09:30:00", 2], ["2024-03-01 09:31:00", 1]])
    );
    assert_eq!(
        seen["schemas"],
        json!(["information_schema", "public", "weir"])
    );
    assert_eq!(seen["tables"], json!(["events", "users"]));
    let users = &seen["columns"]["users"];
    assert_eq!(
        users[0],
        json!({"name": "id", "type": "BIGINT", "nullable": false, "default": null})
    );
    assert_eq!(users[1]["type"], "TEXT");
    assert_eq!(users[2]["default"], "0");
    let events = &seen["columns"]["events"];
    assert_eq!(events[0]["type"], "TIMESTAMP");
    assert_eq!(events[3]["name"], "_received_at");
    assert_eq!(events[3]["nullable"], false);
    assert_eq!(seen["columns"]["per_kind"][1]["type"], "BIGINT");
    assert_eq!(
        seen["primary_key"],
        json!({"name": "users_pkey", "constrained_columns": ["id"]})
    );
    // The primary key is not among the indexes, as in Postgres; there are no foreign keys.
    assert_eq!(seen["indexes"], json!([]));
    assert_eq!(seen["foreign_keys"], json!([]));
    // Whole-table reflection, as Superset adds a dataset, of a table, a source and a view.
    assert_eq!(
        seen["reflected"]["users"],
        json!({"columns": ["id", "name", "score"], "primary_key": ["id"], "comment": null,
               "indexes": 0, "foreign_keys": 0})
    );
    assert_eq!(
        seen["reflected"]["events"]["columns"],
        json!(["ts", "user_id", "kind", "_received_at"])
    );
    assert_eq!(seen["reflected"]["events"]["primary_key"], json!([]));
    assert_eq!(
        seen["reflected"]["per_kind"]["columns"],
        seen["columns"]["per_kind"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Value>()
    );
    assert_eq!(seen["table_comment"], json!({"text": null}));
    assert_eq!(seen["unique_constraints"], json!([]));
    assert_eq!(seen["check_constraints"], json!([]));
    assert_eq!(seen["table_options"], json!({}));
    // The database is the one the engine's URL names.
    assert_eq!(seen["databases"], json!(["analytics"]));
    assert_eq!(seen["current_database"], "analytics");
}

#[tokio::test]
async fn psycopg3_psycopg2_and_sqlalchemy_2() {
    let seen = run_clients("sqlalchemy2").await;
    assert!(seen["sqlalchemy"].as_str().unwrap().starts_with("2."));
    check_common(&seen);
    assert_eq!(seen["psycopg"], seen["psycopg2"], "binary round trip");
    assert_eq!(seen["psycopg_server_version"], 150000);
    assert_eq!(
        seen["psycopg_prepared"],
        json!([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0])
    );
    assert_eq!(seen["psycopg_lookup"], json!([2, "grace"]));
    // asyncpg: binary parameters and results, typed by the server's descriptions.
    assert_eq!(seen["asyncpg_server_version"], json!([15, 0]));
    assert_eq!(seen["asyncpg"], seen["psycopg2"]);
    assert_eq!(
        seen["asyncpg_more"],
        json!([
            "2024-03-01",
            "00ff6162",
            86405.0,
            "2024-03-01T09:30:00+00:00",
            42,
            7,
            0.5
        ])
    );
    assert_eq!(seen["asyncpg_lookup"], json!([[1, "ada"], [2, "grace"]]));
    assert_eq!(seen["asyncpg_json"], json!(["{\"a\": 1}", "[1, 2]"]));
    // SQLAlchemy 2 tells materialized views apart.
    assert_eq!(seen["views"], json!([]));
    assert_eq!(seen["materialized_views"], json!(["per_kind"]));
}

#[tokio::test]
async fn psycopg2_and_sqlalchemy_1_4_as_superset_pins_it() {
    let seen = run_clients("sqlalchemy14").await;
    assert!(seen["sqlalchemy"].as_str().unwrap().starts_with("1.4."));
    check_common(&seen);
    // SQLAlchemy 1.4 lists materialized views among views.
    assert_eq!(seen["views"], json!(["per_kind"]));
}
