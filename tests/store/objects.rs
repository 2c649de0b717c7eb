//! castellan's managed objects stored and read back.

use keywarden::ErrorKind;
use keywarden::model::{ManagedObject, SecretType};
use keywarden::secret::SecretBytes;

use crate::common::{Fixture, Setup, admin};
use crate::conformance;

conformance!(castellan_objects_round_trip);

fn castellan_objects_round_trip(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let objects = [
        ManagedObject::SymmetricKey {
            algorithm: Some("AES".into()),
            bit_length: Some(256),
            key: SecretBytes::copy_from(&[7; 32]),
        },
        ManagedObject::Passphrase {
            passphrase: SecretBytes::copy_from(b"hunter2"),
        },
        ManagedObject::SymmetricKey {
            algorithm: None,
            bit_length: None,
            key: SecretBytes::copy_from(&[8; 16]),
        },
        ManagedObject::OpaqueData {
            data: SecretBytes::copy_from(&[0, 255, 1]),
        },
        ManagedObject::X509Certificate {
            data: SecretBytes::copy_from(b"\x30\x82cert"),
        },
        ManagedObject::PublicKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(b"\x30spki"),
        },
        ManagedObject::PrivateKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(b"\x30pkcs8"),
        },
    ];
    for obj in objects {
        if setup.backend.is_kmip()
            && obj.secret_type() == SecretType::Symmetric
            && obj.algorithm().is_none()
        {
            // KMIP holds a symmetric key only with its algorithm.
            let e = f
                .store
                .store_object(&c, &obj, Some("obj"), None)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            continue;
        }
        let id = f.store.store_object(&c, &obj, Some("obj"), None).unwrap();
        let back = f.store.get_object(&c, &id).unwrap();
        assert_eq!(back.secret_type(), obj.secret_type());
        assert_eq!(back.expose_secret(), obj.expose_secret());
        assert_eq!(back.algorithm(), obj.algorithm());
        assert_eq!(back.bit_length(), obj.bit_length());
    }
}
