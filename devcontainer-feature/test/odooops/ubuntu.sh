#!/bin/bash
# Scenario ubuntu: the defaults on Ubuntu, with Node.js from the node feature.
set -e
source dev-container-features-test-lib

check "the OdooOps CLI runs" odooops --help
check "PostgreSQL server" bash -c "ls /usr/lib/postgresql/*/bin/postgres"
check "sudo rule for the container user" sudo -n -l /usr/local/share/odooops/pg-start.sh

reportResults
