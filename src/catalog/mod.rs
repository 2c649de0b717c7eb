//! Where the store keeps metadata, ciphertext and wrapped KEKs.
//!
//! The catalog is below `SecretStore`: it knows rows, not policy. Writes go
//! through [`Catalog::apply`] as one all-or-nothing batch, so an order that
//! makes a secret and a container never leaves half of itself behind.

use std::fmt::Debug;
use std::sync::Arc;

use crate::backend::{KekStore, StoredSecret, WrappedKek};
use crate::config::CatalogLocation;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    BackendId, Consumer, ContainerId, ContentType, OrderId, ProjectId, SecretId, SecretMeta,
    SecretType, Status, Timestamp, UserId,
};

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
mod transfer;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresCatalog, PostgresOptions};
pub use sqlite::SqliteCatalog;
pub use transfer::{CopyReport, copy_verified};

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

/// A secret's read ACL (the only operation Barbican accepts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    pub users: Vec<UserId>,
    pub project_access: bool,
}

impl Default for Acl {
    fn default() -> Self {
        Acl {
            users: Vec::new(),
            project_access: true,
        }
    }
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

/// One page of a listing plus the total number of matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// What an order makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderType {
    Key,
    Asymmetric,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Key => "key",
            OrderType::Asymmetric => "asymmetric",
        }
    }
}

/// An order as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub project_id: ProjectId,
    pub creator_id: UserId,
    pub order_type: OrderType,
    pub status: Status,
    pub name: Option<String>,
    pub algorithm: String,
    pub bit_length: u32,
    pub mode: Option<String>,
    pub payload_content_type: Option<ContentType>,
    pub expiration: Option<Timestamp>,
    pub secret_id: Option<SecretId>,
    pub container_id: Option<ContainerId>,
    pub error_code: Option<u16>,
    pub error_reason: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A container's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerType {
    Generic,
    Rsa,
    Certificate,
}

impl ContainerType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerType::Generic => "generic",
            ContainerType::Rsa => "rsa",
            ContainerType::Certificate => "certificate",
        }
    }
}

/// A container: named references to secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: ContainerId,
    pub project_id: ProjectId,
    pub creator_id: UserId,
    pub name: Option<String>,
    pub container_type: ContainerType,
    pub status: Status,
    pub secret_refs: Vec<(String, SecretId)>,
    pub created: Timestamp,
    pub updated: Timestamp,
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

    fn list_containers(
        &self,
        project: &ProjectId,
        limit: u32,
        offset: u64,
    ) -> Result<Page<Container>>;

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

// ---- shared by the catalog backends ----

/// A row that does not parse: the catalog is damaged or was tampered with.
pub(crate) fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("catalog holds an invalid {what}"),
    )
}

/// A stored content type, as the catalogs write it.
pub(crate) fn parse_content_type(s: &str) -> Result<ContentType> {
    match s {
        "text/plain" => Ok(ContentType::TextPlain),
        "application/octet-stream" => Ok(ContentType::OctetStream),
        "application/pkcs8" => Ok(ContentType::Pkcs8),
        _ => Err(corrupt("content type")),
    }
}

/// The column a sort key orders by.
pub(crate) fn sort_column(k: SortKey) -> &'static str {
    match k {
        SortKey::Algorithm => "algorithm",
        SortKey::BitLength => "bit_length",
        SortKey::Created => "created",
        SortKey::Expiration => "expiration",
        SortKey::Mode => "mode",
        SortKey::Name => "name",
        SortKey::SecretType => "secret_type",
        SortKey::Status => "status",
        SortKey::Updated => "updated",
    }
}

/// The SQL operator of a date comparison.
pub(crate) fn cmp_sql(c: Cmp) -> &'static str {
    match c {
        Cmp::Eq => "=",
        Cmp::Gt => ">",
        Cmp::Gte => ">=",
        Cmp::Lt => "<",
        Cmp::Lte => "<=",
    }
}

/// How the catalogs apply a bulk set ([`Catalog::apply_each`]): first all
/// batches as one all-or-nothing job, which is the common case and needs
/// no savepoint per batch (SQLite copies every page a savepoint first
/// touches; PostgreSQL slows every snapshot once a transaction holds more
/// than 64 subtransactions). Only when that job fails are the batches run
/// again with `one_by_one`, to learn which of them failed.
pub(crate) fn apply_each_at_once_first(
    batches: Vec<Vec<Write>>,
    applied_at_once: impl FnOnce(Vec<Write>) -> bool,
    one_by_one: impl FnOnce(Vec<Vec<Write>>) -> Vec<Result<()>>,
) -> Vec<Result<()>> {
    if batches.len() > 1 {
        let all: Vec<Write> = batches.iter().flatten().cloned().collect();
        if applied_at_once(all) {
            return batches.iter().map(|_| Ok(())).collect();
        }
    }
    one_by_one(batches)
}
