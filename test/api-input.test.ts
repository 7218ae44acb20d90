// Bad input gets a clear 4xx error and writes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { call, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;

const counts = async () =>
  (await cp.pool.query(`select (select count(*) from ops.projects)::int projects, (select count(*) from ops.environments)::int envs,
     (select count(*) from ops.runs)::int runs, (select count(*) from ops.project_members)::int members`)).rows[0];

/** Asserts the response is the given 4xx with an error body saying something useful, and nothing was written. */
async function refused(request: Promise<{ status: number; body: any }>, status: number, message: RegExp) {
  const before = await counts();
  const r = await request;
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(typeof r.body.error.code, 'string');
  assert.match(r.body.error.message, message);
  assert.deepEqual(await counts(), before, 'nothing was written');
  return r;
}

before(async () => {
  cp = await startControlPlane({ worker: false });
  admin = await cp.user(undefined, { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: 'shop', name: 'Shop' })).status, 201);
  assert.equal((await admin.call('POST', '/api/projects/shop/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'shop_dev' } })).status, 201);
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"health"}]')`);
});
after(() => cp?.close());

test('unknown project, environment, run and endpoint', async () => {
  await refused(admin.call('POST', '/api/projects/nope/environments/dev/runs', { kind: 'health' }), 404, /project "nope" not found/);
  await refused(admin.call('POST', '/api/projects/shop/environments/nope/runs', { kind: 'health' }), 404, /environment "nope" in project "shop" not found/);
  await refused(admin.call('GET', '/api/runs/999999'), 404, /run 999999 not found/);
  await refused(admin.call('GET', '/api/nothing-here'), 404, /no such endpoint/);
  await refused(admin.call('PUT', '/api/projects'), 405, /not allowed/);
});

test('invalid names', async () => {
  await refused(admin.call('POST', '/api/projects', { slug: 'Bad Slug!', name: 'x' }), 400, /slug: use 2-63 lower-case letters/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: '../etc', stage: 'development', database: { server: 'test-db', name: 'x' } }), 400, /name:/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'feat', stage: 'development', branch: 'feature/../../x', database: { server: 'test-db', name: 'x' } }), 400, /branch/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'feat', stage: 'development', branch: '-rf', database: { server: 'test-db', name: 'x' } }), 400, /branch/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'feat', stage: 'qa', database: { server: 'test-db', name: 'x' } }), 400, /stage/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'feat', stage: 'development', database: { server: 'test-db', name: 'x; drop table y' } }), 400, /database\.name/);
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'feat', stage: 'development', database: { server: 'test-db', name: 'x', passwordRef: 'hunter2' } }), 400, /Unrecognized key: "passwordRef"/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'Health; rm -rf /' }), 400, /kind/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', extra: 1 }), 400, /extra|Unrecognized/i);
  await refused(admin.call('GET', '/api/runs/abc'), 400, /./);
  await refused(admin.call('GET', '/api/projects/%E0%A4%A'), 400, /malformed %-escape/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'teleport' }), 400, /unknown run kind "teleport"/);
  // The database checks the same rules for writers that bypass the API.
  await assert.rejects(cp.pool.query(`insert into ops.environments (project_id, name, stage, db_name, branch)
    select id, 'x', 'development', 'x', 'a..b' from ops.projects where slug = 'shop'`), /environments_branch_format/);
});

test('duplicate idempotency key: the same request returns the same run, a different one is a conflict', async () => {
  const first = await admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', idempotencyKey: 'ci-build-41' });
  assert.equal(first.status, 201);
  const again = await admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', idempotencyKey: 'ci-build-41' });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, first.body.id);
  await refused(
    admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { deep: true }, idempotencyKey: 'ci-build-41' }),
    409,
    /idempotency key "ci-build-41" was already used for run \d+ with other arguments/,
  );
  // Concurrent duplicates still make one run.
  const burst = await Promise.all(
    Array.from({ length: 8 }, () => admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', idempotencyKey: 'burst-1' })),
  );
  assert.deepEqual(burst.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201], JSON.stringify(burst.map((r) => r.body)));
  assert.equal(new Set(burst.map((r) => r.body.id)).size, 1);
  const { rows } = await cp.pool.query(`select count(*)::int n from ops.runs where idempotency_key = 'burst-1'`);
  assert.equal(rows[0].n, 1);
});

test('oversized params and bodies', async () => {
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { blob: 'x'.repeat(20_000) } }), 400, /params are limited to 16384 bytes/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { blob: 'x'.repeat(300_000) } }), 413, /limited to 262144 bytes/);
});

test('malformed JSON and wrong content type', async () => {
  await refused(admin.call('POST', '/api/projects', '{"slug": "x",', { 'content-type': 'application/json' }), 400, /not valid JSON/);
  await refused(admin.call('POST', '/api/projects', 'slug=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, /JSON/);
  await refused(admin.call('POST', '/api/projects', '[1, 2]', { 'content-type': 'application/json' }), 400, /expected object/i);
});

test('missing, wrong, expired and foreign tokens', async () => {
  const url = cp.server.url;
  await refused(call(url, undefined, 'GET', '/api/projects'), 401, /missing bearer token/);
  await refused(call(url, 'not-a-jwt', 'GET', '/api/projects'), 401, /not valid/);
  const foreign = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(admin.id).setExpirationTime('1h')
    .sign(new TextEncoder().encode('some-other-secret-some-other-secret'));
  await refused(call(url, foreign, 'POST', '/api/projects', { slug: 'forged', name: 'x' }), 401, /not valid/);
  const expired = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(admin.id)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(cp.server.secret);
  await refused(call(url, expired, 'GET', '/api/projects'), 401, /expired/);
  const anon = await new SignJWT({ role: 'anon' }).setProtectedHeader({ alg: 'HS256' }).setSubject(admin.id).setExpirationTime('1h').sign(cp.server.secret);
  await refused(call(url, anon, 'GET', '/api/projects'), 401, /role "anon"/);
  // The health endpoint needs no token and says which backend runs.
  const health = await call(url, undefined, 'GET', '/api/health');
  assert.deepEqual({ status: health.status, mode: health.body.mode }, { status: 200, mode: 'embedded' });
});

test('a failed request in the middle of a transaction leaves nothing behind', async () => {
  // The environment insert succeeds, then the unique (project, name) check fails: one transaction, no trace.
  await refused(admin.call('POST', '/api/projects/shop/environments', { name: 'dev', stage: 'development', database: { server: 'test-db', name: 'other' } }), 409, /already exists/);
  await refused(admin.call('POST', '/api/projects', { slug: 'shop', name: 'Again' }), 409, /already exists/);
});
