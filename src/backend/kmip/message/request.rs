//! Request messages: the payloads we send and their TTLV encoding.

use super::*;

/// Who we are to the server beside the TLS client certificate.
pub struct Credential<'a> {
    pub username: &'a SecretBytes,
    pub password: Option<&'a SecretBytes>,
}

/// What goes into a batch item's Request Payload.
pub enum Payload<'a> {
    /// Register of any object type.
    Register(&'a Object<'a>),
    /// Create of a symmetric key.
    Create {
        name: &'a str,
        algorithm: u32,
        length: i32,
    },
    /// Create Key Pair.
    CreateKeyPair {
        private_name: &'a str,
        public_name: &'a str,
        algorithm: u32,
        length: i32,
    },
    /// Get of an object as the server holds it (no key format asked for).
    Get {
        uid: &'a str,
    },
    /// Get Attributes of an object's Name attributes: how a catalog row is
    /// checked to point at the object made for that secret.
    GetNames {
        uid: &'a str,
    },
    /// Revoke, for Cessation of Operation (before destroying an active key).
    Revoke {
        uid: &'a str,
    },
    Destroy {
        uid: &'a str,
    },
    /// Query of the server's information: the startup check.
    Query,
}

impl Payload<'_> {
    pub fn operation(&self) -> Operation {
        match self {
            Payload::Register(_) => Operation::Register,
            Payload::Create { .. } => Operation::Create,
            Payload::CreateKeyPair { .. } => Operation::CreateKeyPair,
            Payload::Get { .. } => Operation::Get,
            Payload::GetNames { .. } => Operation::GetAttributes,
            Payload::Revoke { .. } => Operation::Revoke,
            Payload::Destroy { .. } => Operation::Destroy,
            Payload::Query => Operation::Query,
        }
    }

    /// Roughly how many bytes it encodes to (the buffer is sized once).
    fn size_hint(&self) -> usize {
        256 + match self {
            Payload::Register(o) => o.material.len() + o.name.len(),
            Payload::Create { name, .. } => name.len(),
            Payload::CreateKeyPair {
                private_name,
                public_name,
                ..
            } => private_name.len() + public_name.len(),
            Payload::Get { uid }
            | Payload::GetNames { uid }
            | Payload::Revoke { uid }
            | Payload::Destroy { uid } => uid.len(),
            Payload::Query => 0,
        }
    }
}

/// An object to register: its type, attributes and material.
pub struct Object<'a> {
    pub object_type: ObjectType,
    pub name: &'a str,
    /// For keys: the key format of `material`.
    pub key_format: u32,
    pub algorithm: Option<u32>,
    pub length: Option<i32>,
    pub usage_mask: Option<i32>,
    pub material: &'a [u8],
}

/// Encodes one request message with one batch item per payload.
pub fn encode_request(
    version: (i32, i32),
    credential: Option<&Credential<'_>>,
    payloads: &[Payload<'_>],
) -> zeroize::Zeroizing<Vec<u8>> {
    let size = 1024 + payloads.iter().map(Payload::size_hint).sum::<usize>();
    let mut w = Writer::with_capacity(size);
    w.structure(REQUEST_MESSAGE, |w| {
        w.structure(REQUEST_HEADER, |w| {
            w.structure(PROTOCOL_VERSION, |w| {
                w.integer(PROTOCOL_VERSION_MAJOR, version.0);
                w.integer(PROTOCOL_VERSION_MINOR, version.1);
            });
            if let Some(c) = credential {
                w.structure(AUTHENTICATION, |w| {
                    w.structure(CREDENTIAL, |w| {
                        w.enumeration(CREDENTIAL_TYPE, CREDENTIAL_USERNAME_AND_PASSWORD);
                        w.structure(CREDENTIAL_VALUE, |w| {
                            w.secret_text(USERNAME, c.username);
                            if let Some(p) = c.password {
                                w.secret_text(PASSWORD, p);
                            }
                        });
                    });
                });
            }
            w.integer(
                BATCH_COUNT,
                i32::try_from(payloads.len()).unwrap_or(i32::MAX),
            );
        });
        for (index, payload) in payloads.iter().enumerate() {
            w.structure(BATCH_ITEM, |w| {
                w.enumeration(OPERATION, payload.operation().code());
                // Required once a message has more than one item (§6.4).
                if payloads.len() > 1 {
                    w.bytes(
                        UNIQUE_BATCH_ITEM_ID,
                        &[u8::try_from(index).unwrap_or(u8::MAX)],
                    );
                }
                match payload {
                    Payload::Register(object) => write_register(w, object),
                    Payload::Create {
                        name,
                        algorithm,
                        length,
                    } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.enumeration(OBJECT_TYPE, ObjectType::SymmetricKey as u32);
                        w.structure(TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, name);
                            enum_attribute(w, "Cryptographic Algorithm", *algorithm);
                            int_attribute(w, "Cryptographic Length", *length);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::ENCRYPT | usage::DECRYPT,
                            );
                        });
                    }),
                    Payload::CreateKeyPair {
                        private_name,
                        public_name,
                        algorithm,
                        length,
                    } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.structure(COMMON_TEMPLATE_ATTRIBUTE, |w| {
                            enum_attribute(w, "Cryptographic Algorithm", *algorithm);
                            int_attribute(w, "Cryptographic Length", *length);
                        });
                        w.structure(PRIVATE_KEY_TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, private_name);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::SIGN | usage::DECRYPT,
                            );
                        });
                        w.structure(PUBLIC_KEY_TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, public_name);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::VERIFY | usage::ENCRYPT,
                            );
                        });
                    }),
                    Payload::Get { uid } | Payload::Destroy { uid } => {
                        w.structure(REQUEST_PAYLOAD, |w| w.text(UNIQUE_IDENTIFIER, uid));
                    }
                    Payload::GetNames { uid } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.text(UNIQUE_IDENTIFIER, uid);
                        w.text(ATTRIBUTE_NAME, "Name");
                    }),
                    Payload::Revoke { uid } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.text(UNIQUE_IDENTIFIER, uid);
                        w.structure(REVOCATION_REASON, |w| {
                            w.enumeration(
                                REVOCATION_REASON_CODE,
                                REVOCATION_CESSATION_OF_OPERATION,
                            );
                        });
                    }),
                    Payload::Query => w.structure(REQUEST_PAYLOAD, |w| {
                        w.enumeration(QUERY_FUNCTION, QUERY_SERVER_INFORMATION);
                    }),
                }
            });
        }
    });
    w.into_bytes()
}

fn name_attribute(w: &mut Writer, name: &str) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, "Name");
        w.structure(ATTRIBUTE_VALUE, |w| {
            w.text(NAME_VALUE, name);
            w.enumeration(NAME_TYPE, NAME_UNINTERPRETED_TEXT);
        });
    });
}

fn enum_attribute(w: &mut Writer, name: &str, value: u32) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, name);
        w.enumeration(ATTRIBUTE_VALUE, value);
    });
}

fn int_attribute(w: &mut Writer, name: &str, value: i32) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, name);
        w.integer(ATTRIBUTE_VALUE, value);
    });
}

fn write_register(w: &mut Writer, o: &Object<'_>) {
    w.structure(REQUEST_PAYLOAD, |w| {
        w.enumeration(OBJECT_TYPE, o.object_type as u32);
        w.structure(TEMPLATE_ATTRIBUTE, |w| {
            name_attribute(w, o.name);
            if let Some(mask) = o.usage_mask {
                int_attribute(w, "Cryptographic Usage Mask", mask);
            }
        });
        let key_block = |w: &mut Writer| {
            w.structure(KEY_BLOCK, |w| {
                w.enumeration(KEY_FORMAT_TYPE, o.key_format);
                w.structure(KEY_VALUE, |w| w.bytes(KEY_MATERIAL, o.material));
                if let Some(a) = o.algorithm {
                    w.enumeration(CRYPTOGRAPHIC_ALGORITHM, a);
                }
                if let Some(l) = o.length {
                    w.integer(CRYPTOGRAPHIC_LENGTH, l);
                }
            });
        };
        w.structure(o.object_type.object_tag(), |w| match o.object_type {
            ObjectType::SymmetricKey | ObjectType::PublicKey | ObjectType::PrivateKey => {
                key_block(w)
            }
            ObjectType::SecretData => {
                w.enumeration(SECRET_DATA_TYPE, SECRET_DATA_PASSWORD);
                key_block(w);
            }
            ObjectType::OpaqueObject => {
                w.enumeration(OPAQUE_DATA_TYPE, OPAQUE_DATA_NONE);
                w.bytes(OPAQUE_DATA_VALUE, o.material);
            }
            ObjectType::Certificate => {
                w.enumeration(CERTIFICATE_TYPE, CERTIFICATE_X509);
                w.bytes(CERTIFICATE_VALUE, o.material);
            }
        });
    });
}
