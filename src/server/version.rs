//! `GET /` (300, the version list clients discover microversions from)
//! and `GET /v1` (200). Neither needs a project: they are answered before
//! any authentication.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(root))
        .route("/v1", get(v1))
        .route("/v1/", get(v1))
}

fn links(state: &AppState) -> serde_json::Value {
    json!([
        {"rel": "self", "href": format!("{}/v1/", state.href)},
        {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
    ])
}

/// Clients that negotiate microversions (they send
/// `OpenStack-API-Version`) get the version list; others Barbican's older
/// `{"versions": {"values": [...]}}`, as Barbican 23 answers both.
async fn root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    if !headers.contains_key("openstack-api-version") {
        return (
            StatusCode::MULTIPLE_CHOICES,
            Json(json!({"versions": {"values": [v1_doc(&state)]}})),
        );
    }
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": [{
            "id": "v1",
            "status": "CURRENT",
            "min_version": "1.0",
            "max_version": "1.2",
            "links": links(&state),
        }]})),
    )
}

async fn v1(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(json!({ "version": v1_doc(&state) }))
}

fn v1_doc(state: &AppState) -> serde_json::Value {
    json!({
        "id": "v1",
        "status": "stable",
        "links": links(state),
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.key-manager-v1+json"}],
    })
}
