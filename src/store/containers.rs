//! Containers: named references to secrets of one project (Barbican's
//! generic, rsa and certificate containers), the consumers registered on
//! them, listing and deletion. Asymmetric orders make `rsa` containers too
//! (`orders.rs`).

use std::collections::BTreeSet;

use crate::catalog::{AclView, ContainerFilter, Write};
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Container, ContainerConsumer, ContainerId, ContainerType, Page, QuotaResource, SecretId,
    Status, Timestamp,
};
use crate::policy::{Entity, Target};
use crate::store::audit::audited;
use crate::store::{ListQuery, SecretStore, check_len};

/// A new container (Barbican's `POST /v1/containers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContainer {
    pub name: Option<String>,
    pub container_type: ContainerType,
    /// `(name, secret)`: the secrets it refers to. A generic container's
    /// references may have no name (stored as the empty name).
    pub secret_refs: Vec<(Option<String>, SecretId)>,
}

impl NewContainer {
    pub fn new(container_type: ContainerType) -> Self {
        NewContainer {
            name: None,
            container_type,
            secret_refs: Vec::new(),
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a named reference.
    pub fn secret_ref(mut self, name: impl Into<String>, secret: SecretId) -> Self {
        self.secret_refs.push((Some(name.into()), secret));
        self
    }
}

/// Barbican's container list parameters (`GET /v1/containers`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// A SQL LIKE pattern (`%`, `_`), ignoring ASCII case, as Barbican's
    /// `name.like()`; empty matches everything, as Barbican ignores it.
    pub name: Option<String>,
    pub container_type: Option<ContainerType>,
}

/// Reference names an `rsa` container takes (the first two are required).
const RSA_NAMES: [&str; 3] = ["public_key", "private_key", "private_key_passphrase"];
/// Reference names a `certificate` container takes (the first is required).
const CERTIFICATE_NAMES: [&str; 4] = [
    "certificate",
    "private_key",
    "private_key_passphrase",
    "intermediates",
];

/// Barbican's container consumer limits: name 1..=36, URL 1..=255.
const CONSUMER_NAME_MAX: usize = 36;
const CONSUMER_URL_MAX: usize = 255;

impl SecretStore {
    /// Creates a container of the caller's project (`containers:post`).
    /// Validated as Barbican validates: name at most 255 characters;
    /// reference names unique, and each secret referred to once; an `rsa`
    /// container takes `public_key`, `private_key` (both required) and
    /// `private_key_passphrase`; a `certificate` container `certificate`
    /// (required), `private_key`, `private_key_passphrase`,
    /// `intermediates`. Every secret must be one of the caller's project
    /// that the caller may read, else `NotFound` ("Secret provided for
    /// '<name>' doesn't exist."). Counted against the containers quota.
    pub fn store_container(&self, ctx: &Context, new: NewContainer) -> Result<ContainerId> {
        let id = ContainerId::new_random();
        audited(ctx, "containers:post", &id, || {
            self.authorize("containers:post", ctx, &self.project_target(ctx))?;
            validate_container(&new)?;
            let quota = self.quota_guard(&ctx.project_id, QuotaResource::Containers)?;
            let mut secret_refs = Vec::with_capacity(new.secret_refs.len());
            for (name, secret) in &new.secret_refs {
                let name = name.clone().unwrap_or_default();
                if !self.readable_own_secret(ctx, secret) {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!("Secret provided for '{name}' doesn't exist."),
                    ));
                }
                secret_refs.push((name, *secret));
            }
            let now = Timestamp::now();
            let container = Container {
                id,
                project_id: ctx.project_id.clone(),
                creator_id: ctx.user_id.clone(),
                name: new.name.clone(),
                container_type: new.container_type,
                status: Status::Active,
                secret_refs,
                consumers: Vec::new(),
                created: now,
                updated: now,
            };
            let mut batch = vec![Write::InsertContainer(container)];
            batch.extend(quota);
            self.catalog.apply(batch)?;
            Ok(id)
        })
    }

    /// A container of the caller's project (`container:get`).
    pub fn container(&self, ctx: &Context, id: &ContainerId) -> Result<Container> {
        audited(ctx, "container:get", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize("container:get", ctx, &container_target(ctx, &seen))?;
            Ok(seen.container)
        })
    }

    /// The caller's project's containers (`containers:get`).
    pub fn list_containers(
        &self,
        ctx: &Context,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<Container>> {
        self.list_containers_matching(
            ctx,
            &ContainerQuery {
                limit,
                offset,
                ..Default::default()
            },
        )
    }

    /// The caller's project's containers matching Barbican's list filters
    /// (`containers:get`), oldest first, paged as Barbican pages.
    pub fn list_containers_matching(
        &self,
        ctx: &Context,
        query: &ContainerQuery,
    ) -> Result<Page<Container>> {
        audited(ctx, "containers:list", &ctx.project_id, || {
            self.authorize("containers:get", ctx, &self.project_target(ctx))?;
            let q = ListQuery {
                limit: query.limit,
                offset: query.offset,
                ..Default::default()
            };
            let filter = ContainerFilter {
                name: query.name.clone().filter(|n| !n.is_empty()),
                container_type: query.container_type,
            };
            self.catalog.list_containers(
                &ctx.project_id,
                &filter,
                q.effective_limit(),
                q.effective_offset(),
            )
        })
    }

    /// Deletes a container; its secrets stay (`container:delete`).
    pub fn delete_container(&self, ctx: &Context, id: &ContainerId) -> Result<()> {
        audited(ctx, "container:delete", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize("container:delete", ctx, &container_target(ctx, &seen))?;
            self.catalog.apply(vec![Write::DeleteContainer(*id)])
        })
    }

    /// Adds a reference to an existing secret of the caller's project to a
    /// generic container (`container_secret:post`). Other types are
    /// refused ("Only 'generic' containers can be modified."); a secret the
    /// caller cannot read is `NotFound` ("Secret provided doesn't exist.");
    /// a reference of that name already there is `Conflict`.
    pub fn add_container_secret(
        &self,
        ctx: &Context,
        id: &ContainerId,
        name: Option<&str>,
        secret: &SecretId,
    ) -> Result<()> {
        audited(ctx, "container_secret:post", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize("container_secret:post", ctx, &container_target(ctx, &seen))?;
            if seen.container.container_type != ContainerType::Generic {
                return Err(Error::invalid(
                    "type",
                    "Only 'generic' containers can be modified.",
                ));
            }
            let name = name.unwrap_or("");
            check_len("name", Some(name))?;
            if !self.readable_own_secret(ctx, secret) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "Secret provided doesn't exist.",
                ));
            }
            self.catalog.apply(vec![Write::AddContainerSecret {
                id: *id,
                name: name.to_owned(),
                secret: *secret,
            }])
        })
    }

    /// Removes a reference from a container (`container_secret:delete`);
    /// `NotFound` ("Secret provided is not in the container") when it does
    /// not hold it.
    pub fn remove_container_secret(
        &self,
        ctx: &Context,
        id: &ContainerId,
        name: Option<&str>,
        secret: &SecretId,
    ) -> Result<()> {
        audited(ctx, "container_secret:delete", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize(
                "container_secret:delete",
                ctx,
                &container_target(ctx, &seen),
            )?;
            let name = name.unwrap_or("");
            if !self.readable_own_secret(ctx, secret) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "Secret '{name}' with reference '{}' doesn't exist.",
                        self.secret_href(secret)
                    ),
                ));
            }
            self.catalog.apply(vec![Write::RemoveContainerSecret {
                id: *id,
                name: name.to_owned(),
                secret: *secret,
            }])
        })
    }

    /// Registers a consumer on a container (`container_consumers:post`);
    /// registering it again changes nothing. Counted against the consumers
    /// quota of the container's project. Returns the container as it is
    /// now (with its consumers), as Barbican answers.
    pub fn add_container_consumer(
        &self,
        ctx: &Context,
        id: &ContainerId,
        consumer: ContainerConsumer,
    ) -> Result<Container> {
        audited(ctx, "container_consumers:post", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize(
                "container_consumers:post",
                ctx,
                &container_target(ctx, &seen),
            )?;
            validate_container_consumer(&consumer)?;
            let quota = self.quota_guard(&seen.container.project_id, QuotaResource::Consumers)?;
            let mut batch = vec![Write::AddContainerConsumer {
                id: *id,
                consumer,
                created: Timestamp::now(),
            }];
            batch.extend(quota);
            self.catalog.apply(batch)?;
            self.container_after_change(id)
        })
    }

    /// Removes a consumer from a container (`container_consumers:delete`);
    /// `NotFound` ("Consumer not found.") when it was not registered.
    /// Returns the container as it is now.
    pub fn remove_container_consumer(
        &self,
        ctx: &Context,
        id: &ContainerId,
        consumer: ContainerConsumer,
    ) -> Result<Container> {
        audited(ctx, "container_consumers:delete", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize(
                "container_consumers:delete",
                ctx,
                &container_target(ctx, &seen),
            )?;
            validate_container_consumer(&consumer)?;
            self.catalog
                .apply(vec![Write::RemoveContainerConsumer { id: *id, consumer }])?;
            self.container_after_change(id)
        })
    }

    /// One page of a container's consumers, oldest first
    /// (`container_consumers:get`), paged as Barbican pages.
    pub fn container_consumers(
        &self,
        ctx: &Context,
        id: &ContainerId,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<ContainerConsumer>> {
        audited(ctx, "container_consumers:get", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize(
                "container_consumers:get",
                ctx,
                &container_target(ctx, &seen),
            )?;
            let q = ListQuery {
                limit,
                offset,
                ..Default::default()
            };
            self.catalog
                .container_consumers(id, q.effective_limit(), q.effective_offset())
        })
    }

    /// The container as it is now, after a change the caller made.
    fn container_after_change(&self, id: &ContainerId) -> Result<Container> {
        self.catalog
            .container(id)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("container {id} not found")))
    }

    /// Whether `secret` is one of the caller's project that the caller may
    /// read: the secrets a container of that project may refer to.
    fn readable_own_secret(&self, ctx: &Context, secret: &SecretId) -> bool {
        self.visible_secret(ctx, secret, false)
            .ok()
            .filter(|row| row.meta.project_id == ctx.project_id)
            .is_some_and(|row| {
                self.authorize("secret:get", ctx, &super::secret_target(ctx, &row))
                    .is_ok()
            })
    }

    /// The container as the caller may see it: one of the caller's
    /// project, or one whose read ACL lists the caller; else not found.
    pub(super) fn visible_container(
        &self,
        ctx: &Context,
        id: &ContainerId,
    ) -> Result<SeenContainer> {
        let not_found = || Error::new(ErrorKind::NotFound, format!("container {id} not found"));
        let container = self.catalog.container(id)?.ok_or_else(not_found)?;
        let acl = self.catalog.container_acl(id)?.ok_or_else(not_found)?;
        let acl = AclView {
            project_access: acl.project_access,
            caller_listed: acl.users.contains(&ctx.user_id),
        };
        if container.project_id != ctx.project_id && !acl.caller_listed {
            return Err(not_found());
        }
        Ok(SeenContainer { container, acl })
    }
}

/// A container with its read ACL as it applies to the caller.
pub(super) struct SeenContainer {
    pub(super) container: Container,
    pub(super) acl: AclView,
}

pub(super) fn container_target<'a>(ctx: &'a Context, seen: &'a SeenContainer) -> Target<'a> {
    let c = &seen.container;
    Target::entity(Entity::Container, &c.project_id, &c.creator_id)
        .with_project_id(&ctx.project_id)
        .with_read_acl(
            Entity::Container,
            seen.acl.caller_listed,
            Some(seen.acl.project_access),
        )
}

/// Barbican's `ContainerValidator`.
fn validate_container(new: &NewContainer) -> Result<()> {
    check_len("name", new.name.as_deref())?;
    let mut names = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for (name, secret) in &new.secret_refs {
        let name = name.as_deref().unwrap_or("");
        check_len("secret_refs", Some(name))?;
        if !names.insert(name) {
            return Err(Error::invalid(
                "secret_refs",
                "Duplicate reference names are not allowed",
            ));
        }
        if !secrets.insert(*secret) {
            return Err(Error::invalid(
                "secret_refs",
                "Duplicate secret ids are not allowed",
            ));
        }
    }
    if new.secret_refs.is_empty() {
        return Ok(());
    }
    let (allowed, required, unsupported, missing): (&[&str], &[&str], &str, &str) =
        match new.container_type {
            ContainerType::Generic => return Ok(()),
            ContainerType::Rsa => (
                &RSA_NAMES,
                &RSA_NAMES[..2],
                "only 'private_key', 'public_key' and 'private_key_passphrase' reference names \
                 are allowed for RSA type",
                "The minimum required reference names are 'public_key' and'private_key' for \
                 RSA type",
            ),
            ContainerType::Certificate => (
                &CERTIFICATE_NAMES,
                &CERTIFICATE_NAMES[..1],
                "only 'private_key', 'certificate' , 'private_key_passphrase',  or \
                 'intermediates' reference names are allowed for Certificate type",
                "The minimum required reference name is 'certificate' for Certificate type",
            ),
        };
    if names.iter().any(|n| !allowed.contains(n)) {
        return Err(Error::invalid("secret_refs", unsupported));
    }
    if required.iter().any(|r| !names.contains(r)) {
        return Err(Error::invalid("secret_refs", missing));
    }
    Ok(())
}

/// Barbican's `ContainerConsumerValidator`: name 1 to 36 characters, URL
/// 1 to 255.
fn validate_container_consumer(c: &ContainerConsumer) -> Result<()> {
    for (field, v, max) in [
        ("name", &c.name, CONSUMER_NAME_MAX),
        ("URL", &c.url, CONSUMER_URL_MAX),
    ] {
        let n = v.chars().count();
        if n == 0 || n > max {
            return Err(Error::invalid(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    Ok(())
}
