//! How deep a statement's trees can be, read off its tokens before it is parsed.
//!
//! sqlparser builds a chain of infix operators (`1 + 1 + … + 1`, `a = 1 OR a = 2 OR …`,
//! `x::int::int`, `… UNION …`) in a loop, as a left-deep tree that its recursion limit never
//! sees, and every stage after the parser walks such trees recursively: the derived `Drop`,
//! `Clone`, `Hash` and `Display` of sqlparser's and DataFusion's expressions, Weir's rewrites,
//! the evaluation of physical expressions. A chain of 2,000 terms overflowed a thread's stack
//! and aborted the whole server. Postgres refuses such statements with 54001 once they pass
//! `max_stack_depth`; Weir refuses them before their tree exists (dropping a too-deep tree
//! would overflow as well), from [`nesting_bound`], an upper bound on the depth of every tree
//! the statement can become, and runs the threads that handle statements on stacks sized for
//! the deepest statement it admits ([`MAX_NESTING`]).
//!
//! The bound, in one pass over the tokens: a scope is opened by `(`, `[` or `CASE` and closed
//! by `)`, `]` or `END`; in each scope it counts the operators of the current item (reset by
//! `,` and by clause keywords, which separate sibling expressions) and the links of the
//! scope's chains (set operations and joins, which DataFusion plans as left-deep trees too).
//! The depth is at most the sum of those counts over the open scopes plus the scopes
//! themselves. It over-counts (a keyword operator like `IS NOT` counts twice), never under.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

/// The deepest statement Weir plans: a bound of [`nesting_bound`] above this is refused. Well
/// past what BI tools generate (a filter of a few thousand `OR`ed values), and low enough for
/// every stage's recursion to fit in the statement threads' stacks.
pub const MAX_NESTING: usize = 10_000;

/// The deepest nesting of function calls and subqueries Weir plans. DataFusion's planning
/// takes time exponential in it (each level types its arguments twice: 20 nested calls took
/// 1.8 s in a debug build, 25 a minute, 100 never ended), so deeper ones are refused before
/// they can hold a thread.
pub const MAX_NESTED_CALLS: usize = 12;

/// The deepest nesting of parentheses and `CASE`s Weir parses: each level costs sqlparser a few
/// levels of its recursion limit ([`PARSER_RECURSION_LIMIT`]), and some of its backtracking
/// turns that limit into a misleading syntax error, so deeper ones are refused here first.
pub const MAX_SCOPES: usize = 200;

/// The depth sqlparser's own recursion may reach (nested calls, subqueries, parentheses, prefix
/// operators), where its default of 50 would refuse statements Postgres runs. sqlparser grows
/// its stack on the heap as it recurses (`recursive-protection`), and [`nesting_bound`] counts
/// every level the limit lets through.
pub const PARSER_RECURSION_LIMIT: usize = 1_000;

/// Keywords that separate sibling expressions within a scope.
const ITEM_SEPARATORS: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::WINDOW,
    Keyword::QUALIFY,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::FETCH,
    Keyword::RETURNING,
    Keyword::VALUES,
    Keyword::SET,
    Keyword::ON,
    Keyword::USING,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::AS,
    Keyword::WITH,
    Keyword::INTO,
];

/// Keywords that link a chain the planner builds as a left-deep tree.
const CHAIN_LINKS: &[Keyword] = &[
    Keyword::UNION,
    Keyword::INTERSECT,
    Keyword::EXCEPT,
    Keyword::JOIN,
];

/// Keywords that are infix or prefix operators.
const OPERATOR_KEYWORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::OR,
    Keyword::XOR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::NOTNULL,
    Keyword::IN,
    Keyword::BETWEEN,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::SIMILAR,
    Keyword::REGEXP,
    Keyword::RLIKE,
    Keyword::ESCAPE,
    Keyword::AT,
    Keyword::COLLATE,
    Keyword::OPERATOR,
    Keyword::DIV,
    Keyword::OVERLAPS,
    Keyword::MEMBER,
    Keyword::MATCH,
];

#[derive(Default)]
struct Scope {
    /// Operators of the current item.
    operators: usize,
    /// Links of the scope's set operations and joins.
    links: usize,
    /// In a `FROM` list, where a comma joins.
    in_from: bool,
    /// Opened by a function call's or a subquery's parenthesis.
    call: bool,
}

impl Scope {
    fn depth(&self) -> usize {
        self.operators + self.links + 1
    }
}

/// An upper bound on the depth of the trees `tokens` can parse into, or `None` once it passes
/// `limit` or function calls and subqueries nest past [`MAX_NESTED_CALLS`] (the scan stops
/// there).
pub fn nesting_bound<'a>(
    tokens: impl IntoIterator<Item = &'a Token>,
    limit: usize,
) -> Option<usize> {
    let tokens: Vec<&Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut scopes = vec![Scope::default()];
    // The sum of the open scopes' depths, kept as they change.
    let mut depth = 1;
    let mut deepest = depth;
    let mut calls = 0;
    for (i, &token) in tokens.iter().enumerate() {
        let top = scopes
            .last_mut()
            .expect("the outermost scope is never closed");
        let before = top.depth();
        match token {
            Token::LParen | Token::LBracket => {
                // A subscript also links to what it indexes.
                if *token == Token::LBracket {
                    top.operators += 1;
                }
                let call = *token == Token::LParen
                    && (i > 0 && matches!(tokens[i - 1], Token::Word(_))
                        || tokens.get(i + 1).is_some_and(|t| {
                            matches!(t, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH))
                        }));
                depth += top.depth() - before;
                scopes.push(Scope {
                    call,
                    ..Scope::default()
                });
                depth += 1;
                if scopes.len() > MAX_SCOPES {
                    return None;
                }
                if call {
                    calls += 1;
                    if calls > MAX_NESTED_CALLS {
                        return None;
                    }
                }
            }
            Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::CASE => {
                scopes.push(Scope::default());
                depth += 1;
                if scopes.len() > MAX_SCOPES {
                    return None;
                }
            }
            Token::RParen | Token::RBracket => close(&mut scopes, &mut depth, &mut calls),
            Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::END => {
                close(&mut scopes, &mut depth, &mut calls)
            }
            Token::SemiColon => {
                scopes.truncate(1);
                scopes[0] = Scope::default();
                depth = 1;
                calls = 0;
            }
            Token::Comma => {
                top.operators = 0;
                if top.in_from {
                    top.links += 1;
                }
                depth = depth + top.depth() - before;
            }
            Token::Word(w) if w.quote_style.is_none() && CHAIN_LINKS.contains(&w.keyword) => {
                top.operators = 0;
                top.links += 1;
                depth = depth + top.depth() - before;
            }
            Token::Word(w) if w.quote_style.is_none() && ITEM_SEPARATORS.contains(&w.keyword) => {
                top.operators = 0;
                top.in_from = w.keyword == Keyword::FROM;
                depth = depth + top.depth() - before;
            }
            Token::Word(w) if w.quote_style.is_none() && OPERATOR_KEYWORDS.contains(&w.keyword) => {
                top.operators += 1;
                depth += 1;
            }
            token if is_operator(token) => {
                top.operators += 1;
                depth += 1;
            }
            _ => {}
        }
        deepest = deepest.max(depth);
        if deepest > limit {
            return None;
        }
    }
    Some(deepest)
}

/// Closes the innermost scope (an unbalanced closer is the parser's to report).
fn close(scopes: &mut Vec<Scope>, depth: &mut usize, calls: &mut usize) {
    if scopes.len() > 1 {
        let closed = scopes.pop().expect("more than one scope");
        *depth -= closed.depth();
        if closed.call {
            *calls -= 1;
        }
    }
}

/// Whether `token` is an operator: anything but names, literals, separators and brackets. A
/// token this does not know counts as an operator, which can only over-count.
fn is_operator(token: &Token) -> bool {
    !matches!(
        token,
        Token::EOF
            | Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::LBrace
            | Token::RBrace
            | Token::Placeholder(_)
    )
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn bound(sql: &str) -> Option<usize> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        nesting_bound(&tokens, 1_000_000)
    }

    fn chain(term: &str, operator: &str, n: usize) -> String {
        vec![term; n].join(operator)
    }

    #[test]
    fn chains_count_their_operators() {
        assert_eq!(bound("SELECT 1"), Some(1));
        let sum = format!("SELECT {}", chain("1", " + ", 1_000));
        assert!(bound(&sum).unwrap() >= 1_000);
        let or = format!("SELECT 1 WHERE {}", chain("a = 1", " OR ", 1_000));
        assert!(bound(&or).unwrap() >= 1_000);
        let union = chain("SELECT 1", " UNION ALL ", 500);
        assert!(bound(&union).unwrap() >= 500);
        let joins = format!("SELECT 1 FROM t{}", " JOIN t USING (a)".repeat(300));
        assert!(bound(&joins).unwrap() >= 300);
        let commas = format!("SELECT 1 FROM {}", chain("t", ", ", 300));
        assert!(bound(&commas).unwrap() >= 300);
        let casts = format!("SELECT 1{}", "::int".repeat(400));
        assert!(bound(&casts).unwrap() >= 400);
    }

    #[test]
    fn nesting_adds_the_enclosing_chains() {
        let parens = |n| format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
        assert!(bound(&parens(150)).unwrap() >= 150);
        assert_eq!(bound(&parens(MAX_SCOPES + 1)), None);
        let cases = |n| {
            format!(
                "SELECT {}1{}",
                "CASE WHEN false THEN 0 ELSE ".repeat(n),
                " END".repeat(n)
            )
        };
        assert!(bound(&cases(150)).is_some());
        assert_eq!(bound(&cases(MAX_SCOPES + 1)), None);
        let calls = |n| format!("SELECT {}1{}", "abs(".repeat(n), ")".repeat(n));
        assert!(bound(&calls(MAX_NESTED_CALLS)).is_some());
        assert_eq!(bound(&calls(MAX_NESTED_CALLS + 1)), None);
        let subqueries = |n| format!("SELECT {}1{}", "(SELECT ".repeat(n), ")".repeat(n));
        assert!(bound(&subqueries(MAX_NESTED_CALLS)).is_some());
        assert_eq!(bound(&subqueries(MAX_NESTED_CALLS + 1)), None);
        // Siblings do not nest.
        let siblings = format!("SELECT {}", vec!["abs(1)"; 100].join(", "));
        assert!(bound(&siblings).is_some());
        // A chain inside a CASE inside a chain: both chains count.
        let inner = chain("1", " + ", 300);
        let sql = format!(
            "SELECT {} + CASE WHEN true THEN {inner} END + 1",
            chain("1", " + ", 300)
        );
        assert!(bound(&sql).unwrap() >= 600);
    }

    #[test]
    fn siblings_do_not_add_up() {
        // Wide statements are shallow: lists, IN lists, VALUES rows, CASE branches.
        let select = format!("SELECT {}", chain("a + 1", ", ", 5_000));
        assert!(bound(&select).unwrap() < 10);
        let in_list = format!("SELECT 1 WHERE a IN ({})", chain("1", ", ", 5_000));
        assert!(bound(&in_list).unwrap() < 10);
        let values = format!(
            "INSERT INTO t VALUES {}",
            chain("(1, 'a' || 'b')", ", ", 5_000)
        );
        assert!(bound(&values).unwrap() < 10);
        let case = format!("SELECT CASE {} END", "WHEN a = 1 THEN b + 1 ".repeat(5_000));
        assert!(bound(&case).unwrap() < 10);
        let statements = "SELECT 1 + 1; ".repeat(5_000);
        assert!(bound(&statements).unwrap() < 10);
    }

    #[test]
    fn the_scan_stops_past_the_limit() {
        let sum = format!("SELECT {}", chain("1", " + ", 100_000));
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, &sum)
            .tokenize()
            .unwrap();
        assert_eq!(nesting_bound(&tokens, MAX_NESTING), None);
    }
}
