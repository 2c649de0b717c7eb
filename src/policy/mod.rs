//! Access policy in Barbican's terms: named rules in the oslo.policy rule
//! language, Barbican's Queens defaults, and operator overrides from a
//! `policy.yaml`/`policy.json`.
//!
//! ```text
//! secret:decrypt: rule:secret_decrypt_non_private_read or rule:secret_acl_read
//! secret_project_match: project:%(target.secret.project_id)s
//! secret_acl_read: 'read':%(target.secret.read)s
//! ```
//!
//! The language, as oslo.policy defines it (oslo_policy/_parser.py,
//! _checks.py):
//!
//! - `@` always passes, `!` never; the empty rule `""` always passes.
//! - `role:NAME`: the caller holds the role, compared case-insensitively.
//! - `rule:NAME`: the named rule passes. An unknown name fails (oslo would
//!   fall back to the `default` rule; failing closed is safer).
//! - `KIND:MATCH`: `MATCH` is substituted from the [`Target`] (`%(key)s`; a
//!   missing key fails the check), then compared with `KIND`. A quoted
//!   `KIND` (`'read'`) or a bare Python literal (`True`, `False`, `None`, an
//!   integer) is compared as the text Python's `str()` gives it, as oslo's
//!   `GenericCheck` does with `ast.literal_eval`. Any other `KIND` names a
//!   credential: `user_id`/`user`, `project_id`/`project`/`tenant`, `roles`
//!   (compared case-insensitively, as our [`Context`] keeps roles
//!   lower-cased); other credential names never match.
//! - `not` binds tighter than `and`, which binds tighter than `or`;
//!   parentheses group. Keywords are case-insensitive.
//!
//! Unlike oslo.policy, text that cannot be read is refused when the policy
//! is built, never turned into a silent deny at check time; so are `rule:`
//! cycles, which oslo would only discover as a `RecursionError`, and nesting
//! deeper than [`MAX_NESTING`].

mod defaults;
mod file;
mod parse;
mod program;
mod rule;
mod target;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};

pub use self::parse::MAX_NESTING;
pub use self::rule::{Piece, Rule, Subject, Template};
pub use self::target::{Entity, Target, python_bool};

use self::program::Program;

/// The rule oslo.policy falls back to for an action that has none.
pub const DEFAULT_RULE: &str = "default";

/// A set of named rules, compiled for checking.
///
/// Cheap to check (rule names are resolved when the policy is built) and
/// immutable while shared; [`Policy::apply_overrides`] rebuilds it whole.
#[derive(Clone)]
pub struct Policy {
    rules: Vec<(String, Rule)>,
    index: HashMap<String, usize>,
    program: Program,
}

impl Policy {
    /// No rules: every check is denied.
    pub fn empty() -> Self {
        Policy {
            rules: Vec::new(),
            index: HashMap::new(),
            program: Program::empty(),
        }
    }

    /// Barbican's Queens defaults (barbican 6.0.0), plus the legacy secret
    /// consumer rules; see `defaults.rs` for the sources.
    pub fn barbican_queens() -> Self {
        let rules = defaults::QUEENS.iter().map(|(name, text)| {
            // Invariant: the defaults are constants, each parsed and checked
            // for dangling references by `every_default_parses_and_round_trips`.
            let rule = Rule::parse(text).expect("built-in default rule parses");
            (*name, rule)
        });
        // Invariant: the defaults are acyclic and shallow (same test).
        Policy::from_rules(rules).expect("built-in default policy compiles")
    }

    /// A policy of exactly these rules; a later rule of the same name
    /// replaces an earlier one. Refuses cycles and over-deep nesting.
    pub fn from_rules<N: Into<String>>(rules: impl IntoIterator<Item = (N, Rule)>) -> Result<Self> {
        let mut merged: Vec<(String, Rule)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (name, rule) in rules {
            let name = name.into();
            match index.get(&name) {
                Some(&i) => merged[i].1 = rule,
                None => {
                    index.insert(name.clone(), merged.len());
                    merged.push((name, rule));
                }
            }
        }
        let program = Program::compile(&merged)?;
        Ok(Policy {
            rules: merged,
            index,
            program,
        })
    }

    /// The Queens defaults with the overrides in the policy file at `path`
    /// on top, as Barbican loads its `policy.yaml` over the rules registered
    /// in code.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let msg = format!("cannot read policy file {}", path.display());
            Error::new(ErrorKind::Config, msg).with_source(e)
        })?;
        let mut policy = Policy::barbican_queens();
        policy.apply_overrides(&text).map_err(|e| {
            let msg = format!("policy file {} refused", path.display());
            Error::new(ErrorKind::Config, msg).with_source(e)
        })?;
        Ok(policy)
    }

    /// Replaces or adds the rules in `text`, a policy file (YAML mapping or
    /// JSON object of rule name to rule text; see `file.rs` for the accepted
    /// subset). All or nothing: on any error the policy is unchanged.
    ///
    /// As in oslo.policy, a rule given as `""` always passes.
    pub fn apply_overrides(&mut self, text: &str) -> Result<()> {
        let entries = file::parse_policy_file(text)?;
        let mut rules = self.rules.clone();
        for entry in entries {
            let rule = Rule::parse(&entry.text).map_err(|e| {
                let msg = format!(
                    "policy file line {}, rule `{}`: {}",
                    entry.line,
                    entry.name,
                    e.context()
                );
                Error::invalid("policy", msg)
            })?;
            rules.push((entry.name, rule));
        }
        *self = Policy::from_rules(rules)?;
        Ok(())
    }

    /// Whether `ctx` may do `action` on `target`. An action without a rule
    /// uses the [`DEFAULT_RULE`] if there is one, else is denied (as oslo).
    pub fn check(&self, action: &str, ctx: &Context, target: &Target<'_>) -> bool {
        let index = self
            .index
            .get(action)
            .or_else(|| self.index.get(DEFAULT_RULE));
        index.is_some_and(|&i| self.program.check(i, ctx, target))
    }

    /// [`Policy::check`] as a `PermissionDenied` error, worded as Barbican's 403.
    pub fn enforce(&self, action: &str, ctx: &Context, target: &Target<'_>) -> Result<()> {
        if self.check(action, ctx, target) {
            return Ok(());
        }
        let msg = format!(
            "{} attempt not allowed - please review your user/project privileges",
            operation_name(action)
        );
        Err(Error::new(ErrorKind::PermissionDenied, msg))
    }

    /// The rule named `name`, if the policy has one.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.index.get(name).map(|&i| &self.rules[i].1)
    }

    /// Every rule, in definition order (overrides of existing rules keep
    /// their place; new ones come last).
    pub fn rules(&self) -> impl Iterator<Item = (&str, &Rule)> {
        self.rules.iter().map(|(name, rule)| (name.as_str(), rule))
    }

    /// The policy as a YAML policy file that [`Policy::apply_overrides`]
    /// reads back to the same rules.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for (name, rule) in &self.rules {
            out.push_str(&file::quote(name));
            out.push_str(": ");
            out.push_str(&file::quote(&rule.to_string()));
            out.push('\n');
        }
        out
    }
}

impl Default for Policy {
    /// Barbican's Queens defaults.
    fn default() -> Self {
        Policy::barbican_queens()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.rules.iter().map(|(n, r)| (n, r.to_string())))
            .finish()
    }
}

/// The operation names Barbican's controllers put in their 403 messages
/// (`handle_exceptions(u._('Secret creation'))` and friends); other actions
/// are named by their rule.
fn operation_name(action: &str) -> &str {
    match action {
        "secrets:post" => "Secret creation",
        "secrets:get" => "Secret(s) retrieval",
        "secret:get" => "Secret retrieval",
        "secret:decrypt" => "Secret payload retrieval",
        "secret:put" => "Secret update",
        "secret:delete" => "Secret deletion",
        "orders:post" => "Order creation",
        "orders:get" => "Order(s) retrieval",
        "order:get" => "Order retrieval",
        "order:delete" => "Order deletion",
        "containers:post" => "Container creation",
        "containers:get" => "Container(s) retrieval",
        "container:get" => "Container retrieval",
        "container:delete" => "Container deletion",
        "secret_acls:put_patch" => "ACL update",
        "secret_acls:get" => "ACL retrieval",
        "secret_acls:delete" => "ACL deletion",
        "secret_consumers:post" => "Secret consumer creation",
        "secret_consumers:delete" => "Secret consumer deletion",
        "secret_consumers:get" => "Secret consumers retrieval",
        "secretstore_preferred:post" => "Setting preferred secret store",
        "secretstore_preferred:delete" => "Removing preferred secret store",
        "secretstores:get" => "Secret stores retrieval",
        other => other,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::model::{ProjectId, UserId};

    fn ctx(roles: &[&str]) -> Context {
        Context::new(
            UserId::new("u1").unwrap(),
            ProjectId::new("p1").unwrap(),
            roles.iter().copied(),
        )
    }

    #[test]
    fn overrides_replace_and_add() {
        let mut policy = Policy::barbican_queens();
        let before = policy.rules().count();
        let project = ProjectId::new("p1").unwrap();
        let user = UserId::new("someone").unwrap();
        let target = Target::entity(Entity::Secret, &project, &user);
        assert!(policy.check("secret:decrypt", &ctx(&["observer"]), &target));

        policy
            .apply_overrides(
                "# tighten decrypt\n\
                 \"secret:decrypt\": \"rule:secret_project_admin\"\n\
                 'my:action': 'role:ops and not rule:audit'\n",
            )
            .unwrap();
        assert!(!policy.check("secret:decrypt", &ctx(&["observer"]), &target));
        assert!(policy.check("secret:decrypt", &ctx(&["admin"]), &target));
        assert!(policy.check("my:action", &ctx(&["ops"]), &target));
        assert!(!policy.check("my:action", &ctx(&["ops", "audit"]), &target));
        assert_eq!(policy.rules().count(), before + 1);
        let names: Vec<&str> = policy.rules().map(|(n, _)| n).collect();
        assert_eq!(names.last(), Some(&"my:action"));

        // A rule others refer to: the change reaches them.
        policy.apply_overrides("admin: role:superuser\n").unwrap();
        assert!(!policy.check("secret:decrypt", &ctx(&["admin"]), &target));
        assert!(policy.check("secret:decrypt", &ctx(&["superuser"]), &target));
    }

    #[test]
    fn json_overrides() {
        let mut policy = Policy::barbican_queens();
        policy
            .apply_overrides(r#"{"secrets:get": "@", "secrets:post": ""}"#)
            .unwrap();
        assert!(policy.check("secrets:get", &ctx(&[]), &Target::new()));
        assert!(policy.check("secrets:post", &ctx(&[]), &Target::new()));
    }

    #[test]
    fn bad_overrides_leave_the_policy_unchanged() {
        let original = Policy::barbican_queens();
        let cases = [
            // The first line is fine, the second is not: neither applies.
            (
                "\"secret:get\": \"@\"\n\"secret:put\": \"rule:a and\"\n",
                "line 2, rule `secret:put`",
            ),
            ("\"secret:get\": \"@\"\nnot yaml at all\n", "line 2"),
            (
                "\"secret:get\": \"@\"\nadmin: rule:all_users\n",
                "refers back to itself",
            ),
            ("a: rule:b\nb: rule:a\n", "a -> b -> a"),
            ("\"secret:get\": \"@\"\n\"secret:get\": \"!\"\n", "twice"),
            ("x: http:https://evil.example\n", "external"),
        ];
        for (text, expected) in cases {
            let mut policy = original.clone();
            let e = policy.apply_overrides(text).expect_err(text);
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.context().contains(expected), "{text:?}: {e}");
            assert_eq!(policy.to_yaml(), original.to_yaml(), "{text:?}");
        }
    }

    #[test]
    fn default_rule_covers_unknown_actions() {
        let mut policy = Policy::empty();
        assert!(!policy.check("anything", &ctx(&["admin"]), &Target::new()));
        policy.apply_overrides("default: role:admin\n").unwrap();
        assert!(policy.check("anything", &ctx(&["admin"]), &Target::new()));
        assert!(!policy.check("anything", &ctx(&["observer"]), &Target::new()));
        // A rule reference to an unknown name does not fall back to it.
        policy.apply_overrides("x: rule:missing\n").unwrap();
        assert!(!policy.check("x", &ctx(&["admin"]), &Target::new()));
    }

    #[test]
    fn enforce_says_permission_denied() {
        let policy = Policy::barbican_queens();
        let e = policy
            .enforce("secrets:post", &ctx(&["observer"]), &Target::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(
            e.context()
                .starts_with("Secret creation attempt not allowed")
        );
        policy
            .enforce("secrets:post", &ctx(&["creator"]), &Target::new())
            .unwrap();
    }

    #[test]
    fn yaml_export_reads_back() {
        let queens = Policy::barbican_queens();
        let mut copy = Policy::empty();
        copy.apply_overrides(&queens.to_yaml()).unwrap();
        let a: Vec<_> = queens.rules().collect();
        let b: Vec<_> = copy.rules().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn from_file_layers_over_the_defaults() {
        let dir = std::env::temp_dir().join(format!("keywarden-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.yaml");
        std::fs::write(&path, "\"secret:delete\": \"rule:admin\"\n").unwrap();
        let policy = Policy::from_file(&path).unwrap();
        assert_eq!(
            policy.rule("secret:delete"),
            Some(&Rule::Ref("admin".into()))
        );
        assert!(policy.rule("secret:get").is_some());

        std::fs::write(&path, "\"secret:delete\": \"rule:admin or\"\n").unwrap();
        let e = Policy::from_file(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.to_string().contains("secret:delete"));

        let e = Policy::from_file(dir.join("missing.yaml")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
