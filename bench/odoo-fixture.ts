// Shared by bench:backup and bench:clone: a Debian PostgreSQL 15 cluster with a generated Odoo-17-shaped
// database of at least `gb` gigabytes (default BENCH_GB, else 1) and its filestore of 32 KiB attachments
// (by default tied to the database, one per 20 partners: ~1.5x its size; or `filestoreGb` of them), plus
// an OdooOps control plane whose project points at it (production, staging). Progress goes to stderr.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startServer, type RunningServer } from '../server/app.ts';
import { generateOdooDatabase } from '../server/odoo/generate.ts';
import { call, eventually, chownToRunUser, tempHome } from '../test/helpers/control-plane.ts';
import { createOdooRole, startDebianPostgres, type DebianPostgres } from '../test/helpers/debian-postgres.ts';

export const progress = (m: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** A size in GB from the environment variable `name`, `fallback` when it is unset or empty. */
export function benchGb(name: string, fallback: number): number {
  const v = process.env[name]?.trim();
  if (!v) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${v} is not a size in GB: give a positive number (${name}=0.25, say) or leave it unset for ${fallback}`);
  return n;
}

const ATTACHMENT_BYTES = 32 * 1024;

export interface OdooFixture {
  pgsrv: DebianPostgres;
  server: RunningServer;
  token: string;
  scratch: string;
  filestore: (db: string) => string;
  dbBytes: number;
  filestoreBytes: number;
  /** Files in the filestore (one per ir_attachment row). */
  filestoreFiles: number;
  /** Bytes of each attachment (a changed one keeps its size). */
  attachmentBytes: number;
  run(env: string, kind: string, params?: object): Promise<{ seconds: number; result: any; id: number }>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** More registry entries (backup stores, say), merged into the operator's registry. */
  registry?: Record<string, Record<string, unknown>>;
  /** The stage of the environment named "production" (a backup benchmark restores into it without an approval when it is "staging"). */
  productionStage?: 'production' | 'staging';
  /** The database's size in GB (at least); BENCH_GB, else 1, by default. */
  gb?: number;
  /**
   * The filestore's size in GB, apart from the database's; by default one attachment per 20 partners
   * (bench:clone's filestore, ~1.5x the database).
   */
  filestoreGb?: number;
}

export async function odooFixture(opts: FixtureOptions = {}): Promise<OdooFixture> {
  const scratch = mkdtempSync(join(tmpdir(), 'odooops-bench-'));
  chmodSync(scratch, 0o755); // the run user (the server is root) works in the filestore root
  const filestore = (db: string) => join(scratch, 'filestore', db);
  const pgsrv = await startDebianPostgres();
  await createOdooRole(pgsrv, 'odoo', 'bench-password-16');
  process.env.ODOOOPS_DB_BENCH = 'bench-password-16';
  const admin = await pgsrv.client();
  await admin.query(`create database bench_prod owner odoo`);
  await admin.end();
  const db = new pg.Client({ host: pgsrv.host, port: pgsrv.port, user: 'odoo', password: 'bench-password-16', database: 'bench_prod' });
  await db.connect();
  // ~1.1 KB of database per partner (partner, 2 messages, mail queue, users, bank accounts); attachments
  // of 32 KiB, one per 20 partners unless the filestore's size is given.
  const gb = opts.gb ?? benchGb('BENCH_GB', 1);
  const partners = Math.ceil((gb * 1024 ** 3) / 1100);
  const wanted = opts.filestoreGb === undefined ? null : Math.max(4, Math.round((opts.filestoreGb * 1024 ** 3) / ATTACHMENT_BYTES));
  // The generator counts attachments per 10 partners and rounds down: half an attachment more keeps a
  // float's error from losing one.
  const attachmentsPer10 = wanted === null ? 0.5 : ((wanted + 0.5) * 10) / partners;
  progress(`generating an Odoo-17-shaped database of ~${gb} GB: ${partners} partners, ${wanted ?? Math.floor(partners / 20)} attachments of 32 KiB`);
  const t0 = Date.now();
  const made = await generateOdooDatabase(db, filestore('bench_prod'), { partners, attachmentsPer10, attachmentBytes: ATTACHMENT_BYTES });
  if (wanted !== null && made.attachments !== wanted) throw new Error(`the generator made ${made.attachments} attachments, not the ${wanted} asked for`);
  const dbBytes = Number((await db.query('select pg_database_size(current_database()) as b')).rows[0].b);
  await db.end();
  const filestoreBytes = made.filestoreBytes;
  progress(`generated in ${((Date.now() - t0) / 1000).toFixed(0)} s: database ${(dbBytes / 1024 ** 3).toFixed(2)} GiB, filestore ${(filestoreBytes / 1024 ** 3).toFixed(2)} GiB (${made.attachments} files)`);

  const home = tempHome('odooops-bench-home-');
  // The operator's registry: the bench's PostgreSQL and filestore root, bound to the project.
  writeFileSync(join(home, 'infrastructure.yaml'), JSON.stringify({
    databaseServers: { bench: { host: pgsrv.host, port: pgsrv.port, user: 'odoo', password: 'env:ODOOOPS_DB_BENCH', projects: ['bench'] } },
    filestoreRoots: { bench: { path: join(scratch, 'filestore'), projects: ['bench'] } },
    ...opts.registry,
  }));
  const server = await startServer({ home, log: () => {}, scheduleIntervalMs: 0, leaseSeconds: 60 });
  chownToRunUser(join(scratch, 'filestore'));
  const token = server.token; // the operator's: they may create projects
  await call(server.url, token, 'POST', '/api/projects', { slug: 'bench', name: 'Bench' });
  for (const [name, stage, dbName] of [['production', opts.productionStage ?? 'production', 'bench_prod'], ['staging', 'staging', 'bench_staging']]) {
    const r = await call(server.url, token, 'POST', '/api/projects/bench/environments', {
      name, stage, filestore: 'bench', database: { server: 'bench', name: dbName },
    });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  }
  return {
    pgsrv, server, token, scratch, filestore, dbBytes, filestoreBytes, filestoreFiles: made.attachments, attachmentBytes: ATTACHMENT_BYTES,
    async run(env, kind, params = {}) {
      const q = await call(server.url, token, 'POST', `/api/projects/bench/environments/${env}/runs`, { kind, params });
      if (q.status !== 201) throw new Error(JSON.stringify(q.body));
      const run = await eventually(`${kind} run`, async () => {
        const r = (await call(server.url, token, 'GET', `/api/runs/${q.body.id}`)).body;
        return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
      }, 3 * 3600_000);
      if (run.status !== 'succeeded') {
        const logs = (await call(server.url, token, 'GET', `/api/runs/${q.body.id}/logs?limit=5000`)).body;
        for (const l of logs.lines.slice(-40)) process.stderr.write(`  ${l.ts} ${l.stream} ${l.line}\n`);
        throw new Error(`${kind} ${run.status}: ${run.error}`);
      }
      return { seconds: (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000, result: run.result, id: run.id };
    },
    async close() {
      await server.stop(2000);
      await pgsrv.stop();
      rmSync(scratch, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A run's log lines, each with its time (ms since the epoch, as the worker stamped it). */
export async function runLog(f: OdooFixture, id: number): Promise<{ t: number; line: string }[]> {
  const lines: { t: number; line: string }[] = [];
  let after = 0;
  for (;;) {
    const page = (await call(f.server.url, f.token, 'GET', `/api/runs/${id}/logs?after=${after}&limit=5000`)).body;
    for (const l of page.lines) lines.push({ t: Date.parse(l.ts), line: l.line });
    if (page.lines.length < 5000) return lines;
    after = page.nextAfter;
  }
}

/**
 * Seconds from the first line matching `from` (the run's first line when null) to the last line after it
 * matching `to`: a phase of a run, read from its log. Null when either line is not there (a log line
 * reworded), so a bench prints "n/a" instead of a wrong figure.
 */
export function span(lines: { t: number; line: string }[], from: RegExp | null, to: RegExp): number | null {
  const start = from === null ? 0 : lines.findIndex((l) => from.test(l.line));
  if (start < 0 || !lines.length) return null;
  for (let i = lines.length - 1; i >= start; i--) if (to.test(lines[i]!.line)) return (lines[i]!.t - lines[start]!.t) / 1000;
  return null;
}

/** Prints a run's log lines with their time since the run's first line: where the time goes. */
export async function phases(f: OdooFixture, id: number, pattern: RegExp): Promise<void> {
  const lines = await runLog(f, id);
  const first = lines[0]?.t ?? 0;
  for (const l of lines) {
    if (pattern.test(l.line)) console.log(`  +${((l.t - first) / 1000).toFixed(1).padStart(6)} s  ${l.line.slice(0, 110)}`);
  }
}
