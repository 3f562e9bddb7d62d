//! The statement parser: Weir's statements first, then sqlparser's PostgreSQL dialect.
//!
//! Weir statements are recognised by their leading keywords before sqlparser sees the text, so
//! adding one never changes how standard SQL parses.

use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::{SqlError, depth};
use weir_catalog::Emit;

use crate::ast::{CreateSource, CreateView, DropObjects, UserStatement, WeirObject};

/// One statement, as Weir understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Standard SQL: queries, DML, table DDL, `SET`/`SHOW`, transaction control.
    Standard(Box<ast::Statement>),
    /// `FLUSH`: wait until everything acknowledged so far is visible to queries.
    Flush,
    /// `CREATE SOURCE`.
    CreateSource(Box<CreateSource>),
    /// `CREATE MATERIALIZED VIEW`.
    CreateView(Box<CreateView>),
    /// `DROP SOURCE`, `DROP MATERIALIZED VIEW`.
    Drop(DropObjects),
    /// `SHOW SOURCES`, `SHOW MATERIALIZED VIEWS`.
    Show(WeirObject),
    /// `CREATE`, `ALTER`, `DROP` `USER` or `ROLE`.
    User(UserStatement),
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Standard(s) => write!(f, "{s}"),
            Self::Flush => write!(f, "FLUSH"),
            Self::CreateSource(c) => write!(f, "{}", c.text),
            Self::CreateView(c) => write!(f, "{}", c.text),
            Self::Drop(d) => write!(
                f,
                "DROP {:?} {}",
                d.kind,
                d.names
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Show(kind) => write!(f, "SHOW {kind:?}S"),
            // Never the password: statements are logged.
            Self::User(user) => match user {
                UserStatement::Create { name, .. } => write!(f, "CREATE USER {name}"),
                UserStatement::Alter { name, .. } => write!(f, "ALTER USER {name}"),
                UserStatement::Drop { names, .. } => write!(f, "DROP USER {}", names.join(", ")),
            },
        }
    }
}

/// Weir statements that later capabilities add; until then they are refused by name, so a user
/// learns the feature is missing rather than reading a confusing syntax error.
const PLANNED: &[(&[&str], &str)] = &[
    (&["CREATE", "ALERT"], "CREATE ALERT"),
    (&["DROP", "ALERT"], "DROP ALERT"),
];

/// Parses `sql` into statements. Empty statements (`;;`) are skipped.
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax_error(sql, e.into()))?;
    // Before the tree exists: dropping a too-deep one would overflow the stack as well.
    if depth::nesting_bound(tokens.iter().map(|t| &t.token), depth::MAX_NESTING).is_none() {
        return Err(too_deep());
    }
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(depth::PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let start = parser.peek_token().span.start;
        let statement = parse_one(&mut parser, sql, start).map_err(|e| match e {
            ParseFailure::Syntax(ParserError::RecursionLimitExceeded) => too_deep(),
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

fn parse_one(
    parser: &mut Parser<'_>,
    sql: &str,
    start: Location,
) -> Result<Statement, ParseFailure> {
    let words = leading_words(parser, 3);
    let first: Vec<&str> = words.iter().map(String::as_str).collect();
    match first.as_slice() {
        ["FLUSH", ..] => {
            parser.next_token();
            return Ok(Statement::Flush);
        }
        ["CREATE", "SOURCE", ..] => {
            return parse_create_source(parser, sql, start).map_err(ParseFailure::Syntax);
        }
        ["DROP", "SOURCE", ..] => {
            return parse_drop(parser, WeirObject::Source).map_err(ParseFailure::Syntax);
        }
        ["SHOW", "SOURCES", ..] => {
            parser.next_token();
            parser.next_token();
            return Ok(Statement::Show(WeirObject::Source));
        }
        ["CREATE", "MATERIALIZED", "VIEW"] => {
            return parse_create_view(parser, sql, start).map_err(ParseFailure::Syntax);
        }
        ["DROP", "MATERIALIZED", "VIEW"] => {
            parser.next_token(); // DROP; parse_drop takes the two words after it
            return parse_drop(parser, WeirObject::View).map_err(ParseFailure::Syntax);
        }
        ["CREATE" | "ALTER" | "DROP", "USER" | "ROLE", ..] => {
            return crate::users::parse_user_statement(parser)
                .map(Statement::User)
                .map_err(ParseFailure::Syntax);
        }
        ["SHOW", "MATERIALIZED", "VIEWS"] => {
            for _ in 0..3 {
                parser.next_token();
            }
            return Ok(Statement::Show(WeirObject::View));
        }
        _ => {}
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

fn parse_create_source(
    parser: &mut Parser<'_>,
    sql: &str,
    start: Location,
) -> Result<Statement, ParserError> {
    parser.next_token(); // CREATE
    parser.next_token(); // SOURCE
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?;
    parser.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    loop {
        if parse_word(parser, "WATERMARK") {
            if watermark.is_some() {
                return parser.expected("one WATERMARK clause", parser.peek_token());
            }
            parser.expect_keyword(Keyword::FOR)?;
            let column = parser.parse_identifier()?;
            parser.expect_keyword(Keyword::AS)?;
            watermark = Some((column, parser.parse_expr()?));
        } else {
            columns.push(parser.parse_column_def()?);
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    let options = if parser.parse_keyword(Keyword::WITH) {
        parse_source_options(parser)?
    } else {
        Vec::new()
    };
    let mut format = Vec::new();
    if parse_word(parser, "FORMAT") {
        loop {
            match parser.peek_token().token {
                Token::Word(w) if w.quote_style.is_none() => {
                    parser.next_token();
                    format.push(w.value.to_ascii_uppercase());
                }
                _ => break,
            }
        }
        if format.is_empty() {
            return parser.expected("a format after FORMAT", parser.peek_token());
        }
    }
    let end = parser.peek_token().span.start;
    let text = statement_text(sql, start, end);
    Ok(Statement::CreateSource(Box::new(CreateSource {
        name,
        if_not_exists,
        columns,
        watermark,
        options,
        format,
        text,
    })))
}

fn parse_create_view(
    parser: &mut Parser<'_>,
    sql: &str,
    start: Location,
) -> Result<Statement, ParserError> {
    for _ in 0..3 {
        parser.next_token(); // CREATE MATERIALIZED VIEW
    }
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?;
    parser.expect_keyword(Keyword::AS)?;
    // The query ends before a top-level `EMIT ON`; parsed alone, since sqlparser would read a
    // trailing EMIT as a table alias.
    let mut query_tokens = Vec::new();
    let mut depth = 0usize;
    loop {
        let token = parser.peek_nth_token(query_tokens.len());
        match &token.token {
            Token::EOF | Token::SemiColon if depth == 0 => break,
            Token::Word(w)
                if depth == 0
                    && w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("EMIT")
                    && matches!(&parser.peek_nth_token(query_tokens.len() + 1).token,
                        Token::Word(on) if on.keyword == Keyword::ON) =>
            {
                break;
            }
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::EOF => break,
            _ => {}
        }
        query_tokens.push(token);
    }
    let consumed = query_tokens.len();
    let mut query_parser =
        Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(query_tokens);
    let query = query_parser.parse_query()?;
    if query_parser.peek_token().token != Token::EOF {
        return query_parser.expected("the end of the view's query", query_parser.peek_token());
    }
    for _ in 0..consumed {
        parser.next_token();
    }
    let mut emit = Emit::OnUpdate;
    if parse_word(parser, "EMIT") {
        parser.expect_keyword(Keyword::ON)?;
        if parser.parse_keyword(Keyword::UPDATE) {
            emit = Emit::OnUpdate;
        } else if parse_word(parser, "WINDOW") {
            parser.expect_keyword(Keyword::CLOSE)?;
            emit = Emit::OnWindowClose;
        } else {
            return parser.expected("UPDATE or WINDOW CLOSE after EMIT ON", parser.peek_token());
        }
    }
    let end = parser.peek_token().span.start;
    Ok(Statement::CreateView(Box::new(CreateView {
        name,
        if_not_exists,
        query,
        emit,
        text: statement_text(sql, start, end),
    })))
}

fn parse_drop(parser: &mut Parser<'_>, kind: WeirObject) -> Result<Statement, ParserError> {
    parser.next_token(); // DROP (or MATERIALIZED)
    parser.next_token(); // SOURCE (or VIEW)
    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let names = parser.parse_comma_separated(|p| p.parse_object_name(false))?;
    let cascade = matches!(
        parser.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]),
        Some(Keyword::CASCADE)
    );
    Ok(Statement::Drop(DropObjects {
        kind,
        names,
        if_exists,
        cascade,
    }))
}

/// Consumes the next token if it is the unquoted word `word` (case-insensitive).
/// `(key = value, ...)`, where a key may be dotted (`properties.bootstrap.server`), as
/// RisingWave writes connector properties.
fn parse_source_options(parser: &mut Parser<'_>) -> Result<Vec<ast::SqlOption>, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let mut options = Vec::new();
    loop {
        let mut key = parser.parse_identifier()?;
        while parser.consume_token(&Token::Period) {
            let part = parser.parse_identifier()?;
            key.value = format!("{}.{}", key.value, part.value);
        }
        parser.expect_token(&Token::Eq)?;
        let value = parser.parse_expr()?;
        options.push(ast::SqlOption::KeyValue { key, value });
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    Ok(options)
}

fn parse_word(parser: &mut Parser<'_>, word: &str) -> bool {
    match &parser.peek_token().token {
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word) => {
            parser.next_token();
            true
        }
        _ => false,
    }
}

/// The text between two token locations; the rest of the input if `end` is unknown (EOF).
fn statement_text(sql: &str, start: Location, end: Location) -> String {
    let from = char_offset(sql, start).map_or(0, |p| p - 1);
    let to = if end.line == 0 {
        None
    } else {
        char_offset(sql, end).map(|p| p - 1)
    };
    let chars: Vec<char> = sql.chars().collect();
    let to = to.unwrap_or(chars.len()).min(chars.len());
    chars[from.min(to)..to]
        .iter()
        .collect::<String>()
        .trim()
        .to_string()
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

fn too_deep() -> SqlError {
    SqlError::TooDeep {
        limit: depth::MAX_NESTING,
        calls: depth::MAX_NESTED_CALLS,
        scopes: depth::MAX_SCOPES,
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
    fn create_source_in_risingwave_shape() {
        let sql = "CREATE SOURCE IF NOT EXISTS events (id VARCHAR, ts TIMESTAMPTZ NOT NULL, \
                   WATERMARK FOR ts AS ts - INTERVAL '5 seconds') \
                   WITH (connector = 'http', dedup_key = 'id') FORMAT PLAIN ENCODE JSON; SELECT 1";
        let statements = parse(sql).unwrap();
        assert_eq!(statements.len(), 2);
        let Statement::CreateSource(source) = &statements[0] else {
            panic!("{statements:?}")
        };
        assert!(source.if_not_exists);
        assert_eq!(source.columns.len(), 2);
        let (column, expr) = source.watermark.as_ref().unwrap();
        assert_eq!(column.value, "ts");
        assert_eq!(expr.to_string(), "ts - INTERVAL '5 seconds'");
        assert_eq!(source.options.len(), 2);
        assert_eq!(source.format, ["PLAIN", "ENCODE", "JSON"]);
        assert!(
            source
                .text
                .starts_with("CREATE SOURCE IF NOT EXISTS events")
        );
        assert!(source.text.ends_with("ENCODE JSON"), "{}", source.text);

        let Statement::Drop(drop) = &parse("DROP SOURCE IF EXISTS a, b CASCADE").unwrap()[0] else {
            panic!()
        };
        assert!(drop.if_exists && drop.cascade && drop.names.len() == 2);
        assert_eq!(
            parse("show sources").unwrap()[0],
            Statement::Show(WeirObject::Source)
        );
        assert!(matches!(
            parse("CREATE SOURCE s (a INT"),
            Err(SqlError::Syntax { .. })
        ));
    }

    #[test]
    fn planned_statements_are_refused_by_name() {
        assert!(matches!(
            parse("create alert a on v"),
            Err(SqlError::Unsupported(_))
        ));
    }

    #[test]
    fn user_statements_in_postgres_shape() {
        let parsed = parse(
            "CREATE USER alice WITH PASSWORD 'se''cret'; CREATE ROLE readers; \
             ALTER USER alice WITH LOGIN ENCRYPTED PASSWORD 'x' SUPERUSER; \
             ALTER ROLE readers PASSWORD NULL; DROP USER IF EXISTS alice, readers",
        )
        .unwrap();
        let options = |login, password: Option<Option<&str>>| crate::ast::UserOptions {
            login,
            password: password.map(|p| p.map(String::from)),
        };
        assert_eq!(
            parsed,
            vec![
                Statement::User(UserStatement::Create {
                    name: "alice".into(),
                    if_not_exists: false,
                    options: options(Some(true), Some(Some("se'cret"))),
                }),
                Statement::User(UserStatement::Create {
                    name: "readers".into(),
                    if_not_exists: false,
                    options: options(Some(false), None),
                }),
                Statement::User(UserStatement::Alter {
                    name: "alice".into(),
                    options: options(Some(true), Some(Some("x"))),
                }),
                Statement::User(UserStatement::Alter {
                    name: "readers".into(),
                    options: options(None, Some(None)),
                }),
                Statement::User(UserStatement::Drop {
                    names: vec!["alice".into(), "readers".into()],
                    if_exists: true,
                }),
            ]
        );
        assert!(parsed[0].to_string() == "CREATE USER alice");
        let err = parse("CREATE USER bob VALID UNTIL 'infinity'").unwrap_err();
        assert!(
            err.to_string().contains("unsupported role option VALID"),
            "{err}"
        );
    }

    #[test]
    fn materialized_views() {
        let statements = parse(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v AS SELECT count(*) FROM e EMIT ON WINDOW CLOSE",
        )
        .unwrap();
        let [Statement::CreateView(view)] = statements.as_slice() else {
            panic!("not a view")
        };
        assert!(view.if_not_exists);
        assert_eq!(view.emit, Emit::OnWindowClose);
        assert_eq!(view.query.to_string(), "SELECT count(*) FROM e");
        let statements = parse("drop materialized view if exists v cascade").unwrap();
        let [Statement::Drop(drop)] = statements.as_slice() else {
            panic!("not a drop")
        };
        assert_eq!(drop.kind, WeirObject::View);
        assert_eq!(drop.names[0].to_string(), "v");
        assert!(drop.if_exists && drop.cascade);
        assert_eq!(
            parse("SHOW MATERIALIZED VIEWS").unwrap(),
            vec![Statement::Show(WeirObject::View)]
        );
    }
}
