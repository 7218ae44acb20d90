// PostgreSQL's autovacuum on a database being switched (server/odoo/switch.ts). A freshly restored or
// masked copy, and an environment's database a clone just replaced, are full of rows autovacuum has not
// analyzed yet, so an autovacuum worker is often connected to exactly the database a switch renames or
// drops. That worker runs as no role: pg_terminate_backend refuses it to every role but a superuser
// ("must be a superuser to terminate superuser process"), and it is not ours to end: ALTER DATABASE
// RENAME and DROP DATABASE stop autovacuum workers themselves. Here the switch runs as an environment's
// role (CREATEDB, no superuser, as the demo's and a real deployment's are) while an autovacuum worker is
// held on the database: a table autovacuum must vacuum, at a cost limit that makes it sleep after every
// page, and autovacuum_naptime 1 s so it comes at once.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { databaseExists, dropDatabase, sideName, switchOver } from '../server/odoo/switch.ts';
import { labelOf, makeLabelledDb, startDebianPostgres, type DebianPostgres } from './helpers/debian-postgres.ts';

const ROLE = 'odooops_env';
const PASSWORD = 'env-role-password';
const RUN = 77;

let srv: DebianPostgres;
let su: pg.Client;
let env: pg.Client;

before(async () => {
  srv = await startDebianPostgres();
  su = await srv.client();
  await su.query(`alter system set autovacuum_naptime = '1s'`);
  await su.query('select pg_reload_conf()');
  await su.query(`create role ${ROLE} login createdb password '${PASSWORD}'`);
  env = new pg.Client({ host: srv.host, port: srv.port, user: ROLE, password: PASSWORD, database: 'postgres' });
  await env.connect();
});
// Autovacuum has 3 workers: one left vacuuming a test's database would keep the next test waiting.
afterEach(async () => {
  const { rows } = await su.query(`select datname from pg_database where datname like 'av\\_%'`);
  for (const { datname } of rows) await su.query(`drop database ${pg.escapeIdentifier(datname)} with (force)`);
});
after(async () => {
  await env?.end();
  await su?.end();
  await srv?.stop();
});

/** A database of the environment's role whose table `who` says what it is. */
const makeDb = async (name: string, who: string) => makeLabelledDb(env, async (db) => {
  const d = new pg.Client({ host: srv.host, port: srv.port, user: ROLE, password: PASSWORD, database: db });
  await d.connect();
  return d;
}, name, who);
const whoIs = (db: string) => labelOf(srv, db);

const autovacuumOn = async (db: string) =>
  (await su.query(`select pid from pg_stat_activity where backend_type = 'autovacuum worker' and datname = $1`, [db])).rowCount! > 0;

/**
 * Gets an autovacuum worker onto `db` and keeps it there: dead rows in a table whose autovacuum sleeps
 * 100 ms after each page (cost limit 1), some 400 pages, so a minute of vacuuming unless it is stopped.
 * Waits until the worker is connected (PostgreSQL's own autovacuum, nothing simulated).
 */
async function holdAutovacuum(db: string) {
  const d = await srv.client(db);
  try {
    await d.query(`create table churn (id int) with (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
      autovacuum_analyze_threshold = 0, autovacuum_analyze_scale_factor = 0, autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1)`);
    await d.query('insert into churn select generate_series(1, 100000)');
    await d.query('delete from churn');
  } finally {
    await d.end();
  }
  const until = Date.now() + 60_000;
  while (!(await autovacuumOn(db))) {
    if (Date.now() > until) throw new Error(`no autovacuum worker came to ${db} within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the role cannot end an autovacuum worker itself (what made switches fail), and it is not a session the switch reports', async () => {
  const db = 'av_probe';
  await makeDb(db, 'probe');
  await holdAutovacuum(db);
  const workers = (await su.query(`select pid from pg_stat_activity where backend_type = 'autovacuum worker' and datname = $1`, [db])).rows.map((r) => r.pid);
  // What the role sees of it (backend_type is hidden from it): a session on the database, of no role.
  const { rows } = await env.query('select pid, usesysid from pg_stat_activity where datname = $1 and pid = any($2)', [db, workers]);
  assert.ok(rows.length >= 1, 'the worker is visible to the role');
  assert.ok(rows.every((r) => r.usesysid === null), 'an autovacuum worker runs as no role');
  await assert.rejects(env.query('select pg_terminate_backend($1)', [rows[0].pid]), /must be a superuser to terminate superuser process/);
  await dropDatabase(env, db);
  assert.equal(await databaseExists(env, db), false);
});

test('switching over while autovacuum works on the environment\'s database: switched, the previous one dropped', async () => {
  const db = 'av_env';
  const newDb = sideName(db, 'new', RUN);
  await makeDb(db, 'prod');
  await makeDb(newDb, 'new');
  await holdAutovacuum(db);
  const said: string[] = [];
  await switchOver(env, { db, newDb, filestore: null, newFilestore: null, runId: RUN }, async (l) => void said.push(l));
  assert.equal(await whoIs(db), 'new');
  assert.equal(await databaseExists(env, newDb), false);
  assert.equal(await databaseExists(env, sideName(db, 'old', RUN)), false, 'the previous database, autovacuumed again once renamed, is dropped');
  assert.ok(!said.some((l) => /ended \d+ open session/.test(l)), `autovacuum is not an Odoo session: ${said.join(' | ')}`);
});

test('switching in a new copy autovacuum works on (a first clone: the environment has no database yet)', async () => {
  const db = 'av_first';
  const newDb = sideName(db, 'new', RUN);
  await makeDb(newDb, 'new');
  await holdAutovacuum(newDb);
  await switchOver(env, { db, newDb, filestore: null, newFilestore: null, runId: RUN }, async () => {});
  assert.equal(await whoIs(db), 'new');
  assert.equal(await databaseExists(env, newDb), false);
});

test('a failed restore\'s copy is dropped while autovacuum works on it (no side copy left for the next run)', async () => {
  const newDb = sideName('av_drop', 'new', RUN);
  await makeDb(newDb, 'new');
  await holdAutovacuum(newDb);
  await dropDatabase(env, newDb);
  assert.equal(await databaseExists(env, newDb), false);
});

test('a session of a role the switch cannot end still stops it with nothing changed', async () => {
  const db = 'av_su';
  const newDb = sideName(db, 'new', RUN);
  await makeDb(db, 'prod');
  await makeDb(newDb, 'new');
  const open = await srv.client(db);
  try {
    await assert.rejects(switchOver(env, { db, newDb, filestore: null, newFilestore: null, runId: RUN }, async () => {}),
      new RegExp(`switching ${db} over failed, the environment is as it was: ${db} is in use by sessions this role cannot end .*must be a superuser`));
    assert.equal((await open.query('select 1 as x')).rows[0].x, 1, 'the superuser session is untouched');
  } finally {
    await open.end();
  }
  assert.equal(await whoIs(db), 'prod');
  assert.equal(await whoIs(newDb), 'new');
});
