#!/usr/bin/env bash
# The HTTP benchmark of issue 15, with wrk (Debian's `wrk` package), against
# any Barbican v1 server on this machine: keywarden serve or the real
# Barbican 23 (scripts/barbican.sh start).
#
#   scripts/bench-http.sh URL [-H 'Header: value']...
#
# URL is the server's root (http://127.0.0.1:PORT); it must be a loopback
# address. The -H headers go with every request (for a no-auth server:
# -H 'X-Project-Id: bench' -H 'X-Roles: creator'). Two bounded runs:
#   1. GET /v1/secrets/{id}/payload of one 32-byte key, keep-alive,
#      ${GET_CONNECTIONS:-16} connections;
#   2. POST /v1/secrets (a 32-byte symmetric key each), ${POST_CONNECTIONS:-64}
#      connections;
# each ${DURATION:-20}s on ${THREADS:-2} wrk threads, with wrk's latency
# distribution. Then the secrets the project holds, and, with BENCH_PGID
# set (the server's process group), the server's summed RSS.
set -euo pipefail

url=${1:?usage: bench-http.sh URL [-H HEADER]...}
url=${url%/}
shift
headers=()
while (($#)); do
    case $1 in
    -H)
        headers+=(-H "${2:?-H needs a header}")
        shift 2
        ;;
    *)
        echo "unknown argument $1" >&2
        exit 2
        ;;
    esac
done
host=$(sed -E 's|^https?://(\[[^]]*\]\|[^:/]*).*|\1|' <<<"$url")
case $host in
127.* | localhost | "[::1]") ;;
*)
    echo "refusing $host: the benchmark sends load to loopback addresses only" >&2
    exit 2
    ;;
esac
command -v wrk >/dev/null || {
    echo "wrk is missing: apt-get install -y wrk" >&2
    exit 1
}
duration=${DURATION:-20s}
threads=${THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

key_b64=$(head -c 32 /dev/urandom | base64)
body="{\"name\": \"bench-key\", \"secret_type\": \"symmetric\", \"algorithm\": \"aes\", \"bit_length\": 256, \"mode\": \"cbc\", \"payload\": \"$key_b64\", \"payload_content_type\": \"application/octet-stream\", \"payload_content_encoding\": \"base64\"}"
ref=$(curl -sf -X POST "${headers[@]}" -H 'Content-Type: application/json' -d "$body" "$url/v1/secrets/" |
    sed -E 's/.*"secret_ref": *"([^"]*)".*/\1/')
id=${ref##*/}
got=$(curl -sf "${headers[@]}" -H 'Accept: application/octet-stream' "$url/v1/secrets/$id/payload" | base64)
if [ "$got" != "$key_b64" ]; then
    echo "the server did not give the stored key back (secret $ref)" >&2
    exit 1
fi

cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
EOF

echo "== $(date -u +%FT%TZ) $url, $(nproc) cores, load: $(uptime | sed 's/.*load average/load average/')"
echo "== GET payload of a 32-byte key, ${GET_CONNECTIONS:-16} connections, $duration"
wrk -t "$threads" -c "${GET_CONNECTIONS:-16}" -d "$duration" --timeout 5s --latency \
    "${headers[@]}" -H 'Accept: application/octet-stream' "$url/v1/secrets/$id/payload"
echo "== POST secrets, ${POST_CONNECTIONS:-64} connections, $duration"
wrk -t "$threads" -c "${POST_CONNECTIONS:-64}" -d "$duration" --timeout 5s --latency \
    -s "$work/post.lua" "${headers[@]}" "$url/v1/secrets/"
total=$(curl -sf "${headers[@]}" "$url/v1/secrets?limit=1" | sed -E 's/.*"total": *([0-9]+).*/\1/')
echo "== secrets in the project after the run: $total"
if [ -n "${BENCH_PGID:-}" ]; then
    rss=$(ps -eo pgid=,rss= | awk -v g="$BENCH_PGID" '$1 == g { s += $2 } END { print s + 0 }')
    echo "== server RSS (process group $BENCH_PGID, summed): $((rss / 1024)) MiB"
fi
