// The worker's log batching against the real ops.append_run_logs: one write in flight at a time,
// batches that grow with the backlog, back-pressure, and nothing lost or reordered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { LogBatcher } from '../server/worker/log-batcher.ts';
import { seedProject, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let runId: number;

before(async () => {
  cp = await startControlPlane({ worker: false });
  await seedProject(cp.pool, randomUUID(), 'batch', [{ name: 'dev', stage: 'development' }]);
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"x"}]')`);
  await cp.pool.query(`insert into ops.runs (project_id, environment_id, kind) select project_id, id, 'x' from ops.environments`);
  runId = (await cp.pool.query(`select id from ops.claim_run('tester', 60)`)).rows[0].id;
});
after(() => cp?.close());

test('a flood of lines is written by one drain loop, in order, with bounded buffering', async () => {
  const batcher = new LogBatcher(cp.pool, runId, 'tester', { maxBatch: 1000, highWater: 5000 });
  let inFlight = 0;
  let maxInFlight = 0;
  let writes = 0;
  const real = (batcher as unknown as { write: (b: unknown[]) => Promise<void> }).write.bind(batcher);
  (batcher as unknown as { write: (b: unknown[]) => Promise<void> }).write = async (b) => {
    inFlight++;
    writes++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await real(b);
    } finally {
      inFlight--;
    }
  };
  let maxBuffered = 0;
  let sharedDrains = 0;
  const N = 60_000;
  for (let i = 1; i <= N; i++) {
    await batcher.log(`line ${i}`);
    maxBuffered = Math.max(maxBuffered, (batcher as unknown as { buffer: unknown[] }).buffer.length);
    // Flushing while a write is in flight joins that drain instead of queuing one more waiter: the
    // per-line waiting flushes made a 1,000,000-line run slow down as it went.
    if (i % 997 === 0 && inFlight > 0 && batcher.flush() === batcher.flush()) sharedDrains++;
  }
  assert.ok(sharedDrains > 0, 'flushes during a write share one drain');
  await batcher.close();
  assert.equal(maxInFlight, 1, 'one write at a time');
  assert.ok(writes <= N / 1000 + 5, `${writes} writes for ${N} lines`);
  assert.ok(maxBuffered <= 5000, `buffer grew to ${maxBuffered}`);
  const { rows } = await cp.pool.query(
    `select count(*)::int n, min(seq)::int lo, max(seq)::int hi, bool_and(line = 'line ' || seq) ordered from ops.run_logs where run_id = $1`,
    [runId],
  );
  assert.deepEqual(rows[0], { n: N, lo: 1, hi: N, ordered: true });
});
