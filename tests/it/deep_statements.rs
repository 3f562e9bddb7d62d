//! No statement ends the server. Deep expressions (left-deep `+`, `AND` and `OR` chains, casts,
//! `CASE`, nested calls, nested subqueries, `UNION` chains) of 10 to 100,000 terms, over the
//! simple and the extended protocol and in a view's definition, either run and give the right
//! answer or are refused with 54001 as Postgres refuses statements past `max_stack_depth`; the
//! session goes on and the next client is served. Random token soup and random protocol
//! messages after login get an error or a closed connection, never a crash.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::server::{TestServer, post_events, wait_for};

/// Per statement: the deepest ones go through every planning stage in a debug build.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(180);

/// The SQLSTATE of a refused deep statement.
const STACK_DEPTH: &str = "54001";

fn join(term: impl Fn(usize) -> String, separator: &str, n: usize) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(separator)
}

/// One shape of deep statement: the SQL with `n` terms, the one value it returns, and the
/// size that must run (refusing is for the absurd: BI tools send thousands of `OR`ed values).
struct Shape {
    name: &'static str,
    sql: fn(usize) -> String,
    answer: fn(usize) -> String,
    must_run: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "left-deep +",
        must_run: 3000,
        sql: |n| format!("SELECT {}", join(|_| "1".into(), " + ", n)),
        answer: |n| n.to_string(),
    },
    Shape {
        name: "AND chain",
        must_run: 3000,
        sql: |n| {
            format!(
                "SELECT 7 WHERE {}",
                join(|i| format!("{i} = {i}"), " AND ", n)
            )
        },
        answer: |_| "7".into(),
    },
    Shape {
        name: "OR chain over rows",
        must_run: 3000,
        sql: |n| {
            format!(
                "SELECT count(*) FROM generate_series(1, 10) AS t(x) WHERE {}",
                join(|i| format!("x = {i}"), " OR ", n)
            )
        },
        answer: |n| (n.saturating_sub(1)).min(10).to_string(),
    },
    Shape {
        name: "cast chain",
        must_run: 3000,
        sql: |n| format!("SELECT 3{}", "::bigint".repeat(n)),
        answer: |_| "3".into(),
    },
    Shape {
        name: "CASE with many branches",
        must_run: 3000,
        sql: |n| {
            format!(
                "SELECT CASE {} ELSE -1 END",
                join(|i| format!("WHEN {i} = {} THEN {i}", n - 1), " ", n)
            )
        },
        answer: |n| (n - 1).to_string(),
    },
    Shape {
        name: "nested CASE",
        must_run: 100,
        sql: |n| {
            format!(
                "SELECT {}5{}",
                "CASE WHEN false THEN 0 ELSE ".repeat(n),
                " END".repeat(n)
            )
        },
        answer: |_| "5".into(),
    },
    Shape {
        name: "nested calls",
        must_run: 10,
        sql: |n| format!("SELECT {}-2{}", "abs(".repeat(n), ")".repeat(n)),
        answer: |_| "2".into(),
    },
    Shape {
        name: "nested subqueries",
        must_run: 10,
        sql: |n| format!("SELECT {}4{}", "(SELECT ".repeat(n), ")".repeat(n)),
        answer: |_| "4".into(),
    },
    Shape {
        name: "UNION ALL chain",
        must_run: 3000,
        sql: |n| {
            format!(
                "SELECT count(*) FROM ({}) AS u",
                join(|_| "SELECT 1 AS one".into(), " UNION ALL ", n)
            )
        },
        answer: |n| n.to_string(),
    },
];

/// The first value of a simple query's first row, or the error's SQLSTATE.
async fn simple(client: &Client, sql: &str) -> Result<String, String> {
    let messages = tokio::time::timeout(STATEMENT_TIMEOUT, client.simple_query(sql))
        .await
        .unwrap_or_else(|_| panic!("no answer within {STATEMENT_TIMEOUT:?}"));
    match messages {
        Ok(messages) => Ok(messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
                _ => None,
            })
            .unwrap_or_default()),
        Err(e) => Err(sqlstate(&e)),
    }
}

/// The same over the extended protocol (Parse, Describe, Bind, Execute), as text.
async fn extended(client: &Client, sql: &str) -> Result<String, String> {
    let sql = format!("SELECT CAST(({sql}) AS text)");
    let rows = tokio::time::timeout(STATEMENT_TIMEOUT, client.query(&sql, &[]))
        .await
        .unwrap_or_else(|_| panic!("no answer within {STATEMENT_TIMEOUT:?}"));
    match rows {
        Ok(rows) => Ok(rows
            .first()
            .map(|row| row.get::<_, String>(0))
            .unwrap_or_default()),
        Err(e) => Err(sqlstate(&e)),
    }
}

fn sqlstate(error: &tokio_postgres::Error) -> String {
    match error.code() {
        Some(code) => code.code().to_string(),
        None => panic!("the connection failed instead of answering: {error}"),
    }
}

/// `(Ok(answer) | Err(54001))`, and the session still answers.
async fn check(client: &Client, what: &str, outcome: Result<String, String>, answer: &str) {
    match outcome {
        Ok(value) => assert_eq!(value, answer, "{what}"),
        Err(code) => assert_eq!(code, STACK_DEPTH, "{what}: refused with {code}"),
    }
    assert_eq!(
        simple(client, "SELECT 1").await,
        Ok("1".to_string()),
        "{what}: the session goes on"
    );
}

#[tokio::test]
async fn deep_statements_run_or_get_54001_and_the_server_goes_on() {
    let server = TestServer::start();
    let client = server.client().await;
    for shape in SHAPES {
        let mut ran = Vec::new();
        for n in [10, 100, 1_000, 3_000, 20_000, 100_000] {
            let sql = (shape.sql)(n);
            let answer = (shape.answer)(n);
            let what = format!("{} of {n} terms", shape.name);
            let outcome = simple(&client, &sql).await;
            if outcome.is_ok() {
                ran.push(n);
            }
            check(&client, &format!("{what}, simple"), outcome, &answer).await;
            let outcome = extended(&client, &sql).await;
            check(&client, &format!("{what}, extended"), outcome, &answer).await;
            // Another client is served too.
            let other = server.client().await;
            assert_eq!(simple(&other, "SELECT 2").await, Ok("2".to_string()));
        }
        assert!(
            ran.contains(&shape.must_run),
            "{}: ran only {ran:?}",
            shape.name
        );
    }
}

#[tokio::test]
async fn deep_view_definitions_run_or_get_54001() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE SOURCE clicks (user_id BIGINT, ts TIMESTAMPTZ NOT NULL) \
             WITH (connector = 'http') FORMAT JSON",
        )
        .await
        .unwrap();
    let filter = |n: usize| join(|i| format!("user_id = {}", i * 2), " OR ", n);
    let refused = client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW too_deep AS SELECT count(*) AS n FROM clicks WHERE {}",
            filter(100_000)
        ))
        .await
        .expect_err("a 100,000-term filter nests too deep");
    assert_eq!(sqlstate(&refused), STACK_DEPTH);
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW even_users AS \
             SELECT user_id, count(*) AS n FROM clicks WHERE {} GROUP BY user_id",
            filter(3_000)
        ))
        .await
        .unwrap();
    let body: String = (0..50)
        .map(|i| {
            format!(
                "{{\"user_id\": {i}, \"ts\": \"2024-03-01T00:00:{:02}Z\"}}\n",
                i % 60
            )
        })
        .collect();
    post_events(&server, "clicks", body).await;
    wait_for(
        &client,
        "SELECT count(*) FROM clicks",
        Duration::from_secs(30),
        |n| n == "50",
    )
    .await;
    client.batch_execute("FLUSH").await.unwrap();
    assert_eq!(
        simple(&client, "SELECT count(*) FROM even_users").await,
        Ok("25".to_string())
    );
}

/// A small deterministic generator, so a failure replays.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "UNION",
    "JOIN",
    "ON",
    "AS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "BETWEEN",
    "LIKE",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "::",
    "=",
    "<>",
    "<",
    ">=",
    "->",
    "->>",
    "@>",
    "~",
    "1",
    "0",
    "-7",
    "3.5",
    "1e308",
    "'x'",
    "'2024-01-01'",
    "$1",
    "x",
    "t",
    "pg_class",
    "generate_series",
    "abs",
    "count",
    "sum",
    "int",
    "text",
    "timestamp",
    "INTERVAL '1 day'",
    "TUMBLE",
    "CREATE",
    "TABLE",
    "SOURCE",
    "MATERIALIZED VIEW",
    "DROP",
    "INSERT INTO",
    "VALUES",
    "FLUSH",
    "SHOW",
    "SET",
    "\"q\"",
    "E'\\\\'",
    "$$a$$",
    "--",
    "/*",
];

#[tokio::test]
async fn token_soup_gets_errors_not_crashes() {
    let server = TestServer::start();
    let client = server.client().await;
    let mut random = XorShift(0x5eed_1234_abcd_ef01);
    for round in 0..400 {
        let length = match round % 10 {
            // Now and then a long, deep run of tokens.
            9 => 2_000 + random.below(20_000),
            _ => 1 + random.below(40),
        };
        let sql: Vec<&str> = (0..length)
            .map(|_| TOKENS[random.below(TOKENS.len())])
            .collect();
        let sql = sql.join(" ");
        // Any answer will do, as long as it is one.
        let _ = simple(&client, &sql).await;
        assert_eq!(
            simple(&client, "SELECT 1").await,
            Ok("1".to_string()),
            "after round {round}: {}",
            &sql[..sql.len().min(200)]
        );
    }
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend(((body.len() + 4) as i32).to_be_bytes());
    message.extend(body);
    message
}

/// Logs in on a raw socket and reads up to the first ReadyForQuery.
fn logged_in(server: &TestServer) -> TcpStream {
    let mut socket = TcpStream::connect(server.pg).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let parameters = b"user\0weir\0database\0dev\0\0";
    let mut startup = ((8 + parameters.len()) as i32).to_be_bytes().to_vec();
    startup.extend((3i32 << 16).to_be_bytes());
    startup.extend(parameters);
    socket.write_all(&startup).unwrap();
    let mut seen: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 4096];
    while !seen.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
        let n = socket.read(&mut buffer).unwrap();
        assert!(n > 0, "closed during login");
        seen.extend(&buffer[..n]);
    }
    socket
}

#[tokio::test]
async fn random_protocol_messages_after_login_never_end_the_server() {
    let server = TestServer::start();
    let client = server.client().await;
    let mut random = XorShift(0xdead_beef_0bad_f00d);
    for round in 0..150 {
        let mut socket = logged_in(&server);
        let mut bytes = Vec::new();
        for _ in 0..1 + random.below(5) {
            // Message types the protocol knows, and some it does not.
            let kind = b"QPBEDSHCFdcfXpx!z"[random.below(17)];
            let body: Vec<u8> = (0..random.below(64)).map(|_| random.next() as u8).collect();
            match random.below(4) {
                // A length that lies.
                0 => {
                    let mut m = message(kind, &body);
                    let lie = (random.next() % 100_000) as i32;
                    m[1..5].copy_from_slice(&lie.to_be_bytes());
                    bytes.extend(m);
                }
                _ => bytes.extend(message(kind, &body)),
            }
        }
        // The server answers, errs or closes; reading stops at whichever comes, or when it
        // waits for more bytes than were sent.
        let _ = socket.write_all(&bytes);
        let _ = socket.shutdown(std::net::Shutdown::Write);
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut sink = [0u8; 4096];
        while matches!(socket.read(&mut sink), Ok(n) if n > 0) {}
        if round % 25 == 0 {
            assert_eq!(simple(&client, "SELECT 1").await, Ok("1".to_string()));
        }
    }
    assert_eq!(simple(&client, "SELECT 1").await, Ok("1".to_string()));
    let other = server.client().await;
    assert_eq!(simple(&other, "SELECT 3").await, Ok("3".to_string()));
}
