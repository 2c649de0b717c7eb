//! The operator commands: init, backup, restore, KEK rotation, check.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use keywarden::backend::MasterKek;
use keywarden::catalog::CatalogLocation;
use keywarden::config::{BackendConfig, Config};
use keywarden::model::BackendId;
use keywarden::store::SecretStore;
use keywarden::{Error, ErrorKind};

use crate::{CliResult, Failure, open_store, progress, progress_done};

/// `keywarden init`: a new config and an empty database, both mode 0600.
pub fn init(config_path: &Path, database: &Path, endpoint: &str) -> CliResult<String> {
    if config_path.exists() {
        return Err(Failure::Usage(format!(
            "config {} already exists; refusing to overwrite it (it holds the master KEK)",
            config_path.display()
        )));
    }
    let mut config = Config::generate(database)?;
    config.endpoint = endpoint.trim_end_matches('/').to_owned();
    if let Some(url) = crate::catalog::url_argument(database) {
        config.catalog = url?;
    }
    #[allow(unused_mut)] // appended to only with the `server` feature
    let mut text = config.to_toml();
    #[cfg(feature = "server")]
    text.push_str(keywarden::server::config::INIT_SECTION);
    // Re-read through the normal path so relative paths resolve as they will later.
    let parsed = Config::from_toml(&text, config_path.parent())?;
    let db = match parsed.catalog_location() {
        CatalogLocation::Sqlite(db) => db,
        shared => return crate::catalog::init_shared(config_path, &parsed, &shared, &text),
    };
    if db.exists() {
        return Err(Failure::Usage(format!(
            "database {} already exists; it belongs to another config",
            db.display()
        )));
    }
    write_new_private_file(config_path, text.as_bytes())?;
    // SQLite gives its -wal and -shm files the database file's mode.
    let created = write_new_private_file(&db, b"").and_then(|()| {
        SecretStore::open(&parsed)?;
        Ok(())
    });
    if let Err(e) = created {
        let _ = std::fs::remove_file(config_path);
        let _ = std::fs::remove_file(&db);
        return Err(e);
    }
    Ok(format!(
        "Wrote {} (mode 0600; it holds the master KEK: back it up and keep it secret)\nCreated database {}\n",
        config_path.display(),
        parsed.catalog_location()
    ))
}

/// `keywarden backup --output PATH`.
pub fn backup(config_path: &Path, output: &Path) -> CliResult<String> {
    if output.exists() {
        return Err(Failure::Usage(format!(
            "{} already exists; choose a new file",
            output.display()
        )));
    }
    let (config, _store) = open_store(config_path)?;
    progress("Backing up the catalog…");
    let counts = SecretStore::backup(&config, output);
    progress_done();
    let counts = counts?;
    Ok(format!(
        "Backed up {} secrets, {} orders, {} containers to {}\n\
         The master KEK is NOT in the backup: back up the config file {} separately and keep it\n\
         apart from the backup; without it the backup cannot be decrypted.\n",
        counts.secrets,
        counts.orders,
        counts.containers,
        output.display(),
        config_path.display()
    ))
}

/// `keywarden restore PATH [--force]`: the library's restore, which checks
/// the whole backup in a scratch copy before it replaces anything.
pub fn restore(config: &Config, backup: &Path, force: bool) -> CliResult<String> {
    if !backup.is_file() {
        return Err(Failure::Usage(format!(
            "backup {} does not exist",
            backup.display()
        )));
    }
    let counts = SecretStore::restore(config, backup, force, |done, total| {
        progress(&format!("Restoring… {done}/{total} pages"));
    });
    progress_done();
    let counts = counts?;
    Ok(format!(
        "Restored {} secrets, {} orders, {} containers from {}\n",
        counts.secrets,
        counts.orders,
        counts.containers,
        backup.display()
    ))
}

/// `keywarden kek rotate`: config first (new active + old retired), then the
/// rewrap in one transaction, so a crash between the two loses nothing.
pub fn kek_rotate(config_path: &Path, only: Option<&str>) -> CliResult<String> {
    // Refuses early if the database is missing or the keys do not open it.
    let (mut config, _) = open_store(config_path)?;
    let targets: Vec<BackendId> = match only {
        Some(id) => {
            let id = BackendId::new(id)?;
            if !config.backends.contains_key(&id) {
                return Err(Failure::Usage(format!("backend {id} is not configured")));
            }
            vec![id]
        }
        None => config.backends.keys().cloned().collect(),
    };
    let mut fingerprints = Vec::new();
    for id in &targets {
        let Some(BackendConfig::SimpleCrypto {
            master_kek,
            retired_master_keks,
        }) = config.backends.get_mut(id)
        else {
            if only.is_some() {
                return Err(Failure::Usage(format!(
                    "backend {id} has no master KEK in the config to rotate (a pkcs11 backend rotates with `keywarden hsm rotate`)"
                )));
            }
            continue;
        };
        let new = MasterKek::generate()?;
        let old = std::mem::replace(master_kek, new.clone());
        retired_master_keks.insert(0, old.clone());
        fingerprints.push((id.clone(), old.fingerprint(), new.fingerprint()));
    }
    write_config(config_path, &config)?;
    let store = SecretStore::open(&config)?;
    let mut out = String::new();
    for (id, old, new) in fingerprints {
        progress(&format!("Rewrapping project KEKs of {id}…"));
        let n = store.operator().rewrap_project_keks(&id)?;
        progress_done();
        out.push_str(&format!(
            "Backend {id}: master KEK {old} -> {new}; {n} project KEKs rewrapped; secrets untouched.\n\
             The old KEK stays in the config as retired until `keywarden kek prune`.\n"
        ));
    }
    Ok(out)
}

/// `keywarden kek prune`: removes retired master KEKs that wrap nothing.
pub fn kek_prune(config_path: &Path) -> CliResult<String> {
    let (mut config, store) = open_store(config_path)?;
    let report = store.operator().check()?;
    let mut pruned = 0;
    for (id, backend) in config.backends.iter_mut() {
        let BackendConfig::SimpleCrypto {
            retired_master_keks,
            ..
        } = backend
        else {
            continue;
        };
        if retired_master_keks.is_empty() {
            continue;
        }
        let still = report.backends.get(id).map_or(0, |r| r.wrapped_by_retired);
        if still > 0 {
            return Err(Failure::Store(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{still} project KEKs of backend {id} are still wrapped by a retired master KEK; run `keywarden kek rotate` first"
                ),
            )));
        }
        pruned += retired_master_keks.len();
        retired_master_keks.clear();
    }
    write_config(config_path, &config)?;
    SecretStore::open(&config)?;
    Ok(format!(
        "Removed {pruned} retired master KEKs from {}\n",
        config_path.display()
    ))
}

/// `keywarden check`: the store opens (every master KEK opens its project
/// KEKs), every stored secret authenticates, and the counts.
pub fn check(config_path: &Path) -> CliResult<String> {
    let (config, store) = open_store(config_path)?;
    let report = store.operator().check()?;
    progress("Authenticating every stored secret…");
    let secrets = store.operator().verify_secrets()?;
    progress_done();
    if let Some(first) = secrets.failed.first() {
        return Err(Failure::Store(Error::new(
            ErrorKind::Integrity,
            format!(
                "{} of {} stored secrets do not authenticate (first: {first}); the catalog was tampered with or damaged",
                secrets.failed.len(),
                secrets.checked
            ),
        )));
    }
    let c = &report.counts;
    let mut out = format!(
        "Catalog {}: schema ok\nSecrets: {} ({} with payload, all authenticated)\nOrders: {}\nContainers: {}\nConsumers: {}\nProject KEKs: {}\n",
        config.catalog_location(),
        c.secrets,
        c.secrets_with_payload,
        c.orders,
        c.containers,
        c.consumers,
        c.projects_with_keks
    );
    for (id, r) in &report.backends {
        out.push_str(&format!(
            "Backend {id}: master KEK opens {} project KEKs ({} wrapped by a retired KEK)\n",
            r.project_keks, r.wrapped_by_retired
        ));
    }
    out.push_str("OK\n");
    Ok(out)
}

fn scratch_path(beside: &Path, what: &str) -> PathBuf {
    let name = format!(
        ".{}.{what}-{}",
        beside
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("keywarden.db"),
        std::process::id()
    );
    beside.with_file_name(name)
}

pub(crate) fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::Store(Error::new(ErrorKind::Unavailable, format!("{what}: {e}")).with_source(e))
}

/// Creates `path` with mode 0600; fails if it exists.
pub fn write_new_private_file(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_failure(&format!("cannot create {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_failure(&format!("cannot write {}", path.display()), e))
}

/// Replaces `path` atomically with a mode-0600 file holding `bytes`.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let tmp = scratch_path(path, "tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new_private_file(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_failure(&format!("cannot replace {}", path.display()), e)
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_config(path: &Path, config: &Config) -> CliResult<()> {
    write_private_file(path, config.to_toml().as_bytes())
}
