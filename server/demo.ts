// `odooops server --demo`: a project to try OdooOps on before pointing it at a real Odoo. Production is
// a generated Odoo-17-shaped database with fake customers and a filestore, in the embedded cluster
// (reached with the cluster's own password file); staging is cloned from it (neutralized, masked) as
// soon as the worker runs, and dev-feature waits for a clone of its own.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { asUser, SERVICE_CLAIMS } from './db/session.ts';
import { generateOdooDatabase } from './odoo/generate.ts';
import { homeFiles } from './paths.ts';

const ENVIRONMENTS = [
  { name: 'production', stage: 'production', branch: 'main', db: 'odoo_demo' },
  { name: 'staging', stage: 'staging', branch: 'staging', db: 'odoo_demo_staging' },
  { name: 'dev-feature', stage: 'development', branch: 'feature/invoice-layout', db: 'odoo_demo_dev' },
] as const;

/** Creates the demo's production database (an Odoo-17-shaped one with fake customers) if missing. */
async function seedProductionDb(url: URL, db: string, filestore: string, log: (m: string) => void) {
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [db]);
    if (found.rowCount) {
      // An older demo database (not generated) is replaced; a generated one is kept.
      const u = new URL(url);
      u.pathname = `/${db}`;
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      const generated = (await c.query(`select to_regclass('public.res_partner') is not null as ok`)).rows[0].ok as boolean;
      await c.end();
      if (generated) return;
      await admin.query(`drop database ${pg.escapeIdentifier(db)} with (force)`);
    }
    await admin.query(`create database ${pg.escapeIdentifier(db)}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${db}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    // ODOOOPS_DEMO_PARTNERS: a bigger demo (the extension's end-to-end test wants clones that take a while).
    const partners = Math.min(Math.max(Number(process.env.ODOOOPS_DEMO_PARTNERS) || 500, 10), 1_000_000);
    const made = await generateOdooDatabase(c, filestore, { partners });
    log(`created the demo production database ${db}: ${made.partners} customers, ${made.messages} messages, ${made.attachments} attachments`);
  } finally {
    await c.end();
  }
}

/** Seeds the demo project; returns true when it created it now. */
export async function seedDemo(opts: { pool: pg.Pool; databaseUrl: string; userId: string; home: string; log: (m: string) => void }): Promise<boolean> {
  const { pool, databaseUrl, userId, home, log } = opts;
  const exists = await pool.query(`select 1 from ops.projects where slug = 'demo'`);
  if (exists.rowCount) return false;
  const url = new URL(databaseUrl);
  // The demo environments reach the embedded cluster with its password, kept where file: references may point.
  const secrets = homeFiles(home).secrets;
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  const passwordFile = join(secrets, 'demo-postgres-password');
  writeFileSync(passwordFile, decodeURIComponent(url.password), { mode: 0o600 });
  const filestore = (db: string) => join(homeFiles(home).filestore, db);
  url.pathname = '/postgres';
  await seedProductionDb(url, ENVIRONMENTS[0].db, filestore(ENVIRONMENTS[0].db), log);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query(
      `insert into ops.projects (slug, name, created_by) values ('demo', 'Demo (Odoo-shaped sample databases)', $1) returning id`,
      [userId],
    );
    for (const env of ENVIRONMENTS) {
      await client.query(
        `insert into ops.environments (project_id, name, stage, branch, url, db_host, db_port, db_name, db_user, db_password_ref, filestore_path)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [rows[0].id, env.name, env.stage, env.branch, `http://localhost:8069/web?db=${env.db}`, url.hostname, Number(url.port), env.db,
          decodeURIComponent(url.username), `file:${passwordFile}`, filestore(env.db)],
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
  return true;
}

/** The first clone of production into staging, as Odoo.sh makes a staging branch. */
export async function queueDemoClone(pool: pg.Pool): Promise<number> {
  return asUser(pool, SERVICE_CLAIMS, async (c) => {
    const { rows } = await c.query(
      `select q.run_id from ops.environments e join ops.projects p on p.id = e.project_id,
         lateral ops.queue_run(e.id, 'clone', '{}'::jsonb, 'demo-first-clone') q
       where p.slug = 'demo' and e.name = 'staging'`,
    );
    return Number(rows[0].run_id);
  });
}
