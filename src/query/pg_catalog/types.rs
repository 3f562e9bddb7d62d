//! The Postgres type of a column: one answer for the wire (RowDescription) and the catalog
//! (`pg_attribute.atttypid`, `information_schema.columns.data_type`), so a driver that reads
//! both sees the same type.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use pgwire::api::Type;
use weir_catalog::JSON_METADATA_KEY;

/// The type a column of `field` is sent as.
pub fn wire_type(field: &FieldRef) -> Type {
    if field.metadata().contains_key(JSON_METADATA_KEY) {
        // `json`, not `jsonb`: its binary form is the text itself, so one encoding serves both
        // formats.
        return Type::JSON;
    }
    arrow_pg::datatypes::field_into_pg_type(field).unwrap_or(Type::TEXT)
}

/// What the catalog says about a column's type.
#[derive(Debug, Clone)]
pub struct ColumnType {
    pub oid: i32,
    /// `pg_type.typname`, which `information_schema` calls the `udt_name`.
    pub type_name: String,
    /// `information_schema.columns.data_type`: the SQL standard's spelling.
    pub sql_name: &'static str,
    /// `pg_attribute.atttypmod`: precision and scale of a numeric, else -1.
    pub typmod: i32,
    /// `attlen`, `attbyval`, `attalign`, as `pg_type` has them.
    pub len: i16,
    pub by_value: bool,
    pub align: &'static str,
    /// `numeric_precision`, `numeric_precision_radix`, `numeric_scale`.
    pub numeric: Option<(i32, i32, Option<i32>)>,
    /// `datetime_precision`.
    pub datetime_precision: Option<i32>,
}

impl ColumnType {
    pub fn of(field: &FieldRef) -> Self {
        let ty = wire_type(field);
        let oid = ty.oid() as i32;
        let (len, sql_name) = match ty {
            Type::BOOL => (1, "boolean"),
            Type::INT2 => (2, "smallint"),
            Type::INT4 => (4, "integer"),
            Type::INT8 => (8, "bigint"),
            Type::FLOAT4 => (4, "real"),
            Type::FLOAT8 => (8, "double precision"),
            Type::NUMERIC => (-1, "numeric"),
            Type::TEXT => (-1, "text"),
            Type::VARCHAR => (-1, "character varying"),
            Type::BYTEA => (-1, "bytea"),
            Type::DATE => (4, "date"),
            Type::TIME => (8, "time without time zone"),
            Type::TIMESTAMP => (8, "timestamp without time zone"),
            Type::TIMESTAMPTZ => (8, "timestamp with time zone"),
            Type::INTERVAL => (16, "interval"),
            Type::JSON => (-1, "json"),
            Type::JSONB => (-1, "jsonb"),
            Type::OID => (4, "oid"),
            Type::CHAR => (1, "\"char\""),
            Type::NAME => (64, "name"),
            _ if matches!(field.data_type(), DataType::List(_)) => (-1, "ARRAY"),
            _ => (-1, "USER-DEFINED"),
        };
        let typmod = match field.data_type() {
            DataType::Decimal128(precision, scale) => {
                ((*precision as i32) << 16 | (*scale as i32 & 0xffff)) + 4
            }
            _ => -1,
        };
        let numeric = match (field.data_type(), sql_name) {
            (DataType::Decimal128(precision, scale), _) => {
                Some((*precision as i32, 10, Some(*scale as i32)))
            }
            (_, "smallint") => Some((16, 2, Some(0))),
            (_, "integer") => Some((32, 2, Some(0))),
            (_, "bigint") => Some((64, 2, Some(0))),
            // Binary precision, and no scale: floating point.
            (_, "real") => Some((24, 2, None)),
            (_, "double precision") => Some((53, 2, None)),
            _ => None,
        };
        let datetime_precision = match sql_name {
            "date" => Some(0),
            "time without time zone"
            | "timestamp without time zone"
            | "timestamp with time zone"
            | "interval" => Some(6),
            _ => None,
        };
        Self {
            oid,
            type_name: ty.name().to_string(),
            sql_name,
            typmod,
            len,
            by_value: matches!(len, 1 | 2 | 4 | 8),
            align: match len {
                1 => "c",
                2 => "s",
                4 => "i",
                _ => "d",
            },
            numeric,
            datetime_precision,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::TimeUnit;
    use weir_catalog::ColumnType as WeirType;

    use super::*;

    #[test]
    fn catalog_types_match_what_postgres_reports() {
        let cases = [
            (WeirType::Int64, 20, "bigint", "int8", -1, 8),
            (WeirType::Float64, 701, "double precision", "float8", -1, 8),
            (WeirType::Text, 25, "text", "text", -1, -1),
            (WeirType::Json, 114, "json", "json", -1, -1),
            (
                WeirType::Timestamp,
                1114,
                "timestamp without time zone",
                "timestamp",
                -1,
                8,
            ),
            (
                WeirType::TimestampTz,
                1184,
                "timestamp with time zone",
                "timestamptz",
                -1,
                8,
            ),
            (
                WeirType::Numeric {
                    precision: 10,
                    scale: 2,
                },
                1700,
                "numeric",
                "numeric",
                (10 << 16 | 2) + 4,
                -1,
            ),
        ];
        for (weir, oid, sql_name, type_name, typmod, len) in cases {
            let ty = ColumnType::of(&Arc::new(weir.arrow_field("c", true)));
            assert_eq!(
                (
                    ty.oid,
                    ty.sql_name,
                    ty.type_name.as_str(),
                    ty.typmod,
                    ty.len
                ),
                (oid, sql_name, type_name, typmod, len),
                "{weir:?}"
            );
        }
        let ts = Arc::new(datafusion::arrow::datatypes::Field::new(
            "t",
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00"))),
            false,
        ));
        assert_eq!(wire_type(&ts), Type::TIMESTAMPTZ);
    }
}
