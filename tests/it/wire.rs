//! The Postgres protocol byte by byte, where drivers cannot show it. Bad input: garbage, a
//! truncated startup packet, a 1 GB length, an unknown protocol version and a 1 GB query each
//! get a closed connection, promptly, while a session opened before them keeps working; a
//! catalog query naming a missing column gets 42703. And settings a statement changes are
//! reported back as `ParameterStatus`, as Postgres does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::server::TestServer;

/// Sends `bytes` (then, if `half_close`, nothing more) and waits for the server to close.
fn closed_after(server: &TestServer, bytes: &[u8], half_close: bool) -> Duration {
    let mut socket = TcpStream::connect(server.pg).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    socket.write_all(bytes).unwrap();
    if half_close {
        socket.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut buffer = [0u8; 4096];
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return started.elapsed();
            }
            Err(e) => panic!("the connection stayed open: {e}"),
        }
    }
}

fn startup(version: i32, parameters: &[u8]) -> Vec<u8> {
    let mut message = ((8 + parameters.len()) as i32).to_be_bytes().to_vec();
    message.extend(version.to_be_bytes());
    message.extend(parameters);
    message
}

#[tokio::test]
async fn bad_bytes_close_their_connection_and_nothing_else() {
    let server = TestServer::start();
    let client = server.client().await;
    let protocol_3: i32 = 3 << 16;
    let mut huge_startup = (1i32 << 30).to_be_bytes().to_vec();
    huge_startup.extend(protocol_3.to_be_bytes());
    huge_startup.extend(b"user\0weir\0\0");
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n".to_vec(),
            false,
        ),
        (
            "a truncated startup packet",
            startup(protocol_3, b"user\0weir\0\0")[..12].to_vec(),
            true,
        ),
        ("a 1 GB startup length", huge_startup, false),
        (
            "an unknown protocol version",
            startup(9 << 16, b"user\0weir\0\0"),
            false,
        ),
    ];
    for (case, bytes, half_close) in cases {
        let waited = closed_after(&server, &bytes, half_close);
        assert!(
            waited < Duration::from_secs(5),
            "{case}: closed after {waited:?}"
        );
    }

    // A 1 GB query message right after a proper startup.
    let mut query = vec![b'Q'];
    query.extend((1i32 << 30).to_be_bytes());
    query.extend(b"SELECT 1");
    let bytes = [startup(protocol_3, b"user\0weir\0database\0dev\0\0"), query].concat();
    let waited = closed_after(&server, &bytes, false);
    assert!(
        waited < Duration::from_secs(5),
        "a 1 GB query: closed after {waited:?}"
    );

    // The session opened before all that is unharmed, and a catalog query that names a
    // column the catalog lacks is an error naming it, after which the session goes on.
    let err = client
        .simple_query("SELECT relfoo FROM pg_catalog.pg_class")
        .await
        .expect_err("no such column");
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_COLUMN), "{err:?}");
    assert!(err.as_db_error().unwrap().message().contains("relfoo"));
    let one: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

/// The messages of one simple query, up to ReadyForQuery, as (type, body).
fn simple_query(socket: &mut TcpStream, sql: &str) -> Vec<(u8, Vec<u8>)> {
    let mut query = vec![b'Q'];
    query.extend(((4 + sql.len() + 1) as i32).to_be_bytes());
    query.extend(sql.as_bytes());
    query.push(0);
    socket.write_all(&query).unwrap();
    read_until_ready(socket)
}

fn read_until_ready(socket: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let mut head = [0u8; 5];
        socket.read_exact(&mut head).unwrap();
        let length = i32::from_be_bytes(head[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; length - 4];
        socket.read_exact(&mut body).unwrap();
        let ready = head[0] == b'Z';
        messages.push((head[0], body));
        if ready {
            return messages;
        }
    }
}

/// A `SET` of a setting Postgres reports is reported again, before the command completes.
#[test]
fn changed_settings_are_reported_as_parameter_status() {
    let server = TestServer::start();
    let mut socket = TcpStream::connect(server.pg).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(&startup(3 << 16, b"user\0weir\0database\0dev\0\0"))
        .unwrap();
    read_until_ready(&mut socket);
    let statuses = |messages: &[(u8, Vec<u8>)]| -> Vec<String> {
        messages
            .iter()
            .filter(|(kind, _)| *kind == b'S')
            .map(|(_, body)| {
                String::from_utf8_lossy(body)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let messages = simple_query(&mut socket, "SET application_name = 'dashboards'");
    assert_eq!(statuses(&messages), ["application_name dashboards"]);
    let kinds: Vec<u8> = messages.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, b"SCZ", "ParameterStatus, then CommandComplete");
    // A setting Postgres does not report, and a SET that changes nothing, say nothing.
    assert!(statuses(&simple_query(&mut socket, "SET extra_float_digits = 2")).is_empty());
    assert!(
        statuses(&simple_query(
            &mut socket,
            "SET application_name = 'dashboards'"
        ))
        .is_empty()
    );
    assert_eq!(
        statuses(&simple_query(&mut socket, "RESET ALL")),
        ["application_name"],
        "back to empty"
    );
}
