//! `keywarden`: the operator's command, speaking like `openstack secret …`
//! over a keywarden store.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{
    BackendId, Container, ContainerId, Order, OrderId, ProjectId, SecretId, SecretMeta, SecretType,
    Timestamp, UserId,
};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder, ListQuery, NewSecret, SecretStore};
use keywarden::{Error, ErrorKind};

mod admin;
mod catalog;
#[cfg(feature = "pkcs11")]
mod hsm;
mod image;
mod migrate;
mod output;
mod secret_input;
#[cfg(feature = "server")]
mod serve;
mod verbs;
mod volume;

use output::{Cell, Format, Record};
use verbs::{project_store_command, secret_command, show};

/// The identity used when none is given: a local admin of project `default`.
const DEFAULT_USER: &str = "admin";
const DEFAULT_PROJECT: &str = "default";
const DEFAULT_ROLES: &str = "admin";

#[derive(Parser, Debug)]
#[command(
    name = "keywarden",
    version,
    about = "Keys and secrets for OpenStack-style services, without a server."
)]
struct Cli {
    /// The config file (holds the master KEK: keep it mode 0600).
    #[arg(
        long,
        global = true,
        env = "KEYWARDEN_CONFIG",
        default_value = "keywarden.toml"
    )]
    config: PathBuf,
    /// Project the request acts for.
    #[arg(long = "os-project-id", global = true, env = "OS_PROJECT_ID", default_value = DEFAULT_PROJECT)]
    project: String,
    /// User making the request.
    #[arg(long = "os-user-id", global = true, env = "OS_USER_ID", default_value = DEFAULT_USER)]
    user: String,
    /// Comma-separated roles (admin, creator, observer, audit).
    #[arg(long = "os-roles", global = true, env = "OS_ROLES", default_value = DEFAULT_ROLES)]
    roles: String,
    /// Output format.
    #[arg(
        short = 'f',
        long = "format",
        global = true,
        value_enum,
        default_value = "table"
    )]
    format: Format,
    /// Show only this column (repeatable).
    #[arg(short = 'c', long = "column", global = true)]
    columns: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new config (generated master KEK) and create the database.
    Init(InitArgs),
    /// Secrets, orders and containers.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Map projects to backends.
    #[command(name = "project-store", subcommand)]
    ProjectStore(ProjectStoreCommand),
    /// Copy the catalog to a file while writers keep running.
    Backup {
        #[arg(long)]
        output: PathBuf,
    },
    /// Replace the catalog with a backup.
    Restore {
        path: PathBuf,
        /// Replace a catalog that holds secrets.
        #[arg(long)]
        force: bool,
    },
    /// Master KEK rotation.
    #[command(subcommand)]
    Kek(KekCommand),
    /// Open the store, verify the KEKs, report counts.
    Check,
    /// Move legacy fixed-key volumes to secrets of their own.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Encrypted volumes: passphrase, LUKS format, dump, check, read, write.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Image signatures: verify an image against a certificate in the store.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Move a whole store between SQLite and PostgreSQL.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// PKCS#11 token keys: create, rotate the master KEK, prune.
    #[cfg(feature = "pkcs11")]
    #[command(subcommand)]
    Hsm(hsm::HsmCommand),
    /// Serve Barbican's v1 REST API (the config's [server] section).
    #[cfg(feature = "server")]
    Serve,
    /// Users of the `http_basic` server auth.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    User(serve::UserCommand),
}

#[derive(Args, Debug)]
struct InitArgs {
    /// The SQLite database (relative to the config file's directory), or a
    /// `postgresql://` URL of a shared catalog.
    #[arg(long, default_value = "keywarden.db")]
    database: PathBuf,
    /// Base of secret hrefs.
    #[arg(long, default_value = keywarden::config::DEFAULT_ENDPOINT)]
    endpoint: String,
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Store a secret (without a payload: to be filled by `secret update`).
    Store(StoreArgs),
    /// Show a secret's metadata, or its payload.
    Get {
        secret: String,
        /// Show the payload.
        #[arg(long, short = 'p')]
        payload: bool,
        /// Write the raw payload bytes to this file.
        #[arg(long = "file", short = 'F')]
        file: Option<PathBuf>,
    },
    /// List the project's secrets.
    List(ListArgs),
    /// Give a secret created without a payload its payload (once).
    Update {
        secret: String,
        /// The payload (visible to local users in the process list; prefer
        /// --payload-file).
        #[arg(value_parser = secret_input::secret_arg, required_unless_present = "payload_file")]
        payload: Option<SecretBytes>,
        /// Read the payload from PATH, or from stdin for `-`, byte for byte.
        #[arg(
            long = "payload-file",
            value_name = "PATH|-",
            conflicts_with = "payload"
        )]
        payload_file: Option<PathBuf>,
    },
    /// Delete a secret.
    Delete {
        secret: String,
        /// Delete even though consumers are registered.
        #[arg(long)]
        force: bool,
    },
    /// Orders: generate keys and key pairs.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Containers made by asymmetric orders.
    #[command(subcommand)]
    Container(ContainerCommand),
}

#[derive(Args, Debug)]
struct StoreArgs {
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// The payload (visible to local users in the process list; prefer
    /// --payload-file).
    #[arg(long, short = 'p', value_parser = secret_input::secret_arg)]
    payload: Option<SecretBytes>,
    /// Read the payload from PATH, or from stdin for `-`, byte for byte.
    #[arg(
        long = "payload-file",
        value_name = "PATH|-",
        conflicts_with = "payload"
    )]
    payload_file: Option<PathBuf>,
    #[arg(long = "payload-content-type", short = 't')]
    payload_content_type: Option<String>,
    #[arg(long = "payload-content-encoding", short = 'e')]
    payload_content_encoding: Option<String>,
    #[arg(long = "secret-type", short = 's', default_value = "opaque")]
    secret_type: String,
    #[arg(long, short = 'a', default_value = "aes")]
    algorithm: String,
    #[arg(long = "bit-length", short = 'b', default_value_t = 256)]
    bit_length: i64,
    #[arg(long, short = 'm', default_value = "cbc")]
    mode: String,
    #[arg(long, short = 'x')]
    expiration: Option<String>,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[arg(long, short = 'n')]
    name: Option<String>,
    #[arg(long, short = 'a')]
    algorithm: Option<String>,
    #[arg(long = "bit-length", short = 'b')]
    bit_length: Option<u32>,
    #[arg(long, short = 'm')]
    mode: Option<String>,
    #[arg(long = "secret-type", short = 's')]
    secret_type: Option<String>,
    #[arg(long, short = 'l')]
    limit: Option<i64>,
    #[arg(long, short = 'o')]
    offset: Option<i64>,
}

#[derive(Subcommand, Debug)]
enum OrderCommand {
    /// Create an order: `key` or `asymmetric`.
    Create {
        #[arg(value_parser = ["key", "asymmetric"])]
        kind: String,
        #[command(flatten)]
        args: OrderArgs,
    },
    Get {
        order: String,
    },
    List {
        #[arg(long, short = 'l')]
        limit: Option<i64>,
        #[arg(long, short = 'o')]
        offset: Option<i64>,
    },
    Delete {
        order: String,
    },
}

#[derive(Args, Debug)]
struct OrderArgs {
    #[arg(long, short = 'n')]
    name: Option<String>,
    #[arg(long, short = 'a', default_value = "aes")]
    algorithm: String,
    #[arg(long = "bit-length", short = 'b', default_value_t = 256)]
    bit_length: i64,
    #[arg(long, short = 'm')]
    mode: Option<String>,
    #[arg(long = "payload-content-type", short = 't')]
    payload_content_type: Option<String>,
    #[arg(long, short = 'x')]
    expiration: Option<String>,
    /// Protects the private key of an asymmetric order (visible in the
    /// process list; prefer --passphrase-file).
    #[arg(long, value_parser = secret_input::secret_arg)]
    passphrase: Option<SecretBytes>,
    /// Read the passphrase from PATH, or from stdin for `-`, byte for byte.
    #[arg(
        long = "passphrase-file",
        value_name = "PATH|-",
        conflicts_with = "passphrase"
    )]
    passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    Get {
        container: String,
    },
    List {
        #[arg(long, short = 'l')]
        limit: Option<i64>,
        #[arg(long, short = 'o')]
        offset: Option<i64>,
    },
    Delete {
        container: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProjectStoreCommand {
    /// New secrets of PROJECT go to BACKEND.
    Set { project: String, backend: String },
    /// Which backend PROJECT's new secrets go to.
    Show { project: String },
    /// PROJECT falls back to the global default backend.
    Clear { project: String },
}

#[derive(Subcommand, Debug)]
enum KekCommand {
    /// A new master KEK in this config's staged_master_keks, to copy to
    /// every instance before `kek rotate` (several instances on one catalog).
    Stage {
        /// Only this backend (default: every simple_crypto backend).
        #[arg(long)]
        backend: Option<String>,
    },
    /// The staged master KEK (or a new one, when no other instance runs)
    /// becomes active; project KEKs rewrapped; the old KEK kept as retired.
    Rotate {
        /// Only this backend (default: every simple_crypto backend).
        #[arg(long)]
        backend: Option<String>,
    },
    /// Drop retired master KEKs once nothing is wrapped by them and no
    /// running instance still uses one as its master_kek.
    Prune,
    /// Where a master-KEK rollout stands on each running instance.
    Status,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, exit 1, like every other refusal: clap's message up
            // to its usage block, folded (it names a missing argument on
            // the next line).
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let message = message.join(" ");
            eprintln!(
                "Error: {} (see --help)",
                message.trim_start_matches("error: ")
            );
            return ExitCode::from(1);
        }
    };
    match run(&cli) {
        Ok(out) => {
            // It may be a payload (`secret get --payload`): wiped once written.
            let out = zeroize::Zeroizing::new(out);
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", e.line());
            ExitCode::from(1)
        }
    }
}

/// A failure as the command reports it: one line.
pub enum Failure {
    Store(Error),
    Usage(String),
}

impl Failure {
    fn line(&self) -> String {
        match self {
            Failure::Store(e) => {
                let what = match e.kind() {
                    ErrorKind::NotFound => "Not Found",
                    ErrorKind::PermissionDenied => "Forbidden",
                    ErrorKind::Conflict => "Conflict",
                    ErrorKind::InvalidInput => "Bad Request",
                    ErrorKind::TooLarge => "Request Entity Too Large",
                    ErrorKind::Integrity => "Integrity check failed",
                    ErrorKind::Config => "Configuration error",
                    ErrorKind::Unavailable => "Unavailable",
                    ErrorKind::Unsupported => "Unsupported",
                    _ => "Error",
                };
                let mut line = format!("{what}: {}", e.context());
                if let Some(field) = e.field() {
                    line.push_str(&format!(" (field: {field})"));
                }
                // The underlying cause (an SQLite or I/O error) says why.
                let mut cause = std::error::Error::source(e);
                let mut last = None;
                while let Some(c) = cause {
                    last = Some(c.to_string());
                    cause = c.source();
                }
                if let Some(last) = last {
                    line.push_str(&format!(" ({last})"));
                }
                line.replace('\n', " ")
            }
            Failure::Usage(m) => format!("Error: {m}"),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Usage(m)
    }
}

pub type CliResult<T> = Result<T, Failure>;

fn run(cli: &Cli) -> CliResult<String> {
    match &cli.command {
        Command::Init(args) => admin::init(&cli.config, args.database.as_path(), &args.endpoint),
        Command::Backup { output } => admin::backup(&cli.config, output),
        Command::Restore { path, force } => {
            admin::restore(&load_config(&cli.config)?, path, *force)
        }
        Command::Kek(KekCommand::Rotate { backend }) => {
            admin::kek_rotate(&cli.config, backend.as_deref())
        }
        Command::Kek(KekCommand::Prune) => admin::kek_prune(&cli.config),
        Command::Kek(KekCommand::Stage { backend }) => {
            admin::kek_stage(&cli.config, backend.as_deref())
        }
        Command::Kek(KekCommand::Status) => admin::kek_status(&cli.config),
        Command::Check => admin::check(&cli.config),
        Command::Migrate(cmd) => migrate::run(cli, cmd),
        Command::Volume(cmd) => volume::run(cli, cmd),
        Command::Image(cmd) => image::run(cli, cmd),
        Command::Catalog(cmd) => catalog::run(cli, cmd),
        #[cfg(feature = "pkcs11")]
        Command::Hsm(cmd) => hsm::run(&cli.config, cmd),
        #[cfg(feature = "server")]
        Command::Serve => serve::serve(&cli.config),
        #[cfg(feature = "server")]
        Command::User(cmd) => serve::user(&cli.config, cmd),
        Command::Secret(cmd) => {
            let (_, store) = open_store(&cli.config)?;
            secret_command(cli, &store, &context(cli)?, cmd)
        }
        Command::ProjectStore(cmd) => project_store_command(cli, &open_store(&cli.config)?.1, cmd),
    }
}

pub fn load_config(path: &Path) -> CliResult<Config> {
    if !path.exists() {
        return Err(Failure::Usage(format!(
            "config {} does not exist; run `keywarden init` to create one, or pass --config",
            path.display()
        )));
    }
    Ok(Config::from_file(path)?)
}

/// The config and the store it describes. The database must exist: only
/// `init` and `restore` make one.
pub fn open_store(path: &Path) -> CliResult<(Config, SecretStore)> {
    let config = load_config(path)?;
    catalog::require_existing(&config)?;
    let store = SecretStore::open(&config)?;
    Ok((config, store))
}

fn context(cli: &Cli) -> CliResult<Context> {
    Ok(Context::new(
        UserId::new(cli.user.clone())?,
        ProjectId::new(cli.project.clone())?,
        cli.roles.split(','),
    ))
}

/// Accepts an href (`…/v1/<kind>/<uuid>`) or a bare uuid.
fn parse_ref<T: std::str::FromStr<Err = Error>>(text: &str, kind: &str) -> CliResult<T> {
    let text = text.trim().trim_end_matches('/');
    let id = match text.rsplit_once('/') {
        Some((base, id)) => {
            if !base.ends_with(&format!("/v1/{kind}")) {
                return Err(Failure::Usage(format!("{text} is not a {kind} href")));
            }
            id
        }
        None => text,
    };
    Ok(id.parse::<T>()?)
}

fn href(store: &SecretStore, kind: &str, id: impl std::fmt::Display) -> String {
    format!("{}/v1/{kind}/{id}", store.endpoint())
}

/// Progress on a terminal; quiet when piped.
pub fn progress(message: &str) {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r{message}\x1b[K");
        let _ = err.flush();
    }
}

/// Clears a progress line so other output starts on a clean line.
pub fn progress_clear() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

pub fn progress_done() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = writeln!(err);
    }
}
