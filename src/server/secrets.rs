//! `/v1/secrets`: create, read (metadata or payload, by `Accept`), add the
//! payload, delete, list; and the secret's consumers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::{Consumer, SecretId, SecretMeta, SecretType};
use crate::payload;
use crate::secret::SecretBytes;
use crate::store::{ListQuery, NewSecret};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Body, Caller, Fields};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/secrets", get(list).post(create))
        .route("/v1/secrets/", get(list).post(create))
        .route(
            "/v1/secrets/{id}",
            get(read).put(put_payload).delete(delete),
        )
        .route("/v1/secrets/{id}/payload", get(read_payload))
        .route("/v1/secrets/{id}/payload/", get(read_payload))
        .route(
            "/v1/secrets/{id}/consumers",
            get(list_consumers)
                .post(add_consumer)
                .delete(remove_consumer),
        )
        .route(
            "/v1/secrets/{id}/consumers/",
            get(list_consumers)
                .post(add_consumer)
                .delete(remove_consumer),
        )
}

/// A secret as Barbican 23 shows it (`consumers` from 1.1 on;
/// `content_types` only once it has a payload).
#[derive(Serialize)]
pub struct SecretBody {
    created: String,
    updated: String,
    status: &'static str,
    name: Option<String>,
    secret_type: &'static str,
    expiration: Option<String>,
    algorithm: Option<String>,
    bit_length: Option<u32>,
    mode: Option<String>,
    creator_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumers: Option<Vec<ConsumerRef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_types: Option<ContentTypes>,
    secret_ref: String,
}

#[derive(Serialize)]
struct ContentTypes {
    default: &'static str,
}

#[derive(Serialize)]
struct ConsumerRef {
    service: String,
    resource_type: String,
    resource_id: String,
}

impl SecretBody {
    fn new(state: &AppState, meta: &SecretMeta, consumers: Option<&[Consumer]>) -> Self {
        SecretBody {
            created: wire::time(meta.created),
            updated: wire::time(meta.updated),
            status: meta.status.as_str(),
            name: meta.name.clone(),
            secret_type: meta.secret_type.as_str(),
            expiration: wire::opt_time(meta.expiration),
            algorithm: meta.algorithm.clone(),
            bit_length: meta.bit_length,
            mode: meta.mode.clone(),
            creator_id: meta.creator_id.as_str().to_owned(),
            consumers: consumers.map(|cs| {
                cs.iter()
                    .map(|c| ConsumerRef {
                        service: c.service.clone(),
                        resource_type: c.resource_type.clone(),
                        resource_id: c.resource_id.clone(),
                    })
                    .collect()
            }),
            content_types: meta.content_type.map(|c| ContentTypes {
                default: c.as_str(),
            }),
            secret_ref: state.href("secrets", meta.id),
        }
    }
}

fn parse_id(text: &str) -> ApiResult<SecretId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Secret))
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Secret, &e)
}

async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let map = body.json_object()?;
    let new = new_secret(&map)?;
    let ctx = caller.ctx;
    let id = state
        .run(move |s| s.store_secret(&ctx, new))
        .await?
        .map_err(store_err)?;
    let href = state.href("secrets", id);
    Ok(wire::created(
        StatusCode::CREATED,
        json!({ "secret_ref": href }),
        &href,
    ))
}

fn new_secret(map: &Map<String, Value>) -> ApiResult<NewSecret> {
    let f = Fields::new(map, Resource::Secret);
    let mut new = NewSecret::new();
    new.name = f.str("name")?.map(str::to_owned);
    new.algorithm = f.str("algorithm")?.map(str::to_owned);
    new.mode = f.str("mode")?.map(str::to_owned);
    new.bit_length = f.u32("bit_length")?;
    new.expiration = f.timestamp("expiration")?;
    if let Some(t) = f.str("secret_type")? {
        new.secret_type = t
            .parse::<SecretType>()
            .map_err(|e| ApiError::store(Resource::Secret, &e))?;
    }
    let content_type = f.str("payload_content_type")?;
    let encoding = f.str("payload_content_encoding")?;
    new = match (f.str("payload")?, content_type) {
        (Some(p), ct) => new.payload_text(p, ct, encoding),
        (None, Some(ct)) => new.payload_content_type_only(ct),
        (None, None) => new,
    };
    Ok(new)
}

/// What a `GET /v1/secrets/{id}` or `/payload` with this `Accept` returns.
enum Wants {
    Metadata,
    /// The payload, answered with this `Content-Type`.
    Payload(String),
}

/// The `Accept` values Barbican serves a payload for.
const PAYLOAD_ACCEPTS: [&str; 5] = [
    "text/plain",
    "text/plain;charset=utf-8",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "application/pkcs8",
];

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Barbican's payload negotiation: the exact types it knows (as sent),
/// `*/*`, and octet-stream when no `Accept` is sent; a known type in other
/// letter case is a 400, anything else 406.
fn payload_wants(accept: Option<&str>, prefix: &str) -> ApiResult<String> {
    let Some(a) = accept else {
        return Ok("application/octet-stream".into());
    };
    if a == "text/plain" {
        return Ok("text/plain; charset=UTF-8".into());
    }
    if a == "*/*" || PAYLOAD_ACCEPTS.contains(&a) {
        return Ok(a.to_owned());
    }
    if PAYLOAD_ACCEPTS.contains(&a.to_ascii_lowercase().as_str()) {
        return Err(ApiError::bad_request(format!(
            "{prefix} - content-type of '{a}' not supported."
        )));
    }
    Err(ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        format!("{prefix} - Wrong payload content-type."),
    ))
}

fn metadata_wants(accept: Option<&str>) -> ApiResult<Wants> {
    match accept {
        None | Some("application/json") | Some("*/*") => Ok(Wants::Metadata),
        Some(a) if PAYLOAD_ACCEPTS.contains(&a) => Ok(Wants::Payload(payload_wants(
            Some(a),
            "Secret retrieval issue seen",
        )?)),
        Some(_) => Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Secret retrieval issue seen - Wrong payload content-type.",
        )),
    }
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    match metadata_wants(accept(&headers))? {
        Wants::Payload(ct) => payload_response(&state, caller, id, ct).await,
        Wants::Metadata => {
            let body = secret_body(&state, caller, id).await?;
            Ok(axum::Json(body).into_response())
        }
    }
}

/// The secret's body, with its consumers when the version shows them.
async fn secret_body(state: &Arc<AppState>, caller: Caller, id: SecretId) -> ApiResult<SecretBody> {
    let ctx = caller.ctx;
    let with_consumers = caller.version.shows_consumers();
    let (meta, consumers) = state
        .run(move |s| {
            let meta = s.secret(&ctx, &id)?;
            // Whoever may read the secret sees its consumers in the body,
            // as in Barbican, whatever `secret_consumers:get` says.
            let consumers = with_consumers.then(|| s.consumers(&ctx, &id).unwrap_or_default());
            Ok::<_, crate::Error>((meta, consumers))
        })
        .await?
        .map_err(store_err)?;
    Ok(SecretBody::new(state, &meta, consumers.as_deref()))
}

async fn read_payload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let ct = payload_wants(accept(&headers), "Secret payload retrieval issue seen")?;
    payload_response(&state, caller, id, ct).await
}

async fn payload_response(
    state: &Arc<AppState>,
    caller: Caller,
    id: SecretId,
    content_type: String,
) -> ApiResult<Response> {
    let ctx = caller.ctx;
    let payload = state
        .run(move |s| s.payload(&ctx, &id))
        .await?
        .map_err(store_err)?;
    // Barbican refuses text/plain for bytes that are not UTF-8.
    if content_type.starts_with("text/plain")
        && std::str::from_utf8(payload.bytes.expose_secret()).is_err()
    {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Secret payload retrieval issue seen - Wrong payload content-type.",
        ));
    }
    // The response body is handed to hyper as bytes it owns; the
    // zeroizing copy is wiped when `payload` drops here.
    let bytes = Bytes::copy_from_slice(payload.bytes.expose_secret());
    let mut resp = (StatusCode::OK, bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(resp)
}

async fn put_payload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let content_type = body.content_type.clone().unwrap_or_default();
    if payload::parse_content_type(&content_type).is_err() {
        return Err(ApiError::unsupported_media(&[
            "application/octet-stream",
            "text/plain",
        ]));
    }
    let encoding = body.content_encoding.clone();
    let bytes = SecretBytes::copy_from(&body.bytes);
    let ctx = caller.ctx;
    state
        .run(move |s| s.put_payload(&ctx, &id, bytes, &content_type, encoding.as_deref()))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<wire::Query>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    // oslo's bool_from_string: the client sends `force=1`.
    let force = q.get("force").is_some_and(|v| {
        ["1", "t", "true", "on", "y", "yes"]
            .iter()
            .any(|t| v.trim().eq_ignore_ascii_case(t))
    });
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_secret(&ctx, &id, force))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<wire::Query>,
) -> ApiResult<Response> {
    let query = list_query(&q)?;
    let ctx = caller.ctx;
    let with_consumers = caller.version.shows_consumers();
    let (page, consumers) = state
        .run(move |s| {
            let page = s.list_secrets(&ctx, &query)?;
            let consumers: Vec<Option<Vec<Consumer>>> = page
                .items
                .iter()
                .map(|m| with_consumers.then(|| s.consumers(&ctx, &m.id).unwrap_or_default()))
                .collect();
            Ok::<_, crate::Error>((page, consumers))
        })
        .await?
        .map_err(store_err)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .zip(&consumers)
        .map(|(m, c)| serde_json::to_value(SecretBody::new(&state, m, c.as_deref())))
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::internal())?;
    let mut out = Map::new();
    out.insert("secrets".into(), Value::Array(items));
    wire::add_paging(&mut out, &state, "secrets", &page);
    Ok(axum::Json(Value::Object(out)).into_response())
}

fn list_query(q: &wire::Query) -> ApiResult<ListQuery> {
    let (limit, offset) = wire::paging(q);
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let bit_length =
        match q.get("bits").map(|b| b.trim()) {
            None | Some("") => None,
            Some(b) => Some(b.parse::<u32>().map_err(|_| {
                ApiError::bad_request("URI provided invalid query string parameters.")
            })?),
        };
    let secret_type =
        match q.get("secret_type").filter(|v| !v.is_empty()) {
            None => None,
            Some(t) => Some(t.parse::<SecretType>().map_err(|_| {
                ApiError::bad_request("URI provided invalid query string parameters.")
            })?),
        };
    Ok(ListQuery {
        name: text("name"),
        algorithm: text("alg"),
        mode: text("mode"),
        bit_length: bit_length.filter(|b| *b != 0),
        secret_type,
        created: text("created"),
        updated: text("updated"),
        expiration: text("expiration"),
        sort: text("sort"),
        limit,
        offset,
        acl_only: q
            .get("acl_only")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

// ---- consumers ----

fn consumer_from(body: &Body) -> ApiResult<Consumer> {
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
    Ok(Consumer {
        service: required("service")?,
        resource_type: required("resource_type")?,
        resource_id: required("resource_id")?,
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
    let ctx = caller.ctx.clone();
    state
        .run(move |s| s.add_consumer(&ctx, &id, consumer))
        .await?
        .map_err(|e| ApiError::store(Resource::Consumer, &e))?;
    let body = secret_body(&state, force_consumers(caller), id).await?;
    Ok(wire::with_location(
        axum::Json(body).into_response(),
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
    let ctx = caller.ctx.clone();
    state
        .run(move |s| s.remove_consumer(&ctx, &id, consumer))
        .await?
        .map_err(|e| ApiError::store(Resource::Consumer, &e))?;
    let body = secret_body(&state, force_consumers(caller), id).await?;
    Ok(axum::Json(body).into_response())
}

/// Consumer answers always carry the consumers, whatever the version.
fn force_consumers(mut caller: Caller) -> Caller {
    caller.version.minor = caller.version.minor.max(1);
    caller
}

async fn list_consumers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<wire::Query>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (limit, offset) = wire::paging(&q);
    let paging = ListQuery {
        limit,
        offset,
        ..ListQuery::default()
    };
    let ctx = caller.ctx;
    let (meta, all) = state
        .run(move |s| Ok::<_, crate::Error>((s.secret(&ctx, &id)?, s.consumers(&ctx, &id)?)))
        .await?
        .map_err(|e| ApiError::store(Resource::Consumer, &e))?;
    let (limit, offset) = (paging.effective_limit(), paging.effective_offset());
    // The store keeps no per-consumer timestamps: the secret's stand in.
    let items: Vec<Value> = all
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .map(|c| {
            json!({
                "created": wire::time(meta.updated),
                "updated": wire::time(meta.updated),
                "status": "ACTIVE",
                "service": c.service,
                "resource_type": c.resource_type,
                "resource_id": c.resource_id,
            })
        })
        .collect();
    let page = crate::model::Page {
        items: Vec::<()>::new(),
        total: all.len() as u64,
        limit,
        offset,
    };
    let mut out = Map::new();
    out.insert("consumers".into(), Value::Array(items));
    wire::add_paging(&mut out, &state, &format!("secrets/{id}/consumers"), &page);
    Ok(axum::Json(Value::Object(out)).into_response())
}
