//! `/v1/containers`: read, list and delete the containers the store holds
//! (asymmetric orders make `rsa` containers).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::model::{Container, ContainerConsumer, ContainerId, ContainerType, SecretId};
use crate::store::{ContainerQuery, NewContainer};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Body, Caller, Fields};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/containers", get(list).post(create))
        .route("/v1/containers/", get(list).post(create))
        .route("/v1/containers/{id}", get(read).delete(delete))
        .route("/v1/containers/{id}/", get(read).delete(delete))
        .route(
            "/v1/containers/{id}/consumers",
            get(list_consumers)
                .post(add_consumer)
                .delete(remove_consumer),
        )
        .route(
            "/v1/containers/{id}/consumers/",
            get(list_consumers)
                .post(add_consumer)
                .delete(remove_consumer),
        )
        .route(
            "/v1/containers/{id}/secrets",
            post(add_secret).delete(remove_secret),
        )
        .route(
            "/v1/containers/{id}/secrets/",
            post(add_secret).delete(remove_secret),
        )
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Container, &e)
}

fn parse_id(text: &str) -> ApiResult<ContainerId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Container))
}

/// A container as Barbican 23 shows it.
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
        "consumers": c.consumers.iter().map(|k| json!({"name": k.name, "URL": k.url})).collect::<Vec<_>>(),
        "container_ref": state.href("containers", c.id),
    })
}

fn new_container(body: &Body) -> ApiResult<NewContainer> {
    let map = body.json_object()?;
    let f = Fields::new(&map, Resource::Container);
    let schema = |m: &str, p: &str| ApiError::schema(Resource::Container, m, Some(p));
    let container_type = match f.str("type")? {
        Some("generic") => ContainerType::Generic,
        Some("rsa") => ContainerType::Rsa,
        Some("certificate") => ContainerType::Certificate,
        Some(other) => {
            return Err(schema(
                &format!("'{other}' is not one of ['generic', 'rsa', 'certificate']"),
                "type",
            ));
        }
        None => return Err(schema("'type' is a required property", "type")),
    };
    let mut new = NewContainer::new(container_type);
    new.name = f.str("name")?.map(str::to_owned);
    let refs = match map.get("secret_refs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(v) => {
            return Err(schema(
                &format!("{v} is not of type 'array'"),
                "secret_refs",
            ));
        }
    };
    for item in &refs {
        let Value::Object(r) = item else {
            return Err(schema(
                &format!("{item} is not of type 'object'"),
                "secret_refs",
            ));
        };
        let rf = Fields::new(r, Resource::Container);
        let name = rf.str("name")?.map(str::to_owned);
        let href = rf
            .str("secret_ref")?
            .ok_or_else(|| schema("'secret_ref' is a required property", "secret_ref"))?;
        let id_text = href
            .trim()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        let secret: SecretId = id_text.parse().map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "Secret provided for '{}' doesn't exist.",
                    name.as_deref().unwrap_or_default()
                ),
            )
        })?;
        new.secret_refs.push((name, secret));
    }
    Ok(new)
}

async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let new = new_container(&body)?;
    let ctx = caller.ctx;
    let id = state
        .run(move |s| s.store_container(&ctx, new))
        .await?
        .map_err(store_err)?;
    let href = state.href("containers", id);
    Ok(wire::created(
        StatusCode::CREATED,
        json!({ "container_ref": href }),
        &href,
    ))
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
    let container_type = match q.get("type").map(String::as_str) {
        None | Some("") => None,
        Some("generic") => Some(ContainerType::Generic),
        Some("rsa") => Some(ContainerType::Rsa),
        Some("certificate") => Some(ContainerType::Certificate),
        Some(_) => {
            return Err(ApiError::bad_request(
                "URI provided invalid query string parameters.",
            ));
        }
    };
    let query = ContainerQuery {
        limit,
        offset,
        name: q.get("name").filter(|n| !n.is_empty()).cloned(),
        container_type,
    };
    let ctx = caller.ctx;
    let page = state
        .run(move |s| s.list_containers_matching(&ctx, &query))
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

// ---- secret references of a generic container: `{name, secret_ref}` ----

/// Barbican's `ContainerSecretValidator`: `secret_ref` required, `name`
/// optional. A ref whose last segment is no secret id names no secret.
fn container_secret_from(body: &Body) -> ApiResult<(Option<String>, SecretId)> {
    let map = body.json_object()?;
    let f = Fields::new(&map, Resource::Container);
    let name = f.str("name")?.map(str::to_owned);
    let href = f
        .str("secret_ref")?
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ApiError::schema(
                Resource::Container,
                "'secret_ref' is a required property",
                Some("secret_ref"),
            )
        })?;
    let id = href
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "Secret provided doesn't exist."))?;
    Ok((name, id))
}

async fn add_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (name, secret) = container_secret_from(&body)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.add_container_secret(&ctx, &id, name.as_deref(), &secret))
        .await?
        .map_err(store_err)?;
    let href = state.href("containers", id);
    Ok(wire::created(
        StatusCode::CREATED,
        json!({ "container_ref": href }),
        &href,
    ))
}

async fn remove_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let (name, secret) = container_secret_from(&body)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.remove_container_secret(&ctx, &id, name.as_deref(), &secret))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- consumers: `{name, URL}` ----

fn consumer_from(body: &Body) -> ApiResult<ContainerConsumer> {
    let map = body.json_object()?;
    let f = Fields::new(&map, Resource::Consumer);
    let required = |k: &str| -> ApiResult<String> {
        f.str(k)?.map(str::to_owned).ok_or_else(|| {
            ApiError::schema(
                Resource::Consumer,
                &format!("'{k}' is a required property"),
                Some(k),
            )
        })
    };
    Ok(ContainerConsumer {
        name: required("name")?,
        url: required("URL")?,
    })
}

async fn add_consumer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let consumer = consumer_from(&body)?;
    let ctx = caller.ctx;
    let c = state
        .run(move |s| s.add_container_consumer(&ctx, &id, consumer))
        .await?
        .map_err(store_err)?;
    Ok(wire::with_location(
        axum::Json(container_json(&state, &c)).into_response(),
        &state.consumers_location(id),
    ))
}

async fn remove_consumer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let consumer = consumer_from(&body)?;
    let ctx = caller.ctx;
    let c = state
        .run(move |s| s.remove_container_consumer(&ctx, &id, consumer))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(container_json(&state, &c)).into_response())
}

async fn list_consumers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<wire::Query>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (limit, offset) = wire::paging(&q);
    let ctx = caller.ctx;
    let (c, page) = state
        .run(move |s| {
            let c = s.container(&ctx, &id)?;
            Ok::<_, crate::Error>((c, s.container_consumers(&ctx, &id, limit, offset)?))
        })
        .await?
        .map_err(store_err)?;
    // The store keeps no per-consumer timestamps: the container's stand in.
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|k| {
            json!({"created": wire::time(c.updated), "updated": wire::time(c.updated),
                   "status": "ACTIVE", "name": k.name, "URL": k.url})
        })
        .collect();
    let mut out = Map::new();
    out.insert("consumers".into(), Value::Array(items));
    wire::add_paging(
        &mut out,
        &state,
        &format!("containers/{id}/consumers"),
        &page,
    );
    Ok(axum::Json(Value::Object(out)).into_response())
}
