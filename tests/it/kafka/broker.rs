//! A real Kafka-protocol broker for the tests: the `tansu` broker process (memory storage)
//! on a loopback port, reached through a TCP proxy that a test can cut to stage an outage.
//! Messages are produced with rdkafka (librdkafka 2.12, built by the crate).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A `tansu broker` child process, killed on drop.
pub struct Broker {
    child: Child,
    /// Where clients connect: the proxy, which the broker advertises as itself.
    pub addr: SocketAddr,
    /// The proxy in front of the broker.
    pub proxy: Proxy,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The `tansu` binary: installed by `scripts/test.sh` into cargo's bin dir when missing.
fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return path.into();
    }
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

impl Broker {
    /// Starts a broker behind a proxy and waits until it answers.
    pub async fn start() -> Self {
        let broker_port = free_port();
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], broker_port))).await;
        let addr = proxy.addr;
        let child = Command::new(tansu())
            .arg("broker")
            .args(["--storage-engine", "memory://tansu/"])
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{broker_port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {}: {e} (scripts/test.sh installs it)",
                    tansu().display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", broker_port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr, proxy }
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://{}", self.addr))
            .args(["--partitions", &partitions.to_string(), topic])
            .status()
            .expect("run tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }
}

/// A producer to the broker at `addr` that acknowledges once the broker has each message.
pub fn producer(addr: SocketAddr) -> TestProducer {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("create a producer");
    TestProducer { producer }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Kafka producer for the tests.
pub struct TestProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl TestProducer {
    /// Sends `payload` to `partition` of `topic` and waits until all sent are acknowledged.
    pub fn send_all(&self, topic: &str, messages: &[(i32, Option<&str>, String)]) {
        for (partition, key, payload) in messages {
            let mut record = BaseRecord::<str, str>::to(topic)
                .partition(*partition)
                .payload(payload.as_str());
            if let Some(key) = key {
                record = record.key(*key);
            }
            let mut record = record;
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        assert!(
                            matches!(
                                e,
                                rdkafka::error::KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull
                                )
                            ),
                            "produce: {e}"
                        );
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        self.producer
            .flush(Duration::from_secs(30))
            .expect("every message acknowledged by the broker");
    }
}

/// The offsets committed to consumer group `group` for `partitions` of `topic`.
pub fn committed_offsets(addr: SocketAddr, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("group.id", group)
        .create()
        .expect("create a consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("read the group's committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(offset) => offset,
            _ => -1,
        })
        .collect()
}

/// A loopback TCP proxy to a target that can be cut (listener and every connection closed)
/// and restored on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Self {
            addr,
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every connection: the broker is unreachable.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind proxy {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }
}
