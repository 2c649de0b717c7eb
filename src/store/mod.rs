//! `SecretStore`: what callers hold. It checks the request against the
//! policy, validates input, picks the backend for the project, and keeps
//! orders, containers, consumers and ACLs in the catalog.
//!
//! Every operation emits one audit event on the `keywarden::audit` tracing
//! target: who, which project, what action, which object, and the outcome.
//! Never a payload or key byte.
//!
//! The request API (a [`Context`] with every call) lives on [`SecretStore`]
//! in `secrets.rs`, `consumers.rs`, `acl.rs`, `project_backend.rs`,
//! `orders.rs`; calls without a request context on [`Operator`]
//! (`operator.rs`, beside `backup`, `restore` and `verify_backup`, which
//! need no open store and so are associated functions of
//! [`SecretStore`]); the fixed-key migration's writes in `migrated.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::backend::{FIXED_KEY_ID, KeyManager, Scope};
use crate::catalog::{self, Catalog, SecretRow};
use crate::config::{Config, DEFAULT_MAX_PAYLOAD_BYTES};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    BackendId, ContentType, ProjectId, Quotas, SecretId, SecretMeta, SecretType, Status, Timestamp,
    UserId,
};
use crate::payload::PayloadRules;
use crate::policy::{Entity, Policy, Target};

mod acl;
mod audit;
mod consumers;
mod containers;
mod list;
mod metadata;
pub(crate) mod migrated;
mod operator;
mod orders;
mod presence;
mod project_backend;
mod quotas;
mod secrets;

pub use audit::AUDIT_TARGET;
pub use containers::{ContainerQuery, NewContainer};
pub use list::{DEFAULT_LIMIT, ListQuery, MAX_LIMIT};
pub use metadata::MAX_METADATUM_LEN;
pub use operator::{Operator, SecretsCheck, StoreReport};
pub use orders::{KeyOrder, KeyPairOrder};
pub use quotas::QUOTA_REACHED_CLIENT_MESSAGE;
pub use secrets::NewSecret;

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
    default_quotas: Quotas,
    /// Heartbeats the catalog's instance list; last, so it is dropped (and
    /// withdraws) after everything else.
    _presence: presence::Presence,
}

/// Builds a [`SecretStore`] from explicit parts.
pub struct StoreBuilder {
    catalog: Arc<dyn Catalog>,
    backends: BTreeMap<BackendId, Arc<dyn KeyManager>>,
    default_backend: Option<BackendId>,
    policy: Option<Policy>,
    max_payload_bytes: usize,
    endpoint: String,
    default_quotas: Quotas,
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

    /// The quotas of projects that have none of their own (Barbican's
    /// `[quotas] quota_*`; unlimited unless set).
    pub fn default_quotas(mut self, quotas: Quotas) -> Self {
        self.default_quotas = quotas;
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
            match self.backends.get(&backend) {
                None => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "project {project} is mapped to backend {backend}, which is not configured"
                        ),
                    ));
                }
                // A mapping made before such mappings were refused: the
                // store still opens, but the project's new secrets go to
                // the default backend, not to a key every project reads.
                Some(b) if b.serves_fixed_id() => tracing::warn!(
                    project = %project,
                    backend = %backend,
                    "project {project} is mapped to backend {backend}, which serves the shared \
                     fixed key; the mapping is ignored (new secrets go to the default backend) \
                     until `keywarden project-store clear` or `set` replaces it"
                ),
                Some(_) => {}
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
        let presence = presence::Presence::start(self.backends.values().cloned().collect())?;
        Ok(SecretStore {
            _presence: presence,
            catalog: self.catalog,
            backends: self.backends,
            default_backend,
            fixed: fixed_backend,
            policy: self.policy.unwrap_or_else(Policy::barbican_queens),
            payload_rules: PayloadRules {
                max_bytes: self.max_payload_bytes,
            },
            endpoint: self.endpoint.trim_end_matches('/').to_owned(),
            default_quotas: self.default_quotas,
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
            default_quotas: Quotas::default(),
        }
    }

    /// Opens the store a [`Config`] describes.
    pub fn open(config: &Config) -> Result<Self> {
        let catalog = catalog::open(&config.catalog_location())?;
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

    /// Replaces the master KEKs of this store's SimpleCrypto backends with
    /// those `config` holds (active, staged, retired), without reopening:
    /// how a running instance takes a key `keywarden kek stage` made, or
    /// the config a rotation left. Each backend keeps its old keys when the
    /// new ones do not open what the catalog holds; the first such error is
    /// returned. Backends `config` does not describe are left alone.
    pub fn reload_master_keys(&self, config: &Config) -> Result<()> {
        for (id, backend) in &config.backends {
            let crate::config::BackendConfig::SimpleCrypto {
                master_kek,
                staged_master_keks,
                retired_master_keks,
            } = backend
            else {
                continue;
            };
            let Some(km) = self.backends.get(id) else {
                continue;
            };
            km.reload_master_keys(master_kek, staged_master_keks, retired_master_keks)?;
        }
        Ok(())
    }

    /// `<endpoint>/v1/secrets/<id>`.
    pub fn secret_href(&self, id: &SecretId) -> String {
        format!("{}/v1/secrets/{id}", self.endpoint)
    }

    /// `<endpoint>/v1/containers/<id>`.
    pub fn container_href(&self, id: &crate::model::ContainerId) -> String {
        format!("{}/v1/containers/{id}", self.endpoint)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Operator actions: outside any request context, so no policy applies.
    /// Each is still audited. For tools that hold the configuration (and
    /// so the master KEKs) anyway, such as the `keywarden` command.
    pub fn operator(&self) -> Operator<'_> {
        Operator { store: self }
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
        match self.project_mapping(project)? {
            Some(id) => self.backend(&id),
            None => self.backend(&self.default_backend),
        }
    }

    /// The project's mapping, unless it names a backend serving the fixed
    /// key (a mapping left from before those were refused; `build` warns).
    fn project_mapping(&self, project: &ProjectId) -> Result<Option<BackendId>> {
        Ok(self
            .catalog
            .project_backend(project)?
            .filter(|id| !self.backends.get(id).is_some_and(|b| b.serves_fixed_id())))
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
