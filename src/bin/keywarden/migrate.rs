//! `keywarden migrate`: the fixed-key migration over a copy of a cinder
//! database, and its status.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keywarden::backend::fixed::parse_hex_key;
use keywarden::config::{BackendConfig, Config};
use keywarden::migration::{
    CinderSqlite, EncryptedResources, HostFilter, Level, MigrationEvent, MigrationOptions, Service,
    ServiceConf, migrate_fixed_key, status_lines,
};
use keywarden::secret::SecretBytes;
use keywarden::{Error, ErrorKind};

use crate::{Cli, CliResult, Failure, context, open_store, progress, progress_clear};

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Give every volume (or backup) on the all-zeros key id a secret of its own.
    #[command(name = "fixed-key")]
    FixedKey(FixedKeyArgs),
    /// Count what still uses the all-zeros key id; say when fixed_key can go.
    Status {
        /// The cinder database (an SQLite copy).
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct FixedKeyArgs {
    /// The cinder database (an SQLite copy).
    #[arg(long)]
    db: PathBuf,
    /// This service's host (cinder's `host`).
    #[arg(long)]
    host: String,
    /// A clustered cinder-volume selects its volumes by cluster instead.
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long, value_parser = ["volume", "backup"], default_value = "volume")]
    service: String,
    /// Report what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The fixed key in hex (else from --from-conf, else from the keywarden
    /// config). Visible in the process list; prefer --fixed-key-file.
    #[arg(long, conflicts_with = "from_conf", value_parser = crate::secret_input::secret_arg)]
    fixed_key: Option<SecretBytes>,
    /// Read the fixed key (hex) from PATH, or from stdin for `-`.
    #[arg(long = "fixed-key-file", value_name = "PATH|-", conflicts_with_all = ["fixed_key", "from_conf"])]
    fixed_key_file: Option<PathBuf>,
    /// A cinder.conf or nova.conf: its [key_manager] fixed_key and backend.
    #[arg(long)]
    from_conf: Option<PathBuf>,
    /// Items per transaction.
    #[arg(long, default_value_t = keywarden::migration::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
}

pub fn run(cli: &Cli, cmd: &MigrateCommand) -> CliResult<String> {
    match cmd {
        MigrateCommand::Status { db } => {
            let mut db = CinderSqlite::open(db)?;
            let remaining = db.remaining()?;
            let mut out = status_lines(&remaining).join("\n");
            out.push('\n');
            if remaining.safe_to_remove_fixed_key() {
                Ok(out)
            } else {
                // Not an error, but scripts can tell: print, then exit 1.
                print!("{out}");
                Err(Failure::Usage(
                    "fixed_key is still in use (see the counts above)".into(),
                ))
            }
        }
        MigrateCommand::FixedKey(a) => fixed_key(cli, a),
    }
}

fn fixed_key(cli: &Cli, a: &FixedKeyArgs) -> CliResult<String> {
    let (config, store) = open_store(&cli.config)?;
    let (fixed_key, backend) = key_source(a, &config)?;
    let service = if a.service == "backup" {
        Service::Backup
    } else {
        Service::Volume
    };
    let filter = match &a.cluster {
        Some(c) => HostFilter::Cluster(c.clone()),
        None => HostFilter::Host(a.host.clone()),
    };
    let mut options = MigrationOptions::new(service, filter, fixed_key);
    if let Some(b) = backend {
        options.key_manager_backend = b;
    }
    options.dry_run = a.dry_run;
    options.batch_size = a.batch_size.max(1);
    let mut db = CinderSqlite::open(&a.db)?;
    let report =
        migrate_fixed_key(
            &store,
            &context(cli)?,
            &mut db,
            &options,
            &mut |event| match event {
                // cinder's log lines go to stderr as they happen.
                MigrationEvent::Line(level, line) => {
                    progress_clear();
                    let level = match level {
                        Level::Info => "INFO",
                        Level::Warning => "WARNING",
                        Level::Error => "ERROR",
                    };
                    eprintln!("{level} {line}");
                }
                MigrationEvent::Progress { migrated, errors } => {
                    progress(&format!("migrated {migrated}, errors {errors}"));
                }
            },
        )?;
    progress_clear();
    let mut out = String::new();
    if a.dry_run {
        out.push_str(&format!(
            "Dry run: {} item(s) would be migrated\n",
            report.would_migrate.len()
        ));
        for id in &report.would_migrate {
            out.push_str(&format!("  {id}\n"));
        }
    } else {
        out.push_str(&format!(
            "Migrated {} item(s); {} error(s)\n",
            report.migrated, report.errors
        ));
    }
    if report.aborted {
        print!("{out}");
        return Err(Failure::Store(Error::new(
            ErrorKind::PermissionDenied,
            "migration aborted after too many errors",
        )));
    }
    Ok(out)
}

/// The fixed key and the service's backend setting: from `--fixed-key`,
/// from `--from-conf`, or from the keywarden config's danger_fixed_key backend.
fn key_source(
    a: &FixedKeyArgs,
    config: &Config,
) -> CliResult<(Option<SecretBytes>, Option<String>)> {
    let from_file = match &a.fixed_key_file {
        Some(path) => Some(crate::secret_input::read_secret(path, "fixed key")?),
        None => None,
    };
    if let Some(hex) = a.fixed_key.as_ref().or(from_file.as_ref()) {
        let text = crate::secret_input::secret_text(hex, "fixed key")?;
        // A file written by `echo` ends in a newline; hex never does.
        return Ok((Some(parse_hex_key(text.trim_end())?), None));
    }
    if let Some(path) = &a.from_conf {
        let conf = ServiceConf::read(path)?;
        return Ok((conf.fixed_key, conf.backend));
    }
    let key = config.backends.values().find_map(|b| match b {
        BackendConfig::DangerFixedKey { fixed_key } => Some(fixed_key.clone()),
        _ => None,
    });
    Ok((key, None))
}
