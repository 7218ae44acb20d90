// The devcontainer feature on a clean Debian bookworm root (debootstrap + chroot: no Docker engine
// here): install.sh as root, twice; then the container-start script as the container user against an
// OdooOps server on loopback that holds a masked clone of a generated Odoo-shaped database. The local
// database must have the masked data and the filestore; the token must never land on disk or in output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DevContainerFeature } from './helpers/devcontainer-feature-schema.ts';
import { debianChroot, type Chroot } from './helpers/chroot.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import type { TestUser } from './helpers/control-plane.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const FEATURE = join(ROOT, 'devcontainer-feature', 'src', 'odooops');
const PG_PORT = '55433';
let p: OdooProject;
let box: Chroot;
let developer: TestUser;

before(async () => {
  // The feature ships the CLI bundled for the distribution's Node.js: build it as packaging would.
  const [project, chroot] = await Promise.all([
    startOdooProject({
      slug: 'shop',
      generate: { shop_prod: { partners: 300 } },
      envs: [
        { name: 'production', stage: 'production', db: 'shop_prod', url: 'https://erp.shop.example' },
        { name: 'staging', stage: 'staging', db: 'shop_staging' },
      ],
    }),
    run(process.execPath, ['esbuild.mjs', '--only=devcontainer feature'], { cwd: ROOT }).then(() => debianChroot(process.env.TMPDIR ?? '/tmp')),
  ]);
  p = project;
  box = chroot;
  const clone = await p.runToEnd('staging', 'clone');
  assert.equal(clone.status, 'succeeded', clone.error ?? '');
  developer = await p.cp.user();
  assert.equal((await p.admin.call('POST', '/api/projects/shop/members', { userId: developer.id, role: 'developer' })).status, 201);
  // The container user, as devcontainer base images have it (uid 1000), and the feature's files.
  assert.equal((await box.exec(['useradd', '-m', '-u', '1000', '-s', '/bin/bash', 'vscode'])).code, 0);
  mkdirSync(join(box.root, 'tmp', 'odooops-feature'));
  await run('cp', ['-a', `${FEATURE}/.`, join(box.root, 'tmp', 'odooops-feature')]);
});
after(async () => {
  await box?.close();
  await p?.close();
});

const install = () => box.exec(['/bin/sh', '-c', 'cd /tmp/odooops-feature && ./install.sh'], {
  // What the devcontainer CLI exports from the options (names upper-cased) and the user variables.
  env: { _REMOTE_USER: 'automatic', _CONTAINER_USER: 'root', PROJECT: 'shop', ENVIRONMENT: 'production', ODOOVERSION: '17.0', POSTGRESPORT: PG_PORT, STARTODOO: 'true', POSTGRES: 'local', DATABASE: 'odoo', SERVERURL: '', INSTALLODOODEPENDENCIES: 'true' },
});
const start = (env: Record<string, string> = {}) => box.exec(['/usr/local/share/odooops/start.sh'], {
  user: 'vscode',
  env: { HOME: '/home/vscode', USER: 'vscode', ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: developer.token, ODOO_PORT: '8069', ...env },
});
const psql = async (sql: string, db = 'odoo') => {
  const r = await box.exec(['su', 'postgres', '-s', '/bin/sh', '-c', `psql -XAt -h /var/run/postgresql -p ${PG_PORT} -d ${db} -c "${sql}"`]);
  assert.equal(r.code, 0, r.err);
  return r.out.trim().split('\n').filter(Boolean);
};

test('devcontainer-feature.json is valid against the Dev Container Feature schema and has what users set', () => {
  const json = JSON.parse(readFileSync(join(FEATURE, 'devcontainer-feature.json'), 'utf8'));
  const r = DevContainerFeature.safeParse(json);
  assert.ok(r.success, JSON.stringify(r.error?.issues));
  assert.equal(json.id, 'odooops', 'the id is the folder name');
  assert.match(json.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(Object.keys(json.options).sort(), ['database', 'environment', 'installOdooDependencies', 'odooVersion', 'postgres', 'postgresPort', 'project', 'serverUrl', 'startOdoo']);
  assert.deepEqual(json.options.odooVersion.enum, ['16.0', '17.0', '18.0']);
  assert.equal(json.options.environment.default, 'production');
  assert.deepEqual(json.customizations.vscode.extensions, ['odooops.odooops', 'Odoo.odoo']);
  assert.equal(json.postStartCommand, '/usr/local/share/odooops/start.sh');
  assert.ok(json.installsAfter.includes('ghcr.io/devcontainers/features/common-utils'));
  // The spec's test layout is kept for `devcontainer features test` where Docker exists.
  const tests = join(ROOT, 'devcontainer-feature', 'test', 'odooops');
  assert.ok(statSync(join(tests, 'test.sh')).mode & 0o100, 'test.sh is executable');
  for (const name of Object.keys(JSON.parse(readFileSync(join(tests, 'scenarios.json'), 'utf8')))) {
    assert.ok(existsSync(join(tests, `${name}.sh`)), `scenario ${name} has its script`);
  }
  // Refused: a schema-invalid variant (unknown property, option without default).
  assert.equal(DevContainerFeature.safeParse({ ...json, keywords: ['x'] }).success, false);
  assert.equal(DevContainerFeature.safeParse({ ...json, options: { x: { type: 'string' } } }).success, false);
});

test('install.sh on a clean Debian bookworm, as root, twice: everything installed, nothing started, no credential', async () => {
  const first = await install();
  assert.equal(first.code, 0, `${first.out}\n${first.err}`);
  assert.match(first.out, /odooops feature: installed for vscode \(PostgreSQL local, Odoo 17\.0\)/);
  const again = await install();
  assert.equal(again.code, 0, `${again.out}\n${again.err}`);
  assert.doesNotMatch(again.out, /installing/, 'the second run finds everything in place');
  for (const bin of ['/usr/bin/psql', '/usr/bin/pg_restore', '/usr/lib/postgresql/15/bin/postgres', '/usr/bin/wkhtmltopdf', '/usr/local/bin/odooops']) {
    assert.ok(existsSync(join(box.root, bin)), `${bin} is installed`);
  }
  const py = await box.exec(['python3', '-c', 'import lxml, psycopg2, werkzeug, babel, reportlab, PIL, passlib; print("ok")']);
  assert.equal(py.out.trim(), 'ok', py.err);
  const cli = await box.exec(['odooops', '--help']);
  assert.equal(cli.code, 0, cli.err);
  assert.match(cli.out, /odooops dev pull PROJECT/);
  assert.equal(cli.err, '', 'no warnings on the distribution\'s Node.js');
  // No service at build time: nothing runs inside the root.
  const { stdout } = await run('sh', ['-c', `for p in /proc/[0-9]*; do [ "$(readlink $p/root)" = "${box.root}" ] && cat $p/comm; done; true`]);
  assert.equal(stdout.trim(), '', `running in the image after install: ${stdout}`);
  assert.ok(!existsSync(join(box.root, 'usr/sbin/policy-rc.d')), 'the temporary policy-rc.d is gone');
  assert.equal(readFileSync(join(box.root, 'etc/sudoers.d/odooops'), 'utf8').trim(), 'vscode ALL=(root) NOPASSWD: /usr/local/share/odooops/pg-start.sh');
  assert.doesNotMatch(readFileSync(join(box.root, 'usr/local/share/odooops/feature.env'), 'utf8'), /TOKEN/i);
  // Options are checked, not interpolated blindly into scripts.
  const bad = await box.exec(['/bin/sh', '-c', 'cd /tmp/odooops-feature && ./install.sh'], { env: { PROJECT: "x'; rm -rf /; '" } });
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /option project has characters that are not allowed/);
});

test('at container start: PostgreSQL starts, the masked clone is restored, Odoo starts; the token stays secret', async () => {
  // A named stand-in for odoo-bin (Odoo itself is not installed here): records how it was started.
  const ws = join(box.root, 'workspaces', 'shop');
  mkdirSync(ws, { recursive: true });
  writeFileSync(join(ws, 'odoo-bin'), '#!/bin/sh\necho "$@" > /tmp/odoo-bin-args\nexec sleep 600\n');
  chmodSync(join(ws, 'odoo-bin'), 0o755);

  const r = await start({ CODESPACE_NAME: 'shop-dev-x1', GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN: 'app.github.dev' });
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.out, new RegExp(`PostgreSQL 15 runs on port ${PG_PORT}`));
  assert.match(r.out, /masked clone of production from .* \(backup [0-9a-f-]{36}, Odoo 17\.0\.1\.3/);
  assert.match(r.out, /checksums match the manifest/);
  assert.match(r.out, /odoo is a masked copy of production .*; web\.base\.url = https:\/\/shop-dev-x1-8069\.app\.github\.dev/);
  assert.match(r.out, /Odoo started from \/workspaces\/shop\/odoo-bin on port 8069/);
  assert.ok(!`${r.out}${r.err}`.includes(developer.token), 'the token is never printed');

  // The local database: masked (no production email, phone or VAT), neutralized, pointed at the Codespace.
  const prodEmails = new Set((await p.sql('shop_prod', 'select lower(email) as e from res_partner where email is not null')).map((x) => x.e));
  const localEmails = await psql('select lower(email) from res_partner where email is not null');
  assert.equal(localEmails.length, prodEmails.size);
  assert.ok(localEmails.every((e) => e.endsWith('@example.invalid') && !prodEmails.has(e)));
  const prodPhones = new Set((await p.sql('shop_prod', 'select phone from res_partner where phone is not null')).map((x) => x.phone));
  assert.ok((await psql('select phone from res_partner where phone is not null')).every((ph) => !prodPhones.has(ph)));
  assert.deepEqual(await psql(`select value from ir_config_parameter where key in ('database.is_neutralized', 'web.base.url') order by key`),
    ['true', 'https://shop-dev-x1-8069.app.github.dev']);
  assert.deepEqual(await psql(`select count(*) from ir_cron where active`), ['1']);
  // The filestore, where Odoo looks by default, every file under its SHA-1, owned by the user.
  const store = join(box.root, 'home/vscode/.local/share/Odoo/filestore/odoo');
  const files = readdirSync(store, { recursive: true }).map(String).filter((f) => statSync(join(store, f)).isFile());
  const attachments = (await psql(`select store_fname || ' ' || checksum from ir_attachment where store_fname is not null`)).map((l) => l.split(' '));
  assert.ok(attachments.length > 0);
  assert.deepEqual(files.sort(), attachments.map(([f]) => f!).sort());
  for (const [f, sum] of attachments) {
    const { stdout: sha } = await run('sha1sum', [join(store, f!)]);
    assert.equal(sha.split(' ')[0], sum);
  }
  assert.equal(statSync(store).uid, 1000);
  // Odoo was started on that database and PostgreSQL.
  const args = readFileSync(join(box.root, 'tmp/odoo-bin-args'), 'utf8');
  assert.match(args, new RegExp(`-d odoo --db-filter \\^odoo\\$ --http-port 8069 --db_host /var/run/postgresql --db_port ${PG_PORT}`));
  // The token is nowhere in the image or the user's home.
  const grep = await run('grep', ['-rlF', developer.token, join(box.root, 'usr/local'), join(box.root, 'etc'), join(box.root, 'home'), join(box.root, 'tmp')]).catch((e) => e);
  assert.equal(grep.code, 1, `the token was written to ${grep.stdout}`);

  // A restart keeps the local database (and the work in it) and the running Odoo.
  await psql(`insert into ir_config_parameter (key, value) values ('local.work', 'kept')`);
  const again = await start();
  assert.equal(again.code, 0, `${again.out}\n${again.err}`);
  assert.match(again.out, /odoo exists already: keeping it/);
  assert.match(again.out, /Odoo already runs \(pid \d+\)/);
  assert.deepEqual(await psql(`select value from ir_config_parameter where key = 'local.work'`), ['kept']);
});

test('clear errors at container start: no token, server unreachable, not authorized, no clone yet, not enough disk', async () => {
  const noToken = await start({ ODOOOPS_TOKEN: '' });
  assert.notEqual(noToken.code, 0);
  assert.match(noToken.err, /no token: add a Codespaces secret ODOOOPS_TOKEN/);

  // `odooops dev pull` is what start.sh runs; a database name that does not exist yet makes it pull.
  const pull = (args: string[], env: Record<string, string> = {}) => box.exec(['odooops', 'dev', 'pull', 'shop', '--db', 'fresh', ...args], {
    user: 'vscode', env: { HOME: '/home/vscode', PGHOST: '/var/run/postgresql', PGPORT: PG_PORT, ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: developer.token, ...env },
  });
  const unreachable = await pull([], { ODOOOPS_URL: 'http://127.0.0.1:9' });
  assert.equal(unreachable.code, 4);
  assert.match(unreachable.err, /cannot reach the OdooOps server at http:\/\/127\.0\.0\.1:9/);
  const viewer = await p.cp.user();
  assert.equal((await p.admin.call('POST', '/api/projects/shop/members', { userId: viewer.id, role: 'viewer' })).status, 201);
  const denied = await pull([], { ODOOOPS_TOKEN: viewer.token });
  assert.equal(denied.code, 3);
  assert.match(denied.err, /your role in shop cannot pull copies of its data/);
  const none = await pull(['--from', 'staging']);
  assert.equal(none.code, 3);
  assert.match(none.err, /shop has no masked clone of staging yet/);
  assert.match(none.err, /odooops dev pull --queue-clone/, 'and how to get one');
  const wrongVersion = await pull(['--odoo-version', '16.0']);
  assert.equal(wrongVersion.code, 3);
  assert.match(wrongVersion.err, /the clone of production is Odoo 17\.0, but this workspace is set up for Odoo 16\.0/);
  const small = join(box.root, 'home/vscode/small');
  mkdirSync(small);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16k,uid=1000', 'tmpfs', small]);
  try {
    const full = await pull([], { ODOOOPS_PULL_TMP: '/home/vscode/small' });
    assert.equal(full.code, 3);
    assert.match(full.err, /not enough disk space in \/home\/vscode\/small\/odooops-pull-\w+: the pull needs about \d+ KiB, \d+ KiB are free/);
  } finally {
    await run('umount', [small]);
  }
  assert.deepEqual(await psql(`select datname from pg_database where datname like 'fresh%'`, 'postgres'), [], 'nothing was created');
});
