// The worker's log batching against the real ops.append_run_logs: one write in flight at a time,
// batches that grow with the backlog, back-pressure, and nothing lost or reordered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { LogBatcher } from '../server/worker/log-batcher.ts';
import { eventually, seedProject, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

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

test('a tail announcement due while an announcing write is on its way waits for the next gap: no second announcement right after', async () => {
  const batcher = new LogBatcher(cp.pool, runId, 'tester', { announceGapMs: 100, intervalMs: 60_000, minGapMs: 0 });
  const inside = batcher as unknown as { write: (b: unknown[], announce: boolean) => Promise<void>; lastAnnounceAt: number };
  const real = inside.write.bind(batcher);
  const announced: number[] = [];
  let hold: Promise<void> | null = null;
  inside.write = async (b, announce) => {
    if (announce) announced.push(performance.now());
    if (hold) await hold;
    await real(b, announce);
  };
  await batcher.log('announced at once');
  await batcher.flush();
  await batcher.log('left for the tail timer');
  await batcher.flush();
  assert.equal(announced.length, 1, 'the second write is not announced (within the gap)');
  // The next write is decided just after the tail timer became due, before it could run (the event loop
  // was busy), and is held on its way: the timer runs meanwhile.
  let release!: () => void;
  hold = new Promise((r) => (release = r));
  await new Promise((r) => setTimeout(r, Math.max(0, inside.lastAnnounceAt + 80 - performance.now())));
  while (performance.now() < inside.lastAnnounceAt + 110) { /* busy */ }
  await batcher.log('announced by the write the timer raced');
  const draining = batcher.flush();
  assert.equal(announced.length, 2, 'this write announces');
  await new Promise((r) => setTimeout(r, 30));
  hold = null;
  release();
  await draining;
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(announced.length, 2, `announcements ${announced.map((t) => (t - announced[0]!).toFixed(0)).join(', ')} ms after the first: one more came right after the raced one`);
  await batcher.close();
});

test('announcements are spaced by announceGapMs, and the last lines are announced by themselves soon after', async () => {
  // Every broadcast is kept (a gateway watching '*'), so the messages can be counted.
  await cp.pool.query(`insert into realtime.odooops_gateway_topics (topic, gateway) values ('*', 'log-batcher test') on conflict do nothing`);
  const topic = `run:${runId}`;
  const announcements = async () => (await cp.pool.query(
    `select (payload->>'first_seq')::int as first, (payload->>'last_seq')::int as last, inserted_at from realtime.messages
     where topic = $1 and event = 'log' order by id`, [topic])).rows as { first: number; last: number; inserted_at: Date }[];
  const before = (await announcements()).length;
  const { rows: [{ log_seq: start }] } = await cp.pool.query('select log_seq::int from ops.runs where id = $1', [runId]);
  const batcher = new LogBatcher(cp.pool, runId, 'tester', { announceGapMs: 250, intervalMs: 20, minGapMs: 20 });
  // Lines for ~2 s, in small bursts: the batcher writes ~every 20 ms (so ~100 writes), announces far fewer.
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < 2000) {
    for (let k = 0; k < 20; k++) await batcher.log(`paced ${++i}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const printedFor = (Date.now() - t0) / 1000;
  const lastLineAt = Date.now();
  // Not closed: the tail timer alone announces what the last writes left unannounced.
  const last = start + i;
  const tail = await eventually('the last lines announced', async () => (await announcements()).at(-1)?.last === last ? Date.now() : null, 5000);
  assert.ok(tail - lastLineAt < 1000, `announced ${tail - lastLineAt} ms after the last line`);
  const mine = (await announcements()).slice(before);
  assert.ok(mine.length <= 4 * printedFor + 3, `${mine.length} announcements in ${printedFor.toFixed(1)} s`);
  assert.ok(mine.length >= 4, `${mine.length} announcements: still live`);
  for (let k = 1; k < mine.length; k++) {
    assert.equal(mine[k]!.first, mine[k - 1]!.last + 1, 'contiguous');
    // inserted_at is when each write's transaction began: ~announceGapMs apart.
    const gap = mine[k]!.inserted_at.getTime() - mine[k - 1]!.inserted_at.getTime();
    assert.ok(gap >= 200, `announcements ${gap} ms apart`);
  }
  assert.equal(mine.at(-1)!.last, last);
  // close() leaves nothing unannounced either.
  await batcher.log('after the tail');
  await batcher.close();
  assert.equal((await announcements()).at(-1)!.last, last + 1);
});
