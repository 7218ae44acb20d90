// Who may do what, through the API and straight in SQL as `authenticated`: project isolation, the
// per-stage role limits, the production-restore approval rule, and the append-only audit log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let adminA: TestUser, admin2A: TestUser, testerA: TestUser, devA: TestUser, viewerA: TestUser, adminB: TestUser;
let projectA: string, projectB: string;
const envIds: Record<string, string> = {};

const envBody = (name: string, stage: string) => ({ name, stage, database: { server: 'test-db', name: `odoo_${name.replaceAll('-', '_')}` } });

/** Expects a SQL statement run as `user` to fail with the given SQLSTATE. */
async function sqlRefused(user: TestUser, sql: string, params: unknown[], code: string | RegExp) {
  await assert.rejects(cp.sql(user, (c) => c.query(sql, params)), (err: { code?: string; message: string }) => {
    if (typeof code === 'string') assert.equal(err.code, code, err.message);
    else assert.match(err.message, code);
    return true;
  });
}

before(async () => {
  cp = await startControlPlane({ worker: false });
  [adminA, admin2A, testerA, devA, viewerA, adminB] = (await Promise.all(Array.from({ length: 6 }, (_, i) => cp.user(undefined, { instanceAdmin: i === 0 || i === 5 })))) as TestUser[] as [TestUser, TestUser, TestUser, TestUser, TestUser, TestUser];
  assert.equal((await adminA.call('POST', '/api/projects', { slug: 'alpha', name: 'Alpha' })).status, 201);
  assert.equal((await adminB.call('POST', '/api/projects', { slug: 'bravo', name: 'Bravo' })).status, 201);
  for (const [who, role] of [[admin2A, 'admin'], [testerA, 'tester'], [devA, 'developer'], [viewerA, 'viewer']] as const) {
    const r = await adminA.call('POST', '/api/projects/alpha/members', { userId: who.id, role });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const [name, stage] of [['production', 'production'], ['staging', 'staging'], ['dev', 'development']]) {
    const r = await adminA.call('POST', '/api/projects/alpha/environments', envBody(name!, stage!));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    envIds[`alpha/${name}`] = r.body.id;
  }
  const rb = await adminB.call('POST', '/api/projects/bravo/environments', envBody('production-b', 'production'));
  envIds['bravo/production-b'] = rb.body.id;
  projectA = (await cp.pool.query(`select id from ops.projects where slug = 'alpha'`)).rows[0].id;
  projectB = (await cp.pool.query(`select id from ops.projects where slug = 'bravo'`)).rows[0].id;
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"health"},{"kind":"restore"},{"kind":"backup"}]')`);
});
after(() => cp?.close());

describe('a member of project A cannot see or change project B', () => {
  test('through the API', async () => {
    const list = await adminA.call('GET', '/api/projects');
    assert.deepEqual(list.body.map((p: { slug: string }) => p.slug), ['alpha']);
    for (const path of ['/api/projects/bravo', '/api/projects/bravo/environments', '/api/projects/bravo/members', '/api/projects/bravo/audit']) {
      const r = await adminA.call('GET', path);
      assert.equal(r.status, 404, path);
    }
    assert.equal((await adminA.call('POST', '/api/projects/bravo/environments/production-b/runs', { kind: 'health' })).status, 404);
    assert.equal((await adminA.call('DELETE', '/api/projects/bravo')).status, 404);
    assert.equal((await adminA.call('POST', '/api/projects/bravo/members', { userId: adminA.id, role: 'admin' })).status, 404);
    // B's runs are invisible by id as well.
    const runB = await adminB.call('POST', '/api/projects/bravo/environments/production-b/runs', { kind: 'health' });
    assert.equal(runB.status, 201);
    assert.equal((await adminA.call('GET', `/api/runs/${runB.body.id}`)).status, 404);
    assert.equal((await adminA.call('GET', `/api/runs/${runB.body.id}/logs`)).status, 404);
    assert.equal((await adminA.call('POST', `/api/runs/${runB.body.id}/cancel`)).status, 404);
    const runs = await adminA.call('GET', '/api/runs?limit=500');
    assert.ok(runs.body.every((r: { project: string }) => r.project === 'alpha'));
  });

  test('straight in SQL as authenticated', async () => {
    const seen = await cp.sql(adminA, async (c) => ({
      projects: (await c.query('select slug from ops.projects')).rows.map((r) => r.slug),
      envs: (await c.query('select count(*)::int n from ops.environments where project_id = $1', [projectB])).rows[0].n,
      members: (await c.query('select count(*)::int n from ops.project_members where project_id = $1', [projectB])).rows[0].n,
      runs: (await c.query('select count(*)::int n from ops.runs where project_id = $1', [projectB])).rows[0].n,
      logs: (await c.query('select count(*)::int n from ops.run_logs l join ops.runs r on r.id = l.run_id where r.project_id = $1', [projectB])).rows[0].n,
      audit: (await c.query('select count(*)::int n from ops.audit_log where project_id = $1', [projectB])).rows[0].n,
    }));
    assert.deepEqual(seen, { projects: ['alpha'], envs: 0, members: 0, runs: 0, logs: 0, audit: 0 });
    const changed = await cp.sql(adminA, async (c) => ({
      renamed: (await c.query(`update ops.projects set name = 'pwned' where id = $1`, [projectB])).rowCount,
      moved: (await c.query(`update ops.environments set db_name = 'pwned' where project_id = $1`, [projectB])).rowCount,
      deleted: (await c.query('delete from ops.environments where project_id = $1', [projectB])).rowCount,
    }));
    assert.deepEqual(changed, { renamed: 0, moved: 0, deleted: 0 });
    await sqlRefused(adminA, 'insert into ops.project_members (project_id, user_id, role) values ($1, $2, $3)', [projectB, adminA.id, 'admin'], '42501');
    await sqlRefused(adminA, 'select ops.queue_run($1, $2)', [envIds['bravo/production-b'], 'health'], 'P0002');
    // Runs, logs and the audit log are never written directly by users.
    await sqlRefused(adminA, `insert into ops.runs (project_id, environment_id, kind) values ($1, $2, 'health')`, [projectA, envIds['alpha/dev']], '42501');
    await sqlRefused(adminA, `update ops.runs set status = 'succeeded'`, [], '42501');
    await sqlRefused(adminA, `select ops.claim_run('me', 30)`, [], '42501');
    await sqlRefused(adminA, `insert into ops.audit_log (action) values ('fake')`, [], '42501');
    const untouched = await cp.pool.query('select name from ops.projects where id = $1', [projectB]);
    assert.equal(untouched.rows[0].name, 'Bravo');
  });

  test('anon has no access to anything', async () => {
    const c = await cp.pool.connect();
    try {
      await c.query('begin');
      await c.query(`set local role anon`);
      await assert.rejects(c.query('select * from ops.projects'), /permission denied/);
    } finally {
      await c.query('rollback');
      c.release();
    }
  });
});

describe('roles per stage, modelled on Odoo.sh', () => {
  const expectations: [string, () => TestUser, Record<string, number>][] = [
    ['viewer', () => viewerA, { production: 403, staging: 403, dev: 403 }],
    ['developer', () => devA, { production: 403, staging: 403, dev: 201 }],
    ['tester', () => testerA, { production: 403, staging: 201, dev: 201 }],
    ['admin', () => adminA, { production: 201, staging: 201, dev: 201 }],
  ];
  for (const [role, who, byEnv] of expectations) {
    test(`a ${role} queues runs only where allowed`, async () => {
      for (const [env, status] of Object.entries(byEnv)) {
        const before = (await cp.pool.query('select count(*)::int n from ops.runs')).rows[0].n;
        const r = await who().call('POST', `/api/projects/alpha/environments/${env}/runs`, { kind: 'backup' });
        assert.equal(r.status, status, `${role} on ${env}: ${JSON.stringify(r.body)}`);
        const after = (await cp.pool.query('select count(*)::int n from ops.runs')).rows[0].n;
        assert.equal(after - before, status === 201 ? 1 : 0);
        if (status === 403) assert.match(r.body.error.message, /cannot queue runs/);
        // The same rule holds in SQL, not only in the API.
        if (status === 403) await sqlRefused(who(), 'select ops.queue_run($1, $2)', [envIds[`alpha/${env}`], 'backup'], '42501');
      }
    });
  }

  test('viewers read everything of their project but change nothing', async () => {
    assert.equal((await viewerA.call('GET', '/api/projects/alpha/environments')).body.length, 3);
    assert.equal((await viewerA.call('POST', '/api/projects/alpha/environments', envBody('mine', 'development'))).status, 403);
    assert.equal((await viewerA.call('DELETE', '/api/projects/alpha/environments/dev')).status, 403);
    assert.equal((await viewerA.call('POST', '/api/projects/alpha/members', { userId: viewerA.id, role: 'admin' })).status, 403);
    const run = await adminA.call('POST', '/api/projects/alpha/environments/dev/runs', { kind: 'health' });
    assert.equal((await viewerA.call('POST', `/api/runs/${run.body.id}/cancel`)).status, 403);
    assert.equal((await viewerA.call('GET', '/api/projects/alpha/audit')).status, 403, 'audit logs are for admins');
  });

  test('developers create development environments from a branch, not staging or production ones, nor with infrastructure of their choice', async () => {
    const own = await devA.call('POST', '/api/projects/alpha/environments', envBody('feature-x', 'development'));
    assert.equal(own.status, 403, 'a database server is an admin\'s choice');
    assert.match(own.body.error.message, /odooops env create-dev/);
    const fromBranch = await devA.call('POST', '/api/projects/alpha/dev-environments', { branch: 'feature-x', then: 'nothing' });
    assert.equal(fromBranch.status, 201, JSON.stringify(fromBranch.body));
    assert.deepEqual(fromBranch.body.environment.database, { server: 'test-db', name: 'odoo_production_dev_feature_x' }, 'production\'s server, a database of its own');
    assert.equal((await devA.call('POST', '/api/projects/alpha/environments', envBody('staging-2', 'staging'))).status, 403);
    assert.equal((await devA.call('DELETE', '/api/projects/alpha/environments/staging')).status, 403);
    assert.equal((await devA.call('DELETE', '/api/projects/alpha/environments/dev-feature-x')).status, 204);
    await sqlRefused(devA, `update ops.environments set stage = 'production' where id = $1`, [envIds['alpha/dev']], '42501');
  });

  test('the last admin cannot be removed or demoted', async () => {
    const r = await adminB.call('PATCH', `/api/projects/bravo/members/${adminB.id}`, { role: 'viewer' });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /at least one admin/);
    assert.equal((await adminB.call('DELETE', `/api/projects/bravo/members/${adminB.id}`)).status, 400);
  });
});

describe('a production restore needs an approval from a second member, enforced in the database', () => {
  // Backups the restores name (the API checks a backup exists, and is of the environment's stage, when queued).
  const B1 = '00000000-0000-4000-8000-0000000000b1';
  const B2 = '00000000-0000-4000-8000-0000000000b2';
  const BS = '00000000-0000-4000-8000-0000000000b5';
  const BB = '00000000-0000-4000-8000-0000000000bb';
  const restore = { kind: 'restore', params: { backup: B1 } };
  const stagingRestore = { kind: 'restore', params: { backup: BS } };
  before(async () => {
    for (const [id, env] of [[B1, 'production'], [B2, 'production'], [BS, 'staging']]) {
      await cp.pool.query(`insert into ops.backups (id, project_id, environment_id, kind, location) values ($1, $2, $3, 'manual', 'file:/nowhere')`,
        [id, projectA, envIds[`alpha/${env}`]]);
    }
    const projectB = (await cp.pool.query(`select id from ops.projects where slug = 'bravo'`)).rows[0].id;
    await cp.pool.query(`insert into ops.backups (id, project_id, environment_id, kind, location) values ($1, $2, $3, 'manual', 'file:/nowhere')`,
      [BB, projectB, envIds['bravo/production-b']]);
  });

  test('without approval it is refused, through the API and as the service role in SQL', async () => {
    const r = await adminA.call('POST', '/api/projects/alpha/environments/production/runs', restore);
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /needs an approval/);
    // Even a writer that skips the API and RLS (service role, table owner) hits the trigger.
    await assert.rejects(
      cp.pool.query(`insert into ops.runs (project_id, environment_id, kind, requested_by) values ($1, $2, 'restore', $3)`, [
        projectA, envIds['alpha/production'], adminA.id,
      ]),
      /needs an approval/,
    );
    // Staging restores need none.
    assert.equal((await testerA.call('POST', '/api/projects/alpha/environments/staging/runs', stagingRestore)).status, 201);
  });

  test('self-approval, wrong parameters, reuse and rejected approvals are refused', async () => {
    const req = await adminA.call('POST', '/api/projects/alpha/environments/production/approvals', { ...restore, reason: 'roll back bad import' });
    assert.equal(req.status, 201);
    const id = req.body.id;
    assert.equal((await adminA.call('POST', `/api/approvals/${id}/approve`)).status, 403, 'no approving your own request');
    assert.equal((await testerA.call('POST', `/api/approvals/${id}/approve`)).status, 403, 'testers have no say on production');
    assert.equal((await adminA.call('POST', '/api/projects/alpha/environments/production/runs', { ...restore, approvalId: id })).status, 403, 'pending');

    const ok = await admin2A.call('POST', `/api/approvals/${id}/approve`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'approved');
    assert.equal((await admin2A.call('POST', `/api/approvals/${id}/approve`)).status, 409, 'decided once');
    // The approver cannot queue it themselves: approval and run must be two different people.
    const byApprover = await admin2A.call('POST', '/api/projects/alpha/environments/production/runs', { ...restore, approvalId: id });
    assert.equal(byApprover.status, 403);
    assert.match(byApprover.body.error.message, /second person/);
    const otherParams = await adminA.call('POST', '/api/projects/alpha/environments/production/runs', { kind: 'restore', params: { backup: B2 }, approvalId: id });
    assert.equal(otherParams.status, 403);
    assert.match(otherParams.body.error.message, /other parameters/);

    const run = await adminA.call('POST', '/api/projects/alpha/environments/production/runs', { ...restore, approvalId: id });
    assert.equal(run.status, 201, JSON.stringify(run.body));
    assert.equal(run.body.approvalId, id);
    const reuse = await adminA.call('POST', '/api/projects/alpha/environments/production/runs', { ...restore, approvalId: id });
    assert.equal(reuse.status, 403);
    assert.match(reuse.body.error.message, /already used/);

    const req2 = await adminA.call('POST', '/api/projects/alpha/environments/production/approvals', restore);
    assert.equal((await admin2A.call('POST', `/api/approvals/${req2.body.id}/reject`)).body.status, 'rejected');
    assert.equal((await adminA.call('POST', '/api/projects/alpha/environments/production/runs', { ...restore, approvalId: req2.body.id })).status, 403);
    // An approval of project A cannot unlock project B's production.
    const req3 = await adminA.call('POST', '/api/projects/alpha/environments/production/approvals', restore);
    await admin2A.call('POST', `/api/approvals/${req3.body.id}/approve`);
    const cross = await adminB.call('POST', '/api/projects/bravo/environments/production-b/runs', { kind: 'restore', params: { backup: BB }, approvalId: req3.body.id });
    assert.equal(cross.status, 403, JSON.stringify(cross.body));
    assert.match(cross.body.error.message, /approval .* is not for a restore of this environment/);
  });
});

describe('the audit log is append-only', () => {
  const attempts = ['update ops.audit_log set action = $1', 'delete from ops.audit_log where action <> $1', 'truncate ops.audit_log'];

  test('records who did what', async () => {
    const r = await adminA.call('GET', '/api/projects/alpha/audit?limit=1000');
    assert.equal(r.status, 200);
    const actions = new Set(r.body.map((e: { action: string }) => e.action));
    for (const a of ['projects.insert', 'project_members.insert', 'environments.insert', 'runs.queued', 'approvals.update']) assert.ok(actions.has(a), a);
    assert.ok(r.body.some((e: { actor: string; action: string }) => e.actor === admin2A.id && e.action === 'approvals.update'));
  });

  for (const [who, role] of [['the service role', 'service_role'], ['the table owner', null], ['an authenticated admin', 'authenticated']] as const) {
    test(`${who} can neither update, delete nor truncate it`, async () => {
      const before = (await cp.pool.query('select count(*)::int n, max(id) m from ops.audit_log')).rows[0];
      for (const sql of attempts) {
        const c: pg.PoolClient = await cp.pool.connect();
        try {
          await c.query('begin');
          if (role) {
            await c.query(`select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)`, [
              role, JSON.stringify({ sub: adminA.id, role }),
            ]);
          }
          await assert.rejects(c.query(sql, sql.includes('$1') ? ['x'] : []), /append-only|permission denied/, `${who}: ${sql}`);
        } finally {
          await c.query('rollback');
          c.release();
        }
      }
      const after = (await cp.pool.query('select count(*)::int n, max(id) m from ops.audit_log')).rows[0];
      assert.deepEqual(after, before);
    });
  }
});

describe('infrastructure is for admins to choose, among what the operator bound to the project', () => {
  test('a developer cannot point an environment at another database, server or filestore, in the API or in SQL', async () => {
    const envId = envIds['alpha/dev'];
    for (const body of [{ database: { server: 'test-db' } }, { database: { name: 'odoo_production' } }, { filestore: 'anything' }]) {
      const r = await devA.call('PATCH', '/api/projects/alpha/environments/dev', body);
      assert.equal(r.status, 403, JSON.stringify(r.body));
    }
    for (const set of [`db_name = 'odoo_production_copy'`, `db_server = 'other-db'`, `filestore_root = 'x'`, `runtime = 'x'`, 'http_port = 8069']) {
      await sqlRefused(devA, `update ops.environments set ${set} where id = $1`, [envId], /only project admins choose/);
    }
    // An empty change is a clear 400, not a broken UPDATE.
    const empty = await adminA.call('PATCH', '/api/projects/alpha/environments/dev', { database: {} });
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.match(empty.body.error.message, /nothing to change/);
    // Without infrastructure, developers keep managing their development environments.
    const r = await devA.call('PATCH', '/api/projects/alpha/environments/dev', { branch: 'feature/y' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.branch, 'feature/y');
  });
});
