//! The `keystone` auth mode against a real Keystone (scripts/keystone.sh,
//! which scripts/test.sh starts; its address and passwords come in
//! KEYWARDEN_TEST_KEYSTONE_URL / _ADMIN_PASSWORD / _SERVICE_PASSWORD).
//! Without them the tests skip, except under `CI=true`, where they fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use keywarden::server::Authenticator;
use keywarden::server::keystone::{Keystone, KeystoneConfig};

use crate::harness::{TestServer, path_of, start_full};

struct Env {
    url: String,
    admin_password: String,
    service_password: String,
}

fn env() -> Option<Env> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("KEYWARDEN_TEST_KEYSTONE_URL"),
        var("KEYWARDEN_TEST_KEYSTONE_ADMIN_PASSWORD"),
        var("KEYWARDEN_TEST_KEYSTONE_SERVICE_PASSWORD"),
    ) {
        (Some(url), Some(admin_password), Some(service_password)) => Some(Env {
            url,
            admin_password,
            service_password,
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but KEYWARDEN_TEST_KEYSTONE_URL and its passwords are not set \
             (scripts/test.sh starts a Keystone)"
        ),
        _ => {
            eprintln!("skipped: no Keystone (KEYWARDEN_TEST_KEYSTONE_URL)");
            None
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A token for `user` scoped to `project` (both in domain Default).
fn token(env_url: &str, user: &str, password: &str, project: &str) -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = agent()
        .post(format!("{env_url}/v3/auth/tokens"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status(), 201, "login of {user}");
    resp.headers()["X-Subject-Token"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Keystone's admin API, as the bootstrap admin.
struct Admin {
    url: String,
    token: String,
}

impl Admin {
    fn new(env: &Env) -> Self {
        Admin {
            url: env.url.clone(),
            token: token(&env.url, "admin", &env.admin_password, "admin"),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v3{path}", self.url);
        let a = agent();
        let mut resp = match (method, body) {
            ("GET", _) => a.get(&url).header("X-Auth-Token", &self.token).call(),
            ("PUT", _) => a.put(&url).header("X-Auth-Token", &self.token).send_empty(),
            ("DELETE", _) => a.delete(&url).header("X-Auth-Token", &self.token).call(),
            (_, b) => a
                .post(&url)
                .header("X-Auth-Token", &self.token)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(Value::Null).to_string()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn id_of(&self, kind: &str, name: &str) -> Option<String> {
        let (_, v) = self.call("GET", &format!("/{kind}s?name={name}"), None);
        v[format!("{kind}s")][0]["id"].as_str().map(str::to_owned)
    }

    fn ensure(&self, kind: &str, body: Value) -> String {
        let name = body["name"].as_str().unwrap().to_owned();
        if let Some(id) = self.id_of(kind, &name) {
            return id;
        }
        let (status, v) = self.call("POST", &format!("/{kind}s"), Some(json!({ kind: body })));
        assert_eq!(status, 201, "create {kind} {name}: {v}");
        v[kind]["id"].as_str().unwrap().to_owned()
    }

    /// A user with `password` holding `role` in a project of its own name
    /// `project`; returns the project's id.
    fn user_in(&self, user: &str, password: &str, project: &str, role: &str) -> String {
        let p = self.ensure("project", json!({"name": project, "domain_id": "default"}));
        let u = self.ensure(
            "user",
            json!({"name": user, "password": password, "domain_id": "default"}),
        );
        let r = self.ensure("role", json!({ "name": role }));
        let (status, v) = self.call("PUT", &format!("/projects/{p}/users/{u}/roles/{r}"), None);
        assert!(
            status == 204 || status == 200,
            "role assignment: {status} {v}"
        );
        p
    }
}

fn section(auth_url: &str, env: &Env) -> String {
    format!(
        "[keystone_authtoken]\nauth_url = \"{auth_url}\"\nusername = \"keywarden\"\n\
         password = \"{}\"\nproject_name = \"service\"\n",
        env.service_password
    )
}

fn authenticator(auth_url: &str, env: &Env) -> Keystone {
    let table: toml::Table = toml::from_str(&section(auth_url, env)).unwrap();
    let config = keywarden::config::Config::generate("unused.db").unwrap();
    let section = table["keystone_authtoken"].as_table().unwrap();
    Keystone::new(KeystoneConfig::from_table(section, &config).unwrap()).unwrap()
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-auth-token", HeaderValue::from_str(token).unwrap());
    h
}

fn keystone_server(auth_url: &str, env: &Env) -> TestServer {
    start_full("auth = \"keystone\"", &section(auth_url, env), |_| {})
}

fn with_token(token: &str) -> Vec<(String, String)> {
    vec![
        ("X-Auth-Token".into(), token.into()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

#[test]
fn a_cold_token_costs_one_keystone_call_and_a_warm_one_none() {
    let Some(env) = env() else { return };
    let admin = Admin::new(&env);
    let s = suffix();
    let project = admin.user_in(&format!("cold-{s}"), "pw", &format!("cold-{s}"), "creator");
    let t = token(&env.url, &format!("cold-{s}"), "pw", &format!("cold-{s}"));
    let k = authenticator(&env.url, &env);
    let ctx = k.authenticate(&headers(&t)).unwrap();
    assert_eq!(ctx.project_id.as_str(), project);
    assert!(ctx.roles().iter().any(|r| r == "creator"));
    // keywarden's own login, then one validation.
    assert_eq!(k.keystone_calls(), 2);
    for _ in 0..20 {
        k.authenticate(&headers(&t)).unwrap();
    }
    assert_eq!(k.keystone_calls(), 2, "a warm token costs no Keystone call");
    // Another token: one more validation, and no second login.
    let t2 = token(&env.url, &format!("cold-{s}"), "pw", &format!("cold-{s}"));
    k.authenticate(&headers(&t2)).unwrap();
    assert_eq!(k.keystone_calls(), 3);
    assert!(!format!("{k:?}").contains(&env.service_password));
    assert!(!format!("{k:?}").contains(&t));
}

#[test]
fn projects_see_only_their_own_and_bad_tokens_are_401() {
    let Some(env) = env() else { return };
    let admin = Admin::new(&env);
    let s = suffix();
    admin.user_in(
        &format!("alice-{s}"),
        "pw-a",
        &format!("proj-a-{s}"),
        "creator",
    );
    admin.user_in(
        &format!("bob-{s}"),
        "pw-b",
        &format!("proj-b-{s}"),
        "creator",
    );
    let alice = token(
        &env.url,
        &format!("alice-{s}"),
        "pw-a",
        &format!("proj-a-{s}"),
    );
    let bob = token(
        &env.url,
        &format!("bob-{s}"),
        "pw-b",
        &format!("proj-b-{s}"),
    );
    let server = keystone_server(&env.url, &env);
    let r = server.raw(
        "POST",
        "/v1/secrets",
        &with_token(&alice),
        br#"{"name": "a", "payload": "alice's", "payload_content_type": "text/plain"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let r = server.raw("GET", &format!("{path}/payload"), &with_token(&alice), b"");
    assert_eq!(r.text(), "alice's");
    assert_eq!(
        server.raw("GET", &path, &with_token(&alice), b"").json()["creator_id"],
        admin.id_of("user", &format!("alice-{s}")).unwrap()
    );
    // Project B's user: not found, not forbidden.
    server
        .raw("GET", &format!("{path}/payload"), &with_token(&bob), b"")
        .error(404);
    // No token, a forged one, one Keystone revoked: 401 pointing at Keystone.
    let forged = format!("gAAAAAB{}", "x".repeat(180));
    for h in [vec![], with_token(&forged), with_token("")] {
        let r = server.raw("GET", "/v1/secrets", &h, b"");
        r.error(401);
        assert_eq!(
            r.header("www-authenticate"),
            Some(format!("Keystone uri=\"{}\"", env.url).as_str())
        );
    }
    let revoked = token(
        &env.url,
        &format!("bob-{s}"),
        "pw-b",
        &format!("proj-b-{s}"),
    );
    let resp = agent()
        .delete(format!("{}/v3/auth/tokens", env.url))
        .header("X-Auth-Token", &admin.token)
        .header("X-Subject-Token", &revoked)
        .call()
        .unwrap();
    assert_eq!(resp.status(), 204);
    server
        .raw("GET", "/v1/secrets", &with_token(&revoked), b"")
        .error(401);
    // A service token: valid with the `service` role, it is accepted beside
    // the user's; an invalid one refuses the request.
    let service = token(&env.url, "keywarden", &env.service_password, "service");
    let mut h = with_token(&alice);
    h.push(("X-Service-Token".into(), service));
    assert_eq!(server.raw("GET", "/v1/secrets", &h, b"").status, 200);
    let mut h = with_token(&alice);
    h.push(("X-Service-Token".into(), forged));
    server.raw("GET", "/v1/secrets", &h, b"").error(401);
}

/// A TCP relay to Keystone that can be stopped (every connection through
/// it cut, new ones refused) and started again on the same port: Keystone
/// going away and coming back.
struct Relay {
    addr: SocketAddr,
    /// Bumped by `stop`: listeners and pipes of an older generation end.
    generation: Arc<AtomicU64>,
    target: SocketAddr,
}

impl Relay {
    fn new(target: &str) -> Relay {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            generation: Arc::new(AtomicU64::new(0)),
            target,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (generation, target) = (self.generation.clone(), self.target);
        let mine = generation.load(Ordering::SeqCst);
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while generation.load(Ordering::SeqCst) == mine {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(target).unwrap();
                        let g = (generation.clone(), mine);
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            g.clone(),
                        );
                        pipe(server, client, g);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener drops here: connections are refused until start.
        });
    }

    fn stop(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
    }

    fn start(&self) {
        let listener = TcpListener::bind(self.addr).unwrap();
        self.serve(listener);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, (generation, mine): (Arc<AtomicU64>, u64)) {
    std::thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 16 << 10];
        while generation.load(Ordering::SeqCst) == mine {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn keystone_away_is_503_and_service_resumes_when_it_is_back() {
    let Some(env) = env() else { return };
    let admin = Admin::new(&env);
    let s = suffix();
    admin.user_in(
        &format!("carol-{s}"),
        "pw-c",
        &format!("proj-c-{s}"),
        "creator",
    );
    let relay = Relay::new(&env.url);
    let via = format!("http://{}", relay.addr);
    let server = keystone_server(&via, &env);
    let warm = token(
        &env.url,
        &format!("carol-{s}"),
        "pw-c",
        &format!("proj-c-{s}"),
    );
    assert_eq!(
        server
            .raw("GET", "/v1/secrets", &with_token(&warm), b"")
            .status,
        200
    );
    relay.stop();
    let cold = token(
        &env.url,
        &format!("carol-{s}"),
        "pw-c",
        &format!("proj-c-{s}"),
    );
    let r = server.raw("GET", "/v1/secrets", &with_token(&cold), b"");
    assert_eq!(
        r.error(503),
        "The identity service cannot be reached; retry later"
    );
    // A token validated before Keystone went away still works from the cache.
    assert_eq!(
        server
            .raw("GET", "/v1/secrets", &with_token(&warm), b"")
            .status,
        200
    );
    relay.start();
    assert_eq!(
        server
            .raw("GET", "/v1/secrets", &with_token(&cold), b"")
            .status,
        200
    );
}
