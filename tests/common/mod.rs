//! Shared fixtures for the integration tests: a store in a temp dir and
//! request contexts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keywarden::backend::{MasterKek, SimpleCrypto};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{BackendId, ProjectId, UserId};
use keywarden::store::SecretStore;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: SecretStore,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::generate(dir.path().join("keywarden.db")).expect("config");
        let store = SecretStore::open(&config).expect("open store");
        Fixture { dir, config, store }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("keywarden.db")
    }

    pub fn reopen(&self) -> SecretStore {
        SecretStore::open(&self.config).expect("reopen store")
    }

    /// Row count of a table, read straight from the file.
    pub fn rows(&self, table: &str) -> i64 {
        raw_count(&self.db_path(), table)
    }
}

pub fn raw_count(db: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open raw");
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

pub fn ctx(user: &str, project: &str, roles: &[&str]) -> Context {
    Context::new(
        UserId::new(user).unwrap(),
        ProjectId::new(project).unwrap(),
        roles.iter().copied(),
    )
}

pub fn admin(project: &str) -> Context {
    ctx("admin-user", project, &["admin"])
}

/// Two SimpleCrypto backends under different master KEKs over one catalog.
pub fn two_backend_store(
    db: &Path,
    default: &str,
) -> (Arc<SqliteCatalog>, SecretStore, MasterKek, MasterKek) {
    let catalog = Arc::new(SqliteCatalog::open(db).unwrap());
    let a = MasterKek::generate().unwrap();
    let b = MasterKek::generate().unwrap();
    let store = build_two(&catalog, &a, &b, default);
    (catalog, store, a, b)
}

pub fn build_two(
    catalog: &Arc<SqliteCatalog>,
    a: &MasterKek,
    b: &MasterKek,
    default: &str,
) -> SecretStore {
    let dyn_cat: Arc<dyn Catalog> = catalog.clone();
    SecretStore::builder(dyn_cat.clone())
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-a").unwrap(),
            a,
            &[],
            dyn_cat.clone(),
        )))
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-b").unwrap(),
            b,
            &[],
            dyn_cat.clone(),
        )))
        .default_backend(BackendId::new(default).unwrap())
        .build()
        .unwrap()
}
