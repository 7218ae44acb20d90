// The built-in `health` executor end to end: environments created through the API, runs queued through
// the API and executed by the control plane's own worker against a real Debian PostgreSQL 15 holding an
// Odoo-shaped database, reached with a login role whose password the worker finds where the operator's
// registry says (an environment variable, a file).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type * as C from '../contract/index.ts';
import { eventually, chownToRunUser, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';
import { createOdooShapedDb, requirePasswordsOverTcp, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

const SLUG = 'health-e2e';
const ROLE = 'odoo_health';
const PASSWORD = 'Sup3r-secret-Pw';
// Unique per process so a variable of the same name in the caller's environment cannot interfere.
const PW_VAR = `ODOOOPS_DB_TEST_HEALTH_PW_${process.pid}`;
const UNSET_VAR = `ODOOOPS_DB_TEST_HEALTH_UNSET_${process.pid}`;

let cp: TestControlPlane | undefined;
let odooPg: DebianPostgres | undefined;
let admin: TestUser;
let scratch: string;
let filestore: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-health-'));
  chmodSync(scratch, 0o755);
  // Both start at once; whichever started is closed in after() even when the other failed.
  const started = await Promise.allSettled([
    startControlPlane().then((c) => (cp = c)),
    startDebianPostgres().then((p) => (odooPg = p)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  if (!cp || !odooPg) throw new Error('the control plane or the Odoo PostgreSQL did not start');
  await requirePasswordsOverTcp(odooPg);
  await createOdooShapedDb(odooPg, 'odoo_prod', { user: ROLE, password: PASSWORD });
  const su = await odooPg.client();
  try {
    await su.query(`create database not_odoo owner ${pg.escapeIdentifier(ROLE)}`);
  } finally {
    await su.end();
  }

  // A filestore as Odoo lays it out: a directory per hash prefix, plus a stray file.
  filestore = join(scratch, 'filestore', 'odoo_prod');
  for (const d of ['0a', '1b']) {
    const dir = join(filestore, d);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${d}cafe`), 'attachment');
  }
  writeFileSync(join(filestore, 'README'), 'not an attachment');
  mkdirSync(join(scratch, 'empty-root'));
  chownToRunUser(scratch);

  process.env[PW_VAR] = PASSWORD;
  delete process.env[UNSET_VAR];
  // The operator's registry: one server, declared with its password in a variable, in a file (any
  // path: the operator chose it), with a wrong one, with an unset variable; and two filestore roots.
  const pwFile = join(cp.home, 'odoo-password');
  writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
  const wrongFile = join(cp.home, 'wrong-password');
  writeFileSync(wrongFile, 'not-the-password\n', { mode: 0o600 });
  const server = (password: string, projects = [SLUG]) => ({ host: '127.0.0.1', port: odooPg!.port, user: ROLE, password, projects });
  await cp.setInfra({
    databaseServers: {
      'health-env': server(`env:${PW_VAR}`), 'health-env2': server(`env:${PW_VAR}`), 'health-file': server(`file:${pwFile}`),
      'health-wrong': server(`file:${wrongFile}`), 'health-unset': server(`env:${UNSET_VAR}`), elsewhere: server(`env:${PW_VAR}`, ['another-project']),
    },
    filestoreRoots: { main: { path: join(scratch, 'filestore'), projects: [SLUG] }, empty: { path: join(scratch, 'empty-root'), projects: [SLUG] } },
  });

  admin = await cp.user(undefined, { instanceAdmin: true });
  const created = await admin.call('POST', '/api/projects', { slug: SLUG, name: 'Health end to end' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
});

after(async () => {
  delete process.env[PW_VAR];
  await cp?.close();
  await odooPg?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/**
 * The helper initialises the cluster with trust authentication, where any password is accepted. Make
 * the login role authenticate for real (SCRAM), keeping trust for the postgres superuser the helper uses.
 */
async function createEnv(name: string, database: Record<string, unknown>, filestoreRoot?: string): Promise<C.Environment> {
  const res = await admin.call('POST', `/api/projects/${SLUG}/environments`, {
    name, stage: 'development', database, ...(filestoreRoot ? { filestore: filestoreRoot } : {}),
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as C.Environment;
}

async function runHealth(env: string): Promise<C.Run> {
  const queued = await admin.call('POST', `/api/projects/${SLUG}/environments/${env}/runs`, { kind: 'health' });
  assert.equal(queued.status, 201, JSON.stringify(queued.body));
  const id = (queued.body as C.Run).id;
  return eventually(`health run ${id} on ${env} to finish`, async () => {
    const r = await admin.call('GET', `/api/runs/${id}`);
    assert.equal(r.status, 200);
    const run = r.body as C.Run;
    return ['succeeded', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
  }, 30_000);
}

async function logsOf(id: number): Promise<C.LogLine[]> {
  const res = await admin.call('GET', `/api/runs/${id}/logs`);
  assert.equal(res.status, 200);
  return (res.body as C.LogPage).lines;
}

function assertIncreasingSeq(lines: C.LogLine[]) {
  assert.ok(lines.length > 0, 'the run has a log');
  for (let i = 1; i < lines.length; i++) {
    assert.ok(lines[i]!.seq > lines[i - 1]!.seq, `seq ${lines[i]!.seq} follows ${lines[i - 1]!.seq}`);
  }
}

const db = (server: string, name: string) => ({ server, name });

test('health of an Odoo database on a server whose password is in a variable, and its filestore', async () => {
  const env = await createEnv('prod-copy', db('health-env', 'odoo_prod'), 'main');
  assert.deepEqual(env.database, { server: 'health-env', name: 'odoo_prod' });
  assert.equal(env.filestore, 'main');

  const run = await runHealth('prod-copy');
  assert.equal(run.status, 'succeeded', `error: ${run.error}`);
  assert.equal(run.error, null);
  assert.equal(run.attempts, 1);
  const result = run.result as Record<string, any>;
  assert.equal(result.odooVersion, '17.0.1.3');
  assert.equal(result.modulesInstalled, 4, 'base, web, mail and account; crm is uninstalled');
  assert.equal(result.modulesPending, 0);
  assert.equal(result.neutralized, false);
  assert.match(result.postgresVersion, /^15\./);
  assert.equal(typeof result.databaseBytes, 'number');
  assert.ok(result.databaseBytes > 1024 * 1024, `database size ${result.databaseBytes}`);
  assert.deepEqual(result.filestore, { root: 'main', entries: 3 });

  const lines = await logsOf(run.id);
  assertIncreasingSeq(lines);
  assert.equal(lines.at(-1)!.seq, run.lastSeq, "the run's lastSeq is its last log line");
  const text = lines.map((l) => l.line);
  assert.equal(lines[0]!.stream, 'system');
  assert.match(lines[0]!.line, /^health on prod-copy \(development\), attempt 1 of 3/);
  assert.ok(text.some((l) => l === 'connecting to odoo_prod on the database server health-env'), text.join('\n'));
  assert.ok(text.some((l) => /^PostgreSQL 15\./.test(l)), text.join('\n'));
  assert.ok(text.includes('Odoo 17.0.1.3: 4 modules installed'), text.join('\n'));
  assert.ok(text.includes('filestore odoo_prod in the root main: 3 top-level entries'), text.join('\n'));
  assert.ok(!text.some((l) => l.includes(scratch)), 'the worker\'s paths are not in the log');
  assert.equal(text.at(-1), 'healthy');
  assert.ok(!text.some((l) => l.includes(PASSWORD)), 'the password never reaches the log');
  assert.ok(!lines.some((l) => l.stream === 'stderr'), 'a healthy database logs no warnings');
});

test('a password in a file works too, and a pending module is reported', async () => {
  // A second Odoo database with a module half way through an upgrade, to see the warning path.
  const su = await odooPg!.client();
  try {
    await su.query(`create database odoo_staging with template odoo_prod owner ${pg.escapeIdentifier(ROLE)}`);
  } finally {
    await su.end();
  }
  const st = await odooPg!.client('odoo_staging');
  try {
    await st.query(`update ir_module_module set state = 'to upgrade' where name = 'mail'`);
    await st.query(`insert into ir_config_parameter (key, value) values ('database.is_neutralized', 'true')`);
  } finally {
    await st.end();
  }
  await createEnv('staging-copy', db('health-file', 'odoo_staging'));

  const run = await runHealth('staging-copy');
  assert.equal(run.status, 'succeeded', `error: ${run.error}`);
  const result = run.result as Record<string, any>;
  assert.equal(result.odooVersion, '17.0.1.3');
  assert.equal(result.modulesInstalled, 3);
  assert.equal(result.modulesPending, 1);
  assert.equal(result.neutralized, true);
  assert.equal(result.filestore, null, 'no filestore configured');

  const lines = await logsOf(run.id);
  assertIncreasingSeq(lines);
  const text = lines.map((l) => l.line);
  assert.ok(text.includes('Odoo 17.0.1.3: 3 modules installed, 1 waiting for install/upgrade/removal'), text.join('\n'));
  assert.ok(text.some((l) => /^database size [\d.]+ MiB, neutralized$/.test(l)), text.join('\n'));
  const warning = lines.find((l) => l.stream === 'stderr');
  assert.match(warning?.line ?? '', /1 module\(s\) are in a pending state/);
  assert.equal(text.at(-1), 'healthy');
});

test('failures are clear: not an Odoo database, wrong password, unset variable, missing filestore', async () => {
  await Promise.all([
    createEnv('empty-db', db('health-env', 'not_odoo')),
    createEnv('wrong-pw', db('health-wrong', 'odoo_prod')),
    createEnv('unset-var', db('health-unset', 'odoo_prod')),
    createEnv('no-filestore', db('health-env2', 'odoo_prod'), 'empty'),
  ]);
  const [empty, wrong, unset, noFs] = await Promise.all(['empty-db', 'wrong-pw', 'unset-var', 'no-filestore'].map(runHealth));

  for (const run of [empty, wrong, unset, noFs]) {
    assert.equal(run!.status, 'failed', `${run!.environment}: ${run!.status}`);
    assert.equal(run!.attempts, 1, 'a failed probe is not retried');
    assert.equal(run!.result, null);
    // The failure is also the last line of the run's log, on stderr.
    const lines = await logsOf(run!.id);
    assertIncreasingSeq(lines);
    assert.deepEqual({ stream: lines.at(-1)!.stream, line: lines.at(-1)!.line }, { stream: 'stderr', line: `failed: ${run!.error}` });
    assert.ok(!lines.some((l) => l.line === 'healthy'), `${run!.environment} must not log "healthy"`);
  }
  assert.match(empty!.error!, /^not_odoo is not an Odoo database \(it has no ir_module_module table\)$/);
  assert.match(wrong!.error!, /^cannot connect to the Odoo database odoo_prod: password authentication failed/);
  assert.ok(!wrong!.error!.includes('not-the-password'), 'the wrong password is not echoed');
  // Which variable or file the operator chose is theirs: the run says which server, not where.
  assert.equal(unset!.error, 'the password of database server "health-unset" is not available on this worker (the registry names an environment variable that is not set)');
  assert.equal(noFs!.error, 'the filestore odoo_prod in the root empty is not readable on this worker: ENOENT');
});

test('an environment with a plaintext password is refused and nothing is written', async () => {
  const before = await cp!.pool.query(`select (select count(*)::int from ops.environments) as envs, (select count(*)::int from ops.audit_log) as audit`);
  const attempts: [string, Record<string, unknown>][] = [
    ['password field', { server: 'health-env', name: 'odoo_prod', password: PASSWORD }],
    ['password as a reference', { server: 'health-env', name: 'odoo_prod', passwordRef: PASSWORD }],
    ['password in a reference scheme that does not exist', { server: 'health-env', name: 'odoo_prod', passwordRef: `plain:${PASSWORD}` }],
  ];
  for (const [what, database] of attempts) {
    const res = await admin.call('POST', `/api/projects/${SLUG}/environments`, { name: 'leaky', stage: 'development', database });
    assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'invalid_request', what);
    assert.match(res.body.error.message, /password/i, what);
    assert.ok(!res.body.error.message.includes(PASSWORD), `${what}: the error does not echo the password`);
  }
  const list = await admin.call('GET', `/api/projects/${SLUG}/environments`);
  assert.equal(list.status, 200);
  assert.ok(!(list.body as C.Environment[]).some((e) => e.name === 'leaky'));
  const afterCounts = await cp!.pool.query(`select (select count(*)::int from ops.environments) as envs, (select count(*)::int from ops.audit_log) as audit`);
  assert.deepEqual(afterCounts.rows[0], before.rows[0], 'no environment row and no audit entry was written');
  const leaked = await cp!.pool.query(
    `select (select count(*)::int from ops.environments e where e::text like $1) + (select count(*)::int from ops.audit_log a where a::text like $1) as n`,
    [`%${PASSWORD}%`],
  );
  assert.equal(leaked.rows[0].n, 0, 'the password is stored nowhere');
});

test('environments name only registry servers bound to their project; hosts and password references are not API fields', async () => {
  // A host, a user or a password reference in the request is refused before anything is written.
  for (const database of [
    { server: 'health-env', name: 'odoo_prod', host: 'evil.example' },
    { server: 'health-env', name: 'odoo_prod', passwordRef: 'env:SUPABASE_JWT_SECRET' },
    { name: 'odoo_prod', host: '127.0.0.1', user: ROLE, passwordRef: `file:${join(cp!.home, 'jwt-secret')}` },
  ]) {
    const res = await admin.call('POST', `/api/projects/${SLUG}/environments`, { name: 'steal', stage: 'development', database });
    assert.equal(res.status, 400, JSON.stringify(res.body));
  }
  // A server the registry has, but for another project, is as unknown as one it does not have.
  for (const server of ['elsewhere', 'no-such-server']) {
    const res = await admin.call('POST', `/api/projects/${SLUG}/environments`, { name: 'steal', stage: 'development', database: { server, name: 'odoo_prod' } });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'unknown_infrastructure');
    assert.match(res.body.error.message, new RegExp(`${SLUG} has no database server "${server}"`));
  }
  // The database checks the same for every writer, here the table's owner (the server's own connection).
  await assert.rejects(
    cp!.pool.query(`update ops.environments set db_server = 'elsewhere' where name = 'prod-copy'`),
    /the database server "elsewhere" is not available to this project/,
  );
});
