// followLogs' onState: what the log panel shows as "reconnecting". A Realtime drop (the gateway closes
// every socket) and failing history reads are told as 'reconnecting', their end as 'live', and every
// line still arrives once and in order. Without onState a failing read ends the follow, as it always did.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFixtures } from './fixtures/executors.ts';
import { ApiClient, CliError, EXIT } from '../client/api-client.ts';
import { followLogs, type FollowState, type LogSource } from '../client/follow.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  admin = await cp.user(undefined, { instanceAdmin: true });
  await admin.call('POST', '/api/projects', { slug: 'state', name: 'State' });
  await admin.call('POST', '/api/projects/state/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 's' } });
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

const chatty = async (lines: number) =>
  (await admin.call('POST', '/api/projects/state/environments/dev/runs', { kind: 'test.chatty', params: { lines, perTick: 50, tickMs: 20 } })).body.id as number;

test('a Realtime drop is told as reconnecting, the rejoin as live, and no line is lost', async () => {
  const id = await chatty(6000);
  const api = new ApiClient({ url: cp.server.url, token: admin.token });
  const states: [FollowState, string | undefined][] = [];
  const seqs: number[] = [];
  let dropped = false;
  const final = await followLogs(api, id, 0, (l) => {
    seqs.push(l.seq);
    if (!dropped && seqs.length >= 300 && cp.server.gateway.stats().channels > 0) {
      dropped = true;
      // The server's side of every socket goes away, as when a proxy or the network cuts it.
      for (const c of (cp.server.gateway as unknown as { connections: Set<{ ws: { terminate(): void } }> }).connections) c.ws.terminate();
    }
  }, { onState: (s, detail) => states.push([s, detail]) });
  assert.equal(final, 'succeeded');
  assert.ok(dropped);
  assert.deepEqual(seqs, Array.from({ length: 6001 }, (_, i) => i + 1));
  assert.deepEqual(states.map(([s]) => s), ['reconnecting', 'live']);
  assert.match(states[0]![1]!, /live connection/);
});

test('failing history reads are retried while reconnecting; without onState they end the follow as before', async () => {
  const id = await chatty(600);
  const real = new ApiClient({ url: cp.server.url, token: admin.token });
  let reads = 0;
  const flaky: LogSource = {
    target: real.target,
    async get(path, schema) {
      // The 2nd and 3rd history reads fail as an unreachable server does.
      if (path.includes('/logs?') && ++reads >= 2 && reads <= 3) throw new CliError('cannot reach the OdooOps server', EXIT.unreachable);
      return real.get(path, schema as Parameters<ApiClient['get']>[1]) as never;
    },
  };
  const states: FollowState[] = [];
  const seqs: number[] = [];
  const final = await followLogs(flaky, id, 0, (l) => seqs.push(l.seq), { onState: (s) => states.push(s), retryMs: 50 });
  assert.equal(final, 'succeeded');
  assert.deepEqual(seqs, Array.from({ length: 601 }, (_, i) => i + 1));
  assert.deepEqual(states, ['reconnecting', 'live']);

  reads = 1; // the next read fails
  await assert.rejects(followLogs(flaky, id, 0, () => {}), /cannot reach the OdooOps server/);
  // A refusal is not retried, with onState or not.
  const refused: LogSource = {
    target: real.target,
    get: async (path, schema) => {
      if (path.includes('/logs?')) throw new CliError('forbidden', EXIT.rejected);
      return real.get(path, schema as Parameters<ApiClient['get']>[1]) as never;
    },
  };
  await assert.rejects(followLogs(refused, id, 0, () => {}, { onState: () => {} }), /forbidden/);
});

test('a follow stopped by its signal (a closed log panel) ends at once and leaves the run\'s topic', async () => {
  const id = await chatty(3000);
  const api = new ApiClient({ url: cp.server.url, token: admin.token });
  const stop = new AbortController();
  const seqs: number[] = [];
  const followed = followLogs(api, id, 0, (l) => {
    seqs.push(l.seq);
    if (seqs.length === 100) stop.abort();
  }, { onState: () => {}, signal: stop.signal });
  const status = await followed;
  // The last status the follow read: running, or still queued when it was read before the worker's claim
  // (the lines then came live); never an end, since the run goes on.
  assert.ok(status === 'running' || status === 'queued', `the last status read (${status}); the run goes on`);
  const seen = seqs.length;
  assert.ok(seen >= 100 && seen < 3001, `${seen} lines before stopping`);
  await eventually('the gateway to see the channel go', async () => cp.server.gateway.stats().channels === 0);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(seqs.length, seen, 'no line after the stop');
  assert.equal((await admin.call('GET', `/api/runs/${id}`)).body.status, 'running');
});
