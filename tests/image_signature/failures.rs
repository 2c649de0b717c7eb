//! Failed verifications name their reason; the certificate's payload forms
//! decode alike.

use std::collections::BTreeMap;

use keywarden::ErrorKind;
use keywarden::model::{SecretId, Timestamp};
use keywarden::signature::{
    Failure, ImageSignature, SigningCertificate, VerifyOptions, verify_image,
};
use keywarden::store::NewSecret;

use crate::common;
use crate::peers;
use crate::{IMAGE, Work, creator, failure, store_cert, verify};

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
