// Putting a new database and filestore in place of an environment's, so that a failure at any point
// leaves the environment exactly as it was: build beside it (<db>_odooops_new_<run>,
// <filestore>.odooops-new-<run>), then swap names, then drop what was swapped out. Leftovers of a worker
// killed mid-way carry the run id in their names and are removed by the run's next attempt or the next
// run on the environment; a switch cut short between its renames is rolled back first.
import { lstat, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import type { PgTarget } from './pg-tools.ts';
import { runFs } from '../infra/run-user.ts';

/** PostgreSQL identifiers are at most 63 bytes: keep the suffix whole, shorten the base. */
export type SideKind = 'new' | 'old' | 'mask' | 'src';

export function sideName(db: string, what: SideKind, runId: number): string {
  return withSuffix(db, `_odooops_${what}_${runId}`);
}

/** `db` cut (by characters) until it and `suffix` fit PostgreSQL's 63 bytes, then the suffix. */
export function withSuffix(db: string, suffix: string): string {
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

/**
 * Ends every other session on a database (Odoo's workers reconnect to whatever then has the name).
 * Autovacuum workers are left out: they run as no role (usesysid null), so pg_terminate_backend refuses
 * them to anyone but a superuser ("must be a superuser to terminate superuser process"), and ALTER
 * DATABASE RENAME and DROP DATABASE stop them themselves (PostgreSQL signals them and waits up to 5 s).
 * A copy just restored or masked, and a database a clone just replaced, are where autovacuum goes
 * first: counting its worker as a session we cannot end failed switches and left their copies behind.
 */
export async function terminateSessions(c: pg.ClientBase, name: string): Promise<number> {
  const { rows } = await c.query(
    'select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() and usesysid is not null', [name]);
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

/** Drops a database if it exists; says whether there was one. */
export async function dropDatabase(c: pg.ClientBase, name: string): Promise<boolean> {
  if (!(await databaseExists(c, name))) return false;
  await terminateSessions(c, name);
  await c.query(`drop database if exists ${pg.escapeIdentifier(name)}`);
  return true;
}

const present = (path: string) => lstat(path).then(() => true, (err: NodeJS.ErrnoException) => {
  if (err.code === 'ENOENT') return false;
  throw err;
});

/** Whose leftovers may be removed: those of runs that stopped, and the run's own earlier attempts. */
export interface LeftoverOwner {
  /** The run now executing: what carries its id was left by one of its own earlier attempts. */
  runId: number;
  isActive: (runId: number) => Promise<boolean>;
  /** Told what a switch cut short was rolled back to. */
  say?: (line: string) => Promise<void>;
}

/**
 * Removes what earlier runs on this database left behind (a worker killed mid-run): side databases and
 * filestores of the given kinds whose run is not running any more, or is this very run (an earlier
 * attempt: the current one has made nothing yet). A switch that was cut short is first rolled back
 * (recoverSwitch), so a previous database is never dropped, only put back. Returns what it did.
 */
export async function removeLeftovers(
  c: pg.ClientBase, db: string, filestore: string | null, kinds: readonly SideKind[], owner: LeftoverOwner,
): Promise<string[]> {
  const done: string[] = [];
  const stale = new Map<number, boolean>();
  const isStale = async (id: number) => {
    if (!stale.has(id)) stale.set(id, id === owner.runId || !(await owner.isActive(id)));
    return stale.get(id)!;
  };
  const fsPath = filestore?.replace(/\/+$/, '') ?? null;
  const sideDbs = async () => {
    const { rows } = await c.query(`select datname from pg_database where datname ~ '_odooops_(new|old|mask|src)_[0-9]+$'`);
    return (rows as { datname: string }[]).flatMap((r) => {
      const m = /^(.*)_odooops_(new|old|mask|src)_(\d+)$/.exec(r.datname)!;
      const kind = m[2] as SideKind;
      const runId = Number(m[3]);
      return kinds.includes(kind) && sideName(db, kind, runId) === r.datname ? [{ name: r.datname, kind, runId }] : [];
    });
  };
  const sideDirs = async () => {
    if (!fsPath) return [];
    const parent = dirname(fsPath);
    const base = basename(fsPath);
    const entries = await readdir(parent).catch(() => [] as string[]);
    return entries.flatMap((e) => {
      const m = /^(.*)\.odooops-(new|old)-(\d+)$/.exec(e);
      return m && m[1] === base && kinds.includes(m[2] as SideKind) ? [{ path: join(parent, e), kind: m[2] as 'new' | 'old', runId: Number(m[3]) }] : [];
    });
  };
  if (kinds.includes('old')) {
    const cut = new Set([...(await sideDbs()), ...(await sideDirs())].filter((s) => s.kind === 'old').map((s) => s.runId));
    for (const runId of cut) {
      if (!(await isStale(runId))) continue;
      for (const line of await recoverSwitch(c, db, fsPath, runId)) await owner.say?.(line);
    }
  }
  for (const s of await sideDbs()) {
    if (s.kind === 'old' || !(await isStale(s.runId))) continue;
    await dropDatabase(c, s.name);
    done.push(s.name);
  }
  for (const s of await sideDirs()) {
    if (s.kind === 'old' || !(await isStale(s.runId))) continue;
    await runFs.rm(s.path);
    done.push(s.path);
  }
  return done;
}

/**
 * Removes the scratch directories (<tmp>/<prefix><run>-XXXXXX, see runTempDir) of stopped runs and of
 * this run's earlier attempts; a clone's may hold files taken out of a production backup. The prefix
 * must name something unique to the control plane (an environment id): run ids are not.
 */
export async function removeStaleScratch(prefix: string, owner: LeftoverOwner, root = tmpdir()): Promise<string[]> {
  const done: string[] = [];
  for (const e of await readdir(root).catch(() => [] as string[])) {
    const m = e.startsWith(prefix) ? /^(\d+)-[^/]+$/.exec(e.slice(prefix.length)) : null;
    if (!m) continue;
    const runId = Number(m[1]);
    if (runId !== owner.runId && (await owner.isActive(runId))) continue;
    await rm(join(root, e), { recursive: true, force: true });
    done.push(`the scratch directory ${e}`);
  }
  return done;
}

/**
 * Finishes what a switch of run `runId` left when its worker died between its steps (switchOver's
 * order: database to <db>_odooops_old_<run>, new database in, filestore to .odooops-old-<run>, new
 * filestore in, previous database dropped, previous filestore removed). Dropping the previous
 * database is the point of no return: before it the run did not finish, so the environment is put back
 * as it was (the new copies become side copies again, removed as leftovers); after it only the
 * previous filestore is left, which is removed. Never drops a previous copy it has not put back; a
 * state no switch can leave is refused with nothing changed.
 */
export async function recoverSwitch(c: pg.ClientBase, db: string, filestore: string | null, runId: number): Promise<string[]> {
  const oldDb = sideName(db, 'old', runId);
  const newDb = sideName(db, 'new', runId);
  const oldFs = filestore ? sideDir(filestore, 'old', runId) : null;
  const newFs = filestore ? sideDir(filestore, 'new', runId) : null;
  const odd = (what: string) => new Error(
    `run ${runId} left ${what}, which no interrupted switch leaves; nothing was changed: look at ${db}, ${oldDb} and ${newDb} (pg_database)${filestore ? ` and ${filestore}, ${oldFs} and ${newFs}` : ''}, keep the right ones under the environment's names, drop the others, and run again`,
  );
  const done: string[] = [];
  if (await databaseExists(c, oldDb)) {
    const fsBack = oldFs && (await present(oldFs));
    const dbNew = await databaseExists(c, db);
    if (fsBack && (await present(filestore!)) && (await present(newFs!))) throw odd(`${filestore}, ${oldFs} and ${newFs} at once`);
    if (dbNew && (await databaseExists(c, newDb))) throw odd(`${db}, ${oldDb} and ${newDb} at once`);
    if (fsBack) {
      if (await present(filestore!)) await runFs.rename(filestore!, newFs!);
      await runFs.rename(oldFs!, filestore!);
    }
    if (dbNew) await renameDatabase(c, db, newDb);
    await renameDatabase(c, oldDb, db);
    done.push(`run ${runId} was stopped in the middle of its switch: put ${db}${fsBack ? ` and ${filestore}` : ''} back as they were before it`);
  } else if (oldFs && (await present(oldFs))) {
    if (!(await present(filestore!))) {
      await runFs.rename(oldFs, filestore!);
      done.push(`run ${runId} was stopped in the middle of its switch: put ${filestore} back`);
    } else if (await present(newFs!)) {
      throw odd(`${filestore}, ${oldFs} and ${newFs} at once`);
    } else {
      // The previous database is gone: the switch had completed, this is the previous filestore.
      await runFs.rm(oldFs);
      done.push(`removed ${oldFs}, the previous filestore of run ${runId}'s completed switch`);
    }
  }
  return done;
}

/**
 * The error of a CREATE DATABASE that failed, saying why: a name taken, or a role without CREATEDB
 * (said only when the role really lacks it), or PostgreSQL's own words.
 */
export async function createDatabaseError(c: pg.ClientBase, name: string, err: unknown, who: string): Promise<Error> {
  const e = err as { code?: string; message: string };
  if (e.code === '42P04') {
    return new Error(`cannot create the database ${name}: it already exists and is not a leftover of a stopped run (its run may still be running elsewhere); if no run uses it, drop it and run again`);
  }
  const rights = await c.query('select rolcreatedb or rolsuper as can from pg_roles where rolname = current_user').then((r) => r.rows[0]?.can as boolean | undefined, () => undefined);
  if (rights === false) return new Error(`cannot create the database ${name} as ${who}: the role needs CREATEDB (ALTER ROLE … CREATEDB) (${e.message})`);
  return new Error(`cannot create the database ${name} as ${who}: ${e.message}`);
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
