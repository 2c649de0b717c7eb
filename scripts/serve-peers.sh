#!/usr/bin/env bash
# Starts `keywarden serve` (noauth, plain HTTP, a fresh store in a scratch
# directory, default project `guide`) on a free loopback port and runs the
# real-client suites of tests/peers against it.
#
#   scripts/serve-peers.sh [SUITE...]    SUITE: barbicanclient guide castellan basic functional
#                                                keystone keystone-functional
#
# barbicanclient, guide and castellan run against the noauth server; basic
# (the guide again) and functional (Barbican's API functional tests) against
# an http_basic one with a users file; keystone (the guide with password
# auth through Keystone's catalog, and castellan's three test classes)
# against a keystone one, with KEYWARDEN_TEST_KEYSTONE_URL and its passwords
# set (scripts/keystone.sh); keystone-functional (Barbican's functional
# tests with their own Keystone login) there too.
# Default: barbicanclient guide castellan basic. Needs .venv-barbican
# (scripts/barbican.sh install). Builds target/debug/keywarden with
# --features cli,server unless KEYWARDEN_BIN is set. Prints each suite's
# `N passed, N failed` line; exits 1 if any suite failed. Each suite's
# full output (and the functional tests' results.csv, failing.txt) goes to
# $KEYWARDEN_PEERS_OUT when set, else to a scratch directory removed at exit.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
suites=("$@")
if ((${#suites[@]} == 0)); then suites=(barbicanclient guide castellan basic); fi
bin=${KEYWARDEN_BIN:-}
if [[ -z $bin ]]; then
    (cd "$root" && cargo build -q --features cli,server) || exit 1
    bin=$root/target/debug/keywarden
fi
work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

logs=${KEYWARDEN_PEERS_OUT:-$work}
mkdir -p "$logs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --config "$work/kw.toml" init >/dev/null || exit 1
cat >>"$work/kw.toml" <<CONF
listen = "127.0.0.1:$port"
default_project = "guide"
auth = "${KEYWARDEN_SERVE_AUTH:-noauth}"
CONF
start() {
    "$bin" --config "$work/kw.toml" serve 2>"$work/serve.log" &
    pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$work/serve.log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/serve.log" >&2
    return 1
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}

endpoint=http://127.0.0.1:$port
failed=0
summary=()
run_suite() {
    local name=$1
    shift
    local out=$logs/$name.log
    "$@" >"$out" 2>&1
    local rc=$?
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    summary+=("$name: ${line:-no summary} (exit $rc)")
    if ((rc != 0)); then
        failed=1
        grep -E '^(FAIL|  failed:)' "$out" | head -40
    fi
}

start || exit 1
for suite in "${suites[@]}"; do
    case $suite in
        barbicanclient) run_suite barbicanclient "$root/.venv-barbican/bin/python" "$root/tests/peers/barbicanclient_flows.py" "$endpoint" ;;
        guide) run_suite guide "$root/tests/peers/openstack_guide.sh" "$endpoint" ;;
        castellan) run_suite castellan "$root/tests/peers/castellan_functional.sh" "$endpoint" ;;
        basic | functional | keystone | keystone-functional) ;;
        *) echo "unknown suite $suite" >&2; exit 2 ;;
    esac
done
stop

# http_basic needs a server of its own: another auth mode and a users file.
# Barbican's functional tests run there too, each of their users mapped to
# its project and Queens role (tests/peers/barbican_ft_auth.py), so that
# requests they send without credentials get the 401 they expect.
if [[ " ${suites[*]} " == *" basic "* || " ${suites[*]} " == *" functional "* ]]; then
    sed -i 's/^auth = .*/auth = "http_basic"/' "$work/kw.toml"
    KEYWARDEN_USER_PASSWORD=guide-password "$bin" --config "$work/kw.toml" user add guide-user \
        --project guide --roles admin >/dev/null || exit 1
    ft_run=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    if [[ " ${suites[*]} " == *" functional "* ]]; then
        while read -r name project role password; do
            KEYWARDEN_USER_PASSWORD=$password "$bin" --config "$work/kw.toml" user add "$name" \
                --project "$project" --roles "$role" >/dev/null || exit 1
        done < <(KEYWARDEN_FT_RUN=$ft_run "$root/.venv-barbican/bin/python" "$root/tests/peers/barbican_ft_auth.py" users)
    fi
    start || exit 1
    if [[ " ${suites[*]} " == *" basic "* ]]; then
        run_suite guide-http_basic "$root/tests/peers/openstack_guide.sh" "$endpoint" \
            --os-auth-type http_basic --os-username guide-user --os-password guide-password
    fi
    if [[ " ${suites[*]} " == *" functional "* ]]; then
        KEYWARDEN_FT_AUTH=http_basic KEYWARDEN_FT_RUN=$ft_run \
            run_suite functional "$root/tests/peers/barbican_functional.sh" "$endpoint" "$logs/functional"
    fi
    stop
fi

# keystone: the same server validating Keystone tokens (auth = "keystone"),
# registered in Keystone's catalog as Barbican's install guide registers
# Barbican; the guide (chapter 3.1's role steps first) with password auth
# through the catalog, and all three of castellan's test classes.
if [[ " ${suites[*]} " == *" keystone"* ]]; then
    ks=${KEYWARDEN_TEST_KEYSTONE_URL:?the keystone suite needs a Keystone: scripts/keystone.sh start DIR PORT, then source DIR/env}
    ks_admin=${KEYWARDEN_TEST_KEYSTONE_ADMIN_PASSWORD:?}
    kosc() {
        "$root/.venv-keystone/bin/openstack" --os-auth-url "$ks/v3" --os-identity-api-version 3 \
            --os-username admin --os-password "$ks_admin" --os-project-name admin \
            --os-user-domain-name Default --os-project-domain-name Default "$@"
    }
    sed -i 's/^auth = .*/auth = "keystone"/' "$work/kw.toml"
    cat >>"$work/kw.toml" <<CONF

[keystone_authtoken]
auth_url = "$ks"
username = "keywarden"
password = "${KEYWARDEN_TEST_KEYSTONE_SERVICE_PASSWORD:?}"
project_name = "service"
CONF
    start || exit 1
    for old in $(kosc service list -f value -c ID -c Type | awk '$2 == "key-manager" { print $1 }'); do
        kosc service delete "$old" >/dev/null
    done
    kosc service create --name barbican --description "Key Manager" key-manager >/dev/null
    for interface in public internal admin; do
        kosc endpoint create --region RegionOne key-manager "$interface" "$endpoint" >/dev/null
    done
    # Chapter 3.1: the creator role, given to the guide's user in its project
    # (a project of its own, so that what the guide leaves behind is not in
    # the admin project Barbican's functional tests list).
    run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    guide=guide-$run_id
    kosc project create --domain Default "$guide" >/dev/null
    kosc user create --domain Default --password "$guide-pw" "$guide" >/dev/null
    kosc role show creator >/dev/null 2>&1 || kosc role create creator >/dev/null
    kosc role add --project "$guide" --user "$guide" creator
    ks_auth=(--os-auth-url "$ks/v3" --os-identity-api-version 3 --os-username "$guide"
        --os-password "$guide-pw" --os-project-name "$guide"
        --os-user-domain-name Default --os-project-domain-name Default)
    KEYWARDEN_GUIDE_CATALOG=1 run_suite guide-keystone "$root/tests/peers/openstack_guide.sh" \
        "$endpoint" "${ks_auth[@]}"
    # castellan's tests list everything their project holds: a project and
    # user of their own (admin there, as castellan's default user is).
    cs=castellan-$run_id
    kosc project create --domain Default "$cs" >/dev/null
    kosc user create --domain Default --password "$cs-pw" "$cs" >/dev/null
    kosc role add --project "$cs" --user "$cs" admin
    KEYWARDEN_CASTELLAN_KEYSTONE_URL=$ks KEYWARDEN_CASTELLAN_KEYSTONE_PASSWORD=$cs-pw \
        KEYWARDEN_CASTELLAN_KEYSTONE_USER=$cs KEYWARDEN_CASTELLAN_KEYSTONE_PROJECT=$cs \
        KEYWARDEN_CASTELLAN_EXPECT=213 \
        run_suite castellan-keystone "$root/tests/peers/castellan_functional.sh" "$endpoint"
    if [[ " ${suites[*]} " == *" keystone-functional "* ]]; then
        # Barbican's functional tests with their own Keystone login.
        KEYWARDEN_FT_AUTH=keystone run_suite functional-keystone \
            "$root/tests/peers/barbican_functional.sh" "$endpoint" "$logs/functional-keystone"
    fi
    stop
fi

printf '%s\n' "${summary[@]}"
exit "$failed"
