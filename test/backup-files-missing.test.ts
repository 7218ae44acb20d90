// A backup whose files are gone from the store (removed by hand, a lost volume): real backups and a real
// masked clone made by the worker, then a file of theirs deleted from the store directory. Downloads and
// parts answer 404 backup_files_missing before any header of a download goes out (no 200 with a
// truncated zip), saying what to do; neither those answers nor a run's error show the store's path.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type * as C from '../contract/index.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { contentMap, readIndex } from '../server/storage/filestore-objects.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

let p: OdooProject;

before(async () => {
  p = await startOdooProject({
    slug: 'gone',
    generate: { gone_prod: { partners: 60 } },
    envs: [{ name: 'production', stage: 'production', db: 'gone_prod' }, { name: 'staging', stage: 'staging', db: 'gone_staging' }],
  });
});
after(async () => {
  await p?.close();
});

const storeDir = () => join(p.cp.server.home, 'backups');

async function backupOf(env: string, kind: string, params: object): Promise<{ id: string; manifest: C.BackupManifest; dir: string }> {
  const run = await p.runToEnd(env, kind, params);
  assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
  const result = run.result as { backupId?: string; cloneBackupId?: string };
  const id = (result.backupId ?? result.cloneBackupId)!;
  const manifest = (await p.cp.pool.query('select manifest from ops.backups where id = $1', [id])).rows[0].manifest as C.BackupManifest;
  return { id, manifest, dir: join(storeDir(), backupPrefixOf(manifest)) };
}

/** A GET with the admin's token, read as raw bytes (a zip must not sneak through as JSON). */
async function get(path: string) {
  const res = await fetch(`${p.cp.server.url}${path}`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  // A download cut short after its headers (what a missing part used to give) reads as the bytes that came.
  const bytes = await res.arrayBuffer().then((b) => Buffer.from(b), () => Buffer.alloc(0));
  return { status: res.status, type: res.headers.get('content-type'), bytes, json: () => JSON.parse(bytes.toString('utf8')) };
}

function assertMissing(r: Awaited<ReturnType<typeof get>>, message: RegExp) {
  assert.equal(r.status, 404, r.bytes.toString('utf8', 0, 300));
  assert.match(r.type ?? '', /^application\/json/);
  assert.notEqual(r.bytes.toString('latin1', 0, 2), 'PK', 'no zip bytes');
  const { error } = r.json();
  assert.equal(error.code, 'backup_files_missing');
  assert.match(error.message, message);
  assert.match(error.hint, /gone from the backup store/);
  assert.ok(!JSON.stringify(error).includes(storeDir()), 'the store\'s path stays on the server');
  assert.ok(!JSON.stringify(error).includes(p.cp.server.home));
  return error as { message: string; hint: string; details: { missing: string[] } };
}

test('a backup missing its filestore, then its dump too: 404 backup_files_missing, no zip, nothing audited; a run reading it fails saying so', async () => {
  const b = await backupOf('production', 'backup', {});
  const whole = await get(`/api/backups/${b.id}/download`);
  assert.equal(whole.status, 200, 'the intact backup downloads');
  assert.equal(whole.bytes.toString('latin1', 0, 2), 'PK');

  // One file's content object gone (the files are objects of the project, listed by the backup's index).
  const store = new LocalBackupStore(storeDir());
  const [file] = await readIndex(store, b.manifest.filestore as C.ObjectsFilestore);
  unlinkSync(store.localPath((await contentMap(store, b.manifest.dump.key.split('/')[0]!)).locate(file!.s)!.key)!);
  const noFilestore = assertMissing(await get(`/api/backups/${b.id}/download`), new RegExp(`^backup ${b.id} cannot be downloaded: its filestore is missing from the backup store$`));
  assert.deepEqual(noFilestore.details.missing, ['filestore']);
  assert.match(noFilestore.hint, /odooops backup list gone production/);
  unlinkSync(join(b.dir, 'dump.pgc'));
  const none = assertMissing(await get(`/api/backups/${b.id}/download`), /its database dump and filestore are missing from the backup store/);
  assert.deepEqual(none.details.missing, ['dump', 'filestore']);
  const audited = (await p.cp.pool.query(`select count(*)::int as n from ops.audit_log where action = 'backup.download' and target = $1`, [b.id])).rows[0].n;
  assert.equal(audited, 1, 'only the download that happened is in the audit log');

  // A run reading the backup (a clone of it into staging): its error, which members read, names the
  // object, not the store's path.
  const restore = await p.runToEnd('staging', 'clone', { backup: b.id });
  assert.equal(restore.status, 'failed');
  assert.match(restore.error ?? '', /backup object .*\/dump\.pgc is missing from the backup store/);
  assert.ok(!(restore.error ?? '').includes(storeDir()), restore.error ?? '');
  assert.ok(!(await p.logText(restore.id)).includes(storeDir()), 'nor does its log');
});

test('a masked clone missing a part: both parts answer 404 before any byte of either is sent', async () => {
  const clone = await backupOf('staging', 'clone', { from: 'production' });
  const listed = await p.admin.call('GET', '/api/projects/gone/environments/production/masked-clone');
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(listed.body.backup.id, clone.id);
  const dump = await get(listed.body.parts.dump);
  assert.equal(dump.status, 200);
  assert.equal(dump.bytes.length, clone.manifest.dump.bytes, 'the intact part is served');

  unlinkSync(join(clone.dir, 'dump.pgc'));
  for (const part of [listed.body.parts.dump, listed.body.parts.filestore] as string[]) {
    const err = assertMissing(await get(part), new RegExp(`^masked clone ${clone.id} cannot be pulled: its database dump is missing from the backup store$`));
    assert.match(err.hint, /odooops run queue gone staging clone --param from=production/);
  }
  const pulled = (await p.cp.pool.query(`select count(*)::int as n from ops.audit_log where action = 'backup.pull' and target = $1`, [clone.id])).rows[0].n;
  assert.equal(pulled, 1, 'only the served part was audited');
});
