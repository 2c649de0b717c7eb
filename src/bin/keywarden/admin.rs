//! The operator commands: init, backup, restore, KEK rotation, check.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use keywarden::backend::{KekInstance, MasterKek};
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

/// The simple_crypto backends a `kek` command works on: `only`, or all.
fn kek_targets(config: &Config, only: Option<&str>) -> CliResult<Vec<BackendId>> {
    let targets: Vec<BackendId> = match only {
        Some(id) => {
            let id = BackendId::new(id)?;
            match config.backends.get(&id) {
                None => return Err(Failure::Usage(format!("backend {id} is not configured"))),
                Some(BackendConfig::SimpleCrypto { .. }) => {}
                Some(_) => {
                    return Err(Failure::Usage(format!(
                        "backend {id} has no master KEK in the config to rotate (a pkcs11 backend rotates with `keywarden hsm rotate`)"
                    )));
                }
            }
            vec![id]
        }
        None => config
            .backends
            .iter()
            .filter(|(_, b)| matches!(b, BackendConfig::SimpleCrypto { .. }))
            .map(|(id, _)| id.clone())
            .collect(),
    };
    Ok(targets)
}

/// "host h (pid 7), host g (pid 9)".
fn instances_text(instances: &[KekInstance]) -> String {
    instances
        .iter()
        .map(|i| format!("host {} (pid {})", i.host, i.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `keywarden kek stage`: a new master KEK in this config's
/// `staged_master_keks`, to be copied to every instance before `kek rotate`.
/// A key already staged is kept (running it twice stages nothing new).
pub fn kek_stage(config_path: &Path, only: Option<&str>) -> CliResult<String> {
    let (mut config, store) = open_store(config_path)?;
    drop(store);
    let targets = kek_targets(&config, only)?;
    let mut out = String::new();
    for id in &targets {
        let Some(BackendConfig::SimpleCrypto {
            staged_master_keks, ..
        }) = config.backends.get_mut(id)
        else {
            continue;
        };
        match staged_master_keks.first() {
            Some(k) => out.push_str(&format!(
                "Backend {id}: master KEK {} is already staged.\n",
                k.fingerprint()
            )),
            None => {
                let new = MasterKek::generate()?;
                out.push_str(&format!(
                    "Backend {id}: staged new master KEK {}.\n",
                    new.fingerprint()
                ));
                staged_master_keks.push(new);
            }
        }
    }
    write_config(config_path, &config)?;
    // The staged keys must not break this config (they are only added).
    SecretStore::open(&config)?;
    out.push_str(&format!(
        "Copy the staged_master_keks line of {} into the same backend section of every \
         instance's config, then reload (SIGHUP to `keywarden serve`) or restart each one.\n\
         `keywarden kek status` shows which instances hold the key; then run `keywarden kek rotate`.\n",
        config_path.display()
    ));
    Ok(out)
}

/// `keywarden kek rotate`: the staged master KEK (or, with no other
/// instance running, a fresh one) becomes active. Refused before anything
/// changes while a running instance lacks the new key. Then config first
/// (new active + old retired), then the rewrap in one transaction, so a
/// crash between the two loses nothing.
pub fn kek_rotate(config_path: &Path, only: Option<&str>) -> CliResult<String> {
    // Refuses early if the database is missing or the keys do not open it.
    let (mut config, store) = open_store(config_path)?;
    let targets = kek_targets(&config, only)?;
    let mut fingerprints = Vec::new();
    for id in &targets {
        let Some(BackendConfig::SimpleCrypto {
            master_kek,
            staged_master_keks,
            retired_master_keks,
        }) = config.backends.get_mut(id)
        else {
            continue;
        };
        // A rotation cut short (config rotated, catalog not: a crash, or a
        // restored backup older than the config) is finished, not started
        // again under yet another key.
        let mine = master_kek.fingerprint();
        let unfinished = store
            .operator()
            .master_kek_status()?
            .into_iter()
            .find(|s| &s.backend == id)
            .and_then(|s| {
                let active = s.catalog_active.unwrap_or_else(|| mine.clone());
                let others = store.operator().project_keks_not_under(id, &mine);
                (active != mine || others.is_ok_and(|n| n > 0)).then_some(active)
            });
        if let (Some(from), true) = (unfinished, staged_master_keks.is_empty()) {
            let blockers = store.operator().rotation_blockers(id, &mine)?;
            if !blockers.is_empty() {
                return Err(Failure::Store(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "this config's master KEK {mine} of backend {id} is not yet held by {}; copy it to them \
                         (as staged_master_keks) and reload or restart them; nothing was rotated",
                        instances_text(&blockers)
                    ),
                )));
            }
            fingerprints.push((id.clone(), from, mine));
            continue;
        }
        let (new, staged) = match staged_master_keks.first() {
            Some(k) => (k.clone(), true),
            None => (MasterKek::generate()?, false),
        };
        let blockers = store.operator().rotation_blockers(id, &new.fingerprint())?;
        if !blockers.is_empty() {
            let what = if staged {
                format!(
                    "the staged master KEK {} of backend {id} is not yet held by {}; copy this config's \
                     staged_master_keks line to them and reload or restart them (`keywarden kek status` shows \
                     where each stands); nothing was rotated",
                    new.fingerprint(),
                    instances_text(&blockers)
                )
            } else {
                format!(
                    "other instances use backend {id} on this catalog ({}); stage the new key first: \
                     `keywarden kek stage`, copy its line to every instance, reload them, then \
                     `keywarden kek rotate`; nothing was rotated",
                    instances_text(&blockers)
                )
            };
            return Err(Failure::Store(Error::new(ErrorKind::Conflict, what)));
        }
        if staged {
            staged_master_keks.remove(0);
        }
        let old = std::mem::replace(master_kek, new.clone());
        retired_master_keks.insert(0, old.clone());
        fingerprints.push((id.clone(), old.fingerprint(), new.fingerprint()));
    }
    drop(store);
    write_config(config_path, &config)?;
    let store = SecretStore::open(&config)?;
    let mut out = String::new();
    for (id, old, new) in fingerprints {
        progress(&format!("Rewrapping project KEKs of {id}…"));
        let n = store.operator().rewrap_project_keks(&id);
        progress_done();
        let n = n?;
        out.push_str(&format!(
            "Backend {id}: master KEK {old} -> {new}; {n} project KEKs rewrapped; secrets untouched.\n\
             The old KEK stays in the config as retired until `keywarden kek prune`.\n"
        ));
    }
    Ok(out)
}

/// `keywarden kek prune`: removes retired master KEKs, once the library
/// says nothing needs them (every project KEK under the catalog's active
/// key, which is this config's, and no running instance on an older one).
pub fn kek_prune(config_path: &Path) -> CliResult<String> {
    let (mut config, store) = open_store(config_path)?;
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
        store.operator().check_prune(id)?;
        pruned += retired_master_keks.len();
        retired_master_keks.clear();
    }
    drop(store);
    write_config(config_path, &config)?;
    SecretStore::open(&config)?;
    Ok(format!(
        "Removed {pruned} retired master KEKs from {}\n",
        config_path.display()
    ))
}

/// `keywarden kek status`: where the rollout stands on each simple_crypto
/// backend, instance by instance, and the next step.
pub fn kek_status(config_path: &Path) -> CliResult<String> {
    let (config, store) = open_store(config_path)?;
    let mut out = String::new();
    for status in store.operator().master_kek_status()? {
        let id = &status.backend;
        let Some(BackendConfig::SimpleCrypto {
            master_kek,
            staged_master_keks,
            retired_master_keks,
        }) = config.backends.get(id)
        else {
            continue;
        };
        let active = status
            .catalog_active
            .clone()
            .unwrap_or_else(|| master_kek.fingerprint());
        let staged = staged_master_keks.first().map(MasterKek::fingerprint);
        out.push_str(&format!(
            "Backend {id}: new project KEKs are wrapped under master KEK {active}; {} project KEKs under another key\n",
            status.wrapped_by_others
        ));
        let mut lacking = Vec::new();
        let mut behind = Vec::new();
        for i in &status.instances {
            let stage = match &staged {
                Some(s) if i.known.iter().any(|k| k == s) => "holds the staged key",
                Some(_) => {
                    lacking.push(i.clone());
                    "LACKS the staged key"
                }
                None if i.configured_active != active => {
                    behind.push(i.clone());
                    "master_kek is an older key"
                }
                None => "up to date",
            };
            out.push_str(&format!(
                "  host {} pid {}: master_kek {}, holds {} keys: {stage}{}\n",
                i.host,
                i.pid,
                i.configured_active,
                i.known.len(),
                if i.instance_id == status.this_instance {
                    " (this command)"
                } else {
                    ""
                }
            ));
        }
        let next = match &staged {
            Some(s) if lacking.is_empty() => {
                format!("every running instance holds staged key {s}: run `keywarden kek rotate`")
            }
            Some(s) => format!(
                "copy staged key {s} to {} and reload them",
                instances_text(&lacking)
            ),
            None if !behind.is_empty() => format!(
                "make {active} the master_kek of {} and reload them; then `keywarden kek prune`",
                instances_text(&behind)
            ),
            None if status.wrapped_by_others > 0 => "run `keywarden kek rotate`".to_owned(),
            None if !retired_master_keks.is_empty() => "run `keywarden kek prune`".to_owned(),
            None => "nothing to do".to_owned(),
        };
        out.push_str(&format!("  Next: {next}\n"));
    }
    Ok(out)
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
