"""Header auth for Barbican's API functional tests, without Keystone.

tests/peers/barbican_functional.sh puts this file in place of
`functionaltests/common/auth.py` of the barbican 23.0.0 sdist. The tests'
client builds one `FunctionalTestAuth` per configured user and calls it on
each request; here it sends Barbican's unauthenticated-context headers
(X-Project-Id, X-User-Id, X-Roles) instead of a Keystone token.

Users map to a project (the configured project name, suffixed with
KEYWARDEN_FT_RUN so that runs against one server do not meet) and one Queens
role, read from the user names of barbican-functional.conf:
`admin` (admin of project `admin`), `service-admin`
(key-manager:service-admin), `project_X_admin`, `project_X_creator`,
`project_X_creator_2`, `project_X_observer`, `project_X_auditor`.

With KEYWARDEN_FT_AUTH=http_basic the user name and password go as
`Authorization: Basic` instead, to a server whose users file maps each user
to the same project and role (`python3 barbican_ft_auth.py users` prints
them, one `name project role password` line each, for the sample config).
A request the tests send without auth then carries no credentials at all,
and the server's 401 is what they expect.
"""
import os

import sys

from requests import auth

RUN = os.environ.get("KEYWARDEN_FT_RUN", "")
BASIC = os.environ.get("KEYWARDEN_FT_AUTH") == "http_basic"

# The users of barbican-functional.conf (the sdist's sample): name,
# project name, password.
SAMPLE_USERS = [("admin", "admin", "secretadmin"), ("service-admin", "service", "secretservice")] + [
    (f"project_{p}_{kind}", f"project_{p}", "barbican")
    for p in ("a", "b")
    for kind in ("admin", "creator", "creator_2", "observer", "auditor")
    if (p, kind) != ("b", "creator_2")
]
STORED_AUTHENTICATION = {}


def project_of(project_name):
    return f"{project_name}-{RUN}" if RUN else project_name


def role_of(username):
    if username == "service-admin":
        return "key-manager:service-admin"
    for word, role in (("creator", "creator"), ("observer", "observer"), ("auditor", "audit")):
        if word in username:
            return role
    return "admin"


class FunctionalTestAuth(auth.AuthBase):
    def __init__(self, endpoint, version, username, password, project_name, project_domain):
        self.endpoint = endpoint
        self.version = version
        self.username = username
        self.project_name = project_name
        self.project_domain = project_domain
        self.password = password
        self.project_id = project_of(project_name)
        self.role = role_of(username)

    @property
    def stored_auth(self):
        """What a Keystone login would have stored, per user name."""
        return STORED_AUTHENTICATION

    @property
    def service_catalog(self):
        raise RuntimeError("no service catalog without Keystone: set [keymanager] override_url")

    def authenticate(self):
        creds = STORED_AUTHENTICATION.get(self.username)
        if not creds:
            creds = STORED_AUTHENTICATION[self.username] = {
                "token": None,
                "project_id": self.project_id,
                "service_catalog": None,
                "user_id": self.username,
            }
        return creds

    def get_user_id(self):
        return self.authenticate()["user_id"]

    def get_project_id(self):
        return self.authenticate()["project_id"]

    def __call__(self, r):
        if BASIC:
            return auth.HTTPBasicAuth(self.username, self.password)(r)
        creds = self.authenticate()
        r.headers["X-Project-Id"] = creds["project_id"]
        r.headers["X-User-Id"] = creds["user_id"]
        r.headers["X-Roles"] = self.role
        return r


if __name__ == "__main__" and sys.argv[1:] == ["users"]:
    for name, project, password in SAMPLE_USERS:
        print(name, project_of(project), role_of(name), password)
