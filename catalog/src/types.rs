//! Column types: the SQL names users write, the Arrow types data is held in, and the Postgres
//! type each is shown to clients as. One table here keeps the three in step.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::CatalogError;

/// Arrow field metadata key marking a text column that holds JSON (`json` or `jsonb`), so the
/// wire layer can report it with a JSON type instead of `text`.
pub const JSON_METADATA_KEY: &str = "weir.json";

/// The time zone Arrow carries for `timestamptz`: instants are stored in UTC.
const UTC: &str = "+00:00";

/// The default precision and scale of an unconstrained `numeric`. Postgres stores arbitrary
/// precision; Arrow's `Decimal128` holds 38 digits, so Weir fixes a scale like DataFusion does.
const DEFAULT_NUMERIC: (u8, i8) = (38, 10);

/// A column type Weir can store. Persisted in the catalog, so variants are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    /// `boolean`
    Boolean,
    /// `smallint` / `int2`
    Int16,
    /// `integer` / `int4`
    Int32,
    /// `bigint` / `int8`
    Int64,
    /// `real` / `float4`
    Float32,
    /// `double precision` / `float8`
    Float64,
    /// `numeric(precision, scale)`
    Numeric {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `text`, `varchar(n)`, `char(n)`: the length limit is not enforced.
    Text,
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `timestamp` (without time zone), microsecond precision.
    Timestamp,
    /// `timestamptz`, microsecond precision, stored in UTC.
    TimestampTz,
    /// `interval`
    Interval,
    /// `json`: text holding a JSON document.
    Json,
    /// `jsonb`: text holding a JSON document.
    Jsonb,
    /// `boolean[]`: a list of booleans (`retention`'s answer).
    BooleanArray,
}

impl ColumnType {
    /// The type a SQL type name denotes (as sqlparser prints it, e.g. `VARCHAR(20)`,
    /// `TIMESTAMP WITH TIME ZONE`, `NUMERIC(10,2)`), or an error naming it.
    pub fn from_sql_name(name: &str) -> Result<Self, CatalogError> {
        let upper = name.trim().to_ascii_uppercase();
        let (base, args) = match upper.find('(') {
            Some(open) => (
                upper[..open].trim(),
                Some(upper[open + 1..].trim_end_matches(')')),
            ),
            None => (upper.as_str(), None),
        };
        let ty = match base {
            "BOOL" | "BOOLEAN" => Self::Boolean,
            "SMALLINT" | "INT2" => Self::Int16,
            "INT" | "INTEGER" | "INT4" => Self::Int32,
            "BIGINT" | "INT8" => Self::Int64,
            "REAL" | "FLOAT4" => Self::Float32,
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT" => Self::Float64,
            "NUMERIC" | "DECIMAL" => Self::numeric(args, name)?,
            "TEXT" | "VARCHAR" | "CHARACTER VARYING" | "CHAR" | "CHARACTER" | "STRING"
            | "BPCHAR" => Self::Text,
            "BYTEA" => Self::Bytea,
            "DATE" => Self::Date,
            "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => Self::Timestamp,
            "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => Self::TimestampTz,
            "INTERVAL" => Self::Interval,
            "BOOLEAN[]" | "BOOL[]" => Self::BooleanArray,
            "JSON" => Self::Json,
            "JSONB" => Self::Jsonb,
            _ => return Err(CatalogError::UnsupportedType(name.to_string())),
        };
        Ok(ty)
    }

    fn numeric(args: Option<&str>, name: &str) -> Result<Self, CatalogError> {
        let Some(args) = args else {
            let (precision, scale) = DEFAULT_NUMERIC;
            return Ok(Self::Numeric { precision, scale });
        };
        let bad = || CatalogError::UnsupportedType(name.to_string());
        let mut parts = args.split(',').map(|p| p.trim().parse::<u8>());
        let precision = parts.next().ok_or_else(bad)?.map_err(|_| bad())?;
        let scale = parts.next().transpose().map_err(|_| bad())?.unwrap_or(0);
        if precision == 0 || precision > 38 || scale > precision {
            return Err(CatalogError::InvalidDefinition(format!(
                "NUMERIC precision {precision} and scale {scale} must satisfy 0 <= scale <= precision <= 38"
            )));
        }
        Ok(Self::Numeric {
            precision,
            scale: scale as i8,
        })
    }

    /// The Arrow type values of this column are held in.
    pub fn arrow_type(self) -> DataType {
        match self {
            Self::Boolean => DataType::Boolean,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Numeric { precision, scale } => DataType::Decimal128(precision, scale),
            Self::Text | Self::Json | Self::Jsonb => DataType::Utf8,
            Self::Bytea => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC))),
            Self::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Self::BooleanArray => {
                DataType::List(Arc::new(Field::new_list_field(DataType::Boolean, true)))
            }
        }
    }

    /// The Arrow field for a column of this type, with the metadata the wire layer reads.
    pub fn arrow_field(self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.arrow_type(), nullable);
        match self {
            Self::Json | Self::Jsonb => field.with_metadata(HashMap::from([(
                JSON_METADATA_KEY.to_string(),
                self.sql_name(),
            )])),
            _ => field,
        }
    }

    /// The type a column created from a query result of this Arrow type gets
    /// (`CREATE TABLE ... AS SELECT`).
    pub fn from_arrow(field: &Field) -> Result<Self, CatalogError> {
        if let Some(json) = field.metadata().get(JSON_METADATA_KEY) {
            return Self::from_sql_name(json);
        }
        let ty = match field.data_type() {
            DataType::Boolean => Self::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => Self::Int16,
            DataType::Int32 | DataType::UInt16 => Self::Int32,
            DataType::Int64 | DataType::UInt32 => Self::Int64,
            DataType::UInt64 => Self::Numeric {
                precision: 20,
                scale: 0,
            },
            DataType::Float16 | DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Decimal128(precision, scale) if *scale >= 0 => Self::Numeric {
                precision: *precision,
                scale: *scale,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                Self::Text
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Bytea,
            DataType::Date32 | DataType::Date64 => Self::Date,
            DataType::Timestamp(_, None) => Self::Timestamp,
            DataType::Timestamp(_, Some(_)) => Self::TimestampTz,
            DataType::Interval(_) | DataType::Duration(_) => Self::Interval,
            DataType::List(item) if item.data_type() == &DataType::Boolean => Self::BooleanArray,
            other => return Err(CatalogError::UnsupportedType(other.to_string())),
        };
        Ok(ty)
    }

    /// The SQL name Weir prints for this type (`DESCRIBE`, error messages).
    pub fn sql_name(self) -> String {
        match self {
            Self::Boolean => "boolean".into(),
            Self::Int16 => "smallint".into(),
            Self::Int32 => "integer".into(),
            Self::Int64 => "bigint".into(),
            Self::Float32 => "real".into(),
            Self::Float64 => "double precision".into(),
            Self::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            Self::Text => "text".into(),
            Self::Bytea => "bytea".into(),
            Self::Date => "date".into(),
            Self::Timestamp => "timestamp".into(),
            Self::TimestampTz => "timestamptz".into(),
            Self::Interval => "interval".into(),
            Self::Json => "json".into(),
            Self::Jsonb => "jsonb".into(),
            Self::BooleanArray => "boolean[]".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_round_trip() {
        for name in [
            "boolean",
            "smallint",
            "integer",
            "bigint",
            "real",
            "double precision",
            "numeric(10,2)",
            "text",
            "bytea",
            "date",
            "timestamp",
            "timestamptz",
            "interval",
            "json",
            "jsonb",
            "boolean[]",
        ] {
            let ty = ColumnType::from_sql_name(name).unwrap();
            assert_eq!(ty.sql_name(), name);
            let field = ty.arrow_field("c", true);
            assert_eq!(ColumnType::from_arrow(&field).unwrap(), ty, "{name}");
        }
    }

    #[test]
    fn aliases_and_errors() {
        assert_eq!(
            ColumnType::from_sql_name("VARCHAR(20)").unwrap(),
            ColumnType::Text
        );
        assert_eq!(
            ColumnType::from_sql_name("TIMESTAMP WITH TIME ZONE").unwrap(),
            ColumnType::TimestampTz
        );
        assert_eq!(
            ColumnType::from_sql_name("NUMERIC").unwrap(),
            ColumnType::Numeric {
                precision: 38,
                scale: 10
            }
        );
        assert!(matches!(
            ColumnType::from_sql_name("geometry"),
            Err(CatalogError::UnsupportedType(_))
        ));
        assert!(ColumnType::from_sql_name("numeric(2,5)").is_err());
    }
}
