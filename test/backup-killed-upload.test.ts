// A worker killed (SIGKILL, as a lost machine) while it uploads a backup to an S3-compatible store: the S3
// stand-in (s3rver, test/helpers/s3-stand-in.ts, the stand-in for AWS S3/R2/B2/MinIO) keeps the multipart
// upload's parts, nothing is listed as a backup, and the run's next attempt (another worker, once the lease
// lapses) ends that upload before it writes its own backup: no orphan parts, one good backup.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Infrastructure } from '../server/infra/registry.ts';
import { loadExecutors } from '../server/worker/executors/index.ts';
import { Worker } from '../server/worker/worker.ts';
import { eventually, tempHome } from './helpers/control-plane.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { startS3StandIn } from './helpers/s3-stand-in.ts';

const SLUG = 'killed';
const ROOT = join(import.meta.dirname, '..');
let p: OdooProject;
let s3: Awaited<ReturnType<typeof startS3StandIn>>;
let client: S3Client;
const ID_VAR = `ODOOOPS_TEST_KILLED_ID_${process.pid}`;
const SECRET_VAR = `ODOOOPS_TEST_KILLED_SECRET_${process.pid}`;

const uploads = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? [];
const objects = async () => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key!);

before(async () => {
  s3 = await startS3StandIn({ bucket: 'killed-backups' });
  client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  p = await startOdooProject({ slug: SLUG, generate: { killed_prod: { partners: 50 } }, envs: [{ name: 'prod', stage: 'production', db: 'killed_prod' }] });
  // A dump of several multipart parts (16 MiB each), so the upload is in flight long enough to be cut.
  await p.sql('killed_prod', `create table x_big as select md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) as v from generate_series(1, 1200000) i; grant select on x_big to public`);
  process.env[ID_VAR] = s3.accessKeyId;
  process.env[SECRET_VAR] = s3.secretAccessKey;
  const keyFile = join(p.scratch, 'backup.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  await p.addInfra({
    backupStores: {
      offsite: {
        kind: 's3', endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, forcePathStyle: true,
        accessKeyId: `env:${ID_VAR}`, secretAccessKey: `env:${SECRET_VAR}`, encryptionKey: `file:${keyFile}`, projects: [SLUG],
      },
    },
  });
  assert.equal((await p.admin.call('PATCH', `/api/projects/${SLUG}`, { backupStore: 'offsite' })).status, 200);
});
after(async () => {
  delete process.env[ID_VAR];
  delete process.env[SECRET_VAR];
  await p?.close();
  await s3?.stop().catch(() => {});
});

test('a worker killed mid-upload leaves no backup listed; the next attempt ends the orphan upload and backs up', async () => {
  // The server's own worker steps aside: the backup is claimed by a worker process of its own, then killed.
  await p.cp.server.worker!.stop();
  const home = tempHome('odooops-killed-worker-');
  mkdirSync(join(home, 'work'));
  const registry = join(home, 'infrastructure.yaml');
  writeFileSync(registry, JSON.stringify(p.registry));
  const child = spawn(process.execPath, [join(ROOT, 'server/cli/main.ts'), 'worker', '--database-url', p.cp.server.databaseUrl, '--infra', registry,
    '--backup-dir', join(home, 'backups'), '--work-dir', join(home, 'work'), '--lease', '3'], { env: { ...process.env, ODOOOPS_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const q = await p.queue('prod', 'backup', { kind: 'manual' });
    assert.equal(q.status, 201);
    // Killed once a part of the dump is in the store and the upload is still open.
    await eventually('a multipart upload in flight', async () => ((await uploads()).length ? true : null), 120_000).catch(async (err) => {
      throw new Error(`${err.message}\n${out}\n${await p.logText(q.body.id)}`);
    });
    child.kill('SIGKILL');
    await exited;
    const orphans = await uploads();
    assert.ok(orphans.length >= 1, 'the killed worker left its upload open');
    // As if killed before any other part of the backup had landed: only the open upload is left of it (its
    // prefix has no object, so nothing lists it; only ending unfinished uploads can free its parts).
    for (const k of await objects()) if (!k.includes('/files/')) await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: k }));
    assert.equal((await p.cp.pool.query('select count(*)::int as n from ops.backups where project_id = (select id from ops.projects where slug = $1)', [SLUG])).rows[0].n, 0,
      'nothing is listed as a backup');

    // Another worker takes the run again once the killed one's lease lapses.
    const worker = new Worker({
      pool: p.cp.pool, databaseUrl: p.cp.server.databaseUrl, executors: await loadExecutors([]), id: 'worker-after', leaseSeconds: 3, sweepIntervalMs: 500,
      infra: Infrastructure.load(registry, { backupDir: join(home, 'backups-2') }), workDir: join(home, 'work'),
    });
    await worker.start();
    try {
      const run = await p.finished(q.body.id, 180_000);
      assert.equal(run.status, 'succeeded', `${run.error}\n${await p.logText(run.id)}\n${out}`);
      const log = await p.logText(run.id);
      assert.match(log, /attempt 2 of \d+, worker worker-after/);
      assert.match(log, /ended [1-9]\d* unfinished upload\(s\) an interrupted run left in the store/);
      assert.deepEqual(await uploads(), [], 'no multipart upload is left open');
      const { rows } = await p.cp.pool.query(`select manifest from ops.backups where project_id = (select id from ops.projects where slug = $1)`, [SLUG]);
      assert.equal(rows.length, 1, 'one backup, the second attempt\'s');
      const prefix = (rows[0].manifest.dump.key as string).replace(/\/dump\.pgc$/, '');
      const left = (await objects()).filter((k) => !k.startsWith(`${prefix}/`) && !k.includes('/files/'));
      assert.deepEqual(left, [], 'nothing of the killed attempt is left in the bucket');
      // And that backup restores.
      const restored = await p.runToEnd('prod', 'verify', { backup: (run.result as { backupId: string }).backupId });
      assert.equal(restored.status, 'succeeded', `${restored.error}`);
    } finally {
      await worker.stop();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
