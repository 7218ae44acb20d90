// kill -9 of a worker process in the middle of real work on a real Odoo database (17.0 and 19.0: test/crash-odoo-17.test.ts, crash-odoo-19.test.ts), then the retry:
// a clone (killed while it writes the masked copy out), a production restore with an approval (killed
// during pg_restore) and a backup (killed while its parts are .partial). The worker is a separate
// `odooops worker` process, as in production; the retry is the requeue after its lease expired, run by
// a second worker process. Afterwards nothing _odooops_* is in pg_database, no side directory, scratch
// directory or .partial file is left, and odoo-bin boots what the run produced and lets admin log in.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as C from '../../contract/index.ts';
import { addMember, eventually, type TestUser } from './control-plane.ts';
import { startOdooProject, type OdooProject } from './odoo-project.ts';
import { authenticate, installOdoo, serveOdoo, type OdooInstall } from './real-odoo.ts';

/** The kill -9 tests on a real Odoo `version` database (one test file per version calls this). */
export function crashOdooSuite(version: '17.0' | '19.0'): void {
  const CLI = join(import.meta.dirname, '..', '..', 'server', 'cli', 'main.ts');
  const n = version.slice(0, 2);
  const SLUG = `crashodoo${n}`;
  const PROD = `crash${n}_prod`;
  const STAGING = `crash${n}_staging`;
  const LEASE = 2;

  let p: OdooProject;
  let odoo: OdooInstall;
  let second: TestUser;
  const workers: ChildProcess[] = [];

  before(async () => {
    p = await startOdooProject({
      slug: SLUG,
      envs: [{ name: 'prod', stage: 'production', db: PROD }, { name: 'staging', stage: 'staging', db: STAGING }],
      generate: {},
      real: { [PROD]: { version, kind: 'plain' } },
      // Only the worker processes this test starts and kills run anything.
      server: { worker: false },
    });
    odoo = await installOdoo(version);
    // A worker announces the kinds it runs (runs of unknown kinds are refused): one starts and stops.
    const first = startWorker();
    await eventually('the worker\'s run kinds', async () => (await p.cp.pool.query(`select 1 from ops.run_kinds where kind = 'clone'`)).rowCount, 60_000);
    await stopWorker(first);
    second = await p.cp.user('second-admin@example.invalid');
    stagingId = (await p.cp.pool.query(`select id from ops.environments where name = 'staging'`)).rows[0].id;
    const { rows } = await p.cp.pool.query('select id from ops.projects where slug = $1', [SLUG]);
    await addMember(p.cp.pool, rows[0].id, second.id, 'admin');
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await p?.close();
  });

  const backupDir = () => join(p.cp.home, 'backups');

  /** An `odooops worker` process on the test's control plane, registry and backup store. */
  function startWorker(): ChildProcess & { output: () => string } {
    const child = spawn(process.execPath, [CLI, 'worker', '--home', p.cp.home, '--database-url', p.cp.server.databaseUrl,
      '--lease', String(LEASE), '--concurrency', '1', '--grace', '1'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
    child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
    workers.push(child);
    return Object.assign(child, { output: () => out });
  }

  async function kill9(child: ChildProcess): Promise<void> {
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    child.kill('SIGKILL');
    await gone;
  }

  async function stopWorker(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await gone;
  }

  const runRow = async (id: number) => (await p.cp.pool.query('select * from ops.runs where id = $1', [id])).rows[0];

  /** Polls fast (the windows are short) until `fn` is truthy; fails if the run ended first. */
  async function whileRunning<T>(id: number, what: string, fn: () => Promise<T | undefined | null | false>): Promise<T> {
    return eventually(what, async () => {
      const v = await fn();
      if (v) return v;
      const r = await runRow(id);
      if (['succeeded', 'failed', 'cancelled'].includes(r.status)) throw new Error(`run ${id} ended (${r.status}: ${r.error}) before ${what}\n${await p.logText(id)}`);
      return undefined;
    }, 240_000);
  }

  /** The retry: the dead worker's lease runs out, another worker's sweep queues the run again and runs it. */
  async function retryOnAnotherWorker(id: number): Promise<C.Run> {
    const rescuer = startWorker();
    try {
      return await p.finished(id, 300_000);
    } finally {
      await stopWorker(rescuer);
    }
  }

  const sideDatabases = async () => (await p.sql<{ datname: string }>('postgres', `select datname from pg_database where datname like '%\\_odooops\\_%'`)).map((r) => r.datname);
  const sideDirs = () => readdirSync(join(p.scratch, 'filestore')).filter((e) => e.includes('.odooops-'));
  let stagingId = '';
  /** The clone scratch directories of this test's staging environment (others' share the machine's tmp). */
  const scratchDirs = () => readdirSync(tmpdir()).filter((e) => e.startsWith(`odooops-clone-${stagingId}-`));
  function partials(dir = backupDir()): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.partial'));
  }
  /** Backup prefixes in the store with no row in ops.backups (what a killed writer leaves). */
  async function unrecordedPrefixes(): Promise<string[]> {
    const { rows } = await p.cp.pool.query(`select manifest #>> '{dump,key}' k from ops.backups`);
    const recorded = new Set(rows.map((r) => String(r.k).replace(/\/dump\.pgc$/, '')));
    const out: string[] = [];
    for (const project of readdirSync(backupDir())) {
      // <project>/files: the project's filestore file objects, shared by its backups (not a backup prefix).
      for (const env of readdirSync(join(backupDir(), project)).filter((e) => e !== 'files')) {
        for (const b of readdirSync(join(backupDir(), project, env))) if (!recorded.has(`${project}/${env}/${b}`)) out.push(`${project}/${env}/${b}`);
      }
    }
    return out;
  }

  /** Row counts of the tables Odoo's data lives in (what a restore must give back exactly). */
  async function rowCounts(db: string): Promise<Record<string, number>> {
    const tables = await p.sql<{ t: string }>(db, `select c.relname t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' order by 1`);
    const counts: Record<string, number> = {};
    const rows = await p.sql<{ t: string; n: string }>(db, tables.map((r) => `select '${r.t}' t, count(*) n from public."${r.t}"`).join(' union all '));
    for (const r of rows) counts[r.t] = Number(r.n);
    return counts;
  }

  async function bootAndLogIn(db: string, login: string, password: string): Promise<void> {
    const served = await serveOdoo(odoo, { host: p.odooPg.host, port: p.odooPg.port, user: 'odoo', password: p.password }, p.scratch, db);
    try {
      const page = await fetch(`${served.url}/web/login`);
      assert.equal(page.status, 200, served.output().slice(-2000));
      const uid = await authenticate(served, db, login, password);
      assert.equal(uid, 2, `${login} logs in to ${db}`);
    } finally {
      await served.stop();
    }
  }

  function assertNothingLeft(what: string, left: { dbs: string[]; dirs: string[]; scratch: string[]; partial: string[]; unrecorded: string[] }) {
    assert.deepEqual(left, { dbs: [], dirs: [], scratch: [], partial: [], unrecorded: [] }, what);
  }
  const leftNow = async () => ({ dbs: await sideDatabases(), dirs: sideDirs(), scratch: scratchDirs(), partial: partials(), unrecorded: await unrecordedPrefixes() });

  test('kill -9 of a backup writing its parts: the next backup removes its .partial files', async () => {
    const q = await p.admin.call('POST', `/api/projects/${SLUG}/environments/prod/runs`, { kind: 'backup', params: {}, maxAttempts: 1 });
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const w = startWorker();
    const partial = await whileRunning(q.body.id, 'a .partial file in the backup store', async () => partials()[0]);
    await kill9(w);
    assert.ok(partials().length > 0, `the killed backup left ${partial}`);
    // Its lease runs out: with one attempt allowed the run fails, and its parts stay until the next backup.
    const failed = await retryOnAnotherWorker(q.body.id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /stopped renewing its lease.*failed after 1 attempts/);
    assert.ok(partials().length > 0, 'nothing else removed them');

    const next = await p.queue('prod', 'backup', {});
    assert.equal(next.status, 201, JSON.stringify(next.body));
    const w2 = startWorker();
    const done = await p.finished(next.body.id, 300_000);
    await stopWorker(w2);
    assert.equal(done.status, 'succeeded', `${done.error}\n${await p.logText(next.body.id)}`);
    assert.match(await p.logText(next.body.id), new RegExp(`removed 1 unfinished backup\\(s\\) an interrupted run left in the store: \\S+-run${q.body.id}\\b`));
    assertNothingLeft('after the next backup', await leftNow());
  });

  test('kill -9 mid-restore of production: the retry finishes it with the same approval; Odoo boots the restored database', async () => {
    const backup = await p.queue('prod', 'backup', {});
    assert.equal(backup.status, 201, JSON.stringify(backup.body));
    const w0 = startWorker();
    const b = await p.finished(backup.body.id, 300_000);
    await stopWorker(w0);
    assert.equal(b.status, 'succeeded', b.error ?? '');
    const backupId = (b.result as { backupId: string }).backupId;
    const atBackup = await rowCounts(PROD);
    // Production moves on after the backup: the restore must bring back the backup's rows, not these.
    await p.sql(PROD, `insert into ir_config_parameter (key, value) values ('crash_test.after_backup', 'yes')`);
    assert.notDeepEqual(await rowCounts(PROD), atBackup);

    const params = { backup: backupId };
    const ap = await p.admin.call('POST', `/api/projects/${SLUG}/environments/prod/approvals`, { kind: 'restore', params, reason: 'crash test' });
    assert.equal(ap.status, 201, JSON.stringify(ap.body));
    assert.equal((await second.call('POST', `/api/approvals/${ap.body.id}/approve`)).status, 200);
    const q = await p.queue('prod', 'restore', params, ap.body.id);
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const id = q.body.id as number;

    const w = startWorker();
    const side = `${PROD}_odooops_new_${id}`;
    await whileRunning(id, `${side} being restored`, async () => (await sideDatabases()).includes(side) && (await p.sql(side, `select count(*)::int n from pg_tables where schemaname = 'public'`))[0].n > 0);
    await kill9(w);
    assert.ok((await sideDatabases()).includes(side), 'the killed attempt left its half-restored database');
    assert.equal((await runRow(id)).status, 'running', 'nobody knows yet: the lease has not run out');

    const run = await retryOnAnotherWorker(id);
    const log = await p.logText(id);
    assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
    assert.equal(run.attempts, 2);
    assert.match(log, /stopped renewing its lease .*queued again for attempt 2 of 3/);
    assert.match(log, new RegExp(`removed what an interrupted earlier run left: ${side}`));
    // The approval was the run's: used once, by this run, and no other was asked for.
    const approvals = await p.cp.pool.query('select id, used_by_run_id from ops.approvals where environment_id = (select environment_id from ops.runs where id = $1)', [id]);
    assert.deepEqual(approvals.rows, [{ id: ap.body.id, used_by_run_id: id }]);
    assert.equal((await runRow(id)).approval_id, ap.body.id);

    assert.deepEqual(await rowCounts(PROD), atBackup, 'production has the backup\'s rows again');
    assertNothingLeft('after the retried restore', await leftNow());
    await bootAndLogIn(PROD, 'admin', 'admin');
  });

  test('kill -9 mid-clone: the retry removes what attempt 1 left (masked copy, scratch directory, any half-written clone backup) and clones', async () => {
    const q = await p.queue('staging', 'clone', {});
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const id = q.body.id as number;
    const w = startWorker();
    const mask = `${PROD}_odooops_mask_${id}`;
    // Killed once the masked copy is made and being written out (its scratch directory exists).
    await whileRunning(id, 'the clone writing its masked copy out', async () => (await sideDatabases()).includes(mask) && scratchDirs().length > 0);
    await kill9(w);
    const left = await leftNow();
    console.log(`# left by the killed clone attempt: ${JSON.stringify(left)}`);
    assert.ok(left.dbs.includes(mask), `the killed attempt left ${mask}: ${JSON.stringify(left)}`);
    assert.equal(left.scratch.length, 1, 'and its scratch directory');

    const run = await retryOnAnotherWorker(id);
    const log = await p.logText(id);
    assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
    assert.equal(run.attempts, 2);
    assert.match(log, new RegExp(`removed what an interrupted earlier run left: ${mask}, the scratch directory ${left.scratch[0]}`));
    assertNothingLeft('after the retried clone', await leftNow());

    const source = await rowCounts(PROD);
    const clone = await rowCounts(STAGING);
    // A clone is the source's data, masked and neutralized in place (no row added or removed), except the
    // attachments the filestore policy leaves behind and the secrets the scrub deletes.
    for (const t of ['res_partner', 'res_users', 'res_company', 'ir_model', 'ir_model_fields', 'ir_ui_view', 'ir_module_module', 'mail_message']) {
      assert.equal(clone[t], source[t], `${t} has the source's row count`);
    }
    // The clone's admin password, where members who may operate staging read it.
    const login = await p.admin.call('GET', `/api/projects/${SLUG}/environments/staging/clone-login`);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.runId, id, 'the login is the retried run\'s');
    assert.ok(login.body.password && login.body.logins.includes('admin'), JSON.stringify(login.body));
    await bootAndLogIn(STAGING, 'admin', login.body.password);
  });
}
