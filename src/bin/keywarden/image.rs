//! `keywarden image verify`: checks an image file against its signature
//! properties, with the certificate taken from the store (cursive's check,
//! as glance, nova and cinder run it).

use std::fs::File;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use keywarden::model::{SecretId, Timestamp};
use keywarden::signature::{ImageSignature, VerifyOptions, verify_image};

use crate::output::Cell;
use crate::{Cli, CliResult, Failure, context, open_store, parse_ref, show};

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Verify an image file's signature against a certificate in the store.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The image file.
    #[arg(long)]
    file: PathBuf,
    /// `img_signature`: base64 of the signature.
    #[arg(long)]
    signature: String,
    /// `img_signature_hash_method`: SHA-224, SHA-256, SHA-384 or SHA-512.
    #[arg(long = "hash-method")]
    hash_method: String,
    /// `img_signature_key_type`: RSA-PSS, DSA, ECC_SECP384R1 or ECC_SECP521R1.
    #[arg(long = "key-type")]
    key_type: String,
    /// `img_signature_certificate_uuid`: the certificate secret (uuid or href).
    #[arg(long)]
    certificate: String,
    /// Also refuse a certificate outside its validity dates.
    #[arg(long = "check-dates")]
    check_dates: bool,
}

pub fn run(cli: &Cli, cmd: &ImageCommand) -> CliResult<String> {
    let ImageCommand::Verify(a) = cmd;
    let (_, store) = open_store(&cli.config)?;
    let ctx = context(cli)?;
    let certificate: SecretId = parse_ref(&a.certificate, "secrets")?;
    let signature = ImageSignature::new(
        &a.signature,
        &a.hash_method,
        &a.key_type,
        &certificate.to_string(),
    )?;
    let image = File::open(&a.file)
        .map_err(|e| Failure::Usage(format!("cannot open {}: {e}", a.file.display())))?;
    let options = VerifyOptions {
        check_dates_at: a.check_dates.then(Timestamp::now),
    };
    let verified = verify_image(&store, &ctx, signature, image, &options)?;
    if verified.weak_key {
        eprintln!(
            "Warning: the certificate's RSA key has {} bits; keys under 2048 bits are weak",
            verified.key_bits
        );
    }
    show(
        cli,
        &vec![
            ("Image", Cell::Text(a.file.display().to_string())),
            ("Verified", Cell::Text("True".into())),
            ("Hash method", Cell::Text(verified.hash_method.to_string())),
            ("Key type", Cell::Text(verified.key_type.to_string())),
            ("Key bits", Cell::Int(verified.key_bits as u64)),
            (
                "Certificate href",
                Cell::Text(store.secret_href(&verified.certificate_id)),
            ),
            (
                "Certificate subject",
                Cell::Text(verified.certificate_subject),
            ),
            ("Bytes", Cell::Int(verified.bytes)),
        ],
    )
}
