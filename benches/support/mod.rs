//! What the benchmarks share: a real `weir serve` process to measure, the benchmark workload's
//! events, and latency figures.

#![allow(dead_code)] // Each benchmark binary uses its own part of this module.

pub mod events;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The value after a flag such as `--events N`, parsed; panics with `usage` if it is missing
/// or does not parse.
pub fn flag_value<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, usage: &str) -> T {
    args.next()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("usage: {usage}"))
}

/// A `weir serve` child process (the release binary) on ephemeral ports.
pub struct Server {
    child: Child,
    /// The Postgres wire address.
    pub pg: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
}

impl Server {
    /// Starts the server on `data_dir` and waits for its ready line.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_configured(data_dir, "")
    }

    /// Starts the server on `data_dir` with `config` (TOML) as its configuration file, unless
    /// empty.
    pub fn start_configured(data_dir: &Path, config: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
        command.arg("serve").arg("--data-dir").arg(data_dir).args([
            "--pg-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]);
        if !config.is_empty() {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, config).expect("write config file");
            command.arg("--config").arg(path);
        }
        let mut child = command
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weir");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let line = lines
            .next()
            .and_then(Result::ok)
            .expect("weir printed its ready line");
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let rest = line.strip_prefix("weir ready: ").expect("ready line");
        let addr = |key: &str| -> SocketAddr {
            rest.split_whitespace()
                .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("{key} address in {line:?}"))
        };
        Self {
            pg: addr("postgres"),
            http: addr("http"),
            child,
        }
    }

    /// A tokio-postgres client; its connection runs on the current runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        self.client_as("bench", None).await
    }

    /// A client logged in as `user`, with `password` when authentication asks for one.
    pub async fn client_as(&self, user: &str, password: Option<&str>) -> tokio_postgres::Client {
        let mut config = format!("host=127.0.0.1 port={} user={user}", self.pg.port());
        if let Some(password) = password {
            config.push_str(&format!(" password={password}"));
        }
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect to weir");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// CPU time the server has used so far (user + system).
    pub fn cpu_time(&self) -> Duration {
        process_cpu_time(&format!("/proc/{}/stat", self.child.id()))
    }

    /// The server's peak resident set size, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    /// The server's resident set size now, in bytes.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// A `kB` figure of `/proc/<pid>/status`, in bytes.
    fn status_bytes(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{key} in /proc status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time this process has used so far.
pub fn own_cpu_time() -> Duration {
    process_cpu_time("/proc/self/stat")
}

/// utime + stime from a `/proc/<pid>/stat` file.
fn process_cpu_time(stat_path: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_path).expect("read /proc stat");
    // The command name may hold spaces; the fields counted below follow its closing paren.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Latency percentiles over a set of samples.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts the samples.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// The `p`-th percentile (0..=100), nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
}

/// Milliseconds with two decimals, for reports.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
