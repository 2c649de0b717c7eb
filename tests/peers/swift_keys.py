"""Runs swift's own crypto code against keywarden's root secrets.

Reads a JSON job on stdin, writes JSON results on stdout. Every key, key_id
and crypto-meta here comes from swift's modules (kms_keymaster,
keymaster.KeyMasterContext, crypto_utils); the encrypt step composes
swift's Crypto calls exactly as encrypter.EncInputWrapper does.
"""
import base64
import json
import sys

from swift.common.middleware.crypto.crypto_utils import (
    Crypto, dump_crypto_meta, load_crypto_meta)
from swift.common.middleware.crypto.keymaster import KeyMasterContext
from swift.common.middleware.crypto.kms_keymaster import KmsKeyMaster


def b64(b):
    return base64.b64encode(b).decode()


def keymaster(conf):
    conf = dict(conf, api_class="keywarden_castellan.KeywardenKeyManager")
    return KmsKeyMaster(None, conf)


def context(km, path, version=None):
    a, c, o = path
    return KeyMasterContext(
        km, a, c, o, meta_version_to_write=version or km.meta_version_to_write)


def main():
    job = json.load(sys.stdin)
    # Libraries may print; only our JSON goes to the real stdout.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    kms = {name: keymaster(conf) for name, conf in job["keymasters"].items()}
    crypto = Crypto()
    out = {"derive": [], "read": [], "encrypt": [], "decrypt": []}
    for d in job["derive"]:
        keys = context(kms[d["keymaster"]], d["path"], d.get("version")).fetch_crypto_keys()
        out["derive"].append({
            "container": keys["container"].hex(),
            "object": keys["object"].hex(),
            "id": keys["id"],
            "all_ids": keys["all_ids"],
        })
    for r in job["read"]:
        keys = context(kms[r["keymaster"]], r["path"]).fetch_crypto_keys(key_id=r["key_id"])
        out["read"].append({"container": keys["container"].hex(),
                            "object": keys["object"].hex()})
    for e in job["encrypt"]:
        keys = context(kms[e["keymaster"]], e["path"], e.get("version")).fetch_crypto_keys()
        meta = crypto.create_crypto_meta()
        body_key = crypto.create_random_key()
        meta["body_key"] = crypto.wrap_key(keys["object"], body_key)
        meta["key_id"] = keys["id"]
        ctxt = crypto.create_encryption_ctxt(body_key, meta["iv"])
        body = base64.b64decode(e["body"])
        out["encrypt"].append({"header": dump_crypto_meta(meta),
                               "stored": b64(ctxt.update(body))})
    for d in job["decrypt"]:
        meta = load_crypto_meta(d["header"])
        crypto.check_crypto_meta(meta)
        keys = context(kms[d["keymaster"]], d["path"]).fetch_crypto_keys(
            key_id=meta["key_id"])
        body_key = crypto.unwrap_key(keys["object"], meta["body_key"])
        ctxt = crypto.create_decryption_ctxt(body_key, meta["iv"], d.get("offset", 0))
        stored = base64.b64decode(d["stored"])[d.get("offset", 0):]
        out["decrypt"].append({"body": b64(ctxt.update(stored)),
                               "redump": dump_crypto_meta(meta)})
    json.dump(out, real_stdout)


if __name__ == "__main__":
    main()
