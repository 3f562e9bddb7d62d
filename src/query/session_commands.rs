//! `SET`, `SHOW` and `SHOW SOURCES`: statements answered from the session's settings and the
//! catalog, without DataFusion.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{self, Expr, Set, Value};
use weir_catalog::SourceDef;
use weir_sql::SqlError;

use super::{Engine, QueryError, QueryResult, Session};

impl Engine {
    pub(super) fn set(&self, session: &Session, set: &Set) -> Result<QueryResult, QueryError> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string();
                let value = match values.as_slice() {
                    [Expr::Identifier(id)] if id.value.eq_ignore_ascii_case("default") => None,
                    values => Some(
                        values
                            .iter()
                            .map(setting_text)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                };
                session.set(&name, value)?;
            }
            Set::SetTimeZone { value, .. } => session.set("TimeZone", Some(setting_text(value)))?,
            Set::SetNames { charset_name, .. } => {
                session.set("client_encoding", Some(charset_name.value.clone()))?
            }
            Set::SetTransaction { .. } | Set::SetSessionParam(_) => {}
            other => return Err(SqlError::Unsupported(format!("SET {other}")).into()),
        }
        Ok(QueryResult::Command("SET".into()))
    }

    pub(super) async fn show(
        &self,
        session: &Session,
        variable: &[ast::Ident],
    ) -> Result<QueryResult, QueryError> {
        let name = variable_name(variable);
        let (schema, columns): (SchemaRef, Vec<Arc<dyn datafusion::arrow::array::Array>>) =
            if name.eq_ignore_ascii_case("all") {
                let all = session.all();
                (
                    show_all_schema(),
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            all.iter().map(|(n, _)| n.as_str()),
                        )),
                        Arc::new(StringArray::from_iter_values(
                            all.iter().map(|(_, v)| v.as_str()),
                        )),
                    ],
                )
            } else {
                let (display, value) = session.get(&name)?;
                (
                    show_schema(&display),
                    vec![Arc::new(StringArray::from(vec![value]))],
                )
            };
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(datafusion::error::DataFusionError::from)?;
        Ok(QueryResult::from_batch(batch))
    }

    /// `SHOW SOURCES`: one row per source with its connector, format and options.
    pub(super) fn show_sources(&self) -> QueryResult {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let sources: Vec<&SourceDef> = catalog.sources().collect();
        let text =
            |f: &dyn Fn(&SourceDef) -> Option<String>| -> Arc<dyn datafusion::arrow::array::Array> {
                Arc::new(StringArray::from(
                    sources.iter().map(|s| f(s)).collect::<Vec<_>>(),
                ))
            };
        let columns = vec![
            text(&|s| Some(s.name.clone())),
            text(&|s| Some(format!("{:?}", s.options.connector).to_ascii_lowercase())),
            text(&|s| Some(format!("{:?}", s.options.encoding).to_ascii_lowercase())),
            text(&|s| {
                s.watermark
                    .as_ref()
                    .map(|w| format!("{} - {} ms", w.column, w.delay_ms))
            }),
            text(&|s| {
                s.options
                    .dedup
                    .as_ref()
                    .map(|d| format!("{} within {} ms", d.key, d.window_ms))
            }),
            text(&|s| Some(format!("{:?}", s.options.unknown_fields).to_ascii_lowercase())),
        ];
        let schema = show_sources_schema();
        let batch =
            RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema");
        QueryResult::from_batch(batch)
    }
}

pub(super) fn show_sources_schema() -> SchemaRef {
    Arc::new(Schema::new(
        [
            "name",
            "connector",
            "format",
            "watermark",
            "dedup",
            "unknown_fields",
        ]
        .into_iter()
        .map(|name| Field::new(name, DataType::Utf8, name != "name" && name != "connector"))
        .collect::<Vec<_>>(),
    ))
}

pub(super) fn variable_name(variable: &[ast::Ident]) -> String {
    variable
        .iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn show_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        name.to_ascii_lowercase(),
        DataType::Utf8,
        false,
    )]))
}

pub(super) fn show_all_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("setting", DataType::Utf8, false),
    ]))
}

/// A `SET` value as text: strings without their quotes, anything else as written.
fn setting_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(id) => id.value.clone(),
        other => other.to_string(),
    }
}
