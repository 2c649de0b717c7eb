"""Makes the users Barbican's API functional tests log in as, in a Keystone.

    keystone_ft_users.py KEYSTONE_URL ADMIN_PASSWORD

The users, passwords, projects and roles of barbican 23's sample
etc/barbican/barbican-functional.conf: `service-admin` (project `service`,
role `key-manager:service-admin`), and for projects `project_a` and
`project_b` the users `project_X_admin` (admin), `project_X_creator`
(creator), `project_a_creator_2` (creator), `project_X_observer`
(observer) and `project_X_auditor` (audit), all with password `barbican`.
The bootstrap `admin` user is the tests' default user; its password is
ADMIN_PASSWORD. Safe to run again. Runs in .venv-keystone
(python-keystoneclient).
"""
import sys

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient import exceptions
from keystoneclient.v3 import client

url, admin_password = sys.argv[1].rstrip("/"), sys.argv[2]
auth = v3.Password(
    auth_url=url + "/v3",
    username="admin",
    password=admin_password,
    project_name="admin",
    user_domain_name="Default",
    project_domain_name="Default",
)
ks = client.Client(session=session.Session(auth=auth))


def one(manager, name, **create):
    found = manager.list(name=name)
    if found:
        return found[0]
    try:
        return manager.create(name=name, **create)
    except exceptions.Conflict:
        return manager.list(name=name)[0]


users = [("service-admin", "service", "key-manager:service-admin", "secretservice")]
for p in ("a", "b"):
    for kind, role in (("admin", "admin"), ("creator", "creator"), ("creator_2", "creator"),
                       ("observer", "observer"), ("auditor", "audit")):
        if (p, kind) != ("b", "creator_2"):
            users.append((f"project_{p}_{kind}", f"project_{p}", role, "barbican"))

for name, project, role, password in users:
    proj = one(ks.projects, project, domain="default")
    user = one(ks.users, name, domain="default", password=password)
    ks.roles.grant(one(ks.roles, role), user=user, project=proj)
print(f"{len(users)} functional-test users in {url}")
