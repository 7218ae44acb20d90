// `odooops server --demo`: a project to try OdooOps on before pointing it at a real Odoo. Its three
// environments are small Odoo-shaped databases (the tables a health probe reads, not a full Odoo)
// created in the embedded cluster, reached with the cluster's own password file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { homeFiles } from './paths.ts';

const ENVIRONMENTS = [
  { name: 'production', stage: 'production', branch: 'main', db: 'odoo_demo' },
  { name: 'staging', stage: 'staging', branch: 'staging', db: 'odoo_demo_staging' },
  { name: 'dev-feature', stage: 'development', branch: 'feature/invoice-layout', db: 'odoo_demo_dev' },
] as const;

const MODULES = ['base', 'web', 'mail', 'contacts', 'account', 'sale_management', 'stock', 'crm'];

export async function seedDemo(opts: { pool: pg.Pool; databaseUrl: string; userId: string; home: string; log: (m: string) => void }) {
  const { pool, databaseUrl, userId, home, log } = opts;
  const exists = await pool.query(`select 1 from ops.projects where slug = 'demo'`);
  if (exists.rowCount) return;
  const url = new URL(databaseUrl);
  // The demo environments reach the embedded cluster with its password, kept where file: references may point.
  const secrets = homeFiles(home).secrets;
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  const passwordFile = join(secrets, 'demo-postgres-password');
  writeFileSync(passwordFile, decodeURIComponent(url.password), { mode: 0o600 });
  for (const env of ENVIRONMENTS) {
    const found = await pool.query('select 1 from pg_database where datname = $1', [env.db]);
    if (!found.rowCount) await pool.query(`create database ${pg.escapeIdentifier(env.db)}`);
    url.pathname = `/${env.db}`;
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    try {
      await db.query(`
        create table if not exists ir_module_module (id serial primary key, name varchar not null unique, state varchar, latest_version varchar);
        create table if not exists ir_config_parameter (id serial primary key, key varchar not null unique, value text);`);
      await db.query(
        `insert into ir_module_module (name, state, latest_version)
         select m, 'installed', '17.0.1.0' from unnest($1::text[]) m on conflict (name) do nothing`,
        [MODULES],
      );
      await db.query(
        `insert into ir_config_parameter (key, value) values ('database.is_neutralized', $1) on conflict (key) do nothing`,
        [env.stage === 'production' ? 'false' : 'true'],
      );
    } finally {
      await db.end();
    }
  }
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query(
      `insert into ops.projects (slug, name, created_by) values ('demo', 'Demo (Odoo-shaped sample databases)', $1) returning id`,
      [userId],
    );
    for (const env of ENVIRONMENTS) {
      await client.query(
        `insert into ops.environments (project_id, name, stage, branch, url, db_host, db_port, db_name, db_user, db_password_ref)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [rows[0].id, env.name, env.stage, env.branch, `http://localhost:8069/web?db=${env.db}`, url.hostname, Number(url.port), env.db,
          decodeURIComponent(url.username), `file:${passwordFile}`],
      );
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
  log('created the demo project: environments production, staging and dev-feature');
}
