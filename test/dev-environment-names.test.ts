// Branches whose names make the same environment name ("feature/x" and "feature-x": both dev-feature-x)
// each get an environment and a database of their own, and the push of the second is not lost. Real
// server and signatures; no worker runs, so what is queued stays visible.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sign } from '@octokit/webhooks-methods';
import { seedProject, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

const SECRET = 'names-test-webhook-secret';
const REPO = 'acme/names';
let cp: TestControlPlane;
let projectId: string;

before(async () => {
  cp = await startControlPlane({ worker: false, githubWebhookSecret: SECRET });
  const admin = await cp.user();
  projectId = (await seedProject(cp.pool, admin.id, 'names', [{ name: 'production', stage: 'production', db: 'names_prod' }])).projectId;
  await cp.pool.query(`update ops.projects set github_repo = $2, production_branch = 'main' where id = $1`, [projectId, REPO]);
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"deploy"},{"kind":"build"},{"kind":"destroy"}]')`);
});
after(() => cp?.close());

let pushedAt = 1_800_000_000;
async function push(branch: string, after: string) {
  const body = JSON.stringify({ ref: `refs/heads/${branch}`, before: '0'.repeat(40), after, created: true, deleted: false, repository: { full_name: REPO, pushed_at: pushedAt++ } });
  const res = await fetch(`${cp.server.url}/api/webhooks/github`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': await sign(SECRET, body) },
    body,
  });
  return { status: res.status, body: await res.json() as any };
}

const envs = async () => (await cp.pool.query(
  `select name, branch, db_name from ops.environments where project_id = $1 and stage = 'development' and archived_at is null order by created_at, name`, [projectId])).rows;

test('"feature/x", "feature-x" and "Feature_X" get three environments and three databases', async () => {
  const a = await push('feature/x', '1'.repeat(40));
  assert.equal(a.status, 202, JSON.stringify(a.body));
  const b = await push('feature-x', '2'.repeat(40));
  assert.equal(b.status, 202, JSON.stringify(b.body));
  const c = await push('Feature_X', '3'.repeat(40));
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const list = await envs();
  assert.deepEqual(list.map((e) => [e.name, e.branch]), [['dev-feature-x', 'feature/x'], ['dev-feature-x-2', 'feature-x'], ['dev-feature-x-3', 'Feature_X']]);
  assert.equal(new Set(list.map((e) => e.db_name)).size, 3, JSON.stringify(list));
  assert.deepEqual([a.body.environment, b.body.environment, c.body.environment], ['dev-feature-x', 'dev-feature-x-2', 'dev-feature-x-3']);
  // A later push of each branch goes to its own environment.
  const again = await push('feature-x', '4'.repeat(40));
  assert.equal(again.body.environment, 'dev-feature-x-2');
  assert.equal((await envs()).length, 3);
});

test('names cut to 63 characters stay apart too', async () => {
  const long = `feature/${'a'.repeat(70)}`;
  const a = await push(`${long}-one`, '5'.repeat(40));
  const b = await push(`${long}-two`, '6'.repeat(40));
  assert.equal(a.status, 202, JSON.stringify(a.body));
  assert.equal(b.status, 202, JSON.stringify(b.body));
  assert.notEqual(a.body.environment, b.body.environment);
  const list = await envs();
  for (const e of list) {
    assert.ok(e.name.length <= 63, e.name);
    assert.ok(Buffer.byteLength(e.db_name) <= 63, e.db_name);
  }
  assert.equal(new Set(list.map((e) => e.db_name)).size, list.length, 'a database each');
});

test('a branch named like OdooOps\'s side databases gets a database name an environment may have', async () => {
  const r = await push('fix/odooops-new-1', '7'.repeat(40));
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const env = (await envs()).find((e) => e.branch === 'fix/odooops-new-1');
  assert.equal(env?.name, 'dev-fix-odooops-new-1');
  assert.equal(env?.db_name, 'names_prod_dev_fix_odoo_ops_new_1');
});
