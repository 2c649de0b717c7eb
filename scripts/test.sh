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
# Only what is missing is installed; `apt-get update` runs once, first.
need_apt=(cryptsetup-bin qemu-utils openssl coreutils python3-venv)
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
if ! command -v cargo >/dev/null; then
    echo "cargo is required (rustup toolchain)" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null && ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# --- checks and tests ---------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

log "cargo test (unit, integration and doc tests)"
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
