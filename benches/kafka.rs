//! Kafka source throughput: events/s from a pre-filled topic into a Kafka source's log, and
//! on through a tumble view, against a real broker (`tansu`, memory storage) on the same
//! machine; beside it DataFusion's batch time for the view's query over the same events.
//!
//! `cargo bench --bench kafka -- [--events N]` (default 1,000,000; needs `tansu`, which
//! `scripts/test.sh` installs).

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use support::{Server, events};

const TOPIC: &str = "bench_events";
const PARTITIONS: usize = 4;

const VIEW: &str = "SELECT window_start, window_end, event_name, region, count(*) AS n, \
     sum(amount) AS total FROM TUMBLE(events, ts, INTERVAL '1 minute') \
     GROUP BY window_start, window_end, event_name, region";
const BATCH: &str = "SELECT date_bin(INTERVAL '1 minute', ts), event_name, region, count(*), \
     sum(amount) FROM events GROUP BY 1, 2, 3";

fn tansu() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let installed = home.join("bin").join("tansu");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("tansu")
    }
}

/// Reads every message of the topic with a plain consumer; returns how many it read.
fn bare_consume(broker: &str, expected: usize) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "bench-baseline")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS as i32 {
        list.add_partition_offset(TOPIC, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while read < expected && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("message");
            read += 1;
        }
    }
    read
}

fn main() {
    let mut events_count = 1_000_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events_count = support::flag_value(&mut args, "--events N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker_addr = format!("127.0.0.1:{port}");
    let mut broker = Command::new(tansu())
        .arg("broker")
        .args(["--storage-engine", "memory://tansu/"])
        .arg("--listener-url")
        .arg(format!("tcp://{broker_addr}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{broker_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&broker_addr).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = Command::new(tansu())
        .args(["topic", "create", "--broker"])
        .arg(format!("tcp://{broker_addr}"))
        .args(["--partitions", &PARTITIONS.to_string(), TOPIC])
        .status()
        .expect("tansu topic create");
    assert!(created.success());

    eprintln!("producing {events_count} events to {PARTITIONS} partitions ...");
    let lines = events::generate(events_count, 42, false);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker_addr)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let started = Instant::now();
    for (i, line) in lines.iter().enumerate() {
        let mut record = BaseRecord::<(), str>::to(TOPIC)
            .partition((i % PARTITIONS) as i32)
            .payload(line.trim_end());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    eprintln!("  produced in {:.1} s", started.elapsed().as_secs_f64());
    drop(lines);

    // Baseline in the same run: a bare rdkafka consumer reading the whole topic (what the
    // broker and librdkafka alone allow on this machine).
    let started = Instant::now();
    let bare = bare_consume(&broker_addr, events_count);
    let bare_time = started.elapsed();
    eprintln!(
        "  bare consumer: {bare} messages in {:.1} s",
        bare_time.as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sql = server.client().await;
        let idle_rss = server.rss();
        let create = events::CREATE_SOURCE
            .replace("'http'", &format!(
                "'kafka', topic = '{TOPIC}', properties.bootstrap.server = '{broker_addr}', \
                 scan.startup.mode = 'earliest'"
            ));
        assert!(create.contains("'kafka'"), "{create}");
        let cpu = server.cpu_time();
        let started = Instant::now();
        sql.batch_execute(&create).await.expect("create source");
        sql.batch_execute(&format!("CREATE MATERIALIZED VIEW tumble AS {VIEW}"))
            .await
            .expect("create view");
        let mut last = Instant::now();
        let consumed = loop {
            let rows: i64 = sql
                .query_one("SELECT events FROM weir.sources WHERE name = 'events'", &[])
                .await
                .expect("count")
                .get(0);
            if rows as usize >= events_count {
                break started.elapsed();
            }
            if last.elapsed() > Duration::from_secs(2) {
                eprintln!("  {rows} events in the log");
                last = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        sql.batch_execute("FLUSH").await.expect("flush");
        let through_view = started.elapsed();
        let cores = (server.cpu_time() - cpu).as_secs_f64() / through_view.as_secs_f64();
        let batch_started = Instant::now();
        let batch_rows = sql
            .query(&format!("SELECT count(*) FROM ({BATCH}) AS q"), &[])
            .await
            .expect("batch")[0]
            .get::<_, i64>(0);
        let batch = batch_started.elapsed();
        let view_rows: i64 = sql
            .query_one("SELECT count(*) FROM tumble", &[])
            .await
            .expect("count view")
            .get(0);
        assert_eq!(view_rows, batch_rows, "the view and its batch query agree");
        let rate = |d: Duration| events_count as f64 / d.as_secs_f64();
        println!("\n## Kafka source: {events_count} events, {PARTITIONS} partitions, tansu on the same 2 cores");
        println!("| stage | events/s | server cores busy | events/s per core | DataFusion batch, s | streaming/batch time |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| bare rdkafka consumer (baseline, no Weir) | {:.0} | | | | |",
            rate(bare_time)
        );
        println!(
            "| topic -> source log | {:.0} | | | | |",
            rate(consumed)
        );
        println!(
            "| topic -> log -> tumble view (FLUSH) | {:.0} | {cores:.2} | {:.0} | {:.2} | {:.2} |",
            rate(through_view),
            rate(through_view) / cores.max(f64::EPSILON),
            batch.as_secs_f64(),
            through_view.as_secs_f64() / batch.as_secs_f64(),
        );
        println!(
            "\nserver RSS: {:.0} MB idle, {:.0} MB peak",
            idle_rss as f64 / 1e6,
            server.peak_rss() as f64 / 1e6
        );
    });
    let _ = broker.kill();
    let _ = broker.wait();
}
