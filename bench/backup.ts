// Backup benchmark (`npm run bench:backup`): a backup run of a generated Odoo-17-shaped database of at
// least BENCH_GB GB (default 1) with its filestore, next to plain `pg_dump -Fc` + `tar` of the same data
// in the same run, on the same machine. Aim: within 10 %.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { findPgTool } from '../server/odoo/pg-tools.ts';
import { BENCH_PASSWORD, odooFixture, phases, progress } from './odoo-fixture.ts';

const run = promisify(execFile);
const f = await odooFixture();
try {
  const pgDump = await findPgTool('pg_dump', '15');
  // Plain tools first (a warm cache for both: the generator just wrote everything).
  progress('raw: pg_dump -Fc > file, then tar -cf of the filestore');
  const t0 = performance.now();
  await run(pgDump.path, ['--format=custom', '--no-owner', '-h', f.pgsrv.host, '-p', String(f.pgsrv.port), '-U', 'odoo', '-d', 'bench_prod', '-f', join(f.scratch, 'raw.pgc')], {
    env: { ...process.env, PGPASSWORD: BENCH_PASSWORD },
  });
  const tDump = (performance.now() - t0) / 1000;
  await run('tar', ['--create', '--file', join(f.scratch, 'raw.tar'), '--directory', f.filestore('bench_prod'), '.']);
  const raw = (performance.now() - t0) / 1000;
  // The backup run writes both parts at once: the same with the plain tools is the fairer ceiling.
  progress('raw: pg_dump -Fc > file and tar -cf of the filestore at once');
  const t1 = performance.now();
  await Promise.all([
    run(pgDump.path, ['--format=custom', '--no-owner', '-h', f.pgsrv.host, '-p', String(f.pgsrv.port), '-U', 'odoo', '-d', 'bench_prod', '-f', join(f.scratch, 'raw2.pgc')], {
      env: { ...process.env, PGPASSWORD: BENCH_PASSWORD },
    }),
    run('tar', ['--create', '--file', join(f.scratch, 'raw2.tar'), '--directory', f.filestore('bench_prod'), '.']),
  ]);
  const rawTogether = (performance.now() - t1) / 1000;
  progress('OdooOps: backup run');
  const b = await f.run('production', 'backup', { kind: 'manual' });
  console.log(`\nOdooOps backup benchmark — Debian PostgreSQL 15, database ${(f.dbBytes / 1024 ** 3).toFixed(2)} GiB + filestore ${(f.filestoreBytes / 1024 ** 3).toFixed(2)} GiB`);
  console.log(`plain pg_dump -Fc + tar (raw):  ${raw.toFixed(1)} s  (pg_dump ${tDump.toFixed(1)} s, tar ${(raw - tDump).toFixed(1)} s)`);
  console.log(`OdooOps backup run:             ${b.seconds.toFixed(1)} s  (${(b.result.bytes / 1024 ** 2).toFixed(0)} MiB stored, SHA-256 of each part, manifest, row)`);
  console.log(`plain pg_dump -Fc and tar at once:  ${rawTogether.toFixed(1)} s`);
  console.log(`ratio: ${(b.seconds / raw).toFixed(2)} to one after the other, ${(b.seconds / rawTogether).toFixed(2)} to both at once (aim: at most 1.10)`);
  await phases(f, b.id, /pg_dump|dump:|filestore:|backup /);
} finally {
  await f.close();
}
process.exit(0);
