// Open run logs, Cancel run, Re-run, Retry from the palette: the runs each applies to, newest first,
// and a run number typed as `odooops run list` shows it.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { parseRunNumber, refusal, runItems } from '../../src/runPick.ts';

const run = (id: number, status: C.Run['status'], over: Partial<C.Run> = {}): C.Run => ({
  id, project: 'demo', environment: 'staging', kind: 'backup', status, params: {}, requestedBy: 'c0ffee00-0000-4000-8000-000000000001',
  idempotencyKey: null, approvalId: null, attempts: 1, maxAttempts: 1, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false,
  queuedAt: `2026-12-01T10:${String(id).padStart(2, '0')}:00.000Z`, startedAt: null, finishedAt: null, error: null, result: null, lastSeq: 0, ...over,
});
const runs = [run(3, 'succeeded'), run(9, 'running', { kind: 'clone' }), run(5, 'failed', { error: 'pg_dump: connection refused' }), run(11, 'queued'), run(7, 'cancelled')];

describe('a run number as typed', () => {
  it('takes 42, #42, run 42, "Run #42"', () => {
    for (const t of ['42', '#42', ' run 42 ', 'Run #42', 'run#42']) assert.equal(parseRunNumber(t), 42, t);
  });
  it('refuses anything else', () => {
    for (const t of ['', '0', '-3', '4.2', '42a', 'backup', '1e3', '99999999999999999']) assert.equal(parseRunNumber(t), null, t);
  });
});

describe('the runs an action offers', () => {
  const ids = (action: Parameters<typeof runItems>[0]) => runItems(action, runs).map((i) => i.run.id);

  it('logs: all, newest first; cancel: queued and running; re-run: ended; retry: failed', () => {
    assert.deepEqual(ids('logs'), [11, 9, 7, 5, 3]);
    assert.deepEqual(ids('cancel'), [11, 9]);
    assert.deepEqual(ids('rerun'), [7, 5, 3]);
    assert.deepEqual(ids('retry'), [5]);
  });

  it('each named as the CLI and the tree name it: number, kind, environment, status, when, who; the error below', () => {
    const [item] = runItems('retry', runs, (u) => (u.startsWith('c0ffee00') ? 'Second admin' : u));
    assert.equal(item!.label, '#5 backup');
    assert.equal(item!.description, 'staging · failed · 2026-12-01 10:05 UTC · by Second admin');
    assert.equal(item!.detail, 'pg_dump: connection refused');
  });

  it('a typed run the action does not apply to is refused with why', () => {
    assert.equal(refusal('cancel', run(7, 'cancelled')), 'run #7 already cancelled: there is nothing to cancel');
    assert.match(String(refusal('rerun', run(9, 'running'))), /^run #9 is still running: cancel it, or wait/);
    assert.match(String(refusal('retry', run(3, 'succeeded'))), /^run #3 did not fail \(succeeded\): only a failed run is retried/);
    assert.equal(refusal('logs', run(9, 'running')), null);
  });
});
