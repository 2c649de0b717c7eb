//! `/v1/secrets/{id}/metadata` and `/metadata/{key}`: a secret's user
//! metadata, as Barbican serves it (POST on a key's URL is 405 there too).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::SecretId;

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Body, Caller, Fields};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/secrets/{id}/metadata",
            get(list).put(replace).post(add),
        )
        .route(
            "/v1/secrets/{id}/metadata/",
            get(list).put(replace).post(add),
        )
        .route(
            "/v1/secrets/{id}/metadata/{key}",
            get(read).put(update).delete(delete),
        )
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Secret, &e)
}

fn parse_id(text: &str) -> ApiResult<SecretId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Secret))
}

/// `{"key": …, "value": …}` with both strings.
fn key_value(body: &Body) -> ApiResult<(String, String)> {
    let map = body.json_object()?;
    let f = Fields::new(&map, Resource::Secret);
    let required = |k: &str| -> ApiResult<String> {
        f.str(k)?.map(str::to_owned).ok_or_else(|| {
            ApiError::schema(
                Resource::Secret,
                &format!("'{k}' is a required property"),
                Some(k),
            )
        })
    };
    Ok((required("key")?, required("value")?))
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    let m = state
        .run(move |s| s.secret_metadata(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(json!({ "metadata": m })).into_response())
}

async fn replace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let map = body.json_object()?;
    let metadata = match map.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        None => Map::new(),
        Some(v) => {
            return Err(ApiError::schema(
                Resource::Secret,
                &format!("{v} is not of type 'object'"),
                Some("metadata"),
            ));
        }
    };
    let mut pairs = Vec::with_capacity(metadata.len());
    for (k, v) in metadata {
        match v {
            Value::String(s) => pairs.push((k, s)),
            other => {
                return Err(ApiError::schema(
                    Resource::Secret,
                    &format!("{other} is not of type 'string'"),
                    Some("metadata"),
                ));
            }
        }
    }
    let ctx = caller.ctx;
    state
        .run(move |s| s.replace_secret_metadata(&ctx, &id, pairs))
        .await?
        .map_err(store_err)?;
    let href = format!("{}/metadata", state.href("secrets", id));
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "metadata_ref": href })),
    )
        .into_response())
}

async fn add(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (key, value) = key_value(&body)?;
    let ctx = caller.ctx;
    let (key, value) = state
        .run(move |s| s.add_secret_metadatum(&ctx, &id, &key, &value))
        .await?
        .map_err(store_err)?;
    let href = format!("{}/metadata/{key}", state.href("secrets", id));
    Ok(wire::created(
        StatusCode::CREATED,
        json!({ "key": key, "value": value }),
        &href,
    ))
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    let k = key.clone();
    let value = state
        .run(move |s| s.secret_metadatum(&ctx, &id, &k))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(json!({ "key": key, "value": value })).into_response())
}

async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, url_key)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (key, value) = key_value(&body)?;
    let ctx = caller.ctx;
    let (key, value) = state
        .run(move |s| s.update_secret_metadatum(&ctx, &id, &url_key, &key, &value))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(json!({ "key": key, "value": value })).into_response())
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_secret_metadatum(&ctx, &id, &key))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}
