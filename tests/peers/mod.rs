//! Real peers the interop tests drive: the `openssl` command and swift's
//! Python code in the `.venv-peers` venv that `scripts/test.sh` makes.
//!
//! Where a peer is missing the test is skipped with a note, except under
//! `CI=true`, where a missing peer is a failure.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Whether `CI=true` is set.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `None` (skip) or a panic under CI, with `why`.
fn missing<T>(why: &str) -> Option<T> {
    if in_ci() {
        panic!("peer missing under CI=true: {why}");
    }
    eprintln!("SKIPPED (peer missing; a failure under CI=true): {why}");
    None
}

/// The `openssl` command, if it runs.
pub fn openssl() -> Option<PathBuf> {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => Some(PathBuf::from("openssl")),
        _ => missing("the openssl command"),
    }
}

/// The peers venv's python with swift and castellan importable.
pub fn swift_python() -> Option<PathBuf> {
    let venv = std::env::var_os("KEYWARDEN_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-peers"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args([
            "-c",
            "import swift.common.middleware.crypto.kms_keymaster, castellan",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else {
        missing(&format!(
            "{} with swift and castellan (scripts/test.sh installs them)",
            python.display()
        ))
    }
}

/// This directory (the Python shims live here).
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Runs a command; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
