//! Identifiers, secret types, metadata and the castellan-style managed objects.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn new_random() -> Self {
                $name(uuid::Uuid::new_v4())
            }

            pub const fn from_uuid(u: uuid::Uuid) -> Self {
                $name(u)
            }

            pub fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                uuid::Uuid::try_parse(s.trim())
                    .map($name)
                    .map_err(|e| Error::new(ErrorKind::NotFound, concat!("provided ", $what, " id is invalid")).with_source(e))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// A secret's id (a UUID, as Barbican's `secret_ref` ends with).
    SecretId,
    "secret"
);
uuid_id!(
    /// An order's id.
    OrderId,
    "order"
);
uuid_id!(
    /// A container's id.
    ContainerId,
    "container"
);

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// Refuses empty ids, ids over 255 bytes and control characters.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
                    return Err(Error::invalid($field, "must be 1 to 255 printable characters"));
                }
                Ok($name(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_id!(
    /// A Keystone-style project id: the tenant that owns secrets.
    ProjectId,
    "project_id"
);
name_id!(
    /// A user id: recorded as a secret's creator.
    UserId,
    "user_id"
);
name_id!(
    /// The stable id of a configured backend (recorded on every secret row).
    BackendId,
    "backend_id"
);

/// Barbican's six secret types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SecretType {
    Symmetric,
    Public,
    Private,
    Passphrase,
    Certificate,
    #[default]
    Opaque,
}

impl SecretType {
    pub const ALL: [SecretType; 6] = [
        SecretType::Symmetric,
        SecretType::Public,
        SecretType::Private,
        SecretType::Passphrase,
        SecretType::Certificate,
        SecretType::Opaque,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Symmetric => "symmetric",
            SecretType::Public => "public",
            SecretType::Private => "private",
            SecretType::Passphrase => "passphrase",
            SecretType::Certificate => "certificate",
            SecretType::Opaque => "opaque",
        }
    }
}

impl FromStr for SecretType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SecretType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "secret_type",
                    "must be one of symmetric, public, private, passphrase, certificate, opaque",
                )
            })
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored payload's content type, normalised as Barbican normalises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    TextPlain,
    OctetStream,
    Pkcs8,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::TextPlain => "text/plain",
            ContentType::OctetStream => "application/octet-stream",
            ContentType::Pkcs8 => "application/pkcs8",
        }
    }

    /// Whether the payload must arrive base64-encoded when sent as text.
    pub fn is_binary(self) -> bool {
        !matches!(self, ContentType::TextPlain)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret's lifecycle status (Barbican's PENDING / ACTIVE / ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Active,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Active => "ACTIVE",
            Status::Error => "ERROR",
        }
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "PENDING" => Ok(Status::Pending),
            "ACTIVE" => Ok(Status::Active),
            "ERROR" => Ok(Status::Error),
            _ => Err(Error::new(ErrorKind::Storage, "unknown status in catalog")),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time, second precision, UTC (as Barbican records times).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    pub fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parses an ISO 8601 / RFC 3339 time. A time without an offset is UTC,
    /// as Barbican reads it.
    pub fn parse_iso8601(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Ok(Timestamp(t.unix_timestamp()));
        }
        let naive_formats: [&[time::format_description::BorrowedFormatItem<'_>]; 4] = [
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
            ),
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        ];
        for fmt in naive_formats {
            if let Ok(t) = time::PrimitiveDateTime::parse(s, fmt) {
                return Ok(Timestamp(t.assume_utc().unix_timestamp()));
            }
        }
        if let Ok(d) =
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        {
            return Ok(Timestamp(d.midnight().assume_utc().unix_timestamp()));
        }
        Err(Error::invalid(
            "expiration",
            "invalid date; expected ISO 8601",
        ))
    }

    /// `2026-11-23T06:11:49+00:00`, Barbican's form.
    pub fn to_iso8601(self) -> String {
        match OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => {
                let fmt = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"
                );
                t.format(fmt).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso8601())
    }
}

/// What kind of key to make: algorithm, length in bits, optional mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub algorithm: String,
    pub bit_length: u32,
    pub mode: Option<String>,
}

/// A secret's metadata as Barbican keeps it. Holds no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    pub id: SecretId,
    pub name: Option<String>,
    pub algorithm: Option<String>,
    pub bit_length: Option<u32>,
    pub mode: Option<String>,
    pub secret_type: SecretType,
    pub expiration: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub status: Status,
    /// `None` until a payload is stored (Barbican's `content_types.default`).
    pub content_type: Option<ContentType>,
    pub creator_id: UserId,
    pub project_id: ProjectId,
    /// The backend that holds (or will hold) the payload.
    pub backend_id: BackendId,
}

impl SecretMeta {
    pub fn has_payload(&self) -> bool {
        self.content_type.is_some()
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expiration.is_some_and(|e| e <= now)
    }
}

/// A payload with its (normalised) content type.
#[derive(Clone, Debug)]
pub struct Payload {
    pub content_type: ContentType,
    pub bytes: SecretBytes,
}

/// A consumer registered on a secret (Barbican's secret consumers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Consumer {
    pub service: String,
    pub resource_type: String,
    pub resource_id: String,
}

/// Castellan's managed objects. Key material sits in [`SecretBytes`].
#[derive(Clone, Debug)]
pub enum ManagedObject {
    /// Raw key bytes (castellan format `RAW`).
    SymmetricKey {
        algorithm: Option<String>,
        bit_length: Option<u32>,
        key: SecretBytes,
    },
    /// PKCS#8 (castellan format `PKCS8`; we keep what was stored, PEM or DER).
    PrivateKey {
        algorithm: Option<String>,
        bit_length: Option<u32>,
        key: SecretBytes,
    },
    /// SubjectPublicKeyInfo (PEM or DER).
    PublicKey {
        algorithm: Option<String>,
        bit_length: Option<u32>,
        key: SecretBytes,
    },
    /// An X.509 certificate (PEM or DER).
    X509Certificate {
        data: SecretBytes,
    },
    Passphrase {
        passphrase: SecretBytes,
    },
    OpaqueData {
        data: SecretBytes,
    },
}

impl ManagedObject {
    pub fn secret_type(&self) -> SecretType {
        match self {
            ManagedObject::SymmetricKey { .. } => SecretType::Symmetric,
            ManagedObject::PrivateKey { .. } => SecretType::Private,
            ManagedObject::PublicKey { .. } => SecretType::Public,
            ManagedObject::X509Certificate { .. } => SecretType::Certificate,
            ManagedObject::Passphrase { .. } => SecretType::Passphrase,
            ManagedObject::OpaqueData { .. } => SecretType::Opaque,
        }
    }

    /// The object's bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.material().expose_secret()
    }

    pub fn material(&self) -> &SecretBytes {
        match self {
            ManagedObject::SymmetricKey { key, .. }
            | ManagedObject::PrivateKey { key, .. }
            | ManagedObject::PublicKey { key, .. } => key,
            ManagedObject::X509Certificate { data } | ManagedObject::OpaqueData { data } => data,
            ManagedObject::Passphrase { passphrase } => passphrase,
        }
    }

    /// The key algorithm (keys only).
    pub fn algorithm(&self) -> Option<&str> {
        match self {
            ManagedObject::SymmetricKey { algorithm, .. }
            | ManagedObject::PrivateKey { algorithm, .. }
            | ManagedObject::PublicKey { algorithm, .. } => algorithm.as_deref(),
            _ => None,
        }
    }

    /// The key length in bits (keys only).
    pub fn bit_length(&self) -> Option<u32> {
        match self {
            ManagedObject::SymmetricKey { bit_length, .. }
            | ManagedObject::PrivateKey { bit_length, .. }
            | ManagedObject::PublicKey { bit_length, .. } => *bit_length,
            _ => None,
        }
    }

    /// Rebuilds an object from stored metadata and payload.
    pub fn from_parts(meta: &SecretMeta, bytes: SecretBytes) -> Self {
        let algorithm = meta.algorithm.clone();
        let bit_length = meta.bit_length;
        match meta.secret_type {
            SecretType::Symmetric => ManagedObject::SymmetricKey {
                algorithm,
                bit_length,
                key: bytes,
            },
            SecretType::Private => ManagedObject::PrivateKey {
                algorithm,
                bit_length,
                key: bytes,
            },
            SecretType::Public => ManagedObject::PublicKey {
                algorithm,
                bit_length,
                key: bytes,
            },
            SecretType::Certificate => ManagedObject::X509Certificate { data: bytes },
            SecretType::Passphrase => ManagedObject::Passphrase { passphrase: bytes },
            SecretType::Opaque => ManagedObject::OpaqueData { data: bytes },
        }
    }
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
    /// Consumers registered on it, oldest first (Barbican shows them in
    /// the container's JSON). Ignored when the container is written.
    pub consumers: Vec<ContainerConsumer>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// What a project quota limits (Barbican's quota resources; `cas` is kept
/// for the wire but nothing here creates certificate authorities).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaResource {
    Secrets,
    Orders,
    Containers,
    Consumers,
    Cas,
}

impl QuotaResource {
    pub const ALL: [QuotaResource; 5] = [
        QuotaResource::Secrets,
        QuotaResource::Orders,
        QuotaResource::Containers,
        QuotaResource::Consumers,
        QuotaResource::Cas,
    ];

    /// Barbican's name, as in its error text and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaResource::Secrets => "secrets",
            QuotaResource::Orders => "orders",
            QuotaResource::Containers => "containers",
            QuotaResource::Consumers => "consumers",
            QuotaResource::Cas => "cas",
        }
    }
}

impl fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Barbican's value for "no limit" (any negative value reads as unlimited).
pub const QUOTA_UNLIMITED: i64 = -1;

/// Quotas in effect: every resource has a value. Negative is unlimited,
/// 0 refuses every creation, n allows n objects in the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    pub secrets: i64,
    pub orders: i64,
    pub containers: i64,
    pub consumers: i64,
    pub cas: i64,
}

impl Default for Quotas {
    /// Barbican's configuration defaults: all unlimited.
    fn default() -> Self {
        Quotas {
            secrets: QUOTA_UNLIMITED,
            orders: QUOTA_UNLIMITED,
            containers: QUOTA_UNLIMITED,
            consumers: QUOTA_UNLIMITED,
            cas: QUOTA_UNLIMITED,
        }
    }
}

impl Quotas {
    pub fn get(&self, r: QuotaResource) -> i64 {
        match r {
            QuotaResource::Secrets => self.secrets,
            QuotaResource::Orders => self.orders,
            QuotaResource::Containers => self.containers,
            QuotaResource::Consumers => self.consumers,
            QuotaResource::Cas => self.cas,
        }
    }
}

/// A project's configured quotas: `None` falls back to the store's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectQuotas {
    pub secrets: Option<i64>,
    pub orders: Option<i64>,
    pub containers: Option<i64>,
    pub consumers: Option<i64>,
    pub cas: Option<i64>,
}

impl ProjectQuotas {
    pub fn get(&self, r: QuotaResource) -> Option<i64> {
        match r {
            QuotaResource::Secrets => self.secrets,
            QuotaResource::Orders => self.orders,
            QuotaResource::Containers => self.containers,
            QuotaResource::Consumers => self.consumers,
            QuotaResource::Cas => self.cas,
        }
    }

    /// These values over `defaults` where unset.
    pub fn effective(&self, defaults: &Quotas) -> Quotas {
        Quotas {
            secrets: self.secrets.unwrap_or(defaults.secrets),
            orders: self.orders.unwrap_or(defaults.orders),
            containers: self.containers.unwrap_or(defaults.containers),
            consumers: self.consumers.unwrap_or(defaults.consumers),
            cas: self.cas.unwrap_or(defaults.cas),
        }
    }
}

/// A consumer registered on a container (Barbican's `{name, URL}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerConsumer {
    pub name: String,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_type_round_trips_and_defaults_to_opaque() {
        for t in SecretType::ALL {
            assert_eq!(t.as_str().parse::<SecretType>().unwrap(), t);
        }
        assert_eq!(SecretType::default(), SecretType::Opaque);
        let e = "bogus".parse::<SecretType>().unwrap_err();
        assert_eq!(e.field(), Some("secret_type"));
    }

    #[test]
    fn timestamps_parse_with_and_without_offset() {
        let a = Timestamp::parse_iso8601("2030-01-02T03:04:05Z").unwrap();
        let b = Timestamp::parse_iso8601("2030-01-02T03:04:05").unwrap();
        let c = Timestamp::parse_iso8601("2030-01-02T05:04:05+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_iso8601(), "2030-01-02T03:04:05+00:00");
        assert!(Timestamp::parse_iso8601("tomorrow").is_err());
    }

    #[test]
    fn managed_object_debug_hides_material() {
        let key = ManagedObject::SymmetricKey {
            algorithm: Some("AES".into()),
            bit_length: Some(128),
            key: SecretBytes::copy_from(&[0xAB; 16]),
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    }
}
