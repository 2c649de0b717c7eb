//! The request context: who is asking, for which project, with which roles.

use crate::model::{ProjectId, UserId};

/// Who makes a request. Roles are compared case-insensitively, as Keystone does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub user_id: UserId,
    pub project_id: ProjectId,
    roles: Vec<String>,
}

impl Context {
    pub fn new(
        user_id: UserId,
        project_id: ProjectId,
        roles: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        let mut roles: Vec<String> = roles
            .into_iter()
            .map(|r| r.as_ref().trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        roles.sort();
        roles.dedup();
        Context {
            user_id,
            project_id,
            roles,
        }
    }

    /// Lower-cased, sorted, without duplicates.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}
