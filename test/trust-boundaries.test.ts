// The trust boundaries of SECURITY.md, attacked as the issue that asked for them did: an outsider with a
// token, and the admin of a project of their own (mallory, admin of "evil") going after another project
// ("acme") through the worker, which runs with the operator's secrets. Real server, real worker, real
// PostgreSQL, real git, the operator's registry file. Each test is one of the attacks that worked before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as C from '../contract/index.ts';
import { runUser } from '../server/infra/run-user.ts';
import { freePortRange, chownToRunUser, type TestUser } from './helpers/control-plane.ts';
import { fingerprintDb } from './helpers/debian-postgres.ts';
import { DB_SERVER, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

const STANDIN = join(import.meta.dirname, 'fixtures', 'odoo-bin-standin.mjs');
let p: OdooProject;
let mallory: TestUser;
let outsider: TestUser;
let evilRepo: string;
let evilWork: string;
const asRoot = process.getuid?.() === 0;


const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], {
  env: { ...process.env, GIT_AUTHOR_NAME: 'M', GIT_AUTHOR_EMAIL: 'm@example.invalid', GIT_COMMITTER_NAME: 'M', GIT_COMMITTER_EMAIL: 'm@example.invalid' },
}).toString().trim();

const evil = (method: string, path: string, body?: unknown) => mallory.call(method, `/api/projects/evil${path}`, body);
async function evilRun(env: string, kind: string, params: object = {}): Promise<C.Run> {
  const q = await evil('POST', `/environments/${env}/runs`, { kind, params });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  return p.finished(q.body.id);
}

before(async () => {
  p = await startOdooProject({
    slug: 'acme',
    generate: { acme_prod: { partners: 60 }, evil_dev: { partners: 20 } },
    envs: [{ name: 'production', stage: 'production', db: 'acme_prod' }],
  });
  const server = p.registry.databaseServers![DB_SERVER]!;
  // Mallory's project gets what the operator gives it: the same PostgreSQL, but only evil_* databases on
  // it; a filestore root of its own; odoo-bin (the stand-in) as a local runtime; its own repositories.
  mkdirSync(join(p.scratch, 'evil-files'));
  execFileSync('mv', [p.fs('evil_dev'), join(p.scratch, 'evil-files', 'evil_dev')]);
  mkdirSync(join(p.scratch, 'outside'));
  writeFileSync(join(p.scratch, 'outside', 'canary'), 'not evil\'s');
  mkdirSync(join(p.scratch, 'bin'));
  copyFileSync(STANDIN, join(p.scratch, 'bin', 'odoo-bin'));
  chmodSync(join(p.scratch, 'bin', 'odoo-bin'), 0o755);
  mkdirSync(join(p.scratch, 'repos', 'evil'), { recursive: true });
  evilRepo = join(p.scratch, 'repos', 'evil', 'addons.git');
  evilWork = join(p.scratch, 'evil-work');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', evilRepo]);
  execFileSync('git', ['clone', '-q', evilRepo, evilWork]);
  // What mallory pushes: a module, and an "odoo-bin" of their own that would prove it ran.
  mkdirSync(join(evilWork, 'evil_mod'));
  writeFileSync(join(evilWork, 'evil_mod', '__manifest__.py'), "{'name': 'Evil', 'version': '17.0.1.0'}\n");
  writeFileSync(join(evilWork, 'evil_mod', '__init__.py'), '');
  const marker = join(p.scratch, 'checkout-binary-ran');
  writeFileSync(join(evilWork, 'odoo-bin'), `#!/bin/sh\ntouch ${marker}\nexec sleep 60\n`, { mode: 0o755 });
  writeFileSync(join(evilWork, 'release.txt'), 'evil\n');
  git(evilWork, 'add', '-A');
  git(evilWork, 'commit', '-q', '-m', 'evil');
  git(evilWork, 'push', '-q', 'origin', 'main');
  p.giveFiles();
  chownToRunUser(join(p.scratch, 'evil-files'));
  await p.addInfra({
    databaseServers: {
      'evil-pg': { ...server, databases: ['evil_*'], projects: ['evil'] },
      'shared-pg': { ...server, projects: ['acme', 'evil'] },
    },
    filestoreRoots: { 'evil-files': { path: join(p.scratch, 'evil-files'), projects: ['evil'] } },
    runtimes: {
      'evil-odoo': { kind: 'local', odooBin: join(p.scratch, 'bin', 'odoo-bin'), httpPorts: await freePortRange(4), healthTimeoutSeconds: 8, projects: ['evil'] },
      'acme-odoo': { kind: 'local', odooBin: join(p.scratch, 'bin', 'odoo-bin'), httpPorts: await freePortRange(4), projects: ['acme'] },
    },
    repositories: { 'evil-repos': { url: join(p.scratch, 'repos', 'evil', '*.git'), projects: ['evil'] } },
  });
  // An instance admin makes mallory the admin of a project of their own.
  mallory = await p.cp.user();
  outsider = await p.cp.user();
  assert.equal((await p.admin.call('POST', '/api/projects', { slug: 'evil', name: 'Evil' })).status, 201);
  assert.equal((await p.admin.call('POST', '/api/projects/evil/members', { userId: mallory.id, role: 'admin' })).status, 201);
  const created = await evil('POST', '/environments', { name: 'evil-dev', stage: 'development', database: { server: 'evil-pg', name: 'evil_dev' }, filestore: 'evil-files' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
});
after(async () => {
  // The stand-in Odoo the deploy started.
  const odoo = join(p.cp.server.home, 'work', 'odoo');
  for (const env of existsSync(odoo) ? readdirSync(odoo) : []) {
    const pid = join(odoo, env, 'odoo.pid');
    if (existsSync(pid)) try { process.kill(Number(readFileSync(pid, 'utf8')), 'SIGTERM'); } catch {}
  }
  await p?.close();
});

test('creating projects is an instance admin\'s right: a token holder gets a 403 and nothing is created', async () => {
  const r = await outsider.call('POST', '/api/projects', { slug: 'evil2', name: 'x' });
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.match(r.body.error.message, /only instance admins can create projects/);
  assert.match(r.body.error.hint, /odooops admin grant/);
  // Not in SQL either (the policy), and not by granting oneself the right.
  await assert.rejects(p.cp.sql(outsider, (c) => c.query(`insert into ops.projects (slug, name) values ('evil3', 'x')`)), /row-level security/);
  assert.equal((await outsider.call('POST', '/api/admin/instance-admins', { userId: outsider.id })).status, 403);
  await assert.rejects(p.cp.sql(outsider, (c) => c.query('insert into ops.instance_admins (user_id) values ($1)', [outsider.id])), /row-level security/);
  // A project admin is not an instance admin.
  assert.equal((await mallory.call('POST', '/api/projects', { slug: 'evil4', name: 'x' })).status, 403);
  assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.projects where slug like 'evil_'`)).rows[0].n, 0);
  // An instance admin grants it, and it is audited at the instance level.
  assert.equal((await p.admin.call('POST', '/api/admin/instance-admins', { userId: outsider.id })).status, 201);
  assert.equal((await outsider.call('POST', '/api/projects', { slug: 'granted', name: 'Granted' })).status, 201);
  assert.equal((await p.admin.call('DELETE', `/api/admin/instance-admins/${outsider.id}`)).status, 204);
  assert.equal((await outsider.call('POST', '/api/projects', { slug: 'granted-2', name: 'x' })).status, 403);
  const audit = await p.cp.pool.query(`select action from ops.audit_log where project_id is null and target = $1 order by id`, [`instance_admins:${outsider.id}`]);
  assert.deepEqual(audit.rows.map((r) => r.action), ['instance_admins.insert', 'instance_admins.delete']);
});

test('a project admin picks only what the operator bound to their project: no host, path, binary or password reference', async () => {
  const refused = async (body: unknown, status: number, message: RegExp) => {
    const r = await evil('POST', '/environments', body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.match(`${r.body.error.message} ${r.body.error.hint ?? ''}`, message);
  };
  // acme's server, under its name: unknown to evil.
  await refused({ name: 'x', stage: 'production', database: { server: DB_SERVER, name: 'acme_prod' } }, 400, /evil has no database server "odoo-pg" \(it may use: evil-pg, shared-pg\)/);
  // evil's own server, but acme's database: the registry limits evil to evil_* there.
  await refused({ name: 'x', stage: 'production', database: { server: 'evil-pg', name: 'acme_prod' } }, 403, /the database "acme_prod" is not one this project may use on the server "evil-pg"/);
  // A server both projects may use: a database another project's environment manages is taken.
  assert.equal((await p.admin.call('POST', '/api/projects/acme/environments', { name: 'shared', stage: 'staging', database: { server: 'shared-pg', name: 'acme_shared' } })).status, 201);
  await refused({ name: 'x', stage: 'production', database: { server: 'shared-pg', name: 'acme_shared' } }, 409, /another environment already manages this database on that server/);
  // The fields that used to carry a host, a path or a secret are gone from the API.
  await refused({ name: 'x', stage: 'development', database: { server: 'evil-pg', name: 'evil_x', host: '10.0.0.66', passwordRef: `env:${p.passwordVar}` } }, 400, /Unrecognized keys: "host", "passwordRef"/);
  await refused({ name: 'x', stage: 'development', database: { server: 'evil-pg', name: 'evil_x' }, filestorePath: '/etc' }, 400, /Unrecognized key: "filestorePath"/);
  await refused({ name: 'x', stage: 'development', database: { server: 'evil-pg', name: 'evil_x' }, filestore: 'files' }, 400, /evil has no filestore root "files"/);
  for (const name of ['..', '../acme_prod', 'postgres', 'acme_prod_odooops_new_1']) {
    await refused({ name: 'x', stage: 'development', database: { server: 'evil-pg', name } }, 400, /database\.name/);
  }
  // Binding is the registry's alone: no API writes it, and no user (an instance admin neither) in SQL.
  assert.equal((await p.admin.call('POST', '/api/infrastructure', { kind: 'database_server', name: 'x' })).status, 405);
  for (const who of [mallory, p.admin]) {
    await assert.rejects(p.cp.sql(who, (c) => c.query(`update ops.infrastructure set projects = array['evil'] where name = $1`, [DB_SERVER])), /permission denied/);
    await assert.rejects(p.cp.sql(who, (c) => c.query(`insert into ops.infrastructure (kind, name, projects) values ('runtime', 'x', array['evil'])`)), /permission denied/);
  }
  // What evil sees of the registry: its own entries, none of acme's, and no host or password (the server's own backup directory is every project's).
  const seen = (await evil('GET', '/infrastructure')).body as C.InfraEntry[];
  assert.deepEqual(seen.map((e) => `${e.kind}:${e.name}`), ['backup_store:default', 'database_server:evil-pg', 'database_server:shared-pg', 'filestore_root:evil-files', 'repository:evil-repos', 'runtime:evil-odoo']);
  assert.ok(!JSON.stringify(seen).includes(p.passwordVar) && seen.every((e) => e.projects === undefined));
});

test("project A's password never resolves for project B, even when the control plane says so", async () => {
  const prodBefore = await fingerprintDb(p.odooPg, 'acme_prod');
  // The database refuses the name for evil, whoever writes (here the server's own connection, the table owner).
  await assert.rejects(
    p.cp.pool.query(`update ops.environments set db_server = $1, db_name = 'acme_prod' where name = 'evil-dev'`, [DB_SERVER]),
    /the database server "odoo-pg" is not available to this project/,
  );
  // Someone who can write the control plane around its checks (its superuser) points evil at acme's
  // production: the worker resolves names with its own registry file, where odoo-pg is acme's alone.
  const su = await p.cp.pool.connect();
  try {
    await su.query('alter table ops.environments disable trigger environments_guard_infra');
    await su.query(`update ops.environments set db_server = $1 where name = 'evil-dev'`, [DB_SERVER]);
    await su.query('alter table ops.environments enable trigger environments_guard_infra');
  } finally {
    su.release();
  }
  try {
    for (const kind of ['backup', 'health']) {
      const run = await evilRun('evil-dev', kind);
      assert.equal(run.status, 'failed', kind);
      assert.match(run.error!, /the database server "odoo-pg" of the registry is not bound to project evil/, kind);
      assert.ok(!run.error!.includes(p.password));
    }
    // A restore naming a backup evil does not have is not even queued.
    const restore = await evil('POST', '/environments/evil-dev/runs', { kind: 'restore', params: { backup: '00000000-0000-4000-8000-000000000001' } });
    assert.equal(restore.status, 400, JSON.stringify(restore.body));
    assert.match(restore.body.error.message, /there is no backup 00000000-0000-4000-8000-000000000001 in project evil/);
    assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.backups b join ops.projects p on p.id = b.project_id where p.slug = 'evil'`)).rows[0].n, 0);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'acme_prod'), prodBefore, 'acme\'s production is untouched');
  } finally {
    const c = await p.cp.pool.connect();
    await c.query('alter table ops.environments disable trigger environments_guard_infra');
    await c.query(`update ops.environments set db_server = 'evil-pg', db_name = 'evil_dev' where name = 'evil-dev'`);
    await c.query('alter table ops.environments enable trigger environments_guard_infra');
    c.release();
  }
});

test('a deploy runs only the registry\'s odoo-bin, as an unprivileged user, without the server\'s secrets; repositories are the registry\'s', async () => {
  // Any path or URL as the repository: refused (not one of evil's), and git's dangerous transports with it.
  for (const repoUrl of ['ext::sh -c touch% /tmp/pwned', `${evilRepo}/../../../addons.git`, '--upload-pack=touch /tmp/pwned']) {
    assert.equal((await evil('PUT', '/git', { repoUrl })).status, 400, repoUrl);
  }
  for (const repoUrl of [join(p.scratch, 'addons.git'), 'ext::sh%20-c%20touch%25%20/tmp/pwned', `file://${p.cp.home}`, 'https://github.com/acme/addons']) {
    const r = await evil('PUT', '/git', { repoUrl });
    assert.equal(r.status, 403, `${repoUrl}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.message, /is not allowed for project evil/);
  }
  assert.equal((await evil('PUT', '/git', { repoUrl: evilRepo })).status, 200);
  // A binary of one's choosing is no longer a deploy target field; another project's runtime is unknown.
  const binary = await evil('PUT', '/environments/evil-dev/deploy-target', { kind: 'local', odooBin: join(evilWork, 'odoo-bin'), httpPort: 9999 });
  assert.equal(binary.status, 400, JSON.stringify(binary.body));
  const theirs = await evil('PUT', '/environments/evil-dev/deploy-target', { runtime: 'acme-odoo' });
  assert.equal(theirs.status, 400);
  assert.match(theirs.body.error.message, /evil has no runtime "acme-odoo"/);
  const outOfRange = await evil('PUT', '/environments/evil-dev/deploy-target', { runtime: 'evil-odoo', httpPort: 22 });
  assert.equal(outOfRange.status, 400);
  assert.match(outOfRange.body.error.message, /runs Odoo on ports \d+ to \d+/);
  const set = await evil('PUT', '/environments/evil-dev/deploy-target', { runtime: 'evil-odoo' });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  const port = (set.body as C.Environment).runtime!.httpPort!;

  const run = await evilRun('evil-dev', 'deploy', { branch: 'main' });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
  assert.ok(!existsSync(join(p.scratch, 'checkout-binary-ran')), 'the checkout\'s odoo-bin never ran');
  const who = await (await fetch(`http://127.0.0.1:${port}/whoami`)).json() as { uid: number; env: string[]; argv: string[] };
  if (asRoot) {
    assert.notEqual(who.uid, 0, 'Odoo does not run as root');
    assert.equal(who.uid, runUser().uid);
    const checkout = join(p.cp.server.home, 'work', 'checkouts', (await evil('GET', '/environments/evil-dev')).body.id);
    assert.equal(statSync(checkout).uid, runUser().uid, 'git ran as the run user');
  }
  // Its own database password only: none of the worker's other secrets (acme's password variable is set in
  // this process's environment, as an operator's would be).
  assert.ok(process.env[p.passwordVar], 'the operator\'s secret is in the server\'s environment');
  assert.ok(who.env.includes('PGPASSWORD'));
  assert.deepEqual(who.env.filter((k) => /ODOOOPS|GITHUB|SUPABASE|TOKEN|SECRET/.test(k)), [], who.env.join(' '));
  assert.ok(who.argv.includes('--addons-path') && !who.argv.some((a) => a.includes(p.password)));
  // Its log says what ran by name, not the worker's paths.
  const log = await p.logText(run.id);
  assert.match(log, /Odoo: the runtime evil-odoo on this worker, port \d+/);
  assert.ok(!log.includes(p.cp.server.home), log);
});

test('restore, backup and destroy never leave the filestore root: a symbolic link in it is refused, what it points to untouched', async () => {
  const backup = await evilRun('evil-dev', 'backup');
  assert.equal(backup.status, 'succeeded', backup.error ?? '');
  const backupId = (backup.result as { backupId: string }).backupId;
  // evil_dev's filestore becomes a link to a directory outside the root (as code running as the run
  // user could make it).
  const dir = join(p.scratch, 'evil-files', 'evil_dev');
  execFileSync('rm', ['-rf', dir]);
  symlinkSync(join(p.scratch, 'outside'), dir);
  const dbBefore = await fingerprintDb(p.odooPg, 'evil_dev');
  try {
    for (const [kind, params] of [['backup', {}], ['restore', { backup: backupId }], ['destroy', {}], ['health', {}]] as const) {
      const run = await evilRun('evil-dev', kind, params);
      assert.equal(run.status, 'failed', kind);
      assert.match(run.error!, /the filestore evil_dev in the root "evil-files" is a symbolic link; OdooOps only acts on real directories inside a registered root/, kind);
    }
    assert.deepEqual(readdirSync(join(p.scratch, 'outside')), ['canary']);
    assert.equal(readFileSync(join(p.scratch, 'outside', 'canary'), 'utf8'), 'not evil\'s');
    assert.deepEqual(await fingerprintDb(p.odooPg, 'evil_dev'), dbBefore, 'destroy stopped before dropping anything');
    // The row's name cannot climb out either: the database refuses it whoever writes.
    await assert.rejects(p.cp.pool.query(`update ops.environments set db_name = '..' where name = 'evil-dev'`), /environments_db_name_format|is not one this project may use/);
  } finally {
    unlinkSync(dir);
    mkdirSync(dir);
    chownToRunUser(dir);
  }
  // With a real directory again, the same restore works.
  const ok = await evilRun('evil-dev', 'restore', { backup: backupId });
  assert.equal(ok.status, 'succeeded', ok.error ?? '');
});

test("the operator's registry is the only way in: a new entry exists for the API once the file says so", async () => {
  const r = await evil('POST', '/environments', { name: 'late', stage: 'development', database: { server: 'late-pg', name: 'evil_late' } });
  assert.equal(r.status, 400);
  const server = p.registry.databaseServers![DB_SERVER]!;
  await p.addInfra({ databaseServers: { 'late-pg': { ...server, databases: ['evil_*'], projects: ['evil'] } } });
  assert.equal((await evil('POST', '/environments', { name: 'late', stage: 'development', database: { server: 'late-pg', name: 'evil_late' } })).status, 201);
  // Published from the file, and audited as such.
  const published = await p.cp.pool.query(`select details from ops.audit_log where action = 'infrastructure.published' order by id desc limit 1`);
  assert.ok((published.rows[0].details.entries as string[]).includes('database_server:late-pg → evil'));
});
