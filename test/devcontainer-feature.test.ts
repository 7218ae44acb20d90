// The devcontainer feature on a clean Debian bookworm root (debootstrap + chroot: no Docker engine
// here): install.sh as root, twice, for Odoo 19.0 (the default); real Odoo 19 in the image (the bundle of
// ../shared/odoo, installed by its install.sh, which must find every package it needs already there); then
// the container-start script as the container user against an OdooOps server on loopback that holds a
// masked clone of a real Odoo 19 database. The local database must have the masked data and the filestore,
// real odoo-bin must serve it (/web/login, the clone's admin password, /odoo); the token must never land on
// disk or in output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DevContainerFeature } from './helpers/devcontainer-feature-schema.ts';
import { debianChroot, type Chroot } from './helpers/chroot.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { eventually, type TestUser } from './helpers/control-plane.ts';
import { installOdoo, SHARED_DIR, type OdooInstall } from './helpers/real-odoo.ts';
import { REAL_LOOKING } from './helpers/odoo-sources.ts';
import { freePort } from '../server/db/embedded.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const FEATURE = join(ROOT, 'devcontainer-feature', 'src', 'odooops');
let PG_PORT: string;
let ODOO_PORT: string;
let p: OdooProject;
let box: Chroot;
let developer: TestUser;
let odoo19: OdooInstall;
/** The clone's admin login and password, as the clone run reports them. */
let cloneAdmin: { login: string; password: string };
const t0 = performance.now();
const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

before(async () => {
  // The feature ships the CLI bundled for the distribution's Node.js: build it as packaging would.
  PG_PORT = String(await freePort());
  ODOO_PORT = String(await freePort());
  const [project, chroot, odoo] = await Promise.all([
    startOdooProject({
      slug: 'shop',
      generate: {},
      real: { shop_prod: { version: '19.0', kind: 'plain' } },
      envs: [
        { name: 'production', stage: 'production', db: 'shop_prod', url: 'https://erp.shop.example' },
        { name: 'staging', stage: 'staging', db: 'shop_staging' },
      ],
    }),
    run(process.execPath, ['esbuild.mjs', '--only=devcontainer feature'], { cwd: ROOT }).then(() => debianChroot(process.env.TMPDIR ?? '/tmp')),
    installOdoo('19.0'),
  ]);
  p = project;
  box = chroot;
  odoo19 = odoo;
  console.log(`# project, chroot and Odoo 19 on the host ready: ${since(t0)}`);
  const t = performance.now();
  const clone = await p.runToEnd('staging', 'clone', {}, 300_000);
  assert.equal(clone.status, 'succeeded', clone.error ?? '');
  console.log(`# clone of the real Odoo 19 database: ${since(t)}`);
  // The clone's fresh password, for members who may operate staging (the project sets no clone secret here).
  const login = (await p.admin.call('GET', '/api/projects/shop/environments/staging/clone-login')).body as { logins: string[]; password: string | null };
  assert.ok(login.password && login.logins.includes('admin'), `the clone has a login for admin: ${JSON.stringify(login)}`);
  cloneAdmin = { login: 'admin', password: login.password };
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
  env: { _REMOTE_USER: 'automatic', _CONTAINER_USER: 'root', PROJECT: 'shop', ENVIRONMENT: 'production', ODOOVERSION: '19.0', POSTGRESPORT: PG_PORT, STARTODOO: 'true', POSTGRES: 'local', DATABASE: 'odoo', SERVERURL: '', INSTALLODOODEPENDENCIES: 'true' },
});
const start = (env: Record<string, string> = {}) => box.exec(['/usr/local/share/odooops/start.sh'], {
  user: 'vscode',
  env: { HOME: '/home/vscode', USER: 'vscode', ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: developer.token, ODOO_PORT, ...env },
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
  assert.deepEqual(json.options.odooVersion.enum, ['16.0', '17.0', '18.0', '19.0']);
  assert.equal(json.options.odooVersion.default, '19.0', 'the current major');
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
  let t = performance.now();
  const first = await install();
  assert.equal(first.code, 0, `${first.out}\n${first.err}`);
  assert.match(first.out, /odooops feature: installed for vscode \(PostgreSQL local, Odoo 19\.0\)/);
  console.log(`# install.sh on a clean bookworm (Odoo 19.0): ${since(t)}`);
  t = performance.now();
  const again = await install();
  assert.equal(again.code, 0, `${again.out}\n${again.err}`);
  assert.doesNotMatch(again.out, /installing/, 'the second run finds everything in place');
  console.log(`# install.sh again: ${since(t)}`);
  for (const bin of ['/usr/bin/psql', '/usr/bin/pg_restore', '/usr/lib/postgresql/15/bin/postgres', '/usr/bin/wkhtmltopdf', '/usr/local/bin/odooops']) {
    assert.ok(existsSync(join(box.root, bin)), `${bin} is installed`);
  }
  // 19.0's own packages too (bs4 is imported by html_editor whatever upstream's debian/control says).
  const py = await box.exec(['python3', '-c', 'import lxml, psycopg2, werkzeug, babel, reportlab, PIL, passlib, asn1crypto, bs4, cbor2, openpyxl, packaging; print("ok")']);
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
  const future = await box.exec(['/bin/sh', '-c', 'cd /tmp/odooops-feature && ./install.sh'], { env: { ODOOVERSION: '20.0' } });
  assert.notEqual(future.code, 0);
  assert.match(future.err, /odooVersion must be 16\.0, 17\.0, 18\.0 or 19\.0, not '20\.0'/);
});

test('real Odoo 19 goes into the image with ../shared/odoo/install.sh, which finds every package it needs installed by the feature', async () => {
  // The unpacked bundle with its compiled .pyc (copied from the host's cache, modification times kept, so
  // Python's cache stays valid and Odoo starts as fast as on the host); install.sh sees its own marker
  // and does not unpack again, but checks the packages and that Python imports every module 19.0 needs.
  const t = performance.now();
  await run('cp', ['-a', odoo19.dir, join(box.root, 'opt', 'odoo')]);
  mkdirSync(join(box.root, 'tmp', 'odoo-bundle'));
  for (const f of ['install.sh', 'odoo-19.0.tar.gz']) await run('cp', [join(SHARED_DIR, 'odoo', f), join(box.root, 'tmp', 'odoo-bundle', f)]);
  const r = await box.exec(['/tmp/odoo-bundle/install.sh', '19.0', '/opt/odoo']);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.err, /Debian packages already installed/, `the feature left a package out:\n${r.err}`);
  assert.match(r.err, /\/opt\/odoo already holds this bundle/);
  assert.equal(r.out.trim(), '/opt/odoo/odoo-bin');
  const version = await box.exec(['/opt/odoo/odoo-bin', '--version'], { user: 'vscode', env: { HOME: '/home/vscode' } });
  assert.equal(version.code, 0, version.err);
  assert.match(version.out, /Odoo Server 19\.0/);
  console.log(`# Odoo 19 into the image: ${since(t)}`);
});

/** /web/session/authenticate: the session cookie on success, null when Odoo refuses the credentials. */
async function login(url: string, db: string, user: string, password: string): Promise<string | null> {
  const res = await fetch(`${url}/web/session/authenticate`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { db, login: user, password } }),
  });
  const body = (await res.json()) as { result?: { uid?: number }; error?: { data?: { name?: string } } };
  if (body.result?.uid) return res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  if (body.error?.data?.name === 'odoo.exceptions.AccessDenied') return null;
  throw new Error(`unexpected answer from /web/session/authenticate: ${res.status} ${JSON.stringify(body).slice(0, 500)}`);
}

test('at container start: PostgreSQL starts, the masked clone is restored, real Odoo 19 serves it; the token stays secret', async () => {
  const t = performance.now();
  const r = await start({ CODESPACE_NAME: 'shop-dev-x1', GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN: 'app.github.dev' });
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  console.log(`# start.sh (PostgreSQL, pull, restore, Odoo launched): ${since(t)}`);
  assert.match(r.out, new RegExp(`PostgreSQL 15 runs on port ${PG_PORT}`));
  assert.match(r.out, /masked clone of production from .* \(backup [0-9a-f-]{36}, Odoo 19\.0/);
  assert.match(r.out, /checksums match the manifest/);
  assert.match(r.out, new RegExp(`odoo is a masked copy of production .*; web\\.base\\.url = https://shop-dev-x1-${ODOO_PORT}\\.app\\.github\\.dev`));
  // The image's Odoo (/opt/odoo), and where to open its backend: /odoo in 19.0.
  assert.match(r.out, new RegExp(`Odoo started from /opt/odoo/odoo-bin on port ${ODOO_PORT} \\(log: /tmp/odoo\\.log\\): https://shop-dev-x1-${ODOO_PORT}\\.app\\.github\\.dev/odoo$`, 'm'));
  assert.ok(!`${r.out}${r.err}`.includes(developer.token), 'the token is never printed');

  // The local database: masked (no production email, phone or VAT), neutralized, pointed at the Codespace.
  // Everyone's but the company's own (kept readable, as on Odoo.sh: profile companies: keep).
  const people = 'from res_partner where email is not null and id not in (select partner_id from res_company)';
  const prodEmails = new Set((await p.sql('shop_prod', `select lower(email) as e ${people}`)).map((x) => x.e));
  const localEmails = await psql(`select lower(email) ${people}`);
  assert.equal(localEmails.length, prodEmails.size);
  assert.ok(localEmails.every((e) => e.endsWith('@example.invalid') && !prodEmails.has(e)));
  const phones = 'from res_partner where phone is not null and id not in (select partner_id from res_company)';
  const prodPhones = new Set((await p.sql('shop_prod', `select phone ${phones}`)).map((x) => x.phone));
  assert.ok(prodPhones.size > 0, 'production has customers\' phones');
  assert.ok((await psql(`select phone ${phones}`)).every((ph) => !prodPhones.has(ph)));
  assert.deepEqual(await psql(`select value from ir_config_parameter where key in ('database.is_neutralized', 'web.base.url') order by key`),
    ['true', `https://shop-dev-x1-${ODOO_PORT}.app.github.dev`]);
  assert.deepEqual(await psql(`select count(*) from ir_cron where active`), ['1']);
  // The filestore, where Odoo looks by default, every file under its SHA-1 (attachments of the same content share one), owned by the user.
  const store = join(box.root, 'home/vscode/.local/share/Odoo/filestore/odoo');
  const files = readdirSync(store, { recursive: true }).map(String).filter((f) => statSync(join(store, f)).isFile());
  const attachments = (await psql(`select distinct store_fname || ' ' || checksum from ir_attachment where store_fname is not null`)).map((l) => l.split(' '));
  assert.ok(attachments.length > 0);
  assert.deepEqual(files.sort(), attachments.map(([f]) => f!).sort());
  for (const [f, sum] of attachments) {
    const { stdout: sha } = await run('sha1sum', [join(store, f!)]);
    assert.equal(sha.split(' ')[0], sum);
  }
  assert.equal(statSync(store).uid, 1000);
  // Odoo was started on that database and PostgreSQL, as the container user.
  const pid = readFileSync(join(box.root, 'tmp/odooops-odoo.pid'), 'utf8').trim();
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  assert.match(args, new RegExp(`/opt/odoo/odoo-bin -d odoo --db-filter \\^odoo\\$ --http-interface 0\\.0\\.0\\.0 --http-port ${ODOO_PORT} --db_host /var/run/postgresql --db_port ${PG_PORT}`));
  assert.equal(statSync(`/proc/${pid}`).uid, 1000);

  // Real Odoo 19 serves the pulled database: the login page, the clone's admin password, the backend.
  const url = `http://127.0.0.1:${ODOO_PORT}`;
  const log = () => readFileSync(join(box.root, 'tmp/odoo.log'), 'utf8').slice(-3000);
  await eventually('Odoo 19 to answer /web/health', async () => (await fetch(`${url}/web/health`).catch(() => null))?.ok || undefined, 120_000)
    .catch((e) => assert.fail(`${(e as Error).message}\n${log()}`));
  console.log(`# container start until Odoo 19 answers /web/health: ${since(t)}`);
  assert.equal((await fetch(`${url}/web/login`)).status, 200, log());
  const session = await login(url, 'odoo', cloneAdmin.login, cloneAdmin.password);
  assert.ok(session, `the clone's admin password (${cloneAdmin.login}) logs in:\n${log()}`);
  assert.equal(await login(url, 'odoo', cloneAdmin.login, 'admin'), null, 'production\'s admin password does not');
  assert.equal(await login(url, 'odoo', REAL_LOOKING.user.login, REAL_LOOKING.user.password), null, 'nor a production user\'s');
  const tb = performance.now();
  const backend = await fetch(`${url}/odoo`, { headers: { cookie: session }, redirect: 'manual' });
  assert.equal(backend.status, 200, `the backend at /odoo (not a redirect to the login page): ${backend.headers.get('location')}`);
  assert.match(await backend.text(), /odoo\.__session_info__|session_info/);
  console.log(`# first /odoo page: ${since(tb)}`);
  assert.doesNotMatch(log(), /Traceback|ERROR odoo/, 'Odoo logged no error');
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
  const wrongVersion = await pull(['--odoo-version', '17.0']);
  assert.equal(wrongVersion.code, 3);
  assert.match(wrongVersion.err, /the clone of production is Odoo 19\.0, but this workspace is set up for Odoo 17\.0/);
  assert.match(wrongVersion.err, /Set the feature's odooVersion \(or --odoo-version\) to 19\.0; nothing was changed/);
  const small = join(box.root, 'home/vscode/small');
  mkdirSync(small);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16k,uid=1000', 'tmpfs', small]);
  try {
    const full = await pull([], { ODOOOPS_PULL_TMP: '/home/vscode/small' });
    assert.equal(full.code, 3);
    assert.match(full.err, /not enough disk space in \/home\/vscode\/small\/odooops-pull-\w+: the pull needs about [\d.]+ [KM]iB, \d+ KiB are free/);
  } finally {
    await run('umount', [small]);
  }
  assert.deepEqual(await psql(`select datname from pg_database where datname like 'fresh%'`, 'postgres'), [], 'nothing was created');
});
