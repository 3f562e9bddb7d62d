//! Statement latency for `/metrics` (`weir_query_seconds{kind}`): from the statement's start to
//! its last row. Rows stream to the client after `execute` returns, so a query's figure is
//! taken when its stream ends (or is dropped, by a client that stopped reading).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement as Sql;
use futures::Stream;
use weir_sql::Statement;

use super::QueryResult;
use crate::telemetry;

/// The `kind` label of a statement's latency.
pub(super) fn kind(statement: &Statement) -> &'static str {
    match statement {
        Statement::Flush => "flush",
        Statement::CreateSource(_)
        | Statement::CreateView(_)
        | Statement::Drop(_)
        | Statement::User(_) => "ddl",
        Statement::Show(_) => "show",
        Statement::Standard(s) => match s.as_ref() {
            Sql::Query(_) => "query",
            Sql::Insert(_) | Sql::Update { .. } | Sql::Delete(_) => "dml",
            Sql::CreateTable(_) | Sql::Drop { .. } | Sql::CreateView { .. } => "ddl",
            _ => "other",
        },
    }
}

/// Records the latency of a statement that started at `started`: now for a command, at its
/// last row for rows.
pub(super) fn record(kind: &'static str, started: Instant, result: QueryResult) -> QueryResult {
    match result {
        QueryResult::Rows { schema, stream } => QueryResult::Rows {
            stream: Box::pin(RecordBatchStreamAdapter::new(
                schema.clone(),
                TimedRows {
                    inner: stream,
                    kind,
                    started,
                    recorded: false,
                },
            )),
            schema,
        },
        other => {
            observe(kind, started);
            other
        }
    }
}

/// Records a latency that ends now.
pub(super) fn observe(kind: &'static str, started: Instant) {
    telemetry::seconds(
        telemetry::QUERY_SECONDS,
        ("kind", kind.into()),
        started.elapsed(),
    );
}

/// A result's rows, timed to the last.
struct TimedRows {
    inner: SendableRecordBatchStream,
    kind: &'static str,
    started: Instant,
    recorded: bool,
}

impl TimedRows {
    fn finish(&mut self) {
        if !std::mem::replace(&mut self.recorded, true) {
            observe(self.kind, self.started);
        }
    }
}

impl Stream for TimedRows {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None | Some(Err(_))) = &next {
            self.finish();
        }
        next
    }
}

impl Drop for TimedRows {
    fn drop(&mut self) {
        self.finish();
    }
}
