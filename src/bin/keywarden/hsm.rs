//! `keywarden hsm …`: the keys a pkcs11 backend keeps in its token. The
//! backend itself never creates them; these commands do, when asked.

use std::path::Path;

use clap::Subcommand;
use keywarden::backend::Pkcs11;
use keywarden::backend::pkcs11::Pkcs11Config;
use keywarden::config::{BackendConfig, Config};
use keywarden::model::BackendId;
use keywarden::store::SecretStore;
use keywarden::{Error, ErrorKind};

use crate::{CliResult, Failure, admin, load_config, open_store, progress, progress_done};

#[derive(Subcommand, Debug)]
pub enum HsmCommand {
    /// Create the master KEK and HMAC key in the token unless they exist.
    Init {
        /// Only this backend (default: every pkcs11 backend).
        #[arg(long)]
        backend: Option<String>,
    },
    /// A new master KEK in the token; project KEKs rewrapped under it inside
    /// the token; the old label kept as retired; secrets untouched.
    Rotate {
        #[arg(long)]
        backend: String,
        /// Label of the new master KEK.
        #[arg(long = "new-label")]
        new_label: String,
    },
    /// Drop retired master-KEK labels from the config once nothing is
    /// wrapped by them (the keys stay in the token until you delete them).
    Prune {
        #[arg(long)]
        backend: String,
    },
}

pub fn run(config_path: &Path, cmd: &HsmCommand) -> CliResult<String> {
    match cmd {
        HsmCommand::Init { backend } => init(config_path, backend.as_deref()),
        HsmCommand::Rotate { backend, new_label } => rotate(config_path, backend, new_label),
        HsmCommand::Prune { backend } => prune(config_path, backend),
    }
}

/// `keywarden hsm init [--backend ID]`: needs the config, not the database.
fn init(config_path: &Path, only: Option<&str>) -> CliResult<String> {
    let config = load_config(config_path)?;
    let mut out = String::new();
    for (id, p11) in pkcs11_backends(&config, only)? {
        let report = Pkcs11::init_token(p11)?;
        let said = |created: bool| {
            if created {
                "created"
            } else {
                "already present"
            }
        };
        out.push_str(&format!(
            "Backend {id} (token {}): master KEK {:?} {}; HMAC key {:?} {}\n",
            report.token,
            report.mkek_label,
            said(report.mkek_created),
            report.hmac_label,
            said(report.hmac_created)
        ));
    }
    Ok(out)
}

/// `keywarden hsm rotate --backend ID --new-label LABEL`: the new key and
/// the config first, then the rewrap in one transaction, so a crash in
/// between leaves a config whose retired label still opens everything.
fn rotate(config_path: &Path, backend: &str, new_label: &str) -> CliResult<String> {
    let (mut config, _) = open_store(config_path)?;
    let id = BackendId::new(backend)?;
    let Some(BackendConfig::Pkcs11(p11)) = config.backends.get_mut(&id) else {
        return Err(Failure::Usage(format!(
            "backend {id} is not a configured pkcs11 backend"
        )));
    };
    let old = std::mem::replace(&mut p11.mkek_label, new_label.to_owned());
    p11.retired_mkek_labels.insert(0, old.clone());
    p11.check()?;
    let report = Pkcs11::init_token(p11)?;
    admin::write_private_file(config_path, config.to_toml().as_bytes())?;
    let store = SecretStore::open(&config)?;
    progress(&format!("Rewrapping project KEKs of {id}…"));
    let n = store.operator().rewrap_project_keks(&id)?;
    progress_done();
    Ok(format!(
        "Backend {id}: master KEK {old:?} -> {new_label:?} ({}); {n} project KEKs rewrapped in the token; secrets untouched.\n\
         {old:?} stays in the config as retired until `keywarden hsm prune --backend {id}`.\n",
        if report.mkek_created {
            "created"
        } else {
            "already in the token"
        }
    ))
}

/// `keywarden hsm prune --backend ID`.
fn prune(config_path: &Path, backend: &str) -> CliResult<String> {
    let (mut config, store) = open_store(config_path)?;
    let id = BackendId::new(backend)?;
    let still = store
        .operator()
        .check()?
        .backends
        .get(&id)
        .map_or(0, |r| r.wrapped_by_retired);
    let Some(BackendConfig::Pkcs11(p11)) = config.backends.get_mut(&id) else {
        return Err(Failure::Usage(format!(
            "backend {id} is not a configured pkcs11 backend"
        )));
    };
    if still > 0 {
        return Err(Failure::Store(Error::new(
            ErrorKind::Conflict,
            format!(
                "{still} project KEKs of backend {id} are still wrapped by a retired master KEK; run `keywarden hsm rotate` first"
            ),
        )));
    }
    let pruned = std::mem::take(&mut p11.retired_mkek_labels);
    admin::write_private_file(config_path, config.to_toml().as_bytes())?;
    SecretStore::open(&config)?;
    Ok(format!(
        "Removed {} retired master-KEK labels ({}) from {}; the keys themselves stay in the token\n",
        pruned.len(),
        pruned.join(", "),
        config_path.display()
    ))
}

fn pkcs11_backends<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> CliResult<Vec<(&'a BackendId, &'a Pkcs11Config)>> {
    let found: Vec<_> = config
        .backends
        .iter()
        .filter_map(|(id, b)| match b {
            BackendConfig::Pkcs11(p) => Some((id, p)),
            _ => None,
        })
        .filter(|(id, _)| only.is_none_or(|o| id.as_str() == o))
        .collect();
    if found.is_empty() {
        return Err(Failure::Usage(match only {
            Some(o) => format!("backend {o} is not a configured pkcs11 backend"),
            None => "the config has no pkcs11 backend".to_owned(),
        }));
    }
    Ok(found)
}
