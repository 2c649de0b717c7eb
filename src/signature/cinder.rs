//! Cinder's side: a volume created from a signed image (cinder,
//! `cinder/image/image_utils.py` `verify_glance_image_signature` and the
//! create-volume flow).
//!
//! The image is staged in a file, verified, and only then written to the
//! volume; the outcome is recorded in the volume's image metadata as
//! `signature_verified` (`"True"` / `"False"`, Python's `str(bool)`). The log
//! lines are cinder's own, so operators' alerts keep working:
//!
//! * `Image signature verification succeeded for image: <id>` (INFO)
//! * `Image signature verification failed for image: <id>` (ERROR)
//! * `Image signature metadata for image <id> is incomplete.` (ERROR)
//! * `Failed to get verifier for image: <id>` (ERROR)
//!
//! Two improvements on cinder: the image is hashed while it is staged, so it
//! is read once, not twice; and the staged bytes are verified and copied
//! through the one descriptor that wrote them, never reopened by path, so
//! whoever can rename entries in the staging directory cannot substitute
//! other bytes between the check and the copy.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::signature::{Failure, ImageSignature, ImageVerifier, VerifyOptions, copy_into};
use crate::store::SecretStore;

/// The volume image metadata key cinder records the outcome under.
pub const SIGNATURE_VERIFIED: &str = "signature_verified";

/// Cinder's `[DEFAULT] verify_glance_signatures`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyGlanceSignatures {
    /// Verify images that carry signature properties (cinder's default).
    #[default]
    Enabled,
    /// Never verify; `signature_verified` is `False`.
    Disabled,
}

/// A glance image as cinder sees it when creating a volume from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlanceImage {
    pub id: String,
    pub properties: BTreeMap<String, String>,
}

/// Creates a volume's contents from `image`: stages the bytes in
/// `staging_dir`, verifies the signature when the image has one (and
/// verification is enabled), then copies the staged bytes to `volume`.
/// Nothing reaches the volume unless verification passed. Returns the
/// volume's image metadata: the image's properties, `image_id`, and
/// `signature_verified`.
pub fn copy_image_to_volume(
    store: &SecretStore,
    ctx: &Context,
    image: &GlanceImage,
    image_data: impl Read,
    staging_dir: &Path,
    volume: impl Write,
    setting: VerifyGlanceSignatures,
) -> Result<BTreeMap<String, String>> {
    let mut verifier = match setting {
        VerifyGlanceSignatures::Disabled => None,
        VerifyGlanceSignatures::Enabled => verifier_for(store, ctx, image)?,
    };
    let (_staged, mut file) = Staged::create(staging_dir, &image.id)?;
    {
        let mut sink = Tee {
            file: BufWriter::with_capacity(1 << 20, &file),
            verifier: verifier.as_mut(),
        };
        copy_into(image_data, &mut sink)?;
        sink.file
            .into_inner()
            .map_err(|e| {
                Error::new(ErrorKind::Storage, "staging the image failed")
                    .with_source(e.into_error())
            })?
            .sync_all()
            .map_err(|e| {
                Error::new(ErrorKind::Storage, "staging the image failed").with_source(e)
            })?;
    }
    let verified = match verifier {
        None => false,
        Some(v) => match v.verify() {
            Ok(_) => {
                tracing::info!(
                    "Image signature verification succeeded for image: {}",
                    image.id
                );
                true
            }
            Err(e) => {
                if matches!(Failure::of(&e), Some(Failure::SignatureMismatch)) {
                    tracing::error!(
                        "Image signature verification failed for image: {}",
                        image.id
                    );
                } else {
                    tracing::error!(
                        "Failed to verify signature for image: {} due to error: {} ",
                        image.id,
                        e
                    );
                }
                return Err(e);
            }
        },
    };
    let mut volume = volume;
    file.seek(SeekFrom::Start(0)).map_err(|e| {
        Error::new(ErrorKind::Storage, "cannot rewind the staging file").with_source(e)
    })?;
    copy_into(&file, &mut volume)?;
    let mut metadata = image.properties.clone();
    metadata.insert("image_id".to_owned(), image.id.clone());
    metadata.insert(
        SIGNATURE_VERIFIED.to_owned(),
        if verified { "True" } else { "False" }.to_owned(),
    );
    Ok(metadata)
}

/// The verifier for `image`, or `None` when it carries no signature.
fn verifier_for(
    store: &SecretStore,
    ctx: &Context,
    image: &GlanceImage,
) -> Result<Option<ImageVerifier>> {
    let signature = match ImageSignature::from_properties(&image.properties) {
        Ok(None) => return Ok(None),
        Ok(Some(s)) => s,
        Err(e) => {
            if matches!(Failure::of(&e), Some(Failure::MissingProperty(_))) {
                tracing::error!(
                    "Image signature metadata for image {} is incomplete.",
                    image.id
                );
            } else {
                tracing::error!("Failed to get verifier for image: {}", image.id);
            }
            return Err(e);
        }
    };
    ImageVerifier::new(store, ctx, signature, &VerifyOptions::default())
        .map(Some)
        .inspect_err(|_| tracing::error!("Failed to get verifier for image: {}", image.id))
}

/// Writes to the staging file and the verifier at once.
struct Tee<'a> {
    file: BufWriter<&'a File>,
    verifier: Option<&'a mut ImageVerifier>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(v) = self.verifier.as_deref_mut() {
            v.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A staging file, removed when dropped (cinder's temporary image file).
struct Staged {
    path: PathBuf,
}

impl Staged {
    /// The staging file and the one descriptor every later step uses.
    fn create(dir: &Path, image_id: &str) -> Result<(Self, File)> {
        let mut suffix = [0u8; 8];
        crate::crypto::fill_random(&mut suffix)?;
        let safe_id: String = image_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let name = format!(
            "image-{safe_id}-{}.staging",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Storage,
                    format!("cannot create staging file in {}", dir.display()),
                )
                .with_source(e)
            })?;
        Ok((Staged { path }, file))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
