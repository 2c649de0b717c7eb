//! The policy matrix through SecretStore: each role × each action × own or
//! other project × creator of the object or not, against Barbican Queens'
//! default rules (reference §4.1), with our one improvement: another
//! project's object is not found rather than forbidden.
//!
//! The expectations are written out by hand from the rule text, not computed
//! by the evaluator under test.

mod common;

use common::{Fixture, Setup, ctx};
use keywarden::ErrorKind;
use keywarden::context::Context;
use keywarden::model::{Acl, SecretId};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, ListQuery, NewSecret};

conformance!(
    queens_matrix_with_not_found_for_other_projects,
    private_secret_hides_from_project_readers_but_not_creator_or_admin,
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    NotFound,
}
use Outcome::*;

const ROLES: [&str; 5] = ["admin", "creator", "observer", "audit", "none"];

/// (action, expected per role for [admin, creator, observer, audit, none])
/// when the caller is in the object's project and is / is not its creator.
/// Project-level actions (store, list, orders) have no "other project" case.
#[rustfmt::skip]
const OWN_PROJECT: [(&str, [Outcome; 5], [Outcome; 5]); 11] = [
    //                    as the object's creator                       as another user of the project
    ("secrets:post",     [Allowed, Allowed, Denied, Denied, Denied],              [Allowed, Allowed, Denied, Denied, Denied]),
    ("secrets:get",      [Allowed, Allowed, Allowed, Denied, Denied],                  [Allowed, Allowed, Allowed, Denied, Denied]),
    ("secret:get",       [Allowed, Allowed, Allowed, Allowed, Denied],                      [Allowed, Allowed, Allowed, Allowed, Denied]),
    ("secret:decrypt",   [Allowed, Allowed, Allowed, Denied, Denied],                  [Allowed, Allowed, Allowed, Denied, Denied]),
    ("secret:put",       [Allowed, Allowed, Denied, Denied, Denied],              [Allowed, Allowed, Denied, Denied, Denied]),
    ("secret:delete",    [Allowed, Allowed, Denied, Denied, Denied],              [Allowed, Denied, Denied, Denied, Denied]),
    ("orders:post",      [Allowed, Allowed, Denied, Denied, Denied],              [Allowed, Allowed, Denied, Denied, Denied]),
    ("orders:get",       [Allowed, Allowed, Allowed, Denied, Denied],                  [Allowed, Allowed, Allowed, Denied, Denied]),
    ("order:get",        [Allowed, Allowed, Allowed, Allowed, Denied],                      [Allowed, Allowed, Allowed, Allowed, Denied]),
    ("order:delete",     [Allowed, Denied, Denied, Denied, Denied],          [Allowed, Denied, Denied, Denied, Denied]),
    ("secret_acls:put_patch", [Allowed, Allowed, Denied, Denied, Denied],         [Allowed, Denied, Denied, Denied, Denied]),
];

/// Actions on an existing object: from another project they are not found.
const OBJECT_ACTIONS: [&str; 7] = [
    "secret:get",
    "secret:decrypt",
    "secret:put",
    "secret:delete",
    "order:get",
    "order:delete",
    "secret_acls:put_patch",
];

fn caller(role: &str, user: &str, project: &str) -> Context {
    let roles: &[&str] = if role == "none" { &[] } else { &[role] };
    ctx(user, project, roles)
}

fn outcome<T>(r: keywarden::Result<T>) -> Outcome {
    match r {
        Ok(_) => Allowed,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Denied,
        Err(e) if e.kind() == ErrorKind::NotFound => NotFound,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Runs `action` as `who` against fresh objects made by `owner`.
fn attempt(f: &Fixture, owner: &Context, who: &Context, action: &str) -> Outcome {
    let s = &f.store;
    let with_payload = |s: &keywarden::store::SecretStore| -> SecretId {
        s.store_secret(
            owner,
            NewSecret::new().payload_text("p", Some("text/plain"), None),
        )
        .unwrap()
    };
    match action {
        "secrets:post" => outcome(s.store_secret(who, NewSecret::new())),
        "secrets:get" => outcome(s.list_secrets(who, &ListQuery::default())),
        "secret:get" => outcome(s.secret(who, &with_payload(s))),
        "secret:decrypt" => outcome(s.payload(who, &with_payload(s))),
        "secret:put" => {
            let id = s.store_secret(owner, NewSecret::new()).unwrap();
            outcome(s.put_payload(who, &id, SecretBytes::copy_from(b"x"), "text/plain", None))
        }
        "secret:delete" => outcome(s.delete_secret(who, &with_payload(s), false)),
        "orders:post" => outcome(s.create_key(who, &KeyOrder::aes(128))),
        "orders:get" => outcome(s.list_orders(who, None, None)),
        "order:get" => {
            let o = s.create_key(owner, &KeyOrder::aes(128)).unwrap();
            outcome(s.order(who, &o.id))
        }
        "order:delete" => {
            let o = s.create_key(owner, &KeyOrder::aes(128)).unwrap();
            outcome(s.delete_order(who, &o.id))
        }
        "secret_acls:put_patch" => outcome(s.set_acl(who, &with_payload(s), Acl::default())),
        other => panic!("no driver for {other}"),
    }
}

fn queens_matrix_with_not_found_for_other_projects(setup: &Setup) {
    let f = Fixture::on(setup);
    // Objects are made by a creator-role user; the callers below reuse that
    // user id (is the creator) or another (is not).
    let owner = ctx("owner", "p1", &["creator"]);
    let mut checked = 0;
    for (action, as_creator, as_other) in OWN_PROJECT {
        for (i, role) in ROLES.iter().enumerate() {
            for (user, expected) in [("owner", as_creator[i]), ("someone", as_other[i])] {
                let who = caller(role, user, "p1");
                let got = attempt(&f, &owner, &who, action);
                assert_eq!(got, expected, "{action} as {role} {user} in own project");
                checked += 1;
                if OBJECT_ACTIONS.contains(&action) {
                    let outsider = caller(role, user, "p2");
                    let got = attempt(&f, &owner, &outsider, action);
                    assert_eq!(
                        got, NotFound,
                        "{action} as {role} {user} from another project"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 11 * 5 * 2 + 7 * 5 * 2);
}

fn private_secret_hides_from_project_readers_but_not_creator_or_admin(setup: &Setup) {
    let f = Fixture::on(setup);
    let owner = ctx("owner", "p1", &["creator"]);
    let id = f
        .store
        .store_secret(
            &owner,
            NewSecret::new().payload_text("p", Some("text/plain"), None),
        )
        .unwrap();
    f.store
        .set_acl(
            &owner,
            &id,
            Acl {
                users: vec![],
                project_access: false,
            },
        )
        .unwrap();
    for (who, expected) in [
        (ctx("owner", "p1", &["creator"]), Allowed),
        (ctx("boss", "p1", &["admin"]), Allowed),
        (ctx("peer", "p1", &["creator"]), Denied),
        (ctx("reader", "p1", &["observer"]), Denied),
    ] {
        assert_eq!(outcome(f.store.payload(&who, &id)), expected, "{who:?}");
    }
}
