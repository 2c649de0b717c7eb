//! Rules compiled for checking: `rule:` names resolved to indices, credential
//! names to fields, and the reference graph proven acyclic and shallow, so a
//! check is a walk over a small tree with no parsing, hashing or allocation.

use std::collections::HashMap;

use crate::context::Context;
use crate::error::{Error, Result};

use super::rule::{Piece, Rule, Subject, Template};
use super::target::Target;

/// How deep evaluation may recurse, counting nesting inside rules and the
/// hops through `rule:` references. Parsed rules nest at most
/// [`super::MAX_NESTING`] levels of `(`/`not`, which is well inside this.
pub(super) const MAX_EVAL_DEPTH: usize = 256;

#[derive(Clone, Debug)]
pub(super) struct Program {
    /// One root per rule, in the policy's rule order.
    roots: Vec<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Always,
    Never,
    Role(Template),
    Ref(usize),
    Literal { value: String, pattern: Template },
    Credential { field: Field, pattern: Template },
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
}

/// The credentials a [`Context`] carries.
#[derive(Clone, Copy, Debug)]
enum Field {
    UserId,
    ProjectId,
    Roles,
}

impl Program {
    pub(super) fn empty() -> Program {
        Program { roots: Vec::new() }
    }

    /// Compiles `rules` (names unique). Refuses `rule:` cycles and reference
    /// chains deeper than [`MAX_EVAL_DEPTH`].
    pub(super) fn compile(rules: &[(String, Rule)]) -> Result<Program> {
        let index: HashMap<&str, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.as_str(), i))
            .collect();
        let roots = rules
            .iter()
            .map(|(name, rule)| {
                lower(rule, &index, 0).ok_or_else(|| {
                    let msg = format!("rule `{name}` nests deeper than {MAX_EVAL_DEPTH}");
                    Error::invalid("policy", msg)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut walk = DepthWalk {
            roots: &roots,
            names: rules,
            state: vec![Visit::New; roots.len()],
            chain: Vec::new(),
        };
        for i in 0..roots.len() {
            walk.visit(i, 0)?;
        }
        Ok(Program { roots })
    }

    /// Evaluates rule `index`; an index out of range (not one this program
    /// handed out) denies.
    pub(super) fn check(&self, index: usize, ctx: &Context, target: &Target<'_>) -> bool {
        self.roots
            .get(index)
            .is_some_and(|root| self.eval(root, ctx, target))
    }

    fn eval(&self, node: &Node, ctx: &Context, target: &Target<'_>) -> bool {
        match node {
            Node::Always => true,
            Node::Never => false,
            Node::Role(pattern) => ctx
                .roles()
                .iter()
                .any(|role| matches(pattern, target, role, true)),
            Node::Ref(i) => self.check(*i, ctx, target),
            Node::Literal { value, pattern } => matches(pattern, target, value, false),
            Node::Credential { field, pattern } => match field {
                Field::UserId => matches(pattern, target, ctx.user_id.as_str(), false),
                Field::ProjectId => matches(pattern, target, ctx.project_id.as_str(), false),
                Field::Roles => ctx
                    .roles()
                    .iter()
                    .any(|role| matches(pattern, target, role, true)),
            },
            Node::Not(inner) => !self.eval(inner, ctx, target),
            Node::And(nodes) => nodes.iter().all(|n| self.eval(n, ctx, target)),
            Node::Or(nodes) => nodes.iter().any(|n| self.eval(n, ctx, target)),
        }
    }
}

/// Whether `pattern`, substituted from `target`, equals `candidate`; false
/// when a key is missing (oslo: `KeyError` during `%` ⇒ the check fails).
/// Compares piece by piece instead of building the substituted string.
fn matches(pattern: &Template, target: &Target<'_>, candidate: &str, fold_case: bool) -> bool {
    let mut rest = candidate;
    let mut all_keys_present = true;
    let mut equal = true;
    for piece in pattern.pieces() {
        let text = match piece {
            Piece::Text(t) => t.as_str(),
            Piece::Key(k) => match target.get(k) {
                Some(v) => v,
                None => {
                    all_keys_present = false;
                    break;
                }
            },
        };
        let head = rest.get(..text.len());
        let same = match head {
            Some(h) if fold_case => h.eq_ignore_ascii_case(text),
            Some(h) => h == text,
            None => false,
        };
        if !same {
            equal = false;
            break;
        }
        rest = &rest[text.len()..];
    }
    all_keys_present && equal && rest.is_empty()
}

/// `None` when `rule` nests deeper than [`MAX_EVAL_DEPTH`] (only a hand-built
/// rule can: the parser stops far earlier).
fn lower(rule: &Rule, index: &HashMap<&str, usize>, depth: usize) -> Option<Node> {
    if depth >= MAX_EVAL_DEPTH {
        return None;
    }
    let all = |rules: &[Rule]| -> Option<Box<[Node]>> {
        rules.iter().map(|r| lower(r, index, depth + 1)).collect()
    };
    Some(match rule {
        Rule::Always => Node::Always,
        Rule::Never => Node::Never,
        Rule::Role(pattern) => Node::Role(pattern.clone()),
        // oslo would evaluate the `default` rule for an unknown name (its
        // rules dict falls back to it); failing closed is the safer reading.
        Rule::Ref(name) => index
            .get(name.as_str())
            .map_or(Node::Never, |&i| Node::Ref(i)),
        Rule::Match { subject, pattern } => match subject {
            Subject::Literal(value) => Node::Literal {
                value: value.clone(),
                pattern: pattern.clone(),
            },
            Subject::Credential(name) => match credential_field(name) {
                Some(field) => Node::Credential {
                    field,
                    pattern: pattern.clone(),
                },
                None => Node::Never,
            },
        },
        Rule::Not(inner) => Node::Not(Box::new(lower(inner, index, depth + 1)?)),
        Rule::And(rules) => Node::And(all(rules)?),
        Rule::Or(rules) => Node::Or(all(rules)?),
    })
}

/// The aliases oslo.context and Barbican put in the credentials dict:
/// Barbican passes `user`, `project` and `roles`; oslo.context's
/// `to_policy_values` adds `user_id`, `project_id` and the old `tenant`.
fn credential_field(name: &str) -> Option<Field> {
    match name {
        "user_id" | "user" => Some(Field::UserId),
        "project_id" | "project" | "tenant" => Some(Field::ProjectId),
        "roles" => Some(Field::Roles),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Visit {
    New,
    OnStack,
    /// The rule's evaluation depth, references included.
    Done(usize),
}

/// Depth-first walk over the reference graph: finds cycles and measures how
/// deep evaluating each rule recurses. Its own recursion is bounded by the
/// same depth it measures.
struct DepthWalk<'a> {
    roots: &'a [Node],
    names: &'a [(String, Rule)],
    state: Vec<Visit>,
    chain: Vec<usize>,
}

impl DepthWalk<'_> {
    fn visit(&mut self, i: usize, base: usize) -> Result<usize> {
        let depth = match self.state[i] {
            Visit::Done(depth) => depth,
            Visit::OnStack => return Err(self.cycle(i)),
            Visit::New => {
                self.state[i] = Visit::OnStack;
                self.chain.push(i);
                let roots = self.roots;
                let depth = self.depth(&roots[i], base)?;
                self.chain.pop();
                self.state[i] = Visit::Done(depth);
                depth
            }
        };
        if base + depth > MAX_EVAL_DEPTH {
            return Err(self.too_deep(i));
        }
        Ok(depth)
    }

    fn depth(&mut self, node: &Node, base: usize) -> Result<usize> {
        if base >= MAX_EVAL_DEPTH {
            let last = self.chain.last().copied().unwrap_or(0);
            return Err(self.too_deep(last));
        }
        let below = match node {
            Node::Ref(j) => self.visit(*j, base + 1)?,
            Node::Not(inner) => self.depth(inner, base + 1)?,
            Node::And(nodes) | Node::Or(nodes) => {
                let mut deepest = 0;
                for n in nodes.iter() {
                    deepest = deepest.max(self.depth(n, base + 1)?);
                }
                deepest
            }
            Node::Always
            | Node::Never
            | Node::Role(_)
            | Node::Literal { .. }
            | Node::Credential { .. } => 0,
        };
        Ok(below + 1)
    }

    fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", |(n, _)| n.as_str())
    }

    fn cycle(&self, i: usize) -> Error {
        let start = self.chain.iter().position(|&c| c == i).unwrap_or(0);
        let path: Vec<&str> = self.chain[start..]
            .iter()
            .chain(std::iter::once(&i))
            .map(|&c| self.name(c))
            .collect();
        let msg = format!(
            "rule `{}` refers back to itself: {}",
            self.name(i),
            path.join(" -> ")
        );
        Error::invalid("policy", msg)
    }

    fn too_deep(&self, i: usize) -> Error {
        let msg = format!(
            "rule `{}` nests too deeply through `rule:` references (limit {MAX_EVAL_DEPTH})",
            self.name(i)
        );
        Error::invalid("policy", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProjectId, UserId};

    fn ctx(user: &str, project: &str, roles: &[&str]) -> Context {
        Context::new(
            UserId::new(user).unwrap(),
            ProjectId::new(project).unwrap(),
            roles.iter().copied(),
        )
    }

    /// Compiles `("r", text)` plus `extra` rules and checks rule `r`.
    fn check_with(text: &str, extra: &[(&str, &str)], ctx: &Context, target: &Target<'_>) -> bool {
        let mut rules = vec![("r".to_owned(), Rule::parse(text).unwrap())];
        for (n, t) in extra {
            rules.push(((*n).to_owned(), Rule::parse(t).unwrap()));
        }
        Program::compile(&rules).unwrap().check(0, ctx, target)
    }

    fn check(text: &str, ctx: &Context, target: &Target<'_>) -> bool {
        check_with(text, &[], ctx, target)
    }

    #[test]
    fn constants() {
        let c = ctx("u", "p", &[]);
        let t = Target::new();
        assert!(check("@", &c, &t));
        assert!(check("", &c, &t));
        assert!(!check("!", &c, &t));
        assert!(check("not !", &c, &t));
    }

    #[test]
    fn role_is_case_insensitive_and_may_substitute() {
        let c = ctx("u", "p", &["Admin", "key-manager:service-admin"]);
        let t = Target::new().with("wanted", "ADMIN");
        assert!(check("role:admin", &c, &t));
        assert!(check("role:ADMIN", &c, &t));
        assert!(check("role:key-manager:service-admin", &c, &t));
        assert!(!check("role:creator", &c, &t));
        assert!(check("role:%(wanted)s", &c, &t));
        assert!(!check("role:%(missing)s", &c, &t));
        assert!(!check("role:adm", &c, &t));
        assert!(!check("role:", &c, &t));
    }

    #[test]
    fn credential_checks() {
        let c = ctx("alice", "p1", &["observer"]);
        let t = Target::new()
            .with("target.secret.project_id", "p1")
            .with("target.secret.creator_id", "alice")
            .with("other", "p2")
            .with("role", "OBSERVER");
        for name in ["project", "project_id", "tenant"] {
            assert!(check(
                &format!("{name}:%(target.secret.project_id)s"),
                &c,
                &t
            ));
            assert!(!check(&format!("{name}:%(other)s"), &c, &t));
            assert!(!check(&format!("{name}:%(missing)s"), &c, &t));
        }
        for name in ["user", "user_id"] {
            assert!(check(
                &format!("{name}:%(target.secret.creator_id)s"),
                &c,
                &t
            ));
            assert!(!check(
                &format!("{name}:%(target.secret.project_id)s"),
                &c,
                &t
            ));
            assert!(check(&format!("{name}:alice"), &c, &t));
        }
        assert!(check("roles:observer", &c, &t));
        assert!(check("roles:%(role)s", &c, &t));
        assert!(!check("roles:admin", &c, &t));
        // Credentials we do not carry never match, even an empty pattern.
        assert!(!check("domain_id:%(target.secret.project_id)s", &c, &t));
        assert!(!check("is_admin:True", &c, &t));
        assert!(check("not is_admin:True", &c, &t));
        // Literal text on the match side, and a prefix is not a match.
        assert!(check("project_id:p1", &c, &t));
        assert!(!check("project_id:p", &c, &t));
        assert!(!check("project_id:p11", &c, &t));
        assert!(check(
            "project_id:p%(one)s",
            &c,
            &Target::new().with("one", "1")
        ));
    }

    #[test]
    fn literal_checks() {
        let c = ctx("u", "p", &[]);
        let t = Target::new()
            .with("target.secret.read", "read")
            .with("target.secret.read_project_access", "False")
            .with("enforce_new_defaults", "True")
            .with("n", "0");
        assert!(check("'read':%(target.secret.read)s", &c, &t));
        assert!(!check("'write':%(target.secret.read)s", &c, &t));
        assert!(check(
            "'False':%(target.secret.read_project_access)s",
            &c,
            &t
        ));
        assert!(!check(
            "'True':%(target.secret.read_project_access)s",
            &c,
            &t
        ));
        assert!(check("True:%(enforce_new_defaults)s", &c, &t));
        assert!(!check("False:%(enforce_new_defaults)s", &c, &t));
        assert!(check("-0:%(n)s", &c, &t));
        // Case matters for literals, as in Python.
        assert!(!check(
            "'false':%(target.secret.read_project_access)s",
            &c,
            &t
        ));
        // A missing key fails the check, so `not` of it passes (oslo does the
        // same; Barbican relies on it when a secret has no ACL).
        let bare = Target::new();
        assert!(!check(
            "'False':%(target.secret.read_project_access)s",
            &c,
            &bare
        ));
        assert!(check(
            "not 'False':%(target.secret.read_project_access)s",
            &c,
            &bare
        ));
        assert!(check("'x':x", &c, &bare));
        assert!(check("'':''", &c, &bare));
    }

    #[test]
    fn references() {
        let c = ctx("u", "p", &["admin"]);
        let t = Target::new();
        assert!(check_with("rule:a", &[("a", "role:admin")], &c, &t));
        assert!(!check_with("rule:a", &[("a", "role:creator")], &c, &t));
        assert!(!check_with("rule:nope", &[], &c, &t));
        assert!(check_with("not rule:nope", &[], &c, &t));
        assert!(check_with("rule:a", &[("a", "rule:b"), ("b", "@")], &c, &t));
    }

    #[test]
    fn cycles_are_refused() {
        let compile = |rules: &[(&str, &str)]| {
            let rules: Vec<(String, Rule)> = rules
                .iter()
                .map(|(n, t)| ((*n).to_owned(), Rule::parse(t).unwrap()))
                .collect();
            Program::compile(&rules).map(|_| ())
        };
        let e = compile(&[("a", "rule:a")]).unwrap_err();
        assert!(e.context().contains("a -> a"), "{e}");
        let e = compile(&[
            ("x", "@"),
            ("a", "role:x or rule:b"),
            ("b", "not (rule:c)"),
            ("c", "rule:x and rule:a"),
        ])
        .unwrap_err();
        assert!(e.context().contains("a -> b -> c -> a"), "{e}");
        // Diamonds are fine.
        compile(&[
            ("a", "rule:b and rule:c"),
            ("b", "rule:d"),
            ("c", "rule:d"),
            ("d", "@"),
        ])
        .unwrap();
    }

    #[test]
    fn long_reference_chains_are_refused_not_overflowed() {
        let n = 100_000;
        let mut rules: Vec<(String, Rule)> = (0..n)
            .map(|i| (format!("r{i}"), Rule::Ref(format!("r{}", i + 1))))
            .collect();
        rules.push((format!("r{n}"), Rule::Always));
        let e = Program::compile(&rules).unwrap_err();
        assert!(e.context().contains("nests too deeply"), "{e}");

        let ok: Vec<(String, Rule)> = (0..100)
            .map(|i| {
                (
                    format!("r{i}"),
                    if i == 99 {
                        Rule::Always
                    } else {
                        Rule::Ref(format!("r{}", i + 1))
                    },
                )
            })
            .collect();
        let program = Program::compile(&ok).unwrap();
        assert!(program.check(0, &ctx("u", "p", &[]), &Target::new()));
    }

    #[test]
    fn hand_built_deep_rules_are_refused() {
        let mut rule = Rule::Always;
        for _ in 0..10_000 {
            rule = Rule::Not(Box::new(rule));
        }
        let rules = vec![("deep".to_owned(), rule)];
        assert!(Program::compile(&rules).is_err());
        // Drop the deep rule iteratively: its recursive drop is the one
        // thing here that could overflow a test thread's stack.
        let (_, mut rule) = rules.into_iter().next().unwrap();
        while let Rule::Not(inner) = rule {
            rule = *inner;
        }
    }
}
