//! Query results on the wire: Arrow batches become `DataRow`s in the text or binary format the
//! client asked for (via `arrow-pg`), JSON columns are announced as `json`, floats, dates,
//! times, timestamps and intervals in text are written as Postgres writes them (`text/`).

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use futures::{Stream, StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use super::error::pg_error;
use super::text::TextStyle;
use crate::query::{QueryError, QueryResult, Session};

/// How values are written as text, from the session's settings (`DateStyle`, `TimeZone`,
/// `extra_float_digits`, `IntervalStyle`).
pub fn format_options(session: &Session) -> Arc<FormatOptions> {
    let mut options = FormatOptions::default();
    let setting = |name: &str| session.get(name).map(|(_, value)| value).ok();
    if let Some(style) = setting("DateStyle") {
        options.date_style = style;
    }
    if let Some(style) = setting("IntervalStyle") {
        options.interval_style = style;
    }
    if let Some(zone) = setting("TimeZone") {
        options.time_zone = zone;
    }
    if let Some(digits) = setting("extra_float_digits").and_then(|d| d.trim().parse().ok()) {
        options.extra_float_digits = digits;
    }
    Arc::new(options)
}

/// Column descriptions for `schema` in `format`.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let ty = crate::query::pg_catalog::wire_type(field);
            let info = FieldInfo::new(field.name().clone(), None, None, ty, format.format_for(i));
            Ok(match &options {
                Some(options) => info.with_format_options(options.clone()),
                None => info,
            })
        })
        .collect()
}

/// The wire response for a statement's result. `stop` resolves, with the reason, when the
/// client cancels or the statement times out; the row stream then ends with that error.
pub fn response(
    result: QueryResult,
    format: &Format,
    options: Arc<FormatOptions>,
    stop: impl std::future::Future<Output = QueryError> + Send + 'static,
) -> PgWireResult<Response> {
    Ok(match result {
        QueryResult::Rows { schema, stream } => {
            let style = TextStyle::new(&options);
            let fields = Arc::new(fields(&schema, format, Some(options))?);
            let row_fields = fields.clone();
            let rows =
                stream.flat_map(
                    move |batch| -> std::pin::Pin<
                        Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>,
                    > {
                        match batch {
                            Ok(batch) => {
                                let batch = style.apply(batch, &row_fields);
                                Box::pin(stream::iter(arrow_pg::datatypes::encode_recordbatch(
                                    row_fields.clone(),
                                    batch,
                                )))
                            }
                            Err(e) => Box::pin(stream::once(async move {
                                Err(pg_error(QueryError::DataFusion(e).into_weir()))
                            })),
                        }
                    },
                );
            Response::Query(QueryResponse::new(fields, until_stopped(rows, stop)))
        }
        QueryResult::Command(tag) => Response::Execution(command_tag(&tag)),
        QueryResult::TransactionStart(tag) => Response::TransactionStart(Tag::new(&tag)),
        QueryResult::TransactionEnd { tag, .. } => Response::TransactionEnd(Tag::new(&tag)),
    })
}

/// `INSERT 0 3` -> tag `INSERT 0` with 3 rows; pgwire appends the count.
fn command_tag(tag: &str) -> Tag {
    match tag.rsplit_once(' ') {
        Some((command, count))
            if count.chars().all(|c| c.is_ascii_digit()) && command != "CREATE" =>
        {
            Tag::new(command).with_rows(count.parse().unwrap_or(0))
        }
        _ => Tag::new(tag),
    }
}

fn until_stopped(
    rows: impl Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    stop: impl std::future::Future<Output = QueryError> + Send + 'static,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let stop = Box::pin(stop);
    let rows = Box::pin(rows);
    stream::unfold(Some((rows, stop)), |state| async move {
        let (mut rows, mut stop) = state?;
        tokio::select! {
            biased;
            reason = &mut stop => Some((Err::<DataRow, PgWireError>(pg_error(reason)), None)),
            row = rows.next() => row.map(|row| (row, Some((rows, stop)))),
        }
    })
}
