//! `/v1/containers`: read, list and delete the containers the store holds
//! (asymmetric orders make `rsa` containers).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::{Container, ContainerId};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Caller};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/containers", get(list))
        .route("/v1/containers/", get(list))
        .route("/v1/containers/{id}", get(read).delete(delete))
        .route("/v1/containers/{id}/", get(read).delete(delete))
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Container, &e)
}

fn parse_id(text: &str) -> ApiResult<ContainerId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Container))
}

/// A container as Barbican 23 shows it. The store keeps no container
/// consumers yet, so `consumers` is always empty.
fn container_json(state: &AppState, c: &Container) -> Value {
    let refs: Vec<Value> = c
        .secret_refs
        .iter()
        .map(|(name, id)| json!({"name": name, "secret_ref": state.href("secrets", id)}))
        .collect();
    json!({
        "created": wire::time(c.created),
        "updated": wire::time(c.updated),
        "status": c.status.as_str(),
        "name": c.name,
        "type": c.container_type.as_str(),
        "creator_id": c.creator_id.as_str(),
        "secret_refs": refs,
        "consumers": [],
        "container_ref": state.href("containers", c.id),
    })
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    let c = state
        .run(move |s| s.container(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(container_json(&state, &c)).into_response())
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_container(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<wire::Query>,
) -> ApiResult<Response> {
    let (limit, offset) = wire::paging(&q);
    let ctx = caller.ctx;
    let page = state
        .run(move |s| s.list_containers(&ctx, limit, offset))
        .await?
        .map_err(store_err)?;
    let mut out = Map::new();
    out.insert(
        "containers".into(),
        Value::Array(
            page.items
                .iter()
                .map(|c| container_json(&state, c))
                .collect(),
        ),
    );
    wire::add_paging(&mut out, &state, "containers", &page);
    Ok(axum::Json(Value::Object(out)).into_response())
}
