// `odooops run logs --follow` and `run queue --follow`: live over Realtime, history from the API,
// each line once and in order, and the exit code of the run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closeFixtures } from './fixtures/executors.ts';
import { startServer } from '../server/app.ts';
import { eventually, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'server', 'cli', 'main.ts');
let cp: TestControlPlane;
let admin: TestUser;

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts', 'test/fixtures/chatty.ts'] });
  admin = await cp.user(undefined, { instanceAdmin: true });
  await admin.call('POST', '/api/projects', { slug: 'follow', name: 'Follow' });
  await admin.call('POST', '/api/projects/follow/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'f' } });
});
after(async () => {
  await closeFixtures();
  await cp?.close();
});

const cli = (args: string[]) =>
  run(process.execPath, [CLI, ...args], { env: { ...process.env, ODOOOPS_URL: cp.server.url, ODOOOPS_TOKEN: admin.token }, maxBuffer: 64 * 1024 * 1024 })
    .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));

test('run logs --follow joins a run midway and prints every line once, in order', async () => {
  const q = await admin.call('POST', '/api/projects/follow/environments/dev/runs', { kind: 'test.chatty', params: { lines: 4000, perTick: 100, tickMs: 20 } });
  await eventually('the run has started printing', async () => (await admin.call('GET', `/api/runs/${q.body.id}`)).body.lastSeq > 300);
  const t0 = Date.now();
  const r = await cli(['run', 'logs', String(q.body.id), '--follow', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const seqs = r.stdout.trim().split('\n').map((l) => JSON.parse(l).seq as number);
  assert.deepEqual(seqs, Array.from({ length: 4001 }, (_, i) => i + 1));
  assert.ok(Date.now() - t0 < 30_000);
});

test('run queue --follow prints the log and exits 1 when the run fails', async () => {
  const r = await cli(['run', 'queue', 'follow', 'dev', 'test.fail', '--param', 'message=out of disk', '--follow']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /about to fail/);
  assert.match(r.stdout, /failed: out of disk/);
  assert.match(r.stderr, /failed \(out of disk\)/);
});

test('the CLI follows over the Realtime the server advertises (a Supabase project\'s, here another gateway)', async () => {
  // Server B shares A's database and advertises A's gateway as its Realtime, the way a server on a
  // Supabase control plane advertises the project's (--realtime-url/--realtime-key).
  // The same home: the same signing secret, so A's users' tokens are valid on B.
  const b = await startServer({
    home: cp.server.home, databaseUrl: cp.server.databaseUrl, worker: false, log: () => {},
    realtimeUrl: cp.server.url, realtimeKey: 'anon-key-of-the-project',
  });
  try {
    const health = await (await fetch(`${b.url}/api/health`)).json();
    assert.deepEqual(health.realtime, { url: cp.server.url, apiKey: 'anon-key-of-the-project' });
    assert.deepEqual((await (await fetch(`${cp.server.url}/api/health`)).json()).realtime, { url: null, apiKey: 'odooops-local' });
    const q = await admin.call('POST', '/api/projects/follow/environments/dev/runs', { kind: 'test.chatty', params: { lines: 1500, perTick: 50, tickMs: 20 } });
    let sawChannelOnA = false;
    let sawChannelOnB = false;
    const watch = setInterval(() => {
      sawChannelOnA ||= cp.server.gateway.stats().channels > 0;
      sawChannelOnB ||= b.gateway.stats().channels > 0;
    }, 20);
    const r = await run(process.execPath, [CLI, 'run', 'logs', String(q.body.id), '--follow', '--json'], {
      env: { ...process.env, ODOOOPS_URL: b.url, ODOOOPS_TOKEN: admin.token }, maxBuffer: 64 * 1024 * 1024,
    }).finally(() => clearInterval(watch));
    const seqs = r.stdout.trim().split('\n').map((l) => JSON.parse(l).seq as number);
    assert.deepEqual(seqs, Array.from({ length: 1501 }, (_, i) => i + 1));
    assert.ok(sawChannelOnA, 'the CLI joined the advertised gateway');
    assert.ok(!sawChannelOnB, 'not the API server\'s own');
  } finally {
    await b.stop(1000);
  }
});
