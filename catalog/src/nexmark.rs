//! Nexmark sources: the auction benchmark's three streams (people, auctions, bids), generated
//! inside Weir by the reference generator's rules (Flink's and Beam's `NexmarkGenerator`), so a
//! benchmark or a demo needs no outside system.

use serde::{Deserialize, Serialize};

use crate::{CatalogError, ColumnDef, ColumnType};

/// Which of the three Nexmark streams a source holds (`nexmark.table.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NexmarkTable {
    /// New users: one event in 50.
    Person,
    /// New auctions: three events in 50.
    Auction,
    /// Bids on auctions: 46 events in 50.
    Bid,
}

/// Event time advances this much per generated event (of any kind): the reference generator's
/// default first event rate, 10,000 events a second.
pub const NEXMARK_EVENT_SPACING_US: i64 = 100;

/// A Nexmark source's generator settings (RisingWave's option names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NexmarkOptions {
    /// `nexmark.table.type`.
    pub table: NexmarkTable,
    /// `nexmark.event.num`: how many events (of all three kinds: a bid source holds 46 in 50
    /// of them) the stream has; `None` runs until the source is dropped.
    pub event_num: Option<u64>,
    /// `nexmark.min.event.gap.in.ns`: wall-clock time between events (of all kinds); 0 generates
    /// as fast as the log takes them.
    pub min_event_gap_ns: u64,
    /// `nexmark.base.time`: the event time of event 0, in milliseconds since the epoch. Fixed
    /// when the source is created, so the stream is the same on every restart.
    pub base_time_ms: i64,
    /// `nexmark.max.chunk.size`: events (of all kinds) generated into one log entry at most.
    pub max_chunk_size: u64,
}

impl NexmarkTable {
    /// The table's name in `nexmark.table.type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Auction => "auction",
            Self::Bid => "bid",
        }
    }

    /// Parses `nexmark.table.type`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "person" => Some(Self::Person),
            "auction" => Some(Self::Auction),
            "bid" => Some(Self::Bid),
            _ => None,
        }
    }

    /// Every column the generator fills, in order, with the type it generates (the same
    /// columns as the Nexmark queries' DDL in Flink, RisingWave and Feldera).
    pub fn columns(self) -> &'static [(&'static str, ColumnType)] {
        use ColumnType::{Int64, Text, Timestamp};
        match self {
            Self::Person => &[
                ("id", Int64),
                ("name", Text),
                ("email_address", Text),
                ("credit_card", Text),
                ("city", Text),
                ("state", Text),
                ("date_time", Timestamp),
                ("extra", Text),
            ],
            Self::Auction => &[
                ("id", Int64),
                ("item_name", Text),
                ("description", Text),
                ("initial_bid", Int64),
                ("reserve", Int64),
                ("date_time", Timestamp),
                ("expires", Timestamp),
                ("seller", Int64),
                ("category", Int64),
                ("extra", Text),
            ],
            Self::Bid => &[
                ("auction", Int64),
                ("bidder", Int64),
                ("price", Int64),
                ("channel", Text),
                ("url", Text),
                ("date_time", Timestamp),
                ("extra", Text),
            ],
        }
    }

    /// Checks that every declared column is one the generator fills, in a type its values
    /// cast to. A source may declare any subset, in any order.
    pub fn check_columns(self, declared: &[ColumnDef]) -> Result<(), CatalogError> {
        let generated = self.columns();
        for column in declared {
            let Some((_, ty)) = generated.iter().find(|(name, _)| *name == column.name) else {
                return Err(CatalogError::InvalidDefinition(format!(
                    "Nexmark {} has no column \"{}\" (its columns: {})",
                    self.name(),
                    column.name,
                    generated
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if !datafusion::arrow::compute::can_cast_types(
                &ty.arrow_type(),
                &column.ty.arrow_type(),
            ) {
                return Err(CatalogError::InvalidDefinition(format!(
                    "Nexmark column \"{}\" is {}, which does not convert to {}",
                    column.name,
                    ty.sql_name(),
                    column.ty.sql_name()
                )));
            }
        }
        Ok(())
    }
}
