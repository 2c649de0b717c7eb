//! Secrets: store one (with or without its payload), add the payload
//! later, read its metadata or payload, list, delete; castellan's managed
//! objects on top.

use std::fmt;

use zeroize::Zeroizing;

use crate::backend::FIXED_KEY_ID;
use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    ContentType, ManagedObject, Page, Payload, QuotaResource, SecretId, SecretMeta, SecretType,
    Status, Timestamp,
};
use crate::payload;
use crate::secret::SecretBytes;

use super::audit::{Actor, audited, record};
use super::{ListQuery, SecretStore, check_len, scope, secret_target};

/// A new secret: metadata and, optionally, its payload (Barbican's POST).
#[derive(Clone, Default)]
pub struct NewSecret {
    pub name: Option<String>,
    pub secret_type: SecretType,
    pub algorithm: Option<String>,
    pub bit_length: Option<u32>,
    pub mode: Option<String>,
    pub expiration: Option<Timestamp>,
    payload: Option<PayloadInput>,
    payload_content_type: Option<String>,
}

#[derive(Clone)]
enum PayloadInput {
    /// As it arrives in Barbican's JSON: text, maybe base64.
    Text {
        text: Zeroizing<String>,
        encoding: Option<String>,
    },
    /// Already bytes (the library path).
    Bytes(SecretBytes),
}

impl NewSecret {
    pub fn new() -> Self {
        NewSecret::default()
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn secret_type(mut self, t: SecretType) -> Self {
        self.secret_type = t;
        self
    }

    pub fn algorithm(mut self, a: impl Into<String>) -> Self {
        self.algorithm = Some(a.into());
        self
    }

    pub fn bit_length(mut self, b: u32) -> Self {
        self.bit_length = Some(b);
        self
    }

    pub fn mode(mut self, m: impl Into<String>) -> Self {
        self.mode = Some(m.into());
        self
    }

    pub fn expiration(mut self, t: Timestamp) -> Self {
        self.expiration = Some(t);
        self
    }

    /// A payload as Barbican's API takes it: text with a content type and an
    /// optional `base64` encoding.
    pub fn payload_text(
        mut self,
        text: impl Into<String>,
        content_type: Option<&str>,
        encoding: Option<&str>,
    ) -> Self {
        self.payload = Some(PayloadInput::Text {
            text: Zeroizing::new(text.into()),
            encoding: encoding.map(str::to_owned),
        });
        self.payload_content_type = content_type.map(str::to_owned);
        self
    }

    /// Raw payload bytes with their content type.
    pub fn payload_bytes(mut self, bytes: SecretBytes, content_type: ContentType) -> Self {
        self.payload = Some(PayloadInput::Bytes(bytes));
        self.payload_content_type = Some(content_type.as_str().to_owned());
        self
    }

    /// A content type with no payload: refused, as Barbican refuses it.
    pub fn payload_content_type_only(mut self, content_type: &str) -> Self {
        self.payload = None;
        self.payload_content_type = Some(content_type.to_owned());
        self
    }
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("name", &self.name)
            .field("secret_type", &self.secret_type)
            .field("algorithm", &self.algorithm)
            .field("bit_length", &self.bit_length)
            .field("mode", &self.mode)
            .field("expiration", &self.expiration)
            .field("payload", &self.payload.as_ref().map(|_| "[REDACTED]"))
            .field("payload_content_type", &self.payload_content_type)
            .finish()
    }
}

impl SecretStore {
    /// Stores a secret, with or without its payload (`secrets:post`).
    pub fn store_secret(&self, ctx: &Context, new: NewSecret) -> Result<SecretId> {
        let id = SecretId::new_random();
        let out = self.store_secret_inner(ctx, id, new);
        // The object is the id the secret got: the fixed-key backend answers
        // with its own.
        record(
            Actor::Request(ctx),
            "secret:store",
            out.as_ref().unwrap_or(&id),
            &out,
        );
        out
    }

    fn store_secret_inner(&self, ctx: &Context, id: SecretId, new: NewSecret) -> Result<SecretId> {
        self.authorize("secrets:post", ctx, &self.project_target(ctx))?;
        let now = Timestamp::now();
        validate_meta(&new, now)?;
        let payload = match (&new.payload, &new.payload_content_type) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "payload",
                    "payload must be provided when payload_content_type is specified",
                ));
            }
            (Some(PayloadInput::Text { text, encoding }), ct) => Some(payload::decode(
                text,
                ct.as_deref(),
                encoding.as_deref(),
                &self.payload_rules,
            )?),
            (Some(PayloadInput::Bytes(bytes)), ct) => Some(payload::decode_bytes(
                bytes.expose_secret().to_vec(),
                ct.as_deref(),
                None,
                &self.payload_rules,
            )?),
        };
        let backend = self.backend_for_project(&ctx.project_id)?;
        let meta = SecretMeta {
            id,
            name: new.name.map(|n| n.trim().to_owned()),
            algorithm: new.algorithm,
            bit_length: new.bit_length,
            mode: new.mode,
            secret_type: new.secret_type,
            expiration: new.expiration,
            created: now,
            updated: now,
            status: Status::Active,
            content_type: payload.as_ref().map(|p| p.content_type),
            creator_id: ctx.user_id.clone(),
            project_id: ctx.project_id.clone(),
            backend_id: backend.id().clone(),
        };
        if backend.serves_fixed_id() {
            // ConfKeyManager: it "stores" only its own key, under its own id.
            let Some(p) = &payload else {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the fixed-key backend cannot keep secrets without a payload",
                ));
            };
            backend.store(scope(&meta), &p.bytes)?;
            return Ok(FIXED_KEY_ID);
        }
        let quota = self.quota_guard(&ctx.project_id, QuotaResource::Secrets)?;
        let stored = match &payload {
            Some(p) => Some(backend.store(scope(&meta), &p.bytes)?),
            None => None,
        };
        let kept = stored.clone();
        let mut batch = vec![Write::InsertSecret {
            meta: meta.clone(),
            stored,
        }];
        batch.extend(quota);
        if let Err(e) = self.catalog.apply(batch) {
            // Another writer took the last slot since the guard: the row is
            // not written, and a backend that keeps material elsewhere
            // destroys what it just stored.
            if e.kind() == ErrorKind::QuotaExceeded
                && let Some(stored) = &kept
                && let Err(d) = backend.delete(scope(&meta), stored)
            {
                tracing::warn!(secret = %id, error = %d, "backend could not destroy a refused secret's material");
            }
            return Err(e);
        }
        Ok(id)
    }

    /// Adds the payload to a secret created without one (`secret:put`).
    /// Payloads are write-once: a second call is `Conflict`.
    pub fn put_payload(
        &self,
        ctx: &Context,
        id: &SecretId,
        body: SecretBytes,
        content_type: &str,
        encoding: Option<&str>,
    ) -> Result<()> {
        audited(ctx, "secret:put", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret:put", ctx, &secret_target(ctx, &row))?;
            if row.meta.has_payload() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "Secret already has data, cannot modify it.",
                ));
            }
            let payload = payload::decode_bytes(
                body.expose_secret().to_vec(),
                Some(content_type),
                encoding,
                &self.payload_rules,
            )?;
            let backend = self.backend(&row.meta.backend_id)?;
            let stored = backend.store(scope(&row.meta), &payload.bytes)?;
            self.catalog.apply(vec![Write::SetPayload {
                id: *id,
                content_type: payload.content_type,
                stored,
                updated: Timestamp::now(),
            }])
        })
    }

    /// A secret's metadata (`secret:get`).
    pub fn secret(&self, ctx: &Context, id: &SecretId) -> Result<SecretMeta> {
        audited(ctx, "secret:get", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret:get", ctx, &secret_target(ctx, &row))?;
            Ok(row.meta)
        })
    }

    /// A secret's payload with its content type (`secret:decrypt`).
    pub fn payload(&self, ctx: &Context, id: &SecretId) -> Result<Payload> {
        audited(ctx, "secret:decrypt", id, || {
            self.payload_inner(ctx, id).map(|(_, p)| p)
        })
    }

    fn payload_inner(&self, ctx: &Context, id: &SecretId) -> Result<(SecretMeta, Payload)> {
        let row = self.visible_secret(ctx, id, true)?;
        self.authorize("secret:decrypt", ctx, &secret_target(ctx, &row))?;
        let (Some(content_type), Some(stored)) = (row.meta.content_type, row.stored.as_ref())
        else {
            return Err(Error::new(
                ErrorKind::NotFound,
                "Not Found. Sorry but your secret has no payload.",
            ));
        };
        let bytes = self
            .backend(&row.meta.backend_id)?
            .retrieve(scope(&row.meta), stored)?;
        Ok((
            row.meta,
            Payload {
                content_type,
                bytes,
            },
        ))
    }

    /// Lists the caller's project's secrets (`secrets:get`).
    pub fn list_secrets(&self, ctx: &Context, query: &ListQuery) -> Result<Page<SecretMeta>> {
        audited(ctx, "secrets:list", &ctx.project_id, || {
            self.authorize("secrets:get", ctx, &self.project_target(ctx))?;
            let mut filter = query.to_filter()?;
            if query.acl_only {
                filter.acl_user = Some(ctx.user_id.clone());
            }
            self.catalog.list_secrets(
                &ctx.project_id,
                &filter,
                query.effective_limit(),
                query.effective_offset(),
                Timestamp::now(),
            )
        })
    }

    /// Deletes a secret (`secret:delete`). Refused while consumers are
    /// registered unless `force`. The ciphertext leaves the catalog.
    pub fn delete_secret(&self, ctx: &Context, id: &SecretId, force: bool) -> Result<()> {
        audited(ctx, "secret:delete", id, || {
            if *id == FIXED_KEY_ID && self.fixed.is_some() {
                // castellan's MigrationKeyManager: the legacy key is never deleted.
                tracing::debug!("Not deleting key associated with fixed_key key ID");
                return Ok(());
            }
            // Expired secrets are gone for every reader, but their owner can
            // still delete them (and their ciphertext).
            let row = self.find_secret(ctx, id, true, true)?;
            self.authorize("secret:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::DeleteSecret { id: *id, force }])?;
            if let Some(stored) = &row.stored {
                // The row is gone; a backend that keeps material elsewhere
                // destroys it now. Failing here leaves an orphan on the
                // device, never a row without its material.
                if let Err(e) = self
                    .backend(&row.meta.backend_id)
                    .and_then(|b| b.delete(scope(&row.meta), stored))
                {
                    tracing::warn!(secret = %id, error = %e, "backend could not destroy deleted secret's material");
                }
            }
            Ok(())
        })
    }

    /// Stores a castellan managed object; returns its id.
    pub fn store_object(
        &self,
        ctx: &Context,
        object: &ManagedObject,
        name: Option<&str>,
        expiration: Option<Timestamp>,
    ) -> Result<SecretId> {
        let mut new = NewSecret::new()
            .secret_type(object.secret_type())
            .payload_bytes(object.material().clone(), ContentType::OctetStream);
        new.name = name.map(str::to_owned);
        new.expiration = expiration;
        new.algorithm = object.algorithm().map(str::to_owned);
        new.bit_length = object.bit_length();
        self.store_secret(ctx, new)
    }

    /// Fetches a castellan managed object (metadata and payload).
    pub fn get_object(&self, ctx: &Context, id: &SecretId) -> Result<ManagedObject> {
        let (meta, payload) = audited(ctx, "secret:decrypt", id, || self.payload_inner(ctx, id))?;
        Ok(ManagedObject::from_parts(&meta, payload.bytes))
    }
}

/// Barbican's `NewSecretValidator`, for the metadata part.
fn validate_meta(new: &NewSecret, now: Timestamp) -> Result<()> {
    check_len("name", new.name.as_deref().map(str::trim))?;
    check_len("algorithm", new.algorithm.as_deref())?;
    check_len("mode", new.mode.as_deref())?;
    if let Some(b) = new.bit_length
        && !(1..=32767).contains(&b)
    {
        return Err(Error::invalid("bit_length", "must be between 1 and 32767"));
    }
    if let Some(exp) = new.expiration
        && exp <= now
    {
        return Err(Error::invalid(
            "expiration",
            "'expiration' is before current time",
        ));
    }
    Ok(())
}
