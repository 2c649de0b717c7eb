//! The `keywarden` command, driven as an operator drives it: the built
//! binary in a directory of its own, `--config` explicit, and the variables
//! the command reads (`KEYWARDEN_CONFIG`, `OS_*`) removed, so nothing from
//! the environment running the tests leaks in.
//!
//! [`Keywarden`] is one installation (a directory with a config and a
//! catalog); [`Outcome`] is what one run printed. A refusal is exit status
//! 1, nothing on stdout and one line on stderr; [`Keywarden::refused_unchanged`]
//! also checks that it changed nothing ([`State`]). [`Keywarden::assert_refusals`]
//! runs a table of such refusals ([`Refusal`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest as _, Sha256};

/// The built `keywarden` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_keywarden");

/// What `keywarden secret …` prints before a secret's id.
pub const SECRETS_BASE: &str = "http://localhost:9311/v1/secrets/";

/// The variables the command reads: removed from every run the tests start.
const COMMAND_ENV: [&str; 4] = [
    "KEYWARDEN_CONFIG",
    "OS_PROJECT_ID",
    "OS_USER_ID",
    "OS_ROLES",
];

/// Removes the variables the command reads from `command`'s environment
/// (for a peer that runs `keywarden` itself); the caller sets what it means.
pub fn isolate(command: &mut Command) -> &mut Command {
    for var in COMMAND_ENV {
        command.env_remove(var);
    }
    command
}

/// One keywarden installation: a directory (its own temp dir, or one the
/// test owns) and the config path in it.
pub struct Keywarden {
    dir: PathBuf,
    pub config: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// An identity passed with `--os-user-id`, `--os-project-id`, `--os-roles`.
pub struct Who {
    pub user: &'static str,
    pub project: &'static str,
    pub roles: &'static str,
}

impl Who {
    pub fn args(&self) -> [&'static str; 6] {
        [
            "--os-user-id",
            self.user,
            "--os-project-id",
            self.project,
            "--os-roles",
            self.roles,
        ]
    }
}

/// What one run of the command printed, and its exit status.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// What the tests compare to show that a refusal changed nothing: every row
/// of every table of the SQLite catalog, the config file (as a digest: a
/// failing assertion prints the state, and the config holds the master KEK),
/// and the directory's other files with a digest of each (SQLite's own
/// `-wal`/`-shm` files come and go and are left out, and the catalog is
/// compared by its rows).
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    rows: Vec<String>,
    config_sha256: String,
    files: BTreeMap<String, String>,
}

/// One command that must be refused, as a line of a table that
/// [`Keywarden::assert_refusals`] runs.
pub struct Refusal {
    /// What the case shows; printed when it fails.
    pub what: &'static str,
    /// The arguments, separated by spaces. `''` is an empty argument, and
    /// `{name}` is replaced by the test's value for it ([`Vars`]). Unless
    /// they start with `--config`, the installation's `--config` comes first.
    pub args: &'static str,
    /// The one line on stderr, without its newline: `[..]` matches any
    /// text, `{name}` is replaced as in `args`.
    pub stderr: &'static str,
}

/// The values a table's `{name}` placeholders stand for.
#[derive(Default)]
pub struct Vars(BTreeMap<&'static str, Vec<String>>);

impl Keywarden {
    /// A fresh directory with `keywarden init` run in it.
    pub fn new() -> Self {
        let kw = Keywarden::uninitialised();
        kw.init();
        kw
    }

    /// A fresh directory with nothing in it yet.
    pub fn uninitialised() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut kw = Keywarden::uninitialised_in(temp.path());
        kw._temp = Some(temp);
        kw
    }

    /// An installation in `dir`, which the caller owns; nothing run yet.
    pub fn uninitialised_in(dir: &Path) -> Self {
        Keywarden {
            dir: dir.to_path_buf(),
            config: dir.join("keywarden.toml"),
            _temp: None,
        }
    }

    /// `keywarden init`, which must succeed and say what it made.
    pub fn init(&self) {
        let out = self.ok(&["init"]);
        assert!(out.contains("mode 0600"), "{out}");
        assert!(out.contains("Created database"), "{out}");
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The SQLite catalog `keywarden init` makes.
    pub fn db(&self) -> PathBuf {
        self.path("keywarden.db")
    }

    /// The binary in this directory with no config or identity from the
    /// environment.
    pub fn bare_command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.dir).stdin(Stdio::null());
        isolate(&mut c);
        c
    }

    /// [`Keywarden::bare_command`] with this installation's `--config`.
    pub fn command(&self) -> Command {
        self.command_with_config(&self.config)
    }

    pub fn command_with_config(&self, config: &Path) -> Command {
        let mut c = self.bare_command();
        c.arg("--config").arg(config);
        c
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        Outcome::of(self.command().args(args))
    }

    pub fn run_as(&self, who: &Who, args: &[&str]) -> Outcome {
        Outcome::of(self.command().args(who.args()).args(args))
    }

    pub fn run_with_config(&self, config: &Path, args: &[&str]) -> Outcome {
        Outcome::of(self.command_with_config(config).args(args))
    }

    /// Runs as the default identity; must succeed quietly (no progress
    /// output when stderr is not a terminal). Returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.run(args).assert_ok(args)
    }

    pub fn ok_as(&self, who: &Who, args: &[&str]) -> String {
        self.run_as(who, args).assert_ok(args)
    }

    pub fn refused(&self, args: &[&str], phrase: &str) -> String {
        self.run(args).assert_refused(phrase)
    }

    /// A refusal that leaves the catalog, the config and the directory as
    /// they were. Returns the one line on stderr.
    pub fn refused_unchanged(&self, args: &[&str], phrase: &str) -> String {
        let before = self.state();
        let line = self.refused(args, phrase);
        assert_eq!(self.state(), before, "{args:?} changed something");
        line
    }

    pub fn refused_unchanged_as(&self, who: &Who, args: &[&str], phrase: &str) -> String {
        let before = self.state();
        let line = self.run_as(who, args).assert_refused(phrase);
        assert_eq!(self.state(), before, "{args:?} changed something");
        line
    }

    /// Runs every case of `cases` in turn: each must be refused (exit status
    /// 1, nothing on stdout, its one line on stderr) and change nothing.
    /// Every failing case is reported, not only the first.
    #[track_caller]
    pub fn assert_refusals(&self, vars: &Vars, cases: &[Refusal]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|case| {
                self.check_refusal(vars, case)
                    .err()
                    .map(|why| format!("{}: `{}`: {why}", case.what, case.args))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} refusals failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    fn check_refusal(&self, vars: &Vars, case: &Refusal) -> Result<(), String> {
        let args = vars.args(case.args);
        let mut command = match args.first().map(String::as_str) {
            Some("--config") => self.bare_command(),
            _ => self.command(),
        };
        let before = self.state();
        let out = Outcome::of(command.args(&args));
        let line = out.refusal_line()?;
        let pattern = vars.text(case.stderr);
        if !matches(&line, &pattern) {
            return Err(format!("{line:?} does not match {pattern:?}"));
        }
        if self.state() != before {
            return Err("something changed".to_owned());
        }
        Ok(())
    }

    /// One column of a one-object command, via `-f value -c COLUMN`.
    pub fn field(&self, args: &[&str], column: &str) -> String {
        let args = [args, &["-f", "value", "-c", column]].concat();
        trim_line(self.ok(&args))
    }

    pub fn field_as(&self, who: &Who, args: &[&str], column: &str) -> String {
        let args = [args, &["-f", "value", "-c", column]].concat();
        trim_line(self.ok_as(who, &args))
    }

    /// Stores a text secret as the default identity; returns its href.
    pub fn store(&self, name: &str, payload: &str) -> String {
        let href = self.field(
            &["secret", "store", "--name", name, "--payload", payload],
            "Secret href",
        );
        assert_secret_href(&href);
        href
    }

    /// The payload as `--payload -f value` prints it (without the newline
    /// the value format adds).
    pub fn payload(&self, href: &str) -> String {
        strip_newline(self.ok(&["secret", "get", href, "--payload", "-f", "value"]))
    }

    pub fn payload_as(&self, who: &Who, href: &str) -> String {
        strip_newline(self.ok_as(who, &["secret", "get", href, "--payload", "-f", "value"]))
    }

    /// The raw payload bytes, through `--file`.
    pub fn payload_file(&self, href: &str) -> Vec<u8> {
        let file = self.path(&format!("{}.payload", uuid_of(href)));
        assert_eq!(
            self.ok(&["secret", "get", href, "--file", file.to_str().unwrap()]),
            ""
        );
        let bytes = fs::read(&file).unwrap();
        fs::remove_file(&file).unwrap();
        bytes
    }

    /// The hrefs `secret list` shows.
    pub fn hrefs(&self) -> BTreeSet<String> {
        self.ok(&["secret", "list", "-f", "value", "-c", "Secret href"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The names in the directory, less the config and SQLite's `-wal` and
    /// `-shm` files.
    pub fn leftover_files(&self) -> BTreeSet<String> {
        self.files().into_keys().collect()
    }

    /// [`Keywarden::leftover_files`], each with a digest of its bytes (the
    /// catalog, compared by its rows, and directories get none).
    fn files(&self) -> BTreeMap<String, String> {
        let db = self.db();
        fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.to_owned();
                let skip = name.ends_with("-wal") || name.ends_with("-shm") || path == self.config;
                let digest = if path.is_file() && path != db {
                    hex(&Sha256::digest(fs::read(&path).unwrap()))
                } else {
                    String::new()
                };
                (!skip).then_some((name, digest))
            })
            .collect()
    }

    pub fn state(&self) -> State {
        State {
            rows: dump(&self.db()),
            config_sha256: hex(&Sha256::digest(fs::read(&self.config).unwrap_or_default())),
            files: self.files(),
        }
    }
}

impl Outcome {
    /// Runs `command` to the end.
    pub fn of(command: &mut Command) -> Self {
        let o = command.output().expect("run keywarden");
        Outcome {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Exit status 0 and nothing on stderr; returns stdout.
    pub fn assert_ok(self, args: &[&str]) -> String {
        assert_eq!(self.code, Some(0), "{args:?} failed: {self:?}");
        assert!(self.stderr.is_empty(), "{args:?} wrote to stderr: {self:?}");
        self.stdout
    }

    /// Exit status 1, nothing on stdout, one line on stderr holding `phrase`.
    pub fn assert_refused(&self, phrase: &str) -> String {
        let line = self.refusal_line().unwrap_or_else(|why| panic!("{why}"));
        assert!(line.contains(phrase), "{line:?} lacks {phrase:?}");
        line
    }

    /// The one line on stderr, without its newline.
    pub fn one_line(&self) -> String {
        self.stderr_line().unwrap_or_else(|why| panic!("{why}"))
    }

    /// The line of a refusal, or why this is not one.
    fn refusal_line(&self) -> Result<String, String> {
        if self.code != Some(1) {
            return Err(format!("exit status {:?}, not 1: {self:?}", self.code));
        }
        if !self.stdout.is_empty() {
            return Err(format!("a refusal printed output: {self:?}"));
        }
        self.stderr_line()
    }

    fn stderr_line(&self) -> Result<String, String> {
        match self.stderr.strip_suffix('\n') {
            Some(line) if !line.is_empty() && !line.contains('\n') => Ok(line.to_owned()),
            _ => Err(format!("stderr is not exactly one line: {self:?}")),
        }
    }
}

impl Vars {
    pub fn new() -> Self {
        Vars::default()
    }

    /// `{name}` stands for `value`.
    pub fn with(self, name: &'static str, value: impl Into<String>) -> Self {
        self.with_args(name, [value.into()])
    }

    /// An argument `{name}` stands for these arguments (an identity's
    /// flags, say).
    pub fn with_args<S: Into<String>>(
        mut self,
        name: &'static str,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        assert!(
            self.0.insert(name, values).is_none(),
            "{{{name}}} set twice"
        );
        self
    }

    /// A table's `args`, split and with their placeholders replaced.
    fn args(&self, args: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in args.split_whitespace() {
            let exact = word.strip_prefix('{').and_then(|w| w.strip_suffix('}'));
            match (word, exact.and_then(|name| self.0.get(name))) {
                ("''", _) => out.push(String::new()),
                (_, Some(values)) => out.extend(values.iter().cloned()),
                _ => out.push(self.text(word)),
            }
        }
        out
    }

    /// `text` with each `{name}` replaced by its value(s), space-separated.
    fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, values) in &self.0 {
            out = out.replace(&format!("{{{name}}}"), &values.join(" "));
        }
        let unknown = out.find('{').zip(out.find('}')).filter(|(a, b)| a < b);
        assert!(unknown.is_none(), "an unknown placeholder in {text:?}");
        out
    }
}

/// Whether `line` is `pattern`, where `[..]` in the pattern matches any text.
pub fn matches(line: &str, pattern: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `s` without its one trailing newline (it must have exactly one).
pub fn trim_line(mut s: String) -> String {
    assert!(s.ends_with('\n') && s.matches('\n').count() == 1, "{s:?}");
    s.pop();
    s
}

/// `s` without its last character, which must be a newline.
pub fn strip_newline(mut s: String) -> String {
    assert_eq!(s.pop(), Some('\n'), "{s:?}");
    s
}

pub fn assert_secret_href(href: &str) {
    let id = href
        .strip_prefix(SECRETS_BASE)
        .unwrap_or_else(|| panic!("{href} is not a secret href"));
    assert_eq!(id.len(), 36, "{href}");
    assert_eq!(id.matches('-').count(), 4, "{href}");
}

/// The id at the end of an href (or a bare id itself).
pub fn uuid_of(href: &str) -> &str {
    href.rsplit('/').next().unwrap()
}

/// A file's permission bits.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The value of `field` in a Field/Value table.
pub fn table_value(table: &str, field: &str) -> String {
    table
        .lines()
        .find_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() == 4 && cells[1] == field).then(|| cells[2].to_owned())
        })
        .unwrap_or_else(|| panic!("no {field} in\n{table}"))
}

/// Flips one bit in the middle of a BLOB column, straight in the file.
pub fn flip_byte(db: &Path, table: &str, column: &str, id: Option<&str>) {
    let c = Connection::open(db).unwrap();
    let filter = if id.is_some() { "WHERE id = ?1" } else { "" };
    let (rowid, mut blob): (i64, Vec<u8>) = c
        .query_row(
            &format!("SELECT rowid, {column} FROM {table} {filter} LIMIT 1"),
            rusqlite::params_from_iter(id),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let middle = blob.len() / 2;
    blob[middle] ^= 0x01;
    let n = c
        .execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
            rusqlite::params![blob, rowid],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Every row of every table, rendered, in a stable order.
fn dump(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let c = Connection::open(db).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1, 2"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => hex(b),
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(" | ")));
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
