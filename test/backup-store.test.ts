// The local backup store (streamed, hashed, atomic puts; keys that cannot escape the root; a full disk
// as a clear error) and the choice of PostgreSQL client tools, including a backup run into a store
// that is really full (a 1 MiB tmpfs).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { findPgTool } from '../server/odoo/pg-tools.ts';
import { eventually, chownToRunUser, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';
import { runTempDir } from '../server/infra/run-user.ts';
import { createGeneratedOdooDb, createOdooRole, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

const run = promisify(execFile);
let scratch: string;
let full: string;
let cp: TestControlPlane | undefined;
let odooPg: DebianPostgres | undefined;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-store-'));
  chmodSync(scratch, 0o755);
  full = join(scratch, 'full');
  mkdirSync(full);
  // A real full disk: a tmpfs of 1 MiB (the tests run as root, as CI does).
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full]);
});
after(async () => {
  await cp?.close();
  await odooPg?.stop();
  await run('umount', [full]).catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
});

test('puts are streamed, hashed and atomic; gets give the bytes back', async () => {
  const store = new LocalBackupStore(join(scratch, 'store'));
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const part = await store.put('p/e/b1/dump.pgc', Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  assert.equal(part.bytes, data.length);
  assert.equal(part.sha256, createHash('sha256').update(data).digest('hex'));
  const back: Buffer[] = [];
  for await (const c of await store.get('p/e/b1/dump.pgc')) back.push(c as Buffer);
  assert.ok(Buffer.concat(back).equals(data));
  assert.equal(store.localPath('p/e/b1/dump.pgc'), join(scratch, 'store', 'p/e/b1/dump.pgc'));
  assert.equal(store.locationOf('p/e/b1'), `file:${join(scratch, 'store', 'p/e/b1')}`);

  // A failing source leaves nothing behind, not even a .partial file.
  const failing = new Readable({ read() { this.destroy(new Error('source broke')); } });
  await assert.rejects(store.put('p/e/b2/dump.pgc', failing), /source broke/);
  assert.deepEqual(readdirSync(join(scratch, 'store', 'p/e/b2')), []);
  // Run errors and API answers carry this message: the store's path stays out of it.
  await assert.rejects(store.get('p/e/b2/dump.pgc'), (err: Error) => {
    assert.equal(err.message, 'backup object p/e/b2/dump.pgc is missing from the backup store');
    return true;
  });
  assert.equal(await store.exists('p/e/b2/dump.pgc'), false);
  assert.equal(await store.exists('p/e/b1/dump.pgc'), true);
  assert.equal(await store.exists('p/e/b1'), false, 'a prefix is not an object');
  assert.equal(await store.exists('p/e/b1/dump.pgc/x'), false);

  for (const key of ['../escape', '/abs/path', 'a/../../b', 'a//b', 'a/b c', '']) {
    await assert.rejects(store.put(key, Readable.from(['x'])), /invalid backup key/, key);
  }
  await store.remove('p/e/b1');
  assert.equal(store.localPath('p/e/b1/dump.pgc'), undefined);
});

test('a full store is a clear error and keeps no partial file', async () => {
  const store = new LocalBackupStore(full);
  await assert.rejects(store.put('b/dump.pgc', Readable.from([randomBytes(2 * 1024 * 1024)])), (err: Error) => {
    assert.match(err.message, /^the backup store is full \(ENOSPC\); free space in it or point the worker at another store/);
    assert.ok(!err.message.includes(full), 'no path of the worker in a message members read');
    return true;
  });
  assert.deepEqual(readdirSync(join(full, 'b')), []);
});

test('client tools: the installed pg_dump fits its server; an older one says what to install', async () => {
  const tool = await findPgTool('pg_dump', '15.18 (Debian 15.18-0+deb12u1)');
  assert.equal(tool.major, 15);
  assert.match((await run(tool.path, ['--version'])).stdout, /PostgreSQL\) 15/);
  await assert.rejects(findPgTool('pg_dump', '99.1'), (err: Error) => {
    assert.match(err.message, /pg_dump 15\.\d+ is older than the database server \(PostgreSQL 99\.1\)/);
    assert.match(err.message, /apt-get install postgresql-client-99/);
    return true;
  });
});

test('a backup run into a full store fails clearly and leaves nothing in it', async () => {
  [cp, odooPg] = await Promise.all([startControlPlane({ backupDir: full }), startDebianPostgres()]);
  await createOdooRole(odooPg, 'odoo', 'pw-full-store');
  // Attachments of 64 KiB: the filestore alone is over the tmpfs' 1 MiB.
  await createGeneratedOdooDb(odooPg, 'full_dev', 'odoo', 'pw-full-store', join(scratch, 'fs', 'full_dev'), { partners: 100, attachmentBytes: 65536 });
  const admin = await cp.user(undefined, { instanceAdmin: true });
  process.env.ODOOOPS_DB_TEST_FULL_STORE = 'pw-full-store';
  chownToRunUser(join(scratch, 'fs'));
  await cp.setInfra({
    databaseServers: { odoo: { host: odooPg.host, port: odooPg.port, user: 'odoo', password: 'env:ODOOOPS_DB_TEST_FULL_STORE', projects: ['full'] } },
    filestoreRoots: { fs: { path: join(scratch, 'fs'), projects: ['full'] } },
  });
  try {
    await admin.call('POST', '/api/projects', { slug: 'full', name: 'Full' });
    const env = await admin.call('POST', '/api/projects/full/environments', {
      name: 'dev', stage: 'development', filestore: 'fs', database: { server: 'odoo', name: 'full_dev' },
    });
    assert.equal(env.status, 201, JSON.stringify(env.body));
    const q = await admin.call('POST', '/api/projects/full/environments/dev/runs', { kind: 'backup' });
    const r = await eventually('the backup to end', async () => {
      const x = (await admin.call('GET', `/api/runs/${q.body.id}`)).body;
      return ['succeeded', 'failed'].includes(x.status) ? x : null;
    }, 60_000);
    assert.equal(r.status, 'failed');
    assert.match(r.error, /the backup store is full \(ENOSPC\)/);
    assert.ok(!r.error.includes(full), r.error);
    const files = readdirSync(full, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    // Filestore files stored whole before the disk filled stay (file objects are shared by a project's
    // backups; retention's sweep frees those no backup lists); nothing half-written, nothing of the backup.
    for (const f of files) {
      const path = join(f.parentPath, f.name);
      assert.match(path, /\/files\/[0-9a-f]{2}\/[0-9a-f]{40}$/, `only whole file objects remain: ${path}`);
      assert.equal(createHash('sha1').update(readFileSync(path)).digest('hex'), f.name, 'a file object is what its name says');
    }
    assert.equal((await cp.pool.query('select count(*)::int as n from ops.backups')).rows[0].n, 0);
  } finally {
    delete process.env.ODOOOPS_DB_TEST_FULL_STORE;
  }
});

test('tools on pipes: tar -x that stops at its end marker is done; a tool failing on its own is reported as itself', async () => {
  const { spawnTool, withTool } = await import('../server/odoo/pg-tools.ts');
  const { execFileSync } = await import('node:child_process');
  const { pipeline } = await import('node:stream/promises');
  const src = mkdtempSync(join(tmpdir(), 'odooops-tar-'));
  writeFileSync(join(src, 'a'), 'x'.repeat(1000));
  const archive = execFileSync('tar', ['-cf', '-', '-C', src, 'a']);
  // Bytes after the end-of-archive marker: tar exits 0 without reading them, and the pipe breaks behind it.
  // Where the run user (the tools' user when the tests run as root) may write.
  const out = await runTempDir('odooops-tar-out-');
  const x = spawnTool('tar', ['--extract', '--file=-', '--directory', out], { stdin: 'pipe' });
  await withTool(x, pipeline(Readable.from([Buffer.concat([archive, Buffer.alloc(4 << 20, 1)])]), x.child.stdin!));
  assert.equal(readFileSync(join(out, 'a'), 'utf8'), 'x'.repeat(1000));
  // A damaged archive: tar's own message, not the broken pipe it causes.
  const bad = spawnTool('tar', ['--extract', '--file=-', '--directory', out], { stdin: 'pipe' });
  await assert.rejects(withTool(bad, pipeline(Readable.from([Buffer.alloc(4 << 20, 7)]), bad.child.stdin!)), /tar failed \(exit 2\): .*(not look like a tar archive|Skipping to next header|Exiting with failure)/);
});
