// Retrying a failed run (POST /api/runs/:id/retry): the same run, its next attempt, its approval while
// valid; and every way to abuse that: other parameters, someone else's project, a role that may not
// queue there, a run that did not fail, an expired approval, the approval used for another run.
// No worker: each run's failure is set in SQL (what a worker's finish_run writes), so the test is about
// the retry alone; the real kill -9 and retry of restores and clones is in crash-odoo.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { addMember, seedProject, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let alice: TestUser; // admin, queues the restore
let bob: TestUser; // admin, approves it
let dev: TestUser; // developer of the project
let stranger: TestUser; // admin of another project
const slug = 'retry';

before(async () => {
  cp = await startControlPlane({ worker: false });
  await cp.pool.query(`select ops.register_run_kinds('[{"kind": "restore"}, {"kind": "backup"}]')`);
  alice = await cp.user('alice@example.invalid');
  bob = await cp.user('bob@example.invalid');
  dev = await cp.user('dev@example.invalid');
  stranger = await cp.user('stranger@example.invalid');
  const { projectId } = await seedProject(cp.pool, alice.id, slug, [{ name: 'prod', stage: 'production' }, { name: 'staging', stage: 'staging' }]);
  await addMember(cp.pool, projectId, bob.id, 'admin');
  await addMember(cp.pool, projectId, dev.id, 'developer');
  await seedProject(cp.pool, stranger.id, 'elsewhere', [{ name: 'prod', stage: 'production' }]);
});
after(async () => {
  await cp?.close();
});

const runRow = async (id: number) => (await cp.pool.query('select * from ops.runs where id = $1', [id])).rows[0];
const logText = async (id: number) => (await cp.pool.query(`select string_agg(line, E'\\n' order by seq) t from ops.run_logs where run_id = $1`, [id])).rows[0].t as string;
/** What a worker's finish_run leaves after a failed attempt. */
const fail = (id: number, attempts = 1) => cp.pool.query(
  `update ops.runs set status = 'failed', attempts = $2, error = 'pg_restore: connection lost', finished_at = now() where id = $1`, [id, attempts]);

/** A backup of production (a row is what queue-time checks look at; no run here reads its files). */
async function newBackup(): Promise<string> {
  const { rows } = await cp.pool.query(
    `insert into ops.backups (project_id, environment_id, kind, location) select project_id, id, 'manual', 'file:/nowhere'
     from ops.environments where name = 'prod' and project_id = (select id from ops.projects where slug = $1) returning id`, [slug]);
  return rows[0].id;
}

async function approvedRestore(params: object): Promise<{ approvalId: string; runId: number }> {
  const req = await alice.call('POST', `/api/projects/${slug}/environments/prod/approvals`, { kind: 'restore', params });
  assert.equal(req.status, 201, JSON.stringify(req.body));
  const ok = await bob.call('POST', `/api/approvals/${req.body.id}/approve`);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const q = await alice.call('POST', `/api/projects/${slug}/environments/prod/runs`, { kind: 'restore', params, approvalId: req.body.id });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  return { approvalId: req.body.id, runId: q.body.id };
}

test('a failed production restore is retried as its next attempt with its approval, by the approver too', async () => {
  const params = { backup: await newBackup() };
  const { approvalId, runId } = await approvedRestore(params);
  await fail(runId);
  const r = await bob.call('POST', `/api/runs/${runId}/retry`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'queued');
  const row = await runRow(runId);
  assert.equal(row.status, 'queued');
  assert.equal(row.approval_id, approvalId, 'the run keeps its approval');
  assert.deepEqual(row.params, params);
  assert.equal(row.attempts, 1, 'the attempt count goes on');
  assert.equal(row.max_attempts, 4, 'one more try of 3 attempts');
  assert.equal(row.error, null);
  assert.equal(row.finished_at, null);
  assert.match(await logText(runId), new RegExp(`retried by bob@example.invalid: queued again for attempt 2 of 4 with approval ${approvalId}`));
  const audit = await cp.pool.query(`select actor from ops.audit_log where action = 'runs.retried' and target = $1`, [`runs:${runId}`]);
  assert.deepEqual(audit.rows.map((a) => a.actor), [bob.id]);

  // A second try after it fails again: the budget is the run's own, not the grown max_attempts.
  await fail(runId, 4);
  assert.equal((await alice.call('POST', `/api/runs/${runId}/retry`)).status, 200);
  assert.equal((await runRow(runId)).max_attempts, 7);
  await cp.pool.query(`update ops.runs set status = 'cancelled' where id = $1`, [runId]);
});

test('requeues after a lost lease keep the approval: the run is claimed again without a new one', async () => {
  const { approvalId, runId } = await approvedRestore({ backup: await newBackup() });
  const claimed = await cp.pool.query(`select * from ops.claim_run('dead-worker', 1, array['restore'])`);
  assert.equal(claimed.rows[0].id, runId);
  await cp.pool.query(`update ops.runs set lease_expires_at = now() - interval '1 second' where id = $1`, [runId]);
  assert.equal((await cp.pool.query('select ops.recover_expired_runs() n')).rows[0].n, 1);
  const again = await cp.pool.query(`select * from ops.claim_run('rescuer', 30, array['restore'])`);
  assert.equal(again.rows[0].id, runId, 'attempt 2 is claimed');
  assert.equal(again.rows[0].attempts, 2);
  assert.equal(again.rows[0].approval_id, approvalId);
  await cp.pool.query(`select ops.finish_run($1, 'rescuer', 'failed', 'x')`, [runId]);
});

test('abuse: a retry cannot change parameters, approval or attempts; runs cannot be edited directly', async () => {
  const params = { backup: await newBackup() };
  const { approvalId, runId } = await approvedRestore(params);
  await fail(runId);
  for (const body of [{ params: { backup: randomUUID() } }, { approvalId: randomUUID() }, { maxAttempts: 20 }]) {
    const r = await bob.call('POST', `/api/runs/${runId}/retry`, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
  }
  assert.equal((await runRow(runId)).status, 'failed', 'nothing was queued');
  // Straight at the database as a project admin: the run's row cannot be written.
  for (const sql of [`update ops.runs set params = '{"backup": "${randomUUID()}"}', status = 'queued' where id = ${runId}`,
                     `insert into ops.runs (project_id, environment_id, kind, params, approval_id) select project_id, environment_id, kind, params, approval_id from ops.runs where id = ${runId}`]) {
    await assert.rejects(cp.sql(bob, (c) => c.query(sql)), /permission denied|row-level security|already used/, sql);
  }
  // The approval stays the run's: another run cannot use it, even with the same parameters.
  const q = await alice.call('POST', `/api/projects/${slug}/environments/prod/runs`, { kind: 'restore', params, approvalId });
  assert.equal(q.status, 403, JSON.stringify(q.body));
  assert.match(q.body.error.message, /already used by run/);
  assert.deepEqual((await runRow(runId)).params, params);
});

test('abuse: who may not queue there may not retry; runs that did not fail are refused', async () => {
  const { runId } = await approvedRestore({ backup: await newBackup() });
  await fail(runId);
  const asDev = await dev.call('POST', `/api/runs/${runId}/retry`);
  assert.equal(asDev.status, 403, JSON.stringify(asDev.body));
  assert.match(asDev.body.error.message, /cannot retry runs on production/);
  const asStranger = await stranger.call('POST', `/api/runs/${runId}/retry`);
  assert.equal(asStranger.status, 404, 'another project\'s run is not even seen');
  assert.equal((await runRow(runId)).status, 'failed');

  // A developer may retry where a developer may queue... not on staging (testers and admins only).
  const st = await alice.call('POST', `/api/projects/${slug}/environments/staging/runs`, { kind: 'backup', params: {} });
  assert.equal(st.status, 201);
  await fail(st.body.id);
  assert.equal((await dev.call('POST', `/api/runs/${st.body.id}/retry`)).status, 403);
  assert.equal((await alice.call('POST', `/api/runs/${st.body.id}/retry`)).status, 200);
  const queued = await alice.call('POST', `/api/runs/${st.body.id}/retry`);
  assert.equal(queued.status, 409, 'a queued run is not retried');
  assert.match(queued.body.error.message, /is queued: only a failed run can be retried/);

  await cp.pool.query(`update ops.runs set status = 'succeeded', finished_at = now() where id = $1`, [st.body.id]);
  const done = await alice.call('POST', `/api/runs/${st.body.id}/retry`);
  assert.equal(done.status, 409, JSON.stringify(done.body));
  assert.match(done.body.error.message, /is succeeded: only a failed run can be retried/);
  assert.equal((await runRow(st.body.id)).status, 'succeeded');
});

test('an expired approval is not carried over: the retry is refused and says what to do', async () => {
  const { approvalId, runId } = await approvedRestore({ backup: await newBackup() });
  await fail(runId);
  await cp.pool.query(`update ops.approvals set decided_at = now() - interval '25 hours' where id = $1`, [approvalId]);
  const r = await bob.call('POST', `/api/runs/${runId}/retry`);
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.match(r.body.error.message, /approval of run \d+ expired at/);
  assert.match(JSON.stringify(r.body), /Request a new approval/);
  assert.equal((await runRow(runId)).status, 'failed');
});

test('a retry whose backup is gone meanwhile is refused as a queue would be, and nothing is queued', async () => {
  const params = { backup: await newBackup() };
  const { runId } = await approvedRestore(params);
  await fail(runId);
  await cp.pool.query('delete from ops.backups where id = $1', [params.backup]);
  const r = await alice.call('POST', `/api/runs/${runId}/retry`);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'invalid_params');
  assert.match(r.body.error.message, new RegExp(`there is no backup ${params.backup}`));
  const row = await runRow(runId);
  assert.equal(row.status, 'failed', 'the retry was rolled back');
  assert.equal(row.max_attempts, 3);
  assert.doesNotMatch((await logText(runId)) ?? '', /retried by/);
});
