// The worker's life with a run: woken by NOTIFY, cancelled by a member, surviving a dropped LISTEN
// connection, refusing bad params.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFixtures } from './fixtures/executors.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;

before(async () => {
  // A sweep interval far beyond the test's length: any pickup below is the LISTEN/NOTIFY wake-up.
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts'], sweepIntervalMs: 600_000, leaseSeconds: 3 });
  admin = await cp.user(undefined, { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: 'wk', name: 'Worker' })).status, 201);
  for (const name of ['a', 'b']) {
    assert.equal((await admin.call('POST', '/api/projects/wk/environments', { name, stage: 'development', database: { server: 'test-db', name: `wk_${name}` } })).status, 201);
  }
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

const queue = (env: string, kind: string, params: object = {}) => admin.call('POST', `/api/projects/wk/environments/${env}/runs`, { kind, params });
const getRun = async (id: number) => (await admin.call('GET', `/api/runs/${id}`)).body;
const waitStatus = (id: number, status: string, timeout = 10_000) =>
  eventually(`run ${id} ${status}`, async () => ((await getRun(id)).status === status ? getRun(id) : null), timeout);
const logLines = async (id: number) => (await admin.call('GET', `/api/runs/${id}/logs`)).body.lines.map((l: { line: string }) => l.line) as string[];

test('a queued run is picked up through NOTIFY, not by polling', async () => {
  const t0 = Date.now();
  const r = await queue('a', 'test.block', { blockOn: [] });
  const done = await waitStatus(r.body.id, 'succeeded', 5_000);
  assert.ok(Date.now() - t0 < 5_000);
  const pickup = new Date(done.startedAt).getTime() - new Date(done.queuedAt).getTime();
  console.log(`# pickup ${pickup} ms, done after ${Date.now() - t0} ms`);
  assert.ok(pickup < 1_000, 'picked up within a second');
});

test('cancelling a running run stops its executor and finishes it as cancelled', async () => {
  const r = await queue('a', 'test.block', { blockOn: [1] });
  await waitStatus(r.body.id, 'running');
  await eventually('the executor started', async () => (await logLines(r.body.id)).some((l) => l.startsWith('started attempt')));
  const cancel = await admin.call('POST', `/api/runs/${r.body.id}/cancel`);
  assert.equal(cancel.status, 200);
  assert.equal(cancel.body.cancelRequested, true);
  const run = await waitStatus(r.body.id, 'cancelled');
  assert.equal(run.error, 'cancelled by a member');
  assert.ok((await logLines(r.body.id)).includes('cancel requested'));
  // The environment is free again: the next run on it proceeds.
  const next = await queue('a', 'test.block', { blockOn: [] });
  await waitStatus(next.body.id, 'succeeded');
  const again = await admin.call('POST', `/api/runs/${r.body.id}/cancel`);
  assert.equal(again.status, 409);
  assert.match(again.body.error.message, /already finished \(cancelled\)/);
});

test('a queued run behind a busy environment is cancelled at once', async () => {
  const blocker = await queue('b', 'test.block', { blockOn: [1] });
  await waitStatus(blocker.body.id, 'running');
  const waiting = await queue('b', 'test.block', { blockOn: [] });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getRun(waiting.body.id)).status, 'queued', 'one run per environment: it waits');
  const c = await admin.call('POST', `/api/runs/${waiting.body.id}/cancel`);
  assert.equal(c.body.status, 'cancelled');
  await admin.call('POST', `/api/runs/${blocker.body.id}/cancel`);
  await waitStatus(blocker.body.id, 'cancelled');
  assert.equal((await getRun(waiting.body.id)).attempts, 0, 'it never ran');
});

test('a run with params its executor rejects fails with a clear message', async () => {
  const r = await queue('a', 'test.block', { blockOn: 'soon' });
  const run = await waitStatus(r.body.id, 'failed');
  assert.match(run.error, /^invalid params for test\.block: blockOn: /);
  const f = await queue('a', 'test.fail', { message: 'the disk is full' });
  const failed = await waitStatus(f.body.id, 'failed');
  assert.equal(failed.error, 'the disk is full');
  assert.deepEqual((await logLines(f.body.id)).slice(-2), ['about to fail', 'failed: the disk is full']);
});

test('a dropped LISTEN connection is re-established and the worker is woken again', async () => {
  const killed = await cp.pool.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'odooops-worker %'`);
  assert.ok(killed.rowCount! >= 1, 'the worker had a LISTEN connection');
  await eventually('the worker listens again', async () => {
    const { rows } = await cp.pool.query(`select count(*)::int n from pg_stat_activity where application_name like 'odooops-worker %'`);
    return rows[0].n >= 1;
  });
  const r = await queue('a', 'test.block', { blockOn: [] });
  await waitStatus(r.body.id, 'succeeded', 5_000);
});
