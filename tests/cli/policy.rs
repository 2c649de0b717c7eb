//! The policy roles through the command: what an observer, an auditor and a
//! creator may not do (and what they still may), and another project's
//! secrets looking not found rather than forbidden.

use crate::common::cli::{Keywarden, uuid_of};
use crate::{ALICE_CREATOR, AUDITOR, BOB_CREATOR, OBSERVER, OTHER_PROJECT_ADMIN};

#[test]
fn an_observer_cannot_store() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let line = kw.refused_unchanged_as(
        &OBSERVER,
        &["secret", "store", "--name", "o", "--payload", "o"],
        "Forbidden",
    );
    assert!(
        line.contains("Secret creation attempt not allowed"),
        "{line}"
    );
    // What an observer may do still works.
    assert_eq!(kw.payload_as(&OBSERVER, &href), "v");
}

#[test]
fn an_audit_user_cannot_read_a_payload() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let line = kw.refused_unchanged_as(
        &AUDITOR,
        &["secret", "get", &href, "--payload"],
        "Forbidden",
    );
    assert!(
        line.contains("Secret payload retrieval attempt not allowed"),
        "{line}"
    );
    let file = kw.path("audit.bin");
    kw.refused_unchanged_as(
        &AUDITOR,
        &["secret", "get", &href, "--file", file.to_str().unwrap()],
        "Forbidden",
    );
    assert!(!file.exists());
    // Metadata is what audit is for.
    assert_eq!(
        kw.field_as(&AUDITOR, &["secret", "get", &href], "Name"),
        "s"
    );
}

#[test]
fn a_creator_cannot_delete_another_users_secret() {
    let kw = Keywarden::new();
    let alices = kw.field_as(
        &ALICE_CREATOR,
        &["secret", "store", "--name", "a", "--payload", "alice's"],
        "Secret href",
    );
    let bobs = kw.field_as(
        &BOB_CREATOR,
        &["secret", "store", "--name", "b", "--payload", "bob's"],
        "Secret href",
    );
    let line = kw.refused_unchanged_as(&BOB_CREATOR, &["secret", "delete", &alices], "Forbidden");
    assert!(
        line.contains("Secret deletion attempt not allowed"),
        "{line}"
    );
    assert_eq!(kw.payload(&alices), "alice's");
    // Their own, yes; and a project admin may delete anyone's.
    assert_eq!(kw.ok_as(&BOB_CREATOR, &["secret", "delete", &bobs]), "");
    assert_eq!(kw.ok(&["secret", "delete", &alices]), "");
    assert_eq!(kw.ok(&["secret", "list"]), "");
}

#[test]
fn another_project_sees_not_found_not_forbidden() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let id = uuid_of(&href);
    for args in [
        &["secret", "get", &href, "--payload"][..],
        &["secret", "get", &href],
        &["secret", "delete", &href],
        &["secret", "update", &href, "x"],
    ] {
        let line = kw.refused_unchanged_as(&OTHER_PROJECT_ADMIN, args, "Not Found");
        assert!(!line.contains("Forbidden"), "{line}");
        // Indistinguishable from a secret that does not exist.
        let missing = "00000000-0000-4000-8000-000000000000";
        let mut absent: Vec<&str> = args.to_vec();
        absent[2] = missing;
        let absent_line = kw.refused_unchanged(&absent, "Not Found");
        assert_eq!(line.replace(id, missing), absent_line);
    }
    assert_eq!(kw.payload(&href), "v");
}
