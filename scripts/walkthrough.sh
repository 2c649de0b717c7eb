#!/usr/bin/env bash
# Replays the README's walkthrough (the seed guide's "Test barbican
# functionality", chapter 4 and the §4.6 backup and restore) in a scratch
# directory and prints each command with its real output, in Markdown.
# Usage: scripts/walkthrough.sh > /tmp/walkthrough.md
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin keywarden
bin="$repo/target/debug/keywarden"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export PATH="$(dirname "$bin"):$PATH"

run() {
    echo '```console'
    echo "\$ $*"
    eval "$@" 2>&1 || true
    echo '```'
    echo
}
say() { printf '%s\n\n' "$*"; }

say "### Set up"
run keywarden init
say "### Test barbican functionality"
run "printf %s 'my-secret-payload' | keywarden secret store --name testSecret --payload-file -"
HREF=$(keywarden secret list --name testSecret -f value -c 'Secret href')
run keywarden secret get "$HREF" --payload
say "### List, add, update, delete (chapter 4)"
run keywarden secret list
run "printf %s secretkey | keywarden secret store --name mysecret1 --payload-file -"
run keywarden secret store --name later
LATER=$(keywarden secret list --name later -f value -c 'Secret href')
run "printf %s 'filled in later' | keywarden secret update $LATER --payload-file -"
run keywarden secret get "$LATER" --payload
run "printf %s 'a second time' | keywarden secret update $LATER --payload-file -"
M1=$(keywarden secret list --name mysecret1 -f value -c 'Secret href')
run keywarden secret delete "$M1"
run keywarden secret list -f value -c Name
say "### Generate a 256-bit AES CTR key with an order"
run keywarden secret order create --name secret1 --algorithm aes --bit-length 256 --mode ctr --payload-content-type application/octet-stream key
ORDER=$(keywarden secret order list -f value -c 'Order href')
run keywarden secret order get "$ORDER"
KEY=$(keywarden secret order get "$ORDER" -f value -c 'Secret href')
run keywarden secret get "$KEY"
run keywarden secret get "$KEY" --file key.bin
run "wc -c key.bin"
say "### Back up and restore (§4.6)"
run keywarden secret list -f value -c "'Secret href'" -c Name
run keywarden backup --output backup.db
for h in $(keywarden secret list -f value -c 'Secret href'); do
    run keywarden secret delete "$h"
done
run keywarden secret list
run keywarden restore backup.db
run keywarden secret list -f value -c "'Secret href'" -c Name
run keywarden secret get "$HREF" --payload
run keywarden check
