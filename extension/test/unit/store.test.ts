// The store behind the tree: loads through the API, takes run changes, and names the nodes to refresh.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { RUNS_PER_ENVIRONMENT, Store, envKey } from '../../src/store.ts';

const project = (slug: string): C.Project => ({ id: '00000000-0000-4000-8000-000000000001', slug, name: slug.toUpperCase(), role: 'admin', createdAt: '2026-11-25T00:00:00.000Z' });
const env = (name: string, stage: C.Environment['stage']): C.Environment => ({
  id: '00000000-0000-4000-8000-00000000000a', project: 'acme', name, stage, branch: null, url: null,
  database: { host: null, port: null, name: `acme_${name}`, user: null, passwordRef: null }, filestorePath: null, activeRunId: null,
});
const run = (id: number, environment: string, status: C.Run['status'] = 'queued'): C.Run => ({
  id, project: 'acme', environment, kind: 'backup', status, params: {}, requestedBy: null, idempotencyKey: null, approvalId: null,
  attempts: 0, maxAttempts: 3, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false, queuedAt: '2026-11-25T10:00:00.000Z',
  startedAt: null, finishedAt: null, error: null, result: null, lastSeq: 0,
});

/** A stand-in for the HTTP API (the real one is exercised by the server's tests): answers by path. */
function api(routes: Record<string, unknown>) {
  const asked: string[] = [];
  return {
    asked,
    get: async <T>(path: string, schema: { parse(v: unknown): T }) => {
      asked.push(path);
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

  it('a server that cannot be reached is an error the tree can show, not a crash', async () => {
    const s = new Store({ get: async () => { throw new Error('cannot reach the OdooOps server at http://127.0.0.1:9'); } });
    await s.load();
    assert.match(s.error!, /cannot reach/);
    assert.deepEqual(s.projects, []);
  });
});
