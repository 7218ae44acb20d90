// What an editor needs from the API to offer only what the server allows and to name people (issue 18):
// each project says which stages your role may operate on; members are named by what the server knows
// of them (display name, GitHub name or login, else the verified email of an email-only sign-in, and
// the operator by the account the server runs as), and an email is never shown where a name exists
// or to someone who shares no project with them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import * as C from '../contract/index.ts';
import { call, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

let cp: TestControlPlane;
let admin: TestUser;
const P = 'names-acme';

before(async () => {
  cp = await startControlPlane({ worker: false });
  admin = await cp.user('admin@example.invalid', { instanceAdmin: true });
  assert.equal((await admin.call('POST', '/api/projects', { slug: P, name: 'Acme' })).status, 201);
});
after(async () => {
  await cp?.close();
});

test('a project says which stages your role may operate on, as the database decides it', async () => {
  const expected: Record<C.Role, C.Stage[]> = {
    admin: ['production', 'staging', 'development'],
    tester: ['staging', 'development'],
    developer: ['development'],
    viewer: [],
  };
  for (const role of ['tester', 'developer', 'viewer'] as const) {
    const u = await cp.user();
    assert.equal((await admin.call('POST', `/api/projects/${P}/members`, { userId: u.id, role })).status, 201);
    const [listed] = C.Project.array().parse((await u.call('GET', '/api/projects')).body);
    assert.equal(listed?.role, role);
    assert.deepEqual([...listed!.operates!].sort(), [...expected[role]].sort(), role);
    const one = C.Project.parse((await u.call('GET', `/api/projects/${P}`)).body);
    assert.deepEqual([...one.operates!].sort(), [...expected[role]].sort(), `${role}: one project`);
    // What the list says is what the database does: a viewer's queue is refused.
    for (const stage of C.STAGES) {
      const allowed = (await cp.sql(u, async (c) => (await c.query(`select ops.can_operate(p.id, $1) as ok from ops.projects p where p.slug = $2`, [stage, P])).rows[0].ok)) as boolean;
      assert.equal(allowed, expected[role].includes(stage), `${role} on ${stage}`);
    }
  }
  const [mine] = C.Project.array().parse((await admin.call('GET', '/api/projects')).body);
  assert.deepEqual([...mine!.operates!].sort(), [...expected.admin].sort());
});

test('members are named by what the server knows: an email-only sign-in by its email, never an email where a name exists', async () => {
  const emailOnly = await cp.user();
  const withLogin = await cp.user();
  const unknown = await cp.user();
  await cp.pool.query(`insert into ops.users (id, email) values ($1, 'ana@example.invalid')`, [emailOnly.id]);
  await cp.pool.query(`insert into ops.users (id, github_login, email) values ($1, 'hubot', 'hubot-private@example.invalid')`, [withLogin.id]);
  for (const u of [emailOnly, withLogin, unknown]) {
    assert.equal((await admin.call('POST', `/api/projects/${P}/members`, { userId: u.id, role: 'viewer' })).status, 201);
  }
  const res = await emailOnly.call('GET', `/api/projects/${P}/members`);
  assert.equal(res.status, 200);
  const members = C.Member.array().parse(res.body);
  const name = (id: string) => members.find((m) => m.userId === id)?.name;
  assert.equal(name(emailOnly.id), 'ana@example.invalid');
  assert.equal(name(withLogin.id), 'hubot');
  assert.equal(name(unknown.id), null, 'nothing known: no name made up');
  assert.ok(!JSON.stringify(res.body).includes('hubot-private'), 'the email of someone with a login is not shown');

  // Someone who shares no project with them learns nothing through the function either.
  const stranger = await cp.user();
  const leaked = await cp.sql(stranger, async (c) => (await c.query('select ops.unnamed_member_email($1) as e', [emailOnly.id])).rows[0].e);
  assert.equal(leaked, null);
  // Nor does anyone call it without signing in.
  const c = await cp.pool.connect();
  try {
    await c.query('set role anon');
    await assert.rejects(c.query('select ops.unnamed_member_email($1)', [emailOnly.id]), /permission denied/);
  } finally {
    await c.query('reset role');
    c.release();
  }
});

test('the operator (the server\'s own identity) is named after the account the server runs as', async () => {
  assert.equal((await admin.call('POST', `/api/projects/${P}/members`, { userId: cp.server.userId, role: 'admin' })).status, 201);
  const members = C.Member.array().parse((await admin.call('GET', `/api/projects/${P}/members`)).body);
  assert.equal(members.find((m) => m.userId === cp.server.userId)?.name, `${userInfo().username} (operator)`);
  const me = C.Me.parse((await call(cp.server.url, cp.server.token, 'GET', '/api/me')).body);
  assert.equal(me.name, `${userInfo().username} (operator)`);
});
