#!/usr/bin/env bash
# Starts `keywarden serve` (noauth, plain HTTP, a fresh store in a scratch
# directory, default project `guide`) on a free loopback port and runs the
# real-client suites of tests/peers against it.
#
#   scripts/serve-peers.sh [SUITE...]    SUITE: barbicanclient guide castellan basic functional
#
# barbicanclient, guide and castellan run against the noauth server; basic
# (the guide again) and functional (Barbican's API functional tests) against
# an http_basic one with a users file.
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
        basic | functional) ;;
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

printf '%s\n' "${summary[@]}"
exit "$failed"
