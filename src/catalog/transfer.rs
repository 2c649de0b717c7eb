//! Moving a whole catalog to another (SQLite <-> PostgreSQL, or a backup
//! file), checked row by row against the snapshot that was copied.

use sha2::{Digest, Sha256};

use crate::backend::StoredSecret;
use crate::catalog::{Catalog, Counts, Record};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{SecretMeta, Timestamp};

/// What [`copy_verified`] moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows copied, every one found identical in the destination.
    pub rows: u64,
    /// The destination's counts afterwards.
    pub counts: Counts,
}

/// Replaces `dest`'s content with `source`'s (one transaction on each
/// side), then reads `dest` back and checks that it holds exactly the rows
/// of the snapshot that was copied, even if writers carried on in `source`.
/// A mismatch is `Integrity`. Authenticating the secrets under the master
/// KEKs is the caller's next step (it needs the configuration).
pub fn copy_verified(source: &dyn Catalog, dest: &dyn Catalog) -> Result<CopyReport> {
    let mut copied = Vec::new();
    dest.replace_with(&mut |sink| {
        source.export(&mut |row| {
            copied.push(digest(&row));
            sink(row)
        })
    })?;
    let mut found = Vec::with_capacity(copied.len());
    dest.export(&mut |row| {
        found.push(digest(&row));
        Ok(())
    })?;
    copied.sort_unstable();
    found.sort_unstable();
    if copied != found {
        let differing = copied
            .iter()
            .filter(|d| found.binary_search(d).is_err())
            .count()
            + found
                .iter()
                .filter(|d| copied.binary_search(d).is_err())
                .count();
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the destination does not hold what was copied ({} rows copied, {} found, {differing} differ)",
                copied.len(),
                found.len()
            ),
        ));
    }
    Ok(CopyReport {
        rows: copied.len() as u64,
        counts: dest.counts()?,
    })
}

/// A hash of every field of a row, each length-prefixed, so that two rows
/// hash alike only when they are alike.
fn digest(row: &Record) -> [u8; 32] {
    let mut h = Fields(Sha256::new());
    match row {
        Record::ProjectKek {
            backend,
            project,
            kek,
            created,
        } => {
            h.str("project_kek");
            h.str(backend.as_str());
            h.str(project.as_str());
            h.str(&kek.kek_id);
            h.str(&kek.master_fingerprint);
            h.bytes(&kek.wrapped);
            h.time(Some(*created));
        }
        Record::ProjectBackend { project, backend } => {
            h.str("project_backend");
            h.str(project.as_str());
            h.str(backend.as_str());
        }
        Record::Secret {
            meta,
            stored,
            project_access,
        } => {
            h.str("secret");
            h.meta(meta);
            h.stored(stored.as_ref());
            h.flag(*project_access);
        }
        Record::AclUser { secret, user } => {
            h.str("acl_user");
            h.str(&secret.to_string());
            h.str(user.as_str());
        }
        Record::Consumer { secret, consumer } => {
            h.str("consumer");
            h.str(&secret.to_string());
            h.str(&consumer.service);
            h.str(&consumer.resource_type);
            h.str(&consumer.resource_id);
        }
        Record::Order(o) => {
            h.str("order");
            h.str(&o.id.to_string());
            h.str(o.project_id.as_str());
            h.str(o.creator_id.as_str());
            h.str(o.order_type.as_str());
            h.str(o.status.as_str());
            h.opt(o.name.as_deref());
            h.str(&o.algorithm);
            h.int(o.bit_length.into());
            h.opt(o.mode.as_deref());
            h.opt(o.payload_content_type.map(|c| c.as_str()));
            h.time(o.expiration);
            h.opt(o.secret_id.map(|s| s.to_string()).as_deref());
            h.opt(o.container_id.map(|s| s.to_string()).as_deref());
            h.opt(o.error_code.map(|c| c.to_string()).as_deref());
            h.opt(o.error_reason.as_deref());
            h.time(Some(o.created));
            h.time(Some(o.updated));
        }
        Record::Container(c) => {
            h.str("container");
            h.str(&c.id.to_string());
            h.str(c.project_id.as_str());
            h.str(c.creator_id.as_str());
            h.opt(c.name.as_deref());
            h.str(c.container_type.as_str());
            h.str(c.status.as_str());
            h.int(c.secret_refs.len() as i64);
            for (name, secret) in &c.secret_refs {
                h.str(name);
                h.str(&secret.to_string());
            }
            h.time(Some(c.created));
            h.time(Some(c.updated));
        }
        Record::Metadatum { secret, key, value } => {
            h.str("metadatum");
            h.str(&secret.to_string());
            h.str(key);
            h.str(value);
        }
        Record::ProjectQuotas {
            project,
            quotas,
            created,
        } => {
            h.str("project_quotas");
            h.str(project.as_str());
            for r in crate::model::QuotaResource::ALL {
                h.opt(quotas.get(r).map(|v| v.to_string()).as_deref());
            }
            h.time(Some(*created));
        }
        Record::ContainerConsumer {
            container,
            consumer,
            created,
        } => {
            h.str("container_consumer");
            h.str(&container.to_string());
            h.str(&consumer.name);
            h.str(&consumer.url);
            h.time(Some(*created));
        }
        Record::ContainerAcl { container, acl } => {
            h.str("container_acl");
            h.str(&container.to_string());
            h.flag(acl.project_access);
            h.int(acl.users.len() as i64);
            for user in &acl.users {
                h.str(user.as_str());
            }
        }
    }
    h.0.finalize().into()
}

struct Fields(Sha256);

impl Fields {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.update([1]);
                self.str(s);
            }
            None => self.0.update([0]),
        }
    }

    fn int(&mut self, v: i64) {
        self.0.update(v.to_le_bytes());
    }

    fn flag(&mut self, v: bool) {
        self.0.update([u8::from(v)]);
    }

    fn time(&mut self, t: Option<Timestamp>) {
        match t {
            Some(t) => {
                self.0.update([1]);
                self.int(t.unix());
            }
            None => self.0.update([0]),
        }
    }

    fn stored(&mut self, s: Option<&StoredSecret>) {
        match s {
            Some(s) => {
                self.0.update([1]);
                self.bytes(&s.bytes);
                self.opt(s.kek_id.as_deref());
            }
            None => self.0.update([0]),
        }
    }

    fn meta(&mut self, m: &SecretMeta) {
        self.str(&m.id.to_string());
        self.str(m.project_id.as_str());
        self.opt(m.name.as_deref());
        self.opt(m.algorithm.as_deref());
        self.opt(m.bit_length.map(|b| b.to_string()).as_deref());
        self.opt(m.mode.as_deref());
        self.str(m.secret_type.as_str());
        self.time(m.expiration);
        self.time(Some(m.created));
        self.time(Some(m.updated));
        self.str(m.status.as_str());
        self.opt(m.content_type.map(|c| c.as_str()));
        self.str(m.creator_id.as_str());
        self.str(m.backend_id.as_str());
    }
}
