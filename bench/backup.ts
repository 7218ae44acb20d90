// Backup benchmark (`npm run bench:backup`): backups of a generated Odoo-17-shaped database of at least
// BENCH_GB GB (default 0.25 here: a typical Odoo whose attachments outweigh its database) with a filestore
// of BENCH_FILESTORE_GB GB (default 1.5; 32 KiB attachments, each an ir_attachment row naming its file by
// SHA-1) into the S3 stand-in (s3rver in its own process, the stand-in for AWS S3/R2/B2/MinIO), encrypted,
// next to the raw ceilings measured in the same run with the same SDK:
//   1. the first backup vs `pg_dump -Fc` and `tar` uploaded at once as two plain objects (aim <= 1.1x), and
//      its dump and filestore parts vs each of them uploaded alone;
//   2. a second backup after 1 % of the attachments changed: its filestore part vs the first's (aim <= 0.1x;
//      the dump is whole in every backup, so the whole run's ratio depends on the database's size);
//   3. a restore from it vs a plain download + `pg_restore` + untar.
// The parts' times come from the runs' logs (the executor's "dump: …" and "filestore: …" lines).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { findPgTool } from '../server/odoo/pg-tools.ts';
import { call, chownToRunUser } from '../test/helpers/control-plane.ts';
import { benchGb, odooFixture, phases, progress, runLog, span } from './odoo-fixture.ts';

// Read first: a bad size fails before anything starts.
const gb = benchGb('BENCH_GB', 0.25);
const filestoreGb = benchGb('BENCH_FILESTORE_GB', 1.5);

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
  gb, filestoreGb,
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

  const dumpArgs = ['--format=custom', '--no-owner', ...conn, '-d', 'bench_prod'];
  const tarArgs = ['--create', '--file=-', '--directory', f.filestore('bench_prod'), '.'];
  const timed = async (work: () => Promise<unknown>) => {
    const t = performance.now();
    await work();
    return secs(t);
  };
  // Each part alone first (the ceilings of a backup's dump part and filestore part), then both at once (a
  // backup's whole). The lone objects are removed at once: the stand-in's disk holds a copy of each.
  progress('raw: pg_dump -Fc alone, uploaded as one plain object');
  const rawDump = await timed(() => upload('raw/dump-alone.pgc', pgDump.path, dumpArgs));
  progress('raw: tar of the filestore alone, uploaded as one plain object');
  const rawFiles = await timed(() => upload('raw/filestore-alone.tar', 'tar', tarArgs));
  for (const key of ['raw/dump-alone.pgc', 'raw/filestore-alone.tar']) await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  progress('raw: pg_dump -Fc and tar of the filestore, each uploaded as one plain object, at once');
  const rawBackup = await timed(() => Promise.all([upload('raw/dump.pgc', pgDump.path, dumpArgs), upload('raw/filestore.tar', 'tar', tarArgs)]));

  progress('OdooOps: first backup (everything is new)');
  const b1 = await f.run('production', 'backup', { kind: 'manual' });

  // 1 % of the attachments change as Odoo changes one: the new content goes to a new file named by its
  // SHA-1, the row points at it, and the old file goes (what Odoo's garbage collector does next).
  const prod = await f.pgsrv.client('bench_prod');
  const attachments = async () => (await prod.query<{ id: number; store_fname: string }>('select id, store_fname from ir_attachment where store_fname is not null order by id')).rows;
  // Every row names a file on disk and every file is some row's: what a backup reads is what Odoo has.
  const consistent = async (when: string) => {
    const named = new Set((await attachments()).map((r) => r.store_fname));
    const onDisk = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
    const stray = onDisk.filter((p) => !named.delete(p));
    if (stray.length || named.size) throw new Error(`${when}: ${stray.length} file(s) no attachment names (${stray.slice(0, 3).join(', ')}), ${named.size} attachment(s) without their file (${[...named].slice(0, 3).join(', ')})`);
    return onDisk.length;
  };
  const dir = f.filestore('bench_prod');
  if ((await consistent('the generated filestore')) !== f.filestoreFiles) throw new Error(`the filestore does not have the ${f.filestoreFiles} files the fixture made`);
  const rows = await attachments();
  const changed = Math.ceil(rows.length / 100);
  for (let i = 0; i < changed; i++) {
    const row = rows[Math.floor((i * rows.length) / changed)]!;
    const content = randomBytes(f.attachmentBytes);
    const sha1 = createHash('sha1').update(content).digest('hex');
    const fname = `${sha1.slice(0, 2)}/${sha1}`;
    mkdirSync(join(dir, sha1.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, fname), content);
    await prod.query('update ir_attachment set store_fname = $1, checksum = $2, file_size = $3 where id = $4', [fname, sha1, content.length, row.id]);
    rmSync(join(dir, row.store_fname), { force: true });
  }
  await consistent('after the change');
  await prod.end();
  chownToRunUser(dir);
  progress(`OdooOps: second backup after ${changed} of ${rows.length} attachments changed`);
  const b2 = await f.run('production', 'backup', { kind: 'manual' });

  progress('raw: download of both objects, then pg_restore (2 jobs) into a new database and untar');
  const admin = await f.pgsrv.client();
  await admin.query('create database bench_raw owner odoo');
  await admin.end();
  const scratch = join(f.scratch, 'raw-restore');
  mkdirSync(join(scratch, 'files'), { recursive: true });
  // Both at once, as a plain restore would; each part's own time is when it finished.
  const t = performance.now();
  const [dlDump, dlFiles] = await Promise.all(['dump.pgc', 'filestore.tar'].map(async (name) => {
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `raw/${name}` }));
    await pipeline(got.Body as NodeJS.ReadableStream, createWriteStream(join(scratch, name)));
    return secs(t);
  }));
  const tDl = performance.now();
  const [rawPgRestore, rawUntar] = await Promise.all([
    new Promise<number>((resolve, reject) => spawn(pgRestore.path, ['--no-owner', '--exit-on-error', '--jobs', '2', ...conn, '-d', 'bench_raw', join(scratch, 'dump.pgc')], { env, stdio: 'inherit' })
      .on('close', (c) => (c === 0 ? resolve(secs(tDl)) : reject(new Error(`pg_restore exited ${c}`))))),
    (async () => {
      const tar = spawn('tar', ['--extract', '--file=-', '--directory', join(scratch, 'files')], { stdio: ['pipe', 'inherit', 'inherit'] });
      const exited = new Promise<void>((resolve, reject) => tar.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`tar exited ${c}`)))));
      await pipeline(createReadStream(join(scratch, 'filestore.tar')), tar.stdin!);
      await exited;
      return secs(tDl);
    })(),
  ]);
  const rawRestore = secs(t);

  progress('OdooOps: restore of the second backup');
  const r = await f.run('production', 'restore', { backup: b2.result.backupId });

  // Each run's parts, from its log: a backup writes its dump and its filestore at once (the filestore part
  // starts where the executor lists the filestore, after inspecting the database); a restore verifies,
  // restores the database and writes the filestore beside the current one at once, switches, then
  // removes the previous database and filestore (which the raw restore has none of).
  const backupParts = (lines: Awaited<ReturnType<typeof runLog>>) => ({
    dump: span(lines, /^pg_dump -Fc /, /^dump: /),
    files: span(lines, /^Odoo .* modules; PostgreSQL /, /^filestore: /),
  });
  const p1 = backupParts(await runLog(f, b1.id));
  const p2 = backupParts(await runLog(f, b2.id));
  const rl = await runLog(f, r.id);
  const pr = {
    verify: span(rl, null, /^verified/),
    dump: span(rl, /^pg_restore into /, /^database restored/),
    files: span(rl, /^unpacking the filestore/, /^filestore unpacked/),
    both: span(rl, /^(pg_restore into|unpacking the filestore)/, /^(database restored|filestore unpacked)/),
    switch: span(rl, /^filestore unpacked/, /^switched: /),
    cleanup: span(rl, /^switched: /, /^restored backup /),
  };
  const s1 = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(1)} s`);
  const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? 'n/a' : (a / b).toFixed(2));
  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
  console.log(`\nOdooOps backup benchmark — Debian PostgreSQL 15, S3 stand-in (s3rver), encrypted`);
  console.log(`database ${gib(f.dbBytes)} (BENCH_GB=${gb}), filestore ${gib(f.filestoreBytes)} in ${f.filestoreFiles} files of ${f.attachmentBytes / 1024} KiB (BENCH_FILESTORE_GB=${filestoreGb}); ${changed} files changed before the second backup`);
  console.log(`raw: pg_dump -Fc uploaded alone:            ${rawDump.toFixed(1)} s`);
  console.log(`raw: tar of the filestore uploaded alone:   ${rawFiles.toFixed(1)} s`);
  console.log(`raw: pg_dump -Fc + tar uploaded at once:    ${rawBackup.toFixed(1)} s`);
  console.log(`OdooOps first backup:                       ${b1.seconds.toFixed(1)} s   ratio ${ratio(b1.seconds, rawBackup)} (aim <= 1.10)`);
  console.log(`  dump part ${s1(p1.dump)} (${ratio(p1.dump, rawDump)}x the dump alone), filestore part ${s1(p1.files)} (${ratio(p1.files, rawFiles)}x the tar alone)`);
  console.log(`OdooOps second backup (1 % files changed):  ${b2.seconds.toFixed(1)} s   ratio to the first ${ratio(b2.seconds, b1.seconds)} (the dump is whole each time)`);
  console.log(`  dump part ${s1(p2.dump)}, filestore part ${s1(p2.files)}: ratio to the first's filestore part ${ratio(p2.files, p1.files)} (aim <= 0.10)`);
  console.log(`raw: download + pg_restore -j2 + untar:     ${rawRestore.toFixed(1)} s   (at once: download of the dump ${dlDump!.toFixed(1)} s, of the tar ${dlFiles!.toFixed(1)} s; then at once: pg_restore ${rawPgRestore.toFixed(1)} s, untar ${rawUntar.toFixed(1)} s)`);
  console.log(`OdooOps restore (verify, decrypt, rebuild): ${r.seconds.toFixed(1)} s   ratio ${ratio(r.seconds, rawRestore)}`);
  console.log(`  verify ${s1(pr.verify)}; then at once: dump part (pg_restore) ${s1(pr.dump)}, filestore part ${s1(pr.files)} (both ${s1(pr.both)}); switch ${s1(pr.switch)}; removing the previous database and filestore ${s1(pr.cleanup)}`);
  console.log(`  restore up to the switch (what the raw restore measures): ${s1(r.seconds - (pr.cleanup ?? 0))}   ratio ${ratio(r.seconds - (pr.cleanup ?? 0), rawRestore)}`);
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
