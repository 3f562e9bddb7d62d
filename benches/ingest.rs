//! HTTP ingest benchmark: several concurrent clients POST 1,000-event NDJSON requests to a
//! real `weir serve` (release build, fresh data directory) and wait for each 202, which Weir
//! sends only once the events are durable. Reports events/s, MB/s, request latency p50/p99,
//! server CPU and peak memory, beside a baseline measured in the same run: the same bodies
//! decoded to Arrow by arrow-json on one core in this process (no HTTP, no storage).
//!
//! `cargo bench --bench ingest -- [--events N] [--clients C] [--batch B] [--events-file F]
//! [--epoch-ms]` (F: NDJSON from `../shared/bench/gen_events.py`; `--epoch-ms` sends `ts` as
//! epoch milliseconds, which the collector's per-event path decodes). Figures go in
//! `docs/benchmarks.md`.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use support::{Latencies, Server, events, ms, own_cpu_time};

struct Options {
    events: usize,
    clients: usize,
    batch: usize,
    events_file: Option<PathBuf>,
    epoch_ms: bool,
}

impl Options {
    fn parse() -> Self {
        let mut options = Self {
            events: 2_000_000,
            clients: 4,
            batch: 1_000,
            events_file: None,
            epoch_ms: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--events" => options.events = value().parse().expect("--events N"),
                "--clients" => options.clients = value().parse().expect("--clients C"),
                "--batch" => options.batch = value().parse().expect("--batch B"),
                "--events-file" => options.events_file = Some(value().into()),
                "--epoch-ms" => options.epoch_ms = true,
                // `cargo bench` passes `--bench` to every benchmark binary.
                "--bench" => {}
                other => panic!("unknown argument {other}"),
            }
        }
        options
    }
}

fn main() {
    let options = Options::parse();
    let lines = match &options.events_file {
        Some(path) => events::read(path),
        None => events::generate(options.events, 42, options.epoch_ms),
    };
    let bodies: Vec<Bytes> = lines
        .chunks(options.batch)
        .map(|chunk| Bytes::from(chunk.concat()))
        .collect();
    let total_events = lines.len();
    let total_bytes: usize = bodies.iter().map(Bytes::len).sum();
    drop(lines);
    eprintln!(
        "ingest bench: {total_events} events ({:.1} MB) in {} requests of {}, {} clients",
        total_bytes as f64 / 1e6,
        bodies.len(),
        options.batch,
        options.clients
    );

    let baseline = decode_baseline(&bodies);

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let run = runtime.block_on(async {
        let sql = server.client().await;
        sql.batch_execute(events::CREATE_SOURCE)
            .await
            .expect("create source");
        // Warm up connections and the server's allocator on a tenth of the bodies; the rest is
        // measured.
        let warm = bodies.len() / 10;
        post_all(&server, bodies[..warm].to_vec(), options.clients, false).await;
        let cpu_before = (server.cpu_time(), own_cpu_time());
        let started = Instant::now();
        let latencies = post_all(&server, bodies[warm..].to_vec(), options.clients, true).await;
        let elapsed = started.elapsed();
        let cpu = (
            server.cpu_time() - cpu_before.0,
            own_cpu_time() - cpu_before.1,
        );
        sql.batch_execute("FLUSH").await.expect("flush");
        let stored: i64 = sql
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(
            stored as usize, total_events,
            "every acknowledged event is stored"
        );
        let measured_events: usize = total_events - warm * options.batch;
        let measured_bytes: usize = bodies[warm..].iter().map(Bytes::len).sum();
        Run {
            events: measured_events,
            bytes: measured_bytes,
            elapsed,
            latencies,
            server_cpu: cpu.0,
            client_cpu: cpu.1,
        }
    });
    report(&options, &run, baseline, server.peak_rss());
}

struct Run {
    events: usize,
    bytes: usize,
    elapsed: Duration,
    latencies: Latencies,
    server_cpu: Duration,
    client_cpu: Duration,
}

/// POSTs every body from `clients` concurrent connections; returns each request's latency.
async fn post_all(
    server: &Server,
    bodies: Vec<Bytes>,
    clients: usize,
    progress: bool,
) -> Latencies {
    let url = format!("http://{}/api/events/events", server.http);
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, client, url) =
                (bodies.clone(), next.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("POST");
                    let status = response.status();
                    let text = response.text().await.expect("response body");
                    assert_eq!(status, 202, "ingest refused: {text}");
                    latencies.push(sent.elapsed());
                    if progress && i % 200 == 0 {
                        eprintln!(
                            "  {i}/{} requests, {:.1} s",
                            bodies.len(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    Latencies::new(all)
}

/// Events/s of arrow-json decoding the bodies into the source's schema on one core.
fn decode_baseline(bodies: &[Bytes]) -> f64 {
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, true),
        Field::new("event_name", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new("amount", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("device", DataType::Utf8, true),
    ]));
    let started = Instant::now();
    let mut rows = 0;
    for body in bodies {
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(body.len())
            .build_decoder()
            .expect("decoder");
        decoder.decode(body).expect("decode");
        rows += decoder.flush().expect("flush").map_or(0, |b| b.num_rows());
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

fn report(options: &Options, run: &Run, baseline: f64, peak_rss: u64) {
    let secs = run.elapsed.as_secs_f64();
    let rate = run.events as f64 / secs;
    let server_cores = run.server_cpu.as_secs_f64() / secs;
    println!(
        "\n## HTTP ingest: {} clients, {}-event NDJSON requests",
        options.clients, options.batch
    );
    println!("| figure | value |\n| --- | ---: |");
    println!("| events measured | {} |", run.events);
    println!("| events/s accepted durably | {rate:.0} |");
    println!("| MB/s of JSON | {:.1} |", run.bytes as f64 / secs / 1e6);
    println!(
        "| request latency p50 / p99 | {} / {} |",
        ms(run.latencies.percentile(50.0)),
        ms(run.latencies.percentile(99.0))
    );
    println!("| server CPU (cores busy) | {server_cores:.2} |");
    println!(
        "| events/s per server core | {:.0} |",
        rate / server_cores.max(f64::EPSILON)
    );
    println!(
        "| client CPU (cores busy) | {:.2} |",
        run.client_cpu.as_secs_f64() / secs
    );
    println!("| server peak RSS | {:.0} MB |", peak_rss as f64 / 1e6);
    println!("| baseline: arrow-json decode only, 1 core | {baseline:.0} events/s |");
}
