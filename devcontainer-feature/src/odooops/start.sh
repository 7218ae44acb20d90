#!/bin/sh
# OdooOps devcontainer feature, at every container start (postStartCommand, as the container user):
# start PostgreSQL, restore the newest masked clone of the chosen environment when the local database
# does not exist yet (`odooops dev pull`), then start Odoo when its source is there. The token is read
# from the environment (ODOOOPS_TOKEN, a Codespaces secret) and never written or printed.
set -u
. /usr/local/share/odooops/feature.env

say() { echo "odooops: $*"; }
fail() { echo "odooops: $*" >&2; exit 1; }

if [ "${POSTGRES}" = "local" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        /usr/local/share/odooops/pg-start.sh "$(id -un)" || fail 'could not start PostgreSQL (see above)'
    else
        sudo -n /usr/local/share/odooops/pg-start.sh "$(id -un)" || fail 'could not start PostgreSQL (see above); is sudo allowed for /usr/local/share/odooops/pg-start.sh?'
    fi
    export PGHOST=/var/run/postgresql PGPORT="${POSTGRESPORT}"
fi

export ODOOOPS_URL="${ODOOOPS_URL:-${SERVERURL}}"
[ -n "${ODOOOPS_URL}" ] || fail 'no OdooOps server: set the feature option serverUrl, or a Codespaces secret ODOOOPS_URL'
[ -n "${ODOOOPS_TOKEN:-}" ] || fail "no token: add a Codespaces secret ODOOOPS_TOKEN (an admin prints one with: odooops token --user <your user id>)"
[ -n "${PROJECT}" ] || fail 'no project: set the feature option project'

odooops dev pull "${PROJECT}" --from "${ENVIRONMENT}" --db "${DATABASE}" --odoo-version "${ODOOVERSION}" --if-missing || exit $?

if [ "${STARTODOO}" != "true" ]; then
    exit 0
fi
ODOO_BIN="${ODOO_BIN:-}"
if [ -z "${ODOO_BIN}" ]; then
    for candidate in $(command -v odoo-bin odoo 2>/dev/null) /workspaces/*/odoo-bin /workspaces/*/odoo/odoo-bin /workspaces/*/*/odoo-bin /opt/odoo/odoo-bin; do
        if [ -x "${candidate}" ]; then
            ODOO_BIN="${candidate}"
            break
        fi
    done
fi
if [ -z "${ODOO_BIN}" ]; then
    say "Odoo's source is not in the workspace or the image: start it yourself, e.g. ./odoo-bin -d ${DATABASE} --db-filter '^${DATABASE}\$'"
    exit 0
fi
if [ -f /tmp/odooops-odoo.pid ] && kill -0 "$(cat /tmp/odooops-odoo.pid)" 2>/dev/null; then
    say "Odoo already runs (pid $(cat /tmp/odooops-odoo.pid))"
    exit 0
fi
# Every interface: a forwarded port reaches the container from outside its loopback (and 19.0 warns when
# --http-interface is left out).
set -- -d "${DATABASE}" --db-filter "^${DATABASE}\$" --http-interface "${ODOO_HTTP_INTERFACE:-0.0.0.0}" --http-port "${ODOO_PORT:-8069}"
[ -n "${PGHOST:-}" ] && set -- "$@" --db_host "${PGHOST}"
[ -n "${PGPORT:-}" ] && set -- "$@" --db_port "${PGPORT}"
[ -n "${ODOO_ADDONS_PATH:-}" ] && set -- "$@" --addons-path "${ODOO_ADDONS_PATH}"
nohup "${ODOO_BIN}" "$@" >/tmp/odoo.log 2>&1 &
echo $! > /tmp/odooops-odoo.pid
# The backend's path: /odoo since 18.0 (/web still redirects there), /web before.
case "${ODOOVERSION}" in 16.0|17.0) APP_PATH=/web ;; *) APP_PATH=/odoo ;; esac
if [ -n "${CODESPACE_NAME:-}" ] && [ -n "${GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN:-}" ]; then
    URL="https://${CODESPACE_NAME}-${ODOO_PORT:-8069}.${GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN}"
else
    URL="http://localhost:${ODOO_PORT:-8069}"
fi
say "Odoo started from ${ODOO_BIN} on port ${ODOO_PORT:-8069} (log: /tmp/odoo.log): ${URL}${APP_PATH}"
