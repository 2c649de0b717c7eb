//! `SecretStore`: what callers hold. It checks the request against the
//! policy, validates input, picks the backend for the project, and keeps
//! orders, containers, consumers and ACLs in the catalog.
//!
//! Every operation emits one audit event on the `keywarden::audit` tracing
//! target: who, which project, what action, which object, and the outcome.
//! Never a payload or key byte.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::backend::{FIXED_KEY_ID, KekReport, KeyManager, Scope};
use crate::catalog::{self, Catalog, Counts, SecretRow, Write};
use crate::config::{Config, DEFAULT_MAX_PAYLOAD_BYTES};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Acl, BackendId, Consumer, ContentType, ManagedObject, Page, Payload, ProjectId, SecretId,
    SecretMeta, SecretType, Status, Timestamp, UserId,
};
use crate::payload::{self, PayloadRules};
use crate::policy::{Entity, Policy, Target};
use crate::secret::SecretBytes;

mod list;
mod orders;

pub use list::{DEFAULT_LIMIT, ListQuery, MAX_LIMIT};
pub use orders::{KeyOrder, KeyPairOrder};

/// The tracing target audit events are emitted on.
pub const AUDIT_TARGET: &str = "keywarden::audit";

/// A new secret: metadata and, optionally, its payload (Barbican's POST).
#[derive(Clone, Default)]
pub struct NewSecret {
    pub name: Option<String>,
    pub secret_type: SecretType,
    pub algorithm: Option<String>,
    pub bit_length: Option<u32>,
    pub mode: Option<String>,
    pub expiration: Option<Timestamp>,
    payload: Option<PayloadInput>,
    payload_content_type: Option<String>,
}

#[derive(Clone)]
enum PayloadInput {
    /// As it arrives in Barbican's JSON: text, maybe base64.
    Text {
        text: Zeroizing<String>,
        encoding: Option<String>,
    },
    /// Already bytes (the library path).
    Bytes(SecretBytes),
}

impl NewSecret {
    pub fn new() -> Self {
        NewSecret::default()
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn secret_type(mut self, t: SecretType) -> Self {
        self.secret_type = t;
        self
    }

    pub fn algorithm(mut self, a: impl Into<String>) -> Self {
        self.algorithm = Some(a.into());
        self
    }

    pub fn bit_length(mut self, b: u32) -> Self {
        self.bit_length = Some(b);
        self
    }

    pub fn mode(mut self, m: impl Into<String>) -> Self {
        self.mode = Some(m.into());
        self
    }

    pub fn expiration(mut self, t: Timestamp) -> Self {
        self.expiration = Some(t);
        self
    }

    /// A payload as Barbican's API takes it: text with a content type and an
    /// optional `base64` encoding.
    pub fn payload_text(
        mut self,
        text: impl Into<String>,
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) -> Self {
        self.payload = Some(PayloadInput::Text {
            text: Zeroizing::new(text.into()),
            encoding: encoding.map(str::to_owned),
        });
        self.payload_content_type = content_type.map(str::to_owned);
        self
    }

    /// Raw payload bytes with their content type.
    pub fn payload_bytes(mut self, bytes: SecretBytes, content_type: ContentType) -> Self {
        self.payload = Some(PayloadInput::Bytes(bytes));
        self.payload_content_type = Some(content_type.as_str().to_owned());
        self
    }

    /// A content type with no payload: refused, as Barbican refuses it.
    pub fn payload_content_type_only(mut self, content_type: &str) -> Self {
        self.payload = None;
        self.payload_content_type = Some(content_type.to_owned());
        self
    }
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("name", &self.name)
            .field("secret_type", &self.secret_type)
            .field("algorithm", &self.algorithm)
            .field("bit_length", &self.bit_length)
            .field("mode", &self.mode)
            .field("expiration", &self.expiration)
            .field("payload", &self.payload.as_ref().map(|_| "[REDACTED]"))
            .field("payload_content_type", &self.payload_content_type)
            .finish()
    }
}

/// What `check` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreReport {
    pub counts: Counts,
    pub backends: BTreeMap<BackendId, KekReport>,
}

/// The facade. Cheap to share: wrap it in an `Arc` or clone the pieces.
pub struct SecretStore {
    catalog: Arc<dyn Catalog>,
    backends: BTreeMap<BackendId, Arc<dyn KeyManager>>,
    default_backend: BackendId,
    /// The legacy fixed-key backend, when configured: it serves the
    /// all-zeros id beside whatever the other backends hold.
    fixed: Option<Arc<dyn KeyManager>>,
    policy: Policy,
    payload_rules: PayloadRules,
    endpoint: String,
}

/// Builds a [`SecretStore`] from explicit parts.
pub struct StoreBuilder {
    catalog: Arc<dyn Catalog>,
    backends: BTreeMap<BackendId, Arc<dyn KeyManager>>,
    default_backend: Option<BackendId>,
    policy: Option<Policy>,
    max_payload_bytes: usize,
    endpoint: String,
}

impl StoreBuilder {
    /// Adds a backend under its own id.
    pub fn backend(mut self, backend: Arc<dyn KeyManager>) -> Self {
        self.backends.insert(backend.id().clone(), backend);
        self
    }

    /// The global default backend for new secrets.
    pub fn default_backend(mut self, id: BackendId) -> Self {
        self.default_backend = Some(id);
        self
    }

    /// The policy (Barbican's Queens defaults unless set).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Checks the configuration against the catalog (each backend's keys open
    /// what is stored; every mapped project names a configured backend) and
    /// returns the store.
    pub fn build(self) -> Result<SecretStore> {
        let default_backend = match self.default_backend {
            Some(d) => d,
            None if self.backends.len() == 1 => self
                .backends
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| Error::new(ErrorKind::Config, "no backend configured"))?,
            None => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "several backends are configured; name the default",
                ));
            }
        };
        if !self.backends.contains_key(&default_backend) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("default backend {default_backend} is not configured"),
            ));
        }
        for backend in self.backends.values() {
            backend.verify()?;
        }
        for (project, backend) in self.catalog.project_backends()? {
            if !self.backends.contains_key(&backend) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "project {project} is mapped to backend {backend}, which is not configured"
                    ),
                ));
            }
        }
        let mut fixed = self.backends.values().filter(|b| b.serves_fixed_id());
        let fixed_backend = fixed.next().cloned();
        if fixed.next().is_some() {
            return Err(Error::new(
                ErrorKind::Config,
                "only one danger_fixed_key backend may be configured",
            ));
        }
        Ok(SecretStore {
            catalog: self.catalog,
            backends: self.backends,
            default_backend,
            fixed: fixed_backend,
            policy: self.policy.unwrap_or_else(Policy::barbican_queens),
            payload_rules: PayloadRules {
                max_bytes: self.max_payload_bytes,
            },
            endpoint: self.endpoint.trim_end_matches('/').to_owned(),
        })
    }
}

impl SecretStore {
    /// Starts a builder over `catalog`.
    pub fn builder(catalog: Arc<dyn Catalog>) -> StoreBuilder {
        StoreBuilder {
            catalog,
            backends: BTreeMap::new(),
            default_backend: None,
            policy: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            endpoint: crate::config::DEFAULT_ENDPOINT.to_owned(),
        }
    }

    /// Opens the store a [`Config`] describes.
    pub fn open(config: &Config) -> Result<Self> {
        let catalog = catalog::open(&config.catalog_location()?)?;
        let mut builder = SecretStore::builder(catalog.clone())
            .default_backend(config.default_backend.clone())
            .max_payload_bytes(config.max_payload_bytes)
            .endpoint(config.endpoint.clone());
        for (id, backend) in &config.backends {
            let km = backend.build(id, catalog.clone())?;
            builder = builder.backend(km);
        }
        let mut policy = Policy::barbican_queens();
        if let Some(path) = config.policy_path() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot read policy file {}", path.display()),
                )
                .with_source(e)
            })?;
            policy.apply_overrides(&text)?;
        }
        builder.policy(policy).build()
    }

    /// `<endpoint>/v1/secrets/<id>`.
    pub fn secret_href(&self, id: &SecretId) -> String {
        format!("{}/v1/secrets/{id}", self.endpoint)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Stores a secret, with or without its payload (`secrets:post`).
    pub fn store_secret(&self, ctx: &Context, new: NewSecret) -> Result<SecretId> {
        let id = SecretId::new_random();
        let out = self.store_secret_inner(ctx, id, new);
        audit(ctx, "secret:store", out.as_ref().unwrap_or(&id), &out);
        out
    }

    fn store_secret_inner(&self, ctx: &Context, id: SecretId, new: NewSecret) -> Result<SecretId> {
        self.authorize("secrets:post", ctx, &self.project_target(ctx))?;
        let now = Timestamp::now();
        validate_meta(&new, now)?;
        let payload = match (&new.payload, &new.payload_content_type) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "payload",
                    "payload must be provided when payload_content_type is specified",
                ));
            }
            (Some(PayloadInput::Text { text, encoding }), ct) => Some(payload::decode(
                text,
                ct.as_deref(),
                encoding.as_deref(),
                &self.payload_rules,
            )?),
            (Some(PayloadInput::Bytes(bytes)), ct) => Some(payload::decode_bytes(
                bytes.expose_secret().to_vec(),
                ct.as_deref(),
                None,
                &self.payload_rules,
            )?),
        };
        let backend = self.backend_for_project(&ctx.project_id)?;
        let meta = SecretMeta {
            id,
            name: new.name.map(|n| n.trim().to_owned()),
            algorithm: new.algorithm,
            bit_length: new.bit_length,
            mode: new.mode,
            secret_type: new.secret_type,
            expiration: new.expiration,
            created: now,
            updated: now,
            status: Status::Active,
            content_type: payload.as_ref().map(|p| p.content_type),
            creator_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            backend_id: backend.id().clone(),
        };
        if backend.serves_fixed_id() {
            // ConfKeyManager: it "stores" only its own key, under its own id.
            let Some(p) = &payload else {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the fixed-key backend cannot keep secrets without a payload",
                ));
            };
            backend.store(scope(&meta), &p.bytes)?;
            return Ok(FIXED_KEY_ID);
        }
        let stored = match &payload {
            Some(p) => Some(backend.store(scope(&meta), &p.bytes)?),
            None => None,
        };
        self.catalog
            .apply(vec![Write::InsertSecret { meta, stored }])?;
        Ok(id)
    }

    /// For the fixed-key migration: one secret per item holding `key`
    /// (symmetric, `algorithm`, owned by the caller's project), each with a
    /// read ACL for its item's user, under ids the caller derived. An id
    /// that already holds this very key counts as done, so an interrupted
    /// migration can run again. The policy (`secrets:post`) is checked once;
    /// a refusal fails the whole call.
    pub(crate) fn store_migrated_keys(
        &self,
        ctx: &Context,
        wanted: &[(SecretId, Option<UserId>)],
        key: &SecretBytes,
        algorithm: &str,
    ) -> Result<Vec<Result<()>>> {
        let checked = self.authorize("secrets:post", ctx, &self.project_target(ctx));
        if let Err(e) = checked {
            for (id, _) in wanted {
                audit(
                    ctx,
                    "secret:store",
                    id,
                    &Err::<(), _>(Error::new(e.kind(), e.context().to_owned())),
                );
            }
            return Err(e);
        }
        let backend = self.backend_for_project(&ctx.project_id)?;
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
        let outcomes = self.catalog.apply_each(batches);
        let mut out = Vec::with_capacity(outcomes.len());
        for ((id, _), outcome) in wanted.iter().zip(outcomes) {
            let outcome = match outcome {
                Err(e) if e.kind() == ErrorKind::Conflict => self.already_migrated(ctx, id, key),
                other => other,
            };
            audit(ctx, "secret:store", id, &outcome);
            out.push(outcome);
        }
        Ok(out)
    }

    /// A migration id that exists: fine only if it is ours and holds `key`.
    fn already_migrated(&self, ctx: &Context, id: &SecretId, key: &SecretBytes) -> Result<()> {
        let clash = || {
            Error::new(
                ErrorKind::Conflict,
                format!("secret {id} exists but does not hold this item's fixed key"),
            )
        };
        let row = self
            .catalog
            .secret(id, &ctx.user_id, true)?
            .filter(|r| r.meta.project_id == ctx.project_id)
            .ok_or_else(clash)?;
        let stored = row.stored.as_ref().ok_or_else(clash)?;
        let held = self
            .backend(&row.meta.backend_id)?
            .retrieve(scope(&row.meta), stored)?;
        if held.ct_eq(key.expose_secret()) {
            Ok(())
        } else {
            Err(clash())
        }
    }

    /// Adds the payload to a secret created without one (`secret:put`).
    /// Payloads are write-once: a second call is `Conflict`.
    pub fn put_payload(
        &self,
        ctx: &Context,
        id: &SecretId,
        body: SecretBytes,
        content_type: &str,
        encoding: Option<&str>,
    ) -> Result<()> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret:put", ctx, &secret_target(ctx, &row))?;
            if row.meta.has_payload() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "Secret already has data, cannot modify it.",
                ));
            }
            let payload = payload::decode_bytes(
                body.expose_secret().to_vec(),
                Some(content_type),
                encoding,
                &self.payload_rules,
            )?;
            let backend = self.backend(&row.meta.backend_id)?;
            let stored = backend.store(scope(&row.meta), &payload.bytes)?;
            self.catalog.apply(vec![Write::SetPayload {
                id: *id,
                content_type: payload.content_type,
                stored,
                updated: Timestamp::now(),
            }])
        })();
        audit(ctx, "secret:put", id, &out);
        out
    }

    /// A secret's metadata (`secret:get`).
    pub fn secret(&self, ctx: &Context, id: &SecretId) -> Result<SecretMeta> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret:get", ctx, &secret_target(ctx, &row))?;
            Ok(row.meta)
        })();
        audit(ctx, "secret:get", id, &out);
        out
    }

    /// A secret's payload with its content type (`secret:decrypt`).
    pub fn payload(&self, ctx: &Context, id: &SecretId) -> Result<Payload> {
        let out = self.payload_inner(ctx, id).map(|(_, p)| p);
        audit(ctx, "secret:decrypt", id, &out);
        out
    }

    fn payload_inner(&self, ctx: &Context, id: &SecretId) -> Result<(SecretMeta, Payload)> {
        let row = self.visible_secret(ctx, id, true)?;
        self.authorize("secret:decrypt", ctx, &secret_target(ctx, &row))?;
        let (Some(content_type), Some(stored)) = (row.meta.content_type, row.stored.as_ref())
        else {
            return Err(Error::new(
                ErrorKind::NotFound,
                "Not Found. Sorry but your secret has no payload.",
            ));
        };
        let bytes = self
            .backend(&row.meta.backend_id)?
            .retrieve(scope(&row.meta), stored)?;
        Ok((
            row.meta,
            Payload {
                content_type,
                bytes,
            },
        ))
    }

    /// Lists the caller's project's secrets (`secrets:get`).
    pub fn list_secrets(&self, ctx: &Context, query: &ListQuery) -> Result<Page<SecretMeta>> {
        let out = (|| {
            self.authorize("secrets:get", ctx, &self.project_target(ctx))?;
            let mut filter = query.to_filter()?;
            if query.acl_only {
                filter.acl_user = Some(ctx.user_id.clone());
            }
            self.catalog.list_secrets(
                &ctx.project_id,
                &filter,
                query.effective_limit(),
                query.effective_offset(),
                Timestamp::now(),
            )
        })();
        audit(ctx, "secrets:list", &ctx.project_id, &out);
        out
    }

    /// Deletes a secret (`secret:delete`). Refused while consumers are
    /// registered unless `force`. The ciphertext leaves the catalog.
    pub fn delete_secret(&self, ctx: &Context, id: &SecretId, force: bool) -> Result<()> {
        let out = (|| {
            if *id == FIXED_KEY_ID && self.fixed.is_some() {
                // castellan's MigrationKeyManager: the legacy key is never deleted.
                tracing::debug!("Not deleting key associated with fixed_key key ID");
                return Ok(());
            }
            // Expired secrets are gone for every reader, but their owner can
            // still delete them (and their ciphertext).
            let row = self.find_secret(ctx, id, true, true)?;
            self.authorize("secret:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::DeleteSecret { id: *id, force }])?;
            if let Some(stored) = &row.stored {
                // The row is gone; a backend that keeps material elsewhere
                // destroys it now. Failing here leaves an orphan on the
                // device, never a row without its material.
                if let Err(e) = self
                    .backend(&row.meta.backend_id)
                    .and_then(|b| b.delete(scope(&row.meta), stored))
                {
                    tracing::warn!(secret = %id, error = %e, "backend could not destroy deleted secret's material");
                }
            }
            Ok(())
        })();
        audit(ctx, "secret:delete", id, &out);
        out
    }

    /// Stores a castellan managed object; returns its id.
    pub fn store_object(
        &self,
        ctx: &Context,
        object: &ManagedObject,
        name: Option<&str>,
        expiration: Option<Timestamp>,
    ) -> Result<SecretId> {
        let mut new = NewSecret::new()
            .secret_type(object.secret_type())
            .payload_bytes(object.material().clone(), ContentType::OctetStream);
        new.name = name.map(str::to_owned);
        new.expiration = expiration;
        new.algorithm = object.algorithm().map(str::to_owned);
        new.bit_length = object.bit_length();
        self.store_secret(ctx, new)
    }

    /// Fetches a castellan managed object (metadata and payload).
    pub fn get_object(&self, ctx: &Context, id: &SecretId) -> Result<ManagedObject> {
        let out = self.payload_inner(ctx, id);
        audit(ctx, "secret:decrypt", id, &out);
        let (meta, payload) = out?;
        Ok(ManagedObject::from_parts(&meta, payload.bytes))
    }

    /// Registers a consumer on a secret (idempotent).
    pub fn add_consumer(&self, ctx: &Context, id: &SecretId, consumer: Consumer) -> Result<()> {
        let out = (|| {
            validate_consumer(&consumer)?;
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:post", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::AddConsumer { id: *id, consumer }])
        })();
        audit(ctx, "secret_consumers:post", id, &out);
        out
    }

    /// Removes a consumer; `NotFound` if it was not registered.
    pub fn remove_consumer(&self, ctx: &Context, id: &SecretId, consumer: Consumer) -> Result<()> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::RemoveConsumer { id: *id, consumer }])
        })();
        audit(ctx, "secret_consumers:delete", id, &out);
        out
    }

    /// The consumers registered on a secret.
    pub fn consumers(&self, ctx: &Context, id: &SecretId) -> Result<Vec<Consumer>> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:get", ctx, &secret_target(ctx, &row))?;
            self.catalog.consumers(id)
        })();
        audit(ctx, "secret_consumers:get", id, &out);
        out
    }

    /// Replaces a secret's read ACL (`secret_acls:put_patch`).
    pub fn set_acl(&self, ctx: &Context, id: &SecretId, acl: Acl) -> Result<()> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:put_patch", ctx, &secret_target(ctx, &row))?;
            self.catalog.apply(vec![Write::SetAcl {
                id: *id,
                acl: Some(acl),
            }])
        })();
        audit(ctx, "secret_acls:put_patch", id, &out);
        out
    }

    /// A secret's read ACL (`secret_acls:get`).
    pub fn acl(&self, ctx: &Context, id: &SecretId) -> Result<Acl> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:get", ctx, &secret_target(ctx, &row))?;
            self.catalog.secret_acl(id)
        })();
        audit(ctx, "secret_acls:get", id, &out);
        out
    }

    /// Removes a secret's ACL; the defaults return (`secret_acls:delete`).
    pub fn delete_acl(&self, ctx: &Context, id: &SecretId) -> Result<()> {
        let out = (|| {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::SetAcl { id: *id, acl: None }])
        })();
        audit(ctx, "secret_acls:delete", id, &out);
        out
    }

    /// Maps the caller's project to `backend` for its new secrets
    /// (`secretstore_preferred:post`, Barbican's "preferred secret store").
    /// Existing secrets stay with the backend that stored them.
    pub fn set_project_backend(&self, ctx: &Context, backend: &BackendId) -> Result<()> {
        let out = (|| {
            self.authorize("secretstore_preferred:post", ctx, &self.project_target(ctx))?;
            if !self.backends.contains_key(backend) {
                return Err(Error::invalid(
                    "backend",
                    format!("backend {backend} is not configured"),
                ));
            }
            self.catalog.apply(vec![Write::SetProjectBackend {
                project: ctx.project_id.clone(),
                backend: Some(backend.clone()),
            }])
        })();
        audit(ctx, "secretstore_preferred:post", &ctx.project_id, &out);
        out
    }

    /// The backend the caller's project's new secrets go to, and whether
    /// that comes from a mapping (`true`) or the global default (`false`).
    pub fn project_backend(&self, ctx: &Context) -> Result<(BackendId, bool)> {
        let out = (|| {
            self.authorize("secretstores:get", ctx, &self.project_target(ctx))?;
            Ok(match self.catalog.project_backend(&ctx.project_id)? {
                Some(b) => (b, true),
                None => (self.default_backend.clone(), false),
            })
        })();
        audit(ctx, "secretstores:get", &ctx.project_id, &out);
        out
    }

    /// Removes the caller's project's mapping; it falls back to the global
    /// default (`secretstore_preferred:delete`).
    pub fn clear_project_backend(&self, ctx: &Context) -> Result<()> {
        let out = (|| {
            self.authorize(
                "secretstore_preferred:delete",
                ctx,
                &self.project_target(ctx),
            )?;
            self.catalog.apply(vec![Write::SetProjectBackend {
                project: ctx.project_id.clone(),
                backend: None,
            }])
        })();
        audit(ctx, "secretstore_preferred:delete", &ctx.project_id, &out);
        out
    }

    /// Operator actions: outside any request context, so no policy applies.
    /// Each is still audited. For tools that hold the configuration (and
    /// so the master KEKs) anyway, such as the `keywarden` command.
    pub fn operator(&self) -> Operator<'_> {
        Operator { store: self }
    }

    /// The configured backend ids and the global default.
    pub fn backend_ids(&self) -> (Vec<BackendId>, &BackendId) {
        (
            self.backends.keys().cloned().collect(),
            &self.default_backend,
        )
    }

    /// Verifies every backend's keys against the catalog and counts rows.
    pub fn check(&self) -> Result<StoreReport> {
        let mut backends = BTreeMap::new();
        for (id, b) in &self.backends {
            backends.insert(id.clone(), b.verify()?);
        }
        Ok(StoreReport {
            counts: self.catalog.counts()?,
            backends,
        })
    }

    // ---- helpers ----

    fn authorize(&self, action: &str, ctx: &Context, target: &Target<'_>) -> Result<()> {
        self.policy.enforce(action, ctx, target)
    }

    fn project_target<'a>(&self, ctx: &'a Context) -> Target<'a> {
        Target::new().with_project_id(&ctx.project_id)
    }

    /// The secret as the caller may see it: expired secrets, and secrets of
    /// other projects that do not list the caller in their ACL, are not found.
    fn visible_secret(&self, ctx: &Context, id: &SecretId, with_stored: bool) -> Result<SecretRow> {
        self.find_secret(ctx, id, with_stored, false)
    }

    fn find_secret(
        &self,
        ctx: &Context,
        id: &SecretId,
        with_stored: bool,
        include_expired: bool,
    ) -> Result<SecretRow> {
        let not_found = || Error::new(ErrorKind::NotFound, format!("secret {id} not found"));
        if *id == FIXED_KEY_ID
            && let Some(fixed) = &self.fixed
        {
            return fixed_key_row(ctx, fixed.as_ref(), with_stored);
        }
        let row = self
            .catalog
            .secret(id, &ctx.user_id, with_stored)?
            .ok_or_else(not_found)?;
        if !include_expired && row.meta.is_expired_at(Timestamp::now()) {
            return Err(not_found());
        }
        if row.meta.project_id != ctx.project_id && !row.acl.caller_listed {
            return Err(not_found());
        }
        Ok(row)
    }

    fn backend(&self, id: &BackendId) -> Result<&Arc<dyn KeyManager>> {
        self.backends
            .get(id)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("backend {id} is not configured")))
    }

    fn backend_for_project(&self, project: &ProjectId) -> Result<&Arc<dyn KeyManager>> {
        match self.catalog.project_backend(project)? {
            Some(id) => self.backend(&id),
            None => self.backend(&self.default_backend),
        }
    }
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("catalog", &self.catalog)
            .field("backends", &self.backends)
            .field("default_backend", &self.default_backend)
            .finish_non_exhaustive()
    }
}

/// Recorded as the creator of the legacy fixed key, which no user created.
const FIXED_KEY_CREATOR: &str = "danger-fixed-key";

/// The legacy key as a row: a symmetric AES key of the caller's project,
/// readable as any non-private project secret is.
fn fixed_key_row(ctx: &Context, fixed: &dyn KeyManager, with_stored: bool) -> Result<SecretRow> {
    let marker = crate::backend::StoredSecret::plain(Vec::new());
    let scope = Scope::new(&ctx.project_id, &FIXED_KEY_ID);
    let bits = u32::try_from(fixed.retrieve(scope, &marker)?.len() * 8).unwrap_or(u32::MAX);
    Ok(SecretRow {
        meta: SecretMeta {
            id: FIXED_KEY_ID,
            name: None,
            algorithm: Some(crate::backend::fixed::FIXED_KEY_ALGORITHM.to_owned()),
            bit_length: Some(bits),
            mode: None,
            secret_type: SecretType::Symmetric,
            expiration: None,
            created: Timestamp::from_unix(0),
            updated: Timestamp::from_unix(0),
            status: Status::Active,
            content_type: Some(ContentType::OctetStream),
            creator_id: UserId::new(FIXED_KEY_CREATOR).unwrap_or_else(|_| ctx.user_id.clone()),
            project_id: ctx.project_id.clone(),
            backend_id: fixed.id().clone(),
        },
        acl: crate::catalog::AclView {
            project_access: true,
            caller_listed: false,
        },
        stored: with_stored.then_some(marker),
    })
}

/// What [`Operator::verify_secrets`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretsCheck {
    pub checked: u64,
    /// Secrets whose stored material did not authenticate.
    pub failed: Vec<SecretId>,
}

/// Operator actions on a store; see [`SecretStore::operator`].
pub struct Operator<'a> {
    store: &'a SecretStore,
}

impl Operator<'_> {
    /// Rewraps `backend`'s project KEKs under its active master KEK in one
    /// transaction (master-KEK rotation). Secrets are not re-encrypted.
    pub fn rewrap_project_keks(&self, backend: &BackendId) -> Result<usize> {
        let out = self
            .store
            .backend(backend)
            .and_then(|b| b.rewrap_project_keks());
        operator_audit("kek:rewrap", backend, &out);
        out
    }

    /// How much the catalog holds.
    pub fn counts(&self) -> Result<Counts> {
        self.store.catalog.counts()
    }

    /// Authenticates every stored secret with its backend (nothing is
    /// returned or kept): how many were checked, and which failed.
    pub fn verify_secrets(&self) -> Result<SecretsCheck> {
        let mut check = SecretsCheck::default();
        let mut after = None;
        loop {
            let page = self.store.catalog.scan_secrets(after.as_ref(), 500)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.id);
            for (meta, stored) in &page {
                let Some(stored) = stored else { continue };
                check.checked += 1;
                let ok = self
                    .store
                    .backend(&meta.backend_id)
                    .and_then(|b| b.retrieve(scope(meta), stored))
                    .is_ok();
                if !ok {
                    check.failed.push(meta.id);
                }
            }
        }
        operator_audit("secrets:verify", &"*", &Ok::<_, Error>(()));
        Ok(check)
    }

    /// Deletes every expired secret (their ciphertext with them); returns
    /// how many.
    pub fn purge_expired(&self) -> Result<u64> {
        let out = self.store.catalog.purge_expired(Timestamp::now());
        operator_audit("secrets:purge_expired", &"*", &out);
        out
    }

    /// The catalog itself: no policy, no audit, no input validation. For
    /// migrations, benchmarks and tests that must write rows directly.
    pub fn danger_catalog(&self) -> &Arc<dyn Catalog> {
        &self.store.catalog
    }
}

fn operator_audit<T>(action: &'static str, object: &dyn fmt::Display, outcome: &Result<T>) {
    match outcome {
        Ok(_) => {
            tracing::info!(target: "keywarden::audit", user = "operator", action, object = %object, outcome = "success")
        }
        Err(e) => {
            tracing::info!(target: "keywarden::audit", user = "operator", action, object = %object, outcome = outcome_name(e.kind()), reason = %e)
        }
    }
}

pub(crate) fn scope(meta: &SecretMeta) -> Scope<'_> {
    Scope::of(meta)
}

fn secret_target<'a>(ctx: &'a Context, row: &'a SecretRow) -> Target<'a> {
    Target::entity(Entity::Secret, &row.meta.project_id, &row.meta.creator_id)
        .with_project_id(&ctx.project_id)
        .with_read_acl(
            Entity::Secret,
            row.acl.caller_listed,
            Some(row.acl.project_access),
        )
}

fn check_len(field: &'static str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.len() > 255 => Err(Error::invalid(field, "must be at most 255 characters")),
        _ => Ok(()),
    }
}

/// Barbican's `NewSecretValidator`, for the metadata part.
fn validate_meta(new: &NewSecret, now: Timestamp) -> Result<()> {
    check_len("name", new.name.as_deref().map(str::trim))?;
    check_len("algorithm", new.algorithm.as_deref())?;
    check_len("mode", new.mode.as_deref())?;
    if let Some(b) = new.bit_length
        && !(1..=32767).contains(&b)
    {
        return Err(Error::invalid("bit_length", "must be between 1 and 32767"));
    }
    if let Some(exp) = new.expiration
        && exp <= now
    {
        return Err(Error::invalid(
            "expiration",
            "'expiration' is before current time",
        ));
    }
    Ok(())
}

fn validate_consumer(c: &Consumer) -> Result<()> {
    for (field, v, max) in [
        ("service", &c.service, 255),
        ("resource_type", &c.resource_type, 255),
        ("resource_id", &c.resource_id, 36),
    ] {
        if v.is_empty() || v.len() > max {
            return Err(Error::invalid(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    Ok(())
}

/// One audit event per operation. Holds ids and outcomes only.
fn audit<T>(ctx: &Context, action: &'static str, object: &dyn fmt::Display, outcome: &Result<T>) {
    match outcome {
        Ok(_) => tracing::info!(
            target: "keywarden::audit",
            user = %ctx.user_id,
            project = %ctx.project_id,
            action,
            object = %object,
            outcome = "success",
        ),
        Err(e) => tracing::info!(
            target: "keywarden::audit",
            user = %ctx.user_id,
            project = %ctx.project_id,
            action,
            object = %object,
            outcome = outcome_name(e.kind()),
            reason = %e,
        ),
    }
}

fn outcome_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "denied",
        ErrorKind::InvalidInput | ErrorKind::TooLarge => "invalid",
        ErrorKind::Conflict => "conflict",
        _ => "error",
    }
}
