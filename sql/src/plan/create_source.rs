//! `CREATE SOURCE`: columns, the watermark, typed `WITH` options and the format, checked and
//! turned into the parts of a catalog [`SourceDef`](weir_catalog::SourceDef).

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, SqlOption, Value};
use weir_catalog::{
    ColumnDef, Connector, Dedup, Encoding, SourceOptions, UnknownFields, Watermark,
};

use super::create_table::column_def;
use super::duration::{interval_ms, parse_duration_ms};
use super::names::{ident, object_name};
use crate::SqlError;
use crate::ast::CreateSource;

/// The `WITH` keys a source takes.
const OPTION_KEYS: &[&str] = &[
    "connector",
    "dedup_key",
    "dedup_window",
    "unknown_fields",
    "idle_timeout",
    "max_future_skew",
];

/// How long `dedup_key` remembers an id when `dedup_window` is not given.
const DEFAULT_DEDUP_WINDOW_MS: u64 = 3_600_000;

/// What a `CREATE SOURCE` asks for.
#[derive(Debug, Clone)]
pub struct CreateSourcePlan {
    /// Normalized source name.
    pub name: String,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Declared columns.
    pub columns: Vec<ColumnDef>,
    /// The watermark.
    pub watermark: Option<Watermark>,
    /// Typed options.
    pub options: SourceOptions,
    /// The statement text.
    pub definition: String,
}

/// Checks a `CREATE SOURCE` and types its options.
pub fn plan_create_source(create: &CreateSource) -> Result<CreateSourcePlan, SqlError> {
    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let (def, is_key) = column_def(column)?;
        if is_key {
            return Err(SqlError::Unsupported(
                "PRIMARY KEY on a source (use dedup_key to drop repeated events)".into(),
            ));
        }
        columns.push(def);
    }
    let watermark = create
        .watermark
        .as_ref()
        .map(|(column, expr)| watermark(&ident(column), expr))
        .transpose()?;
    Ok(CreateSourcePlan {
        name: object_name(&create.name)?,
        if_not_exists: create.if_not_exists,
        columns,
        watermark,
        options: options(&create.options, &create.format)?,
        definition: create.text.clone(),
    })
}

/// `col` or `col - INTERVAL '...'`.
fn watermark(column: &str, expr: &Expr) -> Result<Watermark, SqlError> {
    let invalid = || {
        SqlError::InvalidOption(format!(
            "WATERMARK FOR {column} must be `{column}` or `{column} - INTERVAL '...'`, not `{expr}`"
        ))
    };
    let is_column = |e: &Expr| matches!(e, Expr::Identifier(id) if ident(id) == column);
    let delay_ms = match expr {
        e if is_column(e) => 0,
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_column(left) => match right.as_ref() {
            Expr::Interval(interval) => interval_ms(interval)?,
            _ => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    Ok(Watermark {
        column: column.to_string(),
        delay_ms,
    })
}

fn options(with: &[SqlOption], format: &[String]) -> Result<SourceOptions, SqlError> {
    let mut connector = None;
    let mut dedup_key = None;
    let mut dedup_window = None;
    let mut unknown_fields = UnknownFields::Reject;
    let mut idle_timeout_ms = None;
    let mut max_future_skew_ms = None;
    for option in with {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(SqlError::InvalidOption(format!(
                "option {option} must be written key = 'value'"
            )));
        };
        let key = key.value.to_ascii_lowercase();
        let text = option_text(&key, value)?;
        match key.as_str() {
            "connector" => {
                connector = Some(match text.to_ascii_lowercase().as_str() {
                    "http" => Connector::Http,
                    "kafka" => {
                        return Err(SqlError::Unsupported("connector 'kafka' (not yet)".into()));
                    }
                    other => {
                        return Err(SqlError::InvalidOption(format!(
                            "unknown connector '{other}' (expected 'http')"
                        )));
                    }
                })
            }
            "dedup_key" => dedup_key = Some(text),
            "dedup_window" => dedup_window = Some(parse_duration_ms(&text)?),
            "idle_timeout" => idle_timeout_ms = Some(parse_duration_ms(&text)?),
            "max_future_skew" => max_future_skew_ms = Some(parse_duration_ms(&text)?),
            "unknown_fields" => {
                unknown_fields = match text.to_ascii_lowercase().as_str() {
                    "reject" => UnknownFields::Reject,
                    "ignore" => UnknownFields::Ignore,
                    other => {
                        return Err(SqlError::InvalidOption(format!(
                            "unknown_fields must be 'reject' or 'ignore', not '{other}'"
                        )));
                    }
                }
            }
            other => {
                return Err(SqlError::InvalidOption(format!(
                    "unknown source option \"{other}\" (valid: {})",
                    OPTION_KEYS.join(", ")
                )));
            }
        }
    }
    let connector = connector.ok_or_else(|| {
        SqlError::InvalidOption("a source needs WITH (connector = 'http')".into())
    })?;
    let dedup = match (dedup_key, dedup_window) {
        (Some(key), window) => Some(Dedup {
            key,
            window_ms: window.unwrap_or(DEFAULT_DEDUP_WINDOW_MS),
        }),
        (None, Some(_)) => {
            return Err(SqlError::InvalidOption(
                "dedup_window needs dedup_key".into(),
            ));
        }
        (None, None) => None,
    };
    let encoding = match format
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["JSON"] | ["PLAIN", "ENCODE", "JSON"] => Encoding::Json,
        other => return Err(SqlError::Unsupported(format!("FORMAT {}", other.join(" ")))),
    };
    Ok(SourceOptions {
        connector,
        encoding,
        dedup,
        unknown_fields,
        idle_timeout_ms,
        max_future_skew_ms,
    })
}

fn option_text(key: &str, value: &Expr) -> Result<String, SqlError> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.clone()),
            Value::Number(n, _) => Ok(n.to_string()),
            other => Err(SqlError::InvalidOption(format!(
                "option {key}: unexpected value {other}"
            ))),
        },
        Expr::Identifier(id) => Ok(id.value.clone()),
        other => Err(SqlError::InvalidOption(format!(
            "option {key}: unexpected value {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Statement, parse};

    fn plan(sql: &str) -> Result<CreateSourcePlan, SqlError> {
        let Statement::CreateSource(create) = parse(sql).unwrap().remove(0) else {
            panic!()
        };
        plan_create_source(&create)
    }

    #[test]
    fn the_issue_example() {
        let p = plan(
            "CREATE SOURCE events (event_id VARCHAR, event_name VARCHAR NOT NULL, user_id VARCHAR, \
             ts TIMESTAMPTZ NOT NULL, amount DOUBLE, region VARCHAR, device VARCHAR, properties JSONB, \
             WATERMARK FOR ts AS ts - INTERVAL '5 seconds') \
             WITH (connector = 'http', dedup_key = 'event_id', dedup_window = '1 hour') FORMAT JSON",
        )
        .unwrap();
        assert_eq!(p.name, "events");
        assert_eq!(p.columns.len(), 8);
        assert!(!p.columns[1].nullable);
        assert_eq!(
            p.watermark,
            Some(Watermark {
                column: "ts".into(),
                delay_ms: 5_000
            })
        );
        assert_eq!(
            p.options.dedup,
            Some(Dedup {
                key: "event_id".into(),
                window_ms: 3_600_000
            })
        );
        assert_eq!(p.options.unknown_fields, UnknownFields::Reject);
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = |sql: &str| plan(sql).unwrap_err().to_string();
        assert!(
            err("CREATE SOURCE s (a INT) WITH (connector = 'http', colour = 'red')")
                .contains("\"colour\"")
        );
        assert!(err("CREATE SOURCE s (a INT)").contains("connector"));
        assert!(err("CREATE SOURCE s (a INT) WITH (connector = 'ftp')").contains("ftp"));
        assert!(err("CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts + INTERVAL '1 second') WITH (connector = 'http')").contains("WATERMARK"));
        assert!(
            err("CREATE SOURCE s (a INT) WITH (connector = 'http', dedup_window = '1 hour')")
                .contains("dedup_key")
        );
        assert!(
            err("CREATE SOURCE s (a INT) WITH (connector = 'http') FORMAT AVRO").contains("AVRO")
        );
        assert!(matches!(
            plan("CREATE SOURCE s (a INT PRIMARY KEY) WITH (connector = 'http')"),
            Err(SqlError::Unsupported(_))
        ));
        let p = plan("CREATE SOURCE s (ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH (connector = 'http')").unwrap();
        assert_eq!(p.watermark.unwrap().delay_ms, 2_000);
    }
}
