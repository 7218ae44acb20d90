// A control plane behind a connection pooler: the worker and the Realtime gateway LISTEN and the
// migration runner holds a session lock, which a transaction pooler (Supabase's port 6543, PgBouncer's
// pool_mode = transaction) cannot keep. A server refuses one at start with what to use instead, and
// starts through a session pooler. Real PgBouncer in front of Debian's PostgreSQL 15.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { startServer } from '../server/app.ts';
import { TransactionPoolerError, transactionPoolerHint } from '../server/db/session-check.ts';
import { closeFixtures } from './fixtures/executors.ts';
import { eventually, seedProject, startControlPlane, tempHome } from './helpers/control-plane.ts';
import { startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';
import { startPgBouncer, type PgBouncer } from './helpers/pgbouncer.ts';

const run = promisify(execFile);
let pgsrv: DebianPostgres;
let transaction: PgBouncer;
let session: PgBouncer;
const homes: string[] = [];
const home = () => {
  const h = tempHome();
  homes.push(h);
  return h;
};

before(async () => {
  pgsrv = await startDebianPostgres();
  const su = await pgsrv.client();
  await su.query('create database via_transaction');
  await su.query('create database via_session');
  await su.end();
  transaction = await startPgBouncer(pgsrv, 'transaction', ['postgres']);
  session = await startPgBouncer(pgsrv, 'session', ['postgres']);
});
after(async () => {
  await closeFixtures();
  await transaction?.stop();
  await session?.stop();
  await pgsrv?.stop();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

const ADVICE = /direct connection .*db\.<ref>\.supabase\.co:5432.* or the session pooler .*port 5432.*pool_mode = session/;

test('Supabase\'s transaction pooler address is refused before connecting; its session pooler and direct address are not', async () => {
  const url = 'postgres://postgres.abcdefghijklmnopqrst:secret@aws-0-eu-central-1.pooler.supabase.com:6543/postgres';
  // This machine cannot resolve Supabase's hosts: a connection attempt would fail with a DNS error.
  await assert.rejects(startServer({ home: home(), databaseUrl: url, log: () => {} }), (err: Error) => {
    assert.ok(err instanceof TransactionPoolerError, String(err));
    assert.match(err.message, /^aws-0-eu-central-1\.pooler\.supabase\.com:6543 is Supabase's transaction pooler\. OdooOps needs sessions of its own/);
    assert.match(err.message, ADVICE);
    return true;
  });
  assert.equal(transactionPoolerHint(url.replace(':6543/', ':5432/')), null, 'the session pooler');
  assert.equal(transactionPoolerHint('postgres://postgres:secret@db.abcdefghijklmnopqrst.supabase.co:5432/postgres'), null, 'the direct connection');
  assert.equal(transactionPoolerHint('postgres://u@evil-pooler.supabase.com.example.org:6543/x'), null, 'only Supabase\'s own host');
});

test('through PgBouncer in transaction mode the server refuses to start, and nothing is migrated', async () => {
  const url = transaction.url('postgres', 'via_transaction');
  await assert.rejects(startServer({ home: home(), databaseUrl: url, log: () => {} }), (err: Error) => {
    assert.ok(err instanceof TransactionPoolerError, String(err));
    assert.match(err.message, /a notification sent on one connection did not reach another that was listening \(5 s\): the database URL goes through a transaction pooler/);
    assert.match(err.message, ADVICE);
    return true;
  });
  const db = await pgsrv.client('via_transaction');
  try {
    const { rows } = await db.query(`select to_regnamespace('odooops_migrations') as m, to_regnamespace('ops') as o, to_regnamespace('realtime') as r`);
    assert.deepEqual(rows[0], { m: null, o: null, r: null }, 'refused before the shims and migrations');
  } finally {
    await db.end();
  }

  // `odooops worker` says the same in one message and a hint, without a stack trace.
  const cli = await run(process.execPath, ['server/cli/main.ts', 'worker', '--database-url', url, '--home', home()], { timeout: 60_000 })
    .then(() => ({ code: 0, stderr: '' }), (err) => ({ code: err.code as number, stderr: String(err.stderr) }));
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /^odooops: a notification sent on one connection did not reach another that was listening/m);
  assert.match(cli.stderr, ADVICE);
  assert.doesNotMatch(cli.stderr, /\n\s+at /, 'no stack trace');
});

test('through PgBouncer in session mode the server starts, and NOTIFY wakes its worker', async () => {
  // The sweep, the worker's only other wake-up, is two minutes away: a run done within seconds was
  // claimed because its notification arrived through the pooler.
  const cp = await startControlPlane({ databaseUrl: session.url('postgres', 'via_session'), executorModules: ['test/fixtures/executors.ts'], sweepIntervalMs: 120_000 });
  try {
    assert.equal(cp.server.mode, 'external');
    const admin = await cp.user();
    await seedProject(cp.pool, admin.id, 'pooled', [{ name: 'dev', stage: 'development' }]);
    const started = Date.now();
    const queued = await admin.call('POST', '/api/projects/pooled/environments/dev/runs', { kind: 'test.lines', params: { count: 2 } });
    assert.equal(queued.status, 201, JSON.stringify(queued.body));
    await eventually('the run succeeded', async () => (await admin.call('GET', `/api/runs/${queued.body.id}`)).body.status === 'succeeded', 20_000);
    assert.ok(Date.now() - started < 20_000);
    const { rows } = await cp.pool.query('select count(*)::int as n from odooops_migrations.applied');
    assert.ok(rows[0].n > 0);
  } finally {
    await cp.close();
  }
});
