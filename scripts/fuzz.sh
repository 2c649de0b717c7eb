#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain
# (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags to stable rustc),
# starting from the committed seeds in fuzz/corpus/<target>/ (valid
# samples; fuzz/corpus/make.py writes them). What a run finds goes to
# fuzz/target/corpus/<target>/ (ignored, kept between runs), so the
# committed seeds stay small; a target without seeds is an error.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for target in $(cargo fuzz list); do
    if [ -z "$(ls -A "corpus/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target has no seeds in fuzz/corpus/$target" >&2
        exit 1
    fi
    echo "-- fuzz $target for ${seconds}s"
    mkdir -p "target/corpus/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "target/corpus/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0
done
