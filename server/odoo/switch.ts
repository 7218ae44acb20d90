// Putting a new database and filestore in place of an environment's, so that a failure at any point
// leaves the environment exactly as it was: build beside it (<db>_odooops_new_<run>,
// <filestore>.odooops-new-<run>), then swap names, then drop what was swapped out. Leftovers of a worker
// killed mid-way carry the run id in their names and are removed by the next run on the environment.
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import type { PgTarget } from './pg-tools.ts';
import { runFs } from '../infra/run-user.ts';

/** PostgreSQL identifiers are at most 63 bytes: keep the suffix whole, shorten the base. */
export type SideKind = 'new' | 'old' | 'mask' | 'src';

export function sideName(db: string, what: SideKind, runId: number): string {
  const suffix = `_odooops_${what}_${runId}`;
  let base = db;
  while (Buffer.byteLength(base + suffix) > 63) base = base.slice(0, -1);
  return base + suffix;
}

export const sideDir = (filestore: string, what: 'new' | 'old', runId: number) => `${filestore.replace(/\/+$/, '')}.odooops-${what}-${runId}`;

/** A connection to the server's maintenance database, as the environment's user. */
export async function maintenance(t: PgTarget): Promise<pg.Client> {
  for (const database of ['postgres', 'template1']) {
    const c = new pg.Client({ host: t.host, port: t.port, user: t.user, password: t.password, database, application_name: 'odooops', connectionTimeoutMillis: 10_000 });
    c.on('error', () => {});
    try {
      await c.connect();
      return c;
    } catch (err) {
      if (database === 'template1') throw new Error(`cannot connect to the database server ${t.user ?? ''}@${t.host ?? 'localhost'}:${t.port ?? 5432}: ${(err as Error).message}`);
    }
  }
  throw new Error('unreachable');
}

export async function databaseExists(c: pg.ClientBase, name: string): Promise<boolean> {
  return (await c.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
}

/** Ends every other session on a database (Odoo's workers reconnect to whatever then has the name). */
export async function terminateSessions(c: pg.ClientBase, name: string): Promise<number> {
  const { rows } = await c.query('select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
  return rows[0].n as number;
}

async function renameDatabase(c: pg.ClientBase, from: string, to: string): Promise<number> {
  // A session can slip in between terminate and rename (Odoo reconnects at once): try a few times.
  let ended = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      ended += await terminateSessions(c, from);
    } catch (err) {
      // Sessions of a superuser or another role (a psql left open, a backup tool) cannot be ended by us.
      throw new Error(`${from} is in use by sessions this role cannot end (${(err as Error).message}); close them (see pg_stat_activity) and run again`);
    }
    try {
      await c.query(`alter database ${pg.escapeIdentifier(from)} rename to ${pg.escapeIdentifier(to)}`);
      return ended;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006') throw err;
      if (attempt >= 10) throw new Error(`${from} is still in use after ending its sessions ${attempt} times (something reconnects at once); stop Odoo's workers and run again`);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

export async function dropDatabase(c: pg.ClientBase, name: string): Promise<void> {
  if (!(await databaseExists(c, name))) return;
  await terminateSessions(c, name);
  await c.query(`drop database if exists ${pg.escapeIdentifier(name)}`);
}

/**
 * Removes what earlier runs on this database left behind (a worker killed mid-restore): side databases
 * and filestores of the given kinds whose run is not running any more. Returns the names removed.
 */
export async function removeLeftovers(
  c: pg.ClientBase, db: string, filestore: string | null, kinds: readonly SideKind[], isActive: (runId: number) => Promise<boolean>,
): Promise<string[]> {
  const removed: string[] = [];
  const { rows } = await c.query(`select datname from pg_database where datname ~ '_odooops_(new|old|mask|src)_[0-9]+$'`);
  for (const r of rows as { datname: string }[]) {
    const m = /^(.*)_odooops_(new|old|mask|src)_(\d+)$/.exec(r.datname)!;
    const kind = m[2] as SideKind;
    if (!kinds.includes(kind) || sideName(db, kind, Number(m[3])) !== r.datname || (await isActive(Number(m[3])))) continue;
    await dropDatabase(c, r.datname);
    removed.push(r.datname);
  }
  if (filestore) {
    const parent = dirname(filestore.replace(/\/+$/, ''));
    const base = basename(filestore.replace(/\/+$/, ''));
    const entries = await readdir(parent).catch(() => [] as string[]);
    for (const e of entries) {
      const m = /^(.*)\.odooops-(new|old)-(\d+)$/.exec(e);
      if (!m || m[1] !== base || !kinds.includes(m[2] as 'new' | 'old') || (await isActive(Number(m[3])))) continue;
      await runFs.rm(join(parent, e));
      removed.push(join(parent, e));
    }
  }
  return removed;
}

export interface SwitchPlan {
  db: string;
  newDb: string;
  filestore: string | null;
  newFilestore: string | null;
  runId: number;
}

/**
 * Swaps the new database (and filestore) in. On failure everything is renamed back and the error is
 * thrown; on success the old ones are dropped.
 */
export async function switchOver(c: pg.ClientBase, p: SwitchPlan, log: (l: string) => Promise<void>): Promise<void> {
  const oldDb = sideName(p.db, 'old', p.runId);
  const oldFs = p.filestore ? sideDir(p.filestore, 'old', p.runId) : null;
  const hadDb = await databaseExists(c, p.db);
  let movedDb = false;
  let placedDb = false;
  let movedFs = false;
  let placedFs = false;
  try {
    if (hadDb) {
      const ended = await renameDatabase(c, p.db, oldDb);
      movedDb = true;
      if (ended) await log(`ended ${ended} open session(s) on ${p.db}; Odoo reconnects to the new database`);
    }
    await renameDatabase(c, p.newDb, p.db);
    placedDb = true;
    if (p.filestore && p.newFilestore) {
      await runFs.mkdir(dirname(p.filestore));
      try {
        await runFs.rename(p.filestore, oldFs!);
        movedFs = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await runFs.rename(p.newFilestore, p.filestore);
      placedFs = true;
    }
  } catch (err) {
    // Undo in reverse order; the new copies are then removed by the caller's cleanup.
    if (placedFs) await runFs.rename(p.filestore!, p.newFilestore!).catch(() => {});
    if (movedFs) await runFs.rename(oldFs!, p.filestore!).catch(() => {});
    if (placedDb) await renameDatabase(c, p.db, p.newDb).catch(() => {});
    if (movedDb) await renameDatabase(c, oldDb, p.db).catch(() => {});
    throw new Error(`switching ${p.db} over failed, the environment is as it was: ${(err as Error).message}`);
  }
  await log(`switched: ${p.db} is the restored database${p.filestore ? `, ${p.filestore} its filestore` : ''}`);
  if (hadDb) await dropDatabase(c, oldDb);
  if (oldFs && movedFs) await runFs.rm(oldFs);
  await log('previous database and filestore removed');
}
