"""A castellan KeyManager whose `get` asks the keywarden command.

swift's kms_keymaster loads it through its `api_class` option, so swift's
own code fetches and checks the root secrets that keywarden holds.
Environment: KEYWARDEN_BIN (the command), KEYWARDEN_CONFIG (its config).
"""
import json
import os
import subprocess
import tempfile

from castellan.common.objects import opaque_data, symmetric_key
from castellan.key_manager import key_manager


def _keywarden(*args):
    cmd = [os.environ["KEYWARDEN_BIN"], "--config", os.environ["KEYWARDEN_CONFIG"]]
    return subprocess.run(
        cmd + list(args), check=True, capture_output=True, text=True
    ).stdout


class KeywardenKeyManager(key_manager.KeyManager):
    def __init__(self, configuration=None):
        self.conf = configuration

    def get(self, context, managed_object_id, metadata_only=False):
        meta = json.loads(_keywarden("secret", "get", managed_object_id, "-f", "json"))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "payload")
            _keywarden("secret", "get", managed_object_id, "--file", path)
            with open(path, "rb") as f:
                data = f.read()
        if meta["Secret type"] == "symmetric":
            return symmetric_key.SymmetricKey(
                meta["Algorithm"], meta["Bit length"], data, id=managed_object_id
            )
        return opaque_data.OpaqueData(data, id=managed_object_id)

    def create_key(self, context, algorithm, length, **kwargs):
        raise NotImplementedError

    def create_key_pair(self, context, algorithm, length, **kwargs):
        raise NotImplementedError

    def store(self, context, managed_object, **kwargs):
        raise NotImplementedError

    def delete(self, context, managed_object_id, force=False):
        raise NotImplementedError

    def add_consumer(self, context, managed_object_id, consumer_data):
        raise NotImplementedError

    def remove_consumer(self, context, managed_object_id, consumer_data):
        raise NotImplementedError
