//! Barbican's default policy, Queens release.
//!
//! Transcribed from barbican 6.0.0 (Queens), barbican/common/policies/*.py
//! (base, secrets, secretmeta, orders, containers, consumers, acls, quotas,
//! secretstores, transportkeys). The certificate-authority rules (cas.py)
//! are left out: keywarden has no CA API.
//!
//! Barbican's request handlers pass the caller as `{roles, user, project}`
//! and the object as `target.<kind>.*` (barbican/api/controllers/__init__.py);
//! see [`super::Target`].

/// `(name, rule text)`, in the order Barbican registers them.
pub(super) const QUEENS: &[(&str, &str)] = &[
    // base.py
    ("admin", "role:admin"),
    ("observer", "role:observer"),
    ("creator", "role:creator"),
    ("audit", "role:audit"),
    ("service_admin", "role:key-manager:service-admin"),
    // Barbican's credentials carry `project`, not `project_id`, so there this
    // never matched (hence the name); ours carry both aliases.
    ("admin_or_user_does_not_work", "project_id:%(project_id)s"),
    ("admin_or_user", "rule:admin or project_id:%(project_id)s"),
    ("admin_or_creator", "rule:admin or rule:creator"),
    (
        "all_but_audit",
        "rule:admin or rule:observer or rule:creator",
    ),
    (
        "all_users",
        "rule:admin or rule:observer or rule:creator or rule:audit or rule:service_admin",
    ),
    (
        "secret_project_match",
        "project:%(target.secret.project_id)s",
    ),
    ("secret_acl_read", "'read':%(target.secret.read)s"),
    (
        "secret_private_read",
        "'False':%(target.secret.read_project_access)s",
    ),
    ("secret_creator_user", "user:%(target.secret.creator_id)s"),
    (
        "container_project_match",
        "project:%(target.container.project_id)s",
    ),
    ("container_acl_read", "'read':%(target.container.read)s"),
    (
        "container_private_read",
        "'False':%(target.container.read_project_access)s",
    ),
    (
        "container_creator_user",
        "user:%(target.container.creator_id)s",
    ),
    (
        "secret_non_private_read",
        "rule:all_users and rule:secret_project_match and not rule:secret_private_read",
    ),
    (
        "secret_decrypt_non_private_read",
        "rule:all_but_audit and rule:secret_project_match and not rule:secret_private_read",
    ),
    (
        "container_non_private_read",
        "rule:all_users and rule:container_project_match and not rule:container_private_read",
    ),
    (
        "secret_project_admin",
        "rule:admin and rule:secret_project_match",
    ),
    (
        "secret_project_creator",
        "rule:creator and rule:secret_project_match and rule:secret_creator_user",
    ),
    (
        "container_project_admin",
        "rule:admin and rule:container_project_match",
    ),
    (
        "container_project_creator",
        "rule:creator and rule:container_project_match and rule:container_creator_user",
    ),
    // base.py since Barbican 14.0.0.
    (
        "secret_project_creator_role",
        "rule:creator and rule:secret_project_match",
    ),
    (
        "container_project_creator_role",
        "rule:creator and rule:container_project_match",
    ),
    // secrets.py
    (
        "secret:decrypt",
        "rule:secret_decrypt_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    (
        "secret:get",
        "rule:secret_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    (
        "secret:put",
        "rule:admin_or_creator and rule:secret_project_match",
    ),
    (
        "secret:delete",
        "rule:secret_project_admin or rule:secret_project_creator",
    ),
    ("secrets:post", "rule:admin_or_creator"),
    ("secrets:get", "rule:all_but_audit"),
    // secretmeta.py. Queens' own rules (`rule:all_but_audit` to read,
    // `rule:admin_or_creator` to write) never looked at the secret; Barbican
    // fixed that in 14.0.0 ("Fix secret metadata access rules"). These are
    // the fixed legacy rules (the `deprecated_secret_meta_*` check strings of
    // Barbican 23), which Barbican applies with enforce_new_defaults off.
    (
        "secret_meta:get",
        "rule:secret_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    (
        "secret_meta:post",
        "rule:secret_project_admin or rule:secret_project_creator or \
         (rule:secret_project_creator_role and rule:secret_non_private_read)",
    ),
    (
        "secret_meta:put",
        "rule:secret_project_admin or rule:secret_project_creator or \
         (rule:secret_project_creator_role and rule:secret_non_private_read)",
    ),
    (
        "secret_meta:delete",
        "rule:secret_project_admin or rule:secret_project_creator or \
         (rule:secret_project_creator_role and rule:secret_non_private_read)",
    ),
    // orders.py
    ("orders:post", "rule:admin_or_creator"),
    ("orders:get", "rule:all_but_audit"),
    ("order:get", "rule:all_users"),
    ("order:put", "rule:admin_or_creator"),
    ("order:delete", "rule:admin"),
    // containers.py
    ("containers:post", "rule:admin_or_creator"),
    ("containers:get", "rule:all_but_audit"),
    (
        "container:get",
        "rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "container:delete",
        "rule:container_project_admin or rule:container_project_creator",
    ),
    // Queens had `rule:admin` for these two; Barbican 23's legacy
    // (deprecated-rule) check strings, which the store enforces, let the
    // container's creator and, while it is not private, the project's
    // creators change a generic container's references.
    (
        "container_secret:post",
        "rule:container_project_admin or rule:container_project_creator or \
         (rule:container_project_creator_role and rule:container_non_private_read)",
    ),
    (
        "container_secret:delete",
        "rule:container_project_admin or rule:container_project_creator or \
         (rule:container_project_creator_role and rule:container_non_private_read)",
    ),
    // consumers.py (container consumers)
    (
        "consumer:get",
        "rule:admin or rule:observer or rule:creator or rule:audit or \
         rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "consumers:get",
        "rule:admin or rule:observer or rule:creator or rule:audit or \
         rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "consumers:post",
        "rule:admin or rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "consumers:delete",
        "rule:admin or rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    // acls.py
    (
        "secret_acls:put_patch",
        "rule:secret_project_admin or rule:secret_project_creator",
    ),
    (
        "secret_acls:delete",
        "rule:secret_project_admin or rule:secret_project_creator",
    ),
    (
        "secret_acls:get",
        "rule:all_but_audit and rule:secret_project_match",
    ),
    (
        "container_acls:put_patch",
        "rule:container_project_admin or rule:container_project_creator",
    ),
    (
        "container_acls:delete",
        "rule:container_project_admin or rule:container_project_creator",
    ),
    (
        "container_acls:get",
        "rule:all_but_audit and rule:container_project_match",
    ),
    // quotas.py
    ("quotas:get", "rule:all_users"),
    ("project_quotas:get", "rule:service_admin"),
    ("project_quotas:put", "rule:service_admin"),
    ("project_quotas:delete", "rule:service_admin"),
    // secretstores.py
    ("secretstores:get", "rule:admin"),
    ("secretstores:get_global_default", "rule:admin"),
    ("secretstores:get_preferred", "rule:admin"),
    ("secretstore_preferred:post", "rule:admin"),
    ("secretstore_preferred:delete", "rule:admin"),
    ("secretstore:get", "rule:admin"),
    // transportkeys.py
    ("transport_key:get", "rule:all_users"),
    ("transport_key:delete", "rule:admin"),
    ("transport_keys:get", "rule:all_users"),
    ("transport_keys:post", "rule:admin"),
    // Secret consumers are not in Queens (added in Wallaby). These are their
    // legacy defaults: the `deprecated_secret_consumers_{get,post,delete}`
    // DeprecatedRule check strings in barbican/common/policies/consumers.py
    // (master), the rules Barbican falls back to with enforce_new_defaults off.
    (
        "secret_consumers:get",
        "rule:secret_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    (
        "secret_consumers:post",
        "rule:secret_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    (
        "secret_consumers:delete",
        "rule:secret_non_private_read or rule:secret_project_creator or \
         rule:secret_project_admin or rule:secret_acl_read",
    ),
    // Container consumers: Queens names them `consumers:*` (above) and
    // checks no container; Barbican 23 renamed them `container_consumers:*`
    // with these legacy (deprecated-rule) check strings, which the store
    // enforces.
    (
        "container_consumers:get",
        "rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "container_consumers:post",
        "rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
    (
        "container_consumers:delete",
        "rule:container_non_private_read or rule:container_project_creator or \
         rule:container_project_admin or rule:container_acl_read",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::context::Context;
    use crate::model::{ProjectId, UserId};
    use crate::policy::{Entity, Policy, Rule, Target};

    #[test]
    fn every_default_parses_and_round_trips() {
        let mut names = HashSet::new();
        for (name, text) in QUEENS {
            assert!(names.insert(*name), "{name} twice");
            let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(Rule::parse(&rule.to_string()).unwrap(), rule, "{name}");
            // Every reference resolves: a typo here would silently deny.
            let mut refs = Vec::new();
            collect_refs(&rule, &mut refs);
            for r in refs {
                assert!(QUEENS.iter().any(|(n, _)| *n == r), "{name} -> {r}");
            }
        }
        assert_eq!(QUEENS.len(), 78);
    }

    fn collect_refs<'a>(rule: &'a Rule, out: &mut Vec<&'a str>) {
        match rule {
            Rule::Ref(name) => out.push(name),
            Rule::Not(inner) => collect_refs(inner, out),
            Rule::And(rules) | Rule::Or(rules) => rules.iter().for_each(|r| collect_refs(r, out)),
            _ => {}
        }
    }

    #[test]
    fn queens_secret_delete_is_admin_or_own_creator() {
        // Not `rule:admin_or_creator and rule:secret_project_match`: that
        // text is Queens' `secret:put`.
        let policy = Policy::barbican_queens();
        assert_eq!(
            policy.rule("secret:delete").map(Rule::to_string).as_deref(),
            Some("rule:secret_project_admin or rule:secret_project_creator")
        );
        assert_eq!(
            policy.rule("secret:put").map(Rule::to_string).as_deref(),
            Some("rule:admin_or_creator and rule:secret_project_match")
        );
    }

    // ---- the policy matrix ----

    const Y: bool = true;
    const N: bool = false;

    /// Expected Queens outcomes, derived by hand from the rule text above for
    /// an object without ACLs (so `secret_acl_read` is false and
    /// `not secret_private_read` true). Columns: (same project, caller made
    /// it), (same project, someone else made it), (other project, caller made
    /// it), (other project, someone else made it).
    const MATRIX: &[(&str, &str, [bool; 4])] = &[
        // admin_or_creator: no target check at all.
        ("secrets:post", "admin", [Y, Y, Y, Y]),
        ("secrets:post", "creator", [Y, Y, Y, Y]),
        ("secrets:post", "observer", [N, N, N, N]),
        ("secrets:post", "audit", [N, N, N, N]),
        ("secrets:post", "none", [N, N, N, N]),
        // all_but_audit.
        ("secrets:get", "admin", [Y, Y, Y, Y]),
        ("secrets:get", "creator", [Y, Y, Y, Y]),
        ("secrets:get", "observer", [Y, Y, Y, Y]),
        ("secrets:get", "audit", [N, N, N, N]),
        ("secrets:get", "none", [N, N, N, N]),
        // secret_non_private_read (all_users and project match) wins for
        // every role in the project; nothing passes outside it.
        ("secret:get", "admin", [Y, Y, N, N]),
        ("secret:get", "creator", [Y, Y, N, N]),
        ("secret:get", "observer", [Y, Y, N, N]),
        ("secret:get", "audit", [Y, Y, N, N]),
        ("secret:get", "none", [N, N, N, N]),
        // As secret:get with all_but_audit: audit sees metadata, not payload.
        ("secret:decrypt", "admin", [Y, Y, N, N]),
        ("secret:decrypt", "creator", [Y, Y, N, N]),
        ("secret:decrypt", "observer", [Y, Y, N, N]),
        ("secret:decrypt", "audit", [N, N, N, N]),
        ("secret:decrypt", "none", [N, N, N, N]),
        // admin_or_creator and project match.
        ("secret:put", "admin", [Y, Y, N, N]),
        ("secret:put", "creator", [Y, Y, N, N]),
        ("secret:put", "observer", [N, N, N, N]),
        ("secret:put", "audit", [N, N, N, N]),
        ("secret:put", "none", [N, N, N, N]),
        // project admin, or a creator deleting their own secret.
        ("secret:delete", "admin", [Y, Y, N, N]),
        ("secret:delete", "creator", [Y, N, N, N]),
        ("secret:delete", "observer", [N, N, N, N]),
        ("secret:delete", "audit", [N, N, N, N]),
        ("secret:delete", "none", [N, N, N, N]),
        // admin_or_creator.
        ("orders:post", "admin", [Y, Y, Y, Y]),
        ("orders:post", "creator", [Y, Y, Y, Y]),
        ("orders:post", "observer", [N, N, N, N]),
        ("orders:post", "audit", [N, N, N, N]),
        ("orders:post", "none", [N, N, N, N]),
        // all_but_audit.
        ("orders:get", "admin", [Y, Y, Y, Y]),
        ("orders:get", "creator", [Y, Y, Y, Y]),
        ("orders:get", "observer", [Y, Y, Y, Y]),
        ("orders:get", "audit", [N, N, N, N]),
        ("orders:get", "none", [N, N, N, N]),
        // all_users, with no project check in Queens (the store's project
        // scoping is what keeps other projects' orders out).
        ("order:get", "admin", [Y, Y, Y, Y]),
        ("order:get", "creator", [Y, Y, Y, Y]),
        ("order:get", "observer", [Y, Y, Y, Y]),
        ("order:get", "audit", [Y, Y, Y, Y]),
        ("order:get", "none", [N, N, N, N]),
        // admin, again without a project check.
        ("order:delete", "admin", [Y, Y, Y, Y]),
        ("order:delete", "creator", [N, N, N, N]),
        ("order:delete", "observer", [N, N, N, N]),
        ("order:delete", "audit", [N, N, N, N]),
        ("order:delete", "none", [N, N, N, N]),
        // As secret:delete.
        ("secret_acls:put_patch", "admin", [Y, Y, N, N]),
        ("secret_acls:put_patch", "creator", [Y, N, N, N]),
        ("secret_acls:put_patch", "observer", [N, N, N, N]),
        ("secret_acls:put_patch", "audit", [N, N, N, N]),
        ("secret_acls:put_patch", "none", [N, N, N, N]),
        // all_but_audit and project match.
        ("secret_acls:get", "admin", [Y, Y, N, N]),
        ("secret_acls:get", "creator", [Y, Y, N, N]),
        ("secret_acls:get", "observer", [Y, Y, N, N]),
        ("secret_acls:get", "audit", [N, N, N, N]),
        ("secret_acls:get", "none", [N, N, N, N]),
    ];

    const ROLES: [&str; 5] = ["admin", "creator", "observer", "audit", "none"];
    const ACTIONS: [&str; 12] = [
        "secrets:post",
        "secrets:get",
        "secret:get",
        "secret:decrypt",
        "secret:put",
        "secret:delete",
        "orders:post",
        "orders:get",
        "order:get",
        "order:delete",
        "secret_acls:put_patch",
        "secret_acls:get",
    ];

    fn caller(role: &str) -> Context {
        let roles: &[&str] = if role == "none" { &[] } else { &[role] };
        Context::new(
            UserId::new("caller").unwrap(),
            ProjectId::new("project-a").unwrap(),
            roles.iter().copied(),
        )
    }

    #[test]
    fn policy_matrix() {
        let mut covered = HashSet::new();
        for (action, role, _) in MATRIX {
            assert!(covered.insert((*action, *role)), "{action} {role} twice");
        }
        for action in ACTIONS {
            for role in ROLES {
                assert!(covered.contains(&(action, role)), "{action} {role} missing");
            }
        }
        assert_eq!(MATRIX.len(), ACTIONS.len() * ROLES.len());

        let policy = Policy::barbican_queens();
        let same = ProjectId::new("project-a").unwrap();
        let other = ProjectId::new("project-b").unwrap();
        let me = UserId::new("caller").unwrap();
        let someone = UserId::new("someone-else").unwrap();
        let columns = [
            (&same, &me),
            (&same, &someone),
            (&other, &me),
            (&other, &someone),
        ];
        let mut failures = Vec::new();
        for (action, role, expected) in MATRIX {
            let ctx = caller(role);
            let entity = if action.starts_with("order") {
                Entity::Order
            } else {
                Entity::Secret
            };
            for ((project, creator), want) in columns.iter().zip(expected) {
                let target = Target::entity(entity, project, creator).with_project_id(project);
                let got = policy.check(action, &ctx, &target);
                if got != *want {
                    failures.push(format!(
                        "{action} as {role}, project {project}, creator {creator}: got {got}, want {want}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn acls_and_private_secrets() {
        let policy = Policy::barbican_queens();
        let project = ProjectId::new("project-a").unwrap();
        let elsewhere = ProjectId::new("project-b").unwrap();
        let owner = UserId::new("owner").unwrap();
        let observer = caller("observer");
        let creator = caller("creator");
        let outsider = caller("none");

        // A private secret (read ACL with project_access False, caller not
        // listed): only the owner-creator and project admins read it.
        let private = Target::entity(Entity::Secret, &project, &owner).with_read_acl(
            Entity::Secret,
            false,
            Some(false),
        );
        assert!(!policy.check("secret:decrypt", &observer, &private));
        assert!(!policy.check("secret:get", &creator, &private));
        assert!(policy.check("secret:decrypt", &caller("admin"), &private));
        let own_private = Target::entity(Entity::Secret, &project, &creator.user_id).with_read_acl(
            Entity::Secret,
            false,
            Some(false),
        );
        assert!(policy.check("secret:decrypt", &creator, &own_private));

        // Listed in the read ACL: readable even from another project and
        // without any role, private or not.
        let listed = Target::entity(Entity::Secret, &elsewhere, &owner).with_read_acl(
            Entity::Secret,
            true,
            Some(false),
        );
        assert!(policy.check("secret:decrypt", &outsider, &listed));
        assert!(policy.check("secret:get", &outsider, &listed));
        assert!(policy.check("secret_consumers:post", &outsider, &listed));
        assert!(!policy.check("secret:delete", &outsider, &listed));
        assert!(!policy.check("secret:put", &outsider, &listed));

        // project_access True is not private.
        let open = Target::entity(Entity::Secret, &project, &owner).with_read_acl(
            Entity::Secret,
            false,
            Some(true),
        );
        assert!(policy.check("secret:decrypt", &observer, &open));
    }

    #[test]
    fn other_defaults_spot_checks() {
        let policy = Policy::barbican_queens();
        let project = ProjectId::new("project-a").unwrap();
        let owner = UserId::new("owner").unwrap();
        let container = Target::entity(Entity::Container, &project, &owner);
        let none = Target::new();
        let service_admin = Context::new(
            UserId::new("svc").unwrap(),
            ProjectId::new("ops").unwrap(),
            ["key-manager:service-admin"],
        );
        assert!(policy.check("project_quotas:put", &service_admin, &none));
        assert!(!policy.check("project_quotas:put", &caller("admin"), &none));
        assert!(policy.check("quotas:get", &caller("audit"), &none));
        assert!(policy.check("container:get", &caller("audit"), &container));
        // Container consumers: `rule:audit` alone lists them, anywhere;
        // registering one needs the container's project (or an ACL).
        let foreign = ProjectId::new("project-b").unwrap();
        let foreign_container = Target::entity(Entity::Container, &foreign, &owner);
        assert!(policy.check("consumers:get", &caller("audit"), &foreign_container));
        assert!(!policy.check("consumers:post", &caller("audit"), &foreign_container));
        assert!(policy.check("consumers:post", &caller("audit"), &container));
        assert!(!policy.check("container:delete", &caller("creator"), &container));
        assert!(policy.check("container:delete", &caller("admin"), &container));
        assert!(policy.check("secretstores:get", &caller("admin"), &none));
        assert!(!policy.check("transport_keys:post", &caller("creator"), &none));
        // admin_or_user: the request's project_id keyword.
        let p = caller("none").project_id.clone();
        assert!(policy.check(
            "admin_or_user",
            &caller("none"),
            &Target::new().with_project_id(&p)
        ));
        // No rule and no `default` rule: denied.
        assert!(!policy.check("no:such_action", &caller("admin"), &none));
    }

    #[test]
    fn secret_meta_rules_look_at_the_secret() {
        // Barbican 14's fix: Queens' `rule:admin_or_creator` let a creator
        // of any project write any secret's metadata.
        let policy = Policy::barbican_queens();
        let project = ProjectId::new("project-a").unwrap();
        let elsewhere = ProjectId::new("project-b").unwrap();
        let owner = UserId::new("owner").unwrap();
        let open = Target::entity(Entity::Secret, &project, &owner).with_read_acl(
            Entity::Secret,
            false,
            Some(true),
        );
        let private = Target::entity(Entity::Secret, &project, &owner).with_read_acl(
            Entity::Secret,
            false,
            Some(false),
        );
        let foreign = Target::entity(Entity::Secret, &elsewhere, &owner).with_read_acl(
            Entity::Secret,
            false,
            Some(true),
        );
        for write in ["secret_meta:post", "secret_meta:put", "secret_meta:delete"] {
            assert!(policy.check(write, &caller("creator"), &open), "{write}");
            assert!(
                !policy.check(write, &caller("creator"), &private),
                "{write}"
            );
            assert!(
                !policy.check(write, &caller("creator"), &foreign),
                "{write}"
            );
            assert!(!policy.check(write, &caller("observer"), &open), "{write}");
            assert!(policy.check(write, &caller("admin"), &private), "{write}");
        }
        assert!(policy.check("secret_meta:get", &caller("audit"), &open));
        assert!(!policy.check("secret_meta:get", &caller("admin"), &foreign));
        let container = Target::entity(Entity::Container, &project, &owner).with_read_acl(
            Entity::Container,
            false,
            Some(true),
        );
        let foreign_container = Target::entity(Entity::Container, &elsewhere, &owner)
            .with_read_acl(Entity::Container, false, Some(true));
        for action in [
            "container_consumers:get",
            "container_consumers:post",
            "container_consumers:delete",
        ] {
            assert!(
                policy.check(action, &caller("audit"), &container),
                "{action}"
            );
            assert!(
                !policy.check(action, &caller("admin"), &foreign_container),
                "{action}"
            );
        }
        assert!(policy.check("container_secret:post", &caller("creator"), &container));
        assert!(!policy.check("container_secret:post", &caller("observer"), &container));
    }
}
