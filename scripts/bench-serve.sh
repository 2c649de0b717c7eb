#!/usr/bin/env bash
# Issue 15's HTTP benchmark in one run: `keywarden serve` (release build,
# SQLite, SimpleCrypto, noauth) and the real Barbican 23 (gunicorn, as many
# workers as cores, SQLite, simple_crypto; scripts/barbican.sh) on this
# machine, each measured by scripts/bench-http.sh (wrk: GET payload with 16
# keep-alive connections, POST secrets with 64), then keywarden's store
# filled to 100,000 secrets through the API and the server's RSS read.
#
#   scripts/bench-serve.sh            (DURATION=20s by default; see bench-http.sh)
#
# Needs wrk (Debian: apt-get install -y wrk) and .venv-barbican
# (scripts/barbican.sh install). KEYWARDEN_BIN skips the release build.
# SKIP_BARBICAN=1 measures keywarden alone. FILL_TO (default 100000) sets
# how many secrets the store holds before the memory figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
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
kw_pid=
cleanup() {
    if [[ -n $kw_pid ]]; then kill -TERM "$kw_pid" 2>/dev/null || true; wait "$kw_pid" 2>/dev/null || true; fi
    if [[ -f $work/barbican/pgid ]]; then scripts/barbican.sh stop "$work/barbican" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
headers=(-H 'X-Project-Id: bench' -H 'X-User-Id: bench-user' -H 'X-Roles: creator')

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $(uptime)"

if [[ -z ${SKIP_BARBICAN:-} ]]; then
    bb_port=$(free_port)
    scripts/barbican.sh start "$work/barbican" "$bb_port" >/dev/null
    echo "== Barbican 23 on 127.0.0.1:$bb_port"
    BENCH_PGID=$(cat "$work/barbican/pgid") scripts/bench-http.sh "http://127.0.0.1:$bb_port" "${headers[@]}"
    scripts/barbican.sh stop "$work/barbican" >/dev/null
fi

kw_port=$(free_port)
"$bin" --config "$work/kw.toml" init >/dev/null
cat >>"$work/kw.toml" <<CONF
listen = "127.0.0.1:$kw_port"
CONF
set -m
"$bin" --config "$work/kw.toml" serve 2>"$work/serve.log" &
kw_pid=$!
set +m
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.log" && break
    sleep 0.1
done
echo "== keywarden serve on 127.0.0.1:$kw_port ($bin)"
BENCH_PGID=$kw_pid scripts/bench-http.sh "http://127.0.0.1:$kw_port" "${headers[@]}"

# Fill to FILL_TO secrets through the API, then the resident memory.
fill_to=${FILL_TO:-100000}
count() { curl -sf "${headers[@]}" "http://127.0.0.1:$kw_port/v1/secrets?limit=1" | sed -E 's/.*"total": *([0-9]+).*/\1/'; }
cat >"$work/fill.lua" <<'EOF'
-- Each of wrk's threads stops after its share of the secrets still missing.
wrk.method = "POST"
wrk.body = '{"payload": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "payload_content_type": "application/octet-stream", "payload_content_encoding": "base64", "secret_type": "symmetric", "algorithm": "aes", "bit_length": 256}'
wrk.headers["Content-Type"] = "application/json"
local left = 0
function init(args) left = tonumber(args[1]) end
function response(status)
  if status == 201 then left = left - 1 end
  if left <= 0 then wrk.thread:stop() end
end
EOF
while :; do
    missing=$((fill_to - $(count)))
    ((missing > 0)) || break
    share=$(((missing + 1) / 2))
    wrk -t 2 -c 2 -d 300s -s "$work/fill.lua" "${headers[@]}" "http://127.0.0.1:$kw_port/v1/secrets/" -- "$share" >/dev/null
done
held=$(count)
rss() { ps -o rss= -p "$kw_pid" | tr -d ' '; }
echo "== keywarden serve RSS with $held secrets in the project: $(($(rss) / 1024)) MiB"
# A read load over the full store (listing pages, reading payloads), then again.
wrk -t 2 -c 16 -d 10s "${headers[@]}" "http://127.0.0.1:$kw_port/v1/secrets?limit=10&offset=5000" |
    sed -n 's/^Requests\/sec:/== list (limit 10, offset 5000) requests\/sec:/p'
echo "== keywarden serve RSS after listing: $(($(rss) / 1024)) MiB (peak VmHWM $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$kw_pid/status") MiB)"
