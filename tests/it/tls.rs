//! TLS on the Postgres port, with the real psql (libpq, OpenSSL) as the client: a certificate
//! made by `openssl` for 127.0.0.1, verified by psql (`sslmode=verify-full`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use super::server::TestServer;

/// A self-signed certificate for 127.0.0.1 and its key, in `dir`.
fn make_certificate(dir: &Path) {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl is installed (scripts/test.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

fn psql(server: &TestServer, options: &str, command: &str) -> Output {
    let conninfo = format!(
        "host=127.0.0.1 port={} user=weir dbname=weir {options}",
        server.pg.port()
    );
    Command::new("psql")
        .args(["-X", "-A", "-t", &conninfo, "-c", command])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql is installed")
}

#[tokio::test]
async fn psql_connects_over_verified_tls_and_without_it() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    make_certificate(dir.path());
    let config = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem")
    );
    let server = TestServer::start_configured(dir.clone(), &[], &config);
    let root = dir.path().join("cert.pem");
    let verified = format!("sslmode=verify-full sslrootcert={}", root.display());

    let info = psql(&server, &verified, "\\conninfo");
    let stdout = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(
        stdout.contains("SSL connection (protocol: TLSv1."),
        "{stdout}"
    );
    let answer = psql(&server, &verified, "SELECT 40 + 2");
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "42");

    // TLS is offered, not imposed.
    let plain = psql(&server, "sslmode=disable", "SELECT 'plain'");
    assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), "plain");
}

#[tokio::test]
async fn without_a_certificate_ssl_is_refused_and_plain_connections_work() {
    let server = TestServer::start();
    let refused = psql(&server, "sslmode=require", "SELECT 1");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("server does not support SSL"), "{stderr}");
    let plain = psql(&server, "sslmode=prefer", "SELECT 'plain'");
    assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), "plain");
}

#[test]
fn a_key_that_does_not_match_or_half_a_configuration_stops_startup_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    make_certificate(dir.path());
    let cert = dir.path().join("cert.pem");
    let data = TestServer::data_dir_of(dir.path());
    for (args, expected) in [
        (
            vec![
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                cert.to_str().unwrap(),
            ],
            "cert.pem",
        ),
        (
            vec!["--tls-cert", cert.to_str().unwrap()],
            "TLS needs both --tls-cert and --tls-key",
        ),
    ] {
        let output = TestServer::command(&data).args(&args).output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
