//! The values of Nexmark events, as Arrow batches of one table's rows.
//!
//! Each event draws its values from a random generator seeded with its own number (as the
//! reference generator does), so an event is the same whichever range it is generated in, and
//! a source's stream is the same on every run and after every restart. The generator is
//! SplitMix64, written out here rather than taken from a crate so the stream cannot change
//! with a dependency's version.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use weir_catalog::{NEXMARK_EVENT_SPACING_US, NexmarkTable};

use super::sequence::{
    FIRST_AUCTION_ID, FIRST_PERSON_ID, event_time_us, events_per_in_flight_auctions, kind_of,
    last_auction, last_person, some_auction, some_person,
};

const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// One bid in this many goes to the newest auctions' hot one; likewise for hot sellers and
/// hot bidders, and for the four hot channels.
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_CHANNEL_RATIO: u64 = 2;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const CHANNELS: u64 = 10_000;
/// The average sizes the `extra` column pads each kind of event to, in bytes.
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// One event's random draws.
struct Draws(u64);

impl Draws {
    /// The draws of event `n` (or of a fixed value such as a channel number, with a salt).
    fn for_event(n: u64, salt: u64) -> Self {
        Self(n ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }

    /// A price in cents, log-uniform from $1 to $1,000,000.
    fn price(&mut self) -> i64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as i64
    }

    /// Lower-case letters with about one space in 13, exactly `len` long.
    fn push_exact_string(&mut self, out: &mut String, len: usize) {
        for _ in 0..len {
            let draw = self.below(13 * 26);
            out.push(if draw < 26 {
                ' '
            } else {
                (b'a' + (draw % 26) as u8) as char
            });
        }
    }

    /// Such a string of 3 to `max_len - 1` characters, trimmed.
    fn push_string(&mut self, out: &mut String, max_len: usize) {
        let len = 3 + self.below(max_len as u64 - 3) as usize;
        let start = out.len();
        self.push_exact_string(out, len);
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        let leading = out[start..].len() - out[start..].trim_start().len();
        out.drain(start..start + leading);
    }

    /// Padding that brings an event of `size` bytes to about `average` (±20%).
    fn push_extra(&mut self, out: &mut String, size: usize, average: usize) {
        if size > average {
            return;
        }
        let wanted = average - size;
        let delta = (wanted as f64 * 0.2).round() as usize;
        let len = wanted - delta
            + if delta == 0 {
                0
            } else {
                self.below(2 * delta as u64) as usize
            };
        self.push_exact_string(out, len);
    }

    /// `https://www.nexmark.com/<5>/<5>/<5>/item.htm?query=1`.
    fn push_url(&mut self, out: &mut String) {
        out.push_str("https://www.nexmark.com/");
        for part in 0..3 {
            if part > 0 {
                out.push('/');
            }
            self.push_string(out, 5 + 1);
        }
        out.push_str("/item.htm?query=1");
    }
}

/// Generates one table's rows of the Nexmark stream.
#[derive(Debug, Clone)]
pub struct Generator {
    table: NexmarkTable,
    base_time_ms: i64,
    schema: SchemaRef,
    /// The hot channels' URLs, drawn once (as the reference does at start), from fixed seeds.
    hot_urls: [String; 4],
}

/// Seeds of draws that belong to no event.
const HOT_URL_SALT: u64 = 1;
const CHANNEL_SALT: u64 = 2;

impl Generator {
    /// A generator of `table`'s rows, event 0 at `base_time_ms`.
    pub fn new(table: NexmarkTable, base_time_ms: i64) -> Self {
        let schema = Arc::new(Schema::new(
            table
                .columns()
                .iter()
                .map(|(name, ty)| ty.arrow_field(name, false))
                .collect::<Vec<_>>(),
        ));
        let hot_urls = std::array::from_fn(|i| {
            let mut url = String::new();
            Draws::for_event(i as u64, HOT_URL_SALT).push_url(&mut url);
            url
        });
        Self {
            table,
            base_time_ms,
            schema,
            hot_urls,
        }
    }

    /// The schema of the batches: every column of the table (`NexmarkTable::columns`).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows of this generator's table among events `events`, in event order.
    pub fn batch(&self, events: Range<u64>) -> RecordBatch {
        let mut rows = Rows::new(self.table, events.end.saturating_sub(events.start) as usize);
        for n in events.filter(|&n| kind_of(n) == self.table) {
            let time = event_time_us(self.base_time_ms, n);
            let mut draws = Draws::for_event(n, 0);
            match &mut rows {
                Rows::Person(p) => p.push(n, time, &mut draws),
                Rows::Auction(a) => a.push(n, time, &mut draws),
                Rows::Bid(b) => b.push(n, time, &mut draws, &self.hot_urls),
            }
        }
        RecordBatch::try_new(self.schema.clone(), rows.finish())
            .expect("generated columns match the table's schema")
    }
}

/// The builders of one batch's rows (one per batch: boxed, whatever their sizes).
enum Rows {
    Person(Box<People>),
    Auction(Box<Auctions>),
    Bid(Box<Bids>),
}

impl Rows {
    fn new(table: NexmarkTable, capacity: usize) -> Self {
        match table {
            NexmarkTable::Person => Self::Person(Box::default()),
            NexmarkTable::Auction => Self::Auction(Box::default()),
            NexmarkTable::Bid => Self::Bid(Box::new(Bids::with_capacity(capacity))),
        }
    }

    fn finish(self) -> Vec<ArrayRef> {
        match self {
            Self::Person(p) => p.finish(),
            Self::Auction(a) => a.finish(),
            Self::Bid(b) => b.finish(),
        }
    }
}

#[derive(Default)]
struct People {
    id: Int64Builder,
    name: StringBuilder,
    email: StringBuilder,
    credit_card: StringBuilder,
    city: StringBuilder,
    state: StringBuilder,
    date_time: TimestampMicrosecondBuilder,
    extra: StringBuilder,
    scratch: String,
}

impl People {
    fn push(&mut self, n: u64, time_us: i64, draws: &mut Draws) {
        let s = &mut self.scratch;
        self.id
            .append_value(last_person(n) as i64 + FIRST_PERSON_ID);
        s.clear();
        s.push_str(draws.pick(&FIRST_NAMES));
        s.push(' ');
        s.push_str(draws.pick(&LAST_NAMES));
        self.name.append_value(&*s);
        let mut size = 8 + s.len();
        s.clear();
        draws.push_string(s, 7);
        s.push('@');
        draws.push_string(s, 5);
        s.push_str(".com");
        self.email.append_value(&*s);
        size += s.len();
        s.clear();
        for group in 0..4 {
            let _ = write!(
                s,
                "{}{:04}",
                if group > 0 { " " } else { "" },
                draws.below(10_000)
            );
        }
        self.credit_card.append_value(&*s);
        size += s.len();
        let city = draws.pick(&US_CITIES);
        let state = draws.pick(&US_STATES);
        self.city.append_value(city);
        self.state.append_value(state);
        size += city.len() + state.len();
        self.date_time.append_value(time_us);
        s.clear();
        draws.push_extra(s, size, AVG_PERSON_BYTES);
        self.extra.append_value(&*s);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.email.finish()),
            Arc::new(self.credit_card.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

#[derive(Default)]
struct Auctions {
    id: Int64Builder,
    item_name: StringBuilder,
    description: StringBuilder,
    initial_bid: Int64Builder,
    reserve: Int64Builder,
    date_time: TimestampMicrosecondBuilder,
    expires: TimestampMicrosecondBuilder,
    seller: Int64Builder,
    category: Int64Builder,
    extra: StringBuilder,
    scratch: String,
}

impl Auctions {
    fn push(&mut self, n: u64, time_us: i64, draws: &mut Draws) {
        let s = &mut self.scratch;
        self.id
            .append_value(last_auction(n) as i64 + FIRST_AUCTION_ID);
        // Most auctions are the newest hot seller's.
        let seller = if draws.below(HOT_SELLER_RATIO) > 0 {
            (last_person(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
        } else {
            some_person(n, |bound| draws.below(bound))
        };
        self.seller.append_value(seller as i64 + FIRST_PERSON_ID);
        self.category
            .append_value(FIRST_CATEGORY_ID + draws.below(NUM_CATEGORIES) as i64);
        let initial_bid = draws.price();
        self.initial_bid.append_value(initial_bid);
        // An auction lasts, on average, as long as it takes to generate the next
        // `NUM_IN_FLIGHT_AUCTIONS` auctions.
        let horizon_ms = events_per_in_flight_auctions() as i64 * NEXMARK_EVENT_SPACING_US / 1000;
        let length_ms = 1 + draws.below((horizon_ms * 2).max(1) as u64) as i64;
        self.date_time.append_value(time_us);
        self.expires.append_value(time_us + length_ms * 1000);
        s.clear();
        draws.push_string(s, 20);
        self.item_name.append_value(&*s);
        let mut size = 8 + s.len() + 8 * 5;
        s.clear();
        draws.push_string(s, 100);
        self.description.append_value(&*s);
        size += s.len();
        self.reserve.append_value(initial_bid + draws.price());
        s.clear();
        draws.push_extra(s, size, AVG_AUCTION_BYTES);
        self.extra.append_value(&*s);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.item_name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.initial_bid.finish()),
            Arc::new(self.reserve.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.expires.finish()),
            Arc::new(self.seller.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

struct Bids {
    auction: Int64Builder,
    bidder: Int64Builder,
    price: Int64Builder,
    channel: StringBuilder,
    url: StringBuilder,
    date_time: TimestampMicrosecondBuilder,
    extra: StringBuilder,
    scratch: String,
}

impl Bids {
    fn with_capacity(rows: usize) -> Self {
        Self {
            auction: Int64Builder::with_capacity(rows),
            bidder: Int64Builder::with_capacity(rows),
            price: Int64Builder::with_capacity(rows),
            channel: StringBuilder::with_capacity(rows, rows * 8),
            url: StringBuilder::with_capacity(rows, rows * 64),
            date_time: TimestampMicrosecondBuilder::with_capacity(rows),
            extra: StringBuilder::with_capacity(rows, rows * 68),
            scratch: String::new(),
        }
    }

    fn push(&mut self, n: u64, time_us: i64, draws: &mut Draws, hot_urls: &[String; 4]) {
        // Half the bids go to the newest hot auction, three in four come from the newest hot
        // bidder (the second person of its group, so hot bidders are not hot sellers).
        let auction = if draws.below(HOT_AUCTION_RATIO) > 0 {
            (last_auction(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
        } else {
            some_auction(n, |bound| draws.below(bound))
        };
        let bidder = if draws.below(HOT_BIDDER_RATIO) > 0 {
            (last_person(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
        } else {
            some_person(n, |bound| draws.below(bound))
        };
        self.auction.append_value(auction as i64 + FIRST_AUCTION_ID);
        self.bidder.append_value(bidder as i64 + FIRST_PERSON_ID);
        self.price.append_value(draws.price());
        let s = &mut self.scratch;
        if draws.below(HOT_CHANNEL_RATIO) > 0 {
            let hot = draws.below(HOT_CHANNELS.len() as u64) as usize;
            self.channel.append_value(HOT_CHANNELS[hot]);
            self.url.append_value(&hot_urls[hot]);
        } else {
            let channel = draws.below(CHANNELS);
            s.clear();
            let _ = write!(s, "channel-{channel}");
            self.channel.append_value(&*s);
            // A channel's URL is its own: drawn from the channel's number, not the event's.
            let mut channel_draws = Draws::for_event(channel, CHANNEL_SALT);
            s.clear();
            channel_draws.push_url(s);
            if channel_draws.below(10) > 0 {
                let _ = write!(s, "&channel_id={}", (channel as u32).reverse_bits());
            }
            self.url.append_value(&*s);
        }
        self.date_time.append_value(time_us);
        s.clear();
        draws.push_extra(s, 8 * 4, AVG_BID_BYTES);
        self.extra.append_value(&*s);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.auction.finish()),
            Arc::new(self.bidder.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray, StringArray};
    use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    use super::*;

    #[test]
    fn an_event_is_the_same_in_any_range() {
        let generator = Generator::new(NexmarkTable::Bid, 1_000_000);
        let whole = generator.batch(0..1000);
        let parts: Vec<_> = [0..137, 137..600, 600..1000]
            .into_iter()
            .map(|r| generator.batch(r))
            .collect();
        let joined =
            datafusion::arrow::compute::concat_batches(generator.schema(), &parts).unwrap();
        assert_eq!(whole, joined);
        assert_eq!(whole.num_rows(), 920);
    }

    #[test]
    fn bids_follow_the_reference_distributions() {
        let generator = Generator::new(NexmarkTable::Bid, 0);
        let bids = generator.batch(0..500_000);
        let auction = bids.column(0).as_primitive::<Int64Type>();
        let price = bids.column(2).as_primitive::<Int64Type>();
        let channel = bids.column(3).as_string::<i32>();
        let time = bids.column(5).as_primitive::<TimestampMicrosecondType>();
        // Prices are log-uniform over $1..$1,000,000: a sixth of them per decade.
        let below_100_dollars = price.values().iter().filter(|p| **p < 10_000).count();
        let share = below_100_dollars as f64 / bids.num_rows() as f64;
        assert!((share - 2.0 / 6.0).abs() < 0.01, "{share}");
        assert!(
            price
                .values()
                .iter()
                .all(|p| (100..=100_000_000).contains(p))
        );
        // Half the channels are the four hot ones.
        let hot = (0..channel.len())
            .filter(|&i| HOT_CHANNELS.contains(&channel.value(i)))
            .count() as f64;
        assert!((hot / bids.num_rows() as f64 - 0.5).abs() < 0.01);
        // Bids go to auctions that exist or are about to, ids from 1000.
        assert!(auction.values().iter().all(|a| *a >= FIRST_AUCTION_ID));
        // Event time advances 100 µs an event, in order.
        assert!(time.values().windows(2).all(|w| w[0] < w[1]));
        assert_eq!(time.value(0), 4 * NEXMARK_EVENT_SPACING_US);
        // `extra` pads a bid to about 100 bytes.
        let extra = bids.column(6).as_string::<i32>();
        let mean = (0..extra.len())
            .map(|i| extra.value(i).len())
            .sum::<usize>() as f64
            / extra.len() as f64;
        assert!((mean - 68.0).abs() < 2.0, "{mean}");
    }

    #[test]
    fn people_and_auctions_have_consecutive_ids() {
        let people = Generator::new(NexmarkTable::Person, 0).batch(0..5000);
        let ids = people.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values().to_vec(), (1000..1100).collect::<Vec<i64>>());
        let emails: &StringArray = people.column(2).as_string();
        assert!(emails.iter().all(|e| e.unwrap().ends_with(".com")));
        let auctions = Generator::new(NexmarkTable::Auction, 0).batch(0..5000);
        let ids = auctions.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values().to_vec(), (1000..1300).collect::<Vec<i64>>());
        let (created, expires) = (
            auctions
                .column(5)
                .as_primitive::<TimestampMicrosecondType>(),
            auctions
                .column(6)
                .as_primitive::<TimestampMicrosecondType>(),
        );
        assert!((0..ids.len()).all(|i| expires.value(i) > created.value(i)));
    }
}
