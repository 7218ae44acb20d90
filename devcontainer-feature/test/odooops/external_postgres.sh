#!/bin/bash
# Scenario external_postgres: no local PostgreSQL server, no Odoo packages; the CLI and client tools only.
set -e
source dev-container-features-test-lib

check "the OdooOps CLI runs" odooops --help
check "PostgreSQL client tools" psql --version
check "no PostgreSQL server" bash -c "! ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null"
check "settings kept for the start script" grep -q "POSTGRES='external'" /usr/local/share/odooops/feature.env

reportResults
