// Clone benchmark (`npm run bench:clone`): a masked clone (production → staging: copy, neutralize,
// scrub, mask, verify, store, restore) of a generated Odoo-17-shaped database of at least BENCH_GB GB
// (default 1), next to a plain `pg_dump -Fc | pg_restore` of the same database into a new one on the
// same server, in the same run. Aim: at most 1.5x. Then (BENCH_RESTORE=0 skips it) restoring one
// `pg_dump -Fc` of the database: streamed into one pg_restore, and with pg_restore -j from the store's
// file and from a checked copy in the scratch directory (a store without local files: S3, encrypted).
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COPY_SESSIONS, maskedCopy } from '../server/odoo/masked-copy.ts';
import { restoreDump, restoreJobs } from '../server/odoo/dump-restore.ts';
import { connectionArgs, findPgTool, pgEnv, spawnTool, withTool, type PgTool } from '../server/odoo/pg-tools.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { odooFixture, phases, progress, type OdooFixture } from './odoo-fixture.ts';

/** A store whose objects are not files here, as S3's and an encrypting store's are (no local path). */
class NoLocalPathStore extends LocalBackupStore {
  override localPath(): string | undefined {
    return undefined;
  }
}

const f = await odooFixture();
try {
  const [pgDump, pgRestore] = await Promise.all([findPgTool('pg_dump', '15'), findPgTool('pg_restore', '15')]);
  const admin = await f.pgsrv.client();
  await admin.query('create database bench_raw owner odoo');
  await admin.end();
  progress('raw: pg_dump -Fc | pg_restore into a new database');
  const env = { ...process.env, PGPASSWORD: 'bench-password-16' };
  const conn = ['-h', f.pgsrv.host, '-p', String(f.pgsrv.port), '-U', 'odoo'];
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const dump = spawn(pgDump.path, ['--format=custom', '--no-owner', ...conn, '-d', 'bench_prod'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const restore = spawn(pgRestore.path, ['--no-owner', '--exit-on-error', ...conn, '-d', 'bench_raw'], { env, stdio: ['pipe', 'inherit', 'inherit'] });
    dump.stdout.pipe(restore.stdin);
    let left = 2;
    const done = (code: number | null) => (code === 0 ? --left === 0 && resolve() : reject(new Error(`exit ${code}`)));
    dump.on('close', done);
    restore.on('close', done);
  });
  const raw = (performance.now() - t0) / 1000;
  // The clone's own copy mechanism with nothing to mask: what masking itself costs, next to raw.
  progress('the clone\'s streamed copy with an empty masking profile (copy mechanics only)');
  const admin2 = await f.pgsrv.client();
  await admin2.query('create database bench_unmasked owner odoo');
  await admin2.end();
  const target = { host: f.pgsrv.host, port: f.pgsrv.port, user: 'odoo', password: 'bench-password-16' };
  const t1 = performance.now();
  await maskedCopy({
    from: { ...target, database: 'bench_prod' }, into: { ...target, database: 'bench_unmasked' }, pgDump, pgRestore,
    profile: { version: 1, columns: {}, truncate: [] }, keepFiles: null, parallel: COPY_SESSIONS, log: async () => {}, signal: new AbortController().signal,
  });
  const unmasked = (performance.now() - t1) / 1000;
  // As in any project (daily backups are what OdooOps is for), production has a backup in the store
  // before it is cloned: the files the clone keeps are there already, as a clone would find them.
  // BENCH_CLONE_COLD=1 clones with an empty store instead (the clone then stores every kept file itself).
  const cold = process.env.BENCH_CLONE_COLD === '1';
  if (!cold) {
    progress('production backup (not timed: what the clone finds in the store)');
    await f.run('production', 'backup', { kind: 'manual' });
  }
  progress(`OdooOps: clone run production → staging${cold ? ' (empty store)' : ''}`);
  const c = await f.run('staging', 'clone');
  console.log(`\nOdooOps clone benchmark — Debian PostgreSQL 15, database ${(f.dbBytes / 1024 ** 3).toFixed(2)} GiB + filestore ${(f.filestoreBytes / 1024 ** 3).toFixed(2)} GiB`);
  console.log(`plain pg_dump -Fc | pg_restore (raw):  ${raw.toFixed(1)} s`);
  console.log(`same streamed copy, nothing masked:   ${unmasked.toFixed(1)} s  (${(unmasked / raw).toFixed(2)} of raw: the copy mechanism itself)`);
  console.log(`OdooOps masked clone run:              ${c.seconds.toFixed(1)} s  (copy, neutralize, scrub, mask, verify, store the clone, restore, filestore "assets"; ${cold ? 'an empty store: every kept file stored by the clone' : 'production backed up before, as daily'})`);
  console.log(`ratio: ${(c.seconds / raw).toFixed(2)} (aim: at most 1.5)`);
  await phases(f, c.id, /copied|sampled|rules applied|mask\.log: [a-z_]+: \d+ rows|masked;|filestore policy|verified|dump:|filestore:|unpack|stored as|pg_restore|database restored|switched|now a|dropped/);
  if (process.env.BENCH_RESTORE !== '0') await restores(f, target, pgDump, pgRestore);
} finally {
  await f.close();
}
process.exit(0);

async function restores(f: OdooFixture, target: { host: string; port: number; user: string; password: string }, pgDump: PgTool, pgRestore: PgTool) {
  const dir = mkdtempSync(join(tmpdir(), 'odooops-bench-restore-'));
  chmodSync(dir, 0o755); // pg_restore runs as the run user: it opens the store's file and the scratch copy itself
  try {
    const store = new LocalBackupStore(join(dir, 'store'));
    const from = { ...target, database: 'bench_prod' };
    progress('restore: pg_dump -Fc of production into a store');
    const dump = spawnTool(pgDump, ['--format=custom', '--no-owner', ...connectionArgs(from), '--dbname', 'bench_prod'], { env: pgEnv(from) });
    const part = await withTool(dump, store.put('bench/dump.pgc', dump.child.stdout!));
    const rows: string[] = [];
    let n = 0;
    const timed = async (label: string, go: (db: string, args: string[], env: NodeJS.ProcessEnv) => Promise<unknown>) => {
      const db = `bench_restore_${++n}`;
      const admin = await f.pgsrv.client();
      await admin.query(`create database ${db} owner odoo`);
      await admin.end();
      const into = { ...target, database: db };
      progress(`restore: ${label}`);
      const t = performance.now();
      await go(db, ['--no-owner', '--no-privileges', '--exit-on-error', ...connectionArgs(into), '--dbname', db], pgEnv(into));
      const s = (performance.now() - t) / 1000;
      rows.push(`${label.padEnd(58)} ${s.toFixed(1)} s`);
      return s;
    };
    const input = (s: LocalBackupStore, args: string[], env: NodeJS.ProcessEnv) => ({
      store: s, key: 'bench/dump.pgc', bytes: part.bytes, sha256: part.sha256, pgRestore, args, env, log: async () => {}, signal: new AbortController().signal,
      scratch: { prefix: 'odooops-bench-restore-', runId: n, isActive: async () => false, root: dir },
    });
    const single = await timed('one pg_restore, streamed from the store', (_db, args, env) => {
      const p = spawnTool(pgRestore, args, { env, stdin: 'pipe' });
      return withTool(p, store.get('bench/dump.pgc').then((src) => new Promise<void>((resolve, reject) => src.pipe(p.child.stdin!).on('finish', resolve).on('error', reject))));
    });
    const jobs = restoreJobs();
    const file = await timed(`pg_restore -j ${jobs} from the store's file`, (_db, args, env) => restoreDump(input(store, args, env)));
    const copy = await timed(`pg_restore -j ${jobs} from a checked scratch copy (no local path)`, (_db, args, env) => restoreDump(input(new NoLocalPathStore(store.root), args, env)));
    console.log(`\nRestoring a pg_dump -Fc of it (${(part.bytes / 1024 ** 2).toFixed(0)} MiB), ${jobs} jobs on ${jobs} cores:`);
    for (const r of rows) console.log(`  ${r}`);
    console.log(`  -j ${jobs} from the file: ${(file / single).toFixed(2)} of one job; through the scratch copy: ${(copy / single).toFixed(2)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
