//! `/v1/quotas` and `/v1/project-quotas`: the service admin sets a
//! project's limits, the project sees them in effect, and creations past
//! them are refused as Barbican refuses them (403, nothing created).

use serde_json::json;

use crate::harness::{identity, path_of, start};

fn service_admin() -> Vec<(String, String)> {
    identity("svc", "quota-admin", "key-manager:service-admin")
}

fn json_headers(h: Vec<(String, String)>) -> Vec<(String, String)> {
    crate::harness::with(h, "Content-Type", "application/json")
}

#[test]
fn project_quotas_are_set_read_listed_and_deleted_by_the_service_admin() {
    let s = start("");
    let admin = json_headers(service_admin());
    // Unlimited by default, for every resource.
    let r = s.call("GET", "/v1/quotas", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"quotas": {"secrets": -1, "orders": -1, "containers": -1, "consumers": -1, "cas": -1}})
    );
    // A project without values of its own: 404 with Barbican's text.
    let r = s.raw("GET", "/v1/project-quotas/proj-a", &admin, b"");
    assert_eq!(r.error(404), "Project quotas not found.");
    // PUT sets only what it names; the others stay null (the default).
    let body = json!({"project_quotas": {"secrets": 50, "orders": 10, "containers": 20}});
    let r = s.raw(
        "PUT",
        "/v1/project-quotas/proj-a",
        &admin,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.raw("GET", "/v1/project-quotas/proj-a", &admin, b"");
    assert_eq!(
        r.json(),
        json!({"project_quotas": {"secrets": 50, "orders": 10, "containers": 20, "consumers": null, "cas": null}})
    );
    let r = s.call("GET", "/v1/quotas", None);
    assert_eq!(r.json()["quotas"]["secrets"], 50);
    assert_eq!(r.json()["quotas"]["consumers"], -1);
    let listed = s.raw("GET", "/v1/project-quotas", &admin, b"").json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["project_quotas"][0]["project_id"], "proj-a");
    assert_eq!(listed["project_quotas"][0]["project_quotas"]["orders"], 10);
    // Only the service admin manages them; a project's own admin cannot.
    let own_admin = json_headers(identity("proj-a", "u2", "admin"));
    s.raw("GET", "/v1/project-quotas/proj-a", &own_admin, b"")
        .error(403);
    s.raw(
        "PUT",
        "/v1/project-quotas/proj-a",
        &own_admin,
        body.to_string().as_bytes(),
    )
    .error(403);
    // Schema refusals.
    for bad in [
        json!({"project_quotas": {"secrets": "ten"}}),
        json!({"project_quotas": {"bogus": 1}}),
        json!({"quotas": {"secrets": 1}}),
        json!({"project_quotas": 5}),
    ] {
        s.raw(
            "PUT",
            "/v1/project-quotas/proj-a",
            &admin,
            bad.to_string().as_bytes(),
        )
        .error(400);
    }
    s.raw("PUT", "/v1/project-quotas/proj-a", &admin, b"")
        .error(400);
    assert_eq!(
        s.raw("DELETE", "/v1/project-quotas/proj-a", &admin, b"")
            .status,
        204
    );
    let r = s.raw("DELETE", "/v1/project-quotas/proj-a", &admin, b"");
    assert_eq!(r.error(404), "Project quotas not found.");
    assert_eq!(
        s.raw("GET", "/v1/project-quotas", &admin, b"").json()["total"],
        0
    );
}

#[test]
fn creations_past_a_quota_are_refused_and_create_nothing() {
    let s = start("");
    let admin = json_headers(service_admin());
    let body =
        json!({"project_quotas": {"secrets": 1, "containers": 0, "orders": 1, "consumers": 1}});
    let r = s.raw(
        "PUT",
        "/v1/project-quotas/proj-a",
        &admin,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.call("POST", "/v1/secrets", Some(&json!({"name": "one"})));
    assert_eq!(r.status, 201, "{}", r.text());
    let secret = r.json()["secret_ref"].as_str().unwrap().to_owned();
    let r = s.call("POST", "/v1/secrets", Some(&json!({"name": "two"})));
    assert_eq!(
        r.error(403),
        "Secret creation issue seen - Creation not allowed because a quota has been reached."
    );
    assert_eq!(s.call("GET", "/v1/secrets", None).json()["total"], 1);
    let r = s.call(
        "POST",
        "/v1/containers",
        Some(&json!({"type": "generic", "name": "c"})),
    );
    assert_eq!(
        r.error(403),
        "Container creation issue seen - Creation not allowed because a quota has been reached."
    );
    assert_eq!(s.call("GET", "/v1/containers", None).json()["total"], 0);
    let consumer = json!({"service": "image", "resource_type": "image", "resource_id": "i1"});
    let consumers = format!("{}/consumers", path_of(&secret));
    let r = s.call("POST", &consumers, Some(&consumer));
    assert_eq!(r.status, 200, "{}", r.text());
    let second = json!({"service": "image", "resource_type": "image", "resource_id": "i2"});
    s.call("POST", &consumers, Some(&second)).error(403);
    // Another project is not limited by proj-a's quotas.
    let b = json_headers(identity("proj-b", "u9", "creator"));
    for _ in 0..2 {
        let r = s.raw("POST", "/v1/secrets", &b, json!({}).to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
    }
}
