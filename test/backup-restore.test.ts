// Backup and restore runs end to end: queued through the API, executed by the control plane's worker
// with Debian's pg_dump/pg_restore against a real PostgreSQL 15 holding generated Odoo-17-shaped
// databases reached with a password-protected role, into the local backup store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import * as C from '../contract/index.ts';
import { downloadName } from '../extension/src/backupFile.ts';
import { eventually, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';
import { createGeneratedOdooDb, fingerprintDb, fingerprintDir, type DebianPostgres } from './helpers/debian-postgres.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import { DB_SERVER, ODOO_ROLE as ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

const SLUG = 'shop';
let p: OdooProject;
let cp: TestControlPlane;
let odooPg: DebianPostgres;
let admin: TestUser;
let second: TestUser;
let scratch: string;
let PASSWORD: string;
let PW_VAR: string;
const fs = (db: string) => p.fs(db);
const queue = (env: string, kind: string, params: object = {}, approval?: string) => p.queue(env, kind, params, approval);
const finished = (id: number) => p.finished(id);
const runToEnd = (env: string, kind: string, params: object = {}) => p.runToEnd(env, kind, params);
const logText = (id: number) => p.logText(id);
const sql = <T = any>(db: string, text: string, params: unknown[] = []) => p.sql<T>(db, text, params);

before(async () => {
  p = await startOdooProject({
    slug: SLUG,
    generate: { shop_dev: { partners: 300 }, shop_prod: { partners: 300 } },
    envs: [{ name: 'dev', stage: 'development', db: 'shop_dev' }, { name: 'prod', stage: 'production', db: 'shop_prod' }],
  });
  ({ cp, odooPg, admin, scratch, password: PASSWORD, passwordVar: PW_VAR } = p);
  second = await cp.user();
  assert.equal((await admin.call('POST', `/api/projects/${SLUG}/members`, { userId: second.id, role: 'admin' })).status, 201);
});
after(async () => {
  await p?.close();
});

const leftovers = async () => (await sql<{ datname: string }>('postgres', `select datname from pg_database where datname like '%odooops%'`)).map((r) => r.datname);

async function backupOf(env: string, kind = 'manual'): Promise<{ id: string; run: C.Run; manifest: C.BackupManifest; dir: string }> {
  const run = await runToEnd(env, 'backup', { kind });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  const { backupId } = run.result as { backupId: string };
  const { rows } = await cp!.pool.query('select * from ops.backups where id = $1', [backupId]);
  assert.equal(rows.length, 1);
  const manifest = rows[0].manifest as C.BackupManifest;
  return { id: backupId, run, manifest, dir: join(cp.server.home, 'backups', backupPrefixOf(manifest)) };
}

test('backup then restore gives back every row and every filestore file', async () => {
  const beforeDb = await fingerprintDb(odooPg!, 'shop_dev');
  const beforeFs = await fingerprintDir(fs('shop_dev'));
  const b = await backupOf('dev');

  // The backups table and the manifest say what was stored.
  const { rows: [row] } = await cp!.pool.query('select * from ops.backups where id = $1', [b.id]);
  assert.equal(row.kind, 'manual');
  assert.match(row.location, /^file:\//);
  assert.equal(b.manifest.odoo.version, '17.0.1.3');
  assert.equal(b.manifest.odoo.majorVersion, '17.0');
  assert.equal(b.manifest.modules.mail, '17.0.1.15');
  assert.ok(!('crm' in b.manifest.modules), 'only installed modules');
  assert.equal(b.manifest.filestore!.files, Object.keys(beforeFs).length);
  assert.deepEqual(readdirSync(b.dir).sort(), ['dump.pgc', 'filestore.index', 'manifest.json']);
  // The files are content objects of the project (filestore-objects.ts): the backup's size is what it added.
  const fsPart = b.manifest.filestore as C.ObjectsFilestore;
  assert.equal(Number(row.size_bytes), b.manifest.dump.bytes + fsPart.index.bytes + fsPart.uploaded.bytes + readFileSync(join(b.dir, 'manifest.json')).length);
  const log = await logText(b.run.id);
  assert.match(log, /pg_dump -Fc shop_dev/);
  assert.ok(!log.includes(PASSWORD));

  // Damage the environment: rows gone, a file gone, a stray file added.
  await sql('shop_dev', `delete from mail_message where id % 2 = 1 and id not in (select mail_message_id from mail_mail); update res_partner set email = 'changed@x.invalid'`);
  const oneFile = Object.keys(beforeFs).find((f) => f !== 'checklist')!;
  unlinkSync(join(fs('shop_dev'), oneFile));
  writeFileSync(join(fs('shop_dev'), 'stray'), 'x');
  assert.notDeepEqual(await fingerprintDb(odooPg!, 'shop_dev'), beforeDb);

  // An "Odoo" session connected to the database: the switch ends it.
  const odoo = new pg.Client({ host: odooPg!.host, port: odooPg!.port, user: ROLE, password: PASSWORD, database: 'shop_dev' });
  odoo.on('error', () => {});
  await odoo.connect();

  const r = await runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r.status, 'succeeded', `${r.error}\n${await logText(r.id)}`);
  assert.deepEqual(await fingerprintDb(odooPg!, 'shop_dev'), beforeDb, 'every row is back');
  assert.deepEqual(await fingerprintDir(fs('shop_dev')), beforeFs, 'every file is back, and only those');
  // The files are the ones ir_attachment points at, with the SHA-1 Odoo recorded.
  const atts = await sql<{ store_fname: string; checksum: string }>('shop_dev', 'select store_fname, checksum from ir_attachment');
  const files = await fingerprintDir(fs('shop_dev'));
  for (const a of atts) assert.equal(files[a.store_fname], a.checksum, a.store_fname);
  await assert.rejects(odoo.query('select 1'), 'the old session was ended');
  assert.deepEqual(await leftovers(), [], 'no side databases remain');
  assert.match(await logText(r.id), /checksums match[\s\S]*switched/);
});

test('a corrupt backup (one flipped byte) is refused before the target is touched', async () => {
  const b = await backupOf('dev');
  const dump = join(b.dir, 'dump.pgc');
  const bytes = readFileSync(dump);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  writeFileSync(dump, bytes);
  const beforeDb = await fingerprintDb(odooPg!, 'shop_dev');
  const r = await runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r.status, 'failed');
  assert.match(r.error!, /backup .* is corrupt: the database dump has sha256 .*nothing was changed/);
  assert.deepEqual(await fingerprintDb(odooPg!, 'shop_dev'), beforeDb);
  assert.deepEqual(await leftovers(), []);
  assert.doesNotMatch(await logText(r.id), /creating/, 'no database was created');
});

test('a restore cancelled halfway leaves the target as it was and removes the half-restored copy', async () => {
  // A bigger database, so pg_restore takes long enough to be interrupted.
  await createGeneratedOdooDb(odooPg!, 'shop_big', ROLE, PASSWORD, fs('shop_big'), { partners: 40_000, attachmentsPer10: 0.05 });
  await p.addEnv({ name: 'big', stage: 'development', db: 'shop_big' });
  const b = await backupOf('big');
  await sql('shop_big', `update res_partner set city = 'After the backup' where id = 1`);
  const beforeDb = await fingerprintDb(odooPg!, 'shop_big');
  const beforeFs = await fingerprintDir(fs('shop_big'));
  const q = await queue('big', 'restore', { backup: b.id });
  await eventually('pg_restore to start', async () => /pg_restore into/.test(await logText(q.body.id)), 30_000);
  assert.equal((await admin.call('POST', `/api/runs/${q.body.id}/cancel`)).status, 200);
  const r = await finished(q.body.id);
  assert.equal(r.status, 'cancelled', await logText(r.id));
  assert.deepEqual(await fingerprintDb(odooPg!, 'shop_big'), beforeDb);
  assert.deepEqual(await fingerprintDir(fs('shop_big')), beforeFs);
  await eventually('the half-restored copy to be dropped', async () => (await leftovers()).length === 0, 10_000);
  assert.deepEqual(readdirSync(join(scratch, 'filestore')).filter((d) => d.includes('odooops')), []);
});

test('leftovers of a worker killed mid-restore are removed by the next run, the target untouched', async () => {
  // What a SIGKILLed worker leaves: a side database and a side filestore named after its run.
  await sql('postgres', `create database shop_dev_odooops_new_999999 owner ${ROLE}`);
  const stale = `${fs('shop_dev')}.odooops-new-999999`;
  mkdirSync(stale);
  writeFileSync(join(stale, 'half-written'), 'x');
  p.giveFiles(); // the worker's tools made it, as the run user
  const beforeDb = await fingerprintDb(odooPg!, 'shop_dev');
  const b = await backupOf('dev');
  const r = await runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r.status, 'succeeded', r.error ?? '');
  assert.match(await logText(r.id), /removed what an interrupted earlier run left: shop_dev_odooops_new_999999/);
  assert.deepEqual(await leftovers(), []);
  assert.ok(!existsSync(stale), 'the stale side filestore is gone');
  assert.deepEqual(await fingerprintDb(odooPg!, 'shop_dev'), beforeDb);
});

test('restoring into production needs a second admin\'s approval', async () => {
  const b = await backupOf('prod');
  const refused = await queue('prod', 'restore', { backup: b.id });
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.match(refused.body.error.message, /needs an approval/);
  const ap = await admin.call('POST', `/api/projects/${SLUG}/environments/prod/approvals`, { kind: 'restore', params: { backup: b.id }, reason: 'roll back' });
  assert.equal(ap.status, 201, JSON.stringify(ap.body));
  assert.equal((await second.call('POST', `/api/approvals/${ap.body.id}/approve`)).status, 200);
  const q = await queue('prod', 'restore', { backup: b.id }, ap.body.id);
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const r = await finished(q.body.id);
  assert.equal(r.status, 'succeeded', r.error ?? '');
  // A production backup cannot be restored into development as it is: that is a clone (refused when queued).
  const into = await queue('dev', 'restore', { backup: b.id });
  assert.equal(into.status, 400, JSON.stringify(into.body));
  assert.match(into.body.error.message, /is of production: restoring it into development needs the clone rules/);
});

test('clear errors: wrong credentials, missing filestore, unknown backup, manual limit', async () => {
  const WRONG = `ODOOOPS_DB_TEST_BACKUP_WRONG_${process.pid}`;
  process.env[WRONG] = 'not-the-password';
  try {
    // The operator declared the same server twice: once with a wrong password, once beside an empty root.
    const server = p.registry.databaseServers![DB_SERVER]!;
    mkdirSync(join(scratch, 'empty-root'));
    p.giveFiles();
    await p.addInfra({
      databaseServers: { 'odoo-pg-wrong': { ...server, password: `env:${WRONG}` }, 'odoo-pg-again': { ...server, password: `env:${PW_VAR}` } },
      filestoreRoots: { empty: { path: join(scratch, 'empty-root'), projects: [SLUG] } },
    });
    await p.addEnv({ name: 'wrongpw', stage: 'development', db: 'shop_dev' }, { server: 'odoo-pg-wrong', filestore: null });
    const bad = await runToEnd('wrongpw', 'backup');
    assert.equal(bad.status, 'failed');
    assert.match(bad.error!, /password authentication failed/);
    assert.ok(!bad.error!.includes('not-the-password'));

    await p.addEnv({ name: 'nofs', stage: 'development', db: 'shop_dev' }, { server: 'odoo-pg-again', filestore: 'empty' });
    const nofs = await runToEnd('nofs', 'backup');
    assert.equal(nofs.status, 'failed');
    // Named by its root, not by the worker's path.
    assert.match(nofs.error!, /the filestore <filestore root empty>\/shop_dev is missing on this worker \(ENOENT\)/);
    assert.ok(!nofs.error!.includes(scratch), nofs.error!);

    const unknown = await queue('dev', 'restore', { backup: '00000000-0000-4000-8000-000000000000' });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.match(unknown.body.error.message, new RegExp(`there is no backup 00000000-0000-4000-8000-000000000000 in project ${SLUG}`));

    // Odoo.sh: at most 5 manual backups a day per environment (earlier tests took some of dev's).
    // (A day is a UTC day: when midnight passes during this, the count starts again, and so does this.)
    const today = async () => (await cp!.pool.query(`select (now() at time zone 'UTC')::date::text as d`)).rows[0].d as string;
    for (let again = true; again;) {
      const day = await today();
      const { rows } = await cp!.pool.query(`select ops.manual_backups_today(id) as n from ops.environments where name = 'dev'`);
      for (let i = rows[0].n; i < 5; i++) assert.equal((await runToEnd('dev', 'backup')).status, 'succeeded');
      const sixth = await runToEnd('dev', 'backup');
      again = sixth.status === 'succeeded' && (await today()) !== day;
      if (again) continue;
      assert.equal(sixth.status, 'failed');
      assert.match(sixth.error!, /already has 5 manual backups today \(at most 5 a day/);
    }
    assert.equal((await runToEnd('dev', 'backup', { kind: 'pre-deploy' })).status, 'succeeded', 'other kinds are not limited');
  } finally {
    delete process.env[WRONG];
  }
});

test('backups are listed, and downloaded as an Odoo database-manager zip that psql restores', async () => {
  // (dev's 5 manual backups of the day were taken by now: a pre-deploy one is not limited.)
  const b = await backupOf('dev', 'pre-deploy');
  const devDb = await fingerprintDb(odooPg!, 'shop_dev');
  const devFiles = await fingerprintDir(fs('shop_dev'));
  const list = await admin.call('GET', `/api/projects/${SLUG}/environments/dev/backups`);
  assert.equal(list.status, 200);
  const listed = (list.body as C.Backup[]).find((x) => x.id === b.id)!;
  assert.equal(listed.kind, 'pre-deploy');
  assert.equal(listed.odooVersion, '17.0.1.3');
  assert.equal(listed.masked, false);
  assert.equal(listed.runId, b.run.id);
  assert.ok((list.body as C.Backup[]).every((x, i, a) => i === 0 || a[i - 1]!.createdAt >= x.createdAt), 'newest first');

  // The CLI lists and downloads (streamed into <file>.part, renamed when complete; named by the server).
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(scratch, 'zip-'));
  // (Asynchronously: the server answering it runs in this process.)
  const { promisify } = await import('node:util');
  const execFileAsync = promisify((await import('node:child_process')).execFile);
  const cli = async (...args: string[]) => (await execFileAsync(process.execPath, [join(import.meta.dirname, '..', 'server', 'cli', 'main.ts'), ...args, '--url', cp!.server.url, '--token', admin.token], { cwd: dir })).stdout;
  const cliList = JSON.parse(await cli('backup', 'list', SLUG, 'dev', '--json')) as C.Backup[];
  assert.deepEqual(cliList.map((x) => x.id), (list.body as C.Backup[]).map((x) => x.id));
  const saved = JSON.parse(await cli('backup', 'download', b.id, '--json'));
  // One name: the server's, the CLI's default (its help says <database>_<YYYY-MM-DD_HH-MM-SS>.zip) and the extension's save dialog.
  assert.equal(listed.database, 'shop_dev');
  assert.match(saved.file, /^shop_dev_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.zip$/);
  assert.equal(saved.file, C.backupFileName('shop_dev', listed.createdAt), 'named as the server names it');
  assert.equal(downloadName(listed, 'dev'), saved.file, 'the extension proposes the same name');
  assert.deepEqual(readdirSync(dir), [saved.file], 'no .part file left');
  renameSync(join(dir, saved.file), join(dir, 'backup.zip'));
  await assert.rejects(cli('backup', 'download', 'not-a-backup'), /not a backup id/);
  const names = execFileSync('unzip', ['-Z1', join(dir, 'backup.zip')]).toString().trim().split('\n');
  assert.equal(names[0], 'dump.sql', 'dump.sql first, as Odoo writes it');
  assert.equal(names.at(-1), 'manifest.json');
  execFileSync('unzip', ['-q', join(dir, 'backup.zip'), '-d', join(dir, 'x')]);
  const manifest = JSON.parse(readFileSync(join(dir, 'x', 'manifest.json'), 'utf8'));
  assert.equal(manifest.odoo_dump, '1');
  assert.equal(manifest.db_name, 'shop_dev');
  assert.equal(manifest.version, '17.0');
  assert.equal(manifest.modules.base, '17.0.1.3');
  assert.deepEqual(await fingerprintDir(join(dir, 'x', 'filestore')), devFiles, 'the filestore, file for file');
  // What Odoo's database manager does with it: psql -f dump.sql into a new database.
  await sql('postgres', `create database zip_import owner ${ROLE}`);
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-h', odooPg!.host, '-p', String(odooPg!.port), '-U', 'postgres', '-d', 'zip_import', '-f', join(dir, 'x', 'dump.sql')], { stdio: 'pipe' });
  assert.deepEqual(await fingerprintDb(odooPg!, 'zip_import'), devDb, 'every row');
  await sql('postgres', 'drop database zip_import');

  const res = await fetch(`${cp!.server.url}/api/backups/${b.id}/download`, { method: 'GET', headers: { authorization: `Bearer ${admin.token}` } });
  assert.equal(res.headers.get('content-type'), 'application/zip');
  assert.equal(res.headers.get('content-disposition')!, `attachment; filename="${saved.file}"`);
  await res.body?.cancel();

  // Who may not operate on an environment may not take its data away; the download is audited.
  const viewer = await cp!.user();
  assert.equal((await admin.call('POST', `/api/projects/${SLUG}/members`, { userId: viewer.id, role: 'viewer' })).status, 201);
  const denied = await fetch(`${cp!.server.url}/api/backups/${b.id}/download`, { headers: { authorization: `Bearer ${viewer.token}` } });
  assert.equal(denied.status, 403);
  assert.match((await denied.json()).error.message, /your role cannot download backups of development environments/);
  const outsider = await cp!.user();
  assert.equal((await fetch(`${cp!.server.url}/api/backups/${b.id}/download`, { headers: { authorization: `Bearer ${outsider.token}` } })).status, 404);
  const { rows } = await cp!.pool.query(`select actor from ops.audit_log where action = 'backup.download' and target = $1`, [b.id]);
  assert.deepEqual(rows.map((r) => r.actor), [admin.id, admin.id]);
});

test('a database in use: Odoo\'s sessions are ended for the switch; sessions the role cannot end are a clear error', async () => {
  const b = await backupOf('dev', 'pre-deploy');
  // An Odoo worker's session: the environment's own role, connected to its database.
  const odoo = new pg.Client({ host: odooPg!.host, port: odooPg!.port, user: ROLE, password: PASSWORD, database: 'shop_dev' });
  odoo.on('error', () => {});
  await odoo.connect();
  const r = await runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r.status, 'succeeded', r.error ?? '');
  assert.match(await logText(r.id), /ended 1 open session\(s\) on shop_dev; Odoo reconnects to the new database/);
  await assert.rejects(odoo.query('select 1'), 'the old session was ended');
  await odoo.end().catch(() => {});

  // A superuser's psql left open on it: this role cannot end it, and nothing is changed.
  const before = await fingerprintDb(odooPg!, 'shop_dev');
  const beforeFiles = await fingerprintDir(fs('shop_dev'));
  const su = await odooPg!.client('shop_dev');
  try {
    const refused = await runToEnd('dev', 'restore', { backup: b.id });
    assert.equal(refused.status, 'failed');
    assert.match(refused.error!, /switching shop_dev over failed, the environment is as it was: shop_dev is in use by sessions this role cannot end .*; close them \(see pg_stat_activity\) and run again/);
    assert.equal((await su.query('select 1 as x')).rows[0].x, 1, 'the superuser session is untouched');
  } finally {
    await su.end();
  }
  assert.deepEqual(await fingerprintDb(odooPg!, 'shop_dev'), before);
  assert.deepEqual(await fingerprintDir(fs('shop_dev')), beforeFiles);
  assert.deepEqual(await leftovers(), []);
});
