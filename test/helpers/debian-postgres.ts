// A throwaway Debian PostgreSQL 15 cluster for Odoo-side databases (the control plane uses the
// embedded one). .ci/run installs postgresql-15; see ../shared/notes/postgres.md.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, chownSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import pg from 'pg';
import { tempHome } from './control-plane.ts';
import { freePort } from '../../server/db/embedded.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface DebianPostgres {
  host: string;
  port: number;
  /** Superuser connection to a database of this cluster. */
  client(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
}

export async function startDebianPostgres(): Promise<DebianPostgres> {
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
  await as(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  await as(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-l', join(root, 'log'), '-o', `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  return {
    host: '127.0.0.1',
    port,
    async client(database = 'postgres') {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
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
