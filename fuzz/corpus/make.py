#!/usr/bin/env python3
"""Writes the committed seed corpus: a few valid samples per fuzz target,
the shapes the tests build (fuzz/corpus/<target>/<name>). Rerun after a
format changes: python3 fuzz/corpus/make.py"""
import base64, os, struct

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def put(target, name, data):
    d = os.path.join(here, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- TTLV (KMIP 1.x §9.1) ----
def item(tag, kind, value):
    pad = (8 - len(value) % 8) % 8 if kind != 0x01 else 0
    return struct.pack(">I", tag)[1:] + bytes([kind]) + struct.pack(">I", len(value)) + value + b"\0" * pad


def structure(tag, *items):
    return item(tag, 0x01, b"".join(items))


def integer(tag, v):
    return item(tag, 0x02, struct.pack(">i", v))


def enum(tag, v):
    return item(tag, 0x05, struct.pack(">I", v))


def text(tag, s):
    return item(tag, 0x07, s.encode())


def octets(tag, b):
    return item(tag, 0x08, b)


def boolean(tag, v):
    return item(tag, 0x06, struct.pack(">Q", 1 if v else 0))


def response(operation, *payload):
    return structure(
        0x42007B,
        structure(0x42007A, integer(0x42000D, 1)),
        structure(
            0x42000F,
            enum(0x42005C, operation),
            enum(0x42007F, 0),
            *([structure(0x42007C, *payload)] if payload else []),
        ),
    )


# payload_decode: selector (content type | encoding << 3 | raw body 0x20), body
put("payload_decode", "text_plain", b"\x01my-secret-payload")
put("payload_decode", "octet_base64", b"\x0c" + base64.b64encode(b"a 32-byte key for the corpus....."))
put("payload_decode", "octet_raw_body", b"\x24" + bytes(range(32)))
put("payload_decode", "pkcs8_base64", b"\x0d" + base64.b64encode(b"0\x82\x01\x00not really a key"))

# policy_parse: Barbican's default rules
for i, rule in enumerate([
    "role:admin",
    "rule:admin or project_id:%(project_id)s",
    "rule:admin or rule:observer or rule:creator",
    "project:%(target.secret.project_id)s",
    "'read':%(target.secret.read)s",
    "(rule:secret_project_creator or rule:secret_project_admin) and not rule:secret_private_read",
    "@",
    "!",
]):
    put("policy_parse", f"rule{i}", rule)

# luks_header: a LUKS1 header as cryptsetup lays it out (the target's template)
h = bytearray(592)
h[0:6] = b"LUKS\xba\xbe"
h[6:8] = struct.pack(">H", 1)
h[8:11] = b"aes"
h[40:51] = b"xts-plain64"
h[72:78] = b"sha256"
h[104:108] = struct.pack(">I", 4096)
h[108:112] = struct.pack(">I", 32)
h[164:168] = struct.pack(">I", 1000)
h[168:204] = b"6b2c3f4e-0000-4000-8000-000000000000"
for i in range(8):
    at = 208 + 48 * i
    h[at:at + 4] = struct.pack(">I", 0x00AC71F3 if i == 0 else 0x0000DEAD)
    h[at + 4:at + 8] = struct.pack(">I", 1000)
    h[at + 40:at + 44] = struct.pack(">I", 8 + 256 * i)
    h[at + 44:at + 48] = struct.pack(">I", 4000)
put("luks_header", "luks1_xts", bytes(h))
put("luks_header", "luks2_json", b'{"keyslots":{},"tokens":{},"segments":{},"digests":{},"config":{"json_size":"12288","keyslots_size":"16744448"}}')

# luks_open: which image (cipher), then XOR over its header fields, then the rest
put("luks_open", "unchanged_essiv", b"\x00")
put("luks_open", "unchanged_xts", b"\x02")
put("luks_open", "mode_flip", b"\x01" + b"\x00" * 31 + b"\x01")

# plain_volume: cipher, hash, key bytes, flags, offset, skip
put("plain_volume", "essiv_ripemd", bytes([0, 0, 32, 0]) + struct.pack("<QQ", 0, 0))
put("plain_volume", "xts_plain64_sha256", bytes([3, 2, 64, 0]) + struct.pack("<QQ", 2, 8))

# signature_decode: a fixture certificate's DER as is, and with bytes set
def der(name):
    pem = open(os.path.join(repo, "fuzz", "certs", name)).read()
    b64 = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return base64.b64decode(b64)
put("signature_decode", "rsa_der", b"\x00" + der("rsa-1024.crt"))
put("signature_decode", "p384_der", b"\x00" + der("p384.crt"))
put("signature_decode", "fixture_patched", b"\x02" + bytes([10, 0, 0x30]))
put("signature_decode", "verify_rsa", b"\x01" + b"\x00" * 64)
# found by the fuzzer: a fixture whose notAfter became a GeneralizedTime
# before 2050, which x509-cert re-encodes as UTCTime
put(
    "signature_decode",
    "generalized_time_before_2050",
    bytes([2, 32, 0, 255, 91, 0, 48, 130, 33, 33, 33, 33, 33, 33, 33, 255, 255, 255, 255, 255, 255, 255, 255, 140, 255, 255, 255, 255, 255, 255, 255, 186]),
)

# object_crypto_meta: swift's X-Object-Sysmeta-Crypto-Body-Meta
put("object_crypto_meta", "templated", "T")
put(
    "object_crypto_meta",
    "swift_header",
    '{"body_key": {"iv": "AAAAAAAAAAAAAAAAAAAAAA==", "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, '
    '"cipher": "AES_CTR_256", "iv": "AAAAAAAAAAAAAAAAAAAAAA==", "key_id": {"path": "/AUTH_test/c/o", "v": "3"}}',
)

# kmip_ttlv: one item of every type in a structure
put(
    "kmip_ttlv",
    "every_type",
    structure(
        0x420078,
        integer(0x42006A, 1),
        item(0x420004, 0x03, struct.pack(">q", 1 << 40)),
        enum(0x42005C, 3),
        boolean(0x420008, True),
        text(0x420094, "uid-12"),
        octets(0x420043, b"\x01\x02\x03"),
        item(0x420092, 0x09, struct.pack(">q", 1700000000)),
        item(0x42000A, 0x0A, struct.pack(">I", 60)),
    ),
)
put("kmip_ttlv", "response", response(0x0A))

# kmip_response: selector (batch shape; 0x80 = build from a program), response
put("kmip_response", "register", bytes([3]) + response(3, text(0x420094, "42")))
put("kmip_response", "create", bytes([4]) + response(1, enum(0x420057, 2), text(0x420094, "43")))
put("kmip_response", "destroy", bytes([6]) + response(0x14, text(0x420094, "42")))
put(
    "kmip_response",
    "get_secret_data",
    bytes([1])
    + response(
        0x0A,
        enum(0x420057, 7),
        text(0x420094, "42"),
        structure(
            0x420085,
            enum(0x420086, 1),
            structure(0x420040, enum(0x420042, 2), structure(0x420045, octets(0x420043, b"the material"))),
        ),
    ),
)

# kmip_record: version, object type, encoding, unique identifier
put("kmip_record", "symmetric_raw", b"\x01\x02\x00" + b"1f6c3a2e")
put("kmip_record", "private_pem", b"\x01\x04\x02" + b"key-pair-7-private")

# simple_crypto_record: selector (what changes, how), change
put("simple_crypto_record", "unchanged", b"\x00")
put("simple_crypto_record", "secret_flip", b"\x00\x00\x00\x01")
put("simple_crypto_record", "kek_cut", b"\x05\x00\x00")
put("simple_crypto_record", "kek_id", b"\x08kek-2")

# pkcs11_record: kind (even: wrapped KEK, odd: secret), record
put("pkcs11_record", "kek_wrap_pad", b"\x00\x01\x01" + struct.pack(">H", 40) + bytes(range(40)) + b"\x07" * 32)
put("pkcs11_record", "kek_wrap", b"\x00\x01\x02" + struct.pack(">H", 40) + bytes(range(40, 80)) + b"\x08" * 32)
put("pkcs11_record", "secret_gcm", b"\x01\x01\x01" + b"\x03" * 12 + b"ciphertext" + b"\x04" * 16)
put("pkcs11_record", "secret_cbc_hmac", b"\x01\x01\x02" + b"\x03" * 16 + b"\x05" * 32 + b"\x06" * 32)

# config_toml: what `keywarden init` writes, and the other backends' sections
kek = base64.b64encode(bytes([7] * 32)).decode()
put(
    "config_toml",
    "init",
    f'endpoint = "http://localhost:9311"\ncatalog = "sqlite:keywarden.db"\ndefault_backend = "software"\n'
    f'max_payload_bytes = 20000\n\n[backends."software"]\nkind = "simple_crypto"\nmaster_kek = "{kek}"\nretired_master_keks = []\n',
)
put(
    "config_toml",
    "every_backend",
    f'catalog = "postgresql://kw:pw@db:5432/keywarden?sslmode=require"\ndefault_backend = "hsm"\n'
    f'[backends.software]\nkind = "simple_crypto"\nmaster_kek = "{kek}"\nretired_master_keks = ["{kek}"]\n'
    '[backends.legacy]\nkind = "danger_fixed_key"\nfixed_key = "' + "6b" * 32 + '"\n'
    '[backends.hsm]\nkind = "pkcs11"\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\ntoken_label = "kw"\npin = "s3cr3t-pin"\n'
    '[backends.kmip]\nkind = "kmip"\nhost = "kmip.example"\nport = 5696\nca_cert = "ca.pem"\nusername = "u"\npassword = "p"\n',
)

# service_conf: cinder.conf's [key_manager]
put("service_conf", "cinder", "[DEFAULT]\nhost = node-1\n\n[key_manager]\nbackend = barbican\nfixed_key = " + "6b" * 32 + "\n")
put("service_conf", "legacy_keymgr", "[keymgr]\nfixed_key = " + "00" * 32 + "\napi_class = cinder.keymgr.conf_key_mgr.ConfKeyManager\n")
