//! What a policy check is about: the flat key/value map rules substitute
//! with `%(key)s`.
//!
//! Barbican builds it per request as `{"target": {"secret": {...}}}` plus the
//! request's keyword arguments, then flattens it to keys such as
//! `target.secret.project_id` (barbican/api/controllers/__init__.py). Every
//! value is the `str()` of what Barbican would put there, so booleans are
//! `"True"`/`"False"`.

use std::borrow::Cow;

use crate::model::{ProjectId, UserId};

/// The object a request acts on, as key/value pairs.
///
/// Small and borrowed: building one for a secret is one allocation and no
/// copies of the ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target<'a> {
    entries: Vec<(&'static str, Cow<'a, str>)>,
}

/// Which kind of object a target describes; picks the `target.<kind>.` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    Secret,
    Container,
    Order,
}

impl Entity {
    /// `target.<kind>.project_id`: the project that owns the object.
    pub fn project_id_key(self) -> &'static str {
        self.keys().project_id
    }

    /// `target.<kind>.creator_id`: the user who created it.
    pub fn creator_id_key(self) -> &'static str {
        self.keys().creator_id
    }

    /// `target.<kind>.read`: `"read"` when the caller is one of the users of
    /// the object's `read` ACL, absent otherwise.
    pub fn read_key(self) -> &'static str {
        self.keys().read
    }

    /// `target.<kind>.read_project_access`: the `read` ACL's project-access
    /// flag, `"True"`/`"False"`; absent when the object has no `read` ACL.
    pub fn read_project_access_key(self) -> &'static str {
        self.keys().read_project_access
    }

    fn keys(self) -> &'static EntityKeys {
        match self {
            Entity::Secret => &SECRET_KEYS,
            Entity::Container => &CONTAINER_KEYS,
            Entity::Order => &ORDER_KEYS,
        }
    }
}

impl<'a> Target<'a> {
    /// An empty target: checks that substitute anything fail.
    pub fn new() -> Self {
        Target::default()
    }

    /// The owner and creator of an object: `target.<kind>.project_id` and
    /// `target.<kind>.creator_id`.
    pub fn entity(entity: Entity, project_id: &'a ProjectId, creator_id: &'a UserId) -> Self {
        let keys = entity.keys();
        let mut entries = Vec::with_capacity(5);
        entries.push((keys.project_id, Cow::Borrowed(project_id.as_str())));
        entries.push((keys.creator_id, Cow::Borrowed(creator_id.as_str())));
        Target { entries }
    }

    /// Adds what the object's `read` ACL says about the caller, as Barbican's
    /// `ACLMixin.get_acl_dict_for_user` does: `read` when the caller is listed
    /// among the ACL's users, and the project-access flag when the ACL has one.
    pub fn with_read_acl(
        self,
        entity: Entity,
        caller_is_listed: bool,
        project_access: Option<bool>,
    ) -> Self {
        let keys = entity.keys();
        let mut target = self;
        if caller_is_listed {
            target = target.with(keys.read, "read");
        }
        if let Some(flag) = project_access {
            target = target.with(keys.read_project_access, python_bool(flag));
        }
        target
    }

    /// The request's `project_id` keyword (used by `admin_or_user`).
    pub fn with_project_id(self, project_id: &'a ProjectId) -> Self {
        self.with("project_id", project_id.as_str())
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn with(mut self, key: &'static str, value: impl Into<Cow<'a, str>>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: &'static str, value: impl Into<Cow<'a, str>>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value for `key`. A linear scan: targets hold a handful of keys.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Python's `str()` of a bool, which is what a policy rule compares with.
pub fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

struct EntityKeys {
    project_id: &'static str,
    creator_id: &'static str,
    read: &'static str,
    read_project_access: &'static str,
}

const SECRET_KEYS: EntityKeys = EntityKeys {
    project_id: "target.secret.project_id",
    creator_id: "target.secret.creator_id",
    read: "target.secret.read",
    read_project_access: "target.secret.read_project_access",
};

const CONTAINER_KEYS: EntityKeys = EntityKeys {
    project_id: "target.container.project_id",
    creator_id: "target.container.creator_id",
    read: "target.container.read",
    read_project_access: "target.container.read_project_access",
};

const ORDER_KEYS: EntityKeys = EntityKeys {
    project_id: "target.order.project_id",
    creator_id: "target.order.creator_id",
    read: "target.order.read",
    read_project_access: "target.order.read_project_access",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_barbican_keys() {
        let project = ProjectId::new("p1").unwrap();
        let user = UserId::new("u1").unwrap();
        let t = Target::entity(Entity::Secret, &project, &user)
            .with_read_acl(Entity::Secret, true, Some(false))
            .with_project_id(&project);
        assert_eq!(t.get("target.secret.project_id"), Some("p1"));
        assert_eq!(t.get("target.secret.creator_id"), Some("u1"));
        assert_eq!(t.get("target.secret.read"), Some("read"));
        assert_eq!(t.get("target.secret.read_project_access"), Some("False"));
        assert_eq!(t.get("project_id"), Some("p1"));
        assert_eq!(t.get("target.container.project_id"), None);
        assert_eq!(t.len(), 5);

        let unlisted = Target::entity(Entity::Container, &project, &user).with_read_acl(
            Entity::Container,
            false,
            None,
        );
        assert_eq!(unlisted.get("target.container.read"), None);
        assert_eq!(unlisted.get("target.container.read_project_access"), None);
        assert_eq!(unlisted.get("target.container.creator_id"), Some("u1"));
    }

    #[test]
    fn set_replaces() {
        let t = Target::new().with("k", "a").with("k", String::from("b"));
        assert_eq!(t.get("k"), Some("b"));
        assert_eq!(t.len(), 1);
        assert!(Target::new().is_empty());
    }
}
