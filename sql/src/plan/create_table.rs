//! `CREATE TABLE`: column types, `NOT NULL`, `DEFAULT` and the primary key, checked and turned
//! into the columns of a catalog [`TableDef`](weir_catalog::TableDef).

use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, CreateTable, Expr, OrderByExpr, Query, TableConstraint,
};
use weir_catalog::{ColumnDef, ColumnType};

use super::names::{ident, object_name};
use crate::SqlError;

/// What a `CREATE TABLE` asks for, checked against everything that needs no catalog.
#[derive(Debug, Clone)]
pub struct CreateTablePlan {
    /// Normalized table name.
    pub name: String,
    /// Declared columns; empty for `CREATE TABLE ... AS SELECT` without a column list.
    pub columns: Vec<ColumnDef>,
    /// Primary-key column names, in key order.
    pub primary_key: Vec<String>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The query of `CREATE TABLE ... AS SELECT`.
    pub query: Option<Box<Query>>,
    /// The statement text, stored as the table's definition.
    pub definition: String,
}

/// Checks a `CREATE TABLE` and extracts what the catalog needs.
pub fn plan_create_table(create: &CreateTable) -> Result<CreateTablePlan, SqlError> {
    if create.or_replace || create.temporary || create.external {
        return Err(SqlError::Unsupported(
            "CREATE OR REPLACE, TEMPORARY or EXTERNAL TABLE".to_string(),
        ));
    }
    let mut primary_key = Vec::new();
    let mut columns = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let (def, is_key) = column_def(column)?;
        if is_key {
            set_key(&mut primary_key, vec![def.name.clone()])?;
        }
        columns.push(def);
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                let names = pk
                    .columns
                    .iter()
                    .map(|c| key_column(&c.column))
                    .collect::<Result<Vec<_>, _>>()?;
                set_key(&mut primary_key, names)?;
            }
            other => return Err(SqlError::Unsupported(format!("table constraint {other}"))),
        }
    }
    if create.query.is_some() && !columns.is_empty() {
        return Err(SqlError::Unsupported(
            "a column list in CREATE TABLE ... AS SELECT (alias the query's columns instead)"
                .to_string(),
        ));
    }
    Ok(CreateTablePlan {
        name: object_name(&create.name)?,
        columns,
        primary_key,
        if_not_exists: create.if_not_exists,
        query: create.query.clone(),
        definition: create.to_string(),
    })
}

/// A declared column, and whether it says `PRIMARY KEY`.
pub(super) fn column_def(column: &ast::ColumnDef) -> Result<(ColumnDef, bool), SqlError> {
    let mut def = ColumnDef {
        name: ident(&column.name),
        ty: ColumnType::from_sql_name(&column.data_type.to_string())?,
        nullable: true,
        default: None,
    };
    let mut is_key = false;
    for option in &column.options {
        match &option.option {
            ColumnOption::Null => def.nullable = true,
            ColumnOption::NotNull => def.nullable = false,
            ColumnOption::Default(expr) => def.default = Some(expr.to_string()),
            ColumnOption::PrimaryKey(_) => is_key = true,
            other => return Err(SqlError::Unsupported(format!("column option {other}"))),
        }
    }
    Ok((def, is_key))
}

fn set_key(key: &mut Vec<String>, columns: Vec<String>) -> Result<(), SqlError> {
    if !key.is_empty() {
        return Err(weir_catalog::CatalogError::InvalidDefinition(
            "multiple primary keys are not allowed".to_string(),
        )
        .into());
    }
    *key = columns;
    Ok(())
}

fn key_column(column: &OrderByExpr) -> Result<String, SqlError> {
    match &column.expr {
        Expr::Identifier(id) => Ok(ident(id)),
        other => Err(SqlError::Unsupported(format!(
            "primary key on expression {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Statement, parse};
    use datafusion::sql::sqlparser::ast;

    fn plan(sql: &str) -> Result<CreateTablePlan, SqlError> {
        let Statement::Standard(s) = parse(sql).unwrap().remove(0) else {
            panic!()
        };
        let ast::Statement::CreateTable(create) = *s else {
            panic!()
        };
        plan_create_table(&create)
    }

    #[test]
    fn columns_keys_defaults() {
        let p = plan(
            "CREATE TABLE IF NOT EXISTS Public.Users (ID BIGINT PRIMARY KEY, \"Name\" VARCHAR(20) NOT NULL, \
             score DOUBLE PRECISION DEFAULT 1.5)",
        )
        .unwrap();
        assert_eq!(p.name, "users");
        assert!(p.if_not_exists);
        assert_eq!(p.primary_key, vec!["id"]);
        assert_eq!(p.columns[1].name, "Name");
        assert!(!p.columns[1].nullable);
        assert_eq!(p.columns[2].ty, ColumnType::Float64);
        assert_eq!(p.columns[2].default.as_deref(), Some("1.5"));

        let p = plan("CREATE TABLE t (a INT, b TEXT, PRIMARY KEY (b, a))").unwrap();
        assert_eq!(p.primary_key, vec!["b", "a"]);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            plan("CREATE TABLE t (a geometry)"),
            Err(SqlError::Catalog(_))
        ));
        assert!(plan("CREATE TABLE t (a INT PRIMARY KEY, PRIMARY KEY (a))").is_err());
        assert!(matches!(
            plan("CREATE TABLE t (a INT CHECK (a > 0))"),
            Err(SqlError::Unsupported(_))
        ));
        assert!(matches!(
            plan("CREATE TABLE s.t (a INT)"),
            Err(SqlError::Unsupported(_))
        ));
    }
}
