#!/usr/bin/env bash
# The real Barbican 23 (PyPI), the peer that keywarden's Barbican API is
# judged against, and the clients that judge it.
#
#   scripts/barbican.sh install           Barbican, gunicorn and the clients
#                                         (python-barbicanclient,
#                                         python-openstackclient, castellan,
#                                         keystoneauth1, the functional tests'
#                                         dependencies) into .venv-barbican,
#                                         when missing
#   scripts/barbican.sh serve DIR PORT    Barbican on 127.0.0.1:PORT in the
#                                         foreground (exec gunicorn), its
#                                         SQLite database, config and log in
#                                         DIR; run it under `set -m` to stop
#                                         the whole process group
#   scripts/barbican.sh start DIR PORT    the same in a process group of its
#                                         own, in the background; returns
#                                         once it answers, the group id in
#                                         DIR/pgid
#   scripts/barbican.sh stop DIR          stops what `start` started
#   scripts/barbican.sh python ARGS...    the venv's python
#
# The server: simple_crypto with a KEK generated per DIR, the
# unauthenticated-context pipeline (X-Project-Id, X-User-Id, X-Roles) with
# our filter for the upstream `request_id` AttributeError
# (scripts/barbican_app.py), the legacy (Queens) policy
# (`enforce_new_defaults = False`), refs from `host_href =
# http://127.0.0.1:PORT` (as keywarden's configured host_href;
# KEYWARDEN_BARBICAN_HOST_HREF= (empty) derives them from each request),
# gunicorn with as many sync workers as cores, 127.0.0.1 only. With
# KEYWARDEN_BARBICAN_DEFAULT_PROJECT set, requests without X-Project-Id get
# that project (Barbican itself answers them 400), as keywarden's default
# identity does: the openstack client with `--os-auth-type none` needs it.
# Versions are pinned in scripts/barbican-constraints.txt.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${KEYWARDEN_BARBICAN_VENV:-$root/.venv-barbican}
constraints=$root/scripts/barbican-constraints.txt
cmd=${1:?usage: barbican.sh install | serve DIR PORT | start DIR PORT | stop DIR | python ARGS}
shift

# What `install` puts in the venv; the rest of the tree is pinned by the
# constraints file.
packages=(
    'barbican==23.0.0'
    'gunicorn==23.0.0'
    'python-barbicanclient==7.6.0'
    'python-openstackclient==10.5.0'
    'castellan==5.8.0'
    'keystoneauth1==5.18.1'
    # castellan's and Barbican's functional tests
    'pytest' 'stestr' 'testtools' 'oslotest' 'fixtures' 'WebTest' 'pykmip'
    'python-keystoneclient' 'tempest'
)

installed() {
    "$venv/bin/python" -c 'import barbican.api.app, gunicorn, barbicanclient, castellan, openstackclient, tempest, webtest, stestr, pytest' \
        >/dev/null 2>&1
}

# Writes DIR/.barbican/barbican.conf and DIR/barbican-api-paste.ini; the
# KEK is made once per DIR. Barbican's plugins each parse their own copy of
# the config from oslo.config's default places, so the server runs with
# HOME=DIR, where `~/.barbican/barbican.conf` is the first of them.
configure() {
    local dir=$1 port=$2 auto_create=$3
    mkdir -p "$dir/.barbican"
    if [ ! -f "$dir/kek" ]; then
        (umask 077 && openssl rand -base64 32 >"$dir/kek")
    fi
    cat >"$dir/.barbican/barbican.conf" <<EOF
[DEFAULT]
host_href = ${KEYWARDEN_BARBICAN_HOST_HREF-http://127.0.0.1:$port}
db_auto_create = $auto_create
log_file = $dir/barbican.log
debug = False

[database]
connection = sqlite:///$dir/barbican.sqlite

[secretstore]
enabled_secretstore_plugins = store_crypto

[crypto]
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = $(cat "$dir/kek")

[oslo_policy]
enforce_new_defaults = False
enforce_scope = False
EOF
    local default_project=""
    if [ -n "${KEYWARDEN_BARBICAN_DEFAULT_PROJECT:-}" ]; then
        default_project=default_project
    fi
    cat >"$dir/barbican-api-paste.ini" <<EOF
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican_api

[pipeline:barbican_version]
pipeline = request_id http_proxy_to_wsgi microversion versionapp

[pipeline:barbican_api]
pipeline = request_id request_id_attr http_proxy_to_wsgi $default_project unauthenticated-context microversion apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:request_id_attr]
paste.filter_factory = barbican_app:request_id_attr_factory

[filter:default_project]
paste.filter_factory = barbican_app:default_project_factory
project = ${KEYWARDEN_BARBICAN_DEFAULT_PROJECT:-}

[filter:unauthenticated-context]
paste.filter_factory = barbican.api.middleware.context:UnauthenticatedContextMiddleware.factory

[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
EOF
}

answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case $cmd in
install)
    if installed; then
        echo "Barbican and its clients are in $venv"
        exit 0
    fi
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -c "$constraints" "${packages[@]}"
    installed
    ;;
serve)
    dir=$(mkdir -p "${1:?directory}" && cd "$1" && pwd)
    port=${2:?port}
    # The schema is made once, before the workers start (each worker
    # creating it at once races on SQLite).
    configure "$dir" "$port" True
    HOME=$dir KEYWARDEN_BARBICAN_DIR=$dir PYTHONPATH=$root/scripts \
        "$venv/bin/python" -c 'import barbican_app' >>"$dir/init.log" 2>&1 || {
        cat "$dir/init.log" >&2
        exit 1
    }
    configure "$dir" "$port" False
    export KEYWARDEN_BARBICAN_DIR=$dir HOME=$dir
    exec "$venv/bin/python" -m gunicorn --chdir "$root/scripts" \
        --bind "127.0.0.1:$port" --workers "$(nproc)" --worker-class sync \
        --timeout 120 --graceful-timeout 5 --error-logfile "$dir/gunicorn.log" \
        barbican_app:application
    ;;
start)
    dir=$(mkdir -p "${1:?directory}" && cd "$1" && pwd)
    port=${2:?port}
    if answers "$port"; then
        echo "127.0.0.1:$port is taken" >&2
        exit 1
    fi
    setsid bash "$0" serve "$dir" "$port" >"$dir/stdout.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pgid"
    for _ in $(seq 1 240); do
        if answers "$port"; then
            echo "Barbican on 127.0.0.1:$port (process group $pid, $dir)"
            exit 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.5
    done
    cat "$dir/stdout.log" "$dir/gunicorn.log" >&2 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || true
    echo "Barbican did not start on 127.0.0.1:$port" >&2
    exit 1
    ;;
stop)
    dir=${1:?directory}
    pgid=$(cat "$dir/pgid")
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 -- "-$pgid" 2>/dev/null || exit 0
        sleep 0.5
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    ;;
python)
    exec "$venv/bin/python" "$@"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
