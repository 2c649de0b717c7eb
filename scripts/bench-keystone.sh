#!/usr/bin/env bash
# Issue 16's benchmark: GET payload of a 32-byte key through `keywarden
# serve` with `auth = "keystone"` (a warm validation cache: one token, used
# by every request) against the same server with `noauth`, in one run,
# alternating ROUNDS (default 2) times; wrk, 16 keep-alive connections,
# DURATION (default 10s) each.
#
#   source DIR/env    # a Keystone: scripts/keystone.sh start DIR PORT
#   scripts/bench-keystone.sh
#
# KEYWARDEN_BIN skips the release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ks=${KEYWARDEN_TEST_KEYSTONE_URL:?a Keystone: scripts/keystone.sh start DIR PORT, then source DIR/env}
command -v wrk >/dev/null || {
    echo "wrk is missing: apt-get install -y wrk" >&2
    exit 1
}
bin=${KEYWARDEN_BIN:-}
if [[ -z $bin ]]; then
    cargo build -q --release --features cli,server
    bin=$root/target/release/keywarden
fi
work=$(mktemp -d)
pid=
stop() { if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --config "$work/kw.toml" init >/dev/null
cp "$work/kw.toml" "$work/noauth.toml"
printf 'listen = "127.0.0.1:%s"\n' "$port" >>"$work/noauth.toml"
cp "$work/kw.toml" "$work/keystone.toml"
cat >>"$work/keystone.toml" <<CONF
listen = "127.0.0.1:$port"
auth = "keystone"

[keystone_authtoken]
auth_url = "$ks"
username = "keywarden"
password = "${KEYWARDEN_TEST_KEYSTONE_SERVICE_PASSWORD:?}"
project_name = "service"
CONF
chmod 600 "$work"/*.toml
start() {
    "$bin" --config "$work/$1.toml" serve 2>"$work/serve.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && return; sleep 0.1; done
    cat "$work/serve.log" >&2
    exit 1
}
token=$(curl -si -X POST -H 'Content-Type: application/json' "$ks/v3/auth/tokens" -d "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"admin\", \"domain\": {\"name\": \"Default\"}, \"password\": \"${KEYWARDEN_TEST_KEYSTONE_ADMIN_PASSWORD:?}\"}}}, \"scope\": {\"project\": {\"name\": \"admin\", \"domain\": {\"name\": \"Default\"}}}}}" |
    tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
project=$(curl -sf -H "X-Auth-Token: $token" -H "X-Subject-Token: $token" "$ks/v3/auth/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"]["project"]["id"])')
# One key, stored through the keystone server (its project is the token's),
# read by both servers.
start keystone
key_b64=$(head -c 32 /dev/urandom | base64)
ref=$(curl -sf -X POST -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
    -d "{\"payload\": \"$key_b64\", \"payload_content_type\": \"application/octet-stream\", \"payload_content_encoding\": \"base64\", \"secret_type\": \"symmetric\", \"algorithm\": \"aes\", \"bit_length\": 256}" \
    "http://127.0.0.1:$port/v1/secrets" | sed -E 's/.*"secret_ref": *"([^"]*)".*/\1/')
stop
url="http://127.0.0.1:$port/v1/secrets/${ref##*/}/payload"
echo "== $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(uptime | sed 's/.*load average/load average/')"
declare -A sum=([noauth]=0 [keystone]=0)
for round in $(seq "${ROUNDS:-2}"); do
    for mode in noauth keystone; do
        start "$mode"
        if [[ $mode == noauth ]]; then
            auth=(-H "X-Project-Id: $project" -H 'X-Roles: admin')
        else
            auth=(-H "X-Auth-Token: $token")
        fi
        curl -sf "${auth[@]}" -H 'Accept: application/octet-stream' "$url" | base64 | grep -qx "$key_b64"
        rate=$(wrk -t 2 -c 16 -d "${DURATION:-10s}" --latency "${auth[@]}" -H 'Accept: application/octet-stream' "$url" |
            tee "$work/$mode.$round.txt" | sed -n 's/^Requests\/sec: *//p')
        p99=$(sed -n 's/^ *99% *//p' "$work/$mode.$round.txt")
        echo "round $round $mode: $rate requests/s, p99 $p99"
        sum[$mode]=$(python3 -c "print(${sum[$mode]} + $rate)")
        stop
    done
done
python3 -c "n, k = ${sum[noauth]}, ${sum[keystone]}; print(f'== keystone / noauth: {k / n:.3f} (mean {k / ${ROUNDS:-2}:.0f} vs {n / ${ROUNDS:-2}:.0f} requests/s)')"
