#!/usr/bin/env bash
# A real Keystone on 127.0.0.1 for the `keystone` auth mode's tests: Keystone
# 30.0.0 from PyPI (in .venv-keystone), SQLite, Fernet tokens, served by
# gunicorn, bootstrapped with an admin user, and keywarden's service user.
#
#   scripts/keystone.sh install             .venv-keystone (pinned), once
#   scripts/keystone.sh start DIR PORT      configure, db_sync, fernet_setup,
#                                           bootstrap, serve in the background
#                                           (its process group id in DIR/pgid);
#                                           returns once /v3 answers
#   scripts/keystone.sh serve DIR           serve DIR's Keystone (foreground)
#   scripts/keystone.sh stop DIR            stop what start started
#
# After start, DIR/env holds what the tests read (sourced by scripts/test.sh):
# KEYWARDEN_TEST_KEYSTONE_URL (http://127.0.0.1:PORT), _ADMIN_PASSWORD,
# _SERVICE_PASSWORD (keywarden's service user `keywarden` in project
# `service`, role `service`). Passwords are random per start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${KEYWARDEN_KEYSTONE_VENV:-$root/.venv-keystone}
cmd=${1:?usage: keystone.sh install | start DIR PORT | serve DIR | stop DIR}

case $cmd in
install)
    if "$venv/bin/python" -c 'import keystone.wsgi.api, gunicorn, openstackclient' >/dev/null 2>&1; then
        exit 0
    fi
    echo "installing Keystone 30.0.0 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'keystone==30.0.0' 'gunicorn==27.0.1' 'python-openstackclient==10.5.0'
    ;;
start)
    dir=${2:?start DIR PORT}
    port=${3:?start DIR PORT}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    secret() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
    cat >"$dir/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[identity]
# bcrypt's cheapest cost: a test Keystone's logins (one per castellan test)
# need not resist offline guessing.
password_hash_rounds = 4
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
CONF
    manage() { "$venv/bin/keystone-manage" --config-file "$dir/keystone.conf" "$@"; }
    manage db_sync >>"$dir/manage.log" 2>&1
    manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$dir/manage.log" 2>&1
    manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$dir/manage.log" 2>&1
    admin_password=$(secret)
    url=http://127.0.0.1:$port
    manage bootstrap --bootstrap-password "$admin_password" \
        --bootstrap-admin-url "$url/v3/" --bootstrap-internal-url "$url/v3/" \
        --bootstrap-public-url "$url/v3/" --bootstrap-region-id RegionOne >>"$dir/manage.log" 2>&1
    echo "$port" >"$dir/port"
    set -m
    "$0" serve "$dir" >"$dir/gunicorn.log" 2>&1 &
    pid=$!
    set +m
    echo "$pid" >"$dir/pgid"
    for _ in $(seq 1 300); do
        if curl -sf "$url/v3" >/dev/null 2>&1; then break; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$dir/gunicorn.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    curl -sf "$url/v3" >/dev/null
    # keywarden's service user, as the Barbican install guide makes
    # barbican's: a user in project `service` with the `service` role
    # (keystonemiddleware's service_token_roles) and `admin`.
    service_password=$(secret)
    osc() {
        "$venv/bin/openstack" --os-auth-url "$url/v3" --os-identity-api-version 3 \
            --os-username admin --os-password "$admin_password" --os-project-name admin \
            --os-user-domain-name Default --os-project-domain-name Default "$@"
    }
    osc project create --domain Default service >/dev/null
    osc role show service >/dev/null 2>&1 || osc role create service >/dev/null  # bootstrap makes it since 2023.2
    osc user create --domain Default --password "$service_password" keywarden >/dev/null
    osc role add --project service --user keywarden service >/dev/null
    osc role add --project service --user keywarden admin >/dev/null
    cat >"$dir/env" <<ENV
export KEYWARDEN_TEST_KEYSTONE_URL=$url
export KEYWARDEN_TEST_KEYSTONE_ADMIN_PASSWORD=$admin_password
export KEYWARDEN_TEST_KEYSTONE_SERVICE_PASSWORD=$service_password
ENV
    ;;
serve)
    dir=${2:?serve DIR}
    port=$(cat "$dir/port")
    export OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf
    exec "$venv/bin/gunicorn" --workers 2 --bind "127.0.0.1:$port" --timeout 60 \
        --chdir "$root/scripts" keystone_app:application
    ;;
stop)
    dir=${2:?stop DIR}
    if [[ -f $dir/pgid ]]; then
        pgid=$(cat "$dir/pgid")
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 -- "-$pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
        rm -f "$dir/pgid"
    fi
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
