//! Several `keywarden serve` processes on one PostgreSQL catalog (the HA
//! layout of several Barbican API nodes behind a balancer): each serves
//! what the other stored, and writers on both lose nothing.
#![cfg(feature = "postgres")]

use serde_json::json;

use keywarden::config::Config;

use crate::harness::{TestServer, path_of, start_text};

/// Two servers on one fresh PostgreSQL schema with one KEK config, or
/// `None` when no server is configured (a failure under `CI=true`).
fn two_servers() -> Option<(TestServer, TestServer)> {
    let url = match std::env::var("KEYWARDEN_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but KEYWARDEN_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("skipped: KEYWARDEN_TEST_POSTGRES_URL is not set");
            return None;
        }
    };
    let schema = format!("kw_{}", uuid::Uuid::new_v4().simple());
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let catalog = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::generate(dir.path().join("unused.db")).unwrap();
    config.catalog = catalog.parse().unwrap();
    let mut text = config.to_toml().to_string();
    text.push_str("\n[server]\nlisten = \"127.0.0.1:0\"\nplain_http = true\n");
    let a = start_text(&text, dir);
    let b = start_text(&text, tempfile::tempdir().unwrap());
    Some((a, b))
}

#[test]
fn two_servers_on_one_postgres_catalog_serve_the_same_secrets() {
    let Some((a, b)) = two_servers() else { return };
    let r = a.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"name": "ha", "payload": "shared", "payload_content_type": "text/plain"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let r = b.call("GET", &format!("{path}/payload"), None);
    assert_eq!((r.status, r.text().as_str()), (200, "shared"));
    // A consumer registered through one blocks the delete through the other.
    let consumer = json!({"service": "volume", "resource_type": "volume", "resource_id": "v1"});
    assert_eq!(
        b.call("POST", &format!("{path}/consumers"), Some(&consumer))
            .status,
        200
    );
    a.call("DELETE", &path, None).error(400);
    // A key order made on B reads on A.
    let r = b.call(
        "POST",
        "/v1/orders",
        Some(&json!({"type": "key", "meta": {"algorithm": "aes", "bit_length": 256}})),
    );
    let order = a.call(
        "GET",
        &path_of(r.json()["order_ref"].as_str().unwrap()),
        None,
    );
    assert_eq!(order.json()["status"], "ACTIVE");
    let key = order.json()["secret_ref"].as_str().unwrap().to_owned();
    let r = a.call("GET", &format!("{}/payload", path_of(&key)), None);
    assert_eq!(r.body.len(), 32);
}

#[test]
fn writers_on_both_servers_lose_nothing() {
    let Some((a, b)) = two_servers() else { return };
    let per_thread = 15;
    std::thread::scope(|scope| {
        for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
            scope.spawn(move || {
                for n in 0..per_thread {
                    let body = json!({"name": format!("w{i}-{n}"), "payload": format!("p{i}-{n}"),
                                      "payload_content_type": "text/plain"});
                    let r = server.call("POST", "/v1/secrets", Some(&body));
                    assert_eq!(r.status, 201, "{}", r.text());
                }
            });
        }
    });
    for server in [&a, &b] {
        let listed = server.call("GET", "/v1/secrets?limit=100", None).json();
        assert_eq!(listed["total"], 4 * per_thread);
    }
    let listed = b.call("GET", "/v1/secrets?name=w2-7", None).json();
    let path = path_of(listed["secrets"][0]["secret_ref"].as_str().unwrap());
    assert_eq!(
        b.call("GET", &format!("{path}/payload"), None).text(),
        "p2-7"
    );
}
