#!/bin/sh
# OdooOps devcontainer feature, build time (root, once per image layer; running it twice is fine):
# PostgreSQL server and client, the packages Odoo needs from the distribution, Node.js and the OdooOps
# CLI, and the start-time scripts. No service is started here: start.sh does that at container start.
# No credential is read or written here: the token comes from the environment at start (a Codespaces secret).
set -eu

FEATURE_DIR="$(cd "$(dirname "$0")" && pwd)"
ODOOOPS_DIR=/usr/local/share/odooops

SERVERURL="${SERVERURL:-}"
PROJECT="${PROJECT:-}"
ENVIRONMENT="${ENVIRONMENT:-production}"
ODOOVERSION="${ODOOVERSION:-19.0}"
STARTODOO="${STARTODOO:-true}"
POSTGRES="${POSTGRES:-local}"
POSTGRESPORT="${POSTGRESPORT:-5432}"
DATABASE="${DATABASE:-odoo}"
INSTALLODOODEPENDENCIES="${INSTALLODOODEPENDENCIES:-true}"
USERNAME="${USERNAME:-"${_REMOTE_USER:-"automatic"}"}"

fail() {
    echo "odooops feature: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail 'install.sh must run as root (at image build, as dev container features do).'
[ -r /etc/os-release ] || fail 'cannot tell the distribution (/etc/os-release is missing); Debian or Ubuntu is needed.'
. /etc/os-release
case "${ID} ${ID_LIKE:-}" in
    *debian*|*ubuntu*) ;;
    *) fail "${ID} is not supported: use a Debian or Ubuntu based image." ;;
esac

# Options are interpolated into files the start script sources: only plain values are accepted.
check_value() {
    case "$2" in
        *[!A-Za-z0-9._:/@-]*) fail "option $1 has characters that are not allowed: '$2'" ;;
    esac
}
check_value serverUrl "${SERVERURL}"
check_value project "${PROJECT}"
check_value environment "${ENVIRONMENT}"
check_value database "${DATABASE}"
case "${ODOOVERSION}" in 16.0|17.0|18.0|19.0) ;; *) fail "odooVersion must be 16.0, 17.0, 18.0 or 19.0, not '${ODOOVERSION}'" ;; esac
case "${POSTGRES}" in local|external) ;; *) fail "postgres must be local or external, not '${POSTGRES}'" ;; esac
case "${POSTGRESPORT}" in ''|*[!0-9]*) fail "postgresPort must be a number, not '${POSTGRESPORT}'" ;; esac

# The user the container runs as (devcontainers/features' idiom: "automatic" probes the usual ones).
if [ "${USERNAME}" = "auto" ] || [ "${USERNAME}" = "automatic" ]; then
    USERNAME=""
    for candidate in vscode node codespace $(awk -F: '$3 == 1000 { print $1 }' /etc/passwd); do
        if id -u "${candidate}" >/dev/null 2>&1; then
            USERNAME="${candidate}"
            break
        fi
    done
    [ -n "${USERNAME}" ] || USERNAME=root
elif [ "${USERNAME}" = "none" ] || ! id -u "${USERNAME}" >/dev/null 2>&1; then
    USERNAME=root
fi

export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services in an image build: policy-rc.d refuses (if we put it there,
# we take it away again).
POLICY_ADDED=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_ADDED=1
fi
cleanup() {
    if [ -n "${POLICY_ADDED}" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

APT_UPDATED=""
check_packages() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="${missing} $p"
    done
    [ -n "${missing}" ] || return 0
    if [ -z "${APT_UPDATED}" ]; then
        apt-get update -y
        APT_UPDATED=1
    fi
    echo "odooops feature: installing${missing}"
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends ${missing}
}

packages="ca-certificates sudo tar postgresql-client"
[ "${POSTGRES}" = "local" ] && packages="${packages} postgresql"
if [ "${INSTALLODOODEPENDENCIES}" = "true" ]; then
    # What Odoo 16-19 import, as the distribution packages them (Odoo's own debian/control), and wkhtmltopdf for PDF reports.
    # gevent/greenlet serve the websocket (bus) in multi-worker mode; magic tells attachments' types.
    packages="${packages} python3 python3-pip python3-venv python3-babel python3-chardet python3-dateutil python3-decorator
        python3-docutils python3-freezegun python3-geoip2 python3-gevent python3-greenlet python3-idna python3-jinja2
        python3-libsass python3-lxml python3-magic python3-num2words python3-ofxparse python3-openssl python3-passlib python3-pil
        python3-polib python3-psutil python3-psycopg2 python3-pydot python3-pypdf2 python3-qrcode python3-renderpm python3-reportlab
        python3-requests python3-rjsmin python3-stdnum python3-tz python3-urllib3 python3-vobject python3-werkzeug python3-xlrd
        python3-xlsxwriter python3-zeep python3-ldap python3-markupsafe python3-cryptography
        fonts-dejavu-core wkhtmltopdf"
    # 19.0 imports these too; bs4 unconditionally (html_editor) although upstream's debian/control omits it.
    # On Debian bookworm, lxml 4.9 still has lxml.html.clean, so python3-lxml-html-clean is not needed.
    if [ "${ODOOVERSION}" = "19.0" ]; then
        packages="${packages} python3-asn1crypto python3-bs4 python3-cbor2 python3-openpyxl python3-packaging"
    fi
fi
if ! command -v node >/dev/null 2>&1; then
    packages="${packages} nodejs"
fi
# shellcheck disable=SC2086
check_packages ${packages}

NODE_MAJOR="$(node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0)"
if [ "${NODE_MAJOR}" -lt 18 ]; then
    fail "the OdooOps CLI needs Node.js 18 or newer and this image has ${NODE_MAJOR}: add the feature ghcr.io/devcontainers/features/node before this one"
fi

# The CLI (one bundled file) and the start-time scripts.
[ -f "${FEATURE_DIR}/odooops.mjs" ] || fail "odooops.mjs is missing from the feature: build it with 'npm run build' before packaging"
mkdir -p "${ODOOOPS_DIR}"
cp "${FEATURE_DIR}/odooops.mjs" "${FEATURE_DIR}/cli.mjs" "${FEATURE_DIR}/start.sh" "${FEATURE_DIR}/pg-start.sh" "${ODOOOPS_DIR}/"
chmod 0755 "${ODOOOPS_DIR}/start.sh" "${ODOOOPS_DIR}/pg-start.sh"
chmod 0644 "${ODOOOPS_DIR}/odooops.mjs" "${ODOOOPS_DIR}/cli.mjs"
cat > /usr/local/bin/odooops <<EOF
#!/bin/sh
exec node ${ODOOOPS_DIR}/cli.mjs "\$@"
EOF
chmod 0755 /usr/local/bin/odooops

# The options the start script needs (no secrets among them).
cat > "${ODOOOPS_DIR}/feature.env" <<EOF
SERVERURL='${SERVERURL}'
PROJECT='${PROJECT}'
ENVIRONMENT='${ENVIRONMENT}'
ODOOVERSION='${ODOOVERSION}'
STARTODOO='${STARTODOO}'
POSTGRES='${POSTGRES}'
POSTGRESPORT='${POSTGRESPORT}'
DATABASE='${DATABASE}'
USERNAME='${USERNAME}'
EOF
chmod 0644 "${ODOOOPS_DIR}/feature.env"

# The container user may start the local PostgreSQL (and nothing else) as root.
if [ "${USERNAME}" != "root" ] && [ "${POSTGRES}" = "local" ]; then
    echo "${USERNAME} ALL=(root) NOPASSWD: ${ODOOOPS_DIR}/pg-start.sh" > /etc/sudoers.d/odooops
    chmod 0440 /etc/sudoers.d/odooops
fi

rm -rf /var/lib/apt/lists/*
echo "odooops feature: installed for ${USERNAME} (PostgreSQL ${POSTGRES}, Odoo ${ODOOVERSION}); the clone is restored at container start"
