// Clone benchmark (`npm run bench:clone`): a masked clone (production → staging: copy, neutralize,
// scrub, mask, verify, store, restore) of a generated Odoo-17-shaped database of at least BENCH_GB GB
// (default 1), next to a plain `pg_dump -Fc | pg_restore` of the same database into a new one on the
// same server, in the same run. Aim: at most 1.5x.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { maskedCopy } from '../server/odoo/masked-copy.ts';
import { findPgTool } from '../server/odoo/pg-tools.ts';
import { BENCH_PASSWORD, odooFixture, phases, progress } from './odoo-fixture.ts';

const f = await odooFixture();
try {
  const [pgDump, pgRestore] = await Promise.all([findPgTool('pg_dump', '15'), findPgTool('pg_restore', '15')]);
  const admin = await f.pgsrv.client();
  await admin.query('create database bench_raw owner odoo');
  await admin.end();
  progress('raw: pg_dump -Fc | pg_restore into a new database');
  const env = { ...process.env, PGPASSWORD: BENCH_PASSWORD };
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
  const target = { host: f.pgsrv.host, port: f.pgsrv.port, user: 'odoo', password: BENCH_PASSWORD };
  const t1 = performance.now();
  await maskedCopy({
    from: { ...target, database: 'bench_prod' }, into: { ...target, database: 'bench_unmasked' }, pgDump, pgRestore,
    profile: { version: 1, columns: {}, truncate: [] }, keepFiles: null, parallel: 2, log: async () => {}, signal: new AbortController().signal,
  });
  const unmasked = (performance.now() - t1) / 1000;
  progress('OdooOps: clone run production → staging');
  const c = await f.run('staging', 'clone');
  console.log(`\nOdooOps clone benchmark — Debian PostgreSQL 15, database ${(f.dbBytes / 1024 ** 3).toFixed(2)} GiB + filestore ${(f.filestoreBytes / 1024 ** 3).toFixed(2)} GiB`);
  console.log(`plain pg_dump -Fc | pg_restore (raw):  ${raw.toFixed(1)} s`);
  console.log(`same streamed copy, nothing masked:   ${unmasked.toFixed(1)} s  (${(unmasked / raw).toFixed(2)} of raw: the copy mechanism itself)`);
  console.log(`OdooOps masked clone run:              ${c.seconds.toFixed(1)} s  (copy, neutralize, scrub, mask, verify, store the clone, restore, filestore "assets")`);
  console.log(`ratio: ${(c.seconds / raw).toFixed(2)} (aim: at most 1.5)`);
  await phases(f, c.id, /copied|sampled|rules applied|mask\.log: [a-z_]+: \d+ rows|masked;|filestore policy|verified|dump:|stored as|pg_restore|database restored|switched|now a|dropped/);
} finally {
  await f.close();
}
process.exit(0);
