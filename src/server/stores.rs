//! `/v1/secret-stores`: the configured backends as Barbican's secret
//! stores, the global default, and the caller's project's preferred store
//! (the store's project -> backend mapping).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::model::BackendId;

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};
use super::wire::{self, Caller};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/secret-stores", get(list))
        .route("/v1/secret-stores/", get(list))
        .route("/v1/secret-stores/global-default", get(global_default))
        .route("/v1/secret-stores/preferred", get(preferred))
        .route("/v1/secret-stores/{id}", get(read))
        .route(
            "/v1/secret-stores/{id}/preferred",
            post(set_preferred).delete(clear_preferred),
        )
}

fn store_err(e: crate::Error) -> ApiError {
    ApiError::store(Resource::SecretStore, &e)
}

fn store_json(state: &AppState, id: &BackendId, global_default: bool) -> Value {
    // The store keeps no creation time for a configured backend.
    let epoch = wire::time(crate::model::Timestamp::from_unix(0));
    json!({
        "name": id.as_str(),
        "secret_store_plugin": "store_crypto",
        "crypto_plugin": id.as_str(),
        "global_default": global_default,
        "status": "ACTIVE",
        "created": epoch,
        "updated": epoch,
        "secret_store_ref": state.href("secret-stores", id),
    })
}

/// Barbican's answer while only one store is configured (its
/// `enable_multiple_secret_stores = False`).
fn single_store() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Not Found. Multiple backends support is not enabled in service configuration.",
    )
}

/// Every configured backend and the global default, after checking the
/// caller may read secret stores at all. With one backend there is
/// nothing to choose, and Barbican answers not-found.
async fn backends(state: &Arc<AppState>, caller: Caller) -> ApiResult<(Vec<BackendId>, BackendId)> {
    let ctx = caller.ctx;
    let (ids, default) = state
        .run(move |s| {
            let (ids, default) = s.operator().backend_ids();
            if ids.len() < 2 {
                return Ok(None);
            }
            s.project_backend(&ctx)?;
            Ok::<_, crate::Error>(Some((ids, default.clone())))
        })
        .await?
        .map_err(store_err)?
        .ok_or_else(single_store)?;
    Ok((ids, default))
}

async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let (ids, default) = backends(&state, caller).await?;
    let stores: Vec<Value> = ids
        .iter()
        .map(|id| store_json(&state, id, *id == default))
        .collect();
    Ok(axum::Json(json!({ "secret_stores": stores, "total": ids.len() })).into_response())
}

async fn global_default(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let (_, default) = backends(&state, caller).await?;
    Ok(axum::Json(store_json(&state, &default, true)).into_response())
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (ids, default) = backends(&state, caller).await?;
    let id = ids
        .into_iter()
        .find(|b| b.as_str() == id)
        .ok_or_else(|| ApiError::not_found(Resource::SecretStore))?;
    Ok(axum::Json(store_json(&state, &id, id == default)).into_response())
}

async fn preferred(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    if state.single_backend().await? {
        return Err(single_store());
    }
    let ctx = caller.ctx;
    let (backend, mapped, default) = state
        .run(move |s| {
            let (b, mapped) = s.project_backend(&ctx)?;
            Ok::<_, crate::Error>((b, mapped, s.operator().backend_ids().1.clone()))
        })
        .await?
        .map_err(store_err)?;
    if !mapped {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Not Found. No preferred secret store defined for this project.",
        ));
    }
    Ok(axum::Json(store_json(&state, &backend, backend == default)).into_response())
}

async fn set_preferred(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.single_backend().await? {
        return Err(single_store());
    }
    let id = BackendId::new(id).map_err(|_| ApiError::not_found(Resource::SecretStore))?;
    let ctx = caller.ctx;
    state
        .run(move |s| {
            if !s.operator().backend_ids().0.contains(&id) {
                return Err(crate::Error::new(
                    crate::ErrorKind::NotFound,
                    "no such store",
                ));
            }
            s.set_project_backend(&ctx, &id)
        })
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_preferred(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.single_backend().await? {
        return Err(single_store());
    }
    let ctx = caller.ctx;
    state
        .run(move |s| {
            match s.project_backend(&ctx)? {
                (b, true) if b.as_str() == id => {}
                _ => {
                    return Err(crate::Error::new(
                        crate::ErrorKind::NotFound,
                        "Not Found. Secret store is not the project's preferred store.",
                    ));
                }
            }
            s.clear_project_backend(&ctx)
        })
        .await?
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

impl AppState {
    async fn single_backend(&self) -> ApiResult<bool> {
        self.run(|s| s.operator().backend_ids().0.len() < 2).await
    }
}
