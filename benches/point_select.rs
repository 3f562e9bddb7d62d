//! Point queries on a materialized view by key, over pgwire: p50/p99 latency and queries/s at
//! 1, 8 and 32 concurrent clients (each a tokio-postgres connection running a prepared
//! `SELECT ... WHERE user_id = $1` with random keys, one after another), beside a baseline
//! measured in the same run by the same clients: `SELECT 1`, which reads nothing; with the
//! server's CPU time per query (the clients share the machine's cores) and its peak RSS. Then
//! connection setup time (connect to ready for query), p50/p99, with trust authentication and,
//! on a restarted server, with SCRAM-SHA-256 (4,096 PBKDF2 rounds on the client).
//!
//! `cargo bench --bench point_select -- [--keys K] [--seconds S]`

mod support;

use std::time::{Duration, Instant};

use support::{Latencies, Server, ms};

const CONCURRENCY: [usize; 3] = [1, 8, 32];
const CONNECTIONS: usize = 200;

fn main() {
    let mut keys: u64 = 10_000;
    let mut seconds: u64 = 5;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keys" => keys = support::flag_value(&mut args, "--keys K"),
            "--seconds" => seconds = support::flag_value(&mut args, "--seconds S"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sql = server.client().await;
        sql.batch_execute(&format!(
            "CREATE SOURCE clicks (user_id BIGINT NOT NULL, ts TIMESTAMPTZ NOT NULL, amount DOUBLE) \
             WITH (connector = 'http'); \
             CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n, \
             sum(amount) AS total FROM clicks GROUP BY user_id; \
             INSERT INTO clicks SELECT value % {keys}, to_timestamp(value), CAST(value AS DOUBLE) \
             FROM generate_series(0, {}); \
             FLUSH",
            keys * 10 - 1
        ))
        .await
        .expect("set up the view");
        let rows: i64 = sql
            .query_one("SELECT count(*) FROM per_user", &[])
            .await
            .expect("count the view")
            .get(0);
        assert_eq!(rows as u64, keys);
        println!(
            "\n## Point SELECT on a view of {keys} groups, {seconds} s per run, 2 cores \
             (clients on the same machine)\n\
             | clients | query | queries/s | p50 | p99 | server CPU per query |\n\
             | ---: | --- | ---: | ---: | ---: | ---: |"
        );
        for clients in CONCURRENCY {
            for (name, query) in [
                ("SELECT 1 (baseline)", "SELECT $1::bigint"),
                ("view by key", "SELECT n, total FROM per_user WHERE user_id = $1"),
            ] {
                let cpu_before = server.cpu_time();
                let (rate, latencies) = run(&server, clients, query, keys, seconds).await;
                let cpu = server.cpu_time() - cpu_before;
                println!(
                    "| {clients} | {name} | {rate:.0} | {} | {} | {:.0} µs |",
                    ms(latencies.percentile(50.0)),
                    ms(latencies.percentile(99.0)),
                    cpu.as_secs_f64() * 1e6 / (rate * seconds as f64)
                );
            }
        }
        println!(
            "\nServer peak RSS: {:.0} MiB",
            server.peak_rss() as f64 / (1 << 20) as f64
        );
        let trust = setup_times(&server, "bench", None).await;
        sql.batch_execute("CREATE USER bench_scram PASSWORD 'bench password'")
            .await
            .expect("create the SCRAM user");
        drop(sql);
        drop(server);
        let server = Server::start_configured(&data, "auth = \"scram\"\n");
        let scram = setup_times(&server, "bench_scram", Some("'bench password'")).await;
        println!(
            "\n| connection setup, {CONNECTIONS} connections | p50 | p99 |\n| --- | ---: | ---: |"
        );
        for (name, setups) in [("trust", trust), ("SCRAM-SHA-256", scram)] {
            println!(
                "| {name} | {} | {} |",
                ms(setups.percentile(50.0)),
                ms(setups.percentile(99.0))
            );
        }
    });
}

/// Connect-to-ready times of [`CONNECTIONS`] connections, one after another.
async fn setup_times(server: &Server, user: &str, password: Option<&str>) -> Latencies {
    let mut setups = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let started = Instant::now();
        let client = server.client_as(user, password).await;
        setups.push(started.elapsed());
        drop(client);
    }
    Latencies::new(setups)
}

/// `clients` connections running `query` (one `bigint` parameter, a random key) for `seconds`;
/// returns queries/s and the latencies.
async fn run(
    server: &Server,
    clients: usize,
    query: &'static str,
    keys: u64,
    seconds: u64,
) -> (f64, Latencies) {
    let mut tasks = Vec::with_capacity(clients);
    let until = Instant::now() + Duration::from_secs(seconds);
    for i in 0..clients {
        let client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let statement = client
                .prepare_typed(query, &[tokio_postgres::types::Type::INT8])
                .await
                .expect("prepare");
            let mut latencies = Vec::new();
            // A small LCG per client: keys spread over the view without a shared generator.
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ i as u64;
            while Instant::now() < until {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let key = ((state >> 33) % keys) as i64;
                let started = Instant::now();
                let rows = client.query(&statement, &[&key]).await.expect("query");
                latencies.push(started.elapsed());
                assert_eq!(rows.len(), 1, "one row per key");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    let rate = all.len() as f64 / seconds as f64;
    (rate, Latencies::new(all))
}
