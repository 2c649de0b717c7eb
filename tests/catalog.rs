//! The two catalogs' schemas agree: after every migration, SQLite and
//! PostgreSQL are at the same version with the same tables, columns and
//! indexes (names and indexed columns), each read from the database's own
//! introspection. An index on one catalog only fails here.

mod common;

use std::collections::BTreeMap;

use keywarden::catalog::SqliteCatalog;

/// What a schema holds: version, columns by table, and (table, indexed
/// columns) by index name.
#[derive(Debug, PartialEq, Eq)]
struct Schema {
    version: u32,
    tables: BTreeMap<String, Vec<String>>,
    indexes: BTreeMap<String, (String, Vec<String>)>,
}

fn sqlite_schema() -> Schema {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let version = SqliteCatalog::open(&path)
        .unwrap()
        .schema_version()
        .unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let names = |sql: &str| -> Vec<(String, String)> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut tables = BTreeMap::new();
    for (table, _) in names(
        "SELECT name, name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ) {
        let mut columns: Vec<String> = c
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([&table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        columns.sort();
        tables.insert(table, columns);
    }
    // Indexes made by CREATE INDEX (those SQLite makes for a PRIMARY KEY or
    // UNIQUE constraint have no SQL of their own).
    let mut indexes = BTreeMap::new();
    for (index, table) in
        names("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    {
        let columns: Vec<String> = c
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .unwrap()
            .query_map([&index], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        indexes.insert(index, (table, columns));
    }
    Schema {
        version,
        tables,
        indexes,
    }
}

#[cfg(feature = "postgres")]
fn postgres_schema(kind: &common::Kind) -> Schema {
    use common::Raw;
    use keywarden::catalog::{CatalogLocation, PostgresCatalog};

    let dir = tempfile::tempdir().unwrap();
    let catalog = kind.fresh_catalog(dir.path());
    let CatalogLocation::Postgres(url) = &catalog else {
        panic!("a PostgreSQL location");
    };
    let version = PostgresCatalog::open(url)
        .unwrap()
        .schema_version()
        .unwrap();
    let Raw::Postgres(mut c) = Raw::open(&catalog) else {
        panic!("a PostgreSQL connection");
    };
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT c.table_name::text, c.column_name::text
             FROM information_schema.columns c
             JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
               AND c.table_name <> 'keywarden_schema'",
            &[],
        )
        .unwrap()
    {
        tables.entry(r.get(0)).or_default().push(r.get(1));
    }
    tables.values_mut().for_each(|columns| columns.sort());
    // Indexes made by CREATE INDEX, not those behind a constraint.
    let mut indexes = BTreeMap::new();
    for r in c
        .query(
            "SELECT indexname::text, tablename::text, indexdef FROM pg_indexes
             WHERE schemaname = current_schema() AND indexname NOT IN (
               SELECT conname FROM pg_constraint
               WHERE connamespace = current_schema()::regnamespace)",
            &[],
        )
        .unwrap()
    {
        // `CREATE INDEX name ON schema.table USING btree (a, b)`
        let def: String = r.get(2);
        let open = def.rfind('(').expect("indexed columns");
        let columns = def[open + 1..def.len() - 1]
            .split(", ")
            .map(str::to_owned)
            .collect();
        indexes.insert(r.get(0), (r.get(1), columns));
    }
    Schema {
        version,
        tables,
        indexes,
    }
}

#[test]
fn both_catalogs_have_one_schema() {
    let sqlite = sqlite_schema();
    assert!(sqlite.indexes.contains_key("secrets_by_kek"), "{sqlite:?}");
    #[cfg(feature = "postgres")]
    {
        // Under CI=true a missing PostgreSQL server fails here (never skips).
        let Some(kind) = common::Kind::postgres() else {
            return;
        };
        let postgres = postgres_schema(&kind);
        assert_eq!(sqlite.version, postgres.version, "schema versions");
        assert_eq!(sqlite.tables, postgres.tables, "tables and their columns");
        assert_eq!(
            sqlite.indexes, postgres.indexes,
            "indexes and their columns"
        );
    }
}
