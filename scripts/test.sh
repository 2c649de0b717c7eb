#!/usr/bin/env bash
# Runs every test keywarden has, installing what the tests need when it is
# missing. Safe to run again; CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- what the tests need -----------------------------------------------------
# Debian packages for the peers the tests drive: SoftHSM2 (the PKCS#11
# backend's token) and OpenSC's pkcs11-tool (to inspect the token).
need_apt=()
command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}"
fi
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
trap 'rm -rf "$hsm_dir"' EXIT
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

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

log "cargo test (unit, integration and doc tests; pkcs11 tests on the token above)"
cargo test --all-features

log "examples"
for ex in examples/*.rs; do
    name=$(basename "$ex" .rs)
    echo "-- example $name"
    cargo run --quiet --example "$name"
done

log "fuzz targets (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

log "all tests passed"
