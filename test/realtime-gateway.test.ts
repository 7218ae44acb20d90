// The embedded Realtime gateway, driven by the real @supabase/supabase-js client: private topics per
// run and per project, live log batches, gap-fill after a reconnect, expiring tokens, and bad frames.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { realtimeClient } from '../client/realtime.ts';
import type { LogLine, LogPage } from '../contract/index.ts';
import { LogSequencer } from '../contract/log-sequence.ts';
import { LOG_ANNOUNCEMENTS_PER_SECOND } from '../server/realtime/budget.ts';
import { closeFixtures } from './fixtures/executors.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let member: TestUser;
let outsider: TestUser;
let projectId: string;
const clients: SupabaseClient[] = [];

async function client(token: string): Promise<SupabaseClient> {
  // The gateway takes any apikey (a local server has no anon key); the user is the access token.
  const { sb } = await realtimeClient(cp.server.url, 'odooops-local', { target: { token } });
  clients.push(sb);
  return sb;
}

interface Sub {
  ch: RealtimeChannel;
  statuses: string[];
  errors: string[];
}

function subscribe(c: SupabaseClient, topic: string, onEvent: (event: string, payload: any) => void): Promise<Sub> {
  return new Promise((resolve) => {
    const sub: Sub = { ch: c.channel(topic, { config: { private: true } }), statuses: [], errors: [] };
    sub.ch.on('broadcast', { event: '*' }, (m) => onEvent(m.event, m.payload));
    sub.ch.on('system', {}, (m) => sub.errors.push(String(m.message ?? m)));
    sub.ch.subscribe((status, err) => {
      sub.statuses.push(status);
      if (err) sub.errors.push(err.message);
      if (status !== 'CLOSED') resolve(sub);
    });
  });
}

const queue = async (kind: string, params: object, env = 'dev') => {
  const r = await member.call('POST', `/api/projects/rt/environments/${env}/runs`, { kind, params });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as number;
};
const runOf = async (id: number) => (await member.call('GET', `/api/runs/${id}`)).body;
const waitStatus = (id: number, s: string) => eventually(`run ${id} ${s}`, async () => (await runOf(id)).status === s, 60_000);

/** A run that waits (queued behind a blocker) until the caller has subscribed, then starts. */
let envCount = 0;
async function heldRun(params: object): Promise<{ id: number; release: () => Promise<void> }> {
  // Its own environment, so a failed test cannot hold up the next one.
  const env = `held-${++envCount}`;
  const created = await member.call('POST', '/api/projects/rt/environments', { name: env, stage: 'development', database: { server: 'test-db', name: `rt_held_${envCount}` } });
  assert.equal(created.status, 201);
  const blocker = await queue('test.block', { blockOn: [1] }, env);
  await waitStatus(blocker, 'running');
  const id = await queue('test.chatty', params, env);
  return { id, release: async () => void (await member.call('POST', `/api/runs/${blocker}/cancel`)) };
}

async function history(id: number, after: number): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for (;;) {
    const page = (await member.call('GET', `/api/runs/${id}/logs?after=${after}&limit=5000`)).body as LogPage;
    out.push(...page.lines);
    if (page.lines.length < 5000) return out;
    after = page.nextAfter;
  }
}

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  member = await cp.user(undefined, { instanceAdmin: true });
  outsider = await cp.user();
  assert.equal((await member.call('POST', '/api/projects', { slug: 'rt', name: 'Realtime' })).status, 201);
  assert.equal((await member.call('POST', '/api/projects/rt/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'rt_dev' } })).status, 201);
  projectId = (await member.call('GET', '/api/projects/rt')).body.id;
});
after(async () => {
  for (const c of clients) await c.removeAllChannels().catch(() => {});
  await closeFixtures();
  await cp?.close();
});

/**
 * A viewer as the clients are (client/follow.ts): live announcements, and the API for the lines they
 * do not carry, by sequence number. `fills` counts history reads.
 */
function viewer(id: number) {
  const out: number[] = [];
  const seq = new LogSequencer((lines) => out.push(...lines.map((l) => l.seq)));
  const v = { out, seq, messages: 0, fills: 0, onEvent, catchUp };
  let filling: Promise<void> | undefined;
  function fill(): Promise<void> {
    return (filling ??= (async () => {
      while (seq.hasGap) {
        const before = seq.last;
        v.fills++;
        seq.accept(await history(id, seq.last));
        if (seq.last === before) break;
      }
    })().finally(() => {
      filling = undefined;
    }));
  }
  function onEvent(event: string, p: any): void {
    if (event !== 'log') return;
    v.messages++;
    seq.acceptBroadcast(p);
    if (seq.hasGap) void fill();
  }
  /** Waits until every line up to lastSeq is out (reading history once more if a fill was cut short). */
  async function catchUp(lastSeq: number): Promise<void> {
    await eventually('the viewer caught up', async () => {
      await filling;
      if (seq.last < lastSeq) await fill();
      return seq.last === lastSeq;
    }, 15_000);
  }
  return v;
}

test('a member follows a run live: at most one announcement per 250 ms, every line once and in order', async () => {
  // A run that prints slowly: its lines travel in the announcements, the viewer reads no history.
  const slow = await heldRun({ lines: 15, perTick: 1, tickMs: 100 });
  const trickle = viewer(slow.id);
  const sub = await subscribe(await client(member.token), `run:${slow.id}`, trickle.onEvent);
  assert.equal(sub.statuses[0], 'SUBSCRIBED', sub.errors.join('; '));
  await slow.release();
  await waitStatus(slow.id, 'succeeded');
  await trickle.catchUp((await runOf(slow.id)).lastSeq);
  assert.deepEqual(trickle.out, Array.from({ length: 16 }, (_, i) => i + 1));
  assert.equal(trickle.fills, 0, 'every line came live');

  // A flood: announcements stay within the budget, the rest comes from the API.
  const { id, release } = await heldRun({ lines: 6000, perTick: 100, tickMs: 50 });
  const v = viewer(id);
  await subscribe(await client(member.token), `run:${id}`, v.onEvent);
  await release();
  const run = await waitStatus(id, 'succeeded').then(() => runOf(id));
  const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
  await v.catchUp(run.lastSeq);
  assert.deepEqual(v.out, Array.from({ length: run.lastSeq }, (_, i) => i + 1));
  assert.ok(seconds > 2, `the run took ${seconds} s`);
  assert.ok(v.messages <= LOG_ANNOUNCEMENTS_PER_SECOND * seconds + 2, `${v.messages} messages in ${seconds.toFixed(1)} s`);
  assert.ok(v.messages >= seconds * 2, `${v.messages} messages in ${seconds.toFixed(1)} s: still live`);
});

test('a subscriber that drops mid-run and comes back misses and duplicates nothing', async () => {
  const { id, release } = await heldRun({ lines: 3000, perTick: 50, tickMs: 10 });
  const v = viewer(id);
  let c = await client(member.token);
  await subscribe(c, `run:${id}`, v.onEvent);
  await release();
  await eventually('some lines', async () => v.out.length > 200);
  await c.removeAllChannels(); // the connection drops
  c.realtime.disconnect();
  await new Promise((r) => setTimeout(r, 400)); // lines keep coming meanwhile
  c = await client(member.token);
  await subscribe(c, `run:${id}`, v.onEvent); // live first, then fill the gap from history
  v.seq.accept(await history(id, v.seq.last));
  await waitStatus(id, 'succeeded');
  const { lastSeq } = await runOf(id);
  await v.catchUp(lastSeq);
  assert.deepEqual(v.out, Array.from({ length: lastSeq }, (_, i) => i + 1));
});

test('run status changes arrive on the project topic', async () => {
  const events: { id: number; status: string }[] = [];
  const sub = await subscribe(await client(member.token), `project:${projectId}`, (event, p) => event === 'run' && events.push(p));
  assert.equal(sub.statuses[0], 'SUBSCRIBED', sub.errors.join('; '));
  const id = await queue('test.chatty', { lines: 5, tickMs: 0 });
  await waitStatus(id, 'succeeded');
  await eventually('three transitions', async () => events.filter((e) => e.id === id).length >= 3);
  assert.deepEqual(events.filter((e) => e.id === id).map((e) => e.status), ['queued', 'running', 'succeeded']);
});

test('outsiders, public joins and unknown topics are refused', async () => {
  const id = await queue('test.chatty', { lines: 1, tickMs: 0 });
  const c = await client(outsider.token);
  for (const topic of [`run:${id}`, `project:${projectId}`, 'run:abc', 'nonsense']) {
    const sub = await subscribe(c, topic, () => {});
    assert.equal(sub.statuses[0], 'CHANNEL_ERROR', topic);
    assert.match(sub.errors.join(' '), /Unauthorized/, topic);
  }
  const publicClient = await client(member.token);
  const pub = await new Promise<string>((resolve) => {
    publicClient.channel(`run:${id}`).subscribe((status, err) => status !== 'CLOSED' && resolve(`${status} ${err?.message}`));
  });
  assert.match(pub, /CHANNEL_ERROR .*PrivateOnly/);
});

test('a token that expires ends the subscription', async () => {
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(member.id)
    .setExpirationTime(exp).sign(cp.server.secret);
  const sub = await subscribe(await client(token), `project:${projectId}`, () => {});
  assert.equal(sub.statuses[0], 'SUBSCRIBED', sub.errors.join('; '));
  await eventually('the channel closed at expiry', async () => sub.statuses.includes('CLOSED') || sub.errors.some((e) => /expired/i.test(e)), 8_000);
  assert.ok(sub.errors.some((e) => /Token has expired/.test(e)) || sub.statuses.includes('CLOSED'));
  assert.ok(Date.now() / 1000 >= exp - 0.5, 'not before the token expired');
});

test('bad frames get an error and everyone else keeps being served (fuzz)', async () => {
  const { id, release } = await heldRun({ lines: 1500, perTick: 50, tickMs: 10 });
  const v = viewer(id);
  await subscribe(await client(member.token), `run:${id}`, v.onEvent);
  await release();

  const ws = new WebSocket(`${cp.server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=x&vsn=2.0.0`);
  const replies: string[] = [];
  ws.on('message', (d) => replies.push(d.toString()));
  await new Promise((r) => ws.once('open', r));
  let rng = 42;
  const rand = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const bad = [
    'not json', '{}', '[]', '[1,2,3]', 'null', '[null,"1","realtime:x","phx_join","nope"]', '[null,"2","realtime:","phx_join",{"config":{"private":true}}]',
    '[null,"3","realtime:run:1","phx_join",{"config":{"private":false}}]', '[null,"4","realtime:run:1","phx_join",{"config":{"private":true},"access_token":"garbage"}]',
    '[null,"5","realtime:never-joined","broadcast",{}]', '[null,"6","phoenix","no_such_event",{}]', `[null,"7","${'t'.repeat(300)}","phx_join",{}]`,
  ];
  for (let i = 0; i < 200; i++) {
    const base = bad[i % bad.length]!;
    // Mutate some: cut, splice random bytes.
    const frame = i < bad.length ? base : base.slice(0, Math.floor(rand() * base.length)) + String.fromCharCode(Math.floor(rand() * 128));
    ws.send(frame);
  }
  ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 1])); // a binary client broadcast
  await eventually('answers to bad frames', async () => replies.length >= bad.length, 5000);
  assert.ok(replies.every((r) => /phx_error|"status":"error"/.test(r)), replies.find((r) => !/phx_error|"status":"error"/.test(r)));
  // An oversized frame closes that socket only.
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  ws.send('x'.repeat(100_000));
  assert.equal(await closed, 1009);

  await waitStatus(id, 'succeeded');
  const { lastSeq } = await runOf(id);
  await v.catchUp(lastSeq);
  assert.deepEqual(v.out, Array.from({ length: lastSeq }, (_, i) => i + 1), 'the well-behaved subscriber got everything');
});

test('a subscriber that stops reading does not slow the run or the others', async () => {
  const { id, release } = await heldRun({ lines: 20_000, perTick: 2000, tickMs: 1 });
  const slow = new WebSocket(`${cp.server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=x&vsn=2.0.0`);
  await new Promise((r) => slow.once('open', r));
  slow.send(JSON.stringify([`1`, `1`, `realtime:run:${id}`, 'phx_join', { config: { private: true }, access_token: member.token }]));
  await new Promise((r) => slow.once('message', r));
  (slow as unknown as { _socket: { pause(): void } })._socket.pause(); // never reads again
  // The other subscriber is a viewer: live batches, and the API for what a partial batch left out.
  const out: number[] = [];
  const seq = new LogSequencer((lines) => out.push(...lines.map((l) => l.seq)));
  let messages = 0;
  await subscribe(await client(member.token), `run:${id}`, (event, p) => {
    if (event !== 'log') return;
    messages++;
    seq.acceptBroadcast(p);
  });
  const t0 = Date.now();
  await release();
  await waitStatus(id, 'succeeded');
  const run = await runOf(id);
  assert.equal(run.lastSeq, 20_001);
  await eventually('the live batches announced every line', async () => seq.known === run.lastSeq, 15_000);
  seq.accept(await history(id, seq.last));
  assert.deepEqual(out, Array.from({ length: run.lastSeq }, (_, i) => i + 1));
  const seconds = (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
  assert.ok(seconds < 15, `the run took ${seconds} s with a stalled subscriber`);
  assert.ok(messages <= Math.max(3, (Date.now() - t0) / 100 + 2), `${messages} messages`);
  slow.terminate();
});

test('delivered broadcasts are pruned from the local realtime.messages', async () => {
  const sub = await subscribe(await client(member.token), `project:${projectId}`, () => {});
  assert.equal(sub.statuses[0], 'SUBSCRIBED');
  const id = await queue('test.chatty', { lines: 3, tickMs: 0 });
  await waitStatus(id, 'succeeded');
  const count = async () => (await cp.pool.query(`select count(*)::int n from realtime.messages where topic = $1`, [`project:${projectId}`])).rows[0].n;
  const before = await count();
  assert.ok(before >= 3);
  assert.equal(await cp.server.gateway.prune(3600), 0, 'recent messages stay');
  await cp.pool.query(`update realtime.messages set inserted_at = now() - interval '2 hours' where topic = $1`, [`project:${projectId}`]);
  assert.ok((await cp.server.gateway.prune(3600)) >= before);
  assert.equal(await count(), 0);
});
