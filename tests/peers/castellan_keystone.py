"""A pytest plugin: castellan's Barbican functional tests against Keystone.

castellan 5.x's `test_barbican_key_manager.py` runs unchanged, all three
classes (oslo context, KeystonePassword, KeystoneToken): each logs in to
the Keystone that its functional config names (`[identity]` of
./etc/castellan/castellan-functional.conf, which
tests/peers/castellan_functional.sh writes) and finds the key manager in
Keystone's service catalog, as nova and cinder do. The only setting given
here is the one a deployment puts in its own config: `[barbican]
auth_endpoint` (castellan's default is http://localhost/identity/v3),
from KEYWARDEN_CASTELLAN_AUTH_URL.
"""
import os

from castellan.key_manager import barbican_key_manager
from castellan.tests.functional.key_manager import test_barbican_key_manager as upstream
from oslo_config import cfg

AUTH_URL = os.environ["KEYWARDEN_CASTELLAN_AUTH_URL"].rstrip("/")


def _create_key_manager(self):
    manager = barbican_key_manager.BarbicanKeyManager(cfg.CONF)
    cfg.CONF.set_override("auth_endpoint", AUTH_URL, group="barbican")
    return manager


upstream.BarbicanKeyManagerTestCase._create_key_manager = _create_key_manager
