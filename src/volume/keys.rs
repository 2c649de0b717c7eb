//! Volume keys over their lifecycle, as cinder handles them.
//!
//! - create: a key order in the volume owner's context (Barbican's policy
//!   wants the `creator` role, or `admin`); the volume records the key id;
//! - snapshot: the snapshot records the volume's key id, no new key;
//! - clone, volume from snapshot, backup: a new secret with the same bytes
//!   (cinder's `clone_encryption_key`), because each volume deletes its own
//!   key when it goes;
//! - delete: refused while snapshots depend on the volume; the key is
//!   deleted, a key that is already gone is not an error, and a refusal is
//!   retried once with the service's own context when one is configured;
//! - transfer: the key is stored again under the recipient and the old one
//!   deleted.

use std::fmt;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{SecretId, Status};
use crate::store::{KeyOrder, SecretStore};
use crate::volume::spec::{EncryptionMetadata, EncryptionSpec};
use crate::volume::{SnapshotId, VolumeId};

/// An encrypted volume as cinder records it: its type's encryption and its
/// key's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedVolume {
    pub id: VolumeId,
    pub encryption: EncryptionSpec,
    pub key_id: SecretId,
}

impl EncryptedVolume {
    /// What cinder gives nova and os-brick at attach.
    pub fn encryption_metadata(&self) -> EncryptionMetadata {
        self.encryption.metadata(&self.key_id)
    }
}

/// A snapshot of an encrypted volume: it shares the volume's key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSnapshot {
    pub id: SnapshotId,
    pub volume_id: VolumeId,
    pub encryption: EncryptionSpec,
    pub key_id: SecretId,
}

/// Cinder's key handling over a [`SecretStore`].
pub struct VolumeKeys<'a> {
    store: &'a SecretStore,
    service: Option<Context>,
}

impl<'a> VolumeKeys<'a> {
    pub fn new(store: &'a SecretStore) -> Self {
        VolumeKeys {
            store,
            service: None,
        }
    }

    /// The block-storage service's own context, used once when deleting a
    /// key in the owner's context is refused.
    pub fn with_service_context(mut self, service: Context) -> Self {
        self.service = Some(service);
        self
    }

    /// Creates an encrypted volume: a key as the spec implies, generated in
    /// the owner's context.
    pub fn create_volume(
        &self,
        owner: &Context,
        encryption: &EncryptionSpec,
    ) -> Result<EncryptedVolume> {
        let key_id = self.create_key(owner, encryption)?;
        Ok(EncryptedVolume {
            id: VolumeId::new_random(),
            encryption: encryption.clone(),
            key_id,
        })
    }

    /// The key cinder's `create_encryption_key` makes; returns its id.
    pub fn create_key(&self, owner: &Context, encryption: &EncryptionSpec) -> Result<SecretId> {
        let req = encryption.key_request()?;
        let order = self.store.create_key(
            owner,
            &KeyOrder {
                algorithm: req.algorithm,
                mode: req.mode,
                ..KeyOrder::aes(req.bit_length)
            },
        )?;
        let secret = match (order.status, order.secret_id) {
            (Status::Active, Some(id)) => id,
            _ => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "Key manager error: {}",
                        order
                            .error_reason
                            .as_deref()
                            .unwrap_or("the key order did not complete")
                    ),
                ));
            }
        };
        // castellan drops the order once it has the key; the key stays.
        if let Err(e) = self.store.delete_order(owner, &order.id) {
            tracing::debug!(order = %order.id, error = %e, "key order kept");
        }
        Ok(secret)
    }

    /// A snapshot records the volume's key id; no key is made.
    pub fn snapshot(&self, volume: &EncryptedVolume) -> VolumeSnapshot {
        VolumeSnapshot {
            id: SnapshotId::new_random(),
            volume_id: volume.id,
            encryption: volume.encryption.clone(),
            key_id: volume.key_id,
        }
    }

    /// A new volume from a snapshot gets its own copy of the key.
    pub fn volume_from_snapshot(
        &self,
        ctx: &Context,
        snapshot: &VolumeSnapshot,
    ) -> Result<EncryptedVolume> {
        Ok(EncryptedVolume {
            id: VolumeId::new_random(),
            encryption: snapshot.encryption.clone(),
            key_id: self.clone_key(ctx, &snapshot.key_id)?,
        })
    }

    /// A clone of a volume gets its own copy of the key.
    pub fn clone_volume(&self, ctx: &Context, source: &EncryptedVolume) -> Result<EncryptedVolume> {
        Ok(EncryptedVolume {
            id: VolumeId::new_random(),
            encryption: source.encryption.clone(),
            key_id: self.clone_key(ctx, &source.key_id)?,
        })
    }

    /// A backup keeps its own copy of the key, so it outlives the volume.
    pub fn backup_key(&self, ctx: &Context, volume: &EncryptedVolume) -> Result<SecretId> {
        self.clone_key(ctx, &volume.key_id)
    }

    /// Cinder's `clone_encryption_key`: store a copy of the key (same type,
    /// algorithm, length and bytes) and return the new id.
    pub fn clone_key(&self, ctx: &Context, key_id: &SecretId) -> Result<SecretId> {
        let key = self.store.get_object(ctx, key_id)?;
        self.store.store_object(ctx, &key, None, None)
    }

    /// Deletes the volume's key. Refused (`Conflict`) while snapshots of
    /// the volume remain, as cinder refuses to delete such a volume.
    pub fn delete_volume(
        &self,
        ctx: &Context,
        volume: &EncryptedVolume,
        snapshots: &[VolumeSnapshot],
    ) -> Result<()> {
        let dependent = snapshots
            .iter()
            .filter(|s| s.volume_id == volume.id)
            .count();
        if dependent > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "Volume {} still has {dependent} dependent snapshots.",
                    volume.id
                ),
            ));
        }
        self.delete_key(ctx, &volume.key_id)
    }

    /// A snapshot's deletion leaves the key to its volume.
    pub fn delete_snapshot(&self, _snapshot: VolumeSnapshot) {}

    /// Cinder's `delete_encryption_key`: a key already gone is fine; a
    /// refusal is retried once with the service context.
    pub fn delete_key(&self, ctx: &Context, key_id: &SecretId) -> Result<()> {
        match self.store.delete_secret(ctx, key_id, false) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                tracing::debug!(key = %key_id, "encryption key already deleted");
                Ok(())
            }
            Err(e) => match &self.service {
                Some(service) => {
                    tracing::warn!(
                        "First attempt to delete key id {key_id} failed, retrying with cinder's service context."
                    );
                    match self.store.delete_secret(service, key_id, false) {
                        Err(e2) if e2.kind() == ErrorKind::NotFound => Ok(()),
                        other => other,
                    }
                }
                None => Err(e),
            },
        }
    }

    /// Volume transfer: the key is stored again in the recipient's
    /// project, the volume and its snapshots take the new id, and the old
    /// key is deleted.
    pub fn transfer(
        &self,
        from: &Context,
        to: &Context,
        volume: &mut EncryptedVolume,
        snapshots: &mut [VolumeSnapshot],
    ) -> Result<()> {
        tracing::info!(
            "Initiating transfer of encryption key for volume {}",
            volume.id
        );
        let key = self.store.get_object(from, &volume.key_id)?;
        let new_id = self.store.store_object(to, &key, None, None).inspect_err(|_| {
            tracing::error!(
                "Failed to transfer the encryption key. This is likely because the cinder service lacks the privilege to create secrets."
            );
        })?;
        let old = volume.key_id;
        volume.key_id = new_id;
        for s in snapshots.iter_mut().filter(|s| s.volume_id == volume.id) {
            s.key_id = new_id;
        }
        self.delete_key(from, &old)
    }
}

impl fmt::Debug for VolumeKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeKeys")
            .field("service", &self.service.as_ref().map(|c| &c.user_id))
            .finish_non_exhaustive()
    }
}
