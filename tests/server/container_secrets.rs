//! `/v1/containers/{id}/secrets`: a generic container takes and loses
//! secret references after creation, as Barbican's ContainerSecrets
//! controller answers.

use serde_json::json;

use crate::harness::{path_of, start};

#[test]
fn generic_containers_take_and_lose_secret_refs() {
    let s = start("");
    let secret = |name: &str| {
        let r = s.call("POST", "/v1/secrets", Some(&json!({"name": name})));
        r.json()["secret_ref"].as_str().unwrap().to_owned()
    };
    let one = secret("one");
    let r = s.call(
        "POST",
        "/v1/containers",
        Some(&json!({"type": "generic", "name": "g"})),
    );
    let container = r.json()["container_ref"].as_str().unwrap().to_owned();
    let path = format!("{}/secrets", path_of(&container));
    let r = s.call(
        "POST",
        &path,
        Some(&json!({"name": "a", "secret_ref": one})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json(), json!({"container_ref": container}));
    assert_eq!(r.header("location"), Some(container.as_str()));
    let c = s.call("GET", &path_of(&container), None).json();
    assert_eq!(c["secret_refs"], json!([{"name": "a", "secret_ref": one}]));
    // The same name and secret again: Barbican's conflict.
    let r = s.call(
        "POST",
        &path,
        Some(&json!({"name": "a", "secret_ref": one})),
    );
    assert!(
        r.error(409)
            .starts_with("Conflict. A secret with that name and ID")
    );
    // A secret that is not there, a ref that names none, no ref at all.
    let missing = format!(
        "{}/v1/secrets/6a9c3c1e-8e5e-4f7a-9a0e-0a1b2c3d4e5f",
        s.base()
    );
    let r = s.call("POST", &path, Some(&json!({"secret_ref": missing})));
    assert_eq!(r.error(404), "Secret provided doesn't exist.");
    let r = s.call(
        "POST",
        &path,
        Some(&json!({"secret_ref": "http://x/v1/secrets/nope"})),
    );
    assert_eq!(r.error(404), "Secret provided doesn't exist.");
    s.call("POST", &path, Some(&json!({"name": "b"})))
        .error(400);
    // Removing: only what the container holds, by name and ref.
    let r = s.call(
        "DELETE",
        &path,
        Some(&json!({"name": "other", "secret_ref": one})),
    );
    assert_eq!(r.error(404), "Secret provided is not in the container");
    let r = s.call(
        "DELETE",
        &path,
        Some(&json!({"name": "a", "secret_ref": one})),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let c = s.call("GET", &path_of(&container), None).json();
    assert_eq!(c["secret_refs"], json!([]));
    // Only generic containers change.
    let order = s.call(
        "POST",
        "/v1/orders",
        Some(&json!({"type": "asymmetric", "meta": {"algorithm": "rsa", "bit_length": 2048}})),
    );
    let order = s.call(
        "GET",
        &path_of(order.json()["order_ref"].as_str().unwrap()),
        None,
    );
    let rsa = order.json()["container_ref"].as_str().unwrap().to_owned();
    let r = s.call(
        "POST",
        &format!("{}/secrets", path_of(&rsa)),
        Some(&json!({"name": "x", "secret_ref": one})),
    );
    let text = r.error(400);
    assert!(
        text.contains("Only 'generic' containers can be modified."),
        "{text}"
    );
}
