// Backup stores from the operator's registry (issue 16): a project's backups on S3-compatible storage
// (s3rver, the named stand-in for AWS S3, R2, B2, MinIO and Supabase Storage) encrypted with the
// operator's key, a copy in a second store written in the same run, reads from whichever store still
// holds a backup, who may choose a store, and two workers on "two machines" sharing one bucket.
// Backups, restores and clones are real runs (Debian's pg_dump/pg_restore against PostgreSQL 15,
// generated Odoo-17-shaped databases).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as C from '../contract/index.ts';
import { Infrastructure } from '../server/infra/registry.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import { loadExecutors } from '../server/worker/executors/index.ts';
import { Worker } from '../server/worker/worker.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { replicateBackup } from '../server/storage/replicate.ts';
import { tempHome, type TestUser } from './helpers/control-plane.ts';
import { fingerprintDb, fingerprintDir } from './helpers/debian-postgres.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { startS3StandIn } from './helpers/s3-stand-in.ts';

const SLUG = 'vault';
const ROOT = join(import.meta.dirname, '..');
let p: OdooProject;
let s3: Awaited<ReturnType<typeof startS3StandIn>>;
let flaky: Awaited<ReturnType<typeof startS3StandIn>>;
let keyFile: string;
let localTwo: string;
let developer: TestUser;
let viewer: TestUser;
const ACCESS_VAR = `ODOOOPS_TEST_S3_ID_${process.pid}`;
const SECRET_VAR = `ODOOOPS_TEST_S3_SECRET_${process.pid}`;

const patch = (user: TestUser, body: object) => user.call('PATCH', `/api/projects/${SLUG}`, body);
const backupRow = async (id: string) => (await p.cp.pool.query('select * from ops.backups where id = $1', [id])).rows[0];

/** Every file under a directory, as bytes (what someone with the bucket's files reads). */
function allBytes(dir: string): Buffer[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => readFileSync(join(e.parentPath, e.name)));
}

/** A piece of a filestore file of the database: plain bytes a plain tarball carries as they are. */
function filestoreNeedle(db: string): { rel: string; needle: Buffer } {
  const dir = p.fs(db);
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
    .filter((f) => statSync(f).size >= 200).sort();
  assert.ok(files.length, `a filestore file of at least 200 bytes in ${db}`);
  const bytes = readFileSync(files[0]!);
  return { rel: relative(dir, files[0]!), needle: bytes.subarray(40, 120) };
}

async function backup(env: string): Promise<{ id: string; run: C.Run; manifest: C.BackupManifest; row: any }> {
  const run = await p.runToEnd(env, 'backup', { kind: 'manual' });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
  const id = (run.result as { backupId: string }).backupId;
  const row = await backupRow(id);
  return { id, run, manifest: row.manifest as C.BackupManifest, row };
}

before(async () => {
  [s3, flaky] = await Promise.all([startS3StandIn({ bucket: 'odooops-backups' }), startS3StandIn({ bucket: 'flaky' })]);
  p = await startOdooProject({
    slug: SLUG,
    generate: { vault_prod: { partners: 150 }, vault_dev: { partners: 150 } },
    envs: [
      { name: 'prod', stage: 'production', db: 'vault_prod' },
      { name: 'staging', stage: 'staging', db: 'vault_stg' },
      { name: 'dev', stage: 'development', db: 'vault_dev' },
    ],
  });
  process.env[ACCESS_VAR] = s3.accessKeyId;
  process.env[SECRET_VAR] = s3.secretAccessKey;
  process.env[`${ACCESS_VAR}_FLAKY`] = flaky.accessKeyId;
  process.env[`${SECRET_VAR}_FLAKY`] = flaky.secretAccessKey;
  keyFile = join(p.scratch, 'backup.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  localTwo = join(p.scratch, 'local-two');
  mkdirSync(localTwo);
  const s3Entry = (stand: typeof s3, projects: string[], suffix = '') => ({
    kind: 's3', endpoint: stand.endpoint, region: stand.region, bucket: stand.bucket, forcePathStyle: true,
    accessKeyId: `env:${ACCESS_VAR}${suffix}`, secretAccessKey: `env:${SECRET_VAR}${suffix}`, encryptionKey: `file:${keyFile}`, projects,
  });
  await p.addInfra({
    backupStores: {
      offsite: s3Entry(s3, [SLUG]),
      flaky: s3Entry(flaky, [SLUG], '_FLAKY'),
      'local-two': { kind: 'local', path: localTwo, projects: [SLUG] },
      'other-team': { kind: 'local', path: join(p.scratch, 'other'), projects: ['other'] },
    },
  });
  developer = await p.cp.user();
  viewer = await p.cp.user();
  for (const [u, role] of [[developer, 'developer'], [viewer, 'viewer']] as const) {
    assert.equal((await p.admin.call('POST', `/api/projects/${SLUG}/members`, { userId: u.id, role })).status, 201);
  }
});
after(async () => {
  for (const v of [ACCESS_VAR, SECRET_VAR]) for (const k of [v, `${v}_FLAKY`]) delete process.env[k];
  await p?.close();
  await s3?.stop().catch(() => {});
  await flaky?.stop().catch(() => {});
});

test('the registry: an off-site store without a key is refused with how to make one; names, never buckets, are published', () => {
  const dir = tempHome('odooops-stores-registry-');
  const file = (name: string, body: object) => {
    const f = join(dir, name);
    writeFileSync(f, JSON.stringify(body));
    return f;
  };
  const base = { kind: 's3', region: 'auto', bucket: 'acme-backups', accessKeyId: 'env:X', secretAccessKey: 'env:Y', projects: ['acme'] };
  assert.throws(() => Infrastructure.load(file('nokey.json', { backupStores: { r2: { ...base, endpoint: 'https://acct.r2.cloudflarestorage.com' } } })),
    (err: Error) => /backupStores\.r2\.encryptionKey: an off-site store is encrypted/.test(err.message) && err.message.includes('openssl rand -base64 32') && /encryption: none/.test(err.message));
  // Plain http only to this machine or a private network.
  assert.throws(() => Infrastructure.load(file('http.json', { backupStores: { b2: { ...base, endpoint: 'http://s3.example.com', encryption: 'none' } } })), /backupStores\.b2\.endpoint: https:\/\//);
  assert.throws(() => Infrastructure.load(file('both.json', { backupStores: { b2: { ...base, encryptionKey: 'file:/k', encryption: 'none' } } })), /not both/);
  // "default" is the server's own directory.
  assert.throws(() => Infrastructure.load(file('default.json', { backupStores: { default: { kind: 'local', path: '/srv/b', projects: ['*'] } } }), { backupDir: dir }),
    /backup store named "default", which OdooOps provides itself/);
  const ok = Infrastructure.load(file('ok.json', { backupStores: {
    minio: { ...base, endpoint: 'http://10.0.0.5:9000', encryption: 'none', description: undefined },
    aws: { ...base, encryptionKey: 'file:/etc/odooops/backup.key' },
  } }), { backupDir: dir });
  const shown = ok.entries().filter((e) => e.kind === 'backup_store');
  assert.deepEqual(shown.map((e) => [e.name, e.details]), [
    ['aws', { kind: 's3', encrypted: true, offsite: true }],
    ['default', { kind: 'local', encrypted: false, offsite: false }],
    ['minio', { kind: 's3', encrypted: false, offsite: true }],
  ]);
  assert.deepEqual(shown.find((e) => e.name === 'default')!.projects, ['*']);
  const text = JSON.stringify(shown);
  for (const hidden of ['acme-backups', '10.0.0.5', 'env:X', '/etc/odooops']) assert.ok(!text.includes(hidden), `${hidden} in ${text}`);
  // A store is resolved only for the projects it is bound to.
  assert.throws(() => ok.backupStore('aws', 'other'), /backup store "aws" of the registry is not bound to project other/);
  assert.throws(() => ok.backupStore('nope', 'acme'), /has no backup store "nope"/);
  // What the scheduler watches for filling up: every store this machine can resolve (an encrypted local one by its disk), with its quota.
  writeFileSync(join(dir, 'k'), randomBytes(32).toString('base64'));
  const logged: string[] = [];
  const watched = Infrastructure.load(file('watch.json', { backupStores: {
    nas: { kind: 'local', path: dir, encryptionKey: `file:${join(dir, 'k')}`, quotaGb: 7, projects: ['acme'] },
    aws: { ...base, encryptionKey: 'file:/nonexistent/backup.key' },
  } }), { backupDir: dir }).watchedBackupStores((m) => logged.push(m));
  assert.deepEqual(watched.map((w) => [w.store.name, w.store instanceof LocalBackupStore, w.quotaGb]), [['default', true, undefined], ['nas', true, 7]]);
  assert.match(logged.join('\n'), /backup store "aws": .*not available on this worker/);
  rmSync(dir, { recursive: true, force: true });
});

test('who chooses the store: project admins, among the stores the registry binds to the project', async () => {
  const project = (await p.admin.call('GET', `/api/projects/${SLUG}`)).body as C.Project;
  assert.equal(project.backupStore, 'default');
  assert.equal(project.backupCopy, null);
  const other = await patch(p.admin, { backupStore: 'other-team' });
  assert.equal(other.status, 400);
  assert.equal(other.body.error.code, 'unknown_infrastructure');
  assert.match(other.body.error.message, /vault has no backup store "other-team" \(it may use: default, flaky, local-two, offsite\)/);
  assert.equal((await patch(p.admin, { backupCopy: 'no-such-store' })).status, 400);
  const same = await patch(p.admin, { backupStore: 'offsite', backupCopy: 'offsite' });
  assert.equal(same.status, 400);
  assert.match(same.body.error.message, /another store/);
  for (const u of [developer, viewer]) {
    const r = await patch(u, { backupStore: 'offsite' });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.match(r.body.error.message, /only admins of "vault" can change its settings/);
  }
  // Past the API, as the same users: the database refuses too (a store the project is not bound to; a non-admin's update changes nothing).
  const projectId = project.id;
  await assert.rejects(p.cp.sql(p.admin, (c) => c.query(`update ops.projects set backup_store = 'other-team' where id = $1`, [projectId])),
    /the backup store "other-team" is not available to project vault/);
  const n = await p.cp.sql(developer, async (c) => (await c.query(`update ops.projects set backup_copy = 'offsite' where id = $1`, [projectId])).rowCount);
  assert.equal(n, 0);
  assert.equal((await p.cp.pool.query('select backup_copy from ops.projects where id = $1', [projectId])).rows[0].backup_copy, null);
  // The CLI's words for it.
  const set = await patch(p.admin, { backupStore: 'local-two', backupCopy: null });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal(set.body.backupStore, 'local-two');
  assert.equal((await patch(p.admin, { backupStore: 'default' })).status, 200);
});

/** `odooops ...args` as the project's admin (or, for infra check, as the operator on this machine). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ODOOOPS_HOME: p.cp.home, ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: p.admin.token };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['server/cli/main.ts', ...args], { cwd: ROOT, env, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`odooops ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

test('the CLI: project set/show name the stores; infra check writes a probe into each store and names one it cannot use', async () => {
  const set = await cli(['project', 'set', SLUG, '--backup-store', 'local-two', '--backup-copy', 'offsite']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /backups: store "local-two", copied to "offsite"/);
  const shown = await cli(['project', 'show', SLUG]);
  assert.match(shown.stdout, /backups: store "local-two", copied to "offsite"/);
  const both = await cli(['project', 'set', SLUG, '--backup-copy', 'offsite', '--no-backup-copy']);
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /--backup-copy NAME or --no-backup-copy, not both/);
  const none = await cli(['project', 'set', SLUG, '--backup-store', 'default', '--no-backup-copy']);
  assert.match(none.stdout, /backups: store "default", no copy/);

  // The operator's check: the other team's directory does not exist yet.
  const registry = join(p.cp.home, 'infrastructure.yaml');
  const bad = await cli(['infra', 'check', '--infra', registry]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /backup store "other-team": the directory .* does not exist/);
  assert.ok(!/backup store "(offsite|flaky|local-two)"/.test(bad.stderr), bad.stderr);
  mkdirSync(join(p.scratch, 'other'));
  const good = await cli(['infra', 'check', '--infra', registry]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /backup stores reached \(an object written and deleted\): offsite, flaky, local-two, other-team/);
  assert.deepEqual(readdirSync(join(p.scratch, 'other', '.odooops-probe')), [], 'the probe object is deleted');
});

test('a project on an encrypted S3 store: backup, restore, clone from the backup, Odoo zip and dev-pull parts, all from the bucket; the bucket holds ciphertext', async () => {
  const { rel, needle } = filestoreNeedle('vault_dev');
  // On the server's own (unencrypted) directory, the file objects are the files as they are: the needle is findable.
  const plain = await backup('dev');
  assert.deepEqual(plain.row.stores, ['default']);
  assert.ok(allBytes(join(p.cp.server.home, 'backups', plain.row.project_id, 'files')).some((o) => o.includes(needle)), 'the needle is in a plain backup');

  assert.equal((await patch(p.admin, { backupStore: 'offsite' })).status, 200);
  const beforeDb = await fingerprintDb(p.odooPg, 'vault_dev');
  const beforeFs = await fingerprintDir(p.fs('vault_dev'));
  const b = await backup('dev');
  assert.deepEqual(b.row.stores, ['offsite']);
  assert.match(b.row.location, /^s3:offsite\//);
  const log = await p.logText(b.run.id);
  assert.match(log, /the backup store "offsite"/);
  assert.ok(!log.includes('odooops-backups') && !log.includes(s3.endpoint), 'the run log names the store, not its bucket or endpoint');
  // The bucket's files: every object of the backup is there, none carries the needle nor a plain pg_dump header.
  const objects = allBytes(s3.directory);
  assert.ok(objects.length >= 3, `${objects.length} files in the stand-in`);
  assert.ok(objects.every((o) => !o.includes(needle)), 'a filestore file is readable in the bucket');
  assert.ok(objects.every((o) => !o.includes(Buffer.from('PGDMP'))), 'a pg_dump header is readable in the bucket');
  assert.ok(objects.every((o) => !o.includes(Buffer.from('"format": "odooops-backup/1"'))), 'the manifest is readable in the bucket');
  assert.ok(!existsSync(join(p.cp.server.home, 'backups', backupPrefixOf(b.manifest))), 'nothing of it in the server\'s directory');

  // Restore from the bucket.
  await p.sql('vault_dev', `update res_partner set email = 'changed@x.invalid'`);
  rmSync(join(p.fs('vault_dev'), rel));
  const restored = await p.runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(restored.status, 'succeeded', `${restored.error}\n${await p.logText(restored.id)}`);
  assert.deepEqual(await fingerprintDb(p.odooPg, 'vault_dev'), beforeDb);
  assert.deepEqual(await fingerprintDir(p.fs('vault_dev')), beforeFs);

  // A backup of production in the bucket, cloned (masked) into staging from there; the clone is stored there too.
  const prod = await backup('prod');
  const clone = await p.runToEnd('staging', 'clone', { backup: prod.id }, 240_000);
  assert.equal(clone.status, 'succeeded', `${clone.error}\n${await p.logText(clone.id)}`);
  const cloneId = (clone.result as { cloneBackupId: string }).cloneBackupId;
  const cloneRow = await backupRow(cloneId);
  assert.deepEqual(cloneRow.stores, ['offsite']);

  // The Odoo zip, streamed out of the bucket through the API.
  const res = await fetch(`${p.cp.server.url}/api/backups/${b.id}/download`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  assert.equal(res.status, 200, await res.clone().text());
  const zip = join(p.scratch, 'dev.zip');
  writeFileSync(zip, Buffer.from(await res.arrayBuffer()));
  const names = execFileSync('unzip', ['-Z1', zip]).toString().trim().split('\n');
  assert.ok(names.includes('dump.sql') && names.includes('manifest.json'), names.slice(0, 5).join(', '));
  assert.ok(execFileSync('unzip', ['-p', zip, `filestore/${rel}`]).includes(needle), 'the filestore file in the zip, decrypted');

  // What `odooops dev pull` reads: the masked clone's parts, from the bucket, with the recorded checksum.
  const cloneManifest = cloneRow.manifest as C.BackupManifest;
  const part = await fetch(`${p.cp.server.url}/api/backups/${cloneId}/parts/dump`, { headers: { authorization: `Bearer ${developer.token}` } });
  assert.equal(part.status, 200);
  const got = Buffer.from(await part.arrayBuffer());
  assert.equal(createHash('sha256').update(got).digest('hex'), cloneManifest.dump.sha256);

  // Moving the project to another store later strands nothing: the backup is still read from the bucket.
  assert.equal((await patch(p.admin, { backupStore: 'default' })).status, 200);
  const again = await p.runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(again.status, 'succeeded', `${again.error}\n${await p.logText(again.id)}`);
});

test('a local store with a copy in S3, in the same run: a damaged primary and then a deleted one still restore from the copy', async () => {
  assert.equal((await patch(p.admin, { backupStore: 'local-two', backupCopy: 'offsite' })).status, 200);
  const beforeDb = await fingerprintDb(p.odooPg, 'vault_dev');
  const b = await backup('dev');
  assert.deepEqual(b.row.stores, ['local-two', 'offsite']);
  const files = new Set(readdirSync(p.fs('vault_dev'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => createHash('sha1').update(readFileSync(join(e.parentPath, e.name))).digest('hex'))).size;
  const copied = /copied to "offsite": (\d+) objects, .*? \((\d+) filestore files copied, (\d+) were there already\)$/m.exec(await p.logText(b.run.id));
  assert.ok(copied, 'the copy is logged');
  assert.equal(Number(copied[2]) + Number(copied[3]), files, 'every filestore file of the backup is in the copy store');
  // The dump, the index and the manifest, and the files the bucket lacked in one pack (this filestore is far below 16 MiB), not an object each.
  assert.equal(Number(copied[1]), 3 + (Number(copied[2]) ? 1 : 0), copied[0]);
  const primary = join(localTwo, backupPrefixOf(b.manifest));
  assert.deepEqual(readdirSync(primary).sort(), ['dump.pgc', 'filestore.index', 'manifest.json']);

  // One flipped byte in the primary's dump: verification says so and uses the copy.
  const dump = join(primary, 'dump.pgc');
  const bytes = readFileSync(dump);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  writeFileSync(dump, bytes);
  await p.sql('vault_dev', `update res_partner set name = 'changed'`);
  const r1 = await p.runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r1.status, 'succeeded', `${r1.error}\n${await p.logText(r1.id)}`);
  assert.match(await p.logText(r1.id), /in the store "local-two" fails verification .*the store "offsite" holds it too/);
  assert.deepEqual(await fingerprintDb(p.odooPg, 'vault_dev'), beforeDb);

  // The primary removed by hand: read from the copy.
  rmSync(primary, { recursive: true });
  await p.sql('vault_dev', `update res_partner set name = 'changed again'`);
  const r2 = await p.runToEnd('dev', 'restore', { backup: b.id });
  assert.equal(r2.status, 'succeeded', `${r2.error}\n${await p.logText(r2.id)}`);
  assert.match(await p.logText(r2.id), /verified in the store "offsite"/);
  assert.deepEqual(await fingerprintDb(p.odooPg, 'vault_dev'), beforeDb);

  // Retention deletes a backup from every store that holds it (here: an old one, past the policy).
  const inBucket = () => readdirSync(s3.directory, { recursive: true }).map(String).filter((n) => n.includes(backupPrefixOf(b.manifest).split('/').pop()!));
  assert.ok(inBucket().length > 0);
  await p.cp.pool.query(`update ops.backups set created_at = now() - interval '400 days' where id = $1`, [b.id]);
  const retention = await p.runToEnd('dev', 'retention');
  assert.equal(retention.status, 'succeeded', `${retention.error}\n${await p.logText(retention.id)}`);
  assert.equal(await backupRow(b.id), undefined);
  assert.deepEqual(inBucket(), []);
});

test('the copy verifies the primary: a part that changed in the first store is not copied, and nothing is left of it in the second', async () => {
  const from = new LocalBackupStore(join(p.scratch, 'rep-from'), 'from');
  const to = new LocalBackupStore(join(p.scratch, 'rep-to'), 'to');
  const { Readable } = await import('node:stream');
  const put = async (key: string, data: string) => ({ key, ...(await from.put(key, Readable.from([Buffer.from(data)]))) });
  const dumpPart = await put('proj/env/b1/dump.pgc', 'the dump');
  const manifest = {
    format: 'odooops-backup/1', database: 'x', createdAt: new Date().toISOString(), kind: 'manual', odoo: { version: '17.0', majorVersion: '17.0' }, modules: {},
    postgres: { server: '15', pgDump: '15' }, dump: dumpPart, filestore: null,
  } as C.BackupManifest;
  const m = await from.put('proj/env/b1/manifest.json', Readable.from([Buffer.from(JSON.stringify(manifest))]));
  const ok = await replicateBackup(from, to, manifest, { manifestSha256: m.sha256 });
  assert.deepEqual([ok.objects, await to.exists('proj/env/b1/manifest.json')], [2, true]);
  await to.remove('proj/env/b1');
  writeFileSync(join(from.root, 'proj/env/b1/dump.pgc'), 'the dumq');
  await assert.rejects(replicateBackup(from, to, manifest, { manifestSha256: m.sha256 }), /the database dump read back from the backup store "from" has sha256/);
  assert.deepEqual(await to.list('proj/env'), [], 'no partial copy');
});

test('a copy whose store is down fails the run, and no backup is listed', async () => {
  assert.equal((await patch(p.admin, { backupStore: 'local-two', backupCopy: 'flaky' })).status, 200);
  await flaky.stop();
  const before = (await p.cp.pool.query('select count(*)::int as n from ops.backups')).rows[0].n;
  const run = await p.runToEnd('dev', 'backup', { kind: 'manual' });
  assert.equal(run.status, 'failed');
  assert.match(run.error!, /the copy of the backup to the store "flaky" failed .*the backup in "local-two" is removed too/);
  assert.equal((await p.cp.pool.query('select count(*)::int as n from ops.backups')).rows[0].n, before);
  const envDirs = readdirSync(localTwo, { recursive: true }).map(String);
  assert.ok(!envDirs.some((d) => d.includes(`-run${run.id}`)), `the primary keeps nothing of run ${run.id}: ${envDirs.join(', ')}`);
  const check = await cli(['infra', 'check', '--infra', join(p.cp.home, 'infrastructure.yaml')]);
  assert.notEqual(check.code, 0);
  assert.match(check.stderr, /backup store "flaky": /);
  assert.equal((await patch(p.admin, { backupStore: 'offsite', backupCopy: null })).status, 200);
});

test('two workers with their own homes and registries share one bucket: one backs up, the other restores', async () => {
  // Worker A is the server's (backs up to the bucket: the project's store is "offsite").
  const beforeDb = await fingerprintDb(p.odooPg, 'vault_dev');
  const b = await backup('dev');
  assert.deepEqual(b.row.stores, ['offsite']);
  await p.cp.server.worker!.stop();

  // Worker B: another home, another backup directory, its own registry file naming the same bucket and key.
  const homeB = tempHome('odooops-worker-b-');
  mkdirSync(join(homeB, 'work'));
  const registryB = join(homeB, 'infrastructure.yaml');
  writeFileSync(registryB, JSON.stringify({ ...p.registry, backupStores: { offsite: (p.registry.backupStores as any).offsite } }));
  const workerB = new Worker({
    pool: p.cp.pool, databaseUrl: p.cp.server.databaseUrl, executors: await loadExecutors([]), id: 'worker-b',
    infra: Infrastructure.load(registryB, { backupDir: join(homeB, 'backups') }), workDir: join(homeB, 'work'),
  });
  await workerB.start();
  try {
    await p.sql('vault_dev', `update res_partner set email = 'worker-b@x.invalid'`);
    const q = await p.queue('dev', 'restore', { backup: b.id });
    assert.equal(q.status, 201);
    const run = await p.finished(q.body.id, 120_000);
    assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}`);
    assert.match(await p.logText(run.id), /attempt 1 of \d+, worker worker-b/);
    assert.deepEqual(await fingerprintDb(p.odooPg, 'vault_dev'), beforeDb);
    assert.ok(!existsSync(join(homeB, 'backups', backupPrefixOf(b.manifest))), 'read from the bucket, not a local copy');
  } finally {
    await workerB.stop();
    rmSync(homeB, { recursive: true, force: true });
  }
});
