#!/usr/bin/env bash
# Runs every test keywarden has, installing what the tests need when it is
# missing. Safe to run again; CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- what the tests need -----------------------------------------------------
# Debian packages the interop tests run against:
#   cryptsetup-bin  cryptsetup, the LUKS peer (volume tests)
#   qemu-utils      qemu-img, the QEMU native-LUKS peer (volume tests)
#   openssl         signs images in the image-signature tests
#   coreutils       base64, as the seed guide's signing procedure uses it
#   python3-venv    the Python peers' virtualenv
#   postgresql      the shared catalog's server (unless one is configured)
#   softhsm2        the PKCS#11 backend's token
#   opensc          pkcs11-tool, to inspect the token
#   libssl-dev, pkg-config  the kmip backend's TLS (the `openssl` crate)
# Only what is missing is installed; `apt-get update` runs once, first.
postgres_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
need_apt=(cryptsetup-bin qemu-utils openssl coreutils python3-venv softhsm2 opensc libssl-dev pkg-config)
if [ -z "${KEYWARDEN_TEST_POSTGRES_URL:-}" ] && [ -z "$(postgres_bindir)" ]; then
    need_apt+=(postgresql)
fi
missing_apt=()
for pkg in "${need_apt[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing_apt+=("$pkg")
    fi
done
if ((${#missing_apt[@]})); then
    log "installing ${missing_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing_apt[@]}"
fi

# Python peers in .venv-peers: swift's own keymaster code (and castellan,
# which its kms_keymaster loads) for the object-key interop test.
peers_ok() {
    .venv-peers/bin/python -c 'import swift.common.middleware.crypto.kms_keymaster, castellan' \
        >/dev/null 2>&1
}
if ! peers_ok; then
    log "installing the Python peers (swift, castellan) into .venv-peers"
    python3 -m venv .venv-peers
    .venv-peers/bin/pip install --quiet 'swift==2.38.3' 'castellan==5.8.0'
    peers_ok
fi
# PyKMIP's server, the kmip backend's peer.
if ! .venv-peers/bin/python -c 'import kmip.services.server' >/dev/null 2>&1; then
    log "installing PyKMIP into .venv-peers"
    .venv-peers/bin/python -m pip install --quiet 'pykmip==0.11.0'
fi
# Barbican 23 and its real clients (python-barbicanclient, openstackclient,
# castellan, the functional tests' dependencies), pinned, in .venv-barbican:
# the suites that judge `keywarden serve` run from there.
bash scripts/barbican.sh install
# Keystone 30 (and the openstack client that sets it up), pinned, in
# .venv-keystone: the `keystone` auth mode's peer.
bash scripts/keystone.sh install
if ! command -v cargo >/dev/null; then
    echo "cargo is required (rustup toolchain)" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null && ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# A throwaway SoftHSM2 token for the pkcs11 tests, gone when this script ends.
# Under CI=true the tests fail (never skip) when these variables are missing.
hsm_dir=$(mktemp -d "${TMPDIR:-/tmp}/keywarden-softhsm.XXXXXX")
pg_dir=""
kmip_dir=""
kmip_pid=""
keystone_dir=""
cleanup() {
    if declare -F stop_postgres >/dev/null; then stop_postgres; fi
    if [ -n "$kmip_pid" ]; then stop_kmip; fi
    if [ -n "$kmip_dir" ]; then rm -rf "$kmip_dir"; fi
    if [ -n "$keystone_dir" ]; then
        bash scripts/keystone.sh stop "$keystone_dir"
        rm -rf "$keystone_dir"
    fi
    rm -rf "$hsm_dir"
}
trap cleanup EXIT
mkdir -p "$hsm_dir/tokens"
printf '%s\n' "directories.tokendir = $hsm_dir/tokens" "objectstore.backend = file" \
    "log.level = ERROR" "slots.removable = false" >"$hsm_dir/softhsm2.conf"
export SOFTHSM2_CONF="$hsm_dir/softhsm2.conf"
KEYWARDEN_TEST_PKCS11_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
    if [[ -f $m ]]; then KEYWARDEN_TEST_PKCS11_MODULE=$m; break; fi
done
if [[ -z $KEYWARDEN_TEST_PKCS11_MODULE ]]; then
    echo "libsofthsm2.so not found after installing softhsm2" >&2
    exit 1
fi
random_pin() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
export KEYWARDEN_TEST_PKCS11_MODULE
export KEYWARDEN_TEST_PKCS11_TOKEN=keywarden-test
KEYWARDEN_TEST_PKCS11_PIN=$(random_pin)
export KEYWARDEN_TEST_PKCS11_PIN
softhsm2-util --init-token --free --label "$KEYWARDEN_TEST_PKCS11_TOKEN" \
    --so-pin "$(random_pin)" --pin "$KEYWARDEN_TEST_PKCS11_PIN" >/dev/null
echo "SoftHSM2 token $KEYWARDEN_TEST_PKCS11_TOKEN in $hsm_dir ($KEYWARDEN_TEST_PKCS11_MODULE)"

# --- a private PostgreSQL server -------------------------------------------------
# Unless one is configured (KEYWARDEN_TEST_POSTGRES_URL), the shared-catalog
# tests get a server of their own: a data directory in a temp dir, a free
# port on 127.0.0.1, stopped and removed on exit. initdb refuses to run as
# root, so as root the server runs as the `postgres` user.
stop_postgres() {
    if [ -n "$pg_dir" ]; then
        as_pg "$(postgres_bindir)/pg_ctl -D $pg_dir/data -m immediate -w stop" >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
}
as_pg() {
    if [ "$(id -u)" = 0 ]; then su postgres -c "cd /tmp && $1"; else sh -c "$1"; fi
}
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        # Free when nothing answers there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}
export KEYWARDEN_TEST_POSTGRES_BINDIR="${KEYWARDEN_TEST_POSTGRES_BINDIR:-$(postgres_bindir)}"
if [ -z "${KEYWARDEN_TEST_POSTGRES_URL:-}" ]; then
    log "starting a private PostgreSQL server"
    bindir=$(postgres_bindir)
    if [ -z "$bindir" ]; then
        echo "PostgreSQL is not installed and could not be installed" >&2
        exit 1
    fi
    pg_dir=$(mktemp -d /tmp/keywarden-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$pg_dir"; fi
    as_pg "$bindir/initdb -D $pg_dir/data -A trust -U postgres" >"$pg_dir/initdb.log" 2>&1 || {
        cat "$pg_dir/initdb.log" >&2
        exit 1
    }
    started=""
    for _ in 1 2 3; do
        port=$(free_port)
        if as_pg "$bindir/pg_ctl -D $pg_dir/data -l $pg_dir/server.log -w -o '-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=300' start" >/dev/null; then
            started=yes
            break
        fi
    done
    if [ -z "$started" ]; then
        cat "$pg_dir/server.log" >&2
        echo "the private PostgreSQL server did not start" >&2
        exit 1
    fi
    as_pg "$bindir/psql -h 127.0.0.1 -p $port -U postgres -qc 'CREATE DATABASE keywarden_test'"
    export KEYWARDEN_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/keywarden_test"
    echo "PostgreSQL on 127.0.0.1:$port ($pg_dir)"
fi

# --- a PyKMIP server ------------------------------------------------------------
# PyKMIP forks helper processes: the server runs in a process group of its
# own (set -m) and the whole group is stopped.
stop_kmip() {
    kill -TERM -- "-$kmip_pid" 2>/dev/null || true
    wait "$kmip_pid" 2>/dev/null || true
    kill -KILL -- "-$kmip_pid" 2>/dev/null || true
}
# Test certificates (CA, server for 127.0.0.1, client) in a temp dir, the
# server on a free port of 127.0.0.1, stopped and removed on exit. Tests that
# need a server of their own (stopping it mid-run) start one with the same
# script and certificates. Under CI=true the kmip tests fail without these.
log "starting a PyKMIP server"
kmip_dir=$(mktemp -d "${TMPDIR:-/tmp}/keywarden-kmip.XXXXXX")
bash scripts/pykmip.sh certs "$kmip_dir/certs"
started=""
for _ in 1 2 3; do
    port=$(free_port)
    set -m
    KEYWARDEN_TEST_KMIP_CERTS="$kmip_dir/certs" bash scripts/pykmip.sh serve "$kmip_dir/server" "$port" \
        >"$kmip_dir/stdout.log" 2>&1 &
    kmip_pid=$!
    set +m
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then started=yes; break; fi
        if ! kill -0 "$kmip_pid" 2>/dev/null; then break; fi
        sleep 0.5
    done
    if [ -n "$started" ]; then break; fi
    stop_kmip
    kmip_pid=""
done
if [ -z "$started" ]; then
    cat "$kmip_dir/stdout.log" "$kmip_dir/server/server.log" >&2 2>/dev/null || true
    echo "the PyKMIP server did not start" >&2
    exit 1
fi
export KEYWARDEN_TEST_KMIP_HOST=127.0.0.1
export KEYWARDEN_TEST_KMIP_PORT=$port
export KEYWARDEN_TEST_KMIP_CA=$kmip_dir/certs/ca.crt
export KEYWARDEN_TEST_KMIP_CERT=$kmip_dir/certs/client.crt
export KEYWARDEN_TEST_KMIP_KEY=$kmip_dir/certs/client.key
echo "PyKMIP on 127.0.0.1:$port ($kmip_dir)"

# --- a Keystone ---------------------------------------------------------------------
# Keystone 30 on SQLite under gunicorn on a free port, bootstrapped, with
# keywarden's service user; the keystone tests and the Keystone-backed
# client suites read KEYWARDEN_TEST_KEYSTONE_URL and its passwords.
log "starting a Keystone"
keystone_dir=$(mktemp -d "${TMPDIR:-/tmp}/keywarden-keystone.XXXXXX")
started=""
for _ in 1 2 3; do
    port=$(free_port)
    if bash scripts/keystone.sh start "$keystone_dir" "$port"; then
        started=yes
        break
    fi
    bash scripts/keystone.sh stop "$keystone_dir"
    rm -rf "${keystone_dir:?}"/*
done
if [ -z "$started" ]; then
    cat "$keystone_dir"/*.log >&2 2>/dev/null || true
    echo "the Keystone did not start" >&2
    exit 1
fi
# shellcheck disable=SC1091
source "$keystone_dir/env"
echo "Keystone on $KEYWARDEN_TEST_KEYSTONE_URL ($keystone_dir)"

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

log "cargo test (unit, integration and doc tests; SQLite and PostgreSQL catalogs; pkcs11 on the token above; kmip on the PyKMIP server)"
# --all-features includes `postgres`: the conformance suite runs on both
# catalogs, and under CI=true a missing server fails those tests.
cargo test --all-features

log "examples"
for ex in examples/*.rs; do
    name=$(basename "$ex" .rs)
    echo "-- example $name"
    cargo run --quiet --example "$name"
done

log "Barbican's real clients against keywarden serve"
# python-barbicanclient (every call it makes), the seed guide's openstack
# commands (noauth, http_basic, and Keystone password auth through the
# service catalog), castellan's own functional tests (header auth, and all
# three classes against the Keystone above) and Barbican 23's API
# functional tests (Basic credentials, and their own Keystone login),
# against a fresh `keywarden serve`
# (the binary cargo test just built with every feature). The functional
# tests must pass at least KEYWARDEN_FT_MIN_PASS (keywarden's figure in
# docs/barbican-compat.md; each failure is listed there with its reason).
KEYWARDEN_BIN=target/debug/keywarden KEYWARDEN_FT_MIN_PASS=${KEYWARDEN_FT_MIN_PASS:-523} \
    scripts/serve-peers.sh barbicanclient guide castellan basic functional keystone keystone-functional

log "fuzz targets (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

log "all tests passed"
