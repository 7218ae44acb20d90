// Bad input gets a clear 4xx error and writes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { asUser, SERVICE_CLAIMS } from '../server/db/session.ts';
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
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"health"},{"kind":"backup"},{"kind":"test.any"}]')`);
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
    admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'backup', params: { kind: 'daily' }, idempotencyKey: 'ci-build-41' }),
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

test('a member cannot take the key of a daily backup, a push or the weekly verify sample in advance (API and SQL); the service role can', async () => {
  const { rows: [env] } = await cp.pool.query(`select e.id from ops.environments e join ops.projects p on p.id = e.project_id where p.slug = 'shop' and e.name = 'dev'`);
  for (const key of [`daily-backup:2030-01-01:${env.id}`, `deploy:${env.id}:${'a'.repeat(40)}`, `verify-sample:2030-W01:${env.id}`, 'retention:x', 'build:x', 'clone:x', 'destroy:x', 'verify-newest:x']) {
    await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', idempotencyKey: key }), 400, /has the form of the server's own keys/);
    await assert.rejects(cp.sql(admin, (c) => c.query(`select ops.queue_run($1, 'health', '{}'::jsonb, $2)`, [env.id, key])), /has the form of the server's own keys/);
  }
  const own = await cp.sql(admin, (c) => c.query(`select run_id from ops.queue_run($1, 'health', '{}'::jsonb, 'ci-deploy:1')`, [env.id]));
  assert.equal(own.rowCount, 1, 'a key of its own, even with such a word in it, is the member\'s');
  const { rows: [svc] } = await asUser(cp.pool, SERVICE_CLAIMS, (c) => c.query(`select run_id from ops.queue_run($1, 'health', '{}'::jsonb, $2)`, [env.id, `deploy:${env.id}:${'b'.repeat(40)}`]));
  assert.ok(svc.run_id > 0);
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

test('NUL characters in body strings and keys (any depth), path parameters and query values: 400 before the database', async () => {
  // PostgreSQL text and jsonb cannot hold U+0000: each of these used to reach it and answer 500.
  await refused(admin.call('POST', '/api/projects', { slug: 'nul', name: 'a\u0000b' }), 400, /^name: contains a NUL character \(\\u0000\)/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { deep: { list: ['ok', 'x\u0000'] } } }),
    400, /^params\.deep\.list\.1: contains a NUL character/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { nested: { ['k\u0000']: 1 } } }),
    400, /^params\.nested: a key contains a NUL character/);
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'health', params: { note: 'a\u0000' }, idempotencyKey: 'nul-1' }),
    400, /NUL/);
  await refused(admin.call('POST', '/api/projects', '"\\u0000"', { 'content-type': 'application/json' }), 400, /^\(the body\): contains a NUL/);
  await refused(admin.call('GET', '/api/projects/sh%00op'), 400, /^path parameter project: contains a NUL character \(%00\)/);
  await refused(admin.call('GET', '/api/projects/shop/environments/d%00ev'), 400, /^path parameter env: contains a NUL/);
  await refused(admin.call('GET', '/api/runs?project=shop&status=queued%00'), 400, /^query parameter status: contains a NUL/);
  await refused(admin.call('GET', '/api/projects/shop/audit?li%00mit=1'), 400, /query parameter name contains a NUL/);

  // A backslash followed by "u0000" is not a NUL: the check reads JSON escapes, not the raw text.
  const literal = await admin.call('POST', '/api/projects', '{"slug": "not-nul", "name": "a\\\\u0000b"}', { 'content-type': 'application/json' });
  assert.equal(literal.status, 201, JSON.stringify(literal.body));
  assert.equal(literal.body.name, 'a\\u0000b');
});

test('deeply nested JSON is refused before it is parsed; brackets in strings do not count', async () => {
  // test.any: a kind no built-in executor has, whose params only its worker would check.
  const deep = `{"kind": "test.any", "params": {"x": ${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', deep, { 'content-type': 'application/json' }), 400, /nests deeper than 64 levels/);
  // The bound: 64 levels are accepted (body, params, then 62 arrays), 65 are not.
  const nested = (arrays: number) => `{"kind": "test.any", "params": {"x": ${'['.repeat(arrays)}${']'.repeat(arrays)}}}`;
  const at = await admin.call('POST', '/api/projects/shop/environments/dev/runs', nested(62), { 'content-type': 'application/json' });
  assert.equal(at.status, 201, JSON.stringify(at.body));
  await refused(admin.call('POST', '/api/projects/shop/environments/dev/runs', nested(63), { 'content-type': 'application/json' }), 400, /nests deeper than 64 levels/);
  const text = await admin.call('POST', '/api/projects/shop/environments/dev/runs', { kind: 'test.any', params: { brackets: '[{'.repeat(2000), quote: '\\"[[[' } });
  assert.equal(text.status, 201, JSON.stringify(text.body));
  assert.equal(text.body.params.brackets.length, 4000);
});

test('only application/json (any case, with parameters, UTF-8) is a JSON body', async () => {
  const body = (slug: string) => JSON.stringify({ slug, name: slug });
  for (const type of ['application/jsonpoison', 'application/json-patch+json', 'text/json', 'application/json, text/plain', 'application/x-json']) {
    await refused(admin.call('POST', '/api/projects', body('typed'), { 'content-type': type }), 415, /Content-Type: application\/json/);
  }
  await refused(admin.call('POST', '/api/projects', body('latin'), { 'content-type': 'application/json; charset=latin1' }), 415, /UTF-8/);
  let n = 0;
  for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'APPLICATION/JSON;CHARSET="UTF-8"', 'application/json ; foo=bar']) {
    const r = await admin.call('POST', '/api/projects', body(`typed-${++n}`), { 'content-type': type });
    assert.equal(r.status, 201, `${type}: ${JSON.stringify(r.body)}`);
  }
});

test('the 401 hint names a command that exists', async () => {
  const r = await refused(call(cp.server.url, undefined, 'GET', '/api/projects'), 401, /missing bearer token/);
  const hint = r.body.error.hint as string;
  const commands = [...hint.matchAll(/`odooops ([a-z-]+)[^`]*`/g)].map((m) => m[1]!);
  assert.deepEqual(commands, ['login', 'token']);
  const usage = (await promisify(execFile)(process.execPath, [join(import.meta.dirname, '..', 'server', 'cli', 'main.ts'), '--help'])).stdout;
  for (const c of commands) assert.match(usage, new RegExp(`^  odooops ${c} `, 'm'), `odooops ${c} is in the CLI's usage`);
});
