#!/usr/bin/env bash
# castellan's own Barbican functional tests
# (castellan/tests/functional/key_manager/test_barbican_key_manager.py of the
# installed castellan, unchanged) against a Barbican v1 endpoint, through the
# header-auth shim tests/peers/castellan_noauth.py.
#
#   tests/peers/castellan_functional.sh ENDPOINT [JUNIT_XML]
#
# ENDPOINT is the server's root (http://127.0.0.1:PORT). Without Keystone
# only the RequestContext class runs (the KeystonePassword and KeystoneToken
# classes need a Keystone). With KEYWARDEN_CASTELLAN_KEYSTONE_URL (and
# _PASSWORD; _USER and _PROJECT default to admin) all three classes run
# against that Keystone, finding the key manager in its catalog
# (tests/peers/castellan_keystone.py); expect 213 then. Its setUp turns any failure to make a client into a
# skip, so this counts passes: it fails unless all
# ${KEYWARDEN_CASTELLAN_EXPECT:-71} tests pass. The venv is .venv-barbican
# (scripts/barbican.sh install) or $KEYWARDEN_BARBICAN_VENV.
set -euo pipefail

endpoint=${1:?usage: castellan_functional.sh ENDPOINT [JUNIT_XML]}
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${KEYWARDEN_BARBICAN_VENV:-$root/.venv-barbican}
expect=${KEYWARDEN_CASTELLAN_EXPECT:-71}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xml=${2:-$work/castellan.xml}

tests=$("$venv/bin/python" -c 'import os, castellan.tests.functional.key_manager.test_barbican_key_manager as m; print(m.__file__)')
# From a scratch directory: castellan's functional config looks for
# ./etc/castellan/castellan-functional.conf first.
cd "$work"
rc=0
if [[ -n ${KEYWARDEN_CASTELLAN_KEYSTONE_URL:-} ]]; then
    # All three classes, logging in to this Keystone as the given user and
    # finding the key manager in its catalog.
    mkdir -p etc/castellan
    cat >etc/castellan/castellan-functional.conf <<CONF
[identity]
auth_url = $KEYWARDEN_CASTELLAN_KEYSTONE_URL/v3
username = ${KEYWARDEN_CASTELLAN_KEYSTONE_USER:-admin}
password = $KEYWARDEN_CASTELLAN_KEYSTONE_PASSWORD
project_name = ${KEYWARDEN_CASTELLAN_KEYSTONE_PROJECT:-admin}
user_domain_name = Default
project_domain_name = Default
CONF
    KEYWARDEN_CASTELLAN_AUTH_URL=$KEYWARDEN_CASTELLAN_KEYSTONE_URL/v3 PYTHONPATH=$root/tests/peers \
        "$venv/bin/python" -m pytest -p castellan_keystone -p no:cacheprovider -q -rfEs \
        --junitxml="$xml" "$tests" || rc=$?
else
    KEYWARDEN_CASTELLAN_ENDPOINT=$endpoint PYTHONPATH=$root/tests/peers \
        "$venv/bin/python" -m pytest -p castellan_noauth -p no:cacheprovider -q -rfEs \
        --junitxml="$xml" "$tests::BarbicanKeyManagerOsloContextTestCase" || rc=$?
fi

"$venv/bin/python" - "$xml" "$expect" "$endpoint" "$rc" <<'EOF'
import sys
import xml.etree.ElementTree as ET

xml, expect, endpoint, rc = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
passed, failed, skipped = [], [], []
for case in ET.parse(xml).iter("testcase"):
    name = case.get("classname").rsplit(".", 1)[-1] + "::" + case.get("name")
    if case.find("skipped") is not None:
        skipped.append(name)
    elif case.find("failure") is not None or case.find("error") is not None:
        failed.append(name)
    else:
        passed.append(name)
print(f"castellan functional tests against {endpoint}:")
for name in failed:
    print("  failed:", name)
for name in skipped:
    print("  skipped:", name)
print(f"{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
if len(passed) != expect:
    print(f"expected {expect} passes (pytest exit {rc})")
    sys.exit(1)
EOF
