//! `current_setting(name [, missing_ok])`, `set_config(name, value, is_local)` and
//! `current_database()`: functions of the session, which DataFusion's shared context cannot see. Calls with constant arguments are
//! bound before planning: `current_setting` becomes the setting's value, `set_config` changes
//! the setting and becomes the new value (Grafana reads `current_setting('search_path')`).

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value, visit_expressions,
    visit_expressions_mut,
};

use super::{QueryError, Session};

/// `statement` with its `current_setting` and `set_config` calls bound to `session`; the
/// statement itself, not a copy, when it calls neither (nearly every query).
pub(super) fn bind<'a>(
    statement: &'a ast::Statement,
    session: &Session,
) -> Result<Cow<'a, ast::Statement>, QueryError> {
    let calls_one = visit_expressions(statement, |expr| {
        if session_function(expr).is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break();
    if !calls_one {
        return Ok(Cow::Borrowed(statement));
    }
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
        None => Ok(Cow::Owned(statement)),
    }
}

/// The name (`current_setting` or `set_config`) if `expr` calls one of the session functions.
fn session_function(expr: &Expr) -> Option<&'static str> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    match name.strip_prefix("pg_catalog.").unwrap_or(&name) {
        "current_setting" => Some("current_setting"),
        "set_config" => Some("set_config"),
        "current_database" | "current_catalog" => Some("current_database"),
        _ => None,
    }
}

/// The literal a call evaluates to, if `expr` is one of these calls with constant arguments.
fn bound(expr: &Expr, session: &Session) -> Result<Option<Expr>, QueryError> {
    let (Some(name), Expr::Function(function)) = (session_function(expr), expr) else {
        return Ok(None);
    };
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
        ("current_database", []) => Ok(Some(literal(Some(session.database().to_string())))),
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
