//! Prepared point lookups on a view (`WHERE user_id = $1`): the server keeps one physical plan
//! and binds each execution's key into its read. Every key type and parameter form must give
//! exactly the rows a full read filtered here keeps, reads must see the view as it is when they
//! run, and DDL must make the kept plan stale.

use std::collections::BTreeMap;

use tokio_postgres::types::{ToSql, Type};

use super::server::TestServer;

/// `(user_id, page)` of each event: user 1 is a prefix of 12 in decimal, page `home` of
/// `homepage`, and one page is null.
const EVENTS: [(i64, Option<&str>); 7] = [
    (1, Some("home")),
    (1, Some("cart")),
    (2, Some("home")),
    (12, Some("home")),
    (7, None),
    (7, Some("homepage")),
    (-3, Some("cart")),
];

async fn insert(client: &tokio_postgres::Client, events: &[(i64, Option<&str>)]) {
    let values: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, (user, page))| {
            let page = page.map_or("NULL".to_string(), |p| format!("'{p}'"));
            format!("({user}, {page}, to_timestamp({i}))")
        })
        .collect();
    client
        .batch_execute(&format!(
            "INSERT INTO clicks VALUES {}; FLUSH",
            values.join(", ")
        ))
        .await
        .unwrap();
}

/// Events per user, the answer every lookup by user must agree with.
fn counts_per_user(events: &[(i64, Option<&str>)]) -> BTreeMap<i64, i64> {
    let mut counts = BTreeMap::new();
    for (user, _) in events {
        *counts.entry(*user).or_insert(0) += 1;
    }
    counts
}

/// `(user_id, n)` rows of `statement` run with `params`.
async fn lookup(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Vec<(i64, i64)> {
    client
        .query(statement, params)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn prepared_key_lookups_read_the_bound_key() {
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE SOURCE clicks (user_id BIGINT NOT NULL, page VARCHAR, ts TIMESTAMPTZ NOT NULL) \
             WITH (connector = 'http'); \
             CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n FROM clicks \
             GROUP BY user_id; \
             CREATE MATERIALIZED VIEW per_page AS SELECT page, count(*) AS n FROM clicks \
             GROUP BY page",
        )
        .await
        .unwrap();
    insert(&client, &EVENTS).await;
    let mut events = EVENTS.to_vec();

    let by_user = client
        .prepare("SELECT user_id, n FROM per_user WHERE user_id = $1")
        .await
        .unwrap();
    let plan: String = client
        .query("EXPLAIN SELECT n FROM per_user WHERE user_id = 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    assert!(plan.contains("KeyLookupExec"), "{plan}");
    // Each key (and keys no user has) several times over, as drivers repeat a statement.
    for _ in 0..3 {
        for key in [1i64, 12, 2, 7, -3, 3, 0, i64::MAX, i64::MIN] {
            let expected: Vec<(i64, i64)> = counts_per_user(&events)
                .get(&key)
                .map(|n| vec![(key, *n)])
                .unwrap_or_default();
            assert_eq!(
                lookup(&client, &by_user, &[&key]).await,
                expected,
                "key {key}"
            );
        }
    }
    assert_eq!(lookup(&client, &by_user, &[&None::<i64>]).await, []);

    // An int4 parameter: the key is compared with its cast to bigint.
    let by_int4 = client
        .prepare_typed(
            "SELECT user_id, n FROM per_user WHERE user_id = $1",
            &[Type::INT4],
        )
        .await
        .unwrap();
    assert_eq!(lookup(&client, &by_int4, &[&12i32]).await, [(12, 1)]);
    assert_eq!(lookup(&client, &by_int4, &[&-3i32]).await, [(-3, 1)]);

    // Two equalities on the key: rows only where both hold.
    let both = client
        .prepare("SELECT user_id, n FROM per_user WHERE user_id = $1 AND $2 = user_id")
        .await
        .unwrap();
    assert_eq!(lookup(&client, &both, &[&1i64, &1i64]).await, [(1, 2)]);
    assert_eq!(lookup(&client, &both, &[&1i64, &12i64]).await, []);
    // A parameter outside the key: planned per execution, same answers.
    let with_count = client
        .prepare("SELECT user_id, n FROM per_user WHERE user_id = $1 AND n > $2")
        .await
        .unwrap();
    assert_eq!(
        lookup(&client, &with_count, &[&1i64, &1i64]).await,
        [(1, 2)]
    );
    assert_eq!(lookup(&client, &with_count, &[&1i64, &2i64]).await, []);

    // Text keys: a key that is a prefix of another brings only its own row.
    let by_page = client
        .prepare("SELECT n FROM per_page WHERE page = $1")
        .await
        .unwrap();
    for page in ["home", "homepage", "hom", "cart", ""] {
        let expected = events.iter().filter(|(_, p)| *p == Some(page)).count() as i64;
        let rows = client.query(&by_page, &[&page]).await.unwrap();
        let found: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let expected = if expected == 0 {
            vec![]
        } else {
            vec![expected]
        };
        assert_eq!(found, expected, "page {page:?}");
    }

    // Each execution reads the view as it is then, not as it was when prepared.
    let more = [(1, Some("cart")), (5, Some("home"))];
    insert(&client, &more).await;
    events.extend(more);
    assert_eq!(lookup(&client, &by_user, &[&1i64]).await, [(1, 3)]);
    assert_eq!(lookup(&client, &by_user, &[&5i64]).await, [(5, 1)]);

    // Replacing the view makes the kept plan stale: the statement reads the new view.
    client
        .batch_execute(
            "DROP MATERIALIZED VIEW per_user; \
             CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n FROM clicks \
             WHERE page = 'home' GROUP BY user_id; FLUSH",
        )
        .await
        .unwrap();
    let homes = |user: i64| {
        events
            .iter()
            .filter(|(u, p)| *u == user && *p == Some("home"))
            .count() as i64
    };
    assert_eq!(lookup(&client, &by_user, &[&1i64]).await, [(1, homes(1))]);
    assert_eq!(lookup(&client, &by_user, &[&-3i64]).await, []);

    // After a restart the rows are on disk, not yet in memory: the read goes there.
    drop(client);
    server.kill_and_restart();
    let client = server.client().await;
    let by_user = client
        .prepare("SELECT user_id, n FROM per_user WHERE user_id = $1")
        .await
        .unwrap();
    for key in [1i64, 2, 12, 5, 7] {
        let expected = if homes(key) == 0 {
            vec![]
        } else {
            vec![(key, homes(key))]
        };
        assert_eq!(
            lookup(&client, &by_user, &[&key]).await,
            expected,
            "key {key}"
        );
    }
}
