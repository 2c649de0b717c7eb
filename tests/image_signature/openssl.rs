//! Signatures the `openssl` command makes verify, for every hash and key
//! type and every form of the stored certificate.
//!
//! The first test is the glance guide's procedure (the seed guide's §7.2)
//! step by step: a 1024-bit key from `openssl genrsa`, a CSR, a
//! self-signed certificate from `openssl x509 -req`, the certificate stored
//! as `base64` output (with line breaks) in a certificate secret, the image
//! signed with `openssl dgst -sha256 -sign … -sigopt rsa_padding_mode:pss`.

use keywarden::ErrorKind;
use keywarden::model::{ContentType, SecretType};
use keywarden::secret::SecretBytes;
use keywarden::signature::Failure;
use keywarden::store::NewSecret;

use crate::common;
use crate::peers;
use crate::{IMAGE, Work, big_image, creator, failure, store_cert, verify};

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
