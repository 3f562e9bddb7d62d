//! The HTTP event collector against a real server: every body shape, the field mapping, and
//! each bad-input class with its status and a message naming the problem, checking through
//! SQL that exactly the valid events were kept.

use std::io::Write;

use serde_json::{Value, json};

use super::server::TestServer;

const SOURCE: &str = "CREATE SOURCE events (
    event_id VARCHAR, event_name VARCHAR NOT NULL, user_id VARCHAR, ts TIMESTAMPTZ NOT NULL,
    amount DOUBLE, region VARCHAR, device VARCHAR, properties JSONB,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (connector = 'http') FORMAT JSON";

struct Collector {
    http: reqwest::Client,
    base: String,
}

impl Collector {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.http),
        }
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, body)
    }

    async fn json(&self, body: &str) -> (u16, Value) {
        self.post(
            "/api/events/events",
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }
}

async fn event_ids(server: &TestServer) -> Vec<String> {
    let client = server.client().await;
    let rows = client
        .query("SELECT event_id FROM events ORDER BY event_id", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn body_shapes_and_the_field_mapping() {
    let server = TestServer::start();
    server.client().await.batch_execute(SOURCE).await.unwrap();
    let collector = Collector::new(&server);

    let (status, body) = collector
        .json(r#"{"eventId":"evt_123","eventName":"purchase_completed","userId":"u456","timestamp":"2026-05-03T10:00:00Z","properties":{"amount":49.99,"region":"NA","device":"mobile"}}"#)
        .await;
    assert_eq!(
        (status, body),
        (202, json!({"accepted": 1, "duplicates": 0, "rejected": 0}))
    );

    let (status, body) = collector
        .json(r#"[{"event_id":"a1","event_name":"click","ts":1777802400000},{"event_id":"a2","event_name":"click","ts":"2026-05-03T10:00:01+02:00"}]"#)
        .await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(2)));

    let ndjson = "{\"event_id\":\"n1\",\"event_name\":\"view\",\"ts\":\"2026-05-03T10:00:02Z\"}\n\n{\"event_id\":\"n2\",\"event_name\":\"view\",\"ts\":\"2026-05-03T10:00:03Z\"}\n";
    let (status, body) = collector
        .post(
            "/api/events/events",
            &[("content-type", "application/x-ndjson")],
            ndjson,
        )
        .await;
    assert_eq!((status, body["accepted"].clone()), (202, json!(2)));

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(br#"{"event_id":"g1","event_name":"zipped","ts":"2026-05-03T10:00:04Z"}"#)
        .unwrap();
    let (status, _) = collector
        .post(
            "/api/events/events",
            &[
                ("content-encoding", "gzip"),
                ("content-type", "application/json"),
            ],
            gzip.finish().unwrap(),
        )
        .await;
    assert_eq!(status, 202);

    let client = server.client().await;
    let row = client
        .query_one("SELECT event_name, user_id, amount, region, device, ts::text FROM events WHERE event_id = 'evt_123'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "purchase_completed");
    assert_eq!(row.get::<_, String>(1), "u456");
    assert_eq!(row.get::<_, f64>(2), 49.99);
    assert_eq!(row.get::<_, String>(3), "NA");
    assert_eq!(row.get::<_, String>(4), "mobile");
    assert_eq!(
        event_ids(&server).await,
        ["a1", "a2", "evt_123", "g1", "n1", "n2"]
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_valid_events_are_kept() {
    let server = TestServer::start();
    server.client().await.batch_execute(SOURCE).await.unwrap();
    let collector = Collector::new(&server);
    let good = |id: &str| {
        format!(r#"{{"event_id":"{id}","event_name":"ok","ts":"2026-05-03T10:00:00Z"}}"#)
    };

    // Malformed JSON: nothing can be read, nothing is kept.
    let (status, body) = collector.json(r#"{"event_id": "x", "#).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );

    // Wrong types, missing NOT NULL, unknown field: each named, the good ones kept.
    let mixed = format!(
        r#"[{}, {{"event_id":"bad1","event_name":"x","ts":"2026-05-03T10:00:00Z","amount":"lots"}},
            {{"event_id":"bad2","ts":"2026-05-03T10:00:00Z"}}, {}, {{"event_id":"bad3","event_name":"x","ts":"when?"}}]"#,
        good("k1"),
        good("k2")
    );
    let (status, body) = collector.json(&mixed).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(3))
    );
    let errors = body["errors"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [(1, "amount"), (2, "event_name"), (4, "ts")]);
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a number")
    );
    assert!(
        errors[1]["reason"]
            .as_str()
            .unwrap()
            .contains("missing required field")
    );

    // NDJSON: a malformed line is refused alone.
    let ndjson = format!("{}\n{{not json\n{}\n", good("l1"), good("l2"));
    let (status, body) = collector
        .post(
            "/api/events/events",
            &[("content-type", "application/x-ndjson")],
            ndjson,
        )
        .await;
    assert_eq!((status, body["accepted"].clone()), (400, json!(2)));
    assert_eq!(body["errors"][0]["index"], 1);
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );

    // ?atomic=true: one bad event refuses the request.
    let atomic = format!(r#"[{}, {{"event_id":"bad4"}}]"#, good("never"));
    let (status, body) = collector
        .post("/api/events/events?atomic=true", &[], atomic)
        .await;
    assert_eq!(
        (status, body["accepted"].clone(), body["rejected"].clone()),
        (400, json!(0), json!(1))
    );

    // Bad gzip, oversized body, unknown source, a body that is not an event.
    let (status, body) = collector
        .post(
            "/api/events/events",
            &[("content-encoding", "gzip")],
            "not gzip at all",
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");
    let huge = format!("[{}]", vec![good("big"); 200_000].join(","));
    let (status, body) = collector.json(&huge).await;
    assert_eq!(status, 413);
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
    let (status, body) = collector.post("/api/events/nope", &[], good("x")).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("\"nope\""),
        "{body}"
    );
    let (status, body) = collector.json("42").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("a number"),
        "{body}"
    );

    // Exactly the valid events are stored, and the server still serves.
    assert_eq!(event_ids(&server).await, ["k1", "k2", "l1", "l2"]);

    // Every refused event, or unreadable body, is a dead letter with its reason and payload.
    let letters = server
        .client()
        .await
        .query(
            "SELECT source, event_index, field, reason, payload FROM weir.dead_letters",
            &[],
        )
        .await
        .unwrap();
    let letters: Vec<(String, i64, Option<String>, String, String)> = letters
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    // malformed body, 3 mixed, 1 NDJSON line, 1 atomic, bad gzip, "42"
    assert_eq!(letters.len(), 8, "{letters:#?}");
    assert!(letters.iter().all(|l| l.0 == "events"));
    let find = |needle: &str| {
        letters
            .iter()
            .find(|l| l.4.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {letters:#?}"))
    };
    let lots = find("\"lots\"");
    assert_eq!((lots.1, lots.2.as_deref()), (1, Some("amount")));
    assert!(find("{not json").3.contains("malformed JSON"));
    assert!(find("not gzip at all").3.contains("gzip"));
    assert!(find(r#"{"event_id": "x", "#).3.contains("malformed JSON"));
    let (status, _) = collector.json(&good("after")).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let mut server = TestServer::start();
    server.client().await.batch_execute(SOURCE).await.unwrap();
    let mut acknowledged = Vec::new();
    {
        let collector = Collector::new(&server);
        for batch in 0..10 {
            let events: Vec<String> = (0..100)
                .map(|i| {
                    format!(
                        r#"{{"event_id":"e{batch:02}-{i:03}","event_name":"n","ts":{}}}"#,
                        1_777_800_000_000i64 + i
                    )
                })
                .collect();
            let (status, _) = collector.json(&format!("[{}]", events.join(","))).await;
            assert_eq!(status, 202);
            acknowledged.extend((0..100).map(|i| format!("e{batch:02}-{i:03}")));
        }
    }
    server.kill_and_restart();
    acknowledged.sort();
    assert_eq!(event_ids(&server).await, acknowledged);
}

#[tokio::test]
async fn duplicates_are_stored_once_also_across_a_restart() {
    let mut server = TestServer::start();
    server
        .client()
        .await
        .batch_execute(
            "CREATE SOURCE events (event_id VARCHAR, event_name VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL) \
             WITH (connector = 'http', dedup_key = 'event_id', dedup_window = '1 hour')",
        )
        .await
        .unwrap();
    let event =
        |id: &str| format!(r#"{{"event_id":"{id}","event_name":"n","ts":"2026-05-03T10:00:00Z"}}"#);
    let body = |ids: &[&str]| {
        format!(
            "[{}]",
            ids.iter().map(|id| event(id)).collect::<Vec<_>>().join(",")
        )
    };

    let collector = Collector::new(&server);
    let (status, reply) = collector.json(&body(&["a", "b", "a"])).await;
    assert_eq!(
        (status, reply),
        (202, json!({"accepted": 2, "duplicates": 1, "rejected": 0}))
    );
    let (_, reply) = collector.json(&body(&["b", "c"])).await;
    assert_eq!(
        (reply["accepted"].clone(), reply["duplicates"].clone()),
        (json!(1), json!(1))
    );

    server.kill_and_restart();
    let collector = Collector::new(&server);
    let (_, reply) = collector.json(&body(&["a", "c", "d"])).await;
    assert_eq!(
        (reply["accepted"].clone(), reply["duplicates"].clone()),
        (json!(1), json!(2))
    );
    // INSERT goes through the same path: a seen id is not stored again.
    let inserted = server
        .client()
        .await
        .execute("INSERT INTO events (event_id, event_name, ts) VALUES ('d', 'n', now()), ('e', 'n', now())", &[])
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    assert_eq!(event_ids(&server).await, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn events_are_enriched_from_the_request() {
    let server = TestServer::start();
    server
        .client()
        .await
        .batch_execute(
            "CREATE SOURCE visits (visit VARCHAR, device VARCHAR, client_ip VARCHAR) WITH (connector = 'http')",
        )
        .await
        .unwrap();
    let collector = Collector::new(&server);
    let iphone =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
    let body = r#"[{"visit":"a"},{"visit":"b","device":"tv","client_ip":"10.0.0.9"}]"#;
    let (status, _) = collector
        .post("/api/events/visits", &[("user-agent", iphone)], body)
        .await;
    assert_eq!(status, 202);
    let body = r#"{"visit":"c"}"#;
    let (status, _) = collector
        .post(
            "/api/events/visits",
            &[
                ("user-agent", "curl/8.5.0"),
                ("x-forwarded-for", "203.0.113.7, 10.1.1.1"),
            ],
            body,
        )
        .await;
    assert_eq!(status, 202);
    let rows = server
        .client()
        .await
        .query(
            "SELECT visit, device, client_ip FROM visits ORDER BY visit",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            ("a".into(), "mobile".into(), "127.0.0.1".into()),
            ("b".into(), "tv".into(), "10.0.0.9".into()),
            ("c".into(), "bot".into(), "203.0.113.7".into()),
        ]
    );
}
