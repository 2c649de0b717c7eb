//! Cinder's side (the seed guide's chapter 8): a volume is created from a
//! signed glance image. The image is verified before anything is written
//! to the volume, the outcome lands in the volume's image metadata as
//! `signature_verified`, and cinder's log line is emitted. Here the image
//! is signed with ECDSA on P-384 over SHA-384 (`ECC_SECP384R1`).

use std::collections::BTreeMap;
use std::fs::File;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ContentType, ProjectId, SecretType, UserId};
use keywarden::secret::SecretBytes;
use keywarden::signature::Failure;
use keywarden::signature::cinder::{
    GlanceImage, SIGNATURE_VERIFIED, VerifyGlanceSignatures, copy_image_to_volume,
};
use keywarden::store::{NewSecret, SecretStore};
use p384::ecdsa::signature::hazmat::PrehashSigner as _;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use p384::elliptic_curve::Generate as _;
use sha2::{Digest as _, Sha384};
use x509_cert::builder::{Builder as _, CertificateBuilder, profile::cabf};
use x509_cert::der::Encode as _;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Cinder's log lines, as an operator would see them.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .init();
    let dir = tempfile::tempdir()?;
    let config = Config::generate(dir.path().join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;
    let user = Context::new(UserId::new("bob")?, ProjectId::new("demo")?, ["creator"]);

    // The image owner's key and certificate, stored as DER this time.
    let key = SigningKey::generate_from_rng(&mut UnwrapErr(SysRng));
    let cert_der = self_signed_der(&key)?;
    let cert_id = store.store_secret(
        &user,
        NewSecret::new()
            .name("image-signing-cert")
            .secret_type(SecretType::Certificate)
            .payload_bytes(SecretBytes::new(cert_der), ContentType::OctetStream),
    )?;

    // The signed image in glance.
    let image: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let signature: Signature = key.sign_prehash(&Sha384::digest(&image))?;
    let glance_image = GlanceImage {
        id: "0c7a9f8e-5d4b-4c3a-8b2e-1f0e9d8c7b6a".to_owned(),
        properties: BTreeMap::from([
            (
                "img_signature".to_owned(),
                B64.encode(signature.to_der().as_bytes()),
            ),
            ("img_signature_hash_method".to_owned(), "SHA-384".to_owned()),
            (
                "img_signature_key_type".to_owned(),
                "ECC_SECP384R1".to_owned(),
            ),
            (
                "img_signature_certificate_uuid".to_owned(),
                cert_id.to_string(),
            ),
            ("os_distro".to_owned(), "cirros".to_owned()),
        ]),
    };

    // `openstack volume create --image … --size 1 signed-volume`
    let staging = dir.path().join("conversion");
    std::fs::create_dir_all(&staging)?;
    let volume_path = dir.path().join("volume-1");
    let metadata = copy_image_to_volume(
        &store,
        &user,
        &glance_image,
        &image[..],
        &staging,
        File::create(&volume_path)?,
        VerifyGlanceSignatures::Enabled,
    )?;
    assert_eq!(std::fs::read(&volume_path)?, image);
    assert_eq!(metadata[SIGNATURE_VERIFIED], "True");
    println!("volume-1 volume_image_metadata: {metadata:?}");

    // The same image with one byte changed never reaches the volume.
    let mut tampered = image.clone();
    tampered[42] ^= 0xff;
    let volume_path = dir.path().join("volume-2");
    let err = copy_image_to_volume(
        &store,
        &user,
        &glance_image,
        &tampered[..],
        &staging,
        File::create(&volume_path)?,
        VerifyGlanceSignatures::Enabled,
    )
    .expect_err("tampered image");
    assert!(matches!(
        Failure::of(&err),
        Some(Failure::SignatureMismatch)
    ));
    assert_eq!(std::fs::metadata(&volume_path)?.len(), 0, "nothing written");
    assert_eq!(
        std::fs::read_dir(&staging)?.count(),
        0,
        "staging file removed"
    );
    println!("volume-2 refused: {err}");

    // An unsigned image is written and recorded as not verified.
    let unsigned = GlanceImage {
        id: "unsigned-image".to_owned(),
        properties: BTreeMap::new(),
    };
    let metadata = copy_image_to_volume(
        &store,
        &user,
        &unsigned,
        &image[..],
        &staging,
        File::create(dir.path().join("volume-3"))?,
        VerifyGlanceSignatures::Enabled,
    )?;
    assert_eq!(metadata[SIGNATURE_VERIFIED], "False");
    println!("volume-3 (unsigned image): signature_verified = False");
    println!("cinder_volume_from_signed_image: done");
    Ok(())
}

/// A self-signed P-384 certificate for `key`, valid for a year, as DER.
fn self_signed_der(key: &SigningKey) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key())?;
    let builder = CertificateBuilder::new(
        cabf::Root::new(
            false,
            Name::from_str("CN=image signing,O=keywarden example,C=US")?,
        )?,
        SerialNumber::from(2u32),
        Validity::from_now(Duration::from_secs(365 * 86_400))?,
        spki,
    )?;
    let cert = builder.build::<_, DerSignature>(key)?;
    Ok(cert.to_der()?)
}
