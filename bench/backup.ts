// Backup benchmark (`npm run bench:backup`): backups of a generated Odoo-17-shaped database of at least
// BENCH_GB GB (default 1) with its filestore (~1.5 GB at BENCH_GB=1: 32 KiB attachments, one per 20
// partners) into the S3 stand-in (s3rver in its own process, the stand-in for AWS S3/R2/B2/MinIO), encrypted,
// next to the raw ceilings measured in the same run with the same SDK:
//   1. the first backup vs `pg_dump -Fc` and `tar` uploaded at once as two plain objects (aim <= 1.1x);
//   2. a second backup after 1 % of the files changed vs the first (aim <= 0.1x for the filestore);
//   3. a restore from it vs a plain download + `pg_restore` + untar.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { findPgTool } from '../server/odoo/pg-tools.ts';
import { call, chownToRunUser } from '../test/helpers/control-plane.ts';
import { odooFixture, phases, progress } from './odoo-fixture.ts';

// The stand-in, in a process of its own.
const s3proc: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, 's3-process.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
const s3 = await new Promise<{ endpoint: string; region: string; bucket: string; accessKeyId: string; secretAccessKey: string; directory: string }>((resolve, reject) => {
  createInterface({ input: s3proc.stdout! }).once('line', (l) => resolve(JSON.parse(l)));
  s3proc.once('exit', (code) => reject(new Error(`the S3 stand-in exited (${code})`)));
});
const keyDir = join(import.meta.dirname, '..', 'node_modules', '.cache', 'bench-backup-key');
mkdirSync(keyDir, { recursive: true, mode: 0o700 });
writeFileSync(join(keyDir, 'backup.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
process.env.BENCH_S3_KEY_ID = s3.accessKeyId;
process.env.BENCH_S3_SECRET = s3.secretAccessKey;

const f = await odooFixture({
  productionStage: 'staging',
  registry: {
    backupStores: {
      offsite: {
        kind: 's3', endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, forcePathStyle: true,
        accessKeyId: 'env:BENCH_S3_KEY_ID', secretAccessKey: 'env:BENCH_S3_SECRET', encryptionKey: `file:${join(keyDir, 'backup.key')}`, projects: ['bench'],
      },
    },
  },
});
const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
const secs = (t: number) => (performance.now() - t) / 1000;
try {
  const set = await call(f.server.url, f.token, 'PATCH', '/api/projects/bench', { backupStore: 'offsite' });
  if (set.status !== 200) throw new Error(`cannot put the project on the S3 store: ${JSON.stringify(set.body)}`);
  const [pgDump, pgRestore] = await Promise.all([findPgTool('pg_dump', '15'), findPgTool('pg_restore', '15')]);
  const env = { ...process.env, PGPASSWORD: 'bench-password-16' };
  const conn = ['-h', f.pgsrv.host, '-p', String(f.pgsrv.port), '-U', 'odoo'];
  const upload = (key: string, cmd: string, args: string[]) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve, reject) => p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} exited ${c}`)))));
    return Promise.all([new Upload({ client, params: { Bucket: s3.bucket, Key: key, Body: p.stdout! } }).done(), exited]);
  };

  progress('raw: pg_dump -Fc and tar of the filestore, each uploaded as one plain object, at once');
  let t = performance.now();
  await Promise.all([
    upload('raw/dump.pgc', pgDump.path, ['--format=custom', '--no-owner', ...conn, '-d', 'bench_prod']),
    upload('raw/filestore.tar', 'tar', ['--create', '--file=-', '--directory', f.filestore('bench_prod'), '.']),
  ]);
  const rawBackup = secs(t);

  progress('OdooOps: first backup (everything is new)');
  const b1 = await f.run('production', 'backup', { kind: 'manual' });

  // 1 % of the files change: Odoo writes a changed attachment as a new file named by its new SHA-1.
  const dir = f.filestore('bench_prod');
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const changed = Math.ceil(files.length / 100);
  for (let i = 0; i < changed; i++) {
    const content = randomBytes(32 * 1024);
    const sha1 = createHash('sha1').update(content).digest('hex');
    mkdirSync(join(dir, sha1.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, sha1.slice(0, 2), sha1), content);
    rmSync(files[i * 97 % files.length]!, { force: true });
  }
  chownToRunUser(dir);
  progress(`OdooOps: second backup after ${changed} of ${files.length} files changed`);
  const b2 = await f.run('production', 'backup', { kind: 'manual' });

  progress('raw: download of both objects, then pg_restore (2 jobs) into a new database and untar');
  const admin = await f.pgsrv.client();
  await admin.query('create database bench_raw owner odoo');
  await admin.end();
  const scratch = join(f.scratch, 'raw-restore');
  mkdirSync(join(scratch, 'files'), { recursive: true });
  t = performance.now();
  await Promise.all(['dump.pgc', 'filestore.tar'].map(async (name) => {
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `raw/${name}` }));
    await pipeline(got.Body as NodeJS.ReadableStream, createWriteStream(join(scratch, name)));
  }));
  const rawDownload = secs(t);
  await Promise.all([
    new Promise<void>((resolve, reject) => spawn(pgRestore.path, ['--no-owner', '--exit-on-error', '--jobs', '2', ...conn, '-d', 'bench_raw', join(scratch, 'dump.pgc')], { env, stdio: 'inherit' })
      .on('close', (c) => (c === 0 ? resolve() : reject(new Error(`pg_restore exited ${c}`))))),
    pipeline(createReadStream(join(scratch, 'filestore.tar')), spawn('tar', ['--extract', '--file=-', '--directory', join(scratch, 'files')], { stdio: ['pipe', 'inherit', 'inherit'] }).stdin!),
  ]);
  const rawRestore = secs(t);

  progress('OdooOps: restore of the second backup');
  const r = await f.run('production', 'restore', { backup: b2.result.backupId });

  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
  console.log(`\nOdooOps backup benchmark — Debian PostgreSQL 15, database ${gib(f.dbBytes)} + filestore ${gib(f.filestoreBytes)} (${files.length} files), S3 stand-in (s3rver), encrypted`);
  console.log(`raw: pg_dump -Fc + tar uploaded at once:   ${rawBackup.toFixed(1)} s`);
  console.log(`OdooOps first backup:                      ${b1.seconds.toFixed(1)} s   ratio ${(b1.seconds / rawBackup).toFixed(2)} (aim <= 1.10)`);
  console.log(`OdooOps second backup (1 % files changed): ${b2.seconds.toFixed(1)} s   ratio to the first ${(b2.seconds / b1.seconds).toFixed(2)} (aim <= 0.10; the dump is whole each time)`);
  console.log(`raw: download + pg_restore -j2 + untar:     ${rawRestore.toFixed(1)} s   (download ${rawDownload.toFixed(1)} s)`);
  console.log(`OdooOps restore (verify, decrypt, rebuild): ${r.seconds.toFixed(1)} s   ratio ${(r.seconds / rawRestore).toFixed(2)}`);
  console.log('\nfirst backup:');
  await phases(f, b1.id, /pg_dump|dump:|filestore|backup |upload|objects/);
  console.log('second backup:');
  await phases(f, b2.id, /pg_dump|dump:|filestore|backup |upload|objects/);
  console.log('restore:');
  await phases(f, r.id, /verif|pg_restore|database restored|filestore|switch|restored/);
} finally {
  await f.close();
  s3proc.stdin!.end();
}
process.exit(0);
