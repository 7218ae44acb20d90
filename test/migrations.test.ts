// The migration runner and the Supabase shims, on a real embedded PostgreSQL.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, appendFileSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded, type EmbeddedCluster } from '../server/db/embedded.ts';
import { MIGRATIONS_DIR, MigrationError, PUSHED_NOTE, SHIMS_FILE, migrate, readMigrations } from '../server/db/migrate.ts';
import { startServer } from '../server/app.ts';
import { tempHome } from './helpers/control-plane.ts';

let cluster: EmbeddedCluster;
let home: string;
let n = 0;
const cleanup: string[] = [];

/** A fresh database in the cluster and a client connected to it. */
async function freshDb(): Promise<{ client: pg.Client; url: string }> {
  const name = `m${++n}`;
  const admin = new pg.Client(cluster.url);
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = cluster.url.replace(/\/postgres$/, `/${name}`);
  const client = new pg.Client(url);
  await client.connect();
  return { client, url };
}

function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'odooops-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  cleanup.push(dir);
  return dir;
}

before(async () => {
  home = tempHome();
  cluster = await startEmbedded({ home, fast: true });
});
after(async () => {
  await cluster?.stop();
  for (const d of [home, ...cleanup]) rmSync(d, { recursive: true, force: true });
});

test('applies every migration once, records it, and applies nothing the second time', async () => {
  const { client } = await freshDb();
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
  const first = await migrate(client);
  assert.deepEqual(first.applied, files);
  const second = await migrate(client);
  assert.deepEqual(second, { applied: [], alreadyApplied: files.length, fromSupabaseHistory: [] });
  const { rows } = await client.query('select name from odooops_migrations.applied order by name');
  assert.deepEqual(rows.map((r) => r.name), files);
  // Every ops table has row level security on.
  const rls = await client.query(`select relname from pg_class c join pg_namespace s on s.oid = c.relnamespace
    where s.nspname = 'ops' and c.relkind = 'r' and not c.relrowsecurity`);
  assert.deepEqual(rls.rows, []);
  // Without the Supabase CLI's history table, the runner keeps its own history only.
  assert.equal((await client.query(`select to_regclass('supabase_migrations.schema_migrations') as t`)).rows[0].t, null);
  await client.end();
});

test('the shims give auth.uid() and auth.jwt() from request.jwt.claims, and keep what exists', async () => {
  const { client } = await freshDb();
  // As on Supabase, auth.uid() already exists here with its own body: the shims must not replace it.
  await client.query(`create schema auth; create function auth.uid() returns uuid language sql stable as
    $$ select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid /* supabase's own */ $$`);
  const before = (await client.query(`select prosrc from pg_proc where oid = 'auth.uid()'::regprocedure`)).rows[0].prosrc;
  await migrate(client);
  const afterSrc = (await client.query(`select prosrc from pg_proc where oid = 'auth.uid()'::regprocedure`)).rows[0].prosrc;
  assert.equal(afterSrc, before);
  await client.query('begin');
  await client.query(`select set_config('request.jwt.claims', '{"sub":"7d4f0a56-3c1e-4b7a-9a51-0d7e2c9b8f10","role":"authenticated","email":"a@example.invalid"}', true)`);
  const { rows } = await client.query(`select auth.uid()::text uid, auth.jwt() ->> 'email' email, auth.role() role`);
  assert.deepEqual(rows[0], { uid: '7d4f0a56-3c1e-4b7a-9a51-0d7e2c9b8f10', email: 'a@example.invalid', role: 'authenticated' });
  await client.query('commit');
  // Outside the transaction the setting reads '' — the shims treat that as no user rather than failing.
  assert.equal((await client.query('select auth.uid() uid')).rows[0].uid, null);
  const roles = await client.query(`select rolname, rolbypassrls from pg_roles where rolname in ('anon', 'authenticated', 'service_role') order by 1`);
  assert.deepEqual(roles.rows, [
    { rolname: 'anon', rolbypassrls: false }, { rolname: 'authenticated', rolbypassrls: false }, { rolname: 'service_role', rolbypassrls: true },
  ]);
  // realtime.send keeps a broadcast only while a gateway watches its topic, and never fails its caller.
  await client.query(`select realtime.send('{"a":1}'::jsonb, 'status', 'run:1', true)`);
  assert.equal((await client.query(`select count(*)::int n from realtime.messages where topic = 'run:1'`)).rows[0].n, 0);
  await client.query(`insert into realtime.odooops_gateway_topics (topic, gateway) values ('run:1', 'g1')`);
  await client.query(`select realtime.send('{"a":2}'::jsonb, 'status', 'run:1', true)`);
  await client.query(`select realtime.send('{"a":3}'::jsonb, 'status', 'run:2', true)`);
  const stored = await client.query(`select topic, payload from realtime.messages`);
  assert.deepEqual(stored.rows, [{ topic: 'run:1', payload: { a: 2 } }]);
  await client.end();
});

test('refuses to start when an applied migration was edited', async () => {
  const dir = copyOfMigrations();
  const { client, url } = await freshDb();
  await migrate(client, dir);
  const file = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()[0]!;
  appendFileSync(join(dir, file), '\n-- a harmless-looking edit\n');
  await assert.rejects(migrate(client, dir), (err: Error) => {
    assert.ok(err instanceof MigrationError);
    assert.match(err.message, new RegExp(`migration ${file} was edited after it was applied.*new migration`));
    return true;
  });
  await client.end();
  // The server itself refuses to start on such a database (it uses the real migrations dir, which
  // matches; so edit what the database recorded instead).
  const c2 = new pg.Client(url);
  await c2.connect();
  await c2.query(`update odooops_migrations.applied set sha256 = repeat('0', 64) where name = $1`, [file]);
  await c2.end();
  const serverHome = tempHome();
  cleanup.push(serverHome);
  await assert.rejects(startServer({ home: serverHome, databaseUrl: url, log: () => {} }), /was edited after it was applied/);
});

test('a failing migration is rolled back whole and not recorded', async () => {
  const dir = copyOfMigrations();
  const { client } = await freshDb();
  await migrate(client, dir);
  writeFileSync(join(dir, '29991231000000_broken.sql'), 'create table ops.half_done (id int);\nselect 1 / 0;\n');
  await assert.rejects(migrate(client, dir), /29991231000000_broken\.sql failed and was rolled back: division by zero/);
  assert.equal((await client.query(`select to_regclass('ops.half_done') t`)).rows[0].t, null);
  assert.equal((await client.query(`select count(*)::int n from odooops_migrations.applied where name like '2999%'`)).rows[0].n, 0);
  writeFileSync(join(dir, '29991231000000_broken.sql'), 'create table ops.half_done (id int);\n');
  assert.deepEqual((await migrate(client, dir)).applied, ['29991231000000_broken.sql']);
  await client.end();
});

test('badly named files are refused', async () => {
  const dir = copyOfMigrations();
  writeFileSync(join(dir, 'add_stuff.sql'), 'select 1;');
  const { client } = await freshDb();
  await assert.rejects(migrate(client, dir), /add_stuff\.sql is not named <YYYYMMDDHHMMSS>_<name>\.sql/);
  await client.end();
});

test('servers starting together apply each migration once', async () => {
  const { client, url } = await freshDb();
  const others = await Promise.all([1, 2, 3].map(async () => {
    const c = new pg.Client(url);
    await c.connect();
    return c;
  }));
  const results = await Promise.all([client, ...others].map((c) => migrate(c)));
  const applied = results.flatMap((r) => r.applied);
  assert.equal(applied.length, new Set(applied).size);
  assert.equal(applied.length, readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length);
  await Promise.all([client, ...others].map((c) => c.end()));
});

test('upgrading from before the registry: environments keep their settings as a registry to adopt, already named', async () => {
  const { client, url } = await freshDb();
  // The database as an older OdooOps left it: migrations up to the registry, environments with their own settings.
  const older = mkdtempSync(join(tmpdir(), 'odooops-migrations-'));
  cleanup.push(older);
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '20261130000100')) cpSync(join(MIGRATIONS_DIR, f), join(older, f));
  await migrate(client, older);
  const project = (await client.query(`insert into ops.projects (slug, name) values ('acme', 'Acme') returning id`)).rows[0].id;
  const env = (name: string, stage: string, db: string, cols: Record<string, unknown>) => client.query(
    `insert into ops.environments (project_id, name, stage, db_name, ${Object.keys(cols).join(', ')})
     values ($1, $2, $3, $4, ${Object.keys(cols).map((_, i) => `$${i + 5}`).join(', ')})`,
    [project, name, stage, db, ...Object.values(cols)]);
  await env('production', 'production', 'acme_prod', {
    db_host: '10.0.0.5', db_port: 5432, db_user: 'odoo', db_password_ref: 'env:ODOOOPS_DB_ACME', filestore_path: '/var/lib/odoo/filestore/acme_prod',
    deploy_target: JSON.stringify({ kind: 'local', odooBin: '/opt/odoo/odoo-bin', httpPort: 8069, healthTimeoutSeconds: 30 }),
  });
  await env('staging', 'staging', 'acme_staging', { db_host: '10.0.0.5', filestore_path: '/srv/files/staging-files' });
  await env('dev', 'development', 'acme_dev', { db_user: 'odoo' });

  await migrate(client);
  const { rows } = await client.query(`select name, db_server, db_name, filestore_root, runtime, http_port from ops.environments order by name`);
  assert.deepEqual(rows, [
    { name: 'dev', db_server: 'acme-dev', db_name: 'acme_dev', filestore_root: null, runtime: null, http_port: null },
    { name: 'production', db_server: 'acme-production', db_name: 'acme_prod', filestore_root: 'acme-production-files', runtime: 'acme-production-odoo', http_port: 8069 },
    { name: 'staging', db_server: 'acme-staging', db_name: 'acme_staging', filestore_root: 'acme-staging-files', runtime: null, http_port: null },
  ]);
  // Nobody but the server reads what was saved (it holds password references and paths).
  const probe = await client.query(`select has_table_privilege('authenticated', 'ops.environment_settings_before_registry', 'select') as a,
    has_table_privilege('service_role', 'ops.environment_settings_before_registry', 'select') as s`);
  assert.deepEqual(probe.rows[0], { a: false, s: false });

  const { Infrastructure } = await import('../server/infra/registry.ts');
  const { writeUpgradeSuggestion } = await import('../server/infra/upgrade.ts');
  const pool = new pg.Pool({ connectionString: url });
  const file = join(home, 'infrastructure.from-upgrade.yaml');
  try {
    const logged: string[] = [];
    assert.equal(await writeUpgradeSuggestion(pool, Infrastructure.load(null), file, (m) => logged.push(m)), file);
    assert.match(logged[0]!, /3 environment\(s\) kept their settings .* review .*infrastructure\.from-upgrade\.yaml/);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /NOTE: acme\/staging's filestore was \/srv\/files\/staging-files: .* rename it to \/srv\/files\/acme_staging/);
    // Adopted as it is, the suggestion resolves what the environments said before, for their project only.
    const adopted = Infrastructure.load(file);
    process.env.ODOOOPS_DB_ACME = 'pw-long-enough-1';
    try {
      assert.deepEqual(adopted.database('acme-production', 'acme_prod', 'acme'), { server: 'acme-production', host: '10.0.0.5', port: 5432, user: 'odoo', password: 'pw-long-enough-1', database: 'acme_prod' });
    } finally {
      delete process.env.ODOOOPS_DB_ACME;
    }
    assert.throws(() => adopted.database('acme-production', 'acme_prod', 'other'), /not bound to project other/);
    assert.throws(() => adopted.database('acme-production', 'acme_staging', 'acme'), /is not one project acme may use/, 'each server entry is scoped to its database');
    assert.deepEqual(adopted.runtime('acme-production-odoo', 'acme'), { kind: 'local', odooBin: '/opt/odoo/odoo-bin', httpPorts: [8069, 8069], healthTimeoutSeconds: 30, addonsPath: [], odooArgs: [], projects: ['acme'], shells: false });
    assert.equal(adopted.entries().find((e) => e.name === 'acme-staging-files')?.kind, 'filestore_root');
    // Once the registry has them, there is nothing left to suggest.
    assert.equal(await writeUpgradeSuggestion(pool, adopted, file, () => {}), null);
  } finally {
    await pool.end();
    await client.end();
  }
});

// supabase_migrations.schema_migrations exactly as the Supabase CLI makes it (supabase/cli pkg/migration/history.go).
// The shims first: on Supabase, where `supabase db push` runs, every object they make exists already.
const CLI_HISTORY_TABLE = `
  ${readFileSync(SHIMS_FILE, 'utf8')};
  create schema if not exists supabase_migrations;
  create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
  alter table supabase_migrations.schema_migrations add column if not exists statements text[];
  alter table supabase_migrations.schema_migrations add column if not exists name text`;

/**
 * STAND-IN for `supabase db push` (the CLI's npm package downloads its binary from GitHub, which this
 * machine cannot reach): applies a file and records it the way the CLI does, in one transaction.
 * The CLI splits the file into statements; here the file is one.
 */
async function supabaseDbPush(client: pg.Client, file: string): Promise<void> {
  const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8');
  const [, version, name] = /^([0-9]+)_(.*)\.sql$/.exec(file)!;
  await client.query('begin');
  await client.query(sql);
  await client.query('insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)', [version, name, [sql]]);
  await client.query('commit');
}

const history = async (c: pg.Client) =>
  (await c.query('select version, name, statements from supabase_migrations.schema_migrations order by version')).rows;

test('where the Supabase CLI\'s history exists, the runner records there what it applies, so supabase db push finds nothing pending', async () => {
  const { client } = await freshDb();
  await client.query(CLI_HISTORY_TABLE);
  const files = readMigrations();
  assert.deepEqual((await migrate(client)).applied, files.map((f) => f.name));
  assert.deepEqual(await history(client), files.map((f) => ({
    version: f.name.slice(0, 14), name: f.name.slice(15, -'.sql'.length), statements: [f.sql],
  })));
  assert.deepEqual((await migrate(client)).applied, []);
  await client.end();
});

test('migrations supabase db push applied count as applied: recorded with their sha256 and a note, never run again', async () => {
  const { client } = await freshDb();
  await client.query(CLI_HISTORY_TABLE);
  // The project's own app migrations share the history: the runner leaves them alone.
  await client.query(`insert into supabase_migrations.schema_migrations (version, name, statements) values ('20200101000000', 'app_tables', '{"create table public.app (id int)"}')`);
  const files = readMigrations();
  const pushed = files.slice(0, 4);
  for (const f of pushed) await supabaseDbPush(client, f.name);
  const logged: string[] = [];
  // Running a pushed file again would fail (its tables exist): success means they were not run.
  const result = await migrate(client, undefined, (m) => logged.push(m));
  assert.deepEqual(result.fromSupabaseHistory, pushed.map((f) => f.name));
  assert.deepEqual(result.applied, files.slice(4).map((f) => f.name));
  assert.ok(logged.includes(`migration ${pushed[0]!.name} was applied by supabase db push: recorded as applied`), logged.join('\n'));
  const { rows } = await client.query('select name, sha256, note from odooops_migrations.applied order by name');
  assert.deepEqual(rows, files.map((f, i) => ({ name: f.name, sha256: f.sha256, note: i < 4 ? PUSHED_NOTE : null })));
  assert.deepEqual((await history(client)).map((r) => r.version), ['20200101000000', ...files.map((f) => f.name.slice(0, 14))]);
  assert.deepEqual(await migrate(client), { applied: [], alreadyApplied: files.length, fromSupabaseHistory: [] });
  await client.end();
});

test('a version the Supabase history gives another migration, or a history the API roles may write, stops the runner', async () => {
  const files = readMigrations();
  {
    const { client } = await freshDb();
    await client.query(CLI_HISTORY_TABLE);
    await client.query(`insert into supabase_migrations.schema_migrations (version, name) values ($1, 'someone_elses')`, [files[0]!.name.slice(0, 14)]);
    await assert.rejects(migrate(client), (err: Error) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, new RegExp(`says version ${files[0]!.name.slice(0, 14)} is "someone_elses", but OdooOps's migration .* is ${files[0]!.name}: two migrations share a version`));
      return true;
    });
    assert.equal((await client.query(`select to_regnamespace('ops') as s`)).rows[0].s, null, 'nothing applied, nothing adopted');
    await client.end();
  }
  {
    // Anyone signed in could mark the migration that adds a policy as applied, so that it never runs.
    const { client } = await freshDb();
    await client.query(CLI_HISTORY_TABLE);
    await supabaseDbPush(client, files[0]!.name);
    await client.query('grant usage on schema supabase_migrations to authenticated; grant insert on supabase_migrations.schema_migrations to authenticated');
    await assert.rejects(migrate(client), /says 20\d{12}_\w+\.sql was applied, but the API roles \(anon, authenticated\) may write that table.*revoke insert, update/);
    assert.equal((await client.query('select count(*)::int as n from odooops_migrations.applied')).rows[0].n, 0);
    await client.end();
  }
});
