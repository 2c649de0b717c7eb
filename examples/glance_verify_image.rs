//! Glance's side of image signing (the seed guide's chapter 7): the image
//! owner makes an RSA key and a certificate, stores the certificate in
//! keywarden, signs the image with RSA-PSS over SHA-256 and sets the four
//! `img_signature*` properties; glance verifies the upload as it stores it,
//! and refuses (and deletes) an upload with one changed byte.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, SecretType, UserId};
use keywarden::signature::{Failure, ImageSignature, ImageVerifier, VerifyOptions};
use keywarden::store::{NewSecret, SecretStore};
use rsa::signature::hazmat::PrehashSigner as _;
use sha2::{Digest as _, Sha256};
use x509_cert::builder::{Builder as _, CertificateBuilder, profile::cabf};
use x509_cert::der::EncodePem as _;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

const IMAGE_ID: &str = "2b1e4c3d-8f7a-4e21-9c5d-6a7b8c9d0e1f";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config::generate(dir.path().join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;
    let owner = Context::new(UserId::new("alice")?, ProjectId::new("demo")?, ["creator"]);

    // The image owner's key and self-signed certificate (`openssl genrsa`,
    // `openssl req`, `openssl x509 -req -signkey` in the guide).
    let key = rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 2048)?;
    let cert_pem = self_signed_pem(&key)?;
    // `openstack secret store --secret-type certificate
    //  --payload-content-type application/octet-stream
    //  --payload-content-encoding base64 --payload "$(base64 cert.pem)"`
    let wrapped_b64 = wrap76(&B64.encode(cert_pem.as_bytes()));
    let cert_id = store.store_secret(
        &owner,
        NewSecret::new()
            .name("image-signing-cert")
            .algorithm("RSA")
            .secret_type(SecretType::Certificate)
            .payload_text(
                wrapped_b64,
                Some("application/octet-stream"),
                Some("base64"),
            ),
    )?;
    println!("certificate stored: {}", store.secret_href(&cert_id));

    // `openssl dgst -sha256 -sign key.pem -sigopt rsa_padding_mode:pss`
    let image: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    let signer = rsa::pss::SigningKey::<Sha256>::new(key);
    let signature = signer.sign_prehash(&Sha256::digest(&image))?;
    let properties = BTreeMap::from([
        (
            "img_signature".to_owned(),
            B64.encode(Box::<[u8]>::from(signature)),
        ),
        ("img_signature_hash_method".to_owned(), "SHA-256".to_owned()),
        ("img_signature_key_type".to_owned(), "RSA-PSS".to_owned()),
        (
            "img_signature_certificate_uuid".to_owned(),
            cert_id.to_string(),
        ),
    ]);
    println!("image signed: {} bytes, RSA-PSS over SHA-256", image.len());

    // Glance's upload: hash while storing, verify at the end.
    let data = dir.path().join(IMAGE_ID);
    upload(&store, &owner, &properties, &image, &data)?;
    println!("Successfully verified signature for image {IMAGE_ID}");
    assert_eq!(std::fs::read(&data)?, image);

    let mut tampered = image.clone();
    tampered[1_000_000] ^= 0x01;
    let err = upload(&store, &owner, &properties, &tampered, &data).expect_err("tampered");
    assert!(matches!(
        Failure::of(&err),
        Some(Failure::SignatureMismatch)
    ));
    assert!(!data.exists(), "glance deletes the data of a failed upload");
    println!("Signature verification failed for image {IMAGE_ID}: {err}");
    println!("glance_verify_image: done");
    Ok(())
}

/// Stores the upload at `data` while verifying it; deletes it on failure.
fn upload(
    store: &SecretStore,
    ctx: &Context,
    properties: &BTreeMap<String, String>,
    image: &[u8],
    data: &std::path::Path,
) -> keywarden::Result<()> {
    let signature = ImageSignature::from_properties(properties)?.expect("signed image");
    let mut verifier = ImageVerifier::new(store, ctx, signature, &VerifyOptions::default())?;
    let mut file = File::create(data).expect("data dir is writable");
    for chunk in image.chunks(64 * 1024) {
        file.write_all(chunk).expect("write image data");
        verifier.update(chunk);
    }
    drop(file);
    verifier.verify().map(drop).inspect_err(|_| {
        let _ = std::fs::remove_file(data);
    })
}

/// A self-signed certificate for `key`, valid for a year, as PEM.
fn self_signed_pem(key: &rsa::PrivateKey) -> Result<String, Box<dyn std::error::Error>> {
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(&key.to_public_key())?;
    let builder = CertificateBuilder::new(
        cabf::Root::new(
            false,
            Name::from_str("CN=image signing,O=keywarden example,C=US")?,
        )?,
        SerialNumber::from(1u32),
        Validity::from_now(Duration::from_secs(365 * 86_400))?,
        spki,
    )?;
    let cert = builder.build::<_, rsa::pkcs1v15::Signature>(&signer)?;
    Ok(cert.to_pem(LineEnding::LF)?)
}

/// base64 wrapped at 76 columns, as the `base64` command prints it.
fn wrap76(b64: &str) -> String {
    b64.as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join("\n")
}
