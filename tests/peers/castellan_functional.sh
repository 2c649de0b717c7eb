#!/usr/bin/env bash
# castellan's own Barbican functional tests
# (castellan/tests/functional/key_manager/test_barbican_key_manager.py of the
# installed castellan, unchanged) against a Barbican v1 endpoint, through the
# header-auth shim tests/peers/castellan_noauth.py.
#
#   tests/peers/castellan_functional.sh ENDPOINT [JUNIT_XML]
#
# ENDPOINT is the server's root (http://127.0.0.1:PORT). Only the
# RequestContext class runs (the KeystonePassword and KeystoneToken classes
# need a Keystone). Its setUp turns any failure to make a client into a
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
KEYWARDEN_CASTELLAN_ENDPOINT=$endpoint PYTHONPATH=$root/tests/peers \
    "$venv/bin/python" -m pytest -p castellan_noauth -p no:cacheprovider -q -rfEs \
    --junitxml="$xml" "$tests::BarbicanKeyManagerOsloContextTestCase" || rc=$?

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
