// The daily schedule and backup retention: the policy itself (7 daily, 4 weekly, 3 monthly, as on
// Odoo.sh), retention runs deleting real backups from the store, never the only good one, and the
// scheduler queueing each day's runs once however often it is asked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as C from '../contract/index.ts';
import { keptByPolicy } from '../server/worker/executors/retention.ts';
import { Scheduler } from '../server/worker/scheduler.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import type { TestControlPlane, TestUser } from './helpers/control-plane.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

let p: OdooProject;
let cp: TestControlPlane;
let admin: TestUser;

test('the policy keeps the newest of each of the last 7 days, 4 weeks and 3 months, and today\'s', () => {
  const now = new Date('2026-11-25T18:00:00Z');
  // One daily backup at noon for 100 days, two manual ones today and 3 days ago, and 5 clones.
  const backups = [
    { id: 'manual-today', kind: 'manual', created_at: new Date('2026-11-25T17:00:00Z') },
    ...Array.from({ length: 100 }, (_, i) => ({ id: `d${i}`, kind: 'daily', created_at: new Date(Date.UTC(2026, 10, 25 - i, 12)) })),
    { id: 'manual-3-days-ago', kind: 'manual', created_at: new Date('2026-11-22T08:00:00Z') },
    ...Array.from({ length: 5 }, (_, i) => ({ id: `clone${i}`, kind: 'clone', created_at: new Date(Date.UTC(2026, 10, 25 - i, 6)) })),
  ].sort((a, b) => b.created_at.getTime() - a.created_at.getTime());
  const kept = keptByPolicy(backups, now);
  const days = (ids: string[]) => ids.map((id) => backups.find((b) => b.id === id)!.created_at.toISOString().slice(0, 10)).sort();
  const regular = [...kept].filter((id) => !id.startsWith('clone'));
  assert.deepEqual(days(regular), [
    '2026-09-30', '2026-10-31', // the newest of September and October (November's is today's)
    '2026-11-08', '2026-11-15', // the newest of ISO weeks 45 and 46 (47's is Sunday the 22nd, 48's today)
    '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', // last 7 days
    '2026-11-25', '2026-11-25', // today: the daily one and the manual one
  ]);
  assert.ok(!kept.has('manual-3-days-ago'), 'the 22nd is kept once: its newest backup, the daily one');
  assert.deepEqual([...kept].filter((id) => id.startsWith('clone')).sort(), ['clone0', 'clone1', 'clone2']);
});

before(async () => {
  p = await startOdooProject({
    slug: 'keep',
    requirePasswords: false,
    generate: { keep_production: { partners: 50 }, keep_other: { partners: 50 } },
    envs: [{ name: 'production', stage: 'production', db: 'keep_production' }, { name: 'other', stage: 'development', db: 'keep_other' }],
  });
  ({ cp, admin } = p);
});
after(async () => {
  await p?.close();
});

const runToEnd = (env: string, kind: string, params: object = {}) => p.runToEnd(env, kind, params);
const waitRun = (id: number) => p.finished(id);
const backupsOf = async (env: string) => (await admin.call('GET', `/api/projects/keep/environments/${env}/backups`)).body as C.Backup[];
const dirOf = async (id: string) => {
  const { rows } = await cp!.pool.query('select manifest from ops.backups where id = $1', [id]);
  return join(cp.server.home, 'backups', backupPrefixOf(rows[0].manifest));
};
const age = (id: string, days: number) => cp!.pool.query(`update ops.backups set created_at = now() - make_interval(days => $2) where id = $1`, [id, days]);

test('retention deletes old backups from the store and the table, and keeps recent ones', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await runToEnd('other', 'backup', { kind: 'pre-deploy' });
    assert.equal(r.status, 'succeeded', r.error ?? '');
    ids.push((r.result as { backupId: string }).backupId);
  }
  const oldDirs = [await dirOf(ids[0]!), await dirOf(ids[1]!)];
  await age(ids[0]!, 120);
  await age(ids[1]!, 100);
  const r = await runToEnd('other', 'retention');
  assert.equal(r.status, 'succeeded', r.error ?? '');
  const result = r.result as { kept: number; deleted: number; freedBytes: number };
  assert.deepEqual([result.kept, result.deleted], [1, 2]);
  assert.ok(result.freedBytes > 0, 'the freed bytes are counted');
  assert.deepEqual((await backupsOf('other')).map((b) => b.id), [ids[2]]);
  for (const d of oldDirs) assert.ok(!existsSync(d), `${d} is gone`);
  assert.ok(existsSync(await dirOf(ids[2]!)));
  const { rows } = await cp!.pool.query(`select target from ops.audit_log where action = 'backup.delete' order by id`);
  assert.deepEqual(rows.map((x) => x.target).sort(), [ids[0], ids[1]].sort());
});

test('retention never deletes the only good backup', async () => {
  const take = async () => (((await runToEnd('other', 'backup', { kind: 'pre-deploy' })).result) as { backupId: string }).backupId;
  const old = await take();
  await age(old, 200);
  // Every backup the policy would keep is corrupt (here: the newest ones, one flipped byte each).
  for (const b of await backupsOf('other')) {
    if (b.id === old) continue;
    const dump = join(await dirOf(b.id), 'dump.pgc');
    const bytes = readFileSync(dump);
    bytes[100]! ^= 0xff;
    writeFileSync(dump, bytes);
  }
  const r = await runToEnd('other', 'retention');
  assert.equal(r.status, 'succeeded', r.error ?? '');
  assert.ok((await backupsOf('other')).some((b) => b.id === old), 'the old, good backup is still there');
  const log = ((await admin.call('GET', `/api/runs/${r.id}/logs`)).body as C.LogPage).lines.map((l) => l.line).join('\n');
  assert.match(log, /is not good: backup .* is corrupt/);
  assert.match(log, new RegExp(`no kept backup verifies: keeping ${old}`));
});

test('the scheduler queues each day\'s daily backup of production and retention runs once', async () => {
  const scheduler = new Scheduler(cp!.pool, 60_000, () => {});
  const created = await scheduler.tick('2026-11-25');
  const { rows } = await cp!.pool.query(
    `select e.name, r.kind, r.params, r.idempotency_key from ops.runs r join ops.environments e on e.id = r.environment_id
     where r.idempotency_key like '%2026-11-25%' order by r.kind, e.name`,
  );
  assert.deepEqual(rows.map((r) => [r.kind, r.name, r.params]), [
    ['backup', 'production', { kind: 'daily' }],
    ['retention', 'other', {}],
  ]);
  assert.equal(created, 2);
  assert.equal(await scheduler.tick('2026-11-25'), 0, 'asking again the same day queues nothing');
  assert.equal(await Promise.all([scheduler.tick('2026-11-26'), scheduler.tick('2026-11-26')]).then((n) => n[0]! + n[1]!), 2, 'two servers at once: still once');
  const daily = (await cp!.pool.query(`select id from ops.runs where idempotency_key like 'daily-backup:2026-11-25:%'`)).rows[0].id;
  const run = await waitRun(daily);
  assert.equal(run.status, 'succeeded', run.error ?? '');
  assert.equal((await backupsOf('production'))[0]!.kind, 'daily');
  // Users cannot schedule.
  const c = await cp!.pool.connect();
  try {
    await c.query('begin');
    await c.query(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ sub: admin.id, role: 'authenticated' })]);
    await assert.rejects(c.query('select ops.schedule_daily_runs()'), /only the service role schedules runs/);
  } finally {
    await c.query('rollback');
    c.release();
  }
});

test('retention removes the unfinished backups interrupted runs left, not what a running run is writing', async () => {
  const { rows: [env] } = await cp.pool.query(`select e.id, e.project_id from ops.environments e where e.name = 'other'`);
  // The running run is of an environment nothing else runs on (one running run per environment).
  await p.addEnv({ name: 'idle', stage: 'development', db: 'keep_idle' });
  const { rows: [idleEnv] } = await cp.pool.query(`select id from ops.environments where name = 'idle'`);
  // A backup run killed mid-write (failed once its lease ran out) and one that is writing right now.
  const insertRun = async (envId: string, status: string) => (await cp.pool.query(
    `insert into ops.runs (project_id, environment_id, kind, status, attempts, lease_owner, lease_expires_at)
     values ($1, $2, 'backup', $3::ops.run_status, 1, case when $3::text = 'running' then 'another-worker' end, case when $3::text = 'running' then now() + interval '1 hour' end)
     returning id`, [env.project_id, envId, status])).rows[0].id as number;
  const killed = await insertRun(env.id, 'failed');
  const writing = await insertRun(idleEnv.id, 'running');
  // And one queued again after its worker died (of a kind no worker here claims, so it stays queued).
  const requeued = (await cp.pool.query(`insert into ops.runs (project_id, environment_id, kind, status, attempts) values ($1, $2, 'test.waiting', 'queued', 1) returning id`,
    [env.project_id, idleEnv.id])).rows[0].id as number;
  const store = join(cp.server.home, 'backups', env.project_id, env.id);
  const killedDir = join(store, `20261130T010203Z-run${killed}`);
  const writingDir = join(store, `20261130T010204Z-run${writing}`);
  const requeuedDir = join(store, `20261130T010205Z-run${requeued}`);
  for (const d of [killedDir, writingDir, requeuedDir]) {
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'dump.pgc.partial'), 'half a dump');
  }
  const kept = await backupsOf('other');
  assert.ok(kept.length > 0);
  try {
    const r = await runToEnd('other', 'retention');
    assert.equal(r.status, 'succeeded', r.error ?? '');
    assert.ok(!existsSync(killedDir), 'the killed run\'s parts are gone');
    assert.ok(existsSync(join(writingDir, 'dump.pgc.partial')), 'a running run\'s .partial is left alone');
    assert.ok(existsSync(join(requeuedDir, 'dump.pgc.partial')), 'and a queued run\'s (its next attempt removes it)');
    const log = ((await admin.call('GET', `/api/runs/${r.id}/logs`)).body as C.LogPage).lines.map((l) => l.line).join('\n');
    assert.match(log, new RegExp(`removed 1 unfinished backup\\(s\\) an interrupted run left in the store: ${env.project_id}/${env.id}/20261130T010203Z-run${killed}`));
    for (const b of kept.filter((k) => k.kind !== 'clone')) if ((await backupsOf('other')).some((x) => x.id === b.id)) assert.ok(existsSync(await dirOf(b.id)), 'recorded backups stay');
  } finally {
    await cp.pool.query(`update ops.runs set status = 'failed', lease_owner = null, lease_expires_at = null where id = any($1)`, [[writing, requeued]]);
  }
});
