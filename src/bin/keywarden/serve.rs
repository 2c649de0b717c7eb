//! `keywarden serve` (Barbican's v1 API) and `keywarden user add` (the
//! `http_basic` users file).

use std::io::BufRead as _;
use std::path::Path;

use clap::Subcommand;
use keywarden::server::{self, UsersFile};
use zeroize::Zeroizing;

use crate::{CliResult, Failure, admin, catalog, load_config};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add (or replace) a user of the `http_basic` users file. The
    /// password is read from KEYWARDEN_USER_PASSWORD or the first line of
    /// standard input.
    Add {
        name: String,
        /// The project the user acts for.
        #[arg(long)]
        project: String,
        /// Comma-separated roles (admin, creator, observer, audit).
        #[arg(long, default_value = "creator")]
        roles: String,
    },
}

/// Serves until SIGTERM/SIGINT; SIGHUP reloads the config's master KEKs.
/// A bad config is one line and exit 1.
pub fn serve(config_path: &Path) -> CliResult<String> {
    let config = load_config(config_path)?;
    catalog::require_existing(&config)?;
    server::serve_blocking_reloading(&config, Some(config_path))?;
    Ok(String::new())
}

pub fn user(config_path: &Path, cmd: &UserCommand) -> CliResult<String> {
    let UserCommand::Add {
        name,
        project,
        roles,
    } = cmd;
    let config = load_config(config_path)?;
    let path = server::config::users_file(&config);
    let mut users = if path.exists() {
        UsersFile::load(&path)?
    } else {
        UsersFile::default()
    };
    let password = read_password()?;
    let roles: Vec<String> = roles
        .split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    users.set_user(name, password.as_bytes(), project, roles)?;
    admin::write_private_file(&path, users.to_toml().as_bytes())?;
    Ok(format!(
        "User {name} (project {project}) written to {}\n",
        path.display()
    ))
}

fn read_password() -> CliResult<Zeroizing<String>> {
    if let Ok(p) = std::env::var("KEYWARDEN_USER_PASSWORD") {
        return non_empty(Zeroizing::new(p));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Failure::Usage(format!("cannot read the password from standard input: {e}"))
    })?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    non_empty(trimmed)
}

fn non_empty(p: Zeroizing<String>) -> CliResult<Zeroizing<String>> {
    if p.is_empty() {
        return Err(Failure::Usage(
            "empty password (set KEYWARDEN_USER_PASSWORD or pipe it on standard input)".into(),
        ));
    }
    Ok(p)
}
