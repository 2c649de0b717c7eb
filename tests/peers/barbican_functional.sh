#!/usr/bin/env bash
# Barbican 23's own API functional tests (`functionaltests/` of the barbican
# 23.0.0 sdist, unchanged but for their Keystone login) against a Barbican
# v1 endpoint.
#
#   tests/peers/barbican_functional.sh ENDPOINT [OUT_DIR] [STESTR FILTER...]
#
# ENDPOINT is the server's root (http://127.0.0.1:PORT). The sdist is
# fetched once (pip download, into .venv-barbican/sdist); its
# functionaltests/ is copied into a scratch directory, where
# functionaltests/common/auth.py is replaced by tests/peers/barbican_ft_auth.py
# (users mapped to projects and Queens roles, sent as X-Project-Id,
# X-User-Id, X-Roles; with KEYWARDEN_FT_AUTH=http_basic, as Basic
# credentials to a server whose users file holds them) and etc/barbican/barbican-functional.conf points
# `[keymanager] override_url` at ENDPOINT, with `server_host_href_set`
# ${KEYWARDEN_FT_HOST_HREF_SET:-True} (the server writes refs from its
# configured host_href, as keywarden always does; False: from the request's
# Host header). They run serially under stestr,
# as upstream's tox target does. In OUT_DIR (default: a scratch directory,
# removed): results.csv (every test with its status), failing.txt and
# skipped.txt (test ids), results.subunit. Prints pass/fail/skip counts and
# the failing ids; exits 1 when fewer than KEYWARDEN_FT_MIN_PASS tests pass
# (default 511: what the real Barbican 23 passes here, docs/barbican-compat.md).
set -euo pipefail

endpoint=${1:?usage: barbican_functional.sh ENDPOINT [OUT_DIR] [STESTR FILTER...]}
endpoint=${endpoint%/}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${KEYWARDEN_BARBICAN_VENV:-$root/.venv-barbican}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${1:-$work/out}
shift || true
mkdir -p "$out"
out=$(cd "$out" && pwd)

sdist_dir=$venv/sdist
sdist=$sdist_dir/barbican-23.0.0.tar.gz
if [ ! -f "$sdist" ]; then
    "$venv/bin/python" -m pip download --quiet --no-binary :all: --no-deps 'barbican==23.0.0' -d "$sdist_dir"
fi
tar -xzf "$sdist" -C "$work" barbican-23.0.0/functionaltests barbican-23.0.0/etc/barbican/barbican-functional.conf
tree=$work/barbican-23.0.0
# With KEYWARDEN_FT_AUTH=keystone the tests keep their own Keystone login
# (functionaltests/common/auth.py unchanged) against
# KEYWARDEN_TEST_KEYSTONE_URL, whose users tests/peers/keystone_ft_users.py
# makes; otherwise the header/Basic shim replaces it.
identity_uri=http://localhost/identity/v3
admin_password=secretadmin
if [[ ${KEYWARDEN_FT_AUTH:-} == keystone ]]; then
    identity_uri=${KEYWARDEN_TEST_KEYSTONE_URL:?}/v3
    admin_password=${KEYWARDEN_TEST_KEYSTONE_ADMIN_PASSWORD:?}
    "$root/.venv-keystone/bin/python" "$root/tests/peers/keystone_ft_users.py" \
        "$KEYWARDEN_TEST_KEYSTONE_URL" "$admin_password" >/dev/null
else
    cp "$root/tests/peers/barbican_ft_auth.py" "$tree/functionaltests/common/auth.py"
fi
# The sample config with the endpoint set; the identity and rbac_users
# sections keep their sample names, which barbican_ft_auth.py maps.
awk -v url="$endpoint" -v href_set="${KEYWARDEN_FT_HOST_HREF_SET:-True}" \
    -v identity="$identity_uri" -v admin_password="$admin_password" '
    /^# override_url=/ { print "override_url=" url; next }
    /^# override_url_version=/ { print "override_url_version=v1"; next }
    /^server_host_href_set/ { print "server_host_href_set = " href_set; next }
    /^uri=/ { print "uri=" identity; next }
    /^password=/ { print "password=" admin_password; next }
    { print }
' "$tree/etc/barbican/barbican-functional.conf" >"$tree/etc/barbican/barbican-functional.conf.new"
mv "$tree/etc/barbican/barbican-functional.conf.new" "$tree/etc/barbican/barbican-functional.conf"
grep -q "^override_url=$endpoint\$" "$tree/etc/barbican/barbican-functional.conf"
printf '[DEFAULT]\ntest_path=./functionaltests\ntop_dir=./\n' >"$tree/.stestr.conf"

cd "$tree"
export KEYWARDEN_FT_RUN=${KEYWARDEN_FT_RUN:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}
"$venv/bin/stestr" init >/dev/null
rc=0
PATH=$venv/bin:$PATH "$venv/bin/stestr" run --serial "$@" >"$out/stestr.log" 2>&1 || rc=$?
"$venv/bin/stestr" last --subunit >"$out/results.subunit" || true
# subunit2csv exits 1 when a test failed.
"$venv/bin/subunit2csv" <"$out/results.subunit" >"$out/results.csv" || true

"$venv/bin/python" - "$out" "$endpoint" "$rc" "${KEYWARDEN_FT_MIN_PASS:-}" <<'EOF'
import csv
import os
import sys

out, endpoint, rc, min_pass = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
status = {}
with open(os.path.join(out, "results.csv")) as f:
    for row in csv.DictReader(f):
        test = row["test"].split("[", 1)[0]
        if test.startswith("functionaltests."):
            status[test] = row["status"]
by = {}
for test, s in sorted(status.items()):
    by.setdefault(s, []).append(test)
passed = by.pop("success", [])
failed = by.pop("failure", []) + by.pop("fail", [])
skipped = by.pop("skip", [])
other = [t for ts in by.values() for t in ts]
with open(os.path.join(out, "failing.txt"), "w") as f:
    f.writelines(t + "\n" for t in failed + other)
with open(os.path.join(out, "skipped.txt"), "w") as f:
    f.writelines(t + "\n" for t in skipped)
print(f"Barbican 23 functional tests against {endpoint} ({len(status)} tests, stestr exit {rc}):")
for t in failed + other:
    print("  failed:", t)
print(f"failing ids in {out}/failing.txt, skipped in {out}/skipped.txt")
print(f"{len(passed)} passed, {len(failed) + len(other)} failed, {len(skipped)} skipped")
need = int(min_pass) if min_pass else 511
if len(passed) < need:
    print(f"fewer than {need} passed")
    sys.exit(1)
EOF
