// Verify runs (issue 16): a backup of a real Odoo 17 database is read back from the store and every
// checksum checked (odooops backup verify, exit 0); one flipped byte in its dump fails the verify naming
// the dump (exit 1) and alerts the project; who may verify is who may back the environment up; the
// scheduler queues each week's sample (the newest backup and a random older one) once per ISO week.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type * as C from '../contract/index.ts';
import { backupPrefixOf } from '../server/odoo/backup-writer.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { contentMap } from '../server/storage/filestore-objects.ts';
import { asUser, SERVICE_CLAIMS } from '../server/db/session.ts';
import { Scheduler } from '../server/worker/scheduler.ts';
import { addMember, eventually, type TestUser } from './helpers/control-plane.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

let p: OdooProject;
let admin: TestUser;

before(async () => {
  p = await startOdooProject({
    slug: 'verify',
    generate: {},
    real: { verify_prod: { version: '17.0', kind: 'plain' } },
    envs: [{ name: 'production', stage: 'production', db: 'verify_prod' }],
  });
  admin = p.admin;
});
after(async () => {
  await p?.close();
});

const ROOT = new URL('..', import.meta.url).pathname;
/** `odooops …` against the test server, as a user would run it. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ODOOOPS_HOME: p.cp.home };
  delete env.ODOOOPS_URL;
  delete env.ODOOOPS_TOKEN;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['server/cli/main.ts', ...args, '--url', p.cp.server.url, '--token', admin.token], { cwd: ROOT, env, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`odooops ${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

const backup = async (kind = 'manual') => {
  const r = await p.runToEnd('production', 'backup', { kind });
  assert.equal(r.status, 'succeeded', r.error ?? '');
  return (r.result as { backupId: string }).backupId;
};
const dumpOf = async (id: string) => {
  const { rows } = await p.cp.pool.query('select manifest from ops.backups where id = $1', [id]);
  return join(p.cp.server.home, 'backups', backupPrefixOf(rows[0].manifest), 'dump.pgc');
};
/** The file object of one filestore file of a backup in the server's own (plain) store. */
const fileObjectOf = async (id: string) => {
  const { rows } = await p.cp.pool.query('select project_id, manifest from ops.backups where id = $1', [id]);
  const index = gunzipSync(readFileSync(join(p.cp.server.home, 'backups', rows[0].manifest.filestore.index.key))).toString().trim().split('\n').map((l) => JSON.parse(l) as { p: string; s: string });
  const e = index.find((x) => !x.p.startsWith('checklist'))!;
  // Where the store keeps its bytes: in a pack (small files), at an offset.
  const store = new LocalBackupStore(join(p.cp.server.home, 'backups'));
  const at = (await contentMap(store, rows[0].project_id)).locate(e.s)!;
  return { path: e.p, object: store.localPath(at.key)!, offset: at.offset };
};
const runIdIn = (text: string) => Number(/queued run (\d+)/.exec(text)?.[1]);

let good: string;
let flipped: string;

test('a good backup verifies: every part is read back, how fast is logged, the CLI exits 0', async () => {
  good = await backup();
  const started = Date.now();
  const r = await cli(['backup', 'verify', good]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const runId = runIdIn(r.stderr);
  const run = (await admin.call('GET', `/api/runs/${runId}`)).body as C.Run;
  assert.equal(run.kind, 'verify');
  assert.equal(run.environment, 'production');
  assert.deepEqual(run.params, { backup: good });
  assert.equal(run.status, 'succeeded');
  const result = run.result as { backupId: string; stores: string[]; bytes: number };
  assert.equal(result.backupId, good);
  assert.deepEqual(result.stores, ['default']);
  const { rows: [b] } = await p.cp.pool.query('select size_bytes from ops.backups where id = $1', [good]);
  assert.equal(result.bytes, Number(b.size_bytes), 'every byte of the backup was read');
  const log = await p.logText(runId);
  for (const part of ['the manifest \\(manifest.json\\)', 'the database dump \\(dump.pgc\\)', 'the filestore index \\(\\d+ files\\)']) {
    assert.match(log, new RegExp(`${part}: [\\d.]+ MiB read in [\\d.]+ s \\([\\d.]+ MiB/s\\), sha256 matches`));
  }
  assert.match(log, /filestore files: [1-9]\d* checked, [\d.]+ MiB read in .* every SHA-1 matches/, 'every file object was read back');
  assert.match(log, new RegExp(`backup ${good} verified: .*every checksum matches`));
  assert.match(r.stdout, /sha256 matches/, 'the CLI followed the log');
  console.log(`# verify of a ${result.bytes} byte backup of real Odoo 17: ${Date.now() - started} ms end to end (CLI, queue, worker)`);
});

test('one flipped byte in the dump fails the verify, naming the dump; the CLI exits 1 and the project is alerted', async () => {
  flipped = await backup();
  const dump = await dumpOf(flipped);
  const bytes = readFileSync(dump);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  writeFileSync(dump, bytes);
  const r = await cli(['backup', 'verify', flipped]);
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  const runId = runIdIn(r.stderr);
  const run = (await admin.call('GET', `/api/runs/${runId}`)).body as C.Run;
  assert.equal(run.status, 'failed');
  assert.match(run.error!, new RegExp(`backup ${flipped} of production failed verification: the database dump \\(dump.pgc\\) in the store "default" is damaged`));
  assert.doesNotMatch(run.error!, /manifest|filestore/, 'only the damaged part is named');
  assert.doesNotMatch(run.error!, new RegExp(p.cp.server.home), 'no path of the worker');
  const log = await p.logText(runId);
  assert.match(log, /the database dump \(dump.pgc\): DAMAGED/);
  assert.match(log, /the manifest \(manifest.json\): .* sha256 matches/, 'the other parts were checked too');
  assert.match(log, /the filestore index \(\d+ files\): .* sha256 matches/);
  const alerts = (await admin.call('GET', '/api/projects/verify/alerts')).body as C.Alert[];
  const alert = alerts.find((a) => a.runId === runId);
  assert.ok(alert, JSON.stringify(alerts));
  assert.equal(alert.kind, 'verify_failed');
  assert.equal(alert.environment, 'production');
  assert.match(alert.message, new RegExp(`^Verify of a backup of production failed: verify of backup ${flipped} of production \\(production\\) in project verify failed at .* UTC, run #${runId}: .*dump.pgc.* damaged.*Next: `));
  assert.doesNotMatch(alert.message, new RegExp(`${p.cp.server.home}|${p.password}`));
});

test('who may verify is who may back the environment up; a verify names a backup of its own environment', async () => {
  const { rows: [{ id: projectId }] } = await p.cp.pool.query(`select id from ops.projects where slug = 'verify'`);
  const developer = await p.cp.user();
  const viewer = await p.cp.user();
  await addMember(p.cp.pool, projectId, developer.id, 'developer');
  await addMember(p.cp.pool, projectId, viewer.id, 'viewer');
  const stranger = await p.cp.user(undefined, { instanceAdmin: true });
  assert.equal((await stranger.call('POST', '/api/projects', { slug: 'elsewhere', name: 'Elsewhere' })).status, 201);
  const before = (await p.cp.pool.query(`select count(*)::int as n from ops.runs where kind = 'verify'`)).rows[0].n;
  for (const [who, status] of [[developer, 403], [viewer, 403], [stranger, 404]] as const) {
    const r = await who.call('POST', `/api/backups/${good}/verify`);
    assert.equal(r.status, status, JSON.stringify(r.body));
  }
  await p.addEnv({ name: 'dev', stage: 'development', db: 'verify_dev' });
  const r = await admin.call('POST', '/api/projects/verify/environments/dev/runs', { kind: 'verify', params: { backup: good } });
  assert.equal(r.status, 400);
  assert.match(r.body.error.message, /is of production, not dev; a verify runs on the backup's own environment/);
  assert.equal((await admin.call('POST', '/api/projects/verify/environments/production/runs', { kind: 'verify', params: { backup: 'nope' } })).status, 400);
  assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.runs where kind = 'verify'`)).rows[0].n, before, 'nothing was queued');
});

test('the scheduler queues each week\'s sample once: the newest backup and a random older one, per environment', async () => {
  const scheduler = new Scheduler(p.cp.pool, 60_000, () => {});
  const { rows: [env] } = await p.cp.pool.query(`select id from ops.environments where name = 'production'`);
  const newest = (await p.cp.pool.query('select id from ops.backups where environment_id = $1 order by created_at desc limit 1', [env.id])).rows[0].id;
  const weekRuns = async (week: string) => (await p.cp.pool.query(
    `select id, params, idempotency_key from ops.runs where kind = 'verify' and idempotency_key like $1 order by idempotency_key`, [`verify-%:${week}:%`])).rows;
  // Monday and Sunday of ISO week 2026-W49.
  assert.equal(await scheduler.verifyTick('2026-11-30'), 2);
  assert.equal(await scheduler.verifyTick('2026-12-06'), 0, 'asked again in the same week: nothing more');
  const w49 = await weekRuns('2026-W49');
  assert.deepEqual(w49.map((r) => r.idempotency_key), [`verify-newest:2026-W49:${env.id}`, `verify-sample:2026-W49:${env.id}`]);
  assert.equal(w49[0].params.backup, newest);
  assert.equal(newest, flipped);
  assert.equal(w49[1].params.backup, good, 'the sample is the older backup (the only other one here)');
  // The next week, two servers at once: still one of each.
  const both = await Promise.all([scheduler.verifyTick('2026-12-07'), scheduler.verifyTick('2026-12-07')]);
  assert.equal(both[0]! + both[1]!, 2, JSON.stringify(both));
  assert.equal((await weekRuns('2026-W50')).length, 2);
  // The dev environment has no backups: nothing is queued for it.
  assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.runs r join ops.environments e on e.id = r.environment_id where e.name = 'dev' and r.kind = 'verify'`)).rows[0].n, 0);
  // They run one at a time on the environment, like any run of it.
  const ids = [...w49, ...(await weekRuns('2026-W50'))].map((r) => r.id as number);
  const runs = await Promise.all(ids.map((id) => p.finished(id, 240_000)));
  const spans = runs.map((r) => [Date.parse(r.startedAt!), Date.parse(r.finishedAt!)] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![1], 'no two verifies of the environment overlap');
  for (const r of runs) assert.equal(r.status, r.params.backup === flipped ? 'failed' : 'succeeded', `${r.id}: ${r.error}`);
  // Users cannot schedule.
  await eventually('nothing running', async () => (await p.cp.pool.query(`select 1 from ops.runs where status in ('queued', 'running')`)).rowCount === 0);
  await assert.rejects(p.cp.sql(admin, (c) => c.query('select ops.schedule_weekly_verifies()')), /permission denied|only the service role/);
});

test('a sampled backup that retention removed before its verify ran: the run says so and succeeds, no alert; a verify anyone else queued still fails', async () => {
  const id = await backup();
  const { rows: [env] } = await p.cp.pool.query(`select id from ops.environments where name = 'production'`);
  await p.cp.pool.query('delete from ops.backups where id = $1', [id]);
  // Alerts of a kind are raised once in 6 hours: the earlier tests' are cleared so a new one would show.
  await p.cp.pool.query(`delete from ops.alerts where kind = 'verify_failed'`);
  const verifyAlerts = async () => ((await admin.call('GET', '/api/projects/verify/alerts')).body as C.Alert[]).filter((a) => a.kind === 'verify_failed');
  // As the scheduler queues (the service role), with its kind of key; and with any other key.
  const queue = async (key: string) => (await asUser(p.cp.pool, SERVICE_CLAIMS, (c) => c.query(
    `select run_id from ops.queue_run($1, 'verify', $2, $3)`, [env.id, { backup: id }, key]))).rows[0].run_id as number;
  const sampled = await p.finished(await queue(`verify-sample:2027-W02:${env.id}`), 120_000);
  assert.equal(sampled.status, 'succeeded', sampled.error ?? '');
  assert.match(await p.logText(sampled.id), new RegExp(`backup ${id} was removed \\(retention\\) after this week's verify sample picked it: nothing to verify`));
  assert.deepEqual(await verifyAlerts(), [], 'no alert for the sample');
  const other = await p.finished(await queue(`by-hand-${id}`), 120_000);
  assert.equal(other.status, 'failed');
  assert.match(other.error!, new RegExp(`backup ${id} does not exist in this project`));
  assert.deepEqual((await verifyAlerts()).map((a) => a.runId), [other.id], 'the other one alerts as before');
});

test('one flipped byte in a filestore file object fails the verify, naming the file; the other files are read too', async () => {
  const id = await backup();
  const { path, object, offset } = await fileObjectOf(id);
  const bytes = readFileSync(object);
  bytes[offset]! ^= 0x01;
  writeFileSync(object, bytes);
  try {
    const r = await cli(['backup', 'verify', id]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const runId = runIdIn(r.stderr);
    const run = (await admin.call('GET', `/api/runs/${runId}`)).body as C.Run;
    assert.equal(run.status, 'failed');
    assert.match(run.error!, new RegExp(`failed verification: the filestore file ${path.replace(/[.]/g, '\\.')} in the store "default": its bytes in the pack have the SHA-1 `));
    assert.doesNotMatch(run.error!, /dump\.pgc|manifest\.json/, 'only the damaged file is named');
    assert.match(await p.logText(runId), /filestore files: 1 of \d+ DAMAGED or missing/);
  } finally {
    bytes[offset]! ^= 0x01;
    writeFileSync(object, bytes); // shared by later backups of the project
  }
});
