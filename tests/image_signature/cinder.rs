//! Cinder's copy of a signed image to a volume: verified before the volume
//! is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keywarden::signature::Failure;
use keywarden::signature::cinder::{
    GlanceImage, SIGNATURE_VERIFIED, VerifyGlanceSignatures, copy_image_to_volume,
};

use crate::common::{self, capture_logs};
use crate::peers;
use crate::{Work, big_image, creator, failure, store_cert};

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

fn assert_staging_empty(dir: &Path) {
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        0,
        "staging file removed"
    );
}
