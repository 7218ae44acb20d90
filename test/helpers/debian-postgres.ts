// A throwaway Debian PostgreSQL 15 cluster for Odoo-side databases (the control plane uses the
// embedded one). .ci/run installs postgresql-15; see ../shared/notes/postgres.md.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, chownSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import pg from 'pg';
import { tempHome } from './control-plane.ts';
import { freePort } from '../../server/db/embedded.ts';
import { generateOdooDatabase, type GenerateOptions } from '../../server/odoo/generate.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface DebianPostgres {
  host: string;
  port: number;
  /** The bootstrap superuser's name (postgres unless asked otherwise). */
  superuser: string;
  /** Superuser connection to a database of this cluster. */
  client(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
}

/** superuser: the bootstrap superuser's name (hosted Supabase's is supabase_admin; its postgres is not one). */
export async function startDebianPostgres(opts: { superuser?: string } = {}): Promise<DebianPostgres> {
  const superuser = opts.superuser ?? 'postgres';
  if (!existsSync(join(BIN, 'initdb'))) {
    throw new Error(`Debian PostgreSQL 15 is not installed (${BIN}/initdb missing): apt-get install postgresql-15`);
  }
  const root = tempHome('odooops-odoo-pg-');
  const data = join(root, 'data');
  mkdirSync(data);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(data, uid, gid);
    chownSync(root, uid, gid);
  }
  const as = (cmd: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));
  await as(join(BIN, 'initdb'), ['-D', data, '-U', superuser, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  await as(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-l', join(root, 'log'), '-o', `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  return {
    host: '127.0.0.1',
    port,
    superuser,
    async client(database = 'postgres') {
      const c = new pg.Client({ host: '127.0.0.1', port, user: superuser, database });
      await c.connect();
      return c;
    },
    async stop() {
      await as(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-m', 'fast', 'stop']).catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A small database with the tables of an Odoo 17 install that OdooOps reads (not a full Odoo). */
export async function createOdooShapedDb(pgsrv: DebianPostgres, name: string, opts: { password?: string; user?: string } = {}) {
  const admin = await pgsrv.client();
  try {
    if (opts.user) await admin.query(`create role ${pg.escapeIdentifier(opts.user)} login password ${pg.escapeLiteral(opts.password ?? '')}`);
    await admin.query(`create database ${pg.escapeIdentifier(name)}${opts.user ? ` owner ${pg.escapeIdentifier(opts.user)}` : ''}`);
  } finally {
    await admin.end();
  }
  const db = await pgsrv.client(name);
  try {
    await db.query(`
      create table ir_module_module (id serial primary key, name varchar not null unique, state varchar, latest_version varchar);
      create table ir_config_parameter (id serial primary key, key varchar not null unique, value text);
      insert into ir_module_module (name, state, latest_version) values
        ('base', 'installed', '17.0.1.3'), ('web', 'installed', '17.0.1.0'), ('mail', 'installed', '17.0.1.15'),
        ('account', 'installed', '17.0.1.2'), ('crm', 'uninstalled', null);
      insert into ir_config_parameter (key, value) values ('database.uuid', gen_random_uuid()::text);`);
    if (opts.user) await db.query(`grant select on all tables in schema public to ${pg.escapeIdentifier(opts.user)}`);
  } finally {
    await db.end();
  }
}

/**
 * Makes the cluster ask every role but postgres for a password over TCP (as a real Odoo server does),
 * and waits until the reload took effect.
 */
export async function requirePasswordsOverTcp(srv: DebianPostgres): Promise<void> {
  const su = await srv.client();
  try {
    const hba = (await su.query('show hba_file')).rows[0].hba_file as string;
    const rules = ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256'];
    await su.query(`copy (select unnest(array[${rules.map((r) => pg.escapeLiteral(r)).join(', ')}])) to ${pg.escapeLiteral(hba)}`);
    await su.query('select pg_reload_conf()');
  } finally {
    await su.end();
  }
  const deadline = Date.now() + 10_000;
  for (;;) {
    const c = new pg.Client({ host: srv.host, port: srv.port, user: 'no_such_role_probe', password: 'x', database: 'postgres' });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
    } catch (err) {
      if (/password authentication failed/.test((err as Error).message)) return;
    }
    if (Date.now() > deadline) throw new Error('pg_hba.conf did not start requiring passwords');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A login role with CREATEDB, as Odoo's own database user has. */
export async function createOdooRole(srv: DebianPostgres, role: string, password: string): Promise<void> {
  const su = await srv.client();
  try {
    await su.query(`create role ${pg.escapeIdentifier(role)} login createdb password ${pg.escapeLiteral(password)}`);
  } finally {
    await su.end();
  }
}

/** Creates `name` owned by `role` and fills it with the generator, connected as that role (so it owns the tables). */
export async function createGeneratedOdooDb(srv: DebianPostgres, name: string, role: string, password: string, filestore: string, opts: GenerateOptions) {
  const su = await srv.client();
  try {
    await su.query(`create database ${pg.escapeIdentifier(name)} owner ${pg.escapeIdentifier(role)}`);
  } finally {
    await su.end();
  }
  const db = new pg.Client({ host: srv.host, port: srv.port, user: role, password, database: name });
  await db.connect();
  try {
    return await generateOdooDatabase(db, filestore, opts);
  } finally {
    await db.end();
  }
}

/** Every table's row count and content hash, to compare a database before and after. */
export async function fingerprintDb(srv: DebianPostgres, name: string): Promise<Record<string, string>> {
  const c = await srv.client(name);
  try {
    const { rows } = await c.query(`select tablename from pg_tables where schemaname = 'public' order by tablename`);
    const out: Record<string, string> = {};
    for (const { tablename } of rows) {
      const t = pg.escapeIdentifier(tablename);
      const r = await c.query(`select count(*)::int as n, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from ${t} x`);
      out[tablename] = `${r.rows[0].n}:${r.rows[0].h}`;
    }
    return out;
  } finally {
    await c.end();
  }
}

/** relative path → SHA-1 of every file under a directory. */
export async function fingerprintDir(dir: string): Promise<Record<string, string>> {
  const { readdir, readFile } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    out[full.slice(dir.length + 1)] = createHash('sha1').update(await readFile(full)).digest('hex');
  }
  return out;
}

/**
 * A database whose one-row table `who` says which copy it is (tests of switches check which copy ends
 * up under which name). `creator` creates it (its role owns it); `open` connects to it as that role.
 */
export async function makeLabelledDb(creator: pg.ClientBase, open: (db: string) => Promise<pg.Client>, name: string, label: string): Promise<void> {
  await creator.query(`create database ${pg.escapeIdentifier(name)}`);
  const d = await open(name);
  try {
    await d.query('create table who (v text)');
    await d.query('insert into who values ($1)', [label]);
  } finally {
    await d.end();
  }
}

/** The label makeLabelledDb gave a database. */
export async function labelOf(srv: DebianPostgres, db: string): Promise<string> {
  const d = await srv.client(db);
  try {
    return (await d.query('select v from who')).rows[0].v;
  } finally {
    await d.end();
  }
}
