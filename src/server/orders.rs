//! `/v1/orders`: `key` and `asymmetric` orders, answered ACTIVE at once
//! (the store runs them synchronously); `certificate` refused as Barbican
//! 23's schema refuses it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::{Order, OrderId, OrderType};
use crate::secret::SecretBytes;
use crate::store::{KeyOrder, KeyPairOrder};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Body, Caller, Fields};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/orders", get(list).post(create))
        .route("/v1/orders/", get(list).post(create))
        .route("/v1/orders/{id}", get(read).delete(delete))
        .route("/v1/orders/{id}/", get(read).delete(delete))
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::Order, &e)
}

fn parse_id(text: &str) -> ApiResult<OrderId> {
    text.parse()
        .map_err(|_| ApiError::invalid_id(Resource::Order))
}

/// An order as Barbican 23 shows it.
fn order_json(state: &AppState, o: &Order) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(o.name));
    meta.insert("algorithm".into(), json!(o.algorithm));
    meta.insert("bit_length".into(), json!(o.bit_length));
    if o.order_type == OrderType::Key {
        meta.insert("mode".into(), json!(o.mode));
        meta.insert(
            "payload_content_type".into(),
            json!(o.payload_content_type.map(|c| c.as_str())),
        );
    }
    meta.insert("expiration".into(), json!(wire::opt_time(o.expiration)));
    let mut out = Map::new();
    out.insert("created".into(), json!(wire::time(o.created)));
    out.insert("updated".into(), json!(wire::time(o.updated)));
    out.insert("status".into(), json!(o.status.as_str()));
    out.insert("type".into(), json!(o.order_type.as_str()));
    out.insert("meta".into(), Value::Object(meta));
    out.insert("sub_status".into(), json!("Unknown"));
    out.insert("sub_status_message".into(), json!("Unknown"));
    out.insert("creator_id".into(), json!(o.creator_id.as_str()));
    if let Some(s) = o.secret_id {
        out.insert("secret_ref".into(), json!(state.href("secrets", s)));
    }
    if let Some(c) = o.container_id {
        out.insert("container_ref".into(), json!(state.href("containers", c)));
    }
    if let Some(code) = o.error_code {
        out.insert("error_status_code".into(), json!(code.to_string()));
    }
    if let Some(reason) = &o.error_reason {
        out.insert("error_reason".into(), json!(reason));
    }
    out.insert("order_ref".into(), json!(state.href("orders", o.id)));
    Value::Object(out)
}

enum NewOrder {
    Key(KeyOrder),
    KeyPair(KeyPairOrder),
}

fn new_order(map: &Map<String, Value>) -> ApiResult<NewOrder> {
    let f = Fields::new(map, Resource::Order);
    let order_type = f.str("type")?.ok_or_else(|| {
        ApiError::schema(
            Resource::Order,
            "'type' is a required property",
            Some("type"),
        )
    })?;
    if order_type != "key" && order_type != "asymmetric" {
        return Err(ApiError::schema(
            Resource::Order,
            &format!("'{order_type}' is not one of ['key', 'asymmetric']"),
            Some("type"),
        ));
    }
    let meta = match map.get("meta") {
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(ApiError::schema(
                Resource::Order,
                &format!("{v} is not of type 'object'"),
                Some("meta"),
            ));
        }
        None => {
            return Err(ApiError::schema(
                Resource::Order,
                "'meta' is a required property",
                Some("meta"),
            ));
        }
    };
    if meta.contains_key("payload") {
        return Err(ApiError::schema(
            Resource::Order,
            "'payload' not allowed for key type order",
            Some("payload"),
        ));
    }
    let m = Fields::new(meta, Resource::Order);
    let algorithm = m.str("algorithm")?.unwrap_or_default().to_owned();
    let bit_length = m.u32("bit_length")?.unwrap_or(0);
    let name = m.str("name")?.map(str::to_owned);
    let expiration = m.timestamp("expiration")?;
    if order_type == "key" {
        Ok(NewOrder::Key(KeyOrder {
            name,
            algorithm,
            bit_length,
            mode: m.str("mode")?.map(str::to_owned),
            // An empty string is "not given", as Barbican reads it.
            payload_content_type: m
                .str("payload_content_type")?
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            expiration,
        }))
    } else {
        Ok(NewOrder::KeyPair(KeyPairOrder {
            name,
            algorithm,
            bit_length,
            expiration,
            passphrase: m
                .str("passphrase")?
                .map(|p| SecretBytes::copy_from(p.as_bytes())),
        }))
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let map = body.json_object()?;
    let order = new_order(&map)?;
    let ctx = caller.ctx;
    let made = state
        .run(move |s| match &order {
            NewOrder::Key(k) => s.create_key(&ctx, k),
            NewOrder::KeyPair(k) => s.create_key_pair(&ctx, k),
        })
        .await?
        .map_err(store_err)?;
    let href = state.href("orders", made.id);
    Ok(wire::created(
        StatusCode::ACCEPTED,
        json!({ "order_ref": href }),
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
    let order = state
        .run(move |s| s.order(&ctx, &id))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(order_json(&state, &order)).into_response())
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_order(&ctx, &id))
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
        .run(move |s| s.list_orders(&ctx, limit, offset))
        .await?
        .map_err(store_err)?;
    let mut out = Map::new();
    out.insert(
        "orders".into(),
        Value::Array(page.items.iter().map(|o| order_json(&state, o)).collect()),
    );
    wire::add_paging(&mut out, &state, "orders", &page);
    Ok(axum::Json(Value::Object(out)).into_response())
}
