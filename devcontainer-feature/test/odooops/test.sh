#!/bin/bash
# `devcontainer features test` (where Docker exists): the feature installed with its defaults.
set -e
source dev-container-features-test-lib

check "the OdooOps CLI runs" bash -c "odooops --help | grep -q 'odooops dev pull'"
check "PostgreSQL server" bash -c "ls /usr/lib/postgresql/*/bin/postgres"
check "PostgreSQL client tools" pg_restore --version
check "Odoo's Python packages" python3 -c "import lxml, psycopg2, werkzeug, babel, reportlab, PIL, passlib"
check "Odoo 19's Python packages (the default odooVersion)" python3 -c "import asn1crypto, bs4, cbor2, openpyxl, packaging"
check "wkhtmltopdf" wkhtmltopdf --version
check "the start script" test -x /usr/local/share/odooops/start.sh
check "no token in the image" bash -c "! grep -rqi token /usr/local/share/odooops/feature.env"

reportResults
