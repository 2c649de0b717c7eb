//! Image signatures made by the real `openssl` command verify (and fail)
//! as cursive's would, against certificates stored in keywarden.
//!
//! One test binary with a module per topic; the scratch directory, the
//! certificate secrets and the verify call they share are here.

#[path = "../common/mod.rs"]
mod common;
#[path = "../peers/mod.rs"]
mod peers;

mod cinder;
mod failures;
mod openssl;

use std::path::PathBuf;
use std::process::Command;

use keywarden::context::Context;
use keywarden::model::{SecretId, SecretType};
use keywarden::signature::{Failure, ImageSignature, VerifyOptions, verify_image};
use keywarden::store::{NewSecret, SecretStore};

const IMAGE: &[u8] = b"This is a dodgy image\n";

/// A scratch directory where the openssl commands run.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, program: &str, args: &[&str]) -> Vec<u8> {
        peers::run(
            Command::new(program)
                .current_dir(self.dir.path())
                .args(args),
        )
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    fn sign_b64(&self, key: &str, hash: &str, image: &str, extra: &[&str]) -> String {
        let mut args = vec!["dgst", hash, "-sign", key];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-out", "image.sig", image]);
        self.run("openssl", &args);
        let b64 = self.run("base64", &["-w", "0", "image.sig"]);
        String::from_utf8(b64).unwrap()
    }

    /// A self-signed certificate for `key` valid for `days`.
    fn self_signed(&self, key: &str, days: &str, out: &str) {
        self.run(
            "openssl",
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                key,
                "-days",
                days,
                "-subj",
                "/O=keywarden/CN=image-signing",
                "-out",
                out,
            ],
        );
    }
}

fn creator() -> Context {
    common::ctx("glance-user", "images", &["creator"])
}

/// Stores `payload` as a certificate secret the way `openstack secret
/// store` does: text, with a content type and an optional encoding.
fn store_cert(store: &SecretStore, text: &str, content_type: &str, enc: Option<&str>) -> SecretId {
    store
        .store_secret(
            &creator(),
            NewSecret::new()
                .name("test")
                .algorithm("RSA")
                .secret_type(SecretType::Certificate)
                .payload_text(text, Some(content_type), enc),
        )
        .unwrap()
}

fn verify(
    store: &SecretStore,
    sig: &str,
    hash: &str,
    key_type: &str,
    cert: &SecretId,
    image: &[u8],
) -> keywarden::Result<keywarden::signature::Verified> {
    let signature = ImageSignature::new(sig, hash, key_type, &cert.to_string())?;
    verify_image(
        store,
        &creator(),
        signature,
        image,
        &VerifyOptions::default(),
    )
}

fn failure(e: &keywarden::Error) -> &Failure {
    Failure::of(e).unwrap_or_else(|| panic!("no typed failure in {e:?}"))
}

fn big_image() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect()
}
