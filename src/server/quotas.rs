//! `/v1/quotas` (the caller's effective quotas) and `/v1/project-quotas`
//! (each project's own values, the service admin's), as Barbican 23 serves
//! them. The store owns the values, the defaults and the policy.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::{ProjectId, ProjectQuotas, QuotaResource, Quotas};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Body, Caller};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/quotas", get(effective))
        .route("/v1/quotas/", get(effective))
        .route("/v1/project-quotas", get(list))
        .route("/v1/project-quotas/", get(list))
        .route(
            "/v1/project-quotas/{project}",
            get(read).put(set).delete(delete),
        )
        .route(
            "/v1/project-quotas/{project}/",
            get(read).put(set).delete(delete),
        )
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::ProjectQuotas, &e)
}

/// A project id from the path; one the store cannot hold has no quotas.
fn project(text: &str) -> ApiResult<ProjectId> {
    ProjectId::new(text).map_err(|_| ApiError::not_found(Resource::ProjectQuotas))
}

fn effective_json(q: &Quotas) -> Value {
    let map: Map<String, Value> = QuotaResource::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(q.get(*r))))
        .collect();
    Value::Object(map)
}

/// A project's own values; `null` where it keeps the default.
fn own_json(q: &ProjectQuotas) -> Value {
    let map: Map<String, Value> = QuotaResource::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), json!(q.get(*r))))
        .collect();
    Value::Object(map)
}

/// `{"project_quotas": {resource: integer, …}}`, nothing else (Barbican's
/// `ProjectQuotaValidator`).
fn quotas_from(body: &Body) -> ApiResult<ProjectQuotas> {
    if body.bytes.is_empty() {
        return Err(ApiError::bad_request("No data supplied to process."));
    }
    let map = body.json_object()?;
    let schema = |m: String, p: &str| ApiError::schema(Resource::ProjectQuotas, &m, Some(p));
    if let Some(extra) = map.keys().find(|k| *k != "project_quotas") {
        return Err(schema(
            format!("Additional properties are not allowed ('{extra}' was unexpected)"),
            extra,
        ));
    }
    let values = match map.get("project_quotas") {
        Some(Value::Object(m)) => m,
        Some(v) => {
            return Err(schema(
                format!("{v} is not of type 'object'"),
                "project_quotas",
            ));
        }
        None => {
            return Err(schema(
                "'project_quotas' is a required property".into(),
                "project_quotas",
            ));
        }
    };
    let mut q = ProjectQuotas::default();
    for (key, v) in values {
        let slot = match key.as_str() {
            "secrets" => &mut q.secrets,
            "orders" => &mut q.orders,
            "containers" => &mut q.containers,
            "consumers" => &mut q.consumers,
            "cas" => &mut q.cas,
            other => {
                return Err(schema(
                    format!("Additional properties are not allowed ('{other}' was unexpected)"),
                    other,
                ));
            }
        };
        *slot = Some(
            v.as_i64()
                .ok_or_else(|| schema(format!("{v} is not of type 'integer'"), key))?,
        );
    }
    Ok(q)
}

async fn effective(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let ctx = caller.ctx;
    let q = state
        .run(move |s| s.quotas(&ctx))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(json!({ "quotas": effective_json(&q) })).into_response())
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<wire::Query>,
) -> ApiResult<Response> {
    let (limit, offset) = wire::paging(&q);
    let ctx = caller.ctx;
    let page = state
        .run(move |s| s.list_project_quotas(&ctx, limit, offset))
        .await?
        .map_err(store_err)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|(p, q)| json!({"project_id": p.as_str(), "project_quotas": own_json(q)}))
        .collect();
    let mut out = Map::new();
    out.insert("project_quotas".into(), Value::Array(items));
    wire::add_paging(&mut out, &state, "project_quotas", &page);
    Ok(axum::Json(Value::Object(out)).into_response())
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(p): Path<String>,
) -> ApiResult<Response> {
    let p = project(&p)?;
    let ctx = caller.ctx;
    let q = state
        .run(move |s| s.project_quotas(&ctx, &p))
        .await?
        .map_err(store_err)?;
    Ok(axum::Json(json!({ "project_quotas": own_json(&q) })).into_response())
}

async fn set(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(p): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    let p = ProjectId::new(p).map_err(|e| store_err(e.with_field("project_id")))?;
    let quotas = quotas_from(&body)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.set_project_quotas(&ctx, &p, quotas))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(p): Path<String>,
) -> ApiResult<StatusCode> {
    let p = project(&p)?;
    let ctx = caller.ctx;
    state
        .run(move |s| s.delete_project_quotas(&ctx, &p))
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}
