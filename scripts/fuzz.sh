#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain
# (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags to stable rustc).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for target in $(cargo fuzz list); do
    echo "-- fuzz $target for ${seconds}s"
    mkdir -p "corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0
done
