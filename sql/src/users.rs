//! Parsing of the user statements ([`UserStatement`]). sqlparser reads `CREATE USER` and
//! `ALTER USER` in Snowflake's shape, so Weir reads Postgres' itself.

use datafusion::sql::sqlparser::ast::Value;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::ast::{UserOptions, UserStatement};

/// Options that are Postgres role privileges: accepted, without effect in Weir.
const PRIVILEGES: &[&str] = &[
    "SUPERUSER",
    "NOSUPERUSER",
    "CREATEDB",
    "NOCREATEDB",
    "CREATEROLE",
    "NOCREATEROLE",
    "INHERIT",
    "NOINHERIT",
    "REPLICATION",
    "NOREPLICATION",
    "BYPASSRLS",
    "NOBYPASSRLS",
];

/// Parses a user statement; the parser is at its first word (`CREATE`, `ALTER` or `DROP`),
/// which is followed by `USER` or `ROLE`.
pub fn parse_user_statement(parser: &mut Parser<'_>) -> Result<UserStatement, ParserError> {
    let verb = parser.next_token().to_string().to_ascii_uppercase();
    let is_user = parser.next_token().to_string().eq_ignore_ascii_case("USER");
    match verb.as_str() {
        "CREATE" => {
            let if_not_exists =
                parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = parser.parse_identifier()?.value;
            let mut options = parse_options(parser)?;
            options.login.get_or_insert(is_user);
            Ok(UserStatement::Create {
                name,
                if_not_exists,
                options,
            })
        }
        "ALTER" => {
            let name = parser.parse_identifier()?.value;
            let options = parse_options(parser)?;
            Ok(UserStatement::Alter { name, options })
        }
        _ => {
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let names = parser
                .parse_comma_separated(|p| p.parse_identifier())?
                .into_iter()
                .map(|i| i.value)
                .collect();
            Ok(UserStatement::Drop { names, if_exists })
        }
    }
}

fn parse_options(parser: &mut Parser<'_>) -> Result<UserOptions, ParserError> {
    let _ = parser.parse_keyword(Keyword::WITH);
    let mut options = UserOptions::default();
    loop {
        let token = parser.peek_token();
        let Token::Word(word) = &token.token else {
            break;
        };
        let word = word.value.to_ascii_uppercase();
        match word.as_str() {
            "LOGIN" | "NOLOGIN" => {
                parser.next_token();
                options.login = Some(word == "LOGIN");
            }
            "ENCRYPTED" | "PASSWORD" => {
                parser.next_token();
                if word == "ENCRYPTED" {
                    parser.expect_keyword(Keyword::PASSWORD)?;
                }
                options.password = Some(match parser.parse_value()?.value {
                    Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s),
                    Value::Null => None,
                    other => {
                        return Err(ParserError::ParserError(format!(
                            "PASSWORD takes a string or NULL, not {other}"
                        )));
                    }
                });
            }
            w if PRIVILEGES.contains(&w) => {
                parser.next_token();
            }
            _ => {
                return Err(ParserError::ParserError(format!(
                    "unsupported role option {word}: Weir takes LOGIN, NOLOGIN, PASSWORD and \
                     Postgres' privilege options"
                )));
            }
        }
    }
    Ok(options)
}
