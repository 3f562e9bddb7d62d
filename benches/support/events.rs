//! The benchmark workload's events (`../shared/bench/`): the same shape, vocabulary and time
//! progression as `gen_events.py` (about 178 bytes an event, `ts` advancing 1 ms per event,
//! 10 % moved back by up to 2 s), generated here so a benchmark needs no Python; or read from
//! that script's NDJSON output to measure on exactly the peer's events.

use std::fmt::Write as _;
use std::path::Path;

/// The source every workload query reads, as `../shared/bench/README.md` declares it.
pub const CREATE_SOURCE: &str = "CREATE SOURCE events (event_id VARCHAR, event_name VARCHAR, \
     user_id VARCHAR, ts TIMESTAMPTZ, amount DOUBLE, region VARCHAR, device VARCHAR, \
     WATERMARK FOR ts AS ts - INTERVAL '2 seconds') WITH (connector = 'http')";

const EVENT_NAMES: [&str; 20] = [
    "page_view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "checkout_start",
    "purchase",
    "signup",
    "login",
    "logout",
    "search",
    "share",
    "like",
    "comment",
    "video_play",
    "video_pause",
    "error",
    "form_submit",
    "download",
    "scroll",
    "notification_open",
];
const REGIONS: [&str; 8] = [
    "us-east",
    "us-west",
    "eu-west",
    "eu-central",
    "ap-south",
    "ap-northeast",
    "sa-east",
    "af-south",
];
const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];
const USERS: u64 = 100_000;
/// 2024-01-01T00:00:00Z in epoch milliseconds.
const START_MS: i64 = 1_704_067_200_000;

/// NDJSON lines, one event each (newline included), deterministic for a seed. With
/// `epoch_ms`, `ts` is epoch milliseconds instead of RFC 3339 text, which takes the collector's
/// per-event path instead of the columnar one.
pub fn generate(events: usize, seed: u64, epoch_ms: bool) -> Vec<String> {
    generate_from(0, events, seed, epoch_ms)
}

/// Like [`generate`], for the stream's events from the `first`-th on: their times continue
/// those of the events before them.
pub fn generate_from(first: usize, events: usize, seed: u64, epoch_ms: bool) -> Vec<String> {
    generate_among(first, events, seed, epoch_ms, USERS)
}

/// Like [`generate_from`], with user ids drawn from `users` users instead of 100,000.
pub fn generate_among(
    first: usize,
    events: usize,
    seed: u64,
    epoch_ms: bool,
    users: u64,
) -> Vec<String> {
    let mut rng = SplitMix64(seed);
    (first..first + events)
        .map(|i| {
            let mut ts = i as i64;
            if rng.below(10) == 0 {
                ts = (ts - rng.below(2001) as i64).max(0);
            }
            let (hi, lo) = (rng.next(), rng.next());
            let x = format!("{hi:016x}{lo:016x}");
            let amount = (lognormal(&mut rng, 3.0, 1.0) * 100.0).round() / 100.0;
            let mut line = String::with_capacity(192);
            writeln!(
                line,
                "{{\"event_id\":\"{}-{}-{}-{}-{}\",\"event_name\":\"{}\",\"user_id\":\"user_{:06}\",\
                 \"ts\":{},\"amount\":{amount:?},\"region\":\"{}\",\"device\":\"{}\"}}",
                &x[0..8],
                &x[8..12],
                &x[12..16],
                &x[16..20],
                &x[20..32],
                EVENT_NAMES[rng.below(20) as usize],
                rng.below(users),
                if epoch_ms {
                    (START_MS + ts).to_string()
                } else {
                    format!("\"{}\"", rfc3339_ms(START_MS + ts))
                },
                REGIONS[rng.below(8) as usize],
                DEVICES[rng.below(3) as usize],
            )
            .expect("write to a String");
            line
        })
        .collect()
}

/// The nominal time of the stream's `i`-th event (RFC 3339).
pub fn time_of(i: usize) -> String {
    rfc3339_ms(START_MS + i as i64)
}

/// The lines of an NDJSON file written by `gen_events.py`.
pub fn read(path: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines().map(|l| format!("{l}\n")).collect()
}

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn lognormal(rng: &mut SplitMix64, mean: f64, sigma: f64) -> f64 {
    // Box-Muller from two uniforms in (0, 1].
    let u1 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON;
    let u2 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mean + sigma * normal).exp()
}

/// A small, fast, seedable generator (Steele et al.'s SplitMix64): the benchmarks need
/// reproducible streams, not cryptographic randomness.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
