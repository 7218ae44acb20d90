// --database-url: the same migrations, shims and API on a plain PostgreSQL that is not the embedded
// one (here Debian's PostgreSQL 15, standing where a Supabase project or a managed Postgres would).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../server/app.ts';
import { call, eventually, tempHome } from './helpers/control-plane.ts';
import { createOdooShapedDb, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

let pgsrv: DebianPostgres;
let server: RunningServer;
let home: string;

before(async () => {
  pgsrv = await startDebianPostgres();
  const admin = await pgsrv.client();
  await admin.query('create database control_plane');
  await admin.end();
  home = tempHome();
  // The operator's registry: the Odoo database server (here the same cluster), bound to the project.
  writeFileSync(join(home, 'infrastructure.yaml'), `databaseServers:\n  odoo-main:\n    host: 127.0.0.1\n    port: ${pgsrv.port}\n    user: postgres\n    projects: [ext]\n`);
  server = await startServer({
    home, databaseUrl: `postgres://postgres@127.0.0.1:${pgsrv.port}/control_plane`, log: () => {}, leaseSeconds: 5,
  });
});
after(async () => {
  await server?.stop(1000);
  await pgsrv?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

test('a server on an external PostgreSQL migrates it, serves the API and runs the worker', async () => {
  assert.equal(server.mode, 'external');
  const health = await call(server.url, undefined, 'GET', '/api/health');
  assert.equal(health.body.mode, 'external');
  // The shims made the Supabase roles the policies are written for.
  const db = await pgsrv.client('control_plane');
  const roles = await db.query(`select count(*)::int n from pg_roles where rolname in ('anon', 'authenticated', 'service_role')`);
  assert.equal(roles.rows[0].n, 3);
  await db.end();

  await createOdooShapedDb(pgsrv, 'odoo_ext');
  const t = server.token;
  assert.equal((await call(server.url, t, 'POST', '/api/projects', { slug: 'ext', name: 'External' })).status, 201);
  const env = await call(server.url, t, 'POST', '/api/projects/ext/environments', {
    name: 'production', stage: 'production', database: { server: 'odoo-main', name: 'odoo_ext' },
  });
  assert.equal(env.status, 201, JSON.stringify(env.body));
  const run = await call(server.url, t, 'POST', '/api/projects/ext/environments/production/runs', { kind: 'health' });
  assert.equal(run.status, 201);
  const done = await eventually('the health run', async () => {
    const r = await call(server.url, t, 'GET', `/api/runs/${run.body.id}`);
    return ['succeeded', 'failed'].includes(r.body.status) ? r.body : null;
  });
  assert.equal(done.status, 'succeeded', done.error);
  assert.equal(done.result.odooVersion, '17.0.1.3');

  // A second server on the same database (another machine, in production) finds the migrations applied.
  const second = await startServer({ home: tempHome(), databaseUrl: server.databaseUrl, log: () => {}, worker: false });
  try {
    const list = await call(second.url, second.token, 'GET', '/api/projects');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, [], 'a different local user sees none of the first one\'s projects');
  } finally {
    await second.stop(1000);
    rmSync(second.home, { recursive: true, force: true });
  }
});
