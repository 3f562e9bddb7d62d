//! `CREATE`/`ALTER`/`DROP USER` (and `ROLE`): passwords become SCRAM verifiers before they are
//! stored, and the command tags are Postgres' (`CREATE ROLE` for both forms).

use weir_sql::ast::{UserOptions, UserStatement};

use super::{QueryError, QueryResult};
use crate::auth::{User, Users, Verifier};

/// Runs a user statement.
pub fn execute(users: &Users, statement: &UserStatement) -> Result<QueryResult, QueryError> {
    match statement {
        UserStatement::Create {
            name,
            if_not_exists,
            options,
        } => {
            let user = User {
                login: options.login.unwrap_or(true),
                password: options.password.clone().flatten().map(|p| verifier_of(&p)),
            };
            users.create(name, user, *if_not_exists)?;
            Ok(QueryResult::Command("CREATE ROLE".into()))
        }
        UserStatement::Alter { name, options } => {
            let UserOptions { login, password } = options.clone();
            users.alter(name, |user| {
                if let Some(login) = login {
                    user.login = login;
                }
                if let Some(password) = password {
                    user.password = password.map(|p| verifier_of(&p));
                }
            })?;
            Ok(QueryResult::Command("ALTER ROLE".into()))
        }
        UserStatement::Drop { names, if_exists } => {
            for name in names {
                users.drop_user(name, *if_exists)?;
            }
            Ok(QueryResult::Command("DROP ROLE".into()))
        }
    }
}

/// The stored form of a password: a SCRAM verifier, made here unless the client sent one
/// already (as `psql`'s `\password` and `pg_dumpall` do).
fn verifier_of(password: &str) -> String {
    match Verifier::parse(password) {
        Some(verifier) => verifier.to_string(),
        None => Verifier::new(password).to_string(),
    }
}
