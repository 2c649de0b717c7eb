"""Every call python-barbicanclient 7.x makes, against a Barbican v1 endpoint.

Usage: python barbicanclient_flows.py http://127.0.0.1:PORT

The endpoint is the server's root (no /v1), talked to without Keystone:
X-Project-Id, X-User-Id and X-Roles headers, as Barbican's unauthenticated
pipeline and keywarden's `noauth` mode read them. Each run works in fresh
projects of its own, so counts are exact. Each check asserts values, not
only that no exception was raised. Prints one line per check and
`N passed, N failed`; exits 1 on any failure.
"""
import base64
import datetime
import logging
import os
import sys
import traceback
import uuid

from barbicanclient import client
from barbicanclient import exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ENDPOINT = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:9311"
RUN = uuid.uuid4().hex[:8]
PROJECT_A = "flows-a-" + RUN
PROJECT_B = "flows-b-" + RUN


def connect(project, user, roles="creator"):
    return client.Client(
        endpoint=ENDPOINT,
        project_id=project,
        additional_headers={"X-User-Id": user, "X-Roles": roles},
    )


try:
    CREATOR = connect(PROJECT_A, "creator-a")
    ADMIN = connect(PROJECT_A, "admin-a", "admin")
    OBSERVER = connect(PROJECT_A, "observer-a", "observer")
    READER_B = connect(PROJECT_B, "reader-b")
    OTHER_B = connect(PROJECT_B, "other-b")
except Exception as e:
    print(f"FAIL connect: no client for {ENDPOINT}: {e}")
    print("0 passed, 1 failed")
    sys.exit(1)

RESULTS = []
# The client logs each 4xx it raises; the checks expect many of them.
logging.getLogger("barbicanclient").setLevel(logging.CRITICAL)


def check(fn):
    """Runs `fn` now as one named check."""
    try:
        fn()
    except Exception:
        RESULTS.append((fn.__name__, False))
        print("FAIL", fn.__name__)
        traceback.print_exc(file=sys.stdout)
    else:
        RESULTS.append((fn.__name__, True))
        print("ok  ", fn.__name__)
    return fn


def expect_status(status, call, *args, **kwargs):
    """`call` raises an HTTP error with `status`; returns its text."""
    try:
        call(*args, **kwargs)
    except (exceptions.HTTPClientError, exceptions.HTTPServerError) as e:
        assert e.status_code == status, f"status {e.status_code}, expected {status}: {e}"
        return str(e)
    raise AssertionError(f"no error, expected {status}")


def expect_refused_across_projects(call, *args, **kwargs):
    """A user of another project is refused: Barbican answers 403,
    keywarden 404 (another project's objects look not-found, deliberately;
    docs/barbican-compat.md). Either passes; anything else fails."""
    try:
        call(*args, **kwargs)
    except (exceptions.HTTPClientError, exceptions.HTTPServerError) as e:
        assert e.status_code in (403, 404), f"status {e.status_code}, expected 403 or 404: {e}"
        return str(e)
    raise AssertionError("no error, expected 403 or 404")


def raw(c, method, path, **kwargs):
    """One request through the client's own HTTP adapter."""
    return c.client.request(path, method, **kwargs)


def uuid_of(ref):
    return ref.rstrip("/").rsplit("/", 1)[1]


def rsa_material():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flows-" + RUN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return private_pem, public_pem, cert.public_bytes(serialization.Encoding.PEM)


PRIVATE_PEM, PUBLIC_PEM, CERT_PEM = rsa_material()
KEY32 = os.urandom(32)
# One payload per secret type; every_secret_type stores each, under STORED[type].
PAYLOADS = {
    "symmetric": KEY32,
    "opaque": b"\x00\x01opaque\xff",
    "passphrase": "correct horse battery staple",
    "private": PRIVATE_PEM,
    "public": PUBLIC_PEM,
    "certificate": CERT_PEM,
}
STORED = {}


def store(c=CREATOR, **kwargs):
    return c.secrets.create(**kwargs).store()


# --- version discovery ---------------------------------------------------------


@check
def discovery_negotiates_1_2():
    # Client() reads GET / and takes the highest version both sides know.
    assert CREATOR.client.microversion == "1.2", CREATOR.client.microversion
    assert CREATOR.client.is_supported_microversion("1.1")


# --- secrets, each payload type ---------------------------------------------------


@check
def text_payload_round_trip():
    ref = store(name="text-" + RUN, payload="hello text")
    s = CREATOR.secrets.get(ref)
    assert s.payload == "hello text", s.payload
    assert s.content_types == {"default": "text/plain"}, s.content_types
    assert s.secret_type == "opaque" and s.status == "ACTIVE"
    assert s.name == "text-" + RUN
    STORED["text"] = ref


@check
def bytes_payload_round_trip_with_key_fields():
    ref = store(
        name="key-" + RUN,
        payload=KEY32,
        algorithm="aes",
        bit_length=256,
        mode="cbc",
        secret_type="symmetric",
    )
    s = CREATOR.secrets.get(ref)
    assert s.payload == KEY32
    assert s.content_types == {"default": "application/octet-stream"}
    assert (s.algorithm, s.bit_length, s.mode, s.secret_type) == ("aes", 256, "cbc", "symmetric")
    assert s.secret_ref == ref
    assert s.created is not None and s.expiration is None
    STORED["key"] = ref


SECRET_FIELDS = {
    "created", "updated", "status", "name", "secret_type", "expiration", "algorithm",
    "bit_length", "mode", "creator_id", "consumers", "content_types", "secret_ref",
}


@check
def secret_json_has_exactly_barbicans_fields():
    # The client passes some bodies straight into constructors: an extra
    # field is a TypeError on its side.
    body = raw(CREATOR, "GET", "secrets/" + uuid_of(STORED["key"]), headers={"Accept": "application/json"}).json()
    assert set(body) == SECRET_FIELDS, sorted(set(body) ^ SECRET_FIELDS)
    assert body["creator_id"] == "creator-a" and body["consumers"] == []
    listed = raw(CREATOR, "GET", "secrets", params={"name": "key-" + RUN}).json()
    assert set(listed) == {"secrets", "total"}, listed.keys()
    assert set(listed["secrets"][0]) == SECRET_FIELDS
    assert listed["total"] == 1


@check
def explicit_base64_content_encoding():
    ref = store(
        name="b64-" + RUN,
        payload=base64.b64encode(KEY32).decode(),
        payload_content_type="application/octet-stream",
        payload_content_encoding="base64",
        secret_type="symmetric",
        algorithm="aes",
        bit_length=256,
    )
    assert CREATOR.secrets.get(ref).payload == KEY32


@check
def every_secret_type():
    for secret_type, payload in PAYLOADS.items():
        ref = store(name=f"{secret_type}-{RUN}", payload=payload, secret_type=secret_type)
        s = CREATOR.secrets.get(ref)
        assert s.secret_type == secret_type, (secret_type, s.secret_type)
        assert s.payload == payload, secret_type
        STORED[secret_type] = ref


@check
def explicit_payload_content_type_on_get():
    s = CREATOR.secrets.get(STORED["key"], payload_content_type="application/octet-stream")
    assert s.payload == KEY32


@check
def expiration_round_trip():
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).replace(
        microsecond=0
    )
    ref = store(name="exp-" + RUN, payload="x", expiration=when.isoformat())
    got = CREATOR.secrets.get(ref).expiration
    assert got.replace(tzinfo=datetime.timezone.utc) == when, (got, when)
    STORED["exp"] = ref


@check
def payload_less_then_put_payload_once():
    ref = store(name="later-" + RUN)
    s = CREATOR.secrets.get(ref)
    assert s.content_types is None and s.payload is None
    CREATOR.secrets.update(ref, "filled in later")
    assert CREATOR.secrets.get(ref).payload == "filled in later"
    expect_status(409, CREATOR.secrets.update, ref, "a second time")
    assert CREATOR.secrets.get(ref).payload == "filled in later"


@check
def payload_less_then_put_bytes():
    ref = store(name="later-bytes-" + RUN)
    CREATOR.secrets.update(ref, KEY32)
    s = CREATOR.secrets.get(ref)
    assert s.content_types == {"default": "application/octet-stream"}
    assert s.payload == KEY32


@check
def unknown_secret_is_404():
    missing = f"{ENDPOINT}/v1/secrets/{uuid.uuid4()}"
    expect_status(404, lambda: CREATOR.secrets.get(missing).name)
    expect_status(404, CREATOR.secrets.delete, missing)


@check
def other_project_cannot_read():
    s = READER_B.secrets.get(STORED["key"])
    expect_refused_across_projects(lambda: s.payload)


@check
def delete_secret():
    ref = store(name="gone-" + RUN, payload="x")
    CREATOR.secrets.delete(ref)
    expect_status(404, lambda: CREATOR.secrets.get(ref).name)


# --- metadata ------------------------------------------------------------------------


@check
def metadata_put_get_post_delete():
    ref = STORED["text"]
    answer = CREATOR.secrets.set_secret_metadata(ref, {"color": "red", "size": "2"})
    assert answer["metadata_ref"].endswith(uuid_of(ref) + "/metadata"), answer
    got = CREATOR.secrets.get_secret_metadata(ref)
    assert got == {"metadata": {"color": "red", "size": "2"}}, got
    one = CREATOR.secrets.get_secret_metadata(ref, "color")
    assert one == {"key": "color", "value": "red"}, one
    # One key through POST /metadata (what the API documents) ...
    posted = raw(CREATOR, "POST", f"secrets/{uuid_of(ref)}/metadata", json={"key": "shape", "value": "round"})
    assert posted.status_code == 201, posted.status_code
    # ... and one key replaced through PUT /metadata/{key}.
    put = raw(CREATOR, "PUT", f"secrets/{uuid_of(ref)}/metadata/size", json={"key": "size", "value": "3"})
    assert put.json() == {"key": "size", "value": "3"}, put.text
    CREATOR.secrets.delete_secret_metadata(ref, "color")
    got = CREATOR.secrets.get_secret_metadata(ref)
    assert got == {"metadata": {"size": "3", "shape": "round"}}, got
    expect_status(404, CREATOR.secrets.get_secret_metadata, ref, "color")


@check
def add_secret_metadata_posts_to_the_key_url():
    # The client's add_secret_metadata POSTs to /metadata/{key}, a URL
    # Barbican 23 does not route for POST: 405 (a client bug).
    expect_status(405, CREATOR.secrets.add_secret_metadata, STORED["text"], "k", "v")


# --- secret consumers (1.2) -------------------------------------------------------------


@check
def secret_consumers_and_delete_refusal():
    ref = store(name="consumed-" + RUN, payload=KEY32, secret_type="symmetric")
    s = CREATOR.secrets.register_consumer(ref, "image", "image", "img-1")
    assert s.consumers == [{"service": "image", "resource_type": "image", "resource_id": "img-1"}], s.consumers
    CREATOR.secrets.register_consumer(ref, "volume", "volume", "vol-1")
    listed = CREATOR.secrets.list_consumers(ref)
    assert sorted((c.service, c.resource_type, c.resource_id) for c in listed) == [
        ("image", "image", "img-1"),
        ("volume", "volume", "vol-1"),
    ]
    assert len(CREATOR.secrets.list_consumers(ref, limit=1)) == 1
    assert CREATOR.secrets.get(ref).consumers is not None
    try:
        CREATOR.secrets.delete(ref)
    except exceptions.SecretHasConsumers:
        pass
    else:
        raise AssertionError("a secret with consumers was deleted")
    CREATOR.secrets.remove_consumer(ref, "volume", "volume", "vol-1")
    assert [c.resource_id for c in CREATOR.secrets.list_consumers(ref)] == ["img-1"]
    CREATOR.secrets.delete(ref, force=True)
    expect_status(404, lambda: CREATOR.secrets.get(ref).name)


# --- containers --------------------------------------------------------------------------


@check
def generic_container_with_consumers():
    one = CREATOR.secrets.get(STORED["key"])
    two = CREATOR.secrets.get(STORED["text"])
    c = CREATOR.containers.create(name="generic-" + RUN, secrets={"one": one, "two": two})
    ref = c.store()
    got = CREATOR.containers.get(ref)
    assert got.name == "generic-" + RUN and got.status == "ACTIVE"
    assert got.secret_refs == {"one": STORED["key"], "two": STORED["text"]}, got.secret_refs
    assert got.secrets["one"].payload == KEY32
    with_consumer = CREATOR.containers.register_consumer(ref, "lb", "http://lb/1")
    assert with_consumer.consumers == [{"name": "lb", "URL": "http://lb/1"}], with_consumer.consumers
    CREATOR.containers.remove_consumer(ref, "lb", "http://lb/1")
    assert CREATOR.containers.get(ref).consumers == []
    listed = CREATOR.containers.list(name="generic-" + RUN, type="generic")
    assert [x.container_ref for x in listed] == [ref]
    CREATOR.containers.delete(ref)
    expect_status(404, CREATOR.containers.get, ref)


def typed_container(factory, class_name, name, **members):
    """Stores a container of `factory`, its members the stored secrets of
    the types named; checks what GET gives back, member by member."""
    chosen = {member: CREATOR.secrets.get(STORED[kind]) for member, kind in members.items()}
    ref = factory(name=name, **chosen).store()
    got = CREATOR.containers.get(ref)
    assert type(got).__name__ == class_name, type(got)
    assert got.name == name
    for member, kind in members.items():
        assert getattr(got, member).payload == PAYLOADS[kind], member
    return ref, got


@check
def rsa_container():
    ref, _ = typed_container(
        CREATOR.containers.create_rsa,
        "RSAContainer",
        "rsa-" + RUN,
        public_key="public",
        private_key="private",
        private_key_passphrase="passphrase",
    )
    assert [x.container_ref for x in CREATOR.containers.list(type="rsa")] == [ref]
    STORED["rsa_container"] = ref


@check
def certificate_container():
    ref, got = typed_container(
        CREATOR.containers.create_certificate,
        "CertificateContainer",
        "cert-" + RUN,
        certificate="certificate",
        private_key="private",
        intermediates="opaque",
    )
    assert got.private_key_passphrase is None
    assert [x.container_ref for x in CREATOR.containers.list(type="certificate")] == [ref]
    STORED["cert_container"] = ref


# --- orders --------------------------------------------------------------------------------


def active(order_ref, tries=60):
    import time

    for _ in range(tries):
        order = CREATOR.orders.get(order_ref)
        if order.status == "ACTIVE":
            return order
        assert order.status != "ERROR", (order.error_status_code, order.error_reason)
        time.sleep(0.5)
    raise AssertionError(f"order {order_ref} not ACTIVE")


@check
def key_order():
    order = CREATOR.orders.create_key(name="ordered-" + RUN, algorithm="aes", bit_length=256, mode="cbc")
    ref = order.submit()
    got = active(ref)
    assert got.order_ref == ref and got.name == "ordered-" + RUN
    assert (got.algorithm, got.bit_length, got.mode) == ("aes", 256, "cbc")
    key = CREATOR.secrets.get(got.secret_ref)
    assert len(key.payload) == 32 and key.secret_type == "symmetric", key.secret_type
    assert key.name == "ordered-" + RUN
    STORED["key_order"] = ref


@check
def asymmetric_order():
    order = CREATOR.orders.create_asymmetric(name="pair-" + RUN, algorithm="rsa", bit_length=2048)
    ref = order.submit()
    got = active(ref)
    pair = CREATOR.containers.get(got.container_ref)
    assert type(pair).__name__ == "RSAContainer", type(pair)
    key = serialization.load_pem_private_key(pair.private_key.payload, password=None)
    assert key.key_size == 2048
    public = serialization.load_pem_public_key(pair.public_key.payload)
    assert public.public_numbers() == key.public_key().public_numbers()
    STORED["asym_order"] = ref


@check
def order_list_and_delete():
    listed = [o.order_ref for o in CREATOR.orders.list()]
    assert sorted(listed) == sorted([STORED["key_order"], STORED["asym_order"]]), listed
    assert CREATOR.orders.total() == 2
    # Deleting an order is the admin's (Queens policy).
    expect_status(403, CREATOR.orders.delete, STORED["key_order"])
    ADMIN.orders.delete(STORED["key_order"])
    expect_status(404, CREATOR.orders.get, STORED["key_order"])
    assert [o.order_ref for o in CREATOR.orders.list()] == [STORED["asym_order"]]


# --- ACLs ---------------------------------------------------------------------------------


@check
def secret_acl_grants_and_revokes():
    ref = STORED["key"]
    acl = CREATOR.acls.create(entity_ref=ref, users=["reader-b"], project_access=False)
    acl_ref = acl.submit()
    assert acl_ref == ref + "/acl", acl_ref
    got = CREATOR.acls.get(ref)
    assert got.read.users == ["reader-b"] and got.read.project_access is False
    # The listed user of another project reads it; others do not.
    assert READER_B.secrets.get(ref).payload == KEY32
    expect_refused_across_projects(lambda: OTHER_B.secrets.get(ref).payload)
    # Private to its creator now: an observer of the project is refused,
    # the project's admin is not.
    expect_status(403, lambda: OBSERVER.secrets.get(ref).payload)
    assert ADMIN.secrets.get(ref).payload == KEY32
    # acl_only lists what the ACL grants the caller.
    shared = raw(READER_B, "GET", "secrets", params={"acl_only": "true"}).json()
    assert [s["secret_ref"] for s in shared["secrets"]] == [ref], shared
    got.read.remove()
    again = CREATOR.acls.get(ref)
    assert again.read.users == [] and again.read.project_access is True
    expect_refused_across_projects(lambda: READER_B.secrets.get(ref).payload)
    assert OBSERVER.secrets.get(ref).payload == KEY32


@check
def container_acl_grants_and_revokes():
    ref = STORED["rsa_container"]
    acl = CREATOR.acls.create(entity_ref=ref, users=["reader-b", "other-b"])
    assert acl.submit() == ref + "/acl"
    got = CREATOR.acls.get(ref)
    assert sorted(got.read.users) == ["other-b", "reader-b"]
    assert got.read.project_access is True
    assert READER_B.containers.get(ref).name == "rsa-" + RUN
    got.remove()
    assert CREATOR.acls.get(ref).read.users == []
    expect_refused_across_projects(READER_B.containers.get, ref)


# --- listing ------------------------------------------------------------------------------


@check
def list_with_filters_and_paging():
    names = [f"list-{RUN}-{i}" for i in range(3)]
    refs = [
        store(name=n, payload=KEY32, algorithm="aes", bit_length=128 * (i + 1), mode="ctr", secret_type="symmetric")
        for i, n in enumerate(names)
    ]
    by_name = CREATOR.secrets.list(name=names[1])
    assert [s.secret_ref for s in by_name] == [refs[1]]
    by_bits = CREATOR.secrets.list(bits=384, mode="ctr", algorithm="aes")
    assert [s.secret_ref for s in by_bits] == [refs[2]]
    passphrases = CREATOR.secrets.list(secret_type="passphrase")
    assert [s.secret_ref for s in passphrases] == [STORED["passphrase"]]
    total = CREATOR.secrets.total()
    everything = CREATOR.secrets.list(limit=100)
    assert len(everything) == total, (len(everything), total)
    page = CREATOR.secrets.list(limit=2, offset=1)
    assert [s.secret_ref for s in page] == [s.secret_ref for s in everything[1:3]]
    ordered = CREATOR.secrets.list(limit=100, sort="name:desc")
    assert [s.name for s in ordered] == sorted((s.name for s in everything), reverse=True)
    later = CREATOR.secrets.list(limit=100, created="gte:" + everything[-1].created.isoformat())
    assert refs[2] in [s.secret_ref for s in later]
    expiring = CREATOR.secrets.list(expiration="gt:" + datetime.datetime.now().isoformat())
    assert [s.secret_ref for s in expiring] == [STORED["exp"]]
    # The raw answer carries total, next and previous.
    body = raw(CREATOR, "GET", "secrets", params={"limit": 1, "offset": 1}).json()
    assert body["total"] == total and len(body["secrets"]) == 1
    assert "offset=2" in body["next"] and "offset=0" in body["previous"], body


@check
def list_limit_is_clamped():
    body = raw(CREATOR, "GET", "secrets", params={"limit": 0}).json()
    assert len(body["secrets"]) == 1, len(body["secrets"])
    body = raw(CREATOR, "GET", "secrets", params={"limit": 1000}).json()
    assert len(body["secrets"]) == min(100, body["total"])


@check
def totals_per_project():
    assert READER_B.secrets.total() == 0
    assert CREATOR.containers.total() >= 3
    assert CREATOR.secrets.total() == len(CREATOR.secrets.list(limit=100))


# -------------------------------------------------------------------------------------------

passed = sum(1 for _, ok in RESULTS if ok)
failed = len(RESULTS) - passed
print(f"barbicanclient_flows against {ENDPOINT}:")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
