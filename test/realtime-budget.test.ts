// The Realtime budget (server/realtime/budget.ts) held by a long run through the real worker, the
// embedded gateway and a real viewer (client/follow.ts): at most LOG_ANNOUNCEMENTS_PER_SECOND
// announcements a second, none larger than LOG_MESSAGE_MAX_BYTES as Supabase would store it, and the
// viewer still gets every line once, in order, with the newest lines announced within ~0.5 s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient } from '../client/api-client.ts';
import { followLogs, type FollowState } from '../client/follow.ts';
import { LOG_ANNOUNCEMENTS_PER_SECOND, LOG_MESSAGE_MAX_BYTES, SUPABASE_ID_BYTES } from '../server/realtime/budget.ts';
import { closeFixtures } from './fixtures/executors.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  admin = await cp.user(undefined, { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: 'budget', name: 'Budget' })).status, 201);
  assert.equal((await admin.call('POST', '/api/projects/budget/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'b' } })).status, 201);
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

test('a 200,000-line run stays within the budget, and its viewer gets every line once, in order', async () => {
  const queue = async (kind: string, params: object) =>
    (await admin.call('POST', '/api/projects/budget/environments/dev/runs', { kind, params })).body.id as number;
  // 20,000 lines a second for ~10 s. Held behind a blocker until the viewer has joined: every announcement is then stored (the local
  // shim stores only what a gateway watches), and counted here.
  const blocker = await queue('test.block', { blockOn: [1] });
  await eventually('the blocker', async () => (await admin.call('GET', `/api/runs/${blocker}`)).body.status === 'running');
  const id = await queue('test.chatty', { lines: 200_000, perTick: 200, tickMs: 10 });
  const api = new ApiClient({ url: cp.server.url, token: admin.token });
  let next = 1;
  let outOfOrder = 0;
  const states: FollowState[] = [];
  const followed = followLogs(api, id, 0, (l) => {
    if (l.seq !== next) outOfOrder++;
    next = l.seq + 1;
  }, { onState: (s) => states.push(s) });
  await eventually('the viewer joined', async () => cp.server.gateway.stats().channels === 1);
  await admin.call('POST', `/api/runs/${blocker}/cancel`);
  assert.equal(await followed, 'succeeded');
  const run = (await admin.call('GET', `/api/runs/${id}`)).body;
  assert.equal(run.lastSeq, 200_001, 'the worker\'s first line and 200,000');
  assert.equal(next - 1, run.lastSeq, 'the viewer got every line');
  assert.equal(outOfOrder, 0, 'once each, in order');
  assert.deepEqual(states, [], 'live all along');

  const { rows } = await cp.pool.query(
    `select m.payload, octet_length(m.payload::text) as bytes, m.inserted_at,
            extract(epoch from m.inserted_at - l.ts) * 1000 as delay_ms
     from realtime.messages m join ops.run_logs l on l.run_id = $1 and l.seq = (m.payload->>'last_seq')::bigint
     where m.topic = $2 and m.event = 'log' order by m.id`,
    [id, `run:${id}`],
  );
  const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
  const bytes = rows.reduce((n, r) => n + r.bytes, 0);
  const delays = rows.map((r) => Number(r.delay_ms)).sort((a, b) => a - b);
  console.log(`200,000 lines in ${seconds.toFixed(1)} s: ${rows.length} messages (${(rows.length / seconds).toFixed(1)}/s), ${bytes} bytes stored, `
    + `largest ${Math.max(...rows.map((r) => r.bytes))} B; newest line to announcement p50 ${pct(delays, 50).toFixed(0)} ms, p99 ${pct(delays, 99).toFixed(0)} ms`);
  assert.ok(seconds > 8, `the run took ${seconds} s: long enough to measure a rate`);
  // The rate, plus the first announcement and the end's.
  assert.ok(rows.length <= LOG_ANNOUNCEMENTS_PER_SECOND * seconds + 2, `${rows.length} messages in ${seconds.toFixed(1)} s`);
  for (const r of rows) assert.ok(r.bytes + SUPABASE_ID_BYTES <= LOG_MESSAGE_MAX_BYTES, `a message of ${r.bytes} bytes`);
  // Announced contiguously, and all of it.
  let announced = 0;
  for (const { payload: p } of rows) {
    assert.equal(p.first_seq, announced + 1);
    announced = p.last_seq;
  }
  assert.equal(announced, run.lastSeq);
  // The live feel: the newest line of each announcement had been printed a moment before.
  assert.ok(pct(delays, 50) < 500, `newest line to announcement: p50 ${pct(delays, 50)} ms`);
});
