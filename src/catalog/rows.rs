//! Rows back into domain types, for both catalogs. Everything read from
//! the database is untrusted: a value that does not parse is a storage
//! error naming what was invalid, never a panic.

use crate::backend::{StoredSecret, WrappedKek};
use crate::catalog::sql::Columns;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Container, ContainerType, ContentType, Order, OrderType, SecretId, SecretMeta, Timestamp,
};

/// Column list matching [`secret_from_row`].
pub(crate) const SECRET_COLUMNS: &str = "id, project_id, name, algorithm, bit_length, mode, secret_type, expiration, \
     created, updated, status, content_type, creator_id, backend_id";

/// Column list matching [`order_from_row`].
pub(crate) const ORDER_COLUMNS: &str = "id, project_id, creator_id, type, status, name, algorithm, bit_length, mode, \
     payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated";

/// Column list matching [`container_from_row`].
pub(crate) const CONTAINER_COLUMNS: &str =
    "id, project_id, creator_id, name, type, status, created, updated";

/// Column list matching [`kek_from_row`].
pub(crate) const KEK_COLUMNS: &str = "kek_id, master_fingerprint, wrapped";

/// A row that does not parse: the catalog is damaged or was tampered with.
pub(crate) fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("catalog holds an invalid {what}"),
    )
}

/// Column `i` parsed by `FromStr`; `what` names it when it does not parse.
pub(crate) fn parsed<T: std::str::FromStr>(r: &dyn Columns, i: usize, what: &str) -> Result<T> {
    r.text(i)?.parse().map_err(|_| corrupt(what))
}

fn opt_parsed<T: std::str::FromStr>(r: &dyn Columns, i: usize, what: &str) -> Result<Option<T>> {
    r.opt_text(i)?
        .map(|s| s.parse().map_err(|_| corrupt(what)))
        .transpose()
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

fn opt_content_type(r: &dyn Columns, i: usize) -> Result<Option<ContentType>> {
    r.opt_text(i)?.map(|c| parse_content_type(&c)).transpose()
}

fn opt_timestamp(r: &dyn Columns, i: usize) -> Result<Option<Timestamp>> {
    Ok(r.opt_int(i)?.map(Timestamp::from_unix))
}

fn timestamp(r: &dyn Columns, i: usize) -> Result<Timestamp> {
    Ok(Timestamp::from_unix(r.int(i)?))
}

/// [`SECRET_COLUMNS`], from column 0.
pub(crate) fn secret_from_row(r: &dyn Columns) -> Result<SecretMeta> {
    Ok(SecretMeta {
        id: parsed(r, 0, "secret id")?,
        project_id: parsed(r, 1, "project id")?,
        name: r.opt_text(2)?,
        algorithm: r.opt_text(3)?,
        bit_length: r
            .opt_int(4)?
            .map(|b| u32::try_from(b).map_err(|_| corrupt("bit length")))
            .transpose()?,
        mode: r.opt_text(5)?,
        secret_type: parsed(r, 6, "secret type")?,
        expiration: opt_timestamp(r, 7)?,
        created: timestamp(r, 8)?,
        updated: timestamp(r, 9)?,
        status: parsed(r, 10, "status")?,
        content_type: opt_content_type(r, 11)?,
        creator_id: parsed(r, 12, "creator id")?,
        backend_id: parsed(r, 13, "backend id")?,
    })
}

/// `stored` and `kek_id` at `at` and `at + 1`.
pub(crate) fn stored_from_row(r: &dyn Columns, at: usize) -> Result<Option<StoredSecret>> {
    Ok(match r.opt_bytes(at)? {
        Some(bytes) => Some(StoredSecret {
            bytes,
            kek_id: r.opt_text(at + 1)?,
        }),
        None => None,
    })
}

/// [`ORDER_COLUMNS`], from column 0.
pub(crate) fn order_from_row(r: &dyn Columns) -> Result<Order> {
    let order_type = match r.text(3)?.as_str() {
        "key" => OrderType::Key,
        "asymmetric" => OrderType::Asymmetric,
        _ => return Err(corrupt("order type")),
    };
    Ok(Order {
        id: parsed(r, 0, "order id")?,
        project_id: parsed(r, 1, "project id")?,
        creator_id: parsed(r, 2, "creator id")?,
        order_type,
        status: parsed(r, 4, "status")?,
        name: r.opt_text(5)?,
        algorithm: r.text(6)?,
        bit_length: u32::try_from(r.int(7)?).map_err(|_| corrupt("bit length"))?,
        mode: r.opt_text(8)?,
        payload_content_type: opt_content_type(r, 9)?,
        expiration: opt_timestamp(r, 10)?,
        secret_id: opt_parsed(r, 11, "secret id")?,
        container_id: opt_parsed(r, 12, "container id")?,
        error_code: r
            .opt_int(13)?
            .map(|c| u16::try_from(c).map_err(|_| corrupt("error code")))
            .transpose()?,
        error_reason: r.opt_text(14)?,
        created: timestamp(r, 15)?,
        updated: timestamp(r, 16)?,
    })
}

/// [`CONTAINER_COLUMNS`], from column 0; the references and consumers are
/// read apart (see [`secret_ref_from_row`]) and filled in by the caller.
pub(crate) fn container_from_row(r: &dyn Columns) -> Result<Container> {
    let container_type = match r.text(4)?.as_str() {
        "generic" => ContainerType::Generic,
        "rsa" => ContainerType::Rsa,
        "certificate" => ContainerType::Certificate,
        _ => return Err(corrupt("container type")),
    };
    Ok(Container {
        id: parsed(r, 0, "container id")?,
        project_id: parsed(r, 1, "project id")?,
        creator_id: parsed(r, 2, "creator id")?,
        name: r.opt_text(3)?,
        container_type,
        status: parsed(r, 5, "status")?,
        secret_refs: Vec::new(),
        consumers: Vec::new(),
        created: timestamp(r, 6)?,
        updated: timestamp(r, 7)?,
    })
}

/// One of a container's references: `name, secret_id`.
pub(crate) fn secret_ref_from_row(r: &dyn Columns) -> Result<(String, SecretId)> {
    Ok((r.text(0)?, parsed(r, 1, "secret id")?))
}

/// [`KEK_COLUMNS`], from column 0.
pub(crate) fn kek_from_row(r: &dyn Columns) -> Result<WrappedKek> {
    Ok(WrappedKek {
        kek_id: r.text(0)?,
        master_fingerprint: r.text(1)?,
        wrapped: r.bytes(2)?,
    })
}
