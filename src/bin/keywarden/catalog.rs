//! `keywarden catalog copy`, and what the other commands need to handle a
//! shared (PostgreSQL) catalog: init, backup and restore.

use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;
use keywarden::catalog::CatalogLocation;
use keywarden::catalog::{self, Catalog, SqliteCatalog, copy_verified};
use keywarden::config::Config;
use keywarden::store::SecretStore;
use keywarden::{Error, ErrorKind};

use crate::admin::write_new_private_file;
use crate::{Cli, CliResult, Failure, load_config, progress, progress_done};

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Copy every row of one catalog into another (SQLite <-> PostgreSQL),
    /// then check that the destination holds exactly those rows and that
    /// every secret there authenticates under the config's master KEKs.
    Copy {
        /// The catalog to read: `sqlite:PATH` or a `postgresql://` URL.
        #[arg(long)]
        from: String,
        /// The catalog to write (created when missing).
        #[arg(long)]
        to: String,
        /// Replace a destination that already holds rows.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cli: &Cli, cmd: &CatalogCommand) -> CliResult<String> {
    match cmd {
        CatalogCommand::Copy { from, to, force } => copy(&cli.config, from, to, *force),
    }
}

fn copy(config_path: &Path, from: &str, to: &str, force: bool) -> CliResult<String> {
    let config = load_config(config_path)?;
    let from = CatalogLocation::parse(from, None)?;
    let to = CatalogLocation::parse(to, None)?;
    if from == to {
        return Err(Failure::Usage(format!(
            "--from and --to are the same catalog ({from})"
        )));
    }
    let source = catalog::open_existing(&from)?;
    // The config's keys must open the source before anything is written.
    store_over(&config, source.clone())?;
    if let CatalogLocation::Sqlite(path) = &to
        && !path.exists()
    {
        write_new_private_file(path, b"")?;
    }
    let dest = catalog::open(&to)?;
    let held = dest.counts()?;
    let mapped = dest.project_backends()?.len();
    let empty = held == Default::default() && mapped == 0;
    if !empty && !force {
        return Err(Failure::Store(Error::new(
            ErrorKind::Conflict,
            format!(
                "{to} already holds {} secrets and {} project KEKs; pass --force to replace them",
                held.secrets, held.projects_with_keks
            ),
        )));
    }
    progress(&format!("Copying {from} to {to}…"));
    let report = copy_verified(&*source, &*dest);
    progress_done();
    let report = report?;
    progress("Authenticating every copied secret…");
    let checked = store_over(&config, dest.clone())?
        .operator()
        .verify_secrets();
    progress_done();
    let checked = checked?;
    if let Some(first) = checked.failed.first() {
        return Err(Failure::Store(Error::new(
            ErrorKind::Integrity,
            format!(
                "{} of {} copied secrets do not authenticate in {to} (first: {first})",
                checked.failed.len(),
                checked.checked
            ),
        )));
    }
    let c = &report.counts;
    Ok(format!(
        "Copied {} rows from {from} to {to}: {} secrets ({} with payload), {} orders, {} containers, {} consumers, {} project KEKs\n\
         Verified: {to} holds exactly the rows copied, and all {} stored secrets authenticate under the config's master KEKs\n",
        report.rows,
        c.secrets,
        c.secrets_with_payload,
        c.orders,
        c.containers,
        c.consumers,
        c.projects_with_keks,
        checked.checked
    ))
}

/// The config's backends over `catalog`: building it checks that every
/// master KEK opens its project KEKs there.
fn store_over(config: &Config, catalog: Arc<dyn Catalog>) -> CliResult<SecretStore> {
    let mut builder =
        SecretStore::builder(catalog.clone()).default_backend(config.default_backend.clone());
    for (id, backend) in &config.backends {
        builder = builder.backend(backend.build(id, catalog.clone())?);
    }
    Ok(builder.build()?)
}

/// Refuses a catalog nobody made: a missing SQLite file, or a PostgreSQL
/// database without a keywarden schema (only `init` and `restore` make one).
pub fn require_existing(config: &Config) -> CliResult<()> {
    match config.catalog_location() {
        CatalogLocation::Sqlite(db) if !db.exists() => Err(Failure::Usage(format!(
            "database {} does not exist; restore a backup or run `keywarden init` with a new config",
            db.display()
        ))),
        CatalogLocation::Sqlite(_) => Ok(()),
        shared => {
            catalog::open_existing(&shared)?;
            Ok(())
        }
    }
}

/// `init --database postgresql://…` names a shared catalog, not a file.
pub fn url_argument(database: &Path) -> Option<keywarden::Result<CatalogLocation>> {
    let text = database.to_str()?;
    (text.starts_with("postgres://") || text.starts_with("postgresql://")).then(|| text.parse())
}

/// `keywarden init` for a shared catalog: the database must exist and hold
/// no keywarden catalog yet; the config is written, then the schema made.
pub fn init_shared(
    config_path: &Path,
    config: &Config,
    location: &CatalogLocation,
    text: &str,
) -> CliResult<String> {
    if catalog::open_existing(location).is_ok() {
        return Err(Failure::Usage(format!(
            "{location} already holds a keywarden catalog; it belongs to another config"
        )));
    }
    write_new_private_file(config_path, text.as_bytes())?;
    if let Err(e) = SecretStore::open(config) {
        let _ = std::fs::remove_file(config_path);
        return Err(e.into());
    }
    Ok(format!(
        "Wrote {} (mode 0600; it holds the master KEK: back it up and keep it secret)\nCreated catalog {location}\n",
        config_path.display()
    ))
}

/// `keywarden backup` of a shared catalog: one consistent snapshot into
/// the same portable SQLite file a SQLite catalog backs up to.
pub fn backup_to_file(location: &CatalogLocation, output: &Path) -> keywarden::Result<()> {
    let source = catalog::open_existing(location)?;
    let dest = SqliteCatalog::open(output)?;
    copy_verified(&*source, &dest)?;
    Ok(())
}

/// `keywarden restore` into a shared catalog, from a checked scratch copy
/// of the backup: one transaction, so other instances see the old catalog
/// or the restored one.
pub fn restore_shared(location: &CatalogLocation, scratch: &Path, force: bool) -> CliResult<()> {
    let catalog = catalog::open(location)?;
    let existing = catalog.counts()?.secrets;
    if existing > 0 && !force {
        return Err(Failure::Store(Error::new(
            ErrorKind::Conflict,
            format!(
                "the catalog holds {existing} secrets; pass --force to replace it with the backup"
            ),
        )));
    }
    let source = SqliteCatalog::open_existing(scratch)?;
    progress("Restoring…");
    let out = copy_verified(&source, &*catalog);
    progress_done();
    out?;
    Ok(())
}
