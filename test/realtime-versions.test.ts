// The embedded Realtime gateway against both ends of the supabase-js range the project supports: the
// newest 2.x (@supabase/supabase-js) and the oldest (supabase-js-oldest, an npm alias of 2.109.0), each
// made the one way client/realtime.ts makes it (accessToken callback, then realtime.setAuth()). For
// each: joining a private run topic and following its log; a session renewed through
// ApiClient.setToken before its token expires (the follower stays joined: no gap, no duplicate, never
// "reconnecting"); a heartbeat asking for a renewed token by itself; a token that expires unrenewed
// (the channel closes with the expiry message); and the apikey pushed as access_token, which 2.112.1
// and later send, ignored instead of closing the channel.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { createClient as newestCreateClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import { createClient as oldestCreateClient } from 'supabase-js-oldest';
import { ApiClient } from '../client/api-client.ts';
import { followLogs, type FollowState } from '../client/follow.ts';
import { realtimeClient, type CreateClient, type LiveClient, type TokenHolder } from '../client/realtime.ts';
import { LogSequencer } from '../contract/log-sequence.ts';
import { closeFixtures } from './fixtures/executors.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

const version = (pkg: string) => (JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
const VERSIONS: [string, CreateClient<SupabaseClient>][] = [
  [`newest, ${version('@supabase/supabase-js')}`, newestCreateClient as unknown as CreateClient<SupabaseClient>],
  [`oldest, ${version('supabase-js-oldest')}`, oldestCreateClient as unknown as CreateClient<SupabaseClient>],
];

let cp: TestControlPlane;
let member: TestUser;
const live: LiveClient<SupabaseClient>[] = [];

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  member = await cp.user(undefined, { instanceAdmin: true });
  assert.equal((await member.call('POST', '/api/projects', { slug: 'ver', name: 'Versions' })).status, 201);
});
const closeClients = async () => {
  for (const l of live.splice(0)) await l.close().catch(() => {});
  await eventually('no channels left', async () => cp.server.gateway.stats().channels === 0, 5000);
};
afterEach(closeClients);
after(async () => {
  await closeClients();
  await closeFixtures();
  await cp?.close();
});

/** The member's token, expiring in `seconds` (the gateway closes a channel at its token's expiry). */
const tokenFor = (seconds: number) => new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(member.id)
  .setExpirationTime(Math.floor(Date.now() / 1000) + seconds).sign(cp.server.secret);

let envCount = 0;
/** A chatty run in an environment of its own, held (queued behind a blocker) until release(). */
async function heldRun(params: object): Promise<{ id: number; release: () => Promise<void> }> {
  const env = `v-${++envCount}`;
  assert.equal((await member.call('POST', '/api/projects/ver/environments', { name: env, stage: 'development', database: { server: 'test-db', name: `ver_${envCount}` } })).status, 201);
  const queue = async (kind: string, p: object) => (await member.call('POST', `/api/projects/ver/environments/${env}/runs`, { kind, params: p })).body.id as number;
  const blocker = await queue('test.block', { blockOn: [1] });
  await eventually('the blocker', async () => (await member.call('GET', `/api/runs/${blocker}`)).body.status === 'running');
  const id = await queue('test.chatty', params);
  return { id, release: async () => void (await member.call('POST', `/api/runs/${blocker}/cancel`)) };
}

const runOf = async (id: number) => (await member.call('GET', `/api/runs/${id}`)).body;
const waitEnd = (id: number) => eventually(`run ${id} to end`, async () => {
  const r = await runOf(id);
  return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
}, 60_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sub {
  ch: RealtimeChannel;
  statuses: string[];
  errors: string[];
  lines: number[];
  /** The highest last_seq announced. */
  known: number;
}

/** Joins run:<id> privately and records what arrives (a viewer's sequencer over the live lines only). */
function subscribe(sb: SupabaseClient, id: number): Promise<Sub> {
  return new Promise((resolve) => {
    const sub: Sub = { ch: sb.channel(`run:${id}`, { config: { private: true } }), statuses: [], errors: [], lines: [], known: 0 };
    const seq = new LogSequencer((lines) => sub.lines.push(...lines.map((l) => l.seq)));
    sub.ch.on('broadcast', { event: 'log' }, ({ payload }) => {
      seq.acceptBroadcast(payload);
      sub.known = seq.known;
    });
    sub.ch.on('system', {}, (m: { message?: string }) => sub.errors.push(String(m.message ?? JSON.stringify(m))));
    sub.ch.subscribe((status, err) => {
      sub.statuses.push(status);
      if (err) sub.errors.push(err.message);
      if (status !== 'CLOSED') resolve(sub);
    });
  });
}

async function client(createClient: CreateClient<SupabaseClient>, tokens: TokenHolder, heartbeatIntervalMs?: number) {
  const l = await realtimeClient(cp.server.url, 'odooops-local', tokens, { createClient, ...(heartbeatIntervalMs ? { heartbeatIntervalMs } : {}) });
  live.push(l);
  return l.sb;
}

for (const [name, createClient] of VERSIONS) {
  describe(`supabase-js ${name}`, () => {
    test('joins a private run topic and follows its log: every line once, in order', async () => {
      const { id, release } = await heldRun({ lines: 2000, perTick: 50, tickMs: 20 });
      const api = new ApiClient({ url: cp.server.url, token: member.token });
      const seqs: number[] = [];
      const states: FollowState[] = [];
      const followed = followLogs(api, id, 0, (l) => seqs.push(l.seq), { onState: (s) => states.push(s), realtime: { createClient } });
      await eventually('the follower joined', async () => cp.server.gateway.stats().channels > 0);
      // A viewer of its own on the same topic: the lines that travel live, in announcements.
      const sub = await subscribe(await client(createClient, { target: { token: member.token } }), id);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED'], sub.errors.join('; '));
      await release();
      assert.equal(await followed, 'succeeded');
      const { lastSeq } = await runOf(id);
      assert.deepEqual(seqs, Array.from({ length: lastSeq }, (_, i) => i + 1));
      assert.deepEqual(states, []);
      await eventually('announcements of every line', async () => sub.known === lastSeq, 10_000);
      assert.ok(sub.errors.length === 0, sub.errors.join('; '));
    });

    test('a token renewed through setToken before it expires: the follower stays joined, no gap, no duplicate', async () => {
      // Lines for ~7 s, slowly enough that they travel in the announcements (a live panel, not polling).
      const { id, release } = await heldRun({ lines: 140, perTick: 1, tickMs: 50 });
      const first = await tokenFor(4);
      const api = new ApiClient({ url: cp.server.url, token: first });
      const seqs: number[] = [];
      const states: [FollowState, string | undefined][] = [];
      const followed = followLogs(api, id, 0, (l) => seqs.push(l.seq), { onState: (s, d) => states.push([s, d]), realtime: { createClient } });
      await eventually('the follower joined', async () => cp.server.gateway.stats().channels === 1);
      await release();
      const verifications = cp.server.gateway.stats().verifications;
      await sleep(1500);
      api.setToken(await tokenFor(3600)); // what a session refresh does (client/session.ts)
      await eventually('the new token reached the gateway', async () => cp.server.gateway.stats().verifications > verifications, 5000);
      await sleep(4000); // past the first token's expiry
      assert.equal(cp.server.gateway.stats().channels, 1, 'still joined after the first token expired');
      assert.equal(await followed, 'succeeded');
      const { lastSeq } = await runOf(id);
      assert.deepEqual(seqs, Array.from({ length: lastSeq }, (_, i) => i + 1));
      assert.deepEqual(states, [], 'never reconnecting');
    });

    test('a heartbeat asks for a renewed token by itself', async () => {
      const { id, release } = await heldRun({ lines: 60, perTick: 1, tickMs: 50 });
      // No onToken: only realtime-js's heartbeat (every 300 ms here) can pass the new token on, asking
      // bearer() as it asks ApiClient.bearer (whose session refreshes when its token is about to expire).
      let current = await tokenFor(3);
      const tokens = { target: { token: current }, bearer: async () => current };
      const sub = await subscribe(await client(createClient, tokens, 300), id);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED'], sub.errors.join('; '));
      current = await tokenFor(3600);
      await sleep(4000); // past the first token's expiry
      await release();
      const run = await waitEnd(id);
      await eventually('every line live', async () => sub.lines.length === run.lastSeq, 10_000);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED'], sub.errors.join('; '));
      assert.deepEqual(sub.errors, []);
    });

    test('a token that expires unrenewed closes the channel with the expiry message', async () => {
      const { id, release } = await heldRun({ lines: 1 });
      await release();
      const sub = await subscribe(await client(createClient, { target: { token: await tokenFor(2) } }), id);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED'], sub.errors.join('; '));
      await eventually('the channel closed', async () => sub.statuses.includes('CLOSED'), 8000);
      assert.ok(sub.errors.some((e) => /Token has expired/.test(e)), sub.errors.join('; '));
      assert.equal(cp.server.gateway.stats().channels, 0);
    });

    test('the apikey or an sb_ key pushed as access_token is ignored: the channel stays and keeps receiving', async () => {
      const { id, release } = await heldRun({ lines: 40, perTick: 1, tickMs: 50 });
      const sb = await client(createClient, { target: { token: member.token } });
      const sub = await subscribe(sb, id);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED'], sub.errors.join('; '));
      const verifications = cp.server.gateway.stats().verifications;
      // What 2.112.1 and later send after a join when their callback has no session: the apikey.
      await sb.realtime.setAuth('odooops-local');
      await sb.realtime.setAuth('sb_publishable_0123456789abcdefghijkl');
      await sleep(300);
      assert.equal(cp.server.gateway.stats().verifications, verifications, 'nothing verified: ignored');
      await release();
      const run = await waitEnd(id);
      await eventually('every line live', async () => sub.lines.length === run.lastSeq, 10_000);
      assert.deepEqual(sub.statuses, ['SUBSCRIBED']);
      assert.deepEqual(sub.errors, []);
    });
  });
}

test('raw frames: access_token null, the apikey or an sb_ key leave a channel as it is; a join with none of a user is refused', async () => {
  const { id, release } = await heldRun({ lines: 1 });
  await release();
  const ws = new WebSocket(`${cp.server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=the-key&vsn=2.0.0`);
  const frames: unknown[][] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise((r) => ws.once('open', r));
  let ref = 0;
  const push = async (topic: string, event: string, payload: object) => {
    const r = String(++ref);
    ws.send(JSON.stringify(['1', r, `realtime:${topic}`, event, payload]));
    const reply = await eventually(`reply ${r}`, async () => frames.find((f) => f[1] === r && f[3] === 'phx_reply'), 5000);
    return (reply[4] as { status: string; response: { reason?: string } });
  };
  for (const access_token of [null, 'the-key', 'sb_publishable_x', 'sb_secret_y']) {
    const r = await push(`run:${id}`, 'phx_join', { config: { private: true }, access_token });
    assert.equal(r.status, 'error');
    assert.match(r.response.reason!, /^Unauthorized: join with a user's access_token/, String(access_token));
  }
  assert.equal((await push(`run:${id}`, 'phx_join', { config: { private: true }, access_token: member.token })).status, 'ok');
  const before = cp.server.gateway.stats();
  for (const access_token of [null, 'the-key', 'sb_publishable_x', member.token]) {
    assert.equal((await push(`run:${id}`, 'access_token', { access_token })).status, 'ok', String(access_token));
  }
  const now = cp.server.gateway.stats();
  assert.equal(now.channels, before.channels);
  assert.equal(now.verifications, before.verifications, 'nothing to verify');
  assert.ok(!frames.some((f) => f[3] === 'phx_close' || f[3] === 'system'), 'not closed');
  // Anything else is a token to check, as before: garbage ends the channel.
  ws.send(JSON.stringify(['1', String(++ref), `realtime:run:${id}`, 'access_token', { access_token: 'garbage' }]));
  await eventually('the channel closed', async () => frames.some((f) => f[3] === 'phx_close'), 5000);
  ws.terminate();
});
