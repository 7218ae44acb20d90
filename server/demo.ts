// `odooops server --demo`: a project to try OdooOps on before pointing it at a real Odoo. Production is
// a generated Odoo-17-shaped database with fake customers and a filestore, in the control plane's own
// PostgreSQL; staging is cloned from it (neutralized, masked) as soon as the worker runs, and dev-feature
// waits for a clone of its own.
//
// The demo's infrastructure is built in, never in the operator's registry: the database server
// "demo-postgres" (the control plane's cluster, reached as an unprivileged role of its own that can
// create databases, never as the cluster's superuser; odoo_demo* databases only) and the filestore root
// "demo-filestore", both bound to the project "demo" alone. They follow the cluster across restarts.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { asUser, SERVICE_CLAIMS } from './db/session.ts';
import type { Builtins } from './infra/registry.ts';
import { giveToRunUser, runUser } from './infra/run-user.ts';
import { generateOdooDatabase } from './odoo/generate.ts';
import { homeFiles, sharedDir } from './paths.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DEMO_SLUG = 'demo';
export const DEMO_SERVER = 'demo-postgres';
export const DEMO_FILESTORE = 'demo-filestore';
const DEMO_ROLE = 'odooops_demo';

const ENVIRONMENTS = [
  { name: 'production', stage: 'production', branch: 'main', db: 'odoo_demo' },
  { name: 'staging', stage: 'staging', branch: 'staging', db: 'odoo_demo_staging' },
  { name: 'dev-feature', stage: 'development', branch: 'feature/invoice-layout', db: 'odoo_demo_dev' },
] as const;

const withDb = (url: string, db: string) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/**
 * The demo's built-in database server and filestore root. Makes the demo's role (and hands it databases
 * an older demo made as the superuser), and the filestore root, owned by the run user.
 */
export async function demoInfrastructure(opts: { databaseUrl: string; home: string; log: (m: string) => void }): Promise<Builtins> {
  const { databaseUrl, home, log } = opts;
  const files = homeFiles(home);
  if (!existsSync(files.demoPgPassword)) writeFileSync(files.demoPgPassword, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(files.demoPgPassword, 'utf8').trim();
  const admin = await connect(withDb(databaseUrl, 'postgres'));
  try {
    const exists = (await admin.query('select 1 from pg_roles where rolname = $1', [DEMO_ROLE])).rowCount;
    await admin.query(`${exists ? 'alter' : 'create'} role ${pg.escapeIdentifier(DEMO_ROLE)} login createdb nosuperuser password ${pg.escapeLiteral(password)}`);
    // Databases an older demo made as the superuser: given to the demo's role, tables included.
    const { rows } = await admin.query(
      `select d.datname from pg_database d join pg_roles r on r.oid = d.datdba where d.datname like 'odoo\\_demo%' and r.rolname <> $1`, [DEMO_ROLE]);
    for (const { datname } of rows as { datname: string }[]) {
      await admin.query(`alter database ${pg.escapeIdentifier(datname)} owner to ${pg.escapeIdentifier(DEMO_ROLE)}`);
      const db = await connect(withDb(databaseUrl, datname));
      try {
        await db.query(`do $$ declare t record; begin
          for t in select schemaname, tablename from pg_tables where schemaname = 'public' loop
            execute format('alter table %I.%I owner to ${DEMO_ROLE}', t.schemaname, t.tablename);
          end loop; end $$`);
      } finally {
        await db.end();
      }
      log(`demo: ${datname} now belongs to the demo's own role ${DEMO_ROLE}`);
    }
  } finally {
    await admin.end();
  }

  const root = join(sharedDir(home), 'filestore');
  // A root user's older demo kept its filestores in ~/.odooops, which the run user cannot enter.
  const old = join(home, 'filestore');
  if (old !== root && existsSync(old) && !existsSync(root)) {
    mkdirSync(sharedDir(home), { recursive: true, mode: 0o755 });
    renameSync(old, root);
  }
  mkdirSync(root, { recursive: true, mode: 0o750 });
  await giveTree(root);
  const u = new URL(databaseUrl);
  return {
    databaseServers: {
      [DEMO_SERVER]: {
        host: u.hostname, port: Number(u.port), user: DEMO_ROLE, password, databases: ['odoo_demo*'], projects: [DEMO_SLUG],
        description: "the demo's PostgreSQL (the control plane's own cluster, as the demo's role)",
      },
    },
    filestoreRoots: { [DEMO_FILESTORE]: { path: root, projects: [DEMO_SLUG], description: "the demo's filestores" } },
  };
}

/** The run user owns the demo's filestores (it renames and removes them in restores and clones). */
async function giveTree(dir: string): Promise<void> {
  const u = runUser();
  if (!u.switches || statSync(dir).uid === u.uid) return;
  await run('chown', ['-R', '--no-dereference', `${u.uid}:${u.gid}`, dir]);
  giveToRunUser(dir);
}

/** Creates the demo's production database (an Odoo-17-shaped one with fake customers) if missing. */
async function seedProductionDb(databaseUrl: string, password: string, db: string, filestore: string, log: (m: string) => void) {
  const admin = await connect(withDb(databaseUrl, 'postgres'));
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [db]);
    if (found.rowCount) {
      // An older demo database (not generated) is replaced; a generated one is kept.
      const c = await connect(withDb(databaseUrl, db));
      const generated = (await c.query(`select to_regclass('public.res_partner') is not null as ok`)).rows[0].ok as boolean;
      await c.end();
      if (generated) return;
      await admin.query(`drop database ${pg.escapeIdentifier(db)} with (force)`);
    }
    await admin.query(`create database ${pg.escapeIdentifier(db)} owner ${pg.escapeIdentifier(DEMO_ROLE)}`);
  } finally {
    await admin.end();
  }
  const u = new URL(withDb(databaseUrl, db));
  u.username = DEMO_ROLE;
  u.password = encodeURIComponent(password);
  const c = await connect(u.toString());
  try {
    // ODOOOPS_DEMO_PARTNERS: a bigger demo (the extension's end-to-end test wants clones that take a while).
    const partners = Math.min(Math.max(Number(process.env.ODOOOPS_DEMO_PARTNERS) || 500, 10), 1_000_000);
    const made = await generateOdooDatabase(c, filestore, { partners });
    log(`created the demo production database ${db}: ${made.partners} customers, ${made.messages} messages, ${made.attachments} attachments`);
  } finally {
    await c.end();
  }
  await giveTree(filestore);
}

/** Seeds the demo project; returns true when it created it now. */
export async function seedDemo(opts: { pool: pg.Pool; databaseUrl: string; userId: string; builtins: Builtins; log: (m: string) => void }): Promise<boolean> {
  const { pool, databaseUrl, userId, builtins, log } = opts;
  const exists = await pool.query('select 1 from ops.projects where slug = $1', [DEMO_SLUG]);
  if (exists.rowCount) return false;
  const server = builtins.databaseServers![DEMO_SERVER]!;
  const root = builtins.filestoreRoots![DEMO_FILESTORE]!.path;
  await seedProductionDb(databaseUrl, server.password!, ENVIRONMENTS[0].db, join(root, ENVIRONMENTS[0].db), log);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query(
      `insert into ops.projects (slug, name, created_by) values ($1, 'Demo (Odoo-shaped sample databases)', $2) returning id`,
      [DEMO_SLUG, userId],
    );
    for (const env of ENVIRONMENTS) {
      await client.query(
        `insert into ops.environments (project_id, name, stage, branch, url, db_server, db_name, filestore_root)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [rows[0].id, env.name, env.stage, env.branch, `http://localhost:8069/web?db=${env.db}`, DEMO_SERVER, env.db, DEMO_FILESTORE],
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
       where p.slug = $1 and e.name = 'staging'`,
      [DEMO_SLUG],
    );
    return Number(rows[0].run_id);
  });
}
