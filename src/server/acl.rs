//! `/v1/secrets/{id}/acl`: the read ACL (PUT replaces, PATCH merges, GET,
//! DELETE restores the defaults), and the same on `/v1/containers/{id}/acl`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::{Acl, ContainerId, SecretId, UserId};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{Body, Caller};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/secrets/{id}/acl",
            get(read).put(replace).patch(patch).delete(delete),
        )
        .route(
            "/v1/secrets/{id}/acl/",
            get(read).put(replace).patch(patch).delete(delete),
        )
        .route(
            "/v1/containers/{id}/acl",
            get(c_read).put(c_replace).patch(c_patch).delete(c_delete),
        )
        .route(
            "/v1/containers/{id}/acl/",
            get(c_read).put(c_replace).patch(c_patch).delete(c_delete),
        )
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Acl, &e)
}

fn parse_id(text: &str) -> ApiResult<SecretId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Secret))
}

/// What a PUT/PATCH body says about the read ACL; `None` = not given.
struct AclChange {
    users: Option<Vec<UserId>>,
    project_access: Option<bool>,
}

fn acl_change(body: &Body) -> ApiResult<AclChange> {
    let map = body.json_object()?;
    let schema = |m: &str, p: &str| ApiError::schema(Resource::Acl, m, Some(p));
    if let Some(k) = map.keys().find(|k| k.as_str() != "read") {
        return Err(schema(
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            k,
        ));
    }
    let read = match map.get("read") {
        None => {
            return Ok(AclChange {
                users: None,
                project_access: None,
            });
        }
        Some(Value::Object(r)) => r,
        Some(v) => return Err(schema(&format!("{v} is not of type 'object'"), "read")),
    };
    let users = match read.get("users") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|u| match u {
                    Value::String(s) => UserId::new(s.clone())
                        .map_err(|_| schema(&format!("'{s}' is not a valid user id"), "users")),
                    v => Err(schema(&format!("{v} is not of type 'string'"), "users")),
                })
                .collect::<ApiResult<Vec<_>>>()?,
        ),
        Some(v) => return Err(schema(&format!("{v} is not of type 'array'"), "users")),
    };
    let project_access = match read.get("project-access") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            return Err(schema(
                &format!("{v} is not of type 'boolean'"),
                "project-access",
            ));
        }
    };
    Ok(AclChange {
        users,
        project_access,
    })
}

fn acl_ref(state: &AppState, id: SecretId) -> Value {
    json!({ "acl_ref": format!("{}/acl", state.href("secrets", id)) })
}

fn read_body(acl: &Acl) -> Value {
    let mut read = Map::new();
    read.insert("project-access".into(), json!(acl.project_access));
    if !(acl.users.is_empty() && acl.project_access) {
        let users: Vec<&str> = acl.users.iter().map(UserId::as_str).collect();
        read.insert("users".into(), json!(users));
    }
    json!({ "read": read })
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    let acl = state
        .run(move |s| s.acl(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(read_body(&acl)).into_response())
}

async fn replace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let change = acl_change(&body)?;
    let acl = Acl {
        users: change.users.unwrap_or_default(),
        project_access: change.project_access.unwrap_or(true),
    };
    let ctx = caller.ctx;
    state
        .run(move |s| s.set_acl(&ctx, &id, acl))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(acl_ref(&state, id)).into_response())
}

async fn patch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let change = acl_change(&body)?;
    let ctx = caller.ctx;
    state
        .run(move |s| {
            let mut acl = s.acl(&ctx, &id)?;
            if let Some(users) = change.users {
                acl.users = users;
            }
            if let Some(p) = change.project_access {
                acl.project_access = p;
            }
            s.set_acl(&ctx, &id, acl)
        })
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(acl_ref(&state, id)).into_response())
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_acl(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(Value::Null).into_response())
}

// ---- containers: the same four, on the container's ACL ----

fn container_id(text: &str) -> ApiResult<ContainerId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Container))
}

fn container_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Container, &e)
}

fn container_acl_ref(state: &AppState, id: ContainerId) -> Value {
    json!({ "acl_ref": format!("{}/acl", state.href("containers", id)) })
}

async fn c_read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = container_id(&id)?;
    let ctx = caller.ctx;
    let acl = state
        .run(move |s| s.container_acl(&ctx, &id))
        .await?
        .map_err(container_err)?;
    Ok(axum::Json(read_body(&acl)).into_response())
}

async fn c_replace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = container_id(&id)?;
    let change = acl_change(&body)?;
    let acl = Acl {
        users: change.users.unwrap_or_default(),
        project_access: change.project_access.unwrap_or(true),
    };
    let ctx = caller.ctx;
    state
        .run(move |s| s.set_container_acl(&ctx, &id, acl))
        .await?
        .map_err(container_err)?;
    Ok(axum::Json(container_acl_ref(&state, id)).into_response())
}

async fn c_patch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = container_id(&id)?;
    let change = acl_change(&body)?;
    let ctx = caller.ctx;
    state
        .run(move |s| {
            let mut acl = s.container_acl(&ctx, &id)?;
            if let Some(users) = change.users {
                acl.users = users;
            }
            if let Some(p) = change.project_access {
                acl.project_access = p;
            }
            s.set_container_acl(&ctx, &id, acl)
        })
        .await?
        .map_err(container_err)?;
    Ok(axum::Json(container_acl_ref(&state, id)).into_response())
}

async fn c_delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = container_id(&id)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_container_acl(&ctx, &id))
        .await?
        .map_err(container_err)?;
    Ok(axum::Json(Value::Null).into_response())
}
