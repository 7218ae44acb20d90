// Workers and servers that die: kill -9 mid-run, SIGTERM mid-run, and a restart after SIGKILL.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createPool } from '../server/db/session.ts';
import { clusterDir } from '../server/db/embedded.ts';
import { Worker } from '../server/worker/worker.ts';
import { closeFixtures, executors } from './fixtures/executors.ts';
import { call, eventually, seedProject, startControlPlane, tempHome, type TestControlPlane } from './helpers/control-plane.ts';

const CLI = join(import.meta.dirname, '..', 'server', 'cli', 'main.ts');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'executors.ts');
let cp: TestControlPlane;
let envId: string;
const children: ChildProcess[] = [];

function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  children.push(child);
  return Object.assign(child, { output: () => out });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

async function queue(params: object, maxAttempts = 3): Promise<number> {
  const { rows } = await cp.pool.query(
    `insert into ops.runs (project_id, environment_id, kind, params, max_attempts)
     select project_id, id, 'test.block', $2, $3 from ops.environments where id = $1 returning id`,
    [envId, JSON.stringify(params), maxAttempts],
  );
  return rows[0].id;
}

const runRow = async (id: number) => (await cp.pool.query('select * from ops.runs where id = $1', [id])).rows[0];
const logText = async (id: number) => (await cp.pool.query('select string_agg(line, E\'\\n\' order by seq) t from ops.run_logs where run_id = $1', [id])).rows[0].t as string;

function startChildWorker(extra: string[] = []) {
  return spawnCli(['worker', '--database-url', cp.server.databaseUrl, '--executors', FIXTURES, '--lease', '1', '--concurrency', '1', ...extra]);
}

async function waitRunningOn(id: number, child: ChildProcess) {
  return eventually(`run ${id} running on worker pid ${child.pid}`, async () => {
    const r = await runRow(id);
    return r.status === 'running' && String(r.lease_owner).includes(`:${child.pid}:`) && (await logText(id))?.includes('started attempt');
  });
}

before(async () => {
  cp = await startControlPlane({ worker: false });
  const { envIds } = await seedProject(cp.pool, randomUUID(), 'crash', [{ name: 'dev', stage: 'development' }]);
  envId = envIds.dev!;
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await closeFixtures();
  await cp?.close();
});

async function withRescueWorker<T>(fn: () => Promise<T>): Promise<T> {
  const pool = createPool(cp.server.databaseUrl, 3);
  const worker = new Worker({ pool, databaseUrl: cp.server.databaseUrl, executors, id: 'rescuer', leaseSeconds: 1, sweepIntervalMs: 300 });
  await worker.start();
  try {
    return await fn();
  } finally {
    await worker.stop(1000);
    await pool.end();
  }
}

test('kill -9 of a worker mid-run: the lease expires and another worker runs the next attempt', async () => {
  const child = startChildWorker();
  const id = await queue({ blockOn: [1] });
  await waitRunningOn(id, child);
  child.kill('SIGKILL');
  await exited(child);
  assert.equal((await runRow(id)).status, 'running', 'nobody can know yet: the lease has not expired');

  await withRescueWorker(() => eventually(`run ${id} succeeded`, async () => (await runRow(id)).status === 'succeeded'));
  const run = await runRow(id);
  assert.equal(run.attempts, 2);
  assert.equal(run.error, null);
  assert.deepEqual(run.result, { attempt: 2 });
  const log = await logText(id);
  assert.match(log, new RegExp(`worker \\S+:${child.pid}:\\S+ stopped renewing its lease .*queued again for attempt 2 of 3`));
  assert.match(log, /started attempt 2/);
  const env = await cp.pool.query('select active_run_id from ops.environments where id = $1', [envId]);
  assert.equal(env.rows[0].active_run_id, null);
});

test('kill -9 on the last allowed attempt: the run fails with the reason in its log', async () => {
  const child = startChildWorker();
  const id = await queue({ blockOn: [1] }, 1);
  await waitRunningOn(id, child);
  child.kill('SIGKILL');
  await exited(child);
  await withRescueWorker(() => eventually(`run ${id} failed`, async () => (await runRow(id)).status === 'failed'));
  const run = await runRow(id);
  assert.match(run.error, /stopped renewing its lease.*failed after 1 attempts/);
  assert.match(await logText(id), /failed after 1 attempts/);
  assert.equal(run.attempts, 1);
});

test('SIGTERM mid-run: the worker waits its grace period, gives the run back and exits 0', async () => {
  const child = startChildWorker(['--grace', '1']);
  const id = await queue({ blockOn: [1] });
  await waitRunningOn(id, child);
  child.kill('SIGTERM');
  assert.equal(await exited(child), 0, child.output());
  const run = await runRow(id);
  assert.equal(run.status, 'queued');
  assert.equal(run.attempts, 0, 'a released run does not use up an attempt');
  assert.equal(run.lease_owner, null);
  assert.match(await logText(id), /released by worker .* \(the worker shut down before the run finished\); queued again/);
  await cp.pool.query(`update ops.runs set status = 'cancelled' where id = $1`, [id]);
});

test('a server killed with SIGKILL starts again on the same OdooOps directory', async () => {
  const home = tempHome();
  const connectionFile = join(home, 'connection.json');
  const startServerProcess = async () => {
    const child = spawnCli(['server', '--fast'], { ODOOOPS_HOME: home });
    const conn = await eventually('connection.json of the new server', async () => {
      if (!existsSync(connectionFile)) return null;
      const c = JSON.parse(readFileSync(connectionFile, 'utf8'));
      return c.pid === child.pid ? (c as { url: string; token: string }) : null;
    }, 60_000);
    return { child, conn };
  };
  try {
    const first = await startServerProcess();
    const created = await call(first.conn.url, first.conn.token, 'POST', '/api/projects', { slug: 'survivor', name: 'Survivor' });
    assert.equal(created.status, 201);
    first.child.kill('SIGKILL');
    await exited(first.child);
    const pidFile = join(clusterDir(home), 'postmaster.pid');
    assert.ok(existsSync(pidFile), 'the orphaned PostgreSQL is still there');

    const second = await startServerProcess();
    const list = await call(second.conn.url, second.conn.token, 'GET', '/api/projects');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((p: { slug: string }) => p.slug), ['survivor']);
    second.child.kill('SIGTERM');
    assert.equal(await exited(second.child), 0, second.child.output());
    assert.ok(!existsSync(pidFile), 'a SIGTERM stops the embedded PostgreSQL cleanly');
    assert.ok(!existsSync(connectionFile), 'the connection file is removed on a clean stop');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
