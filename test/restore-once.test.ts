// A restore reads the dump from its store once (issue 16, speed): verification checks the manifest and
// the filestore and leaves the dump to dump-restore.ts, which checks its SHA-256 on the read that
// restores it, before the side database is even created. Runs the real restore executor (verify, restore,
// switch) against Debian's PostgreSQL 15 with a backup a real backup run wrote, from the worker's local
// store and from an encrypted store in the S3 stand-in (s3rver, standing in for AWS S3, R2, B2, MinIO),
// each wrapped in a CountingStore: the real store, its get() calls counted. The control plane's backup
// catalog and the registry's infrastructure are handed to the executor as small test doubles naming
// these stores and this database (the worker's own resolve them from the registry).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackupCatalog, BackupRow, EnvironmentRow, RunInfra } from '../server/worker/executor.ts';
import { restoreExecutor } from '../server/worker/executors/restore.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { EncryptedStore, parseBackupKey } from '../server/storage/encryption.ts';
import { S3BackupStore } from '../server/storage/s3-store.ts';
import { replicateBackup } from '../server/storage/replicate.ts';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { startS3StandIn, type S3StandIn } from './helpers/s3-stand-in.ts';
import { CountingStore } from './helpers/counting-store.ts';

const DB = 'once_dev';
let p: OdooProject;
let s3: S3StandIn;
let env: EnvironmentRow;
let backup: BackupRow;
let local: LocalBackupStore;
let offsite: EncryptedStore;
let atBackup: { db: Record<string, string>; fs: Record<string, string> };

before(async () => {
  [p, s3] = await Promise.all([
    startOdooProject({ slug: 'once', generate: { [DB]: { partners: 400 } }, envs: [{ name: 'dev', stage: 'development', db: DB }] }),
    startS3StandIn(),
  ]);
  const run = await p.runToEnd('dev', 'backup', { kind: 'manual' });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
  const id = (run.result as { backupId: string }).backupId;
  backup = (await p.cp.pool.query(`select b.*, e.stage from ops.backups b join ops.environments e on e.id = b.environment_id where b.id = $1`, [id])).rows[0];
  env = (await p.cp.pool.query(`select * from ops.environments where id = $1`, [backup.environment_id])).rows[0];
  atBackup = { db: await fingerprintDb(p.odooPg, DB), fs: await fingerprintDir(p.fs(DB)) };
  // The worker's own store, and the same backup copied into an encrypted bucket (as a project's copy store is).
  local = new LocalBackupStore(join(p.cp.server.home, 'backups'));
  offsite = new EncryptedStore(new S3BackupStore(s3.config('offsite')), parseBackupKey(randomBytes(32).toString('base64'), 'the test key'));
  await replicateBackup(local, offsite, backup.manifest, { manifestSha256: backup.sha256 });
});

after(async () => {
  await p?.close();
  await s3?.stop();
});

let runId = 7_000_000;
/** Runs the restore executor with the backup in these stores (in this order); its log lines and error. */
async function restore(stores: CountingStore[]): Promise<{ lines: string[]; error?: Error }> {
  const lines: string[] = [];
  const backups = {
    get: async (id: string) => {
      assert.equal(id, backup.id);
      return backup;
    },
    storesOf: async () => stores,
    storeOf: async () => stores[0]!,
  } as unknown as BackupCatalog;
  const infra = {
    database: () => ({ host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password, database: DB }),
    filestore: () => p.fs(DB),
    describe: () => `${DB} on the test's PostgreSQL`,
  } as unknown as RunInfra;
  const id = ++runId;
  try {
    await restoreExecutor.execute({
      run: { id, project_id: env.project_id, environment_id: env.id, kind: 'restore', params: { backup: backup.id }, attempts: 1, max_attempts: 1 },
      environment: env, params: { backup: backup.id }, infra, backups, signal: new AbortController().signal,
      log: async (l: string) => void lines.push(l), runIsActive: async () => false,
    } as never);
    return { lines };
  } catch (err) {
    return { lines, error: err as Error };
  }
}

/** Changes the environment after the backup: what a restore puts back, and what a refused one leaves. */
async function damage(): Promise<{ db: Record<string, string>; fs: Record<string, string> }> {
  await p.sql(DB, `update res_partner set email = 'changed-${runId}@x.invalid' where id % 3 = 0`);
  writeFileSync(join(p.fs(DB), `stray-${runId}`), 'not from the backup');
  p.giveFiles();
  return { db: await fingerprintDb(p.odooPg, DB), fs: await fingerprintDir(p.fs(DB)) };
}

const sideDatabases = async () => (await p.sql<{ datname: string }>('postgres', `select datname from pg_database where datname like '%odooops%'`)).map((r) => r.datname);

/** Flips one byte in the middle of a file; returns the undo. */
function flipByte(path: string): () => void {
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad[Math.floor(bad.length / 2)]! ^= 0x01;
  writeFileSync(path, bad);
  return () => writeFileSync(path, good);
}
const s3Object = (key: string) => join(s3.directory, s3.bucket, `${key}._S3rver_object`);

test('from the local store: the dump is read once (hashed, then pg_restore -j opens the store\'s file), every row and file back', async () => {
  await damage();
  const store = new CountingStore(local);
  const r = await restore([store]);
  assert.equal(r.error, undefined, `${r.error?.message}\n${r.lines.join('\n')}`);
  assert.equal(store.count(backup.manifest.dump.key), 1, 'one read of the dump from the store');
  assert.deepEqual(await fingerprintDb(p.odooPg, DB), atBackup.db);
  assert.deepEqual(await fingerprintDir(p.fs(DB)), atBackup.fs);
  const log = r.lines.join('\n');
  assert.match(log, /checksums match; the dump \([\d.]+ MiB\) is checked as the restore reads it/);
  assert.match(log, /the dump \([\d.]+ MiB\) checked in the store's file \(sha256 [0-9a-f]{12}…\): pg_restore with \d+ jobs from it/);
});

test('from an encrypted store in the S3 stand-in: the dump is downloaded once, checked as it is written, restored with parallel jobs', async () => {
  await damage();
  const store = new CountingStore(offsite);
  const r = await restore([store]);
  assert.equal(r.error, undefined, `${r.error?.message}\n${r.lines.join('\n')}`);
  assert.equal(store.count(backup.manifest.dump.key), 1, 'one read of the dump from the bucket');
  assert.deepEqual(await fingerprintDb(p.odooPg, DB), atBackup.db);
  assert.deepEqual(await fingerprintDir(p.fs(DB)), atBackup.fs);
  assert.match(r.lines.join('\n'), /downloaded and checked \(sha256 [0-9a-f]{12}…\): pg_restore with \d+ jobs/);
});

test('one flipped byte in the local store\'s dump: refused on that one read, before the side database exists; the environment is unchanged', async () => {
  const before = await damage();
  const undo = flipByte(join(local.root, backup.manifest.dump.key));
  try {
    const store = new CountingStore(local);
    const r = await restore([store]);
    assert.match(r.error?.message ?? 'no error', new RegExp(`^backup ${backup.id} is corrupt: the database dump has sha256 [0-9a-f]{64} \\(${backup.manifest.dump.bytes} bytes\\), the backup recorded ${backup.manifest.dump.sha256} .*nothing was changed`));
    assert.equal(store.count(backup.manifest.dump.key), 1);
    assert.deepEqual(await fingerprintDb(p.odooPg, DB), before.db, 'the database is as it was');
    assert.deepEqual(await fingerprintDir(p.fs(DB)), before.fs, 'the filestore is as it was');
    assert.deepEqual(await sideDatabases(), []);
    assert.doesNotMatch(r.lines.join('\n'), /creating|pg_restore into/, 'no database was created, pg_restore never ran');
  } finally {
    undo();
  }
});

test('one flipped byte in the encrypted object in the bucket: refused before the side database exists; the environment is unchanged', async () => {
  const before = await damage();
  const undo = flipByte(s3Object(backup.manifest.dump.key));
  try {
    const store = new CountingStore(offsite);
    const r = await restore([store]);
    assert.match(r.error?.message ?? 'no error', /is damaged: .*changed or corrupted after it was written/);
    assert.equal(store.count(backup.manifest.dump.key), 1);
    assert.deepEqual(await fingerprintDb(p.odooPg, DB), before.db, 'the database is as it was');
    assert.deepEqual(await fingerprintDir(p.fs(DB)), before.fs, 'the filestore is as it was');
    assert.deepEqual(await sideDatabases(), []);
    assert.doesNotMatch(r.lines.join('\n'), /creating|pg_restore into/, 'no database was created, pg_restore never ran');
  } finally {
    undo();
  }
});

test('a damaged dump in the first store and a good copy in the second: said so, and restored from the copy (each read once)', async () => {
  await damage();
  const undo = flipByte(join(local.root, backup.manifest.dump.key));
  try {
    const first = new CountingStore(local);
    const copy = new CountingStore(offsite);
    const r = await restore([first, copy]);
    assert.equal(r.error, undefined, `${r.error?.message}\n${r.lines.join('\n')}`);
    assert.match(r.lines.join('\n'), new RegExp(`backup ${backup.id} in the store "default" fails verification \\(backup ${backup.id} is corrupt: the database dump has sha256 .*\\); the store "offsite" holds it too: reading the dump from that one`));
    assert.deepEqual([first.count(backup.manifest.dump.key), copy.count(backup.manifest.dump.key)], [1, 1]);
    assert.deepEqual(await fingerprintDb(p.odooPg, DB), atBackup.db);
    assert.deepEqual(await fingerprintDir(p.fs(DB)), atBackup.fs);
  } finally {
    undo();
  }
});

test('a dump gone from the first store: verification moves to the copy without reading the dump (a HEAD)', async () => {
  await damage();
  const path = join(local.root, backup.manifest.dump.key);
  const good = readFileSync(path);
  unlinkSync(path);
  try {
    const first = new CountingStore(local);
    const copy = new CountingStore(offsite);
    const r = await restore([first, copy]);
    assert.equal(r.error, undefined, `${r.error?.message}\n${r.lines.join('\n')}`);
    assert.match(r.lines.join('\n'), /in the store "default" fails verification \(backup object .*dump\.pgc is missing from the backup store\); the store "offsite" holds it too: verifying that one/);
    assert.deepEqual([first.count(backup.manifest.dump.key), copy.count(backup.manifest.dump.key)], [0, 1]);
    assert.deepEqual(await fingerprintDb(p.odooPg, DB), atBackup.db);
  } finally {
    writeFileSync(path, good);
  }
});
