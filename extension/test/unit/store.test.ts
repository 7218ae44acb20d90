// The store behind the tree: loads through the API, takes run changes, and names the nodes to refresh.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { RUNS_PER_ENVIRONMENT, Store, progressOf, approvalsKey, backupsKey, envKey, projectKey } from '../../src/store.ts';

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
});
