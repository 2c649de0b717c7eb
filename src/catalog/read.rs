//! The catalog's reads, for both catalogs: each is the statements of one
//! [`Catalog`](super::Catalog) call on a [`Db`]. The driver chooses the
//! snapshot they run in.

use crate::backend::{StoredSecret, WrappedKek};
use crate::catalog::query::{Listing, page_args};
use crate::catalog::rows::{
    CONTAINER_COLUMNS, KEK_COLUMNS, ORDER_COLUMNS, SECRET_COLUMNS, container_from_row,
    kek_from_row, order_from_row, parsed, secret_from_row, secret_ref_from_row, stored_from_row,
};
use crate::catalog::sql::{Db, Value, args, count, row, rows};
use crate::catalog::write::not_found;
use crate::catalog::{
    AclView, ContainerFilter, Counts, Record, RecordSink, SecretFilter, SecretRow,
};
use crate::error::Result;
use crate::model::{
    Acl, BackendId, Consumer, Container, ContainerId, Order, OrderId, Page, ProjectId, SecretId,
    SecretMeta, Timestamp, UserId,
};

/// The read half of a driver's [`Catalog`](super::Catalog) impl: each call
/// is its shared statements above, run through the driver's `read` (one
/// statement, on a pooled connection) or `snapshot` (several, in one read
/// transaction, so they agree with each other).
macro_rules! catalog_reads {
    () => {
        fn secret(
            &self,
            id: &$crate::model::SecretId,
            caller: &$crate::model::UserId,
            with_stored: bool,
        ) -> $crate::Result<Option<$crate::catalog::SecretRow>> {
            self.read(|db| $crate::catalog::read::secret(db, id, caller, with_stored))
        }

        fn list_secrets(
            &self,
            project: &$crate::model::ProjectId,
            filter: &$crate::catalog::SecretFilter,
            limit: u32,
            offset: u64,
            now: $crate::model::Timestamp,
        ) -> $crate::Result<$crate::model::Page<$crate::model::SecretMeta>> {
            self.snapshot(|db| {
                $crate::catalog::read::list_secrets(db, project, filter, limit, offset, now)
            })
        }

        fn consumers(
            &self,
            id: &$crate::model::SecretId,
        ) -> $crate::Result<Vec<$crate::model::Consumer>> {
            self.read(|db| $crate::catalog::read::consumers(db, id))
        }

        fn secret_acl(&self, id: &$crate::model::SecretId) -> $crate::Result<$crate::model::Acl> {
            self.snapshot(|db| $crate::catalog::read::secret_acl(db, id))
        }

        fn order(
            &self,
            id: &$crate::model::OrderId,
        ) -> $crate::Result<Option<$crate::model::Order>> {
            self.read(|db| $crate::catalog::read::order(db, id))
        }

        fn list_orders(
            &self,
            project: &$crate::model::ProjectId,
            limit: u32,
            offset: u64,
        ) -> $crate::Result<$crate::model::Page<$crate::model::Order>> {
            self.snapshot(|db| $crate::catalog::read::list_orders(db, project, limit, offset))
        }

        fn container(
            &self,
            id: &$crate::model::ContainerId,
        ) -> $crate::Result<Option<$crate::model::Container>> {
            self.snapshot(|db| $crate::catalog::read::container(db, id))
        }

        fn list_containers(
            &self,
            project: &$crate::model::ProjectId,
            filter: &$crate::catalog::ContainerFilter,
            limit: u32,
            offset: u64,
        ) -> $crate::Result<$crate::model::Page<$crate::model::Container>> {
            self.snapshot(|db| {
                $crate::catalog::read::list_containers(db, project, filter, limit, offset)
            })
        }

        fn secret_metadata(
            &self,
            id: &$crate::model::SecretId,
        ) -> $crate::Result<std::collections::BTreeMap<String, String>> {
            self.read(|db| $crate::catalog::metadata::read(db, id))
        }

        fn secret_metadatum(
            &self,
            id: &$crate::model::SecretId,
            key: &str,
        ) -> $crate::Result<Option<String>> {
            self.read(|db| $crate::catalog::metadata::read_one(db, id, key))
        }

        fn project_quotas(
            &self,
            project: &$crate::model::ProjectId,
        ) -> $crate::Result<Option<$crate::model::ProjectQuotas>> {
            self.read(
                |db| Ok($crate::catalog::quotas::project_quotas(db, project)?.map(|(q, _)| q)),
            )
        }

        fn list_project_quotas(
            &self,
            limit: u32,
            offset: u64,
        ) -> $crate::Result<
            $crate::model::Page<($crate::model::ProjectId, $crate::model::ProjectQuotas)>,
        > {
            self.snapshot(|db| $crate::catalog::quotas::list(db, limit, offset))
        }

        fn container_acl(
            &self,
            id: &$crate::model::ContainerId,
        ) -> $crate::Result<Option<$crate::model::Acl>> {
            self.snapshot(|db| $crate::catalog::container_acls::read(db, id))
        }

        fn container_consumers(
            &self,
            id: &$crate::model::ContainerId,
            limit: u32,
            offset: u64,
        ) -> $crate::Result<$crate::model::Page<$crate::model::ContainerConsumer>> {
            self.snapshot(|db| $crate::catalog::container_consumers::list(db, id, limit, offset))
        }

        fn project_backend(
            &self,
            project: &$crate::model::ProjectId,
        ) -> $crate::Result<Option<$crate::model::BackendId>> {
            self.read(|db| $crate::catalog::read::project_backend(db, project))
        }

        fn project_backends(
            &self,
        ) -> $crate::Result<Vec<($crate::model::ProjectId, $crate::model::BackendId)>> {
            self.read(|db| $crate::catalog::read::project_backends(db))
        }

        fn counts(&self) -> $crate::Result<$crate::catalog::Counts> {
            self.snapshot(|db| $crate::catalog::read::counts(db))
        }

        fn scan_secrets(
            &self,
            after: Option<&$crate::model::SecretId>,
            limit: u32,
        ) -> $crate::Result<
            Vec<(
                $crate::model::SecretMeta,
                Option<$crate::backend::StoredSecret>,
            )>,
        > {
            self.read(|db| $crate::catalog::read::scan_secrets(db, after, limit))
        }
    };
}
pub(crate) use catalog_reads;

/// How many secrets an export reads at a time, so a large catalog is
/// never all in memory.
const EXPORT_PAGE: i64 = 1000;

pub(crate) fn secret<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    caller: &UserId,
    with_stored: bool,
) -> Result<Option<SecretRow>, D::Fail> {
    let sql = format!(
        "SELECT {SECRET_COLUMNS}, read_project_access,
           EXISTS (SELECT 1 FROM secret_acl_users a WHERE a.secret_id = s.id AND a.user_id = $2),
           CASE WHEN $3 THEN stored END, kek_id
         FROM secrets s WHERE id = $1"
    );
    row(
        db,
        &sql,
        &args![id.to_string(), caller.as_str(), with_stored],
        |r| {
            Ok(SecretRow {
                meta: secret_from_row(r)?,
                acl: AclView {
                    project_access: r.bool(14)?,
                    caller_listed: r.bool(15)?,
                },
                stored: stored_from_row(r, 16)?,
            })
        },
    )
}

/// Run in one snapshot, so the total and the page agree.
pub(crate) fn list_secrets<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    filter: &SecretFilter,
    limit: u32,
    offset: u64,
    now: Timestamp,
) -> Result<Page<SecretMeta>, D::Fail> {
    let listing = Listing::secrets(db.dialect(), project, filter, now);
    let total = count(db, &listing.count_sql, &listing.args)?;
    let mut page_args: Vec<Value<'_>> = listing.args.clone();
    page_args.extend(self::page_args(limit, offset));
    let items = rows(db, &listing.page_sql, &page_args, secret_from_row)?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

pub(crate) fn consumers<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
) -> Result<Vec<Consumer>, D::Fail> {
    rows(
        db,
        "SELECT service, resource_type, resource_id FROM secret_consumers
         WHERE secret_id = $1 ORDER BY service, resource_type, resource_id",
        &args![id.to_string()],
        |r| {
            Ok(Consumer {
                service: r.text(0)?,
                resource_type: r.text(1)?,
                resource_id: r.text(2)?,
            })
        },
    )
}

/// Two statements: run in one snapshot where the driver has them.
pub(crate) fn secret_acl<D: Db + ?Sized>(db: &mut D, id: &SecretId) -> Result<Acl, D::Fail> {
    let project_access = row(
        db,
        "SELECT read_project_access FROM secrets WHERE id = $1",
        &args![id.to_string()],
        |r| r.bool(0),
    )?;
    let Some(project_access) = project_access else {
        return Err(not_found(id).into());
    };
    let users = rows(
        db,
        "SELECT user_id FROM secret_acl_users WHERE secret_id = $1 ORDER BY user_id",
        &args![id.to_string()],
        |r| parsed(r, 0, "user id"),
    )?;
    Ok(Acl {
        users,
        project_access,
    })
}

pub(crate) fn order<D: Db + ?Sized>(db: &mut D, id: &OrderId) -> Result<Option<Order>, D::Fail> {
    row(
        db,
        &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"),
        &args![id.to_string()],
        order_from_row,
    )
}

pub(crate) fn list_orders<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    limit: u32,
    offset: u64,
) -> Result<Page<Order>, D::Fail> {
    let total = count(
        db,
        "SELECT COUNT(*) FROM orders WHERE project_id = $1",
        &args![project.as_str()],
    )?;
    let [lim, off] = page_args(limit, offset);
    let items = rows(
        db,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE project_id = $1
             ORDER BY created, id LIMIT $2 OFFSET $3"
        ),
        &[Value::from(project.as_str()), lim, off],
        order_from_row,
    )?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// A container and its references: run in one snapshot where the driver
/// has them.
pub(crate) fn container<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
) -> Result<Option<Container>, D::Fail> {
    let head = row(
        db,
        &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = $1"),
        &args![id.to_string()],
        container_from_row,
    )?;
    head.map(|k| with_refs(db, k)).transpose()
}

pub(crate) fn list_containers<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    filter: &ContainerFilter,
    limit: u32,
    offset: u64,
) -> Result<Page<Container>, D::Fail> {
    let mut conditions = String::from("project_id = $1");
    let mut filter_args = vec![Value::from(project.as_str())];
    if let Some(name) = &filter.name {
        filter_args.push(Value::from(name.as_str()));
        let like = db.dialect().like;
        conditions.push_str(&format!(" AND name {like} ${}", filter_args.len()));
    }
    if let Some(t) = filter.container_type {
        filter_args.push(Value::from(t.as_str()));
        conditions.push_str(&format!(" AND type = ${}", filter_args.len()));
    }
    let total = count(
        db,
        &format!("SELECT COUNT(*) FROM containers WHERE {conditions}"),
        &filter_args,
    )?;
    let n = filter_args.len();
    let mut page = filter_args.clone();
    page.extend(page_args(limit, offset));
    let heads = rows(
        db,
        &format!(
            "SELECT {CONTAINER_COLUMNS} FROM containers WHERE {conditions}
             ORDER BY created, id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &page,
        container_from_row,
    )?;
    let items = heads
        .into_iter()
        .map(|k| with_refs(db, k))
        .collect::<Result<_, _>>()?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// Fills in a container's references and consumers.
fn with_refs<D: Db + ?Sized>(db: &mut D, k: Container) -> Result<Container, D::Fail> {
    let mut k = with_secret_refs(db, k)?;
    k.consumers = super::container_consumers::of(db, &k.id)?;
    Ok(k)
}

fn with_secret_refs<D: Db + ?Sized>(db: &mut D, mut k: Container) -> Result<Container, D::Fail> {
    k.secret_refs = rows(
        db,
        "SELECT name, secret_id FROM container_secrets WHERE container_id = $1 ORDER BY name",
        &args![k.id.to_string()],
        secret_ref_from_row,
    )?;
    Ok(k)
}

pub(crate) fn project_backend<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
) -> Result<Option<BackendId>, D::Fail> {
    row(
        db,
        "SELECT backend_id FROM project_backends WHERE project_id = $1",
        &args![project.as_str()],
        |r| parsed(r, 0, "backend id"),
    )
}

pub(crate) fn project_backends<D: Db + ?Sized>(
    db: &mut D,
) -> Result<Vec<(ProjectId, BackendId)>, D::Fail> {
    rows(
        db,
        "SELECT project_id, backend_id FROM project_backends ORDER BY project_id",
        &[],
        |r| Ok((parsed(r, 0, "project id")?, parsed(r, 1, "backend id")?)),
    )
}

/// One statement, so the counts come from one snapshot.
pub(crate) fn counts<D: Db + ?Sized>(db: &mut D) -> Result<Counts, D::Fail> {
    let counts = row(
        db,
        "SELECT (SELECT COUNT(*) FROM secrets),
                (SELECT COUNT(*) FROM secrets WHERE stored IS NOT NULL),
                (SELECT COUNT(*) FROM orders),
                (SELECT COUNT(*) FROM containers),
                (SELECT COUNT(*) FROM secret_consumers),
                (SELECT COUNT(*) FROM project_keks)",
        &[],
        |r| {
            let n = |i: usize| -> Result<u64> { Ok(u64::try_from(r.int(i)?).unwrap_or(0)) };
            Ok(Counts {
                secrets: n(0)?,
                secrets_with_payload: n(1)?,
                orders: n(2)?,
                containers: n(3)?,
                consumers: n(4)?,
                projects_with_keks: n(5)?,
            })
        },
    )?;
    Ok(counts.unwrap_or_default())
}

pub(crate) fn scan_secrets<D: Db + ?Sized>(
    db: &mut D,
    after: Option<&SecretId>,
    limit: u32,
) -> Result<Vec<(SecretMeta, Option<StoredSecret>)>, D::Fail> {
    let after = after.map(ToString::to_string).unwrap_or_default();
    rows(
        db,
        &format!(
            "SELECT {SECRET_COLUMNS}, stored, kek_id FROM secrets WHERE id > $1 ORDER BY id LIMIT $2"
        ),
        &args![after, i64::from(limit)],
        |r| Ok((secret_from_row(r)?, stored_from_row(r, 14)?)),
    )
}

pub(crate) fn project_kek<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    project: &ProjectId,
) -> Result<Option<WrappedKek>, D::Fail> {
    row(
        db,
        &format!(
            "SELECT {KEK_COLUMNS} FROM project_keks WHERE backend_id = $1 AND project_id = $2"
        ),
        &args![backend.as_str(), project.as_str()],
        kek_from_row,
    )
}

pub(crate) fn project_keks<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
) -> Result<Vec<(ProjectId, WrappedKek)>, D::Fail> {
    rows(
        db,
        &format!(
            "SELECT {KEK_COLUMNS}, project_id FROM project_keks
             WHERE backend_id = $1 ORDER BY project_id"
        ),
        &args![backend.as_str()],
        |r| Ok((parsed(r, 3, "project id")?, kek_from_row(r)?)),
    )
}

/// Every row in [`Record`] order, each table in key order; the caller
/// holds one snapshot around it.
pub(crate) fn export_rows<D: Db + ?Sized>(
    db: &mut D,
    out: &mut RecordSink<'_>,
) -> Result<(), D::Fail> {
    db.query(
        &format!(
            "SELECT {KEK_COLUMNS}, backend_id, project_id, created
             FROM project_keks ORDER BY backend_id, project_id"
        ),
        &[],
        &mut |r| {
            out(Record::ProjectKek {
                kek: kek_from_row(r)?,
                backend: parsed(r, 3, "backend id")?,
                project: parsed(r, 4, "project id")?,
                created: Timestamp::from_unix(r.int(5)?),
            })
        },
    )?;
    db.query(
        "SELECT project_id, backend_id FROM project_backends ORDER BY project_id",
        &[],
        &mut |r| {
            out(Record::ProjectBackend {
                project: parsed(r, 0, "project id")?,
                backend: parsed(r, 1, "backend id")?,
            })
        },
    )?;
    let page_sql = format!(
        "SELECT {SECRET_COLUMNS}, stored, kek_id, read_project_access FROM secrets
         WHERE id > $1 ORDER BY id LIMIT $2"
    );
    let mut after = String::new();
    loop {
        let mut last = None;
        db.query(&page_sql, &args![after.as_str(), EXPORT_PAGE], &mut |r| {
            let meta = secret_from_row(r)?;
            last = Some(meta.id);
            out(Record::Secret {
                meta,
                stored: stored_from_row(r, 14)?,
                project_access: r.bool(16)?,
            })
        })?;
        match last {
            Some(id) => after = id.to_string(),
            None => break,
        }
    }
    db.query(
        "SELECT secret_id, user_id FROM secret_acl_users ORDER BY secret_id, user_id",
        &[],
        &mut |r| {
            out(Record::AclUser {
                secret: parsed(r, 0, "secret id")?,
                user: parsed(r, 1, "user id")?,
            })
        },
    )?;
    db.query(
        "SELECT secret_id, service, resource_type, resource_id FROM secret_consumers
         ORDER BY secret_id, service, resource_type, resource_id",
        &[],
        &mut |r| {
            out(Record::Consumer {
                secret: parsed(r, 0, "secret id")?,
                consumer: Consumer {
                    service: r.text(1)?,
                    resource_type: r.text(2)?,
                    resource_id: r.text(3)?,
                },
            })
        },
    )?;
    db.query(
        &format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"),
        &[],
        &mut |r| out(Record::Order(order_from_row(r)?)),
    )?;
    let heads = rows(
        db,
        &format!("SELECT {CONTAINER_COLUMNS} FROM containers ORDER BY id"),
        &[],
        container_from_row,
    )?;
    // Consumers travel as their own records, with their registration time.
    for k in heads {
        out(Record::Container(with_secret_refs(db, k)?))?;
    }
    db.query(
        "SELECT secret_id, meta_key, meta_value FROM secret_metadata ORDER BY secret_id, meta_key",
        &[],
        &mut |r| {
            out(Record::Metadatum {
                secret: parsed(r, 0, "secret id")?,
                key: r.text(1)?,
                value: r.text(2)?,
            })
        },
    )?;
    for (project, quotas, created) in super::quotas::all(db)? {
        out(Record::ProjectQuotas {
            project,
            quotas,
            created,
        })?;
    }
    for (container, consumer, created) in super::container_consumers::all(db)? {
        out(Record::ContainerConsumer {
            container,
            consumer,
            created,
        })?;
    }
    for (container, acl) in super::container_acls::all(db)? {
        out(Record::ContainerAcl { container, acl })?;
    }
    Ok(())
}
