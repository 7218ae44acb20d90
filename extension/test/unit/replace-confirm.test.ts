// A clone into staging/dev, a restore, an import: confirmed in a modal that names what is replaced and
// with what, with "Back up first" beside "Replace". The steps are plain functions that record what the
// command would have done (queue a backup, follow it, queue the replacing run).
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { CliError } from '../../../client/api-client.ts';
import { BACK_UP_FIRST, backupSource, cloneSource, confirmThenReplace, importSource, REPLACE, replaceConfirmation, replacesDatabase, type Confirmation } from '../../src/replaceConfirm.ts';

const env = (name: string, stage: C.Stage, db: string) => ({ name, stage, database: { server: 'main', name: db }, filestore: 'local' });
const production = env('production', 'production', 'demo_prod');
const staging = env('staging', 'staging', 'demo_staging');
const backup: C.Backup = {
  id: '3f1c1e0a-8a7b-4a43-9d5e-0d6f8f1f2a11', environment: 'production', kind: 'manual', createdAt: '2026-12-01T10:42:07.000Z',
  sizeBytes: 12 * 2 ** 20, sha256: null, odooVersion: '17.0', database: 'demo_prod', masked: false, runId: 12,
};
const run = (over: Partial<C.Run>): C.Run => ({
  id: 77, project: 'demo', environment: 'staging', kind: 'backup', status: 'succeeded', params: { kind: 'manual' }, requestedBy: null,
  idempotencyKey: null, approvalId: null, attempts: 1, maxAttempts: 1, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false,
  queuedAt: '2026-12-01T10:00:00Z', startedAt: null, finishedAt: null, error: null, result: null, lastSeq: 0, ...over,
});

function recorder(pick: string | undefined, backupEnds: Partial<C.Run> = {}) {
  const done: string[] = [];
  const asked: Confirmation[] = [];
  return {
    done, asked,
    steps: {
      ask: async (c: Confirmation) => (asked.push(c), done.push('ask'), pick),
      backUp: async () => (done.push('backup'), run(backupEnds)),
      replace: async () => void done.push('replace'),
    },
  };
}

describe('what replaces a database', () => {
  it('clone, restore and import do; backup, deploy, health do not', () => {
    assert.deepEqual(['clone', 'restore', 'import', 'backup', 'deploy', 'health', 'verify'].filter(replacesDatabase), ['clone', 'restore', 'import']);
  });
});

describe('the confirmation', () => {
  it('a restore names the project, the environment, its database and the backup used', () => {
    const c = replaceConfirmation({ kind: 'restore', project: 'demo', env: staging, source: backupSource({ ...backup, environment: 'staging', database: 'demo_staging' }) });
    assert.equal(c.message, 'Restore into demo › staging (staging): replace its database demo_staging?');
    assert.match(c.detail, /^Project: demo$/m);
    assert.match(c.detail, /^Environment: staging \(staging\)$/m);
    assert.match(c.detail, /^Replaced: its database demo_staging on main and its filestore \(local\)$/m);
    assert.match(c.detail, /^With: the manual backup of staging made 2026-12-01 10:42 UTC \(database demo_staging, 12 MiB, Odoo 17\.0\)$/m);
    assert.deepEqual(c.buttons, [BACK_UP_FIRST, REPLACE]);
  });

  it('production says so in its first words', () => {
    const c = replaceConfirmation({ kind: 'restore', project: 'demo', env: production, source: backupSource(backup) });
    assert.equal(c.message, 'Restore into demo › production, PRODUCTION: replace its database demo_prod?');
  });

  it('a clone names its source: the project\'s production, another environment, or a production backup', () => {
    const envs = [production, staging];
    assert.equal(cloneSource({}, envs), 'a fresh, masked copy of production (database demo_prod), made now');
    assert.equal(cloneSource({ from: 'staging' }, envs), 'a fresh, masked copy of staging (database demo_staging), made now');
    assert.match(cloneSource({ backup: backup.id }, envs, backup), /^a masked copy of the manual backup of production made 2026-12-01 10:42 UTC/);
    const c = replaceConfirmation({ kind: 'clone', project: 'demo', env: env('dev-x', 'development', 'demo_dev_x'), source: cloneSource({}, envs) });
    assert.equal(c.message, 'Clone into demo › dev-x (development): replace its database demo_dev_x?');
    assert.match(c.detail, /With: a fresh, masked copy of production \(database demo_prod\), made now/);
  });

  it('an import names the file, or the upload an approval was given for', () => {
    assert.equal(importSource({ file: '/home/ana/acme.zip' }), 'the database in /home/ana/acme.zip');
    assert.equal(importSource({ sha256: 'ab'.repeat(32) }), 'the uploaded database with SHA-256 abababababab…');
  });
});

describe('confirm, then replace', () => {
  const r = { kind: 'restore' as const, project: 'demo', env: production, source: backupSource(backup) };

  it('Cancel (or closing the dialog) queues nothing', async () => {
    const rec = recorder(undefined);
    assert.equal(await confirmThenReplace(r, rec.steps), 'cancelled');
    assert.deepEqual(rec.done, ['ask']);
  });

  it('Replace queues the run, no backup', async () => {
    const rec = recorder(REPLACE);
    assert.equal(await confirmThenReplace(r, rec.steps), 'replaced');
    assert.deepEqual(rec.done, ['ask', 'replace']);
    assert.equal(rec.asked[0]!.message, 'Restore into demo › production, PRODUCTION: replace its database demo_prod?');
  });

  it('Back up first: the backup, followed to its success, then the run', async () => {
    const rec = recorder(BACK_UP_FIRST);
    assert.equal(await confirmThenReplace(r, rec.steps), 'replaced');
    assert.deepEqual(rec.done, ['ask', 'backup', 'replace']);
  });

  it('a safety backup that failed or was cancelled: nothing replaced, and the error names its run', async () => {
    for (const status of ['failed', 'cancelled'] as const) {
      const rec = recorder(BACK_UP_FIRST, { id: 81, status, error: status === 'failed' ? 'pg_dump: connection refused' : null });
      await assert.rejects(confirmThenReplace(r, rec.steps), (err: unknown) => {
        assert.ok(err instanceof CliError);
        assert.match(err.message, new RegExp(`^the backup of production \\(run #81\\) ${status}.*; the restore was not started and nothing was replaced$`));
        assert.match(err.hint ?? '', /run #81's log/);
        return true;
      });
      assert.deepEqual(rec.done, ['ask', 'backup']);
    }
  });

  it('an answer given in advance (the extension-host tests) is the only way past the question; anything else is no answer', async () => {
    const rec = recorder(undefined);
    assert.equal(await confirmThenReplace(r, rec.steps, BACK_UP_FIRST), 'replaced');
    assert.deepEqual(rec.done, ['backup', 'replace']);
    const other = recorder(undefined);
    assert.equal(await confirmThenReplace(r, other.steps, 'yes'), 'cancelled');
    assert.deepEqual(other.done, []);
  });
});
