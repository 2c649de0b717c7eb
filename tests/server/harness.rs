//! An in-process `keywarden serve` on 127.0.0.1:0 and a plain HTTP/1.1
//! client over `std::net` (no client library: the tests see exactly the
//! bytes on the wire).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use keywarden::config::Config;
use keywarden::server::{Server, ServerConfig};
use keywarden::store::SecretStore;
use serde_json::Value;

pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a server whose `[server]` section is `server_toml` (plus
/// `plain_http = true` and `listen = "127.0.0.1:0"` unless given).
pub fn start(server_toml: &str) -> TestServer {
    start_with(server_toml, |_| {})
}

/// As [`start`], with `prepare` run on the config directory first (to
/// write a users file, say).
pub fn start_with(server_toml: &str, prepare: impl FnOnce(&std::path::Path)) -> TestServer {
    start_full(server_toml, "", prepare)
}

/// As [`start_with`], with `more_config` (whole tables, such as a second
/// backend) after the `[server]` section.
pub fn start_full(
    server_toml: &str,
    more_config: &str,
    prepare: impl FnOnce(&std::path::Path),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let mut text = Config::generate(dir.path().join("kw.db"))
        .unwrap()
        .to_toml()
        .to_string();
    text.push_str("\n[server]\n");
    if !server_toml.contains("listen") {
        text.push_str("listen = \"127.0.0.1:0\"\n");
    }
    if !server_toml.contains("plain_http") && !server_toml.contains("tls_cert") {
        text.push_str("plain_http = true\n");
    }
    text.push_str(server_toml);
    text.push('\n');
    text.push_str(more_config);
    start_text(&text, dir)
}

/// A server on exactly this config (its `[server]` section included),
/// with `dir` as its directory. Several servers may share one catalog.
pub fn start_text(text: &str, dir: tempfile::TempDir) -> TestServer {
    let config = Config::from_toml(text, Some(dir.path())).unwrap();
    let server_config = ServerConfig::from_config(&config).unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(&server_config, store).await.unwrap();
            addr_tx.send(server.local_addr().unwrap()).unwrap();
            server
                .run(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    TestServer {
        addr,
        dir,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

impl TestServer {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A request as project `proj-a`, user `u1`, role `creator`, at 1.2.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut h = identity("proj-a", "u1", "creator");
        if body.is_some() {
            h.push(("Content-Type".into(), "application/json".into()));
        }
        self.raw(method, path, &h, &bytes)
    }

    /// A request with exactly these headers (plus Host, Connection: close
    /// and Content-Length).
    pub fn raw(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        // The server may close before reading a refused body: keep what came.
        let _ = s.read_to_end(&mut out);
        parse_response(&out)
    }

    /// Stops the server (graceful) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn identity(project: &str, user: &str, roles: &str) -> Vec<(String, String)> {
    vec![
        ("X-Project-Id".into(), project.into()),
        ("X-User-Id".into(), user.into()),
        ("X-Roles".into(), roles.into()),
        ("OpenStack-API-Version".into(), "key-manager 1.2".into()),
    ]
}

pub fn with(mut h: Vec<(String, String)>, k: &str, v: &str) -> Vec<(String, String)> {
    h.push((k.into(), v.into()));
    h
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A Barbican error body with this status; returns the description.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let j = self.json();
        assert_eq!(j["code"], status);
        assert!(j["title"].is_string());
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{j}");
        j["description"].as_str().unwrap_or_default().to_owned()
    }
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let len =
            usize::from_str_radix(std::str::from_utf8(&b[..pos]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            break;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + len]);
        b = &b[pos + 2 + len + 2..];
    }
    out
}

/// The id at the end of a ref.
pub fn id_of(href: &str) -> String {
    href.rsplit('/').next().unwrap().to_owned()
}

/// The path part of a ref.
pub fn path_of(href: &str) -> String {
    let rest = href.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}
