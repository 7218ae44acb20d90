// The incremental, content-addressed filestore end to end: backups, restores, clones, the Odoo zip and
// retention run by the worker through the API, against Debian's PostgreSQL 15 with generated
// Odoo-shaped databases (sizes and counts) and one real Odoo 17 database served by real odoo-bin.
// A second backup after 1 % of the files changed uploads only those; everything rebuilt from the
// objects is the filestore, file for file; a damaged or missing object is refused with the environment
// untouched; retention frees only objects no kept backup lists, never one a running backup counts on;
// backups from before (one filestore tarball) still restore.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yauzl from 'yauzl';
import type * as C from '../contract/index.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { contentMap, readIndex } from '../server/storage/filestore-objects.ts';
import { eventually } from './helpers/control-plane.ts';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { REAL_LOOKING } from './helpers/odoo-sources.ts';
import { authenticate, installOdoo, serveOdoo } from './helpers/real-odoo.ts';

let p: OdooProject;
let projectId: string;
const storeDir = () => join(p.cp.server.home, 'backups');
const store = () => new LocalBackupStore(storeDir());
const secs = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const leftovers = async () => (await p.sql<{ datname: string }>('postgres', `select datname from pg_database where datname like '%odooops%'`)).map((r) => r.datname);
const sideDirs = () => readdirSync(join(p.scratch, 'filestore')).filter((d) => d.includes('odooops'));

before(async () => {
  p = await startOdooProject({
    slug: 'inc',
    generate: { inc_prod: { partners: 2000, attachmentsPer10: 3 }, inc_dev: { partners: 50 } },
    real: { inc_real: { version: '17.0', kind: 'plain' } },
    envs: [
      { name: 'prod', stage: 'production', db: 'inc_prod' },
      { name: 'staging', stage: 'staging', db: 'inc_staging' },
      { name: 'dev', stage: 'development', db: 'inc_dev' },
      { name: 'real', stage: 'development', db: 'inc_real' },
    ],
  });
  projectId = (await p.cp.pool.query(`select id from ops.projects where slug = 'inc'`)).rows[0].id;
}, { timeout: 900_000 });
after(async () => {
  await p?.close();
});

let approver: Awaited<ReturnType<OdooProject['cp']['user']>>;
/** A restore run to its end; into production with a second admin's approval, as the API wants. */
async function restore(env: string, backup: string): Promise<C.Run> {
  if (env !== 'prod') return p.runToEnd(env, 'restore', { backup }, 300_000);
  approver ??= await (async () => {
    const u = await p.cp.user();
    assert.equal((await p.admin.call('POST', '/api/projects/inc/members', { userId: u.id, role: 'admin' })).status, 201);
    return u;
  })();
  const ap = await p.admin.call('POST', '/api/projects/inc/environments/prod/approvals', { kind: 'restore', params: { backup }, reason: 'test' });
  assert.equal(ap.status, 201, JSON.stringify(ap.body));
  assert.equal((await approver.call('POST', `/api/approvals/${ap.body.id}/approve`)).status, 200);
  const q = await p.queue('prod', 'restore', { backup }, ap.body.id);
  assert.equal(q.status, 201, JSON.stringify(q.body));
  return p.finished(q.body.id, 300_000);
}

interface Taken { id: string; run: C.Run; manifest: C.BackupManifest; files: C.ObjectsFilestore }
async function backupOf(env: string, kind = 'manual'): Promise<Taken> {
  const run = await p.runToEnd(env, 'backup', { kind }, 300_000);
  assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
  const id = (run.result as { backupId: string }).backupId;
  const manifest = (await p.cp.pool.query('select manifest from ops.backups where id = $1', [id])).rows[0].manifest as C.BackupManifest;
  assert.equal((manifest.filestore as C.ObjectsFilestore).format, 'objects');
  return { id, run, manifest, files: manifest.filestore as C.ObjectsFilestore };
}

/** Writes files into a filestore as Odoo names them (<ab>/<sha1>); returns their paths. */
function addFiles(dir: string, n: number, bytes = 3000): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const data = randomBytes(bytes + i);
    const s = sha1(data);
    mkdirSync(join(dir, s.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, s.slice(0, 2), s), data);
    out.push(`${s.slice(0, 2)}/${s}`);
  }
  p.giveFiles();
  return out;
}
/** Where the store keeps a file's bytes (a pack, or an object of its own), or undefined when it holds none. */
const located = async (s: string) => (await contentMap(store(), projectId)).locate(s);
/** Ages every content object by two hours: past the sweep's grace period. */
function ageObjects() {
  const old = new Date(Date.now() - 2 * 3600_000);
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else utimesSync(join(d, e.name), old, old);
    }
  };
  walk(join(storeDir(), projectId, 'files'));
}

let second: Taken;
let secondFiles: Record<string, string>;

test('a second backup after 1 % of the files changed uploads only those; restore rebuilds the filestore file for file', { timeout: 600_000 }, async () => {
  const fs = p.fs('inc_prod');
  const before = await fingerprintDir(fs);
  const total = Object.keys(before).length;
  assert.ok(total >= 600, `the generated filestore has ${total} files`);
  let t = performance.now();
  const first = await backupOf('prod');
  console.log(`# first backup: ${first.files.files} files, ${(first.files.bytes / 2 ** 20).toFixed(2)} MiB, uploaded ${first.files.uploaded.files} files ${first.files.uploaded.bytes} bytes in ${secs(t)}`);
  assert.equal(first.files.files, total);
  assert.equal(first.files.uploaded.files, total, 'the first backup uploads every file');
  assert.deepEqual(readdirSync(join(storeDir(), backupPrefixOf(first.manifest))).sort(), ['dump.pgc', 'filestore.index', 'manifest.json'], 'no filestore tarball any more');

  // 1 % of the files change: Odoo writes a changed attachment as a new file and collects the old one.
  const changed = Math.ceil(total / 100);
  const gone = Object.keys(before).filter((f) => /^[0-9a-f]{2}\//.test(f)).slice(0, changed);
  for (const f of gone) unlinkSync(join(fs, f));
  const added = addFiles(fs, changed);
  const addedBytes = added.reduce((a, f) => a + statSync(join(fs, f)).size, 0);
  t = performance.now();
  second = await backupOf('prod');
  console.log(`# second backup after ${changed} of ${total} files changed: uploaded ${second.files.uploaded.files} files, ${second.files.uploaded.bytes} bytes (of ${second.files.bytes}) in ${secs(t)}`);
  assert.equal(second.files.uploaded.files, changed, 'only the new files are uploaded');
  assert.equal(second.files.uploaded.bytes, addedBytes);
  assert.equal(second.files.files, total);
  const unnamed = Object.keys(before).filter((f) => !/^[0-9a-f]{2}\/[0-9a-f]{40}$/.test(f)).length;
  assert.match(await p.logText(second.run.id), new RegExp(`filestore: ${total} files, ${total - changed - unnamed} already in the store, ${changed + unnamed} to read`), 'only the new files and those not named by their SHA-1 are read');
  const row = (await p.cp.pool.query('select size_bytes from ops.backups where id = $1', [second.id])).rows[0];
  assert.equal(Number(row.size_bytes), second.manifest.dump.bytes + second.files.index.bytes + addedBytes + statSync(join(storeDir(), backupPrefixOf(second.manifest), 'manifest.json')).size,
    'a backup\'s size is what it added to the store');
  secondFiles = await fingerprintDir(fs);

  // Damage, then restore the second backup.
  const dbBefore = await fingerprintDb(p.odooPg, 'inc_prod');
  unlinkSync(join(fs, added[0]!));
  writeFileSync(join(fs, 'stray'), 'x');
  p.giveFiles();
  t = performance.now();
  const r = await restore('prod', second.id);
  assert.equal(r.status, 'succeeded', `${r.error}\n${await p.logText(r.id)}`);
  console.log(`# restore of the second backup (${total} files from objects): ${secs(t)}`);
  assert.deepEqual(await fingerprintDir(fs), secondFiles, 'every file with its SHA-1, nothing stray');
  assert.deepEqual(await fingerprintDb(p.odooPg, 'inc_prod'), dbBefore);
  assert.match(await p.logText(r.id), /every object present/);
});

test('a flipped byte in a content object, or a missing one: the restore is refused and the environment untouched', { timeout: 600_000 }, async () => {
  const fs = p.fs('inc_prod');
  const index = await readIndex(store(), second.files);
  const victim = index.find((e) => e.p === Object.keys(secondFiles).find((f) => /^[0-9a-f]{2}\//.test(f)))!;
  writeFileSync(join(fs, 'after-the-backup'), 'x');
  p.giveFiles();
  const fsBefore = await fingerprintDir(fs);
  const dbBefore = await fingerprintDb(p.odooPg, 'inc_prod');

  const at = (await located(victim.s))!;
  assert.ok(at.pack, 'a small file is in a pack');
  const path = store().localPath(at.key)!;
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad[at.offset + (victim.n >> 1)]! ^= 0x01;
  writeFileSync(path, bad);
  try {
    const r = await restore('prod', second.id);
    assert.equal(r.status, 'failed', await p.logText(r.id));
    assert.match(r.error!, new RegExp(`filestore file ${victim.p} is damaged in the backup store: its bytes in the pack have the SHA-1 [0-9a-f]{40}, the index says ${victim.s}`));
    assert.match(await p.logText(r.id), /restore failed, removing .*; inc_prod was not changed/);
  } finally {
    writeFileSync(path, good);
  }
  assert.deepEqual(await fingerprintDir(fs), fsBefore, 'the filestore is as it was');
  assert.deepEqual(await fingerprintDb(p.odooPg, 'inc_prod'), dbBefore, 'the database is as it was');
  assert.deepEqual(await leftovers(), []);
  assert.deepEqual(sideDirs(), []);

  // The whole pack gone: every file of the backup it held is missing.
  const map = await contentMap(store(), projectId);
  const lost = index.filter((e) => map.locate(e.s)?.key === at.key).length;
  unlinkSync(path);
  try {
    const r = await restore('prod', second.id);
    assert.equal(r.status, 'failed');
    assert.match(r.error!, new RegExp(`backup ${second.id} is incomplete: ${lost} filestore file\\(s\\) are missing from the backup store \\(.*\\); nothing was changed`));
    assert.doesNotMatch(await p.logText(r.id), /creating/, 'refused before anything was created');
    const zip = await fetch(`${p.cp.server.url}/api/backups/${second.id}/download`, { headers: { authorization: `Bearer ${p.admin.token}` } });
    assert.equal(zip.status, 404, 'the download is refused before any byte');
    assert.equal((await zip.json()).error.code, 'backup_files_missing');
  } finally {
    writeFileSync(path, good);
  }
  assert.deepEqual(await fingerprintDir(fs), fsBefore);
  unlinkSync(join(fs, 'after-the-backup'));
});

test('clones (of production and of a backup) and the Odoo zip rebuild the same files; a clone uploads nothing already stored', { timeout: 600_000 }, async () => {
  const prod = await fingerprintDir(p.fs('inc_prod'));
  const check = async (db: string) => {
    const files = await fingerprintDir(p.fs(db));
    const kept = (await p.sql<{ f: string }>(db, `select distinct store_fname as f from ir_attachment where store_fname is not null`)).map((r) => r.f).filter((f) => prod[f]);
    assert.ok(kept.length > 0);
    assert.deepEqual(files, Object.fromEntries(kept.sort().map((f) => [f, prod[f]!])), `${db}: the kept files of production, byte for byte`);
  };
  let t = performance.now();
  const live = await p.runToEnd('staging', 'clone', { from: 'prod', filestore: 'all' }, 300_000);
  assert.equal(live.status, 'succeeded', `${live.error}\n${await p.logText(live.id)}`);
  console.log(`# clone of production: ${secs(t)}`);
  await check('inc_staging');
  const cloneId = (live.result as { cloneBackupId: string }).cloneBackupId;
  const cm = (await p.cp.pool.query('select manifest from ops.backups where id = $1', [cloneId])).rows[0].manifest as C.BackupManifest;
  assert.equal((cm.filestore as C.ObjectsFilestore).uploaded.files, 0, 'production\'s backups stored every kept file already');

  t = performance.now();
  const fromBackup = await p.runToEnd('dev', 'clone', { backup: second.id, filestore: 'all' }, 300_000);
  assert.equal(fromBackup.status, 'succeeded', `${fromBackup.error}\n${await p.logText(fromBackup.id)}`);
  console.log(`# clone of a backup: ${secs(t)}`);
  await check('inc_dev');

  // The Odoo zip of the second backup: filestore/<path> for every file, as production had them.
  t = performance.now();
  const res = await fetch(`${p.cp.server.url}/api/backups/${second.id}/download`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  assert.equal(res.status, 200);
  const zip = Buffer.from(await res.arrayBuffer());
  const inZip: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
    if (err) return reject(err);
    z.on('entry', (e: yauzl.Entry) => {
      if (!e.fileName.startsWith('filestore/')) return z.readEntry();
      z.openReadStream(e, (err2, s) => {
        if (err2) return reject(err2);
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => {
          inZip[e.fileName.slice('filestore/'.length)] = sha1(Buffer.concat(chunks));
          z.readEntry();
        });
      });
    });
    z.on('end', resolve);
    z.readEntry();
  }));
  console.log(`# Odoo zip of the second backup: ${(zip.length / 2 ** 20).toFixed(1)} MiB in ${secs(t)}`);
  assert.deepEqual(inZip, secondFiles);
});

test('retention frees only objects no kept backup lists, and a sweep while a backup is running never frees what it lists', { timeout: 600_000 }, async () => {
  const prodFs = p.fs('inc_prod');
  // An old backup holding two sets of files: X, which the dev environment also has, and Y, only it.
  // (Y's files are bigger: once only X of their pack is needed, the pack is mostly free and is rewritten.)
  const x = addFiles(prodFs, 5);
  const y = addFiles(prodFs, 5, 12_000);
  const old = await backupOf('prod');
  const devFs = p.fs('inc_dev');
  for (const f of x) {
    mkdirSync(join(devFs, f.slice(0, 2)), { recursive: true });
    copyFileSync(join(prodFs, f), join(devFs, f));
  }
  for (const f of [...x, ...y]) unlinkSync(join(prodFs, f));
  p.giveFiles();
  await backupOf('prod'); // today's: production keeps a good backup without X and Y
  // The old backup is half a year old: beyond every window of the policy. The objects are past the grace period.
  await p.cp.pool.query(`update ops.backups set created_at = now() - interval '200 days' where id = $1`, [old.id]);
  ageObjects();
  const sha = (f: string) => f.split('/')[1]!;

  // A backup of dev, held between its listing of the store (it finds X there and does not upload it)
  // and its record: its pg_dump waits for a lock the test holds on a table of the dev database (a slow
  // dump), while its filestore part, which runs beside the dump, lists the store and finishes.
  const hold = await p.odooPg.client('inc_dev');
  let devBackup: C.Run;
  try {
    await hold.query('begin');
    await hold.query('lock table res_partner in access exclusive mode');
    const q = await p.queue('dev', 'backup', { kind: 'manual' });
    assert.equal(q.status, 201);
    await eventually('the dev backup to list the store and upload', async () => /filestore: \d+ files \(.*new uploaded/.test(await p.logText(q.body.id)), 120_000);
    const listed = (await p.logText(q.body.id)).match(/filestore: (\d+) files \(.*\), (\d+) new uploaded/)!;
    assert.ok(Number(listed[2]) < Number(listed[1]), 'X was in the store already: not uploaded again');

    const r = await p.runToEnd('prod', 'retention', {}, 300_000);
    assert.equal(r.status, 'succeeded', `${r.error}\n${await p.logText(r.id)}`);
    const log = await p.logText(r.id);
    assert.match(log, new RegExp(`deleted backup ${old.id}`));
    for (const f of [...x, ...y]) assert.ok(await located(sha(f)), `${f}: nothing is swept while the backup holds the lock`);
    assert.match(log, /filestore objects: not swept this time, a backup of the project is being written/);
    assert.equal((await p.admin.call('GET', `/api/runs/${q.body.id}`)).body.status, 'running', 'the backup was running all along');
    await hold.query('commit');
    devBackup = await p.finished(q.body.id, 300_000);
  } finally {
    await hold.query('rollback').catch(() => {});
    await hold.end();
  }
  assert.equal(devBackup.status, 'succeeded', `${devBackup.error}\n${await p.logText(devBackup.id)}`);
  const devId = (devBackup.result as { backupId: string }).backupId;
  const devManifest = (await p.cp.pool.query('select manifest from ops.backups where id = $1', [devId])).rows[0].manifest as C.BackupManifest;
  const devIndex = new Set((await readIndex(store(), devManifest.filestore as C.ObjectsFilestore)).map((e) => e.p));
  for (const f of x) assert.ok(devIndex.has(f), `the dev backup lists ${f}`);

  // The next retention sweeps: Y (only the deleted backup listed it) goes, X (the dev backup lists it) stays.
  ageObjects();
  const r = await p.runToEnd('prod', 'retention', {}, 300_000);
  assert.equal(r.status, 'succeeded', `${r.error}\n${await p.logText(r.id)}`);
  const objects = (r.result as { objects: { deleted: number; kept: number; repacked: number } }).objects;
  const sweptLog = await p.logText(r.id);
  assert.equal(objects.repacked, 1, sweptLog);
  assert.match(sweptLog, /filestore: 1 pack\(s\) mostly freed rewritten into 1/);
  for (const f of y) assert.equal(await located(sha(f)), undefined, `${f} is freed`);
  for (const f of x) assert.ok(await located(sha(f)), `${f} is kept`);

  // Every kept backup still has all it needs: the oldest kept backup of production restores completely.
  const oldest = (await p.cp.pool.query(`select id, manifest from ops.backups where environment_id = (select id from ops.environments where project_id = $1 and name = 'prod') and kind <> 'clone' order by created_at asc limit 1`, [projectId])).rows[0];
  const want = Object.fromEntries((await readIndex(store(), oldest.manifest.filestore)).map((e) => [e.p, e.s]));
  const back = await restore('prod', oldest.id);
  assert.equal(back.status, 'succeeded', `${back.error}\n${await p.logText(back.id)}`);
  assert.deepEqual(await fingerprintDir(prodFs), want, 'the oldest kept backup, file for file, after the sweep');
  const devRestore = await restore('dev', devId);
  assert.equal(devRestore.status, 'succeeded', `${devRestore.error}\n${await p.logText(devRestore.id)}`);
});

test('a backup from before (its filestore one tarball) still restores and downloads', { timeout: 600_000 }, async () => {
  // What a backup looked like before the content objects: dump.pgc, filestore.tar, manifest.json.
  const fs = p.fs('inc_prod');
  const files = await fingerprintDir(fs);
  const recent = await backupOf('prod');
  const env = (await p.cp.pool.query(`select id from ops.environments where project_id = $1 and name = 'prod'`, [projectId])).rows[0].id;
  const prefix = `${projectId}/${env}/20250101T000000Z-run1`;
  const dir = join(storeDir(), prefix);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(storeDir(), recent.manifest.dump.key), join(dir, 'dump.pgc'));
  execFileSync('tar', ['--create', '--file', join(dir, 'filestore.tar'), '--directory', fs, '.']);
  const part = (f: string) => {
    const b = readFileSync(join(dir, f));
    return { key: `${prefix}/${f}`, bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') };
  };
  const manifest = { ...recent.manifest, createdAt: '2025-01-01T00:00:00.000Z', dump: part('dump.pgc'), filestore: { ...part('filestore.tar'), files: Object.keys(files).length } };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  const m = part('manifest.json');
  const { rows: [row] } = await p.cp.pool.query(
    `insert into ops.backups (project_id, environment_id, kind, location, size_bytes, sha256, manifest, created_at) values ($1, $2, 'manual', $3, $4, $5, $6, now() - interval '1 hour') returning id`,
    [projectId, env, `file:${dir}`, manifest.dump.bytes + manifest.filestore.bytes + m.bytes, m.sha256, manifest]);

  for (const f of Object.keys(files).slice(0, 3)) unlinkSync(join(fs, f));
  const r = await restore('prod', row.id);
  assert.equal(r.status, 'succeeded', `${r.error}\n${await p.logText(r.id)}`);
  assert.deepEqual(await fingerprintDir(fs), files);
  const zip = await fetch(`${p.cp.server.url}/api/backups/${row.id}/download`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  assert.equal(zip.status, 200);
  assert.equal(Buffer.from(await zip.arrayBuffer()).toString('latin1', 0, 2), 'PK');
  // A clone of it takes its kept files out of the tarball and stores them as objects.
  const c = await p.runToEnd('staging', 'clone', { backup: row.id, filestore: 'all' }, 300_000);
  assert.equal(c.status, 'succeeded', `${c.error}\n${await p.logText(c.id)}`);
  const staged = await fingerprintDir(p.fs('inc_staging'));
  assert.ok(Object.keys(staged).length > 0);
  // Taken out on this worker, they are copied into staging's filestore from there (before the scratch directory goes).
  assert.match(await p.logText(c.id), new RegExp(`filestore copied beside the current one \\(${Object.keys(staged).length} files`));
  for (const [f, s] of Object.entries(staged)) assert.equal(s, files[f], f);
});

test('real Odoo 17 on a database restored from objects opens a customer document from the rebuilt filestore', { timeout: 900_000 }, async () => {
  const db = 'inc_real';
  const files = await fingerprintDir(p.fs(db));
  const b = await backupOf('real');
  const [doc] = await p.sql<{ id: number; store_fname: string; checksum: string }>(db, `select id, store_fname, checksum from ir_attachment where name = $1`, [REAL_LOOKING.document.name]);
  assert.ok(doc && files[doc.store_fname], 'the document is in the filestore');
  unlinkSync(join(p.fs(db), doc.store_fname));
  const r = await restore('real', b.id);
  assert.equal(r.status, 'succeeded', `${r.error}\n${await p.logText(r.id)}`);
  assert.deepEqual(await fingerprintDir(p.fs(db)), files);

  const odoo = await serveOdoo(await installOdoo('17.0'), { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password }, p.scratch, db);
  try {
    assert.equal(await authenticate(odoo, db, 'admin', 'admin'), 2, odoo.output().slice(-2000));
    const login = await fetch(`${odoo.url}/web/session/authenticate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { db, login: 'admin', password: 'admin' } }),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.match(cookie, /^session_id=/);
    const res = await fetch(`${odoo.url}/web/content/${doc.id}?download=true`, { headers: { cookie } });
    assert.equal(res.status, 200, odoo.output().slice(-2000));
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.toString('utf8'), REAL_LOOKING.document.content, 'Odoo served the document from the restored filestore');
    assert.equal(sha1(body), doc.checksum);
  } finally {
    await odoo.stop();
    p.giveFiles();
  }
});
