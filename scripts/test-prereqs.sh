#!/bin/sh
# Installs what the tests need beyond npm: Debian's PostgreSQL 15 (server for Odoo-side test databases,
# client tools), unzip (to open exported Odoo backups) debootstrap (a clean Debian root for the
# devcontainer feature test) openssh-server (an ssh deploy target on loopback),
# chromium and libkrb5-dev (the extension's end-to-end test in code-server, which compiles against kerberos),
# pgbouncer (a real session and transaction pooler in front of the control plane),
# python3-pip and python3-venv (a build's requirements go into an environment's own virtual environment). Runs before `npm test`; does nothing when everything is there.
set -eu
if [ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] && command -v pg_dump >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && [ -x /usr/sbin/sshd ] && command -v git >/dev/null 2>&1 && [ -x /usr/bin/chromium ] && [ -e /usr/include/krb5.h ] && [ -x /usr/sbin/pgbouncer ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1 && /usr/bin/python3 -c 'import venv' 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test prerequisites: installing postgresql-15, postgresql-client-15, unzip, debootstrap, openssh-server, git, chromium, libkrb5-dev, pgbouncer, python3-pip and python3-venv with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 unzip debootstrap openssh-server openssh-client git chromium libkrb5-dev pgbouncer python3-pip python3-venv >/dev/null
  exit 0
fi
echo "The tests need Debian's PostgreSQL 15: run 'sudo apt-get install postgresql-15 postgresql-client-15 unzip debootstrap openssh-server git chromium libkrb5-dev pgbouncer python3-pip python3-venv', then 'npm test' again." >&2
exit 1
