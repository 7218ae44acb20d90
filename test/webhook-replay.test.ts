// GitHub deliveries replayed under new ids. X-GitHub-Delivery is not covered by the signature, so anyone
// who once saw a signed payload (a proxy log, a leaked request bin) can send it again under fresh ids:
// each copy must do nothing, concurrent copies included, while GitHub's own redelivery (same id) and real
// later events with the same names (another commit, a branch deleted again after it was re-created) still
// act. Real server, real signatures; no worker runs, so what is queued stays visible.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sign } from '@octokit/webhooks-methods';
import { seedProject, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

const SECRET = 'replay-test-webhook-secret';
const REPO = 'acme/replay';
let cp: TestControlPlane;
let projectId: string;
let prodId: string;
const logged: string[] = [];

before(async () => {
  cp = await startControlPlane({ worker: false, githubWebhookSecret: SECRET, log: (m) => logged.push(m) });
  const admin = await cp.user();
  const seeded = await seedProject(cp.pool, admin.id, 'replay', [{ name: 'production', stage: 'production' }]);
  projectId = seeded.projectId;
  prodId = seeded.envIds.production!;
  await cp.pool.query(`update ops.projects set github_repo = $2, production_branch = 'main', production_needs_approval = true where id = $1`, [projectId, REPO]);
  await cp.pool.query(`select ops.register_run_kinds('[{"kind":"deploy"},{"kind":"destroy"},{"kind":"clone"}]')`);
});
after(() => cp?.close());

/** Sends a payload signed with the webhook secret under the given delivery id (a new one by default). */
async function deliver(event: string, body: string, id = randomUUID()) {
  const res = await fetch(`${cp.server.url}/api/webhooks/github`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': id, 'x-hub-signature-256': await sign(SECRET, body) },
    body,
  });
  return { id, status: res.status, body: await res.json() as any };
}

const sha = (n: number) => n.toString(16).padStart(40, 'a');
const ZERO = '0'.repeat(40);
/** A push payload as GitHub sends it (the fields OdooOps reads); pushed_at is the push's Unix time. */
const pushOf = (branch: string, before: string, after: string, pushedAt: number) =>
  JSON.stringify({ ref: `refs/heads/${branch}`, before, after, created: before === ZERO, deleted: false, repository: { full_name: REPO, pushed_at: pushedAt } });
const deleteOf = (branch: string, pushedAt: string) =>
  JSON.stringify({ ref: branch, ref_type: 'branch', pusher_type: 'user', repository: { full_name: REPO, pushed_at: pushedAt } });

const approvals = async (revision: string) =>
  (await cp.pool.query(`select count(*)::int as n from ops.approvals where environment_id = $1 and params->>'revision' = $2`, [prodId, revision])).rows[0].n as number;
const runs = async (kind: string, where = 'true', params: unknown[] = []) =>
  (await cp.pool.query(`select count(*)::int as n from ops.runs r join ops.environments e on e.id = r.environment_id where r.kind = $1 and ${where}`, [kind, ...params])).rows[0].n as number;

test('the same signed push under three new delivery ids asks for one production approval; GitHub\'s redelivery (same id) is a duplicate too', async () => {
  const body = pushOf('main', sha(1), sha(2), 1_800_000_000);
  const first = await deliver('push', body);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  assert.ok(first.body.approval, JSON.stringify(first.body));
  for (let i = 0; i < 3; i++) {
    const replay = await deliver('push', body);
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.equal(replay.body.duplicate, true);
    assert.equal(replay.body.sameAs, first.id, 'it says which delivery it repeats');
    assert.equal(replay.body.outcome.approval, first.body.approval, 'and what that one did');
  }
  assert.equal(await approvals(sha(2)), 1, 'one approval, not four');
  assert.ok(logged.some((l) => l.includes(`repeats delivery ${first.id}`)), 'the operator\'s log tells of the replays');

  const redelivered = await deliver('push', body, first.id);
  assert.equal(redelivered.status, 200);
  assert.equal(redelivered.body.duplicate, true);
  assert.equal(redelivered.body.sameAs, undefined, 'a redelivery is the delivery itself');
  assert.equal(redelivered.body.outcome.approval, first.body.approval);
  assert.equal(await approvals(sha(2)), 1);
  // One row per delivery that acted: the replays were not recorded as deliveries of their own.
  assert.equal((await cp.pool.query(`select count(*)::int as n from ops.webhook_deliveries where outcome->>'approval' = $1`, [first.body.approval])).rows[0].n, 1);
});

test('a push of another commit is a new event: a second approval', async () => {
  const next = await deliver('push', pushOf('main', sha(2), sha(3), 1_800_000_100));
  assert.equal(next.status, 202, JSON.stringify(next.body));
  assert.ok(next.body.approval);
  assert.equal(await approvals(sha(3)), 1);
  // A force-push back to an earlier commit is a real push too (another before, another time): it asks again.
  const back = await deliver('push', pushOf('main', sha(3), sha(2), 1_800_000_200));
  assert.equal(back.status, 202, JSON.stringify(back.body));
  assert.notEqual(back.body.approval, undefined);
  assert.equal(await approvals(sha(2)), 2);
});

test('concurrent replays of one push: exactly one acts', async () => {
  const body = pushOf('main', sha(3), sha(4), 1_800_000_300);
  const answers = await Promise.all(Array.from({ length: 6 }, () => deliver('push', body)));
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 202], JSON.stringify(answers.map((a) => a.body)));
  const acted = answers.find((a) => a.status === 202)!;
  for (const a of answers.filter((x) => x.status === 200)) {
    assert.equal(a.body.sameAs, acted.id);
    assert.equal(a.body.outcome.approval, acted.body.approval);
  }
  assert.equal(await approvals(sha(4)), 1);
});

test('a development branch: a replayed push queues one deploy; a replayed delete destroys nothing; a real delete of the re-created branch does', async () => {
  const push = pushOf('feature/replay', ZERO, sha(10), 1_800_001_000);
  const first = await deliver('push', push);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  assert.equal(first.body.created, true);
  assert.equal(first.body.environment, 'dev-feature-replay');
  for (let i = 0; i < 3; i++) assert.equal((await deliver('push', push)).body.duplicate, true);
  assert.equal(await runs('deploy', `e.name = 'dev-feature-replay'`), 1, 'one deploy run');

  const del = deleteOf('feature/replay', '2027-01-15T08:00:00Z');
  const deleted = await deliver('delete', del);
  assert.equal(deleted.status, 202, JSON.stringify(deleted.body));
  assert.equal(deleted.body.runs.length, 1);
  // What the destroy run ends with on a worker (none runs here): ops.archive_environment's update.
  await cp.pool.query(`update ops.environments set archived_at = now(), branch = null, name = name || '.gone-' || $2::text where project_id = $1 and name = 'dev-feature-replay'`,
    [projectId, deleted.body.runs[0]]);

  // Replays of the old push and the old delete: no environment comes back, nothing is destroyed.
  assert.equal((await deliver('push', push)).body.duplicate, true);
  assert.equal((await deliver('delete', del)).body.duplicate, true);
  assert.equal((await cp.pool.query(`select count(*)::int as n from ops.environments where project_id = $1 and archived_at is null and stage = 'development'`, [projectId])).rows[0].n, 0);

  // The branch is pushed again at the same commit (a new push: another time): a new environment.
  const again = await deliver('push', pushOf('feature/replay', ZERO, sha(10), 1_800_002_000));
  assert.equal(again.status, 202, JSON.stringify(again.body));
  assert.equal(again.body.created, true);
  const recreated = (await cp.pool.query(`select id from ops.environments where project_id = $1 and name = 'dev-feature-replay' and archived_at is null`, [projectId])).rows[0].id as string;
  // The old delete replayed now must not destroy the re-created environment...
  const stale = await deliver('delete', del);
  assert.equal(stale.status, 200);
  assert.equal(stale.body.duplicate, true);
  assert.equal(await runs('destroy', 'e.id = $2', [recreated]), 0);
  // ...while the real second delete (the repository was pushed since: a later pushed_at) does.
  const real = await deliver('delete', deleteOf('feature/replay', '2027-01-15T09:30:00Z'));
  assert.equal(real.status, 202, JSON.stringify(real.body));
  assert.equal(await runs('destroy', 'e.id = $2', [recreated]), 1);
});

test('a replayed pull request event is a duplicate; a delivery that acts on nothing (ping) is still deduplicated by its id', async () => {
  const pr = JSON.stringify({
    action: 'opened', number: 12, repository: { full_name: REPO, pushed_at: '2027-01-15T10:00:00Z' },
    pull_request: { head: { ref: 'feature/pr', sha: sha(20) }, updated_at: '2027-01-15T10:00:01Z' },
  });
  const first = await deliver('pull_request', pr);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  const replay = await deliver('pull_request', pr);
  assert.equal(replay.status, 200);
  assert.equal(replay.body.sameAs, first.id);

  const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
  const p1 = await deliver('ping', ping);
  assert.equal(p1.status, 202);
  assert.equal((await deliver('ping', ping, p1.id)).body.duplicate, true);
  assert.equal((await deliver('ping', ping)).status, 202, 'a ping has no key: a new id is a new ping, and it does nothing');
});
