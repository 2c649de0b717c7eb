//! Kmip: secrets live on a KMIP server; the catalog keeps only the server's
//! unique identifier (and how to give the material back).
//!
//! Each secret type is its own KMIP object, as Barbican's KMIP plugin maps
//! them: symmetric -> Symmetric Key (Raw), private -> Private Key (PKCS#8,
//! or PKCS#1 / EC when the PEM says so), public -> Public Key (X.509
//! SubjectPublicKeyInfo or PKCS#1), certificate -> Certificate (X.509),
//! passphrase -> Secret Data (Password), opaque -> Opaque Object. PEM input
//! is registered as DER and given back as PEM with the same label (the
//! canonical encoding: 64-column lines, LF). Keys the server generates
//! (Create, Create Key Pair) come back as raw bytes and as PEM PKCS#8 /
//! SubjectPublicKeyInfo, like the other backends' generated keys.
//!
//! Every object is named `keywarden/<project>/<secret id>`. Reads fetch the
//! object and its Name in one batch and refuse (`Integrity`) a catalog row
//! that points at another secret's object; delete checks the same before
//! it destroys anything.
//!
//! Catalog record (`StoredSecret::bytes`): `0x01 || object type (1) ||
//! encoding (1) || unique identifier (UTF-8, at most 128 bytes)`.
//!
//! Requests and responses are TTLV from our own codec (`ttlv`, `message`).
//! TLS is the `openssl` crate over the system OpenSSL rather than rustls:
//! KMIP servers in the field, PyKMIP among them, speak TLS 1.2 with RSA
//! certificates and RSA key exchange (AES128-SHA256), which rustls refuses
//! by design; rustls would work only with ECDSA server certificates.

use std::fmt;
use std::sync::Arc;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVersion};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use x509_cert::der::pem::{self, LineEnding};

use crate::backend::{KekReport, KeyManager, Scope, StoredKeyPair, StoredSecret};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, KeySpec, SecretType};
use crate::secret::SecretBytes;

mod config;
pub(crate) mod message;
mod pool;
pub(crate) mod ttlv;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_POOL_SIZE,
    DEFAULT_PORT, DEFAULT_PROTOCOL_VERSION, KmipConfig, KmipVersion, check_key_file,
};
pub use message::{KmipFailure, MalformedResponse, Operation, ResultReason};
pub use pool::PoolStats;

use message::{Credential, Object, ObjectType, Payload, algorithm, key_format, usage};
use pool::Pool;

const RECORD_VERSION: u8 = 1;

/// How the material is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// The bytes the server holds, unchanged.
    Raw = 0,
    /// The DER the server holds, as PEM with the label its format implies.
    Pem = 1,
    /// As PEM PKCS#8 (private) or SubjectPublicKeyInfo (public), converting
    /// PKCS#1 RSA keys (server-generated key pairs).
    PemStandard = 2,
}

impl Encoding {
    pub(crate) const ALL: [Encoding; 3] = [Encoding::Raw, Encoding::Pem, Encoding::PemStandard];
}

/// The KMIP backend.
pub struct Kmip {
    id: BackendId,
    config: KmipConfig,
    pool: Pool,
}

impl Kmip {
    /// Checks the configuration (including the client key's file mode), sets
    /// up TLS, and asks the server a Query so a bad address, certificate or
    /// credential shows at startup.
    pub fn connect(id: BackendId, config: &KmipConfig) -> Result<Self> {
        let backend = Kmip::new_unchecked(id, config)?;
        backend.ping()?;
        Ok(backend)
    }

    /// As `connect`, without the Query (the server may be down for now).
    pub fn new_unchecked(id: BackendId, config: &KmipConfig) -> Result<Self> {
        config.check()?;
        let connector = tls_connector(config)?;
        let pool = Pool::new(
            connector,
            config.host.clone(),
            config.port,
            config.connect_timeout,
            config.io_timeout,
            config.pool_size,
            config.max_response_bytes,
        );
        Ok(Kmip {
            id,
            config: config.clone(),
            pool,
        })
    }

    pub fn config(&self) -> &KmipConfig {
        &self.config
    }

    /// Connection counters.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// A Query round trip: the server answers and accepts us.
    pub fn ping(&self) -> Result<()> {
        self.call(Payload::Query).map(drop)
    }

    fn credential(&self) -> Option<Credential<'_>> {
        self.config.username.as_ref().map(|username| Credential {
            username,
            password: self.config.password.as_ref(),
        })
    }

    fn version(&self) -> (i32, i32) {
        (
            self.config.protocol_version.major,
            self.config.protocol_version.minor,
        )
    }

    /// One request with one batch item; its response payload.
    fn call(&self, payload: Payload<'_>) -> Result<ttlv::Item> {
        let operation = payload.operation();
        let mut all = self.batch(vec![payload])?;
        all.pop()
            .ok_or_else(|| message::malformed(operation, "no Batch Item"))
    }

    /// One request with several batch items; their payloads in order.
    fn batch(&self, payloads: Vec<Payload<'_>>) -> Result<Vec<ttlv::Item>> {
        let operations: Vec<Operation> = payloads.iter().map(Payload::operation).collect();
        let first = operations.first().copied().unwrap_or(Operation::Query);
        let credential = self.credential();
        let request = message::encode_request(self.version(), credential.as_ref(), &payloads);
        let response = self.pool.exchange(first, &request)?;
        message::response_payloads(&operations, response)
    }

    fn register(&self, scope: &Scope<'_>, object: Object<'_>) -> Result<String> {
        let payload = self.call(Payload::Register(&object))?;
        message::uid(
            Operation::Register,
            payload.child(message::UNIQUE_IDENTIFIER),
        )
        .inspect(|uid| {
            tracing::debug!(backend = %self.id, secret = %scope.secret_id, uid = %uid, "registered on the KMIP server");
        })
    }

    /// The object behind a record, checked to be the one made for `scope`.
    fn fetch(&self, scope: &Scope<'_>, record: &Record) -> Result<message::Retrieved> {
        let mut payloads = self
            .batch(vec![
                Payload::Get { uid: &record.uid },
                Payload::GetNames { uid: &record.uid },
            ])?
            .into_iter();
        let (Some(object), Some(attributes)) = (payloads.next(), payloads.next()) else {
            return Err(message::malformed(Operation::Get, "missing Batch Items"));
        };
        check_name(scope, &attributes)?;
        let retrieved = message::retrieved(&object)?;
        if retrieved.object_type != record.object_type {
            return Err(Error::integrity());
        }
        Ok(retrieved)
    }

    fn record(&self, object_type: ObjectType, encoding: Encoding, uid: String) -> StoredSecret {
        StoredSecret::plain(
            Record {
                object_type,
                encoding,
                uid,
            }
            .to_bytes(),
        )
    }
}

impl KeyManager for Kmip {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "kmip"
    }

    fn store(&self, scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret> {
        let name = object_name(&scope);
        let kind = scope.object;
        let bits = |len: usize| i32::try_from(len.saturating_mul(8)).unwrap_or(i32::MAX);
        let (object_type, encoding, uid) = match kind.secret_type {
            SecretType::Symmetric => {
                let alg = symmetric_algorithm(kind.algorithm, &self.id)?;
                let uid = self.register(
                    &scope,
                    Object {
                        object_type: ObjectType::SymmetricKey,
                        name: &name,
                        key_format: key_format::RAW,
                        algorithm: Some(alg),
                        length: Some(bits(material.len())),
                        usage_mask: Some(usage::ENCRYPT | usage::DECRYPT),
                        material: material.expose_secret(),
                    },
                )?;
                (ObjectType::SymmetricKey, Encoding::Raw, uid)
            }
            SecretType::Passphrase => {
                let uid = self.register(
                    &scope,
                    Object {
                        object_type: ObjectType::SecretData,
                        name: &name,
                        key_format: key_format::OPAQUE,
                        algorithm: None,
                        length: None,
                        usage_mask: None,
                        material: material.expose_secret(),
                    },
                )?;
                (ObjectType::SecretData, Encoding::Raw, uid)
            }
            SecretType::Opaque => {
                let uid = self.register(
                    &scope,
                    Object {
                        object_type: ObjectType::OpaqueObject,
                        name: &name,
                        key_format: key_format::OPAQUE,
                        algorithm: None,
                        length: None,
                        usage_mask: None,
                        material: material.expose_secret(),
                    },
                )?;
                (ObjectType::OpaqueObject, Encoding::Raw, uid)
            }
            SecretType::Certificate | SecretType::Private | SecretType::Public => {
                let object_type = match kind.secret_type {
                    SecretType::Certificate => ObjectType::Certificate,
                    SecretType::Private => ObjectType::PrivateKey,
                    _ => ObjectType::PublicKey,
                };
                let input = AsymmetricInput::parse(object_type, material)?;
                let (algorithm, length) = if object_type == ObjectType::Certificate {
                    (None, None)
                } else {
                    let (a, l) = asymmetric_algorithm(kind.algorithm, kind.bit_length, &self.id)?;
                    (Some(a), Some(l))
                };
                let usage_mask = match object_type {
                    ObjectType::PrivateKey => Some(usage::SIGN | usage::DECRYPT),
                    ObjectType::PublicKey => Some(usage::VERIFY | usage::ENCRYPT),
                    _ => None,
                };
                let uid = self.register(
                    &scope,
                    Object {
                        object_type,
                        name: &name,
                        key_format: input.key_format,
                        algorithm,
                        length,
                        usage_mask,
                        material: input.der.expose_secret(),
                    },
                )?;
                (object_type, input.encoding, uid)
            }
        };
        Ok(self.record(object_type, encoding, uid))
    }

    fn retrieve(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes> {
        let record = Record::parse(&stored.bytes)?;
        let retrieved = self.fetch(&scope, &record)?;
        give_back(&record, retrieved)
    }

    fn delete(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<()> {
        let record = Record::parse(&stored.bytes)?;
        match self.call(Payload::GetNames { uid: &record.uid }) {
            Ok(attributes) => check_name(&scope, &attributes)?,
            // Already gone: nothing to destroy.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        match self.call(Payload::Destroy { uid: &record.uid }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            // An active object must be revoked first (KMIP §3.22).
            Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Conflict) => {
                self.call(Payload::Revoke { uid: &record.uid })?;
                self.call(Payload::Destroy { uid: &record.uid }).map(drop)
            }
            Err(e) => Err(e),
        }
    }

    fn generate_symmetric(&self, scope: Scope<'_>, spec: &KeySpec) -> Result<StoredSecret> {
        let algorithm = symmetric_algorithm(Some(&spec.algorithm), &self.id)?;
        let length = i32::try_from(spec.bit_length)
            .map_err(|_| Error::invalid("bit_length", "too large for KMIP"))?;
        let name = object_name(&scope);
        let payload = self.call(Payload::Create {
            name: &name,
            algorithm,
            length,
        })?;
        let uid = message::uid(Operation::Create, payload.child(message::UNIQUE_IDENTIFIER))?;
        Ok(self.record(ObjectType::SymmetricKey, Encoding::Raw, uid))
    }

    fn generate_key_pair(
        &self,
        private: Scope<'_>,
        public: Scope<'_>,
        passphrase: Option<(Scope<'_>, &SecretBytes)>,
        spec: &KeySpec,
    ) -> Result<StoredKeyPair> {
        if passphrase.is_some() {
            // Barbican's KMIP plugin refuses these too: the server makes the
            // key and has no passphrase-protected format to give it back in.
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "backend {} (KMIP) cannot protect a generated private key with a passphrase",
                    self.id
                ),
            ));
        }
        let (algorithm, length) =
            asymmetric_algorithm(Some(&spec.algorithm), Some(spec.bit_length), &self.id)?;
        let private_name = object_name(&private);
        let public_name = object_name(&public);
        let payload = self.call(Payload::CreateKeyPair {
            private_name: &private_name,
            public_name: &public_name,
            algorithm,
            length,
        })?;
        let (private_uid, public_uid) = message::key_pair_uids(&payload)?;
        Ok(StoredKeyPair {
            private_key: self.record(ObjectType::PrivateKey, Encoding::PemStandard, private_uid),
            public_key: self.record(ObjectType::PublicKey, Encoding::PemStandard, public_uid),
            passphrase: None,
        })
    }

    fn verify(&self) -> Result<KekReport> {
        // No KEKs: the server keeps the material. `connect` already asked it.
        Ok(KekReport::default())
    }
}

impl fmt::Debug for Kmip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kmip")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("pool", &self.pool)
            .finish()
    }
}

/// The Name every object of this secret gets; checked on every read.
fn object_name(scope: &Scope<'_>) -> String {
    format!("keywarden/{}/{}", scope.project_id, scope.secret_id)
}

fn check_name(scope: &Scope<'_>, attributes: &ttlv::Item) -> Result<()> {
    let want = object_name(scope);
    if message::names(attributes).contains(&want.as_str()) {
        Ok(())
    } else {
        // The row points at an object made for another secret (or project).
        Err(Error::integrity())
    }
}

/// What the catalog keeps for a KMIP secret (format in the module doc).
pub(crate) struct Record {
    pub(crate) object_type: ObjectType,
    pub(crate) encoding: Encoding,
    pub(crate) uid: String,
}

impl Record {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.uid.len());
        out.push(RECORD_VERSION);
        out.push(self.object_type as u8);
        out.push(self.encoding as u8);
        out.extend_from_slice(self.uid.as_bytes());
        out
    }

    /// Reads a catalog row (untrusted): anything malformed is `Integrity`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        let [version, object_type, encoding, uid @ ..] = bytes else {
            return Err(Error::integrity());
        };
        if *version != RECORD_VERSION || uid.is_empty() || uid.len() > message::MAX_UID_LEN {
            return Err(Error::integrity());
        }
        let object_type =
            ObjectType::from_code(u32::from(*object_type)).ok_or_else(Error::integrity)?;
        let encoding = Encoding::ALL
            .into_iter()
            .find(|e| *e as u8 == *encoding)
            .ok_or_else(Error::integrity)?;
        let uid = std::str::from_utf8(uid).map_err(|_| Error::integrity())?;
        if uid.chars().any(char::is_control) {
            return Err(Error::integrity());
        }
        Ok(Record {
            object_type,
            encoding,
            uid: uid.to_owned(),
        })
    }
}

/// A key or certificate payload as it goes to the server.
struct AsymmetricInput {
    der: SecretBytes,
    key_format: u32,
    encoding: Encoding,
}

impl AsymmetricInput {
    /// PEM becomes DER (its label names the format); anything else is sent
    /// as given, declared in the usual DER format of its type, for the
    /// server to judge, as Barbican does.
    fn parse(object_type: ObjectType, material: &SecretBytes) -> Result<Self> {
        let bytes = material.expose_secret();
        let default_format = match object_type {
            ObjectType::PrivateKey => key_format::PKCS8,
            ObjectType::PublicKey => key_format::X509,
            _ => 0,
        };
        if !bytes.starts_with(b"-----BEGIN ") {
            return Ok(AsymmetricInput {
                der: material.clone(),
                key_format: default_format,
                encoding: Encoding::Raw,
            });
        }
        let (label, der) = pem::decode_vec(bytes)
            .map_err(|_| Error::invalid("payload", "the PEM payload could not be decoded"))?;
        let der = SecretBytes::new(der);
        let key_format = match (object_type, label) {
            (ObjectType::Certificate, "CERTIFICATE") => 0,
            (ObjectType::PrivateKey, "PRIVATE KEY") => key_format::PKCS8,
            (ObjectType::PrivateKey, "RSA PRIVATE KEY") => key_format::PKCS1,
            (ObjectType::PrivateKey, "EC PRIVATE KEY") => key_format::EC_PRIVATE_KEY,
            (ObjectType::PublicKey, "PUBLIC KEY") => key_format::X509,
            (ObjectType::PublicKey, "RSA PUBLIC KEY") => key_format::PKCS1,
            (ObjectType::PrivateKey, "ENCRYPTED PRIVATE KEY") => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "a KMIP server cannot hold a passphrase-protected private key (ENCRYPTED PRIVATE KEY); store it on another backend",
                ));
            }
            (_, other) => {
                return Err(Error::invalid(
                    "payload",
                    format!("a PEM {other:?} block is not a {object_type:?} KMIP can hold"),
                ));
            }
        };
        Ok(AsymmetricInput {
            der,
            key_format,
            encoding: Encoding::Pem,
        })
    }
}

/// The material as the caller stored it (or, for generated keys, as the
/// other backends give it).
pub(crate) fn give_back(record: &Record, retrieved: message::Retrieved) -> Result<SecretBytes> {
    let message::Retrieved {
        object_type,
        key_format: format,
        material,
    } = retrieved;
    let unexpected =
        || message::malformed(Operation::Get, "a key format this secret was not stored in");
    let label = match (record.encoding, object_type, format) {
        (Encoding::Raw, ..) => return Ok(material),
        (_, ObjectType::Certificate, _) => "CERTIFICATE",
        (_, ObjectType::PrivateKey, Some(key_format::PKCS8)) => "PRIVATE KEY",
        (_, ObjectType::PublicKey, Some(key_format::X509)) => "PUBLIC KEY",
        (Encoding::Pem, ObjectType::PrivateKey, Some(key_format::PKCS1)) => "RSA PRIVATE KEY",
        (Encoding::Pem, ObjectType::PrivateKey, Some(key_format::EC_PRIVATE_KEY)) => {
            "EC PRIVATE KEY"
        }
        (Encoding::Pem, ObjectType::PublicKey, Some(key_format::PKCS1)) => "RSA PUBLIC KEY",
        (Encoding::PemStandard, ObjectType::PrivateKey, Some(key_format::PKCS1)) => {
            return rsa_private_pkcs1_to_pkcs8_pem(&material);
        }
        (Encoding::PemStandard, ObjectType::PublicKey, Some(key_format::PKCS1)) => {
            return rsa_public_pkcs1_to_spki_pem(&material);
        }
        _ => return Err(unexpected()),
    };
    pem_encode(label, &material)
}

fn pem_encode(label: &str, der: &SecretBytes) -> Result<SecretBytes> {
    let text = pem::encode_string(label, LineEnding::LF, der.expose_secret())
        .map_err(|_| message::malformed(Operation::Get, "key material too large to encode"))?;
    Ok(SecretBytes::new(text.into_bytes()))
}

fn rsa_private_pkcs1_to_pkcs8_pem(der: &SecretBytes) -> Result<SecretBytes> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::from_pkcs1_der(der.expose_secret()).map_err(|_| {
        message::malformed(Operation::Get, "a PKCS#1 private key that does not parse")
    })?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| message::malformed(Operation::Get, "a private key that does not encode"))?;
    Ok(SecretBytes::copy_from(pem.as_bytes()))
}

fn rsa_public_pkcs1_to_spki_pem(der: &SecretBytes) -> Result<SecretBytes> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::PublicKey::from_pkcs1_der(der.expose_secret()).map_err(|_| {
        message::malformed(Operation::Get, "a PKCS#1 public key that does not parse")
    })?;
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| message::malformed(Operation::Get, "a public key that does not encode"))?;
    Ok(SecretBytes::copy_from(pem.as_bytes()))
}

/// Barbican's algorithm names (and KMIP's spellings) for symmetric keys.
fn symmetric_algorithm(name: Option<&str>, backend: &BackendId) -> Result<u32> {
    let normalized = name.map(|n| {
        n.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    });
    let code = match normalized.as_deref() {
        Some("aes") => algorithm::AES,
        Some("des") => algorithm::DES,
        Some("3des" | "tripledes" | "desede") => algorithm::TRIPLE_DES,
        Some("hmacsha1") => algorithm::HMAC_SHA1,
        Some("hmacsha224") => algorithm::HMAC_SHA224,
        Some("hmacsha256") => algorithm::HMAC_SHA256,
        Some("hmacsha384") => algorithm::HMAC_SHA384,
        Some("hmacsha512") => algorithm::HMAC_SHA512,
        Some("camellia") => algorithm::CAMELLIA,
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "backend {backend} (KMIP) keeps symmetric keys only with a known algorithm (aes, des, 3des, hmacsha1/224/256/384/512, camellia), not {}",
                    name.unwrap_or("none")
                ),
            ));
        }
    };
    Ok(code)
}

fn asymmetric_algorithm(
    name: Option<&str>,
    bit_length: Option<u32>,
    backend: &BackendId,
) -> Result<(u32, i32)> {
    let code = match name.map(str::to_ascii_lowercase).as_deref() {
        Some("rsa") => algorithm::RSA,
        Some("dsa") => algorithm::DSA,
        Some("ec") => algorithm::EC,
        Some("ecdsa") => algorithm::ECDSA,
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "backend {backend} (KMIP) keeps asymmetric keys only with a known algorithm (rsa, dsa, ec, ecdsa), not {}",
                    name.unwrap_or("none")
                ),
            ));
        }
    };
    let length = bit_length
        .and_then(|b| i32::try_from(b).ok())
        .filter(|b| *b > 0)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!("backend {backend} (KMIP) needs an asymmetric key's bit_length"),
            )
        })?;
    Ok((code, length))
}

/// A TLS 1.2+ client that trusts only `ca_cert` (not the system roots) and
/// presents the client certificate when one is configured.
fn tls_connector(config: &KmipConfig) -> Result<SslConnector> {
    let tls_error = |what: String| {
        move |e: openssl::error::ErrorStack| {
            Error::new(ErrorKind::Config, what.clone()).with_source(e)
        }
    };
    let pem_bytes = std::fs::read(&config.ca_cert).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!(
                "kmip backend: cannot read ca_cert {}",
                config.ca_cert.display()
            ),
        )
        .with_source(e)
    })?;
    let cas = X509::stack_from_pem(&pem_bytes).map_err(tls_error(format!(
        "kmip backend: ca_cert {} holds no PEM certificate",
        config.ca_cert.display()
    )))?;
    if cas.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "kmip backend: ca_cert {} holds no PEM certificate",
                config.ca_cert.display()
            ),
        ));
    }
    let setup = || tls_error("kmip backend: could not set up TLS".into());
    let mut store = X509StoreBuilder::new().map_err(setup())?;
    for ca in cas {
        store.add_cert(ca).map_err(setup())?;
    }
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(setup())?;
    builder.set_cert_store(store.build());
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(setup())?;
    if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
        check_key_file(key)?;
        builder
            .set_certificate_chain_file(cert)
            .map_err(tls_error(format!(
                "kmip backend: cannot load client_cert {}",
                cert.display()
            )))?;
        builder
            .set_private_key_file(key, SslFiletype::PEM)
            .map_err(tls_error(format!(
                "kmip backend: cannot load client_key {}",
                key.display()
            )))?;
        builder.check_private_key().map_err(tls_error(
            "kmip backend: client_key does not belong to client_cert".into(),
        ))?;
    }
    Ok(builder.build())
}

/// Builds the backend a `kind = "kmip"` config section describes.
///
/// A server that is down (or unreachable) for now does not stop the store
/// from opening: projects on other backends keep working, this backend's
/// operations fail with a retryable `Unavailable` until the server answers,
/// and a warning says so. A configuration the server can never accept
/// (an untrusted server certificate, a refused client certificate, bad
/// credentials) still fails the open.
pub fn build(id: &BackendId, config: &KmipConfig) -> Result<Arc<dyn KeyManager>> {
    let backend = Kmip::new_unchecked(id.clone(), config)?;
    match backend.ping() {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Unavailable => tracing::warn!(
            backend = %id,
            error = %e,
            "KMIP server not answering; this backend's operations fail until it does"
        ),
        Err(e) => return Err(e),
    }
    Ok(Arc::new(backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_integrity() {
        let r = Record {
            object_type: ObjectType::SecretData,
            encoding: Encoding::Raw,
            uid: "42".into(),
        };
        let back = Record::parse(&r.to_bytes()).unwrap();
        assert_eq!(back.uid, "42");
        assert_eq!(back.object_type, ObjectType::SecretData);
        for bad in [
            &b""[..],
            b"\x01\x07\x00",
            b"\x02\x07\x0042",
            b"\x01\x63\x0042",
            b"\x01\x07\x0942",
            b"\x01\x07\x00\xff",
            b"\x01\x07\x00a\nb",
        ] {
            assert_eq!(
                Record::parse(bad).err().map(|e| e.kind()),
                Some(ErrorKind::Integrity),
                "{bad:?}"
            );
        }
        let long = [&[1u8, 7, 0][..], &[b'9'; 129]].concat();
        assert!(Record::parse(&long).is_err());
    }

    #[test]
    fn algorithms_map_to_kmip_codes() {
        let b = BackendId::new("k").unwrap();
        assert_eq!(
            symmetric_algorithm(Some("AES"), &b).unwrap(),
            algorithm::AES
        );
        assert_eq!(
            symmetric_algorithm(Some("hmac-sha256"), &b).unwrap(),
            algorithm::HMAC_SHA256
        );
        assert_eq!(
            symmetric_algorithm(None, &b).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            asymmetric_algorithm(Some("RSA"), Some(2048), &b).unwrap(),
            (algorithm::RSA, 2048)
        );
        assert!(asymmetric_algorithm(Some("rsa"), None, &b).is_err());
    }
}
