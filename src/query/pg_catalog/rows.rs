//! Catalog tables are small and rebuilt on every scan, so they are written row by row as
//! scalars, which keeps each table's code to its columns and its rows.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, new_empty_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion_pg_catalog::pg_catalog::oid_field::{kind, oid_field};

use super::ConnectedDatabase;
use super::snapshot::{CatalogSource, Snapshot};

/// The type of a catalog column.
#[derive(Debug, Clone, Copy)]
pub enum Col {
    /// An `oid`. Postgres types its catalog's references `oid`, not `regclass` and the like,
    /// and drivers read them as numbers (SQLAlchemy matches rows by them).
    Oid,
    Text,
    Bool,
    Int16,
    Int32,
    Float32,
    TextArray,
    Int16Array,
    OidArray,
}

pub const OID: Col = Col::Oid;

pub fn schema(columns: &[(&str, Col)]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, col)| match col {
            Col::Oid => oid_field(*name, kind::OID, true),
            Col::Text => Field::new(*name, DataType::Utf8, true),
            Col::Bool => Field::new(*name, DataType::Boolean, true),
            Col::Int16 => Field::new(*name, DataType::Int16, true),
            Col::Int32 => Field::new(*name, DataType::Int32, true),
            Col::Float32 => Field::new(*name, DataType::Float32, true),
            Col::TextArray => Field::new(*name, DataType::new_list(DataType::Utf8, true), true),
            Col::Int16Array => Field::new(*name, DataType::new_list(DataType::Int16, true), true),
            Col::OidArray => Field::new(*name, DataType::new_list(DataType::Int32, true), true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Rows of a catalog table under construction.
pub struct Rows {
    schema: SchemaRef,
    columns: Vec<Vec<ScalarValue>>,
}

impl Rows {
    pub fn new(schema: &SchemaRef) -> Self {
        Self {
            schema: schema.clone(),
            columns: vec![Vec::new(); schema.fields().len()],
        }
    }

    pub fn push(&mut self, row: Vec<ScalarValue>) {
        assert_eq!(
            row.len(),
            self.columns.len(),
            "a catalog row has every column"
        );
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
        }
    }

    pub fn finish(self) -> Result<RecordBatch> {
        let arrays = self
            .columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(values, field)| {
                if values.is_empty() {
                    return Ok(new_empty_array(field.data_type()));
                }
                let array = ScalarValue::iter_to_array(values)?;
                if array.data_type() == field.data_type() {
                    Ok(array)
                } else {
                    // Typed nulls of a list column, and the like.
                    Ok(datafusion::arrow::compute::cast(&array, field.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }
}

pub fn oid(value: i32) -> ScalarValue {
    ScalarValue::Int32(Some(value))
}

pub fn int16(value: i16) -> ScalarValue {
    ScalarValue::Int16(Some(value))
}

pub fn int32(value: i32) -> ScalarValue {
    ScalarValue::Int32(Some(value))
}

pub fn null_int32() -> ScalarValue {
    ScalarValue::Int32(None)
}

pub fn float32(value: f32) -> ScalarValue {
    ScalarValue::Float32(Some(value))
}

pub fn boolean(value: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(value))
}

pub fn text(value: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(value.into()))
}

pub fn null_text() -> ScalarValue {
    ScalarValue::Utf8(None)
}

pub fn opt_text(value: Option<impl Into<String>>) -> ScalarValue {
    ScalarValue::Utf8(value.map(Into::into))
}

pub fn int16_array(values: &[i16]) -> ScalarValue {
    let values: Vec<_> = values.iter().map(|v| int16(*v)).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int16))
}

pub fn oid_array(values: &[i32]) -> ScalarValue {
    let values: Vec<_> = values.iter().map(|v| oid(*v)).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int32))
}

pub fn null_list(item: DataType) -> ScalarValue {
    ScalarValue::try_from(DataType::new_list(item, true)).expect("lists have a null")
}

/// How a catalog table is made from the relations of a snapshot.
pub type Build = fn(&Snapshot, &SchemaRef) -> Result<RecordBatch>;

/// A catalog table: rebuilt from a fresh snapshot on each scan.
#[derive(Debug)]
pub struct CatalogTable {
    schema: SchemaRef,
    source: Arc<CatalogSource>,
    build: Build,
}

impl CatalogTable {
    pub fn provider(
        schema: SchemaRef,
        source: Arc<CatalogSource>,
        build: Build,
    ) -> Result<Arc<dyn TableProvider>> {
        let partition = Arc::new(Self {
            schema: schema.clone(),
            source,
            build,
        });
        Ok(Arc::new(StreamingTable::try_new(schema, vec![partition])?))
    }
}

impl PartitionStream for CatalogTable {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let source = self.source.clone();
        let build = self.build;
        let database = ctx
            .session_config()
            .get_extension::<ConnectedDatabase>()
            .map(|d| d.0.clone());
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(async move {
                let mut snapshot = source.snapshot()?;
                if let Some(database) = database {
                    snapshot.database = database;
                }
                build(&snapshot, &schema)
            }),
        ))
    }
}
