//! Where the store keeps metadata, ciphertext and wrapped KEKs.
//!
//! The catalog is below `SecretStore`: it knows rows, not policy. Writes go
//! through [`Catalog::apply`] as one all-or-nothing batch, so an order that
//! makes a secret and a container never leaves half of itself behind.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use crate::backend::{KekStore, StoredSecret, WrappedKek};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    BackendId, Consumer, ContainerConsumer, ContainerId, ContentType, OrderId, ProjectId,
    ProjectQuotas, QuotaResource, SecretId, SecretMeta, SecretType, Timestamp, UserId,
};

mod container_acls;
mod container_consumers;
mod container_secrets;
mod location;
mod metadata;
#[cfg(feature = "postgres")]
pub mod postgres;
mod query;
mod quotas;
mod read;
pub(crate) mod rollout;
mod rows;
pub(crate) mod sql;
pub mod sqlite;
mod transfer;
mod write;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresCatalog, PostgresOptions};
pub use location::{CatalogLocation, PostgresUrl, redact_url};
pub use sqlite::SqliteCatalog;
pub use transfer::{CopyReport, copy_verified};

// The domain types live in `model`; these paths stay for older callers.
pub use crate::model::{Acl, Container, ContainerType, Order, OrderType, Page};

/// Opens (creating or bringing the schema up to date) the catalog at `location`.
pub fn open(location: &CatalogLocation) -> Result<Arc<dyn Catalog>> {
    match location {
        CatalogLocation::Sqlite(path) => Ok(Arc::new(SqliteCatalog::open(path)?)),
        #[cfg(feature = "postgres")]
        CatalogLocation::Postgres(url) => Ok(Arc::new(PostgresCatalog::open(url)?)),
        #[cfg(not(feature = "postgres"))]
        CatalogLocation::Postgres(url) => Err(Error::new(
            ErrorKind::Config,
            format!("catalog {url} needs keywarden built with the `postgres` feature"),
        )),
    }
}

/// Opens a catalog that must already hold a keywarden schema: refuses a
/// missing SQLite file or a PostgreSQL database nobody initialised.
pub fn open_existing(location: &CatalogLocation) -> Result<Arc<dyn Catalog>> {
    match location {
        CatalogLocation::Sqlite(path) => Ok(Arc::new(SqliteCatalog::open_existing(path)?)),
        #[cfg(feature = "postgres")]
        CatalogLocation::Postgres(url) => Ok(Arc::new(PostgresCatalog::open_existing(url)?)),
        #[cfg(not(feature = "postgres"))]
        CatalogLocation::Postgres(_) => open(location),
    }
}

/// A secret row as the store needs it to decide and act.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub meta: SecretMeta,
    /// The secret's read ACL, as it applies to the caller who asked.
    pub acl: AclView,
    /// Present when asked for and a payload is stored.
    pub stored: Option<StoredSecret>,
}

/// The read ACL seen from one caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclView {
    /// Barbican's `project-access` flag: false makes the secret private.
    pub project_access: bool,
    /// Whether the caller is in the ACL's user list.
    pub caller_listed: bool,
}

/// A comparison in a date filter (`gt:`, `gte:`, `lt:`, `lte:` or bare equality).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A column secrets can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Algorithm,
    BitLength,
    Created,
    Expiration,
    Mode,
    Name,
    SecretType,
    Status,
    Updated,
}

/// Barbican's list filters, already validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretFilter {
    /// SQL LIKE pattern (exact match when it has no `%` or `_`).
    pub name: Option<String>,
    pub algorithm: Option<String>,
    pub mode: Option<String>,
    pub bit_length: Option<u32>,
    pub secret_type: Option<SecretType>,
    pub created: Vec<(Cmp, Timestamp)>,
    pub updated: Vec<(Cmp, Timestamp)>,
    pub expiration: Vec<(Cmp, Timestamp)>,
    /// (key, descending)
    pub sort: Vec<(SortKey, bool)>,
    /// Only secrets whose read ACL lists this user (any project).
    pub acl_user: Option<UserId>,
}

/// Barbican's container list filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    /// SQL LIKE pattern, ignoring ASCII case (Barbican's `name.like()`).
    pub name: Option<String>,
    pub container_type: Option<ContainerType>,
}

/// One change in an all-or-nothing batch.
#[derive(Clone, Debug)]
pub enum Write {
    InsertSecret {
        meta: SecretMeta,
        stored: Option<StoredSecret>,
    },
    /// Fails with `Conflict` when the secret already has a payload.
    SetPayload {
        id: SecretId,
        content_type: ContentType,
        stored: StoredSecret,
        updated: Timestamp,
    },
    /// Fails with `Conflict` while consumers exist unless `force`; removes the
    /// row, its ciphertext, ACL and consumers.
    DeleteSecret {
        id: SecretId,
        force: bool,
    },
    /// Idempotent.
    AddConsumer {
        id: SecretId,
        consumer: Consumer,
    },
    /// `NotFound` when not registered.
    RemoveConsumer {
        id: SecretId,
        consumer: Consumer,
    },
    /// `None` removes the ACL (defaults return).
    SetAcl {
        id: SecretId,
        acl: Option<Acl>,
    },
    /// Adds one user to a secret's read ACL, keeping the rest.
    GrantRead {
        id: SecretId,
        user: UserId,
    },
    InsertOrder(Order),
    DeleteOrder(OrderId),
    InsertContainer(Container),
    DeleteContainer(ContainerId),
    SetProjectBackend {
        project: ProjectId,
        backend: Option<BackendId>,
    },
    /// Replaces all of a secret's user metadata.
    ReplaceMetadata {
        id: SecretId,
        metadata: BTreeMap<String, String>,
    },
    /// Adds one key; `Conflict` when the secret already has it.
    AddMetadatum {
        id: SecretId,
        key: String,
        value: String,
    },
    /// Changes one key's value; `NotFound` when the secret lacks it.
    UpdateMetadatum {
        id: SecretId,
        key: String,
        value: String,
    },
    /// Removes one key (no error when it is not there).
    DeleteMetadatum {
        id: SecretId,
        key: String,
    },
    /// Sets the limits given (`Some`), keeping the project's others.
    MergeProjectQuotas {
        project: ProjectId,
        quotas: ProjectQuotas,
    },
    /// `NotFound` when the project has no quotas of its own.
    DeleteProjectQuotas(ProjectId),
    /// Fails the batch with `QuotaExceeded` when the project holds more
    /// of `resource` than its limit (its own, else `default`; negative is
    /// unlimited) once `adding` more are counted. Put it after the batch's
    /// inserts with `adding: 0`.
    WithinQuota {
        project: ProjectId,
        resource: QuotaResource,
        default: i64,
        adding: u64,
    },
    /// Idempotent.
    AddContainerConsumer {
        id: ContainerId,
        consumer: ContainerConsumer,
        created: Timestamp,
    },
    /// `NotFound` when not registered.
    RemoveContainerConsumer {
        id: ContainerId,
        consumer: ContainerConsumer,
    },
    /// Adds a reference to a container; `Conflict` when one of that name
    /// is there.
    AddContainerSecret {
        id: ContainerId,
        name: String,
        secret: SecretId,
    },
    /// `NotFound` when the container does not hold that reference.
    RemoveContainerSecret {
        id: ContainerId,
        name: String,
        secret: SecretId,
    },
    /// `None` removes the container's ACL (defaults return).
    SetContainerAcl {
        id: ContainerId,
        acl: Option<Acl>,
    },
}

/// How much a catalog holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub secrets: u64,
    pub secrets_with_payload: u64,
    pub orders: u64,
    pub containers: u64,
    pub consumers: u64,
    pub projects_with_keks: u64,
}

/// One row of a whole catalog, as [`Catalog::export`] streams it: project
/// KEKs and mappings first, then secrets, then what refers to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    ProjectKek {
        backend: BackendId,
        project: ProjectId,
        kek: WrappedKek,
        created: Timestamp,
    },
    ProjectBackend {
        project: ProjectId,
        backend: BackendId,
    },
    Secret {
        meta: SecretMeta,
        stored: Option<StoredSecret>,
        /// The read ACL's `project-access` flag.
        project_access: bool,
    },
    AclUser {
        secret: SecretId,
        user: UserId,
    },
    Consumer {
        secret: SecretId,
        consumer: Consumer,
    },
    Order(Order),
    Container(Container),
    Metadatum {
        secret: SecretId,
        key: String,
        value: String,
    },
    ProjectQuotas {
        project: ProjectId,
        quotas: ProjectQuotas,
        created: Timestamp,
    },
    ContainerConsumer {
        container: ContainerId,
        consumer: ContainerConsumer,
        created: Timestamp,
    },
    /// A container's read ACL, when it is not the default.
    ContainerAcl {
        container: ContainerId,
        acl: Acl,
    },
}

/// Where [`Catalog::export`] sends rows.
pub type RecordSink<'a> = dyn FnMut(Record) -> Result<()> + 'a;

/// What [`Catalog::replace_with`] reads rows from: it sends each to the sink.
pub type RecordSource<'a> = dyn FnMut(&mut RecordSink<'_>) -> Result<()> + 'a;

/// A catalog backend: SQLite (embedded) or PostgreSQL (shared).
pub trait Catalog: KekStore + Debug {
    /// Applies every write or none. The call returns once the batch is durable.
    fn apply(&self, batch: Vec<Write>) -> Result<()>;

    /// Applies each batch all-or-nothing on its own, in few transactions:
    /// one outcome per batch, in order. For bulk work (migrations) where one
    /// failing item must not hold back the others.
    fn apply_each(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>>;

    /// The secret `id` as seen by `caller`; with `with_stored`, its ciphertext too.
    fn secret(
        &self,
        id: &SecretId,
        caller: &UserId,
        with_stored: bool,
    ) -> Result<Option<SecretRow>>;

    /// Unexpired secrets of `project` (or, with `filter.acl_user`, of any
    /// project where that user is on the ACL) matching `filter`.
    fn list_secrets(
        &self,
        project: &ProjectId,
        filter: &SecretFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<Page<SecretMeta>>;

    fn consumers(&self, id: &SecretId) -> Result<Vec<Consumer>>;

    fn secret_acl(&self, id: &SecretId) -> Result<Acl>;

    fn order(&self, id: &OrderId) -> Result<Option<Order>>;

    fn list_orders(&self, project: &ProjectId, limit: u32, offset: u64) -> Result<Page<Order>>;

    fn container(&self, id: &ContainerId) -> Result<Option<Container>>;

    /// The project's containers matching `filter`, oldest first.
    fn list_containers(
        &self,
        project: &ProjectId,
        filter: &ContainerFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Page<Container>>;

    /// A secret's user metadata (empty when it has none).
    fn secret_metadata(&self, id: &SecretId) -> Result<BTreeMap<String, String>>;

    /// One key of a secret's user metadata.
    fn secret_metadatum(&self, id: &SecretId, key: &str) -> Result<Option<String>>;

    /// A project's own quotas, if any were set.
    fn project_quotas(&self, project: &ProjectId) -> Result<Option<ProjectQuotas>>;

    /// Every project with quotas of its own, oldest first.
    fn list_project_quotas(
        &self,
        limit: u32,
        offset: u64,
    ) -> Result<Page<(ProjectId, ProjectQuotas)>>;

    /// A container's read ACL; `None` when the container is not there.
    fn container_acl(&self, id: &ContainerId) -> Result<Option<Acl>>;

    /// One page of a container's consumers, oldest first.
    fn container_consumers(
        &self,
        id: &ContainerId,
        limit: u32,
        offset: u64,
    ) -> Result<Page<ContainerConsumer>>;

    /// The project's preferred backend, if one is mapped.
    fn project_backend(&self, project: &ProjectId) -> Result<Option<BackendId>>;

    /// Every project with a mapped backend.
    fn project_backends(&self) -> Result<Vec<(ProjectId, BackendId)>>;

    fn counts(&self) -> Result<Counts>;

    /// Every secret with its ciphertext, in id order, at most `limit` after
    /// `after`: for checks that must authenticate everything stored.
    fn scan_secrets(
        &self,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<(SecretMeta, Option<StoredSecret>)>>;

    /// Deletes every secret that expired before `now` (with its ciphertext,
    /// ACL and consumers); returns how many.
    fn purge_expired(&self, now: Timestamp) -> Result<u64>;

    /// Streams every row from one consistent snapshot, in [`Record`] order,
    /// each table in key order.
    fn export(&self, out: &mut RecordSink<'_>) -> Result<()> {
        let _ = out;
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{self:?} cannot export its rows"),
        ))
    }

    /// Replaces this catalog's whole content with the rows `rows` sends to
    /// the sink it is given (usually another catalog's [`Catalog::export`]),
    /// in one transaction: other connections see the old content or the
    /// new, never a mix, and a failure leaves the old content in place.
    fn replace_with(&self, rows: &mut RecordSource<'_>) -> Result<()> {
        let _ = rows;
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{self:?} cannot be replaced wholesale"),
        ))
    }
}
