#!/usr/bin/env bash
# The PyKMIP test server for the kmip backend's tests.
#
#   scripts/pykmip.sh certs DIR        test CA, server and client certificates
#                                      (and a second, unrelated CA) in DIR
#   scripts/pykmip.sh serve DIR PORT   runs pykmip-server on 127.0.0.1:PORT in
#                                      the foreground, its database and log in
#                                      DIR (the certificates from `certs`)
#
# The server runs from the peers' virtualenv (.venv-peers, or
# $KEYWARDEN_TEST_KMIP_PYTHON). PyKMIP speaks TLS 1.2 only and, with these
# RSA certificates, negotiates AES128-SHA256.
set -euo pipefail

cmd=${1:?usage: pykmip.sh certs DIR | serve DIR PORT}
dir=${2:?directory}

case $cmd in
certs)
    mkdir -p "$dir"
    cd "$dir"
    q() { "$@" >/dev/null 2>&1; }
    q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 \
        -subj "/CN=keywarden-test-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    q openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >server.ext
    q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
        -days 7 -extfile server.ext
    q openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=keywarden-test-client"
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >client.ext
    q openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt \
        -days 7 -extfile client.ext
    q openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 7 \
        -subj "/CN=not-the-keywarden-test-ca"
    # The backend refuses a client key that group or others may read.
    chmod 0600 client.key
    ;;
serve)
    port=${3:?port}
    certs=${KEYWARDEN_TEST_KMIP_CERTS:-$dir}
    python=${KEYWARDEN_TEST_KMIP_PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv-peers/bin/python}
    mkdir -p "$dir/policies"
    cat >"$dir/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$port
certificate_path=$certs/server.crt
key_path=$certs/server.key
ca_path=$certs/ca.crt
auth_suite=TLS1.2
policy_path=$dir/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$dir/pykmip.db
EOF
    # The console script's shebang may name another checkout's venv; the
    # module entry point does not care.
    exec "$python" -c 'import sys; from kmip.services.server.server import main; sys.exit(main())' \
        -f "$dir/server.conf" -l "$dir/server.log"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
