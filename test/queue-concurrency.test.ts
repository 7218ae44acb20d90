// 8 workers, 2,000 runs over 50 environments: every run executed exactly once, and never two running
// runs on one environment at the same time.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { asUser, createPool } from '../server/db/session.ts';
import { Worker } from '../server/worker/worker.ts';
import { closeFixtures, executors } from './fixtures/executors.ts';
import { eventually, seedProject, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

let cp: TestControlPlane;
before(async () => {
  cp = await startControlPlane({ worker: false });
  process.env.ODOOOPS_TEST_RECORD_URL = cp.server.databaseUrl;
  await cp.pool.query(`create table test_exec_log (run_id bigint not null, environment_id uuid not null,
    started_at timestamptz not null, finished_at timestamptz not null, pid int not null)`);
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

test('8 workers drain 2,000 runs on 50 environments: each exactly once, one at a time per environment', async () => {
  const admin = randomUUID();
  const envs = Array.from({ length: 50 }, (_, i) => ({ name: `env-${i}`, stage: 'development' as const }));
  const { envIds } = await seedProject(cp.pool, admin, 'concurrency', envs);
  const envList = Object.values(envIds);
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"test.record"}]')`);
  // Queued through ops.queue_run as the service role, as the server's own scheduler would.
  await asUser(cp.pool, { sub: admin, role: 'service_role' }, (c) =>
    c.query(
      `select ops.queue_run(($1::uuid[])[1 + (g % 50)], 'test.record', jsonb_build_object('sleepMs', g % 3)) from generate_series(0, 1999) g`,
      [envList],
    ),
  );

  // Watch the invariant from outside while the workers run.
  let maxRunningPerEnv = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const { rows } = await cp.pool.query(`select coalesce(max(n), 0)::int as m from (select count(*) n from ops.runs where status = 'running' group by environment_id) s`);
      maxRunningPerEnv = Math.max(maxRunningPerEnv, rows[0].m);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const pools = Array.from({ length: 8 }, () => createPool(cp.server.databaseUrl, 4));
  const workers = pools.map((pool, i) => new Worker({ pool, databaseUrl: cp.server.databaseUrl, executors, id: `w${i}`, concurrency: 3, leaseSeconds: 30 }));
  const t0 = Date.now();
  await Promise.all(workers.map((w) => w.start()));
  await eventually('all runs finished', async () => {
    const { rows } = await cp.pool.query(`select count(*)::int n from ops.runs where status in ('queued', 'running')`);
    return rows[0].n === 0;
  }, 180_000);
  const seconds = (Date.now() - t0) / 1000;
  watching = false;
  await watcher;
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(pools.map((p) => p.end()));

  const status = await cp.pool.query(`select status, count(*)::int n from ops.runs group by status`);
  assert.deepEqual(status.rows, [{ status: 'succeeded', n: 2000 }]);
  const execs = await cp.pool.query(`select count(*)::int total, count(distinct run_id)::int runs from test_exec_log`);
  assert.deepEqual(execs.rows[0], { total: 2000, runs: 2000 }, 'every run executed exactly once');
  const attempts = await cp.pool.query(`select max(attempts)::int m from ops.runs`);
  assert.equal(attempts.rows[0].m, 1, 'no run needed a second attempt');
  // No two executions on one environment overlap in time (recorded by the executors themselves).
  const overlaps = await cp.pool.query(`
    select count(*)::int n from test_exec_log a join test_exec_log b
      on a.environment_id = b.environment_id and a.run_id < b.run_id
     and tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)`);
  assert.equal(overlaps.rows[0].n, 0, 'two runs of one environment overlapped');
  assert.ok(maxRunningPerEnv <= 1, `saw ${maxRunningPerEnv} running runs on one environment`);
  // The first log line of a run names its worker: the work was shared, not done by one.
  const byWorker = await cp.pool.query(`select count(distinct substring(line from 'worker (w[0-9]+)'))::int n from ops.run_logs where seq = 1`);
  assert.ok(byWorker.rows[0].n >= 4, `only ${byWorker.rows[0].n} of 8 workers took runs`);
  const envsFree = await cp.pool.query(`select count(*)::int n from ops.environments where active_run_id is not null`);
  assert.equal(envsFree.rows[0].n, 0, 'every environment is free again');
  const logs = await cp.pool.query(`select count(distinct run_id)::int n from ops.run_logs`);
  assert.equal(logs.rows[0].n, 2000, 'every run has its log');
  console.log(`# 2000 runs by 8 workers in ${seconds.toFixed(1)} s`);
});
