//! Where each event of the Nexmark stream stands: its kind, its time, and which people and
//! auctions exist when it is generated — the arithmetic of the reference generator (Beam's and
//! Flink's `GeneratorConfig`, `PersonGenerator`, `AuctionGenerator`, `BidGenerator`).
//!
//! Events are numbered from 0. Every 50 events hold, in order, 1 person, 3 auctions and 46
//! bids; a person's and an auction's id follow from its number alone, so any range of the
//! stream can be generated without the events before it.

use weir_catalog::{NEXMARK_EVENT_SPACING_US, NexmarkTable};

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

/// The first person's and the first auction's id.
pub const FIRST_PERSON_ID: i64 = 1000;
pub const FIRST_AUCTION_ID: i64 = 1000;
/// People who may still bid or sell: new ids are drawn among the newest this many.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
/// Auctions that may still take bids: bids are drawn among the newest this many.
pub const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// Draws may name a few people and auctions not generated yet, as the reference does.
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

/// The kind of event `n`.
pub fn kind_of(n: u64) -> NexmarkTable {
    match n % TOTAL_PROPORTION {
        offset if offset < PERSON_PROPORTION => NexmarkTable::Person,
        offset if offset < PERSON_PROPORTION + AUCTION_PROPORTION => NexmarkTable::Auction,
        _ => NexmarkTable::Bid,
    }
}

/// How many of events `0..n` are of `table`'s kind.
pub fn rows_before(table: NexmarkTable, n: u64) -> u64 {
    let (epochs, offset) = (n / TOTAL_PROPORTION, n % TOTAL_PROPORTION);
    let (first, count) = match table {
        NexmarkTable::Person => (0, PERSON_PROPORTION),
        NexmarkTable::Auction => (PERSON_PROPORTION, AUCTION_PROPORTION),
        NexmarkTable::Bid => (PERSON_PROPORTION + AUCTION_PROPORTION, BID_PROPORTION),
    };
    epochs * count + offset.saturating_sub(first).min(count)
}

/// Event `n`'s time, in microseconds since the epoch.
pub fn event_time_us(base_time_ms: i64, n: u64) -> i64 {
    base_time_ms * 1000 + n as i64 * NEXMARK_EVENT_SPACING_US
}

/// The 0-based id of the newest person generated at or before event `n`: each group of 50
/// events opens with its one person.
pub fn last_person(n: u64) -> u64 {
    const _: () = assert!(PERSON_PROPORTION == 1, "one person per group of events");
    n / TOTAL_PROPORTION
}

/// The 0-based id of the newest auction generated at or before event `n`.
pub fn last_auction(n: u64) -> u64 {
    let (mut epoch, mut offset) = (n / TOTAL_PROPORTION, n % TOTAL_PROPORTION);
    if offset < PERSON_PROPORTION {
        // A person: the last auction is the previous epoch's last.
        if epoch == 0 {
            return 0;
        }
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

/// A 0-based person id among the active ones at event `n` (and a few leads), by `draw`
/// (uniform below its argument).
pub fn some_person(n: u64, draw: impl FnOnce(u64) -> u64) -> u64 {
    let people = last_person(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + draw(active + PERSON_ID_LEAD)
}

/// A 0-based auction id among those in flight at event `n` (and a few leads), by `draw`.
pub fn some_auction(n: u64, draw: impl FnOnce(u64) -> u64) -> u64 {
    let last = last_auction(n);
    let first = last.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    first + draw(last - first + 1 + AUCTION_ID_LEAD)
}

/// Events generated while `NUM_IN_FLIGHT_AUCTIONS` more auctions are: an auction's expected
/// length in events.
pub fn events_per_in_flight_auctions() -> u64 {
    NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifty_events_hold_one_person_three_auctions_and_46_bids() {
        let kinds: Vec<_> = (0..100).map(kind_of).collect();
        for table in [
            NexmarkTable::Person,
            NexmarkTable::Auction,
            NexmarkTable::Bid,
        ] {
            let counted = kinds.iter().filter(|k| **k == table).count() as u64;
            assert_eq!(rows_before(table, 100), counted, "{table:?}");
            // Any prefix agrees with counting.
            for n in [0, 1, 2, 4, 5, 49, 50, 51, 77] {
                let counted = kinds[..n].iter().filter(|k| **k == table).count() as u64;
                assert_eq!(
                    rows_before(table, n as u64),
                    counted,
                    "{table:?} before {n}"
                );
            }
        }
        assert_eq!(rows_before(NexmarkTable::Bid, 100), 92);
    }

    #[test]
    fn ids_follow_from_event_numbers() {
        // Event 0 is person 0, events 1..=3 auctions 0..=2, then bids; event 50 is person 1.
        assert_eq!(last_person(0), 0);
        assert_eq!(last_person(49), 0);
        assert_eq!(last_person(50), 1);
        assert_eq!((1..=3).map(last_auction).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(last_auction(10), 2);
        assert_eq!(
            last_auction(50),
            2,
            "a person: the previous epoch's last auction"
        );
        assert_eq!(last_auction(51), 3);
        // Draws stay among the active people and in-flight auctions, plus the leads.
        let n = 1_000_000;
        assert_eq!(
            some_person(n, |_| 0),
            last_person(n) + 1 - NUM_ACTIVE_PEOPLE
        );
        assert_eq!(
            some_auction(n, |bound| bound - 1),
            last_auction(n) + AUCTION_ID_LEAD
        );
    }
}
