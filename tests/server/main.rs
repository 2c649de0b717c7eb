//! `keywarden serve` at the HTTP level: each endpoint's success and
//! refusal, as Barbican 23 answers them (texts and fields recorded from
//! the real Barbican 23.0.0 with curl).
#![cfg(feature = "server")]

mod container_secrets;
mod harness;
mod keystone;
mod quotas;
mod robustness;
mod shared_catalog;

use serde_json::{Value, json};

use harness::{id_of, identity, path_of, start, start_full, with};

const SECRET_FIELDS: [&str; 13] = [
    "algorithm",
    "bit_length",
    "consumers",
    "content_types",
    "created",
    "creator_id",
    "expiration",
    "mode",
    "name",
    "secret_ref",
    "secret_type",
    "status",
    "updated",
];

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn version_documents_need_no_project() {
    let s = start("");
    // Without a microversion header: Barbican's older document.
    let r = s.raw("GET", "/", &[], b"");
    assert_eq!(r.status, 300);
    assert_eq!(r.json()["versions"]["values"][0]["id"], "v1");
    let r = s.raw(
        "GET",
        "/",
        &[("OpenStack-API-Version".into(), "key-manager 1.1".into())],
        b"",
    );
    assert_eq!(r.status, 300);
    let v = &r.json()["versions"][0];
    assert_eq!(v["id"], "v1");
    assert_eq!(v["status"], "CURRENT");
    assert_eq!(v["min_version"], "1.0");
    assert_eq!(v["max_version"], "1.2");
    assert!(
        r.header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    let r = s.raw("GET", "/v1", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"]["id"], "v1");
    let r = s.raw(
        "GET",
        "/v1/",
        &[("OpenStack-API-Version".into(), "key-manager 1.1".into())],
        b"",
    );
    assert_eq!(r.header("openstack-api-version"), Some("key-manager 1.1"));
    let r = s.raw(
        "GET",
        "/",
        &[("OpenStack-API-Version".into(), "key-manager 1.7".into())],
        b"",
    );
    assert_eq!(r.status, 406);
    assert!(r.header("x-openstack-request-id").is_some());
}

#[test]
fn secret_store_read_list_delete() {
    let s = start("");
    let body = json!({"name": "n", "payload": "abc", "payload_content_type": "text/plain",
                      "algorithm": "aes", "bit_length": 256, "mode": "cbc"});
    for path in ["/v1/secrets", "/v1/secrets/"] {
        let r = s.call("POST", path, Some(&body));
        assert_eq!(r.status, 201, "{}", r.text());
        let href = r.json()["secret_ref"].as_str().unwrap().to_owned();
        assert_eq!(r.header("location"), Some(href.as_str()));
        assert!(href.starts_with(&format!("{}/v1/secrets/", s.base())));
    }
    let r = s.call("POST", "/v1/secrets", Some(&body));
    let href = r.json()["secret_ref"].as_str().unwrap().to_owned();
    let path = path_of(&href);

    // Metadata: exactly Barbican's fields (consumers from 1.1 on).
    let r = s.call("GET", &path, None);
    assert_eq!(r.status, 200);
    let meta = r.json();
    assert_eq!(keys(&meta), SECRET_FIELDS);
    assert_eq!(meta["content_types"]["default"], "text/plain");
    assert_eq!(meta["creator_id"], "u1");
    assert_eq!(meta["secret_ref"], href.as_str());
    assert_eq!(meta["status"], "ACTIVE");
    assert!(!meta["created"].as_str().unwrap().ends_with("+00:00"));
    let mut v10 = identity("proj-a", "u1", "creator");
    v10.pop();
    let r = s.raw("GET", &path, &v10, b"");
    assert!(r.json().get("consumers").is_none());

    // Payload negotiation as Barbican's.
    let payload = format!("{path}/payload");
    let h = identity("proj-a", "u1", "creator");
    let r = s.raw("GET", &payload, &h, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "abc"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = s.raw(
        "GET",
        &payload,
        &with(h.clone(), "Accept", "text/plain"),
        b"",
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let r = s.raw("GET", &payload, &with(h.clone(), "Accept", "*/*"), b"");
    assert_eq!(r.status, 200);
    let r = s.raw(
        "GET",
        &payload,
        &with(h.clone(), "Accept", "application/json"),
        b"",
    );
    assert_eq!(
        r.error(406),
        "Secret payload retrieval issue seen - Wrong payload content-type."
    );
    let r = s.raw(
        "GET",
        &payload,
        &with(h.clone(), "Accept", "TEXT/PLAIN"),
        b"",
    );
    r.error(400);
    // Older clients: a non-JSON Accept on the secret itself is its payload.
    let r = s.raw("GET", &path, &with(h.clone(), "Accept", "text/plain"), b"");
    assert_eq!((r.status, r.text().as_str()), (200, "abc"));
    let r = s.raw("GET", &path, &with(h.clone(), "Accept", "text/html"), b"");
    r.error(406);

    // Listing with filters and paging.
    let r = s.call("GET", "/v1/secrets?name=n&limit=1&offset=1", None);
    let page = r.json();
    assert_eq!(page["total"], 3);
    assert_eq!(page["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(keys(&page["secrets"][0]), SECRET_FIELDS);
    assert_eq!(
        page["previous"],
        format!("{}/v1/secrets?limit=1&offset=0", s.base())
    );
    assert_eq!(
        page["next"],
        format!("{}/v1/secrets?limit=1&offset=2", s.base())
    );
    let r = s.call("GET", "/v1/secrets?limit=0", None);
    assert_eq!(
        r.json()["secrets"].as_array().unwrap().len(),
        1,
        "limit 0 is 1"
    );
    let r = s.call("GET", "/v1/secrets?name=nothing", None);
    assert_eq!(r.json(), json!({"secrets": [], "total": 0}));
    let r = s.call(
        "GET",
        "/v1/secrets?alg=aes&bits=256&mode=cbc&secret_type=opaque",
        None,
    );
    assert_eq!(r.json()["total"], 3);
    let r = s.call("GET", "/v1/secrets?secret_type=bogus", None);
    r.error(400);
    let r = s.call(
        "GET",
        "/v1/secrets?sort=name:desc&created=gt:2000-01-01T00:00:00",
        None,
    );
    assert_eq!(r.json()["total"], 3);

    // Delete, then it is gone.
    assert_eq!(s.call("DELETE", &path, None).status, 204);
    assert_eq!(s.call("GET", &path, None).error(404), "Secret not found.");
    assert_eq!(s.call("DELETE", &path, None).status, 404);
    let r = s.call("GET", "/v1/secrets/not-a-uuid", None);
    assert_eq!(r.error(404), "Not Found. Provided secret id is invalid.");
}

#[test]
fn payload_less_secret_then_put_once() {
    let s = start("");
    let r = s.call("POST", "/v1/secrets", Some(&json!({"name": "later"})));
    assert_eq!(r.status, 201);
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let meta = s.call("GET", &path, None).json();
    assert!(meta.get("content_types").is_none());
    let r = s.call("GET", &format!("{path}/payload"), None);
    assert_eq!(
        r.error(404),
        "Not Found. Sorry but your secret has no payload."
    );
    let h = identity("proj-a", "u1", "creator");
    let r = s.raw(
        "PUT",
        &path,
        &with(h.clone(), "Content-Type", "application/json"),
        b"{}",
    );
    assert_eq!(
        r.error(415),
        "Unexpected content type. Expected content types are: ['application/octet-stream', 'text/plain']"
    );
    let r = s.raw(
        "PUT",
        &path,
        &with(h.clone(), "Content-Type", "text/plain"),
        b"hello",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.raw(
        "PUT",
        &path,
        &with(h.clone(), "Content-Type", "text/plain"),
        b"again",
    );
    assert_eq!(r.error(409), "Secret already has data, cannot modify it.");
    let r = s.raw(
        "GET",
        &format!("{path}/payload"),
        &with(h.clone(), "Accept", "text/plain"),
        b"",
    );
    assert_eq!(r.text(), "hello");

    // Bytes, base64 in the PUT body.
    let r = s.call("POST", "/v1/secrets/", Some(&json!({})));
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let h2 = with(
        with(h.clone(), "Content-Type", "application/octet-stream"),
        "Content-Encoding",
        "base64",
    );
    assert_eq!(s.raw("PUT", &path, &h2, b"AAEC/w==").status, 204);
    let r = s.raw("GET", &format!("{path}/payload"), &h, b"");
    assert_eq!(r.body, [0, 1, 2, 255]);
    // Not UTF-8: Barbican refuses it as text/plain.
    let r = s.raw(
        "GET",
        &format!("{path}/payload"),
        &with(h, "Accept", "text/plain"),
        b"",
    );
    r.error(406);
}

#[test]
fn secret_post_refusals() {
    let s = start("");
    let h = identity("proj-a", "u1", "creator");
    let json_h = with(h.clone(), "Content-Type", "application/json");
    let r = s.raw("POST", "/v1/secrets", &json_h, b"{bad");
    assert_eq!(r.error(400), "Malformed JSON");
    let r = s.raw("POST", "/v1/secrets", &json_h, b"[1,2]");
    assert_eq!(r.error(400), "Malformed JSON");
    let r = s.raw(
        "POST",
        "/v1/secrets",
        &with(h.clone(), "Content-Type", "text/plain"),
        b"{}",
    );
    assert_eq!(
        r.error(415),
        "Unexpected content type. Expected content types are: ['application/json']"
    );
    let r = s.raw("POST", "/v1/secrets", &h, b"{}");
    r.error(415);
    let r = s.call("POST", "/v1/secrets", Some(&json!({"payload": "x"})));
    assert_eq!(
        r.error(400),
        "Provided object does not match schema 'Secret': If 'payload' is supplied, 'payload_content_type' must also be supplied.. Invalid property: 'payload_content_type'"
    );
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"payload": "", "payload_content_type": "text/plain"})),
    );
    assert!(r.error(400).contains("must be non empty"));
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"payload": "x", "payload_content_type": "text/html"})),
    );
    r.error(400);
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(
            &json!({"payload": "not base64!", "payload_content_type": "application/octet-stream",
                     "payload_content_encoding": "base64"}),
        ),
    );
    r.error(400);
    for bad in [
        json!({"name": 5}),
        json!({"bit_length": "x"}),
        json!({"bit_length": -1}),
        json!({"secret_type": "bogus"}),
        json!({"expiration": "yesterday"}),
        json!({"expiration": "2000-01-01T00:00:00Z"}),
    ] {
        let r = s.call("POST", "/v1/secrets", Some(&bad));
        assert!(
            r.error(400)
                .starts_with("Provided object does not match schema 'Secret'"),
            "{bad}"
        );
    }
    // Unknown routes and methods answer in Barbican's error shape.
    s.call("GET", "/v1/nothing", None).error(404);
    s.call("DELETE", "/v1/secrets", None).error(405);
    // Observers may not store.
    let r = s.raw(
        "POST",
        "/v1/secrets",
        &with(
            identity("proj-a", "u1", "observer"),
            "Content-Type",
            "application/json",
        ),
        b"{}",
    );
    r.error(403);
}

#[test]
fn consumers_block_delete_unless_forced() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"payload": "k", "payload_content_type": "text/plain"})),
    );
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let c1 = json!({"service": "image", "resource_type": "image", "resource_id": "img-1"});
    let c2 = json!({"service": "volume", "resource_type": "volume", "resource_id": "vol-1"});
    let r = s.call("POST", &format!("{path}/consumers/"), Some(&c1));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("location").unwrap(),
        format!("{}/v1/consumers/{}/consumers", s.base(), id_of(&path))
    );
    assert_eq!(r.json()["consumers"], json!([c1]));
    assert_eq!(keys(&r.json()), SECRET_FIELDS);
    s.call("POST", &format!("{path}/consumers"), Some(&c2));
    let r = s.call("GET", &format!("{path}/consumers?limit=1"), None);
    let page = r.json();
    assert_eq!(page["total"], 2);
    assert_eq!(page["consumers"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_string());
    let r = s.call("DELETE", &path, None);
    assert!(
        r.error(400)
            .contains("Secret cannot be deleted as it has consumers.")
    );
    let r = s.call("DELETE", &format!("{path}/consumers"), Some(&c2));
    assert_eq!(r.json()["consumers"], json!([c1]));
    let r = s.call("DELETE", &format!("{path}/consumers"), Some(&c2));
    r.error(404);
    let r = s.call(
        "POST",
        &format!("{path}/consumers"),
        Some(&json!({"service": "x"})),
    );
    assert!(
        r.error(400)
            .contains("'resource_type' is a required property")
    );
    assert_eq!(
        s.call("DELETE", &format!("{path}?force=true"), None).status,
        204
    );
    s.call("GET", &path, None).error(404);
}

#[test]
fn other_projects_see_not_found_and_acls_share() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"payload": "shared", "payload_content_type": "text/plain"})),
    );
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let bob = identity("proj-b", "bob", "creator");
    assert_eq!(
        s.raw("GET", &path, &bob, b"").error(404),
        "Secret not found."
    );
    s.raw("DELETE", &path, &bob, b"").error(404);

    let acl = format!("{path}/acl");
    assert_eq!(
        s.call("GET", &acl, None).json(),
        json!({"read": {"project-access": true}})
    );
    let r = s.call(
        "PUT",
        &acl,
        Some(&json!({"read": {"users": ["bob"], "project-access": false}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["acl_ref"], format!("{}{acl}", s.base()));
    let got = s.call("GET", &acl, None).json();
    assert_eq!(got["read"]["users"], json!(["bob"]));
    assert_eq!(got["read"]["project-access"], false);
    let r = s.raw("GET", &format!("{path}/payload"), &bob, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "shared"));
    // PATCH keeps what it does not name.
    s.call(
        "PATCH",
        &acl,
        Some(&json!({"read": {"project-access": true}})),
    );
    let got = s.call("GET", &acl, None).json();
    assert_eq!(got["read"]["users"], json!(["bob"]));
    assert_eq!(got["read"]["project-access"], true);
    s.call("PUT", &acl, Some(&json!({"read": {"users": 5}})))
        .error(400);
    s.call("PUT", &acl, Some(&json!({"write": {}}))).error(400);
    let r = s.call("DELETE", &acl, None);
    assert_eq!((r.status, r.text().as_str()), (200, "null"));
    s.raw("GET", &format!("{path}/payload"), &bob, b"")
        .error(404);
}

#[test]
fn orders_and_the_containers_they_make() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/orders/",
        Some(
            &json!({"type": "key", "meta": {"name": "k", "algorithm": "aes", "bit_length": 256,
                     "mode": "cbc", "payload_content_type": "application/octet-stream"}}),
        ),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let order = path_of(r.json()["order_ref"].as_str().unwrap());
    let o = s.call("GET", &order, None).json();
    assert_eq!(o["status"], "ACTIVE");
    assert_eq!(o["type"], "key");
    assert_eq!(
        keys(&o),
        [
            "created",
            "creator_id",
            "meta",
            "order_ref",
            "secret_ref",
            "status",
            "sub_status",
            "sub_status_message",
            "type",
            "updated"
        ]
    );
    let key = s
        .call("GET", &path_of(o["secret_ref"].as_str().unwrap()), None)
        .json();
    assert_eq!(key["secret_type"], "symmetric");
    assert_eq!(key["bit_length"], 256);

    let r = s.call(
        "POST",
        "/v1/orders",
        Some(&json!({"type": "asymmetric", "meta": {"name": "kp", "algorithm": "rsa", "bit_length": 2048}})),
    );
    assert_eq!(r.status, 202);
    let o = s
        .call(
            "GET",
            &path_of(r.json()["order_ref"].as_str().unwrap()),
            None,
        )
        .json();
    assert_eq!(o["status"], "ACTIVE");
    let container = path_of(o["container_ref"].as_str().unwrap());
    let c = s.call("GET", &container, None).json();
    assert_eq!(c["type"], "rsa");
    assert_eq!(
        keys(&c),
        [
            "consumers",
            "container_ref",
            "created",
            "creator_id",
            "name",
            "secret_refs",
            "status",
            "type",
            "updated"
        ]
    );
    let names: Vec<&str> = c["secret_refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"private_key") && names.contains(&"public_key"));
    let list = s.call("GET", "/v1/containers?limit=5", None).json();
    assert_eq!(list["total"], 1);
    s.raw(
        "GET",
        &container,
        &identity("proj-b", "bob", "creator"),
        b"",
    )
    .error(404);
    assert_eq!(s.call("DELETE", &container, None).status, 204);
    assert_eq!(
        s.call("GET", &container, None).error(404),
        "Secrets container not found."
    );

    let list = s.call("GET", "/v1/orders?limit=1", None).json();
    assert_eq!(list["total"], 2);
    assert!(list["next"].is_string());
    // Queens: deleting an order takes the project's admin.
    s.call("DELETE", &order, None).error(403);
    let admin = identity("proj-a", "u1", "admin");
    assert_eq!(s.raw("DELETE", &order, &admin, b"").status, 204);
    assert_eq!(s.call("GET", &order, None).error(404), "Order not found.");

    // Barbican 23 refuses certificate orders in its schema.
    let r = s.call(
        "POST",
        "/v1/orders",
        Some(&json!({"type": "certificate", "meta": {"request_type": "custom"}})),
    );
    assert_eq!(
        r.error(400),
        "Provided object does not match schema 'Order': 'certificate' is not one of ['key', 'asymmetric']. Invalid property: 'type'"
    );
    s.call("POST", "/v1/orders", Some(&json!({"meta": {}})))
        .error(400);
    s.call("POST", "/v1/orders", Some(&json!({"type": "key"})))
        .error(400);
    s.call(
        "POST",
        "/v1/orders",
        Some(&json!({"type": "key", "meta": {"algorithm": "aes", "bit_length": 7}})),
    )
    .error(400);
}

#[test]
fn secret_stores_are_the_backend_mapping() {
    // One backend: nothing to choose, Barbican's not-found.
    let one = start("");
    let admin = identity("proj-a", "u1", "admin");
    for path in [
        "/v1/secret-stores",
        "/v1/secret-stores/global-default",
        "/v1/secret-stores/preferred",
    ] {
        assert!(
            one.raw("GET", path, &admin, b"")
                .error(404)
                .contains("Multiple backends")
        );
    }
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let s = start_full(
        "",
        &format!("[backends.second]\nkind = \"simple_crypto\"\nmaster_kek = \"{kek}\"\n"),
        |_| {},
    );
    let list = s.raw("GET", "/v1/secret-stores", &admin, b"").json();
    assert_eq!(list["total"], 2);
    let store = &list["secret_stores"][1];
    assert_eq!(store["name"], "software");
    assert_eq!(store["global_default"], true);
    let global = s
        .raw("GET", "/v1/secret-stores/global-default", &admin, b"")
        .json();
    assert_eq!(global["name"], "software");
    s.raw("GET", "/v1/secret-stores/preferred", &admin, b"")
        .error(404);
    let store_path = path_of(store["secret_store_ref"].as_str().unwrap());
    let r = s.raw("POST", &format!("{store_path}/preferred"), &admin, b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.raw("GET", "/v1/secret-stores/preferred", &admin, b"");
    assert_eq!(r.json()["name"], "software");
    let r = s.raw("DELETE", &format!("{store_path}/preferred"), &admin, b"");
    assert_eq!(r.status, 204);
    s.raw("GET", "/v1/secret-stores/preferred", &admin, b"")
        .error(404);
    s.raw("POST", "/v1/secret-stores/nope/preferred", &admin, b"")
        .error(404);
    // Only admins pick the project's store (Barbican's policy).
    s.raw(
        "POST",
        &format!("{store_path}/preferred"),
        &identity("proj-a", "u1", "creator"),
        b"",
    )
    .error(403);
}

#[test]
fn noauth_default_identity_for_clients_that_send_none() {
    let s = start("default_project = \"guide\"\ndefault_roles = [\"creator\"]");
    let h = vec![("Content-Type".to_string(), "application/json".to_string())];
    let r = s.raw(
        "POST",
        "/v1/secrets",
        &h,
        br#"{"payload":"p","payload_content_type":"text/plain"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    // Created in project `guide`: proj-a cannot see it.
    s.call("GET", &path, None).error(404);
    assert_eq!(
        s.raw("GET", &path, &identity("guide", "x", "creator"), b"")
            .status,
        200
    );
    assert_eq!(id_of(&path).len(), 36);
}

#[test]
fn generic_containers_with_secret_refs() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/secrets",
        Some(&json!({"payload": "k", "payload_content_type": "text/plain"})),
    );
    let secret = r.json()["secret_ref"].as_str().unwrap().to_owned();
    let body = json!({"name": "g", "type": "generic",
                      "secret_refs": [{"name": "one", "secret_ref": secret}]});
    let r = s.call("POST", "/v1/containers/", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    let href = r.json()["container_ref"].as_str().unwrap().to_owned();
    assert_eq!(r.header("location"), Some(href.as_str()));
    let c = s.call("GET", &path_of(&href), None).json();
    assert_eq!(c["type"], "generic");
    assert_eq!(
        c["secret_refs"],
        json!([{"name": "one", "secret_ref": secret}])
    );
    let listed = s
        .call("GET", "/v1/containers?type=generic&name=g", None)
        .json();
    assert_eq!(listed["total"], 1);
    let listed = s.call("GET", "/v1/containers?type=rsa", None).json();
    assert_eq!(listed["total"], 0);
    s.call("POST", "/v1/containers", Some(&json!({"type": "bogus"})))
        .error(400);
    s.call("POST", "/v1/containers", Some(&json!({"name": "x"})))
        .error(400);
    let missing = json!({"type": "generic", "secret_refs": [{"name": "a",
        "secret_ref": format!("{}/v1/secrets/{}", s.base(), uuid_like())}]});
    let r = s.call("POST", "/v1/containers", Some(&missing));
    assert_eq!(r.error(404), "Secret provided for 'a' doesn't exist.");
}

fn uuid_like() -> &'static str {
    "6a9c3c1e-8e5e-4f7a-9a0e-0a1b2c3d4e5f"
}

#[test]
fn secret_user_metadata() {
    let s = start("");
    let r = s.call("POST", "/v1/secrets", Some(&json!({"name": "m"})));
    let path = path_of(r.json()["secret_ref"].as_str().unwrap());
    let meta = format!("{path}/metadata");
    let r = s.call(
        "PUT",
        &meta,
        Some(&json!({"metadata": {"Colour": "red", "size": "9"}})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["metadata_ref"], format!("{}{meta}", s.base()));
    assert_eq!(
        s.call("GET", &meta, None).json(),
        json!({"metadata": {"colour": "red", "size": "9"}})
    );
    let r = s.call("POST", &meta, Some(&json!({"key": "extra", "value": "1"})));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.call("POST", &meta, Some(&json!({"key": "extra", "value": "2"})))
            .status,
        409
    );
    let r = s.call("GET", &format!("{meta}/extra"), None);
    assert_eq!(r.json(), json!({"key": "extra", "value": "1"}));
    let r = s.call(
        "PUT",
        &format!("{meta}/extra"),
        Some(&json!({"key": "extra", "value": "3"})),
    );
    assert_eq!(r.json(), json!({"key": "extra", "value": "3"}));
    // The client's add_secret_metadata POSTs here; Barbican answers 405.
    s.call(
        "POST",
        &format!("{meta}/extra"),
        Some(&json!({"key": "k", "value": "v"})),
    )
    .error(405);
    assert_eq!(s.call("DELETE", &format!("{meta}/extra"), None).status, 204);
    let r = s.call("GET", &format!("{meta}/extra"), None);
    assert_eq!(r.error(404), "Secret metadata not found.");
    s.call("PUT", &meta, Some(&json!({"metadata": {"k": 5}})))
        .error(400);
}

#[test]
fn container_acls() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/containers",
        Some(&json!({"type": "generic", "name": "c"})),
    );
    let path = path_of(r.json()["container_ref"].as_str().unwrap());
    let acl = format!("{path}/acl");
    assert_eq!(
        s.call("GET", &acl, None).json(),
        json!({"read": {"project-access": true}})
    );
    let r = s.call("PUT", &acl, Some(&json!({"read": {"users": ["bob"]}})));
    assert_eq!(r.json()["acl_ref"], format!("{}{acl}", s.base()));
    let bob = identity("proj-b", "bob", "creator");
    assert_eq!(s.raw("GET", &path, &bob, b"").status, 200);
    s.call("PATCH", &acl, Some(&json!({"read": {"users": []}})));
    s.raw("GET", &path, &bob, b"").error(404);
    assert_eq!(s.call("DELETE", &acl, None).text(), "null");
}

#[test]
fn container_consumers() {
    let s = start("");
    let r = s.call(
        "POST",
        "/v1/containers",
        Some(&json!({"type": "generic", "name": "c"})),
    );
    let path = path_of(r.json()["container_ref"].as_str().unwrap());
    let k = json!({"name": "lb", "URL": "http://lb/1"});
    let r = s.call("POST", &format!("{path}/consumers/"), Some(&k));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["consumers"], json!([k]));
    // Barbican's Location for a consumer: under /v1/consumers/.
    assert_eq!(
        r.header("location").unwrap(),
        format!("{}/v1/consumers/{}/consumers", s.base(), id_of(&path))
    );
    let page = s.call("GET", &format!("{path}/consumers"), None).json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["consumers"][0]["URL"], "http://lb/1");
    s.call(
        "POST",
        &format!("{path}/consumers"),
        Some(&json!({"name": "x"})),
    )
    .error(400);
    let r = s.call("DELETE", &format!("{path}/consumers"), Some(&k));
    assert_eq!(r.json()["consumers"], json!([]));
}
