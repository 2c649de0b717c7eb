#!/usr/bin/env bash
# The seed guide's `openstack secret …` commands (chapters 3.1.1, 4, 6.1 and
# 7.2), verbatim, through python-openstackclient against a Barbican v1
# endpoint, with checks on what they print.
#
#   tests/peers/openstack_guide.sh ENDPOINT [AUTH ARGS...]
#
# ENDPOINT is the server's root (http://127.0.0.1:PORT; the client is given
# ENDPOINT/v1). AUTH ARGS default to `--os-auth-type none`, which sends no
# X-Project-Id: the server must fall back to a default project (keywarden's
# configured default identity; for the real Barbican,
# KEYWARDEN_BARBICAN_DEFAULT_PROJECT of scripts/barbican.sh). For
# http_basic: `--os-auth-type http_basic --os-username U --os-password P`;
# for Keystone, password auth arguments and KEYWARDEN_GUIDE_CATALOG=1.
# The client is .venv-barbican's `openstack` (scripts/barbican.sh install)
# or $KEYWARDEN_OPENSTACK. Prints each command and its output, one line per
# check and `N passed, N failed`; exits 1 on any failure.
set -euo pipefail

endpoint=${1:?usage: openstack_guide.sh ENDPOINT [AUTH ARGS...]}
endpoint=${endpoint%/}
shift
auth=("$@")
if ((${#auth[@]} == 0)); then auth=(--os-auth-type none); fi
root=$(cd "$(dirname "$0")/../.." && pwd)
# With KEYWARDEN_GUIDE_CATALOG=1 the client finds the key manager in
# Keystone's service catalog (password auth), as in a real cloud; ENDPOINT
# is then only what the refs must start with.
endpoint_args=(--os-endpoint "$endpoint/v1")
if [[ ${KEYWARDEN_GUIDE_CATALOG:-} == 1 ]]; then endpoint_args=(); fi
osc=${KEYWARDEN_OPENSTACK:-$root/.venv-barbican/bin/openstack}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

passed=0
failed=0
failures=()

# `openstack ARGS` with the endpoint and auth; its output in $out, status in $rc.
run() {
    printf '\n$ openstack %s\n' "$*"
    if out=$("$osc" "${auth[@]}" "${endpoint_args[@]}" "$@" 2>&1); then rc=0; else rc=$?; fi
    printf '%s\n' "$out"
}
# The value of row NAME in the table $out.
field() {
    awk -F'|' -v f="$1" '{ k = $2; gsub(/^ +| +$/, "", k); if (k == f) { v = $3; gsub(/^ +| +$/, "", v); print v } }' <<<"$out"
}
# The row names of the table $out, comma-separated.
fields() {
    awk -F'|' 'NF > 3 { k = $2; gsub(/^ +| +$/, "", k); if (k != "Field") printf "%s,", k }' <<<"$out"
}
expect() {
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
        failures+=("$name")
    fi
}
is() { [ "$1" = "$2" ] || { echo "  got '$1', expected '$2'" >&2; return 1; }; }
contains() { grep -qF -- "$2" <<<"$1" || { echo "  '$2' not in the output" >&2; return 1; }; }

secret_fields="Secret href,Name,Created,Status,Content types,Algorithm,Bit length,Secret type,Mode,Expiration,"
order_fields="Order href,Type,Container href,Secret href,Created,Status,Error code,Error message,"

# --- 3.1.1 Test barbican functionality -----------------------------------------
run secret store --name testSecret --payload 'TestPayload'
href=$(field 'Secret href')
expect "store: exit 0" is "$rc" 0
expect "store: Barbican's fields" is "$(fields)" "$secret_fields"
expect "store: name" is "$(field Name)" testSecret
expect "store: href under the endpoint" contains "$href" "$endpoint/v1/secrets/"
expect "store: aes/256/cbc opaque defaults" is "$(field Algorithm)/$(field 'Bit length')/$(field Mode)/$(field 'Secret type')" "aes/256/cbc/opaque"

run secret get "$href"
expect "get: exit 0" is "$rc" 0
expect "get: Barbican's fields" is "$(fields)" "$secret_fields"
expect "get: ACTIVE" is "$(field Status)" ACTIVE
expect "get: content types" is "$(field 'Content types')" "{'default': 'application/octet-stream'}"
expect "get: created is a time" contains "$(field Created)" "T"

run secret get "$href" --payload
expect "get --payload: the payload" is "$(field Payload)" TestPayload

# --- 4 List, add, update, delete ------------------------------------------------
run secret list
expect "list: exit 0" is "$rc" 0
expect "list: holds testSecret" contains "$out" "| $href | testSecret "

run secret store --name later
later=$(field 'Secret href')
expect "store without payload: no content types" is "$(field 'Content types')" None
run secret update "$later" 'TestPayload-updated'
expect "update: exit 0" is "$rc" 0
run secret get "$later" --payload
expect "update: payload now readable" is "$(field Payload)" TestPayload-updated
run secret update "$later" 'a second time'
expect "update again: refused" is "$rc" 1
expect "update again: Barbican's 409 text" contains "$out" "Conflict: Secret already has data, cannot modify it."

run secret delete "$later"
expect "delete: exit 0" is "$rc" 0
run secret get "$later"
expect "get after delete: refused" is "$rc" 1
expect "get after delete: Barbican's 404 text" contains "$out" "Not Found: Secret not found."
run secret list
expect "list after delete: gone" is "$(grep -c -- "$later" <<<"$out")" 0

# --- 6.1 Generate a key with an order -------------------------------------------
run secret order create --name secret1 --algorithm aes --bit-length 256 --mode cbc key
order=$(field 'Order href')
expect "order create: exit 0" is "$rc" 0
expect "order create: Barbican's fields" is "$(fields)" "$order_fields"
expect "order create: href under the endpoint" contains "$order" "$endpoint/v1/orders/"
run secret order get "$order"
key=$(field 'Secret href')
expect "order get: Barbican's fields" is "$(fields)" "$order_fields"
expect "order get: ACTIVE" is "$(field Status)" ACTIVE
expect "order get: a key order" is "$(field Type)" Key
expect "order get: a secret href" contains "$key" "$endpoint/v1/secrets/"
run secret get "$key"
expect "ordered key: symmetric aes 256 cbc" is "$(field 'Secret type')/$(field Algorithm)/$(field 'Bit length')/$(field Mode)" "symmetric/aes/256/cbc"
expect "ordered key: named after the order" is "$(field Name)" secret1
# `--file` asks for text/plain unless told otherwise; Barbican refuses
# text/plain for bytes that are not UTF-8 (406).
run secret get "$key" --file key.txt
expect "ordered key as text/plain: refused" is "$rc" 1
expect "ordered key as text/plain: Barbican's 406 text" contains "$out" "Not Acceptable: Secret payload retrieval issue seen - Wrong payload content-type."
run secret get "$key" --file key.bin --payload_content_type application/octet-stream
expect "ordered key: 32 bytes" is "$(wc -c <key.bin 2>/dev/null | tr -d ' ')" 32

# --- 7.2 Store a signing certificate (image signing) ----------------------------
openssl req -newkey rsa:2048 -nodes -keyout private_key.pem -x509 -days 14 \
    -subj "/CN=keywarden-guide-signing" -outform der -out new_cert.der 2>/dev/null
run secret store --name signing-cert --algorithm RSA --secret-type certificate \
    --payload-content-type "application/octet-stream" --payload-content-encoding base64 \
    --payload "$(base64 new_cert.der)"
cert=$(field 'Secret href')
expect "certificate store: exit 0" is "$rc" 0
expect "certificate store: type and algorithm" is "$(field 'Secret type')/$(field Algorithm)" "certificate/RSA"
run secret get "$cert" --file got_cert.der --payload_content_type application/octet-stream
expect "certificate: the same DER back" cmp -s new_cert.der got_cert.der

printf '\nopenstack_guide against %s (%s):\n' "$endpoint" "${auth[*]}"
for f in "${failures[@]}"; do echo "  failed: $f"; done
echo "$passed passed, $failed failed"
((failed == 0))
