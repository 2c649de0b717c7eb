//! The fixed-key migration's writes (`crate::migration`): many secrets
//! holding one key, under ids the migration derived, in one call. Not part
//! of the request API.

use crate::backend::Scope;
use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ContentType, SecretId, SecretMeta, SecretType, Status, Timestamp, UserId};
use crate::secret::SecretBytes;

use super::audit::{Actor, record};
use super::{SecretStore, scope};

/// For the fixed-key migration: one secret per item holding `key`
/// (symmetric, `algorithm`, owned by the caller's project), each with a
/// read ACL for its item's user, under ids the caller derived. An id
/// that already holds this very key counts as done, so an interrupted
/// migration can run again. The policy (`secrets:post`) is checked once;
/// a refusal fails the whole call.
pub(crate) fn store_keys(
    store: &SecretStore,
    ctx: &Context,
    wanted: &[(SecretId, Option<UserId>)],
    key: &SecretBytes,
    algorithm: &str,
) -> Result<Vec<Result<()>>> {
    let checked = store.authorize("secrets:post", ctx, &store.project_target(ctx));
    if let Err(e) = checked {
        for (id, _) in wanted {
            record(
                Actor::Request(ctx),
                "secret:store",
                id,
                &Err::<(), _>(Error::new(e.kind(), e.context().to_owned())),
            );
        }
        return Err(e);
    }
    let backend = store.backend_for_project(&ctx.project_id)?;
    if backend.serves_fixed_id() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "cannot migrate fixed keys to the fixed-key backend; map the project to a real backend",
        ));
    }
    let now = Timestamp::now();
    let bits = u32::try_from(key.len() * 8).unwrap_or(u32::MAX);
    let metas: Vec<SecretMeta> = wanted
        .iter()
        .map(|(id, _)| SecretMeta {
            id: *id,
            name: None,
            algorithm: Some(algorithm.to_owned()),
            bit_length: Some(bits),
            mode: None,
            secret_type: SecretType::Symmetric,
            expiration: None,
            created: now,
            updated: now,
            status: Status::Active,
            content_type: Some(ContentType::OctetStream),
            creator_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            backend_id: backend.id().clone(),
        })
        .collect();
    let scopes: Vec<Scope<'_>> = metas.iter().map(scope).collect();
    let stored = backend.store_each(&scopes, key)?;
    let mut batches = Vec::with_capacity(wanted.len());
    for ((meta, stored), (id, user)) in metas.into_iter().zip(stored).zip(wanted) {
        let mut batch = vec![Write::InsertSecret {
            meta,
            stored: Some(stored),
        }];
        if let Some(user) = user {
            batch.push(Write::GrantRead {
                id: *id,
                user: user.clone(),
            });
        }
        batches.push(batch);
    }
    let outcomes = store.catalog.apply_each(batches);
    let mut out = Vec::with_capacity(outcomes.len());
    for ((id, _), outcome) in wanted.iter().zip(outcomes) {
        let outcome = match outcome {
            Err(e) if e.kind() == ErrorKind::Conflict => already_migrated(store, ctx, id, key),
            other => other,
        };
        record(Actor::Request(ctx), "secret:store", id, &outcome);
        out.push(outcome);
    }
    Ok(out)
}

/// A migration id that exists: fine only if it is ours and holds `key`.
fn already_migrated(
    store: &SecretStore,
    ctx: &Context,
    id: &SecretId,
    key: &SecretBytes,
) -> Result<()> {
    let clash = || {
        Error::new(
            ErrorKind::Conflict,
            format!("secret {id} exists but does not hold this item's fixed key"),
        )
    };
    let row = store
        .catalog
        .secret(id, &ctx.user_id, true)?
        .filter(|r| r.meta.project_id == ctx.project_id)
        .ok_or_else(clash)?;
    let stored = row.stored.as_ref().ok_or_else(clash)?;
    let held = store
        .backend(&row.meta.backend_id)?
        .retrieve(scope(&row.meta), stored)?;
    if held.ct_eq(key.expose_secret()) {
        Ok(())
    } else {
        Err(clash())
    }
}
