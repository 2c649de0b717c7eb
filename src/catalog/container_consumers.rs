//! Consumers registered on containers (Barbican's `{name, URL}`): both
//! catalogs' writes and reads, over [`Db`].

use crate::catalog::query::page_args;
use crate::catalog::sql::{Db, Value, args, count, row, rows};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ContainerConsumer, ContainerId, Page, Timestamp};

/// Barbican's text when the consumer is not registered.
pub(crate) const CONSUMER_NOT_FOUND: &str = "Consumer not found.";

fn container_not_found(id: &ContainerId) -> Error {
    Error::new(ErrorKind::NotFound, format!("container {id} not found"))
}

/// Registers a consumer; registering it again changes nothing (Barbican's
/// `create_or_update_from`).
pub(crate) fn add<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    consumer: &ContainerConsumer,
    created: Timestamp,
) -> Result<(), D::Fail> {
    // The container cannot be deleted before this transaction ends.
    let lock = db.dialect().lock_key_share;
    let exists = row(
        db,
        &format!("SELECT 1 FROM containers WHERE id = $1{lock}"),
        &args![id.to_string()],
        |_| Ok(()),
    )?;
    if exists.is_none() {
        return Err(container_not_found(id).into());
    }
    db.execute(
        "INSERT INTO container_consumers (container_id, name, url, created) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        &args![
            id.to_string(),
            consumer.name.as_str(),
            consumer.url.as_str(),
            created.unix(),
        ],
    )?;
    Ok(())
}

/// `NotFound` when the consumer is not registered.
pub(crate) fn remove<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    consumer: &ContainerConsumer,
) -> Result<(), D::Fail> {
    let n = db.execute(
        "DELETE FROM container_consumers WHERE container_id = $1 AND name = $2 AND url = $3",
        &args![
            id.to_string(),
            consumer.name.as_str(),
            consumer.url.as_str()
        ],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::NotFound, CONSUMER_NOT_FOUND).into());
    }
    Ok(())
}

/// One page of a container's consumers, oldest first; run in one snapshot.
pub(crate) fn list<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    limit: u32,
    offset: u64,
) -> Result<Page<ContainerConsumer>, D::Fail> {
    let total = count(
        db,
        "SELECT COUNT(*) FROM container_consumers WHERE container_id = $1",
        &args![id.to_string()],
    )?;
    let [lim, off] = page_args(limit, offset);
    let items = rows(
        db,
        "SELECT name, url FROM container_consumers WHERE container_id = $1
         ORDER BY created, name, url LIMIT $2 OFFSET $3",
        &[Value::from(id.to_string()), lim, off],
        |r| {
            Ok(ContainerConsumer {
                name: r.text(0)?,
                url: r.text(1)?,
            })
        },
    )?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// All of a container's consumers, oldest first.
pub(crate) fn of<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
) -> Result<Vec<ContainerConsumer>, D::Fail> {
    rows(
        db,
        "SELECT name, url FROM container_consumers WHERE container_id = $1
         ORDER BY created, name, url",
        &args![id.to_string()],
        |r| {
            Ok(ContainerConsumer {
                name: r.text(0)?,
                url: r.text(1)?,
            })
        },
    )
}

/// Every row in key order, with its registration time (for export).
pub(crate) fn all<D: Db + ?Sized>(
    db: &mut D,
) -> Result<Vec<(ContainerId, ContainerConsumer, Timestamp)>, D::Fail> {
    rows(
        db,
        "SELECT container_id, name, url, created FROM container_consumers
         ORDER BY container_id, name, url",
        &[],
        |r| {
            Ok((
                crate::catalog::rows::parsed(r, 0, "container id")?,
                ContainerConsumer {
                    name: r.text(1)?,
                    url: r.text(2)?,
                },
                Timestamp::from_unix(r.int(3)?),
            ))
        },
    )
}
