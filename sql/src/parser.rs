//! The statement parser: Weir's statements first, then sqlparser's PostgreSQL dialect.
//!
//! Weir statements are recognised by their leading keywords before sqlparser sees the text, so
//! adding one never changes how standard SQL parses.

use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::SqlError;

/// One statement, as Weir understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Standard SQL: queries, DML, table DDL, `SET`/`SHOW`, transaction control.
    Standard(Box<ast::Statement>),
    /// `FLUSH`: wait until everything acknowledged so far is visible to queries.
    Flush,
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Standard(s) => write!(f, "{s}"),
            Self::Flush => write!(f, "FLUSH"),
        }
    }
}

/// Weir statements that later capabilities add; until then they are refused by name, so a user
/// learns the feature is missing rather than reading a confusing syntax error.
const PLANNED: &[(&[&str], &str)] = &[
    (&["CREATE", "SOURCE"], "CREATE SOURCE"),
    (
        &["CREATE", "MATERIALIZED", "VIEW"],
        "CREATE MATERIALIZED VIEW",
    ),
    (&["CREATE", "ALERT"], "CREATE ALERT"),
    (&["DROP", "SOURCE"], "DROP SOURCE"),
    (&["DROP", "MATERIALIZED", "VIEW"], "DROP MATERIALIZED VIEW"),
    (&["DROP", "ALERT"], "DROP ALERT"),
];

/// Parses `sql` into statements. Empty statements (`;;`) are skipped.
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| syntax_error(sql, e))?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let statement = parse_one(&mut parser).map_err(|e| match e {
            ParseFailure::Syntax(e) => syntax_error(sql, e),
            ParseFailure::Planned(feature) => SqlError::Unsupported(feature.to_string()),
        })?;
        statements.push(statement);
        let next = parser.peek_token();
        if next.token != Token::EOF && next.token != Token::SemiColon {
            return Err(SqlError::Syntax {
                message: format!(
                    "unexpected {} after the end of a statement",
                    describe(&next)
                ),
                position: char_offset(sql, next.span.start),
            });
        }
    }
    Ok(statements)
}

enum ParseFailure {
    Syntax(ParserError),
    Planned(&'static str),
}

fn parse_one(parser: &mut Parser<'_>) -> Result<Statement, ParseFailure> {
    let words = leading_words(parser, 3);
    if words.first().map(String::as_str) == Some("FLUSH") {
        parser.next_token();
        return Ok(Statement::Flush);
    }
    for (keywords, feature) in PLANNED {
        if words.len() >= keywords.len() && words.iter().zip(keywords.iter()).all(|(w, k)| w == k) {
            return Err(ParseFailure::Planned(feature));
        }
    }
    parser
        .parse_statement()
        .map(|s| Statement::Standard(Box::new(s)))
        .map_err(ParseFailure::Syntax)
}

/// The next `n` tokens as upper-case words, stopping at the first token that is not a word.
fn leading_words(parser: &Parser<'_>, n: usize) -> Vec<String> {
    parser
        .peek_tokens_with_location::<3>()
        .iter()
        .take(n)
        .map_while(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

fn describe(token: &TokenWithSpan) -> String {
    match &token.token {
        Token::Word(w) if w.keyword != Keyword::NoKeyword => format!("keyword {}", w.value),
        other => format!("\"{other}\""),
    }
}

/// Turns sqlparser's error, which ends in `at Line: L, Column: C`, into a message without the
/// location and a Postgres-style 1-based character position.
fn syntax_error(sql: &str, error: ParserError) -> SqlError {
    let text = match error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nests too deeply".to_string(),
    };
    let (message, position) = match text.rfind(" at Line: ") {
        Some(at) => {
            let location = parse_location(&text[at + " at Line: ".len()..]);
            (
                text[..at].to_string(),
                location.and_then(|l| char_offset(sql, l)),
            )
        }
        // sqlparser gives no location when the input ended early: point past its end, as
        // Postgres does.
        None => (text, Some(sql.chars().count() + 1)),
    };
    SqlError::Syntax { message, position }
}

fn parse_location(text: &str) -> Option<Location> {
    let (line, column) = text.split_once(", Column: ")?;
    let column: String = column.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some(Location {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// The 1-based character offset of a 1-based line/column location.
fn char_offset(sql: &str, location: Location) -> Option<usize> {
    if location.line == 0 {
        return None;
    }
    let mut offset = 0;
    for (i, line) in sql.split_inclusive('\n').enumerate() {
        if i + 1 == location.line as usize {
            return Some(offset + location.column as usize);
        }
        offset += line.chars().count();
    }
    Some(offset + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_weir_statements() {
        let statements = parse("SELECT 1; ; flush; INSERT INTO t VALUES (1)").unwrap();
        assert_eq!(statements.len(), 3);
        assert!(matches!(statements[0], Statement::Standard(_)));
        assert_eq!(statements[1], Statement::Flush);
        assert_eq!(statements[2].to_string(), "INSERT INTO t VALUES (1)");
        assert!(parse("  ;; ").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let SqlError::Syntax { message, position } = parse("SELECT 1;\nSELEC 2").unwrap_err()
        else {
            panic!("expected a syntax error");
        };
        assert!(message.contains("SELEC"), "{message}");
        assert_eq!(position, Some(11));
        assert!(matches!(
            parse("SELECT 1 2"),
            Err(SqlError::Syntax {
                position: Some(10),
                ..
            })
        ));
        assert!(matches!(
            parse("SELECT 1 +"),
            Err(SqlError::Syntax {
                position: Some(11),
                ..
            })
        ));
    }

    #[test]
    fn planned_statements_are_refused_by_name() {
        let err = parse("CREATE SOURCE events (a INT)").unwrap_err();
        assert_eq!(err.to_string(), "CREATE SOURCE is not supported");
        assert!(matches!(
            parse("create materialized view v as select 1"),
            Err(SqlError::Unsupported(_))
        ));
    }
}
