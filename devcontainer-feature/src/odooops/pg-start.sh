#!/bin/sh
# OdooOps devcontainer feature: starts the container's PostgreSQL (as root, through the sudoers rule
# install.sh wrote) and makes sure the container user has a superuser role of the same name, so that
# libpq's defaults (the local socket, the login name) just work. Does nothing when it already runs.
set -eu
. /usr/local/share/odooops/feature.env

ROLE="${1:-${USERNAME}}"
case "${ROLE}" in
    ''|*[!a-z0-9_-]*) echo "odooops: '${ROLE}' is not a role name this script creates" >&2; exit 1 ;;
esac

VERSION="$(ls /usr/lib/postgresql | sort -n | tail -n 1)"
[ -n "${VERSION}" ] || { echo 'odooops: PostgreSQL is not installed (the feature option postgres is not "local"?)' >&2; exit 1; }
if [ ! -d "/etc/postgresql/${VERSION}/main" ]; then
    pg_createcluster "${VERSION}" main >/dev/null
fi
if [ "$(pg_conftool -s "${VERSION}" main show port 2>/dev/null || echo)" != "${POSTGRESPORT}" ]; then
    pg_conftool "${VERSION}" main set port "${POSTGRESPORT}"
fi
if ! pg_ctlcluster "${VERSION}" main status >/dev/null 2>&1; then
    pg_ctlcluster "${VERSION}" main start
fi
i=0
until pg_isready -q -h /var/run/postgresql -p "${POSTGRESPORT}"; do
    i=$((i + 1))
    [ "${i}" -lt 60 ] || { echo "odooops: PostgreSQL ${VERSION} did not become ready in 60 s; see /var/log/postgresql/" >&2; exit 1; }
    sleep 1
done
if [ "${ROLE}" != "postgres" ]; then
    su postgres -s /bin/sh -c "psql -q -h /var/run/postgresql -p ${POSTGRESPORT} -v ON_ERROR_STOP=1 -v role=${ROLE} -d postgres" <<'SQL'
select format('create role %I login superuser', :'role') where not exists (select 1 from pg_roles where rolname = :'role') \gexec
SQL
fi
echo "odooops: PostgreSQL ${VERSION} runs on port ${POSTGRESPORT}"
