// The extension's live feed of a project (extension/src/projectFeed.ts) with the store the tree is drawn
// from, against a real server and Realtime gateway: runs arrive as they change and refresh only their
// environment; when the gateway cuts every socket, the feed says "reconnecting", and on the rejoin the
// runs that changed meanwhile (broadcast to no one) are read again, so the tree is not left behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeFixtures } from './fixtures/executors.ts';
import { ApiClient } from '../client/api-client.ts';
import { followProjects, type FeedState } from '../extension/src/projectFeed.ts';
import { Store, envKey } from '../extension/src/store.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  admin = await cp.user(undefined, { instanceAdmin: true });
  await admin.call('POST', '/api/projects', { slug: 'feed', name: 'Feed' });
  for (const name of ['dev', 'other']) await admin.call('POST', '/api/projects/feed/environments', { name, stage: 'development', database: { server: 'test-db', name } });
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

const queue = async (env: string, lines: number) =>
  (await admin.call('POST', `/api/projects/feed/environments/${env}/runs`, { kind: 'test.chatty', params: { lines, perTick: 10, tickMs: 10 } })).body.id as number;

test('runs arrive live and refresh one environment; after a drop the feed says so, and the rejoin catches up on what it missed', async () => {
  const api = new ApiClient({ url: cp.server.url, token: admin.token });
  const reads: string[] = [];
  const store = new Store({ get: async (path, schema) => (reads.push(path), schema.parse(await api.get(path, { parse: (v: unknown) => v } as never))) });
  await store.load();
  const changes: (string[] | null)[] = [];
  store.onDidChange((keys) => changes.push(keys));
  const states: [FeedState, string | undefined][] = [];
  const stop = await followProjects(api, store.projects, {
    run: (r) => store.applyRun(r),
    approval: () => {},
    rejoined: async (slug) => void (await store.refreshProject(slug)),
    state: (s, detail) => states.push([s, detail]),
  });
  try {
    await eventually('the feed to join', async () => cp.server.gateway.stats().channels > 0);
    const first = await queue('dev', 20);
    const done = await eventually('the run to succeed in the store', async () => store.runsOf('feed', 'dev').find((r) => r.id === first && r.status === 'succeeded'));
    assert.equal(done.kind, 'test.chatty');
    // One change or several: a run's events in one burst (queued, running, succeeded) may be read once.
    assert.ok(changes.length >= 1 && changes.every((k) => Array.isArray(k) && k.every((key) => key === envKey('feed', 'dev'))), JSON.stringify(changes));
    assert.equal(reads.filter((p) => p.startsWith('/api/runs?')).length, 2, 'live: the run list is read at the load and once the feed has joined; changes come one run at a time');

    // The server's side of every socket goes away, as when a proxy or the network cuts it; a run
    // starts and ends while nobody listens.
    for (const c of (cp.server.gateway as unknown as { connections: Set<{ ws: { terminate(): void } }> }).connections) c.ws.terminate();
    await eventually('"reconnecting"', async () => states.some(([s]) => s === 'reconnecting'));
    const missed = await queue('other', 5);
    await eventually('the missed run to end', async () => ['succeeded', 'failed'].includes((await admin.call('GET', `/api/runs/${missed}`)).body.status));
    const caughtUp = await eventually('the rejoin to catch up', async () => states.at(-1)?.[0] === 'live' && store.runsOf('feed', 'other').find((r) => r.id === missed), 30_000);
    assert.equal(caughtUp.status, 'succeeded', 'read again on the rejoin, final state included');
    assert.deepEqual(states.map(([s]) => s), ['reconnecting', 'live']);
    assert.ok(reads.filter((p) => p === '/api/runs?project=feed&limit=200').length >= 2, 'the project\'s runs were read again');
    assert.ok(changes.every((k) => k !== null), 'never a redraw of the whole tree');
  } finally {
    await stop();
  }
  assert.deepEqual(states.map(([s]) => s), ['reconnecting', 'live'], 'closing the feed is not a drop');
});

test('a run that ends between the load and the feed\'s join is read once the feed has joined', async () => {
  const api = new ApiClient({ url: cp.server.url, token: admin.token });
  const store = new Store({ get: async (path, schema) => schema.parse(await api.get(path, { parse: (v: unknown) => v } as never)) });
  await store.load();
  // Nobody listens yet: its broadcasts reach no one.
  const unheard = await queue('dev', 3);
  await eventually('the run to end', async () => (await admin.call('GET', `/api/runs/${unheard}`)).body.status === 'succeeded');
  assert.equal(store.runsOf('feed', 'dev').find((r) => r.id === unheard), undefined, 'not in the store before the feed joins');
  const stop = await followProjects(api, store.projects, {
    run: (r) => store.applyRun(r),
    approval: () => {},
    rejoined: async (slug) => void (await store.refreshProject(slug)),
    state: () => {},
  });
  try {
    const seen = await eventually('the run in the store', async () => store.runsOf('feed', 'dev').find((r) => r.id === unheard), 30_000);
    assert.equal(seen.status, 'succeeded');
  } finally {
    await stop();
  }
});
