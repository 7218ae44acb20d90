// The store behind the tree: loads through the API, takes run changes, and names the nodes to refresh.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { RUNS_PER_ENVIRONMENT, Store, compareRunStates, progressOf, approvalsKey, backupsKey, envKey, projectKey } from '../../src/store.ts';

const project = (slug: string): C.Project => ({ id: '00000000-0000-4000-8000-000000000001', slug, name: slug.toUpperCase(), role: 'admin', createdAt: '2026-11-25T00:00:00.000Z' });
const env = (name: string, stage: C.Environment['stage']): C.Environment => ({
  id: '00000000-0000-4000-8000-00000000000a', project: 'acme', name, stage, branch: null, url: null,
  database: { server: 'main-pg', name: `acme_${name}` }, filestore: null, runtime: null, activeRunId: null,
});
const ME = '00000000-0000-4000-8000-0000000000ee';
const PEER = '00000000-0000-4000-8000-0000000000ff';
const base = {
  '/api/me': { userId: ME, email: null, role: 'authenticated', instanceAdmin: false }, '/api/projects/acme/approvals': [] as C.Approval[],
  '/api/projects/acme/members': [{ userId: PEER, role: 'admin', displayName: 'Ana (ops)', addedAt: '2026-11-25T00:00:00.000Z' }],
};
const approval = (id: string, status: C.Approval['status'], usedByRunId: number | null = null): C.Approval => ({
  id, environment: 'production', kind: 'restore', params: {}, reason: null, status, requestedBy: ME, decidedBy: null, usedByRunId,
});
const backup = (id: string): C.Backup => ({
  id, environment: 'staging', kind: 'manual', createdAt: '2026-11-25T10:00:00.000Z', sizeBytes: 1, sha256: null, odooVersion: '17.0', database: 'acme_staging', masked: false, runId: 1,
});
const run = (id: number, environment: string, status: C.Run['status'] = 'queued', kind = 'backup'): C.Run => ({
  id, project: 'acme', environment, kind, status, params: {}, requestedBy: null, idempotencyKey: null, approvalId: null,
  attempts: 0, maxAttempts: 3, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false, queuedAt: '2026-11-25T10:00:00.000Z',
  startedAt: null, finishedAt: null, error: null, result: null, lastSeq: 0,
});

/** A stand-in for the HTTP API (the real one is exercised by the server's tests): answers by path. */
function api(own: Record<string, unknown>) {
  const asked: string[] = [];
  return {
    asked,
    get: async <T>(path: string, schema: { parse(v: unknown): T }) => {
      asked.push(path);
      const routes: Record<string, unknown> = { ...base, ...own };
      if (!(path in routes)) throw new Error(`no route ${path}`);
      return schema.parse(routes[path]);
    },
  };
}

describe('Store', () => {
  it('loads projects, their environments and recent runs (newest first, at most a page per environment)', async () => {
    const many = Array.from({ length: 15 }, (_, i) => run(i + 1, 'production', 'succeeded'));
    const a = api({
      '/api/projects': [project('acme')],
      '/api/projects/acme/environments': [env('production', 'production'), env('staging', 'staging')],
      '/api/runs?project=acme&limit=200': [...many, run(16, 'staging', 'running')],
    });
    const s = new Store(a);
    let changed: string[] | null | undefined;
    s.onDidChange((k) => (changed = k));
    await s.load();
    assert.equal(changed, null, 'a load redraws everything');
    assert.deepEqual(s.environments('acme').map((e) => e.name), ['production', 'staging']);
    assert.equal(s.runsOf('acme', 'production').length, RUNS_PER_ENVIRONMENT);
    assert.equal(s.lastRun('acme', 'production')?.id, 15);
    assert.equal(s.runningCount(), 1);
    assert.equal(s.error, null);
    assert.deepEqual([s.who(ME), s.who(PEER), s.who('00000000-0000-0000-0000-000000000000'), s.who('12345678-0000-4000-8000-000000000000')],
      ['you', 'Ana (ops)', 'OdooOps', '12345678'], 'who asked for a run');
  });

  it('a run change refreshes only its environment, and only when something changed', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [run(1, 'staging')] }));
    await s.load();
    const seen: (string[] | null)[] = [];
    s.onDidChange((k) => seen.push(k));
    assert.deepEqual(s.applyRun(run(1, 'staging', 'running')), [envKey('acme', 'staging')]);
    assert.deepEqual(s.applyRun(run(1, 'staging', 'running')), [], 'the same state twice is no change');
    s.applyRun(run(2, 'staging', 'queued'));
    assert.deepEqual(seen, [[envKey('acme', 'staging')], [envKey('acme', 'staging')]]);
    assert.deepEqual(s.runsOf('acme', 'staging').map((r) => r.id), [2, 1]);
    assert.equal(s.runningCount(), 2);
  });

  it('an older state of a run (fewer log lines) arriving late does not replace a newer one', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [] }));
    await s.load();
    const failed = { ...run(1, 'staging', 'failed'), attempts: 2, lastSeq: 9 };
    assert.deepEqual(s.applyRun(failed), [envKey('acme', 'staging')]);
    // The retry command's answer (queued, as the retry left it) comes after the feed read the end.
    assert.deepEqual(s.applyRun({ ...run(1, 'staging', 'queued'), attempts: 1, lastSeq: 4 }), [], 'ignored');
    assert.equal(s.runsOf('acme', 'staging')[0]!.status, 'failed');
    // A newer state (more lines) does replace it: the run retried again.
    assert.deepEqual(s.applyRun({ ...run(1, 'staging', 'queued'), attempts: 2, lastSeq: 10 }), [envKey('acme', 'staging')]);
    assert.equal(s.runsOf('acme', 'staging')[0]!.status, 'queued');
  });

  it('a server that cannot be reached is an error the tree can show, not a crash', async () => {
    const s = new Store({ get: async () => { throw new Error('cannot reach the OdooOps server at http://127.0.0.1:9'); } });
    await s.load();
    assert.match(s.error!, /cannot reach/);
    assert.deepEqual(s.projects, []);
  });

  it('health: the newest health run of an environment, even when newer runs push it out of the list', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [] }));
    await s.load();
    assert.equal(s.healthOf('acme', 'staging'), undefined, 'not checked yet');
    s.applyRun(run(1, 'staging', 'failed', 'health'));
    assert.equal(s.healthOf('acme', 'staging')?.state, 'unhealthy');
    s.applyRun(run(2, 'staging', 'running', 'health'));
    assert.equal(s.healthOf('acme', 'staging')?.state, 'checking');
    s.applyRun(run(2, 'staging', 'succeeded', 'health'));
    for (let i = 3; i < 3 + RUNS_PER_ENVIRONMENT + 2; i++) s.applyRun(run(i, 'staging', 'succeeded'));
    assert.ok(!s.runsOf('acme', 'staging').some((r) => r.kind === 'health'), 'out of the recent runs');
    assert.equal(s.healthOf('acme', 'staging')?.state, 'healthy');
    s.applyRun(run(1, 'staging', 'failed', 'health'));
    assert.equal(s.healthOf('acme', 'staging')?.run.id, 2, 'an older health run does not win');
  });

  it('backups are read when first looked at and again after a run that makes one succeeds; only their node refreshes', async () => {
    const a = api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/environments/staging/backups': [backup('00000000-0000-4000-8000-0000000000b1')] });
    const s = new Store(a);
    await s.load();
    assert.equal(s.backupsOf('acme', 'staging'), undefined, 'not read before anyone looks');
    assert.ok(!a.asked.some((p) => p.endsWith('/backups')));
    assert.equal((await s.loadBackups('acme', 'staging')).length, 1);
    assert.deepEqual(s.applyRun(run(7, 'staging', 'running')), [envKey('acme', 'staging')], 'a running backup changes no backup list');
    assert.ok(s.backupsOf('acme', 'staging'));
    assert.deepEqual(s.applyRun(run(7, 'staging', 'succeeded')), [envKey('acme', 'staging'), backupsKey('acme', 'staging')]);
    assert.equal(s.backupsOf('acme', 'staging'), undefined, 'read again on the next look');
    assert.deepEqual(s.applyRun(run(8, 'staging', 'succeeded', 'health')), [envKey('acme', 'staging')], 'a health check makes no backup');
  });

  it('approvals: pending ones and approved ones no run used; a change refreshes the project and its approvals', async () => {
    const routes: Record<string, unknown> = { '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production')], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/approvals': [approval('00000000-0000-4000-8000-0000000000a1', 'pending')] };
    const s = new Store(api(routes));
    await s.load();
    assert.equal(s.me, ME);
    assert.deepEqual(s.openApprovals('acme').map((x) => x.status), ['pending']);
    assert.deepEqual(await s.reloadApprovals('acme'), [], 'nothing changed, nothing redrawn');
    routes['/api/projects/acme/approvals'] = [approval('00000000-0000-4000-8000-0000000000a2', 'approved', 12), approval('00000000-0000-4000-8000-0000000000a1', 'approved'),
      approval('00000000-0000-4000-8000-0000000000a3', 'rejected')];
    const s2 = new Store(api(routes));
    await s2.load();
    assert.deepEqual(s2.openApprovals('acme').map((x) => x.id), ['00000000-0000-4000-8000-0000000000a1'], 'approved and unused: still to run');
    routes['/api/projects/acme/approvals'] = [];
    assert.deepEqual(await s2.reloadApprovals('acme'), [projectKey('acme'), approvalsKey('acme')]);
    assert.deepEqual(s2.openApprovals('acme'), []);
  });

  it('reads how far a run is from its log lines', () => {
    assert.deepEqual(progressOf('copying: 68 % (4 of 15 tables, 42.9 MiB streamed)'), { what: 'copying', percent: 68 });
    assert.deepEqual(progressOf('restoring: 100%'), { what: 'restoring', percent: 100 });
    for (const l of ['copied 15 tables', 'mask.log: res_partner: 80000 rows', 'ratio: 250 %', '2026-11-25 10:00:00 INFO 12 %', '']) assert.equal(progressOf(l), null, l);
  });

  it('an environment made from the editor joins its project in the API\'s order and refreshes only the project', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production'), env('zeta', 'development')], '/api/runs?project=acme&limit=200': [] }));
    await s.load();
    const added = { ...env('dev-login', 'development'), id: '00000000-0000-4000-8000-00000000000b' };
    assert.deepEqual(s.putEnvironment(added), [projectKey('acme')]);
    assert.deepEqual(s.environments('acme').map((e) => e.name), ['production', 'dev-login', 'zeta']);
    assert.deepEqual(s.putEnvironment(added), [], 'already listed');
    assert.deepEqual(s.putEnvironment({ ...added, id: '00000000-0000-4000-8000-00000000000c', project: 'other' }), [], 'not a loaded project');
  });

  it('an edited environment replaces the listed one and refreshes only its node', async () => {
    const staging = { ...env('staging', 'staging'), id: '00000000-0000-4000-8000-00000000000d' };
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production'), staging], '/api/runs?project=acme&limit=200': [] }));
    await s.load();
    let changed: string[] | null | undefined;
    s.onDidChange((k) => (changed = k));
    assert.deepEqual(s.updateEnvironment({ ...staging, url: 'https://staging.acme.example' }), [envKey('acme', 'staging')]);
    assert.deepEqual(changed, [envKey('acme', 'staging')]);
    assert.equal(s.environment('acme', 'staging')?.url, 'https://staging.acme.example');
    assert.deepEqual(s.environments('acme').map((e) => e.name), ['production', 'staging'], 'in its place, not added');
  });

  it('names people as the server does: the name an admin gave, else their GitHub name, else their login; you by your sign-in', async () => {
    const [a, b, c] = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000a3'];
    const member = (userId: string, fields: Partial<C.Member>): C.Member => ({ userId, role: 'developer', displayName: null, addedAt: '2026-11-25T00:00:00.000Z', ...fields });
    const s = new Store(api({
      '/api/me': { userId: ME, email: null, role: 'authenticated', instanceAdmin: false, name: 'The Octocat', githubLogin: 'octocat' },
      '/api/projects': [project('acme')], '/api/projects/acme/environments': [], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/members': [
        member(a, { displayName: 'Ana (ops)', name: 'Ana (ops)', githubLogin: 'ana' }),
        member(b, { name: 'Hubot Robot', githubLogin: 'hubot' }),
        member(c, { githubLogin: 'mona' }),
      ],
    }));
    await s.load();
    assert.deepEqual([s.who(a), s.who(b), s.who(c), s.who(ME)], ['Ana (ops)', 'Hubot Robot', 'mona', 'you']);
    assert.equal(s.meName, 'The Octocat');
    assert.deepEqual(s.membersOf('acme').map((m) => m.userId), [a, b, c]);
  });

  it('reset forgets everything (signed out): no projects, no names, no error, and the whole tree redraws', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [run(1, 'staging')] }));
    await s.load();
    let changed: string[] | null | undefined;
    s.onDidChange((k) => (changed = k));
    s.reset();
    assert.equal(changed, null);
    assert.deepEqual([s.projects, s.environments('acme'), s.runsOf('acme', 'staging'), s.me, s.meName, s.error], [[], [], [], null, null, null]);
    assert.equal(s.who(PEER), PEER.slice(0, 8));
  });

  it('snapshots of a run fed out of order: a terminal state is never replaced by an older one, even with as many log lines (a fast failure)', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [] }));
    await s.load();
    const q = run(9, 'staging', 'queued', 'deploy');
    const running = { ...q, status: 'running' as const, attempts: 1, startedAt: '2026-11-25T10:00:00.010Z', leaseOwner: 'w1' };
    // Failed 20 ms later, before writing a line: as many log lines as when it was claimed.
    const failed = { ...running, status: 'failed' as const, leaseOwner: null, finishedAt: '2026-11-25T10:00:00.030Z', error: 'no repository to deploy from' };
    // The Realtime feed read the end first; the command's answer (queued) and a re-read of the project
    // (running) land after it.
    s.applyRun(failed);
    assert.deepEqual(s.applyRun(running), [], 'the running snapshot is older');
    assert.deepEqual(s.applyRun(q), [], 'the queued snapshot is older');
    assert.equal(s.run('acme', 'staging', 9)?.status, 'failed');
    assert.equal(s.runningCount(), 0, 'the status bar counts nothing running');
    // In order, each one does replace the one before.
    const t = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [] }));
    await t.load();
    for (const state of [q, running, failed]) assert.deepEqual(t.applyRun(state), [envKey('acme', 'staging')], state.status);
    // A retry (the same run queued again) writes a line: newer than its end.
    assert.deepEqual(t.applyRun({ ...failed, status: 'queued', finishedAt: null, error: null, lastSeq: 1 }), [envKey('acme', 'staging')]);
    assert.equal(t.run('acme', 'staging', 9)?.status, 'queued');
    // Every order of the three ends on the last state.
    const orders = [[q, running, failed], [q, failed, running], [running, q, failed], [running, failed, q], [failed, q, running], [failed, running, q]];
    for (const order of orders) {
      const u = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('staging', 'staging')], '/api/runs?project=acme&limit=200': [] }));
      await u.load();
      for (const state of order) u.applyRun(state);
      assert.equal(u.run('acme', 'staging', 9)?.status, 'failed', order.map((x) => x.status).join(' → '));
    }
    assert.ok(compareRunStates(running, failed) < 0 && compareRunStates(q, running) < 0 && compareRunStates(failed, failed) === 0);
  });

  it('an approval used by a run stops being offered as "approved: run it" when the run arrives (no re-read)', async () => {
    const id = '00000000-0000-4000-8000-0000000000a1';
    const a = api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production')], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/approvals': [{ ...approval(id, 'approved'), decidedBy: PEER }] });
    const s = new Store(a);
    await s.load();
    assert.equal(s.openApprovals('acme').length, 1);
    const asked = a.asked.length;
    const keys = s.applyRun({ ...run(12, 'production', 'queued', 'restore'), approvalId: id, requestedBy: ME });
    assert.deepEqual(s.openApprovals('acme'), [], 'used up');
    assert.ok(keys.includes(approvalsKey('acme')) && keys.includes(projectKey('acme')), 'the project and its approvals redraw');
    assert.equal(a.asked.length, asked, 'learned from the run itself');
    assert.deepEqual(s.applyRun({ ...run(12, 'production', 'running', 'restore'), approvalId: id, attempts: 1 }), [envKey('acme', 'production')], 'once');
  });

  it('housekeeping (retention) runs are listed but never an environment\'s last run', async () => {
    const s = new Store(api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production')],
      '/api/runs?project=acme&limit=200': [run(3, 'production', 'succeeded', 'retention'), run(2, 'production', 'failed', 'backup'), run(1, 'production', 'succeeded', 'retention')] }));
    await s.load();
    assert.equal(s.lastRun('acme', 'production')?.id, 2);
    assert.deepEqual(s.runsOf('acme', 'production').map((r) => r.id), [3, 2, 1]);
    s.applyRun(run(4, 'production', 'running', 'retention'));
    assert.equal(s.lastRun('acme', 'production')?.id, 2);
  });

  it('more than a page of runs: "Show more…" reads the next page of the environment, older than the oldest listed', async () => {
    const many = Array.from({ length: 25 }, (_, i) => run(25 - i, 'production', 'succeeded'));
    const a = api({
      '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production'), env('staging', 'staging')],
      '/api/runs?project=acme&limit=200': [...many.slice(0, 12), run(30, 'staging', 'succeeded')].sort((x, y) => y.id - x.id),
      '/api/runs?project=acme&environment=production&limit=11&before=16': many.slice(10, 21),
      '/api/runs?project=acme&environment=production&limit=11&before=6': many.slice(20, 25),
    });
    const s = new Store(a);
    await s.load();
    assert.equal(s.runsOf('acme', 'production').length, RUNS_PER_ENVIRONMENT);
    assert.equal(s.hasMoreRuns('acme', 'production'), true);
    assert.equal(s.hasMoreRuns('acme', 'staging'), false, 'one run, and the first read was not full');
    assert.deepEqual(await s.loadMoreRuns('acme', 'production'), [envKey('acme', 'production')]);
    assert.deepEqual(s.runsOf('acme', 'production').map((r) => r.id), Array.from({ length: 20 }, (_, i) => 25 - i));
    assert.equal(s.hasMoreRuns('acme', 'production'), true, 'a page and one more came back');
    await s.loadMoreRuns('acme', 'production');
    assert.equal(s.runsOf('acme', 'production').length, 25);
    assert.equal(s.hasMoreRuns('acme', 'production'), false);
    // A new run keeps the list at its length: the oldest leaves, and can be shown again.
    s.applyRun(run(40, 'production', 'queued'));
    assert.equal(s.runsOf('acme', 'production').length, 25);
    assert.equal(s.runsOf('acme', 'production')[0]!.id, 40);
    assert.equal(s.hasMoreRuns('acme', 'production'), true);
  });

  it('roles: what you may do follows the stages the server says your role operates on; your own request is not yours to decide', async () => {
    const roled = (slug: string, role: C.Role, operates: C.Stage[]): C.Project => ({ ...project(slug), role, operates });
    const pending = { ...approval('00000000-0000-4000-8000-0000000000a1', 'pending'), environment: 'staging' };
    const theirs = { ...approval('00000000-0000-4000-8000-0000000000a2', 'pending'), environment: 'staging', requestedBy: PEER };
    const approvedByMe = { ...approval('00000000-0000-4000-8000-0000000000a3', 'approved'), environment: 'staging', requestedBy: PEER, decidedBy: ME };
    const approvedForMe = { ...approval('00000000-0000-4000-8000-0000000000a4', 'approved'), environment: 'staging', decidedBy: PEER };
    const routes = {
      '/api/projects': [roled('acme', 'tester', ['staging', 'development'])],
      '/api/projects/acme/environments': [env('production', 'production'), env('staging', 'staging')], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/approvals': [approvedForMe, approvedByMe, theirs, pending],
    };
    const s = new Store(api(routes));
    const seen: object[] = [];
    s.onDidChangeAbilities((x) => seen.push(x));
    await s.load();
    assert.deepEqual([s.mayOperate('acme', 'production'), s.mayOperate('acme', 'staging'), s.mayOperate('other', 'staging')], [false, true, false]);
    assert.equal(s.mayDecide('acme', pending), false, 'your own request');
    assert.equal(s.mayDecide('acme', theirs), true);
    assert.equal(s.mayDecide('acme', { ...theirs, environment: 'production' }), false, 'a tester does not decide production');
    assert.equal(s.mayRunApproved('acme', approvedByMe), false, 'you approved it: someone else runs it');
    assert.equal(s.mayRunApproved('acme', approvedForMe), true);
    assert.deepEqual(s.abilities(), { canRun: true, canClone: true, canCreateDev: true, isAdmin: false, canDecide: true, canRunApproved: true });
    assert.equal(seen.length, 2, 'once before the load, once after');

    const viewer = new Store(api({ ...routes, '/api/projects': [roled('acme', 'viewer', [])] }));
    await viewer.load();
    assert.deepEqual(viewer.abilities(), { canRun: false, canClone: false, canCreateDev: false, isAdmin: false, canDecide: false, canRunApproved: false });
  });

  it('an approval in words: a restore names its backup by kind, time and run, not by id', async () => {
    const b = { ...backup('00000000-0000-4000-8000-0000000000b1'), environment: 'production', runId: 7 };
    const a = api({ '/api/projects': [project('acme')], '/api/projects/acme/environments': [env('production', 'production')], '/api/runs?project=acme&limit=200': [],
      '/api/projects/acme/environments/production/backups': [b] });
    const s = new Store(a);
    await s.load();
    const text = await s.describeApproval('acme', { ...approval('00000000-0000-4000-8000-0000000000a1', 'pending'), params: { backup: b.id } });
    assert.equal(text, 'the manual backup of production made 2026-11-25 10:00:00 UTC by run #7');
    assert.ok(!text.includes(b.id));
    assert.match(await s.describeApproval('acme', { ...approval('00000000-0000-4000-8000-0000000000a2', 'pending'), params: { backup: '00000000-0000-4000-8000-0000000000ff' } }), /no longer listed/);
    assert.equal(await s.describeApproval('acme', { ...approval('00000000-0000-4000-8000-0000000000a3', 'pending'), kind: 'deploy', params: { revision: 'a'.repeat(40) } }), 'commit aaaaaaaaaaaa');
  });

  it('someone who joined after the load is named once the members are read again; a former member is asked for once', async () => {
    const NEW = '00000000-0000-4000-8000-0000000000ab';
    const GONE = '00000000-0000-4000-8000-0000000000cd';
    const routes: Record<string, unknown> = {
      '/api/projects': [project('acme')],
      '/api/projects/acme/environments': [env('production', 'production')],
      '/api/runs?project=acme&limit=200': [],
    };
    const a = api(routes);
    const s = new Store(a);
    await s.load();
    // Ana Lima is added to the project, then her first run arrives through Realtime.
    routes['/api/projects/acme/members'] = [
      { userId: PEER, role: 'admin', displayName: 'Ana (ops)', addedAt: '2026-11-25T00:00:00.000Z' },
      { userId: NEW, role: 'admin', displayName: null, name: 'Ana Lima', addedAt: '2026-12-01T00:00:00.000Z' },
    ];
    const changed: (string[] | null)[] = [];
    s.onDidChange((k) => changed.push(k));
    s.applyRun({ ...run(7, 'production', 'running'), requestedBy: NEW });
    assert.equal(s.who(NEW), NEW.slice(0, 8), 'an id until the members are read');
    assert.equal(s.who(GONE), GONE.slice(0, 8));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.who(NEW), 'Ana Lima');
    assert.ok(changed.some((k) => k?.includes(projectKey('acme'))), 'the project redraws with the name');
    const reads = a.asked.filter((p) => p === '/api/projects/acme/members').length;
    s.who(GONE);
    s.who(GONE);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(a.asked.filter((p) => p === '/api/projects/acme/members').length, reads, 'a former member is not asked for again');
    assert.equal(s.who(GONE), GONE.slice(0, 8));
  });
});
