//! What a statement produces.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

/// The outcome of one statement.
pub enum QueryResult {
    /// Rows, streamed as they are computed.
    Rows {
        /// Column names and types.
        schema: SchemaRef,
        /// The batches.
        stream: SendableRecordBatchStream,
    },
    /// A command with its Postgres completion tag (`CREATE TABLE`, `INSERT 0 3`, `UPDATE 2`).
    Command(String),
    /// `BEGIN` and friends: the session enters a transaction block.
    TransactionStart(String),
    /// `COMMIT`/`ROLLBACK`: the session leaves its transaction block.
    TransactionEnd {
        /// `COMMIT` or `ROLLBACK`.
        tag: String,
        /// Said to the client as a warning: a `ROLLBACK` cannot undo writes that were
        /// committed when they ran.
        warning: Option<String>,
    },
}

impl QueryResult {
    /// Rows already computed, as one batch (`SHOW`).
    pub fn from_batch(batch: RecordBatch) -> Self {
        let schema = batch.schema();
        let stream = futures::stream::iter([Ok(batch)]);
        Self::Rows {
            schema: schema.clone(),
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        }
    }
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rows { schema, .. } => f.debug_struct("Rows").field("schema", schema).finish(),
            Self::Command(tag) => write!(f, "Command({tag})"),
            Self::TransactionStart(tag) => write!(f, "TransactionStart({tag})"),
            Self::TransactionEnd { tag, .. } => write!(f, "TransactionEnd({tag})"),
        }
    }
}
