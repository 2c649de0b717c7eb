//! The `keywarden` command, driven as an operator drives it (through the
//! shared harness, tests/common/cli.rs): the built binary, a fresh directory
//! per test, `--config` always explicit and the caller's `OS_*` /
//! `KEYWARDEN_CONFIG` variables removed, so nothing from the environment
//! running the tests leaks in.
//!
//! Covers the seed guide's "Test barbican functionality" and chapter 4
//! walkthrough (list, add, update, delete, key orders, asymmetric orders and
//! containers, §4.6 backup and restore), the operator commands (project-store,
//! kek rotate/prune, check, migrate), the policy roles, every refusal the
//! issue names (exit 1, one line on stderr, nothing on stdout, nothing
//! changed; most of them as tables in `refusals`), a backup taken while four
//! writers run, `keywarden volume …`, and the command on a PostgreSQL catalog.
//!
//! One test binary with a module per topic: each file under tests/ is a
//! link of its own.
#![cfg(feature = "cli")]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod backup;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
mod refusals;
mod volume;
mod walkthrough;

use std::collections::BTreeSet;

use common::cli::Who;

const OBSERVER: Who = Who {
    user: "olga",
    project: "default",
    roles: "observer",
};
const AUDITOR: Who = Who {
    user: "audrey",
    project: "default",
    roles: "audit",
};
const ALICE_CREATOR: Who = Who {
    user: "alice",
    project: "default",
    roles: "creator",
};
const BOB_CREATOR: Who = Who {
    user: "bob",
    project: "default",
    roles: "creator",
};
const OTHER_PROJECT_ADMIN: Who = Who {
    user: "mallory",
    project: "other",
    roles: "admin",
};

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}
