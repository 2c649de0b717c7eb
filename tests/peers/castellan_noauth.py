"""A pytest plugin: castellan's Barbican functional tests without Keystone.

castellan 5.x's `test_barbican_key_manager.py` authenticates through
Keystone in each test class's `get_context`. Loaded with
`-p castellan_noauth`, this plugin gives `BarbicanKeyManagerOsloContextTestCase`
a context whose auth plugin sends Barbican's unauthenticated-context
headers (X-Project-Id, X-User-Id, X-Roles) instead, and points the key
manager's `[barbican] barbican_endpoint` at KEYWARDEN_CASTELLAN_ENDPOINT
(the server's root, without /v1). The test file itself runs unchanged.

Environment: KEYWARDEN_CASTELLAN_ENDPOINT (required), and
KEYWARDEN_CASTELLAN_PROJECT / _USER / _ROLES (default: a fresh project,
user `admin`, role `admin`, as castellan's own default Keystone user).
"""
import os
import uuid

from castellan.key_manager import barbican_key_manager
from castellan.tests.functional.key_manager import test_barbican_key_manager as upstream
from keystoneauth1 import noauth
from oslo_config import cfg
from oslo_context import context

ENDPOINT = os.environ["KEYWARDEN_CASTELLAN_ENDPOINT"].rstrip("/")
PROJECT = os.environ.get("KEYWARDEN_CASTELLAN_PROJECT") or "castellan-" + uuid.uuid4().hex[:8]
USER = os.environ.get("KEYWARDEN_CASTELLAN_USER", "admin")
ROLES = os.environ.get("KEYWARDEN_CASTELLAN_ROLES", "admin")


class HeaderAuth(noauth.NoAuth):
    """keystoneauth1's NoAuth, sending the no-auth identity headers."""

    def get_headers(self, session, **kwargs):
        return {"X-Project-Id": PROJECT, "X-User-Id": USER, "X-Roles": ROLES}

    def get_project_id(self, session, **kwargs):
        return PROJECT

    def get_user_id(self, session, **kwargs):
        return USER


class HeaderContext(context.RequestContext):
    """What castellan's BarbicanKeyManager asks for its auth plugin."""

    def get_auth_plugin(self):
        return HeaderAuth()


def _get_context(self):
    return HeaderContext(project_id=PROJECT, user_id=USER, roles=ROLES.split(","))


def _create_key_manager(self):
    manager = barbican_key_manager.BarbicanKeyManager(cfg.CONF)
    cfg.CONF.set_override("barbican_endpoint", ENDPOINT, group="barbican")
    return manager


upstream.BarbicanKeyManagerOsloContextTestCase.get_context = _get_context
upstream.BarbicanKeyManagerOsloContextTestCase._create_key_manager = _create_key_manager
