//! `CREATE SOURCE`: columns, the watermark, typed `WITH` options and the format, checked and
//! turned into the parts of a catalog [`SourceDef`](weir_catalog::SourceDef).

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, SqlOption, Value};
use weir_catalog::{
    ColumnDef, ColumnType, Connector, Dedup, Encoding, KAFKA_PARTITION_COLUMN, KafkaOptions,
    SourceOptions, StartupMode, UnknownFields, Watermark,
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
    "topic",
    "properties.bootstrap.server",
    "properties.group.id",
    "scan.startup.mode",
    "scan.startup.timestamp.millis",
    "nexmark.table.type",
    "nexmark.event.num",
    "nexmark.min.event.gap.in.ns",
    "nexmark.base.time",
    "nexmark.max.chunk.size",
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
    let options = options(&create.options, &create.format)?;
    // Kafka watermarks are kept per partition, so every row says where it came from.
    if options.connector == Connector::Kafka
        && !columns.iter().any(|c| c.name == KAFKA_PARTITION_COLUMN)
    {
        columns.push(ColumnDef {
            name: KAFKA_PARTITION_COLUMN.into(),
            ty: ColumnType::Int32,
            nullable: false,
            default: None,
        });
    }
    Ok(CreateSourcePlan {
        name: object_name(&create.name)?,
        if_not_exists: create.if_not_exists,
        columns,
        watermark,
        options,
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
    let mut topic = None;
    let mut bootstrap_servers = None;
    let mut group_id = None;
    let mut startup_mode = None;
    let mut startup_millis = None;
    let mut nexmark = Vec::new();
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
                    "kafka" => Connector::Kafka,
                    "nexmark" => Connector::Nexmark,
                    other => {
                        return Err(SqlError::InvalidOption(format!(
                            "unknown connector '{other}' (expected 'http', 'kafka' or 'nexmark')"
                        )));
                    }
                })
            }
            "dedup_key" => dedup_key = Some(text),
            "dedup_window" => dedup_window = Some(parse_duration_ms(&text)?),
            "idle_timeout" => idle_timeout_ms = Some(parse_duration_ms(&text)?),
            "max_future_skew" => max_future_skew_ms = Some(parse_duration_ms(&text)?),
            "topic" => topic = Some(text),
            // RisingWave's name, and librdkafka's plural.
            "properties.bootstrap.server" | "properties.bootstrap.servers" => {
                bootstrap_servers = Some(text)
            }
            "properties.group.id" => group_id = Some(text),
            "scan.startup.mode" => startup_mode = Some(text.to_ascii_lowercase()),
            "scan.startup.timestamp.millis" | "scan.startup.timestamp_millis" => {
                startup_millis = Some(text.parse::<i64>().map_err(|_| {
                    SqlError::InvalidOption(format!(
                        "{key} must be milliseconds since the epoch, not '{text}'"
                    ))
                })?)
            }
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
            other if super::nexmark_options::KEYS.contains(&other) => {
                nexmark.push((key.clone(), text))
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
        SqlError::InvalidOption(
            "a source needs WITH (connector = 'http' | 'kafka' | 'nexmark')".into(),
        )
    })?;
    let nexmark = match (connector, nexmark.first()) {
        (Connector::Nexmark, _) => Some(super::nexmark_options::parse(&nexmark)?),
        (_, Some((key, _))) => {
            return Err(SqlError::InvalidOption(format!(
                "option {key} is for connector = 'nexmark'"
            )));
        }
        (_, None) => None,
    };
    let kafka = match connector {
        Connector::Kafka => {
            let startup = match (startup_mode.as_deref(), startup_millis) {
                (None | Some("earliest"), None) => StartupMode::Earliest,
                (Some("latest"), None) => StartupMode::Latest,
                (Some("timestamp"), Some(ms)) => StartupMode::Timestamp(ms),
                (Some("timestamp"), None) => {
                    return Err(SqlError::InvalidOption(
                        "scan.startup.mode = 'timestamp' needs scan.startup.timestamp.millis"
                            .into(),
                    ));
                }
                (_, Some(_)) => {
                    return Err(SqlError::InvalidOption(
                        "scan.startup.timestamp.millis needs scan.startup.mode = 'timestamp'"
                            .into(),
                    ));
                }
                (Some(other), None) => {
                    return Err(SqlError::InvalidOption(format!(
                        "scan.startup.mode must be 'earliest', 'latest' or 'timestamp', not '{other}'"
                    )));
                }
            };
            Some(KafkaOptions {
                topic: topic.ok_or_else(|| {
                    SqlError::InvalidOption("a Kafka source needs topic = '...'".into())
                })?,
                bootstrap_servers: bootstrap_servers.ok_or_else(|| {
                    SqlError::InvalidOption(
                        "a Kafka source needs properties.bootstrap.server = 'host:port'".into(),
                    )
                })?,
                startup,
                group_id,
            })
        }
        _ => {
            let kafka_keys = [
                (topic.is_some(), "topic"),
                (bootstrap_servers.is_some(), "properties.bootstrap.server"),
                (group_id.is_some(), "properties.group.id"),
                (startup_mode.is_some(), "scan.startup.mode"),
                (startup_millis.is_some(), "scan.startup.timestamp.millis"),
            ];
            if let Some((_, key)) = kafka_keys.iter().find(|(given, _)| *given) {
                return Err(SqlError::InvalidOption(format!(
                    "option {key} is for connector = 'kafka'"
                )));
            }
            None
        }
    };
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
        kafka,
        nexmark,
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
        assert!(
            err("CREATE SOURCE s (a INT) WITH (connector = 'kafka', topic = 't')")
                .contains("bootstrap")
        );
        assert!(
            err("CREATE SOURCE s (a INT) WITH (connector = 'http', topic = 't')")
                .contains("topic is for connector = 'kafka'")
        );
        assert!(
            err(
                "CREATE SOURCE s (a INT) WITH (connector = 'kafka', topic = 't', \
                 properties.bootstrap.server = 'h:1', scan.startup.mode = 'timestamp')"
            )
            .contains("scan.startup.timestamp.millis")
        );
    }

    #[test]
    fn kafka_sources_take_risingwave_option_names() {
        let p = plan(
            "CREATE SOURCE clicks (user_id VARCHAR, ts TIMESTAMPTZ, _offset BIGINT, \
             WATERMARK FOR ts AS ts - INTERVAL '5 seconds') WITH (connector = 'kafka', \
             topic = 'user_events', properties.bootstrap.server = '127.0.0.1:9092', \
             scan.startup.mode = 'timestamp', scan.startup.timestamp.millis = '1700000000000', \
             properties.group.id = 'weir-clicks') FORMAT JSON",
        )
        .unwrap();
        assert_eq!(p.options.connector, Connector::Kafka);
        assert_eq!(
            p.options.kafka,
            Some(KafkaOptions {
                topic: "user_events".into(),
                bootstrap_servers: "127.0.0.1:9092".into(),
                startup: StartupMode::Timestamp(1_700_000_000_000),
                group_id: Some("weir-clicks".into()),
            })
        );
        let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["user_id", "ts", "_offset", "_partition"],
            "the partition column is added when not declared"
        );
    }
}
