use super::*;

fn response(status: u32, reason: Option<u32>, message: Option<&str>) -> Item {
    let mut w = Writer::with_capacity(256);
    w.structure(RESPONSE_MESSAGE, |w| {
        w.structure(RESPONSE_HEADER, |w| w.integer(BATCH_COUNT, 1));
        w.structure(BATCH_ITEM, |w| {
            w.enumeration(OPERATION, Operation::Get.code());
            w.enumeration(RESULT_STATUS, status);
            if let Some(r) = reason {
                w.enumeration(RESULT_REASON, r);
            }
            if let Some(m) = message {
                w.text(RESULT_MESSAGE, m);
            }
        });
    });
    ttlv::decode(&w.into_bytes()).unwrap()
}

#[test]
fn failures_name_operation_and_reason_and_map_to_kinds() {
    let e = response_payloads(&[Operation::Get], response(1, Some(1), Some("gone\n")))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("KMIP Get failed"), "{e}");
    assert!(e.to_string().contains("ItemNotFound"), "{e}");
    let src = std::error::Error::source(&e).unwrap();
    let failure = src.downcast_ref::<KmipFailure>().unwrap();
    assert_eq!(failure.message.as_deref(), Some("gone"));
    let e = response_payloads(&[Operation::Get], response(1, Some(0x0C), None))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let e = response_payloads(&[Operation::Get], response(1, Some(0x4242), None))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.to_string().contains("0x4242"), "{e}");
    assert!(response_payloads(&[Operation::Get], response(0, None, None)).is_ok());
    let e = response_payloads(&[Operation::Destroy], response(0, None, None))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Storage);
}

#[test]
fn register_request_carries_every_object_type() {
    for t in [
        ObjectType::SymmetricKey,
        ObjectType::PrivateKey,
        ObjectType::PublicKey,
        ObjectType::SecretData,
        ObjectType::OpaqueObject,
        ObjectType::Certificate,
    ] {
        let object = Object {
            object_type: t,
            name: "n",
            key_format: key_format::RAW,
            algorithm: Some(algorithm::AES),
            length: Some(128),
            usage_mask: None,
            material: &[9; 16],
        };
        let bytes = encode_request((1, 2), None, &[Payload::Register(&object)]);
        let msg = ttlv::decode(&bytes).unwrap();
        let payload = msg
            .child(BATCH_ITEM)
            .and_then(|b| b.child(REQUEST_PAYLOAD))
            .unwrap();
        assert_eq!(
            payload.child(OBJECT_TYPE).and_then(Item::as_enum),
            Some(t as u32)
        );
        assert!(payload.child(t.object_tag()).is_some(), "{t:?}");
    }
}

/// Request Payloads as kmip-protocol 0.4.3 / kmip-ttlv 0.3.5 encoded them
/// (`kmip_ttlv::ser::to_vec` of its `RequestPayload`, captured before
/// they were removed), which PyKMIP 0.11 accepts: (payload, uid, TTLV).
const KMIP_PROTOCOL_PAYLOADS: &[(&str, &str, &str)] = &[
    (
        "get",
        "1",
        concat!("42007901000000104200940700000001", "3100000000000000",),
    ),
    (
        "get_names",
        "1",
        concat!(
            "42007901000000204200940700000001",
            "310000000000000042000a0700000004",
            "4e616d6500000000",
        ),
    ),
    (
        "revoke",
        "1",
        concat!(
            "42007901000000284200940700000001",
            "31000000000000004200810100000010",
            "42008205000000040000000600000000",
        ),
    ),
    (
        "destroy",
        "1",
        concat!("42007901000000104200940700000001", "3100000000000000",),
    ),
    (
        "get",
        "uid-1234",
        concat!("42007901000000104200940700000008", "7569642d31323334",),
    ),
    (
        "get_names",
        "uid-1234",
        concat!(
            "42007901000000204200940700000008",
            "7569642d3132333442000a0700000004",
            "4e616d6500000000",
        ),
    ),
    (
        "revoke",
        "uid-1234",
        concat!(
            "42007901000000284200940700000008",
            "7569642d313233344200810100000010",
            "42008205000000040000000600000000",
        ),
    ),
    (
        "destroy",
        "uid-1234",
        concat!("42007901000000104200940700000008", "7569642d31323334",),
    ),
    (
        "get",
        "a-longer-unique-identifier-9",
        concat!(
            "4200790100000028420094070000001c",
            "612d6c6f6e6765722d756e697175652d",
            "6964656e7469666965722d3900000000",
        ),
    ),
    (
        "get_names",
        "a-longer-unique-identifier-9",
        concat!(
            "4200790100000038420094070000001c",
            "612d6c6f6e6765722d756e697175652d",
            "6964656e7469666965722d3900000000",
            "42000a07000000044e616d6500000000",
        ),
    ),
    (
        "revoke",
        "a-longer-unique-identifier-9",
        concat!(
            "4200790100000040420094070000001c",
            "612d6c6f6e6765722d756e697175652d",
            "6964656e7469666965722d3900000000",
            "42008101000000104200820500000004",
            "0000000600000000",
        ),
    ),
    (
        "destroy",
        "a-longer-unique-identifier-9",
        concat!(
            "4200790100000028420094070000001c",
            "612d6c6f6e6765722d756e697175652d",
            "6964656e7469666965722d3900000000",
        ),
    ),
    (
        "query",
        "-",
        concat!("42007901000000104200740500000004", "0000000300000000",),
    ),
];

/// A whole two-item request (Get and Get Attributes of `uid-1234`,
/// protocol 1.2, no credential) as the backend sent it with those
/// payloads from kmip-protocol.
const KMIP_PROTOCOL_MESSAGE: &str = concat!(
    "42007801000000d04200770100000038",
    "420069010000002042006a0200000004",
    "000000010000000042006b0200000004",
    "000000020000000042000d0200000004",
    "000000020000000042000f0100000038",
    "42005c05000000040000000a00000000",
    "42009308000000010000000000000000",
    "42007901000000104200940700000008",
    "7569642d3132333442000f0100000048",
    "42005c05000000040000000b00000000",
    "42009308000000010100000000000000",
    "42007901000000204200940700000008",
    "7569642d3132333442000a0700000004",
    "4e616d6500000000",
);

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn payload<'a>(name: &str, uid: &'a str) -> Payload<'a> {
    match name {
        "get" => Payload::Get { uid },
        "get_names" => Payload::GetNames { uid },
        "revoke" => Payload::Revoke { uid },
        "destroy" => Payload::Destroy { uid },
        "query" => Payload::Query,
        other => panic!("no payload {other}"),
    }
}

#[test]
fn the_five_payloads_encode_as_kmip_protocol_did() {
    for (name, uid, hex) in KMIP_PROTOCOL_PAYLOADS {
        let bytes = encode_request((1, 2), None, &[payload(name, uid)]);
        let message = ttlv::decode(&bytes).unwrap();
        let item = message
            .child(BATCH_ITEM)
            .and_then(|b| b.child(REQUEST_PAYLOAD))
            .unwrap();
        let mut w = Writer::with_capacity(256);
        w.item(item);
        assert_eq!(*w.into_bytes(), unhex(hex), "{name} {uid}");
        // The payload is the batch item's last field, written as it is.
        assert!(bytes.ends_with(&unhex(hex)), "{name} {uid}");
    }
    let two = encode_request(
        (1, 2),
        None,
        &[
            Payload::Get { uid: "uid-1234" },
            Payload::GetNames { uid: "uid-1234" },
        ],
    );
    assert_eq!(*two, unhex(KMIP_PROTOCOL_MESSAGE));
}
