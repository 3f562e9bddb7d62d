//! `current_setting(name [, missing_ok])` and `set_config(name, value, is_local)`: functions of
//! the session, which DataFusion's shared context cannot see. Calls with constant arguments are
//! bound before planning: `current_setting` becomes the setting's value, `set_config` changes
//! the setting and becomes the new value (Grafana reads `current_setting('search_path')`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value, visit_expressions_mut,
};

use super::{QueryError, Session};

/// `statement` with its `current_setting` and `set_config` calls bound to `session`.
pub(super) fn bind(
    statement: &ast::Statement,
    session: &Session,
) -> Result<ast::Statement, QueryError> {
    let mut statement = statement.clone();
    let mut failed = None;
    let _ = visit_expressions_mut(&mut statement, |expr| {
        match bound(expr, session) {
            Ok(Some(value)) => *expr = value,
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(statement),
    }
}

/// The literal a call evaluates to, if `expr` is one of these calls with constant arguments.
fn bound(expr: &Expr, session: &Session) -> Result<Option<Expr>, QueryError> {
    let Expr::Function(function) = expr else {
        return Ok(None);
    };
    let name = function.name.to_string().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let FunctionArguments::List(list) = &function.args else {
        return Ok(None);
    };
    let arguments: Option<Vec<Value>> = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => Some(v.value.clone()),
            _ => None,
        })
        .collect();
    let Some(arguments) = arguments else {
        return Ok(None);
    };
    let text = |v: &Value| match v {
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
        _ => None,
    };
    let literal = |value: Option<String>| {
        Expr::value(match value {
            Some(value) => Value::SingleQuotedString(value),
            None => Value::Null,
        })
    };
    match (name, arguments.as_slice()) {
        ("current_setting", [setting]) => {
            let Some(setting) = text(setting) else {
                return Ok(None);
            };
            Ok(Some(literal(Some(session.get(&setting)?.1))))
        }
        ("current_setting", [setting, missing_ok]) => {
            let Some(setting) = text(setting) else {
                return Ok(None);
            };
            let missing_ok = matches!(missing_ok, Value::Boolean(true));
            match session.get(&setting) {
                Ok((_, value)) => Ok(Some(literal(Some(value)))),
                Err(_) if missing_ok => Ok(Some(literal(None))),
                Err(e) => Err(e),
            }
        }
        ("set_config", [setting, value, _is_local]) => {
            let (Some(setting), Some(value)) = (text(setting), text(value)) else {
                return Ok(None);
            };
            session.set(&setting, Some(value))?;
            Ok(Some(literal(Some(session.get(&setting)?.1))))
        }
        _ => Ok(None),
    }
}
