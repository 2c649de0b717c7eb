//! Encrypted volumes without outside tools: the key lifecycle over the
//! store, attach, LUKS refusing bad input without touching the file, the
//! CBC ciphers and plain mode.
//!
//! One test binary with a module per topic.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/luks2.rs"]
mod luks2_headers;

mod attach;
mod cbc_and_plain;
mod keys;
mod luks;
mod luks2;
mod luks2_damage;
mod read_only;

use std::path::{Path, PathBuf};

use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, Pbkdf2Cost};

const FAST: Pbkdf2Cost = Pbkdf2Cost::Iterations(1000);

fn fast(key_bytes: usize) -> FormatOptions {
    FormatOptions::default()
        .with_key_bytes(key_bytes)
        .with_cost(FAST)
}

fn sized_file(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
    p
}

fn pass(text: &str) -> SecretBytes {
    SecretBytes::copy_from(text.as_bytes())
}
