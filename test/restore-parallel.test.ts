// Restoring a backup's dump with parallel jobs (server/odoo/dump-restore.ts), on Debian's PostgreSQL 15
// with real pg_dump/pg_restore: from the store's own file (hashed first); from a store without a local
// path (S3, an encrypted store), through a checked copy in the worker's scratch that is removed
// afterwards; streamed into one pg_restore where the scratch has no room (a real 8 MiB tmpfs); and
// refused, before the target is touched, when the object in the store is not the one the backup
// recorded. Each way reads the dump from the store once (CountingStore: the real store, its reads
// counted), but streaming from a store that is not encrypted, which checks the dump before pg_restore
// runs it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { LocalBackupStore, type BackupStore, type StoredPart } from '../server/storage/backup-store.ts';
import { EncryptedStore, parseBackupKey } from '../server/storage/encryption.ts';
import { resetRunUser, runUser, setupRunUser } from '../server/infra/run-user.ts';
import { restoreDump, restoreJobs, type DumpRestoreInput } from '../server/odoo/dump-restore.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, withTool, type PgTool } from '../server/odoo/pg-tools.ts';
import { CountingStore } from './helpers/counting-store.ts';
import { createGeneratedOdooDb, createOdooRole, fingerprintDb, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

const run = promisify(execFile);
const PASSWORD = 'restore-parallel-pw';

/**
 * Stand-in for a store whose objects are not files on this machine (S3BackupStore, EncryptedStore):
 * the same objects, but no local path, so pg_restore cannot open one itself.
 */
class NoLocalPathStore extends LocalBackupStore {
  override localPath(): string | undefined {
    return undefined;
  }
}

let srv: DebianPostgres;
let dir: string;
let store: LocalBackupStore;
let pgRestore: PgTool;
let part: StoredPart;
let source: Record<string, string>;
const KEY = 'p/e/20261201T000000Z-run1/dump.pgc';
const PREFIX = 'odooops-restore-test-';

before(async () => {
  // pg_restore runs as the unprivileged run user, as on a worker started as root.
  if (process.getuid?.() === 0) await setupRunUser(undefined, () => {});
  srv = await startDebianPostgres();
  await createOdooRole(srv, 'odoo', PASSWORD);
  dir = mkdtempSync(join(tmpdir(), 'odooops-restore-parallel-'));
  chmodSync(dir, 0o755);
  await createGeneratedOdooDb(srv, 'src', 'odoo', PASSWORD, join(dir, 'fs'), { partners: 3000, attachmentsPer10: 0 });
  source = await fingerprintDb(srv, 'src');
  const [pgDump, restore] = await Promise.all([findPgTool('pg_dump', '15'), findPgTool('pg_restore', '15')]);
  pgRestore = restore;
  store = new LocalBackupStore(join(dir, 'store'));
  const t = { host: srv.host, port: srv.port, user: 'odoo', password: PASSWORD, database: 'src' };
  const dump = spawnTool(pgDump, ['--format=custom', '--no-owner', ...connectionArgs(t), '--dbname', 'src'], { env: pgEnv(t) });
  part = await withTool(dump, store.put(KEY, dump.child.stdout!));
});

after(async () => {
  resetRunUser();
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A fresh empty target database and restoreDump's input for it. */
async function target(s: BackupStore, extra: Partial<DumpRestoreInput> = {}) {
  const name = `target_${++n}`;
  const su = await srv.client();
  await su.query(`create database ${name} owner odoo`);
  await su.end();
  const t = { host: srv.host, port: srv.port, user: 'odoo', password: PASSWORD, database: name };
  const lines: string[] = [];
  const input: DumpRestoreInput = {
    store: s, key: KEY, bytes: part.bytes, sha256: part.sha256, pgRestore,
    args: ['--no-owner', '--no-privileges', '--exit-on-error', ...connectionArgs(t), '--dbname', name], env: pgEnv(t),
    log: async (l) => void lines.push(l), signal: new AbortController().signal,
    scratch: { prefix: PREFIX, runId: n, isActive: async () => false, root: join(dir, 'scratch') },
    ...extra,
  };
  mkdirSync(join(dir, 'scratch'), { recursive: true });
  return { name, input, lines };
}

const tables = async (db: string) => {
  const c = await srv.client(db);
  try {
    return Number((await c.query(`select count(*)::int as n from pg_tables where schemaname = 'public'`)).rows[0].n);
  } finally {
    await c.end();
  }
};

test('jobs: one per core, at least 2, at most 8', () => {
  const j = restoreJobs();
  assert.ok(j >= 2 && j <= 8, String(j));
});

test('a store with a local path: the file is hashed through the store, then pg_restore runs its jobs on it', async () => {
  const counted = new CountingStore(store);
  const t = await target(counted);
  assert.deepEqual(await restoreDump(t.input), { way: 'store file', jobs: restoreJobs() });
  assert.deepEqual(await fingerprintDb(srv, t.name), source);
  assert.equal(counted.count(KEY), 1);
  assert.match(t.lines.join('\n'), new RegExp(`the dump \\([\\d.]+ MiB\\) checked in the store's file \\(sha256 ${part.sha256.slice(0, 12)}…\\): pg_restore with ${restoreJobs()} jobs from it`));
});

test('a store with a local path whose file changed: refused before pg_restore opens it', async () => {
  const path = join(store.root, KEY);
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad[Math.floor(bad.length / 3)]! ^= 0x01;
  writeFileSync(path, bad);
  try {
    const t = await target(store, { what: 'backup 7' });
    await assert.rejects(restoreDump(t.input), new RegExp(`^Error: backup 7 is corrupt: the database dump has sha256 [0-9a-f]{64} \\(${part.bytes} bytes\\), the backup recorded ${part.sha256} \\(${part.bytes} bytes\\); nothing was changed`));
    assert.equal(await tables(t.name), 0, 'nothing was restored');
    assert.doesNotMatch(t.lines.join('\n'), /pg_restore with/);
  } finally {
    writeFileSync(path, good);
  }
});

test('a store without a local path: a checked copy in the scratch, parallel jobs, the copy removed afterwards', async () => {
  const offsite = new NoLocalPathStore(store.root);
  // What a killed worker left (an earlier run, not running) goes; a running run's scratch stays.
  const scratch = join(dir, 'scratch');
  mkdirSync(join(scratch, `${PREFIX}9001-dead`), { recursive: true });
  writeFileSync(join(scratch, `${PREFIX}9001-dead`, 'dump.pgc'), 'half a dump');
  mkdirSync(join(scratch, `${PREFIX}9002-live`), { recursive: true });
  const counted = new CountingStore(offsite);
  const t = await target(counted);
  t.input.scratch.isActive = async (id) => id === 9002;
  assert.deepEqual(await restoreDump({ ...t.input, jobs: 3 }), { way: 'scratch copy', jobs: 3 });
  assert.deepEqual(await fingerprintDb(srv, t.name), source);
  assert.equal(counted.count(KEY), 1);
  const log = t.lines.join('\n');
  assert.match(log, /downloading the dump \([\d.]+ MiB\) into the worker's scratch directory \(TMPDIR, [\d.]+ MiB free\) for pg_restore with 3 jobs; removed afterwards/);
  assert.match(log, /downloaded and checked .*: pg_restore with 3 jobs/);
  assert.match(log, /removed what an interrupted earlier run left: the scratch directory odooops-restore-test-9001-dead/);
  assert.deepEqual(readdirSync(scratch).sort(), [`${PREFIX}9002-live`], 'the copy is gone, the running run\'s scratch stays');
  assert.ok(!log.includes(scratch), 'the worker\'s paths stay out of the run log');
});

test('an object changed in a store without a local path: refused on the download, before pg_restore touches the target', async () => {
  const path = join(store.root, KEY);
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad[Math.floor(bad.length / 2)]! ^= 0x01;
  writeFileSync(path, bad);
  try {
    const t = await target(new NoLocalPathStore(store.root));
    await assert.rejects(restoreDump(t.input), /the backup is corrupt: the database dump has sha256 [0-9a-f]{64} \(\d+ bytes\), the backup recorded [0-9a-f]{64} \(\d+ bytes\); nothing was changed/);
    assert.equal(await tables(t.name), 0, 'nothing was restored');
    assert.deepEqual(readdirSync(join(dir, 'scratch')).filter((e) => e.startsWith(`${PREFIX}${n}-`)), [], 'the bad copy is removed');
  } finally {
    writeFileSync(path, good);
  }
});

test('a scratch directory the run user cannot enter: streamed into one pg_restore instead of failing there', async (t) => {
  if (!runUser().switches) {
    t.skip('tools run as this process\'s own user here (not root): it can read its own scratch');
    return;
  }
  const closed = join(dir, 'closed');
  mkdirSync(closed, { mode: 0o700 });
  const counted = new CountingStore(new NoLocalPathStore(store.root));
  const r = await target(counted);
  r.input.scratch.root = closed;
  assert.deepEqual(await restoreDump(r.input), { way: 'stream', jobs: 1 });
  assert.deepEqual(await fingerprintDb(srv, r.name), source);
  assert.match(r.lines.join('\n'), /the run user cannot read the copy in the worker's scratch directory \(TMPDIR should be a directory every user may enter, as \/tmp is\): restoring with one job, streamed from the checked copy/);
  assert.equal(counted.count(KEY), 1, 'the store is read once: pg_restore is fed the checked copy');
  assert.deepEqual(readdirSync(closed), [], 'the copy is removed');
});

test('no room in the scratch: streamed into one pg_restore; from a plain store checked before, from an encrypted one as it streams', async (t) => {
  const small = join(dir, 'small');
  mkdirSync(small);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', small]);
  } catch (err) {
    t.skip(`cannot mount a small tmpfs here (${(err as Error).message.split('\n')[0]})`);
    return;
  }
  const flip = (path: string, at: (length: number) => number) => {
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[at(bad.length)]! ^= 0x01;
    writeFileSync(path, bad);
    return () => writeFileSync(path, good);
  };
  try {
    // A plain store: nothing but the checksum vouches for what pg_restore would run, so it is checked first.
    const plain = new CountingStore(new NoLocalPathStore(store.root));
    const ok = await target(plain, {});
    ok.input.scratch.root = small;
    assert.deepEqual(await restoreDump(ok.input), { way: 'stream', jobs: 1 });
    assert.deepEqual(await fingerprintDb(srv, ok.name), source);
    assert.match(ok.lines.join('\n'), /the worker's scratch directory \(TMPDIR\) has [\d.]+ MiB free; a copy of the dump for parallel jobs needs [\d.]+ MiB .*: restoring with one job, streamed from the store and checked as it streams/);
    assert.match(ok.lines.join('\n'), /the store "default" is not encrypted, so nothing but the checksum vouches for the dump: it is read once to check it before pg_restore runs it \(twice in all\)/);
    assert.equal(plain.count(KEY), 2);
    assert.deepEqual(readdirSync(small), [], 'nothing written to the full scratch');

    // Changed in a plain store: refused before pg_restore runs any of it.
    const undo = flip(join(store.root, KEY), (n) => n - 10);
    try {
      const tampered = await target(plain);
      tampered.input.scratch.root = small;
      await assert.rejects(restoreDump(tampered.input), /the backup is corrupt: the database dump has sha256 [0-9a-f]{64}/);
      assert.equal(await tables(tampered.name), 0, 'nothing was restored');
    } finally {
      undo();
    }

    // An encrypted store hands on only chunks whose tag verified: streamed from its one read, checked as it streams.
    const sealed = new LocalBackupStore(join(dir, 'sealed'));
    const encrypted = new CountingStore(new EncryptedStore(sealed, parseBackupKey(randomBytes(32).toString('base64'), 'the test key')));
    assert.equal((await encrypted.put(KEY, Readable.from([readFileSync(join(store.root, KEY))]))).sha256, part.sha256);
    const fromSealed = await target(encrypted);
    fromSealed.input.scratch.root = small;
    assert.deepEqual(await restoreDump(fromSealed.input), { way: 'stream', jobs: 1 });
    assert.deepEqual(await fingerprintDb(srv, fromSealed.name), source);
    assert.equal(encrypted.count(KEY), 1);
    assert.doesNotMatch(fromSealed.lines.join('\n'), /not encrypted/);

    // A changed chunk fails the stream there, and the run (its side database is dropped by the caller).
    const undoSealed = flip(join(sealed.root, KEY), (n) => Math.floor(n / 2));
    try {
      const tampered = await target(encrypted);
      tampered.input.scratch.root = small;
      await assert.rejects(restoreDump(tampered.input), /is damaged|pg_restore failed/);
    } finally {
      undoSealed();
    }
  } finally {
    await run('umount', [small]).catch(() => {});
  }
});
