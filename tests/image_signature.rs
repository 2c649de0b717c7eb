//! Image signatures made by the real `openssl` command verify (and fail)
//! as cursive's would, against certificates stored in keywarden.
//!
//! The first test is the glance guide's procedure (the seed guide's §7.2)
//! step by step: a 1024-bit key from `openssl genrsa`, a CSR, a
//! self-signed certificate from `openssl x509 -req`, the certificate stored
//! as `base64` output (with line breaks) in a certificate secret, the image
//! signed with `openssl dgst -sha256 -sign … -sigopt rsa_padding_mode:pss`.

mod common;
mod peers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use keywarden::ErrorKind;
use keywarden::context::Context;
use keywarden::model::{ContentType, SecretId, SecretType, Timestamp};
use keywarden::secret::SecretBytes;
use keywarden::signature::cinder::{
    GlanceImage, SIGNATURE_VERIFIED, VerifyGlanceSignatures, copy_image_to_volume,
};
use keywarden::signature::{
    Failure, ImageSignature, SigningCertificate, VerifyOptions, verify_image,
};
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

#[test]
fn glance_guide_procedure_with_openssl() {
    let Some(_) = peers::openssl() else { return };
    let fx = common::Fixture::new();
    let w = Work::new();
    // The guide's commands, as written (plus -subj so `req` does not prompt).
    w.run("openssl", &["genrsa", "-out", "private_key.pem", "1024"]);
    w.run(
        "openssl",
        &[
            "rsa",
            "-pubout",
            "-in",
            "private_key.pem",
            "-out",
            "public_key.pem",
        ],
    );
    w.run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "private_key.pem",
            "-out",
            "cert_request.csr",
            "-subj",
            "/C=US/ST=Here/L=There/O=keywarden/CN=glance-guide",
        ],
    );
    w.run(
        "openssl",
        &[
            "x509",
            "-req",
            "-days",
            "14",
            "-in",
            "cert_request.csr",
            "-signkey",
            "private_key.pem",
            "-out",
            "new_cert.crt",
        ],
    );
    // `--payload "$(base64 new_cert.crt)"`: base64 with line breaks (the
    // shell's $(…) drops only the last newline).
    let b64 = String::from_utf8(w.run("base64", &["new_cert.crt"])).unwrap();
    let b64 = b64.trim_end_matches('\n');
    assert!(b64.contains('\n'), "base64 wraps its lines");
    let cert = store_cert(&fx.store, b64, "application/octet-stream", Some("base64"));
    w.write("myimage", IMAGE);
    w.run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sign",
            "private_key.pem",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-out",
            "myimage.signature",
            "myimage",
        ],
    );
    let sig = String::from_utf8(w.run("base64", &["-w", "0", "myimage.signature"])).unwrap();

    let ok = verify(&fx.store, &sig, "SHA-256", "RSA-PSS", &cert, IMAGE).unwrap();
    assert_eq!(ok.key_bits, 1024);
    assert!(ok.weak_key, "a 1024-bit key is accepted with a warning");
    assert_eq!(ok.bytes, IMAGE.len() as u64);

    // One changed byte of the image fails, and says why.
    for i in [0, IMAGE.len() / 2, IMAGE.len() - 1] {
        let mut bad = IMAGE.to_vec();
        bad[i] ^= 0x01;
        let e = verify(&fx.store, &sig, "SHA-256", "RSA-PSS", &cert, &bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(matches!(failure(&e), Failure::SignatureMismatch), "{e}");
    }
}

#[cfg(feature = "cli")]
#[test]
fn glance_guide_procedure_through_the_keywarden_command() {
    let Some(_) = peers::openssl() else { return };
    let w = Work::new();
    // The command runs where openssl writes its files.
    let kw = common::cli::Keywarden::uninitialised_in(w.dir.path());
    kw.init();
    w.run("openssl", &["genrsa", "-out", "private_key.pem", "1024"]);
    w.run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "private_key.pem",
            "-out",
            "cert_request.csr",
            "-subj",
            "/CN=cli",
        ],
    );
    w.run(
        "openssl",
        &[
            "x509",
            "-req",
            "-days",
            "14",
            "-in",
            "cert_request.csr",
            "-signkey",
            "private_key.pem",
            "-out",
            "new_cert.crt",
        ],
    );
    let b64 = String::from_utf8(w.run("base64", &["new_cert.crt"])).unwrap();
    let href = kw.field(
        &[
            "secret",
            "store",
            "--name",
            "test",
            "--algorithm",
            "RSA",
            "--secret-type",
            "certificate",
            "--payload-content-type",
            "application/octet-stream",
            "--payload-content-encoding",
            "base64",
            "--payload",
            b64.trim_end(),
        ],
        "Secret href",
    );
    w.write("myimage", IMAGE);
    let sig = w.sign_b64(
        "private_key.pem",
        "-sha256",
        "myimage",
        &["-sigopt", "rsa_padding_mode:pss"],
    );
    let verify_cli = || {
        kw.run(&[
            "image",
            "verify",
            "--file",
            "myimage",
            "--signature",
            &sig,
            "--hash-method",
            "SHA-256",
            "--key-type",
            "RSA-PSS",
            "--certificate",
            &href,
        ])
    };
    let out = verify_cli();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Verified") && out.stdout.contains("True"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("1024 bits"),
        "weak-key warning: {out:?}"
    );

    let mut bad = IMAGE.to_vec();
    bad[3] = b'X';
    w.write("myimage", &bad);
    verify_cli().assert_refused("Signature does not match the image");
}

/// Every hash method with every key type, and the certificate stored as
/// PEM, DER, and base64 text of the PEM.
#[test]
fn every_hash_and_key_type_from_openssl() {
    let Some(_) = peers::openssl() else { return };
    let fx = common::Fixture::new();
    let w = Work::new();
    w.write("image", &big_image());
    w.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    w.run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "p384.pem",
        ],
    );
    w.run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "secp521r1",
            "-genkey",
            "-noout",
            "-out",
            "p521.pem",
        ],
    );
    w.run(
        "openssl",
        &["dsaparam", "-genkey", "-out", "dsa.pem", "2048"],
    );
    let keys = [
        ("rsa.pem", "RSA-PSS"),
        ("p384.pem", "ECC_SECP384R1"),
        ("p521.pem", "ECC_SECP521R1"),
        ("dsa.pem", "DSA"),
    ];
    let image = w.read("image");
    for (key, key_type) in keys {
        let crt = format!("{key}.crt");
        w.self_signed(key, "30", &crt);
        w.run(
            "openssl",
            &["x509", "-in", &crt, "-outform", "DER", "-out", "cert.der"],
        );
        let pem = String::from_utf8(w.read(&crt)).unwrap();
        let der = w.read("cert.der");
        let pem_b64 = String::from_utf8(w.run("base64", &[crt.as_str()])).unwrap();
        let certs = [
            store_cert(&fx.store, &pem, "text/plain", None),
            fx.store
                .store_secret(
                    &creator(),
                    NewSecret::new()
                        .secret_type(SecretType::Certificate)
                        .payload_bytes(SecretBytes::copy_from(&der), ContentType::OctetStream),
                )
                .unwrap(),
            store_cert(&fx.store, &pem_b64, "text/plain", None),
        ];
        for (hash, flag) in [
            ("SHA-224", "-sha224"),
            ("SHA-256", "-sha256"),
            ("SHA-384", "-sha384"),
            ("SHA-512", "-sha512"),
        ] {
            let sigs: Vec<String> = if key_type == "RSA-PSS" {
                // Whatever salt length openssl picks, up to the maximum.
                ["max", "digest", "auto", "0", "20"]
                    .iter()
                    .map(|salt| {
                        w.sign_b64(
                            key,
                            flag,
                            "image",
                            &[
                                "-sigopt",
                                "rsa_padding_mode:pss",
                                "-sigopt",
                                &format!("rsa_pss_saltlen:{salt}"),
                            ],
                        )
                    })
                    .collect()
            } else {
                vec![w.sign_b64(key, flag, "image", &[])]
            };
            for sig in &sigs {
                for cert in &certs {
                    let ok = verify(&fx.store, sig, hash, key_type, cert, &image)
                        .unwrap_or_else(|e| panic!("{key_type} {hash}: {e}"));
                    assert!(!ok.weak_key);
                }
                let mut bad = image.clone();
                bad[image.len() - 1] ^= 0x80;
                let e = verify(&fx.store, sig, hash, key_type, &certs[0], &bad).unwrap_err();
                assert!(
                    matches!(failure(&e), Failure::SignatureMismatch),
                    "{key_type} {hash}: {e}"
                );
            }
            // Claiming another hash than the one signed with is a mismatch.
            let other = if hash == "SHA-512" {
                "SHA-256"
            } else {
                "SHA-512"
            };
            let e = verify(&fx.store, &sigs[0], other, key_type, &certs[0], &image).unwrap_err();
            assert!(matches!(failure(&e), Failure::SignatureMismatch), "{e}");
        }
    }
}

#[test]
fn failures_name_their_reason() {
    let Some(_) = peers::openssl() else { return };
    let fx = common::Fixture::new();
    let w = Work::new();
    w.write("image", IMAGE);
    w.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    w.run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "p384.pem",
        ],
    );
    w.self_signed("rsa.pem", "1", "rsa.crt");
    w.self_signed("p384.pem", "30", "p384.crt");
    let rsa_cert = store_cert(
        &fx.store,
        &String::from_utf8(w.read("rsa.crt")).unwrap(),
        "text/plain",
        None,
    );
    let ec_cert = store_cert(
        &fx.store,
        &String::from_utf8(w.read("p384.crt")).unwrap(),
        "text/plain",
        None,
    );
    let sig = w.sign_b64(
        "rsa.pem",
        "-sha256",
        "image",
        &["-sigopt", "rsa_padding_mode:pss"],
    );
    let uuid = rsa_cert.to_string();

    let e = ImageSignature::new(&sig, "SHA-256", "RSA-PKCS1", &uuid).unwrap_err();
    assert!(matches!(failure(&e), Failure::InvalidKeyType(t) if t == "RSA-PKCS1"));
    assert_eq!(e.field(), Some("img_signature_key_type"));
    assert!(
        e.to_string()
            .contains("Invalid signature key type: RSA-PKCS1"),
        "{e}"
    );

    let e = ImageSignature::new(&sig, "SHA-256", "ECC_SECT571K1", &uuid).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    let e = ImageSignature::new(&sig, "MD5", "RSA-PSS", &uuid).unwrap_err();
    assert!(
        e.to_string().contains("Invalid signature hash method: MD5"),
        "{e}"
    );

    let e = ImageSignature::new("not base64!", "SHA-256", "RSA-PSS", &uuid).unwrap_err();
    assert!(matches!(failure(&e), Failure::BadSignatureEncoding(_)));
    assert_eq!(e.field(), Some("img_signature"));

    // A signature of the wrong size for the key, and a non-DER ECDSA one.
    let e = verify(&fx.store, "AAAA", "SHA-256", "RSA-PSS", &rsa_cert, IMAGE).unwrap_err();
    assert!(
        matches!(failure(&e), Failure::BadSignatureEncoding(_)),
        "{e}"
    );
    let e = verify(
        &fx.store,
        "AAAA",
        "SHA-256",
        "ECC_SECP384R1",
        &ec_cert,
        IMAGE,
    )
    .unwrap_err();
    assert!(
        matches!(failure(&e), Failure::BadSignatureEncoding(_)),
        "{e}"
    );

    let missing = SecretId::new_random();
    let e = verify(&fx.store, &sig, "SHA-256", "RSA-PSS", &missing, IMAGE).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string()
            .contains(&format!("Certificate not found with ID: {missing}")),
        "{e}"
    );
    // Another project's certificate is not found either.
    let other = common::ctx("mallory", "elsewhere", &["admin"]);
    let sig_props = ImageSignature::new(&sig, "SHA-256", "RSA-PSS", &uuid).unwrap();
    let e = verify_image(
        &fx.store,
        &other,
        sig_props,
        IMAGE,
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(failure(&e), Failure::CertificateNotFound(..)),
        "{e}"
    );

    let opaque = fx
        .store
        .store_secret(
            &creator(),
            NewSecret::new().payload_text("not a cert", Some("text/plain"), None),
        )
        .unwrap();
    let e = verify(&fx.store, &sig, "SHA-256", "RSA-PSS", &opaque, IMAGE).unwrap_err();
    assert!(
        matches!(failure(&e), Failure::InvalidCertificateFormat(_)),
        "{e}"
    );

    let garbage = store_cert(
        &fx.store,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        "text/plain",
        None,
    );
    let e = verify(&fx.store, &sig, "SHA-256", "RSA-PSS", &garbage, IMAGE).unwrap_err();
    assert!(matches!(failure(&e), Failure::BadCertificate(..)), "{e}");

    let e = verify(
        &fx.store,
        &sig,
        "SHA-256",
        "ECC_SECP384R1",
        &rsa_cert,
        IMAGE,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("Invalid public key type for signature key type: ECC_SECP384R1"),
        "{e}"
    );
    let e = verify(&fx.store, &sig, "SHA-256", "ECC_SECP521R1", &ec_cert, IMAGE).unwrap_err();
    assert!(
        matches!(failure(&e), Failure::KeyTypeMismatch { .. }),
        "{e}"
    );

    // Dates: ignored by default (as in cursive), refused when checked.
    let in_three_days = Timestamp::from_unix(Timestamp::now().unix() + 3 * 86_400);
    let signature = || ImageSignature::new(&sig, "SHA-256", "RSA-PSS", &uuid).unwrap();
    verify_image(
        &fx.store,
        &creator(),
        signature(),
        IMAGE,
        &VerifyOptions::default(),
    )
    .unwrap();
    verify_image(
        &fx.store,
        &creator(),
        signature(),
        IMAGE,
        &VerifyOptions::check_dates_now(),
    )
    .unwrap();
    for at in [
        in_three_days,
        Timestamp::from_unix(Timestamp::now().unix() - 86_400),
    ] {
        let opts = VerifyOptions {
            check_dates_at: Some(at),
        };
        let e = verify_image(&fx.store, &creator(), signature(), IMAGE, &opts).unwrap_err();
        assert!(
            matches!(failure(&e), Failure::CertificateExpired { .. }),
            "{e}"
        );
        assert!(
            e.to_string().contains("outside its valid date range"),
            "{e}"
        );
    }

    // Some properties without the others: the missing one is named.
    let mut props = BTreeMap::new();
    assert!(ImageSignature::from_properties(&props).unwrap().is_none());
    props.insert("img_signature".to_owned(), sig.clone());
    props.insert("img_signature_hash_method".to_owned(), "SHA-256".to_owned());
    let e = ImageSignature::from_properties(&props).unwrap_err();
    assert!(
        e.to_string()
            .contains("Missing property: img_signature_certificate_uuid"),
        "{e}"
    );
}

#[test]
fn certificate_payload_forms_decode_alike() {
    let Some(_) = peers::openssl() else { return };
    let w = Work::new();
    w.run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
    );
    w.self_signed("k.pem", "30", "c.pem");
    w.run(
        "openssl",
        &["x509", "-in", "c.pem", "-outform", "DER", "-out", "c.der"],
    );
    let der = w.read("c.der");
    let from_der = SigningCertificate::decode(&der).unwrap();
    assert_eq!(from_der.to_der().unwrap(), der);
    for form in [
        w.read("c.pem"),
        w.run("base64", &["c.pem"]),
        w.run("base64", &["c.der"]),
        w.run("base64", &["-w", "0", "c.pem"]),
    ] {
        assert_eq!(SigningCertificate::decode(&form).unwrap(), from_der);
    }
    assert!(SigningCertificate::decode(b"").is_err());
    assert!(SigningCertificate::decode(&der[..der.len() - 1]).is_err());
}

/// Cinder creates a volume from a signed image: verified before the volume
/// is written, `signature_verified` recorded, cinder's log line emitted.
#[test]
fn cinder_verifies_before_writing_the_volume() {
    let Some(_) = peers::openssl() else { return };
    let fx = common::Fixture::new();
    let w = Work::new();
    let image = big_image();
    w.write("image", &image);
    w.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    w.self_signed("rsa.pem", "30", "rsa.crt");
    let cert = store_cert(
        &fx.store,
        &String::from_utf8(w.read("rsa.crt")).unwrap(),
        "text/plain",
        None,
    );
    let sig = w.sign_b64(
        "rsa.pem",
        "-sha256",
        "image",
        &["-sigopt", "rsa_padding_mode:pss"],
    );
    let props = BTreeMap::from([
        ("img_signature".to_owned(), sig),
        ("img_signature_hash_method".to_owned(), "SHA-256".to_owned()),
        ("img_signature_key_type".to_owned(), "RSA-PSS".to_owned()),
        (
            "img_signature_certificate_uuid".to_owned(),
            cert.to_string(),
        ),
        ("os_distro".to_owned(), "cirros".to_owned()),
    ]);
    let glance = GlanceImage {
        id: "5f1a3c2e-6d1f-4a53-9b1e-1c2d3e4f5a6b".to_owned(),
        properties: props.clone(),
    };
    let staging = tempfile::tempdir().unwrap();
    let (logs, meta) = capture_logs(|| {
        let mut volume = Vec::new();
        let meta = copy_image_to_volume(
            &fx.store,
            &creator(),
            &glance,
            &image[..],
            staging.path(),
            &mut volume,
            VerifyGlanceSignatures::Enabled,
        )
        .unwrap();
        assert_eq!(volume, image);
        meta
    });
    assert_eq!(meta[SIGNATURE_VERIFIED], "True");
    assert_eq!(meta["os_distro"], "cirros");
    assert!(
        logs.contains(&format!(
            "Image signature verification succeeded for image: {}",
            glance.id
        )),
        "{logs}"
    );
    assert_staging_empty(staging.path());

    // A changed byte: nothing reaches the volume.
    let mut bad = image.clone();
    bad[12_345] ^= 1;
    let (logs, volume) = capture_logs(|| {
        let mut volume = Vec::new();
        let e = copy_image_to_volume(
            &fx.store,
            &creator(),
            &glance,
            &bad[..],
            staging.path(),
            &mut volume,
            VerifyGlanceSignatures::Enabled,
        )
        .unwrap_err();
        assert!(matches!(failure(&e), Failure::SignatureMismatch));
        volume
    });
    assert!(volume.is_empty(), "the volume was not written");
    assert!(
        logs.contains(&format!(
            "Image signature verification failed for image: {}",
            glance.id
        )),
        "{logs}"
    );
    assert_staging_empty(staging.path());

    // No signature properties, or verification disabled: written, "False".
    let unsigned = GlanceImage {
        id: "unsigned".into(),
        properties: BTreeMap::from([("os_distro".to_owned(), "cirros".to_owned())]),
    };
    for (img, setting) in [
        (&unsigned, VerifyGlanceSignatures::Enabled),
        (&glance, VerifyGlanceSignatures::Disabled),
    ] {
        let mut volume = Vec::new();
        let meta = copy_image_to_volume(
            &fx.store,
            &creator(),
            img,
            &bad[..],
            staging.path(),
            &mut volume,
            setting,
        )
        .unwrap();
        assert_eq!(meta[SIGNATURE_VERIFIED], "False");
        assert_eq!(volume, bad);
    }

    // Incomplete properties: refused with cinder's log line.
    let mut partial = glance.clone();
    partial.properties.remove("img_signature_key_type");
    let (logs, ()) = capture_logs(|| {
        let e = copy_image_to_volume(
            &fx.store,
            &creator(),
            &partial,
            &image[..],
            staging.path(),
            &mut Vec::new(),
            VerifyGlanceSignatures::Enabled,
        )
        .unwrap_err();
        assert!(matches!(
            failure(&e),
            Failure::MissingProperty("img_signature_key_type")
        ));
    });
    assert!(
        logs.contains(&format!(
            "Image signature metadata for image {} is incomplete.",
            glance.id
        )),
        "{logs}"
    );

    // Whoever can rename entries in the staging directory swaps the staged
    // file once the image is in: the volume still gets the verified bytes.
    let evil = vec![0x66u8; image.len()];
    let swapper = SwapStagedAtEof {
        data: &image,
        pos: 0,
        dir: staging.path(),
        evil: &evil,
    };
    let mut volume = Vec::new();
    let meta = copy_image_to_volume(
        &fx.store,
        &creator(),
        &glance,
        swapper,
        staging.path(),
        &mut volume,
        VerifyGlanceSignatures::Enabled,
    )
    .unwrap();
    assert_eq!(meta[SIGNATURE_VERIFIED], "True");
    assert!(
        volume == image,
        "the volume holds the bytes that were verified"
    );
    assert_staging_empty(staging.path());
}

/// Image bytes that, once all read, replace the staging file by rename.
struct SwapStagedAtEof<'a> {
    data: &'a [u8],
    pos: usize,
    dir: &'a Path,
    evil: &'a [u8],
}

impl std::io::Read for SwapStagedAtEof<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if n == 0 {
            let staged: Vec<PathBuf> = std::fs::read_dir(self.dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "staging"))
                .collect();
            for path in staged {
                let swap = self.dir.join("swap");
                std::fs::write(&swap, self.evil).unwrap();
                std::fs::rename(&swap, &path).unwrap();
            }
        }
        Ok(n)
    }
}

fn big_image() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect()
}

fn assert_staging_empty(dir: &Path) {
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "staging file removed"
    );
}

/// Runs `f` with a subscriber that records formatted log lines.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (String, T) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (text, out)
}
