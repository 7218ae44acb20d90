// The running Odoo's log followed live (issue 17), end to end on real Odoo 17 (../shared/odoo): the
// worker's LocalOdoo starts odoo-bin with its log in <work>/odoo/<env id>/odoo.log, members follow it
// with the shared follower (client/follow.ts: the real supabase-js client on the server's Realtime
// gateway, gap fill from the API) and with the CLI, across an Odoo restart, a log renamed and re-created,
// and a copytruncate; a follower that was away fills its gap in order; without a follower the worker
// stops reading; viewers, developers on production and members of other projects are refused at the API
// and at the topic's join. Marker lines come from Odoo itself: werkzeug logs each request's line
// ("GET /web/health?m=<marker>"); warnings and tracebacks from requests Odoo logs them for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import * as C from '../contract/index.ts';
import { ApiClient } from '../client/api-client.ts';
import { followOdooLog } from '../client/follow.ts';
import { realtimeClient } from '../client/realtime.ts';
import { LocalOdoo } from '../server/deploy/local-odoo.ts';
import type { LocalRuntime } from '../server/infra/registry.ts';
import type { EnvironmentRow } from '../server/rows.ts';
import { chownToRunUser, eventually, freePortRange, type TestUser } from './helpers/control-plane.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { installOdoo, type OdooInstall } from './helpers/real-odoo.ts';
import { startLoopbackSshd } from './helpers/sshd.ts';

const ROOT = resolve(import.meta.dirname, '..');
let p: OdooProject;
let odoo17: OdooInstall;
let odoo19: OdooInstall;
let odoo: LocalOdoo;
let envRow: EnvironmentRow;
let port: number;
let developer: TestUser;
let viewer: TestUser;
let outsider: TestUser;
const clients: SupabaseClient[] = [];
const stops: AbortController[] = [];

const logFile = () => join(p.cp.server.home, 'work', 'odoo', envRow.id, 'odoo.log');
const api = (u: TestUser) => new ApiClient({ url: p.cp.server.url, token: u.token });
const marker = (what: string) => `${what}-${randomBytes(4).toString('hex')}`;
/** Has Odoo write lines naming `m`: werkzeug's request line, and its warning that /web/health ignores the argument. */
const request = async (m: string, path = '/web/health') => {
  await fetch(`http://127.0.0.1:${port}${path}?m=${m}`).then((r) => r.text());
};

interface Follower {
  lines: C.OdooLogLine[];
  stop(): void;
  done: Promise<void>;
  has(text: string): C.OdooLogLine | undefined;
}
function follow(u: TestUser, env = 'dev', opts: { after?: number } = {}): Follower {
  const stop = new AbortController();
  stops.push(stop);
  const lines: C.OdooLogLine[] = [];
  const done = followOdooLog(api(u), p.slug, env, (l) => lines.push(l), { signal: stop.signal, ...opts });
  done.catch(() => {});
  return { lines, stop: () => stop.abort(), done, has: (text) => lines.find((l) => l.line.includes(text)) };
}
const arrives = (f: Follower, text: string, timeoutMs = 30_000) => eventually(`"${text}" to reach the follower`, async () => f.has(text), timeoutMs);
const storedLines = async () => (await p.cp.pool.query('select seq, level, line from ops.odoo_log_lines where environment_id = $1 order by seq', [envRow.id])).rows;
/** Waits for Odoo's health check; its log's end in the failure when it does not come up. */
const up = () => odoo.healthy(60_000).catch((err) => {
  throw new Error(`${(err as Error).message}\n${existsSync(logFile()) ? readFileSync(logFile(), 'utf8').slice(-3000) : '(no log)'}`);
});
const tailing = (id = envRow.id) => p.cp.server.worker!.odooLogs.active.includes(id);

/** `odooops …` as the developer; `until` sees its output so far and interrupts it (Ctrl-C) when true. */
const cli = (args: string[], until?: (out: string) => boolean) => new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
  const child = execFile(process.execPath, ['server/cli/main.ts', ...args], {
    cwd: ROOT, env: { ...process.env, ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: developer.token }, timeout: 90_000,
  }, (err, stdout, stderr) => (err && typeof err.code !== 'number' && !child.killed ? fail(err) : done({ code: child.exitCode, stdout, stderr })));
  if (until) {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (until(out)) child.kill('SIGINT');
    });
  }
});

before(async () => {
  const [project, install] = await Promise.all([startOdooProject({
    slug: 'logs',
    generate: {},
    real: { logs_dev: { version: '17.0', kind: 'plain' }, logs_dev19: { version: '19.0', kind: 'plain' } },
    envs: [
      { name: 'dev', stage: 'development', db: 'logs_dev' },
      { name: 'dev19', stage: 'development', db: 'logs_dev19' },
      { name: 'production', stage: 'production', db: 'logs_prod' },
    ],
  }), installOdoo('17.0')]);
  p = project;
  odoo17 = install;
  odoo19 = await installOdoo('19.0');
  mkdirSync(join(p.scratch, 'sessions'));
  chownToRunUser(join(p.scratch, 'sessions'));
  const runtime = {
    kind: 'local', odooBin: odoo17.odooBin, addonsPath: [join(odoo17.dir, 'addons'), join(odoo17.dir, 'odoo', 'addons')],
    odooArgs: ['--max-cron-threads', '0', '--http-interface', '127.0.0.1', '--log-level', 'info', '--workers', '0'],
    httpPorts: await freePortRange(4), healthTimeoutSeconds: 60, projects: ['logs'],
  };
  const runtime19 = { ...runtime, odooBin: odoo19.odooBin, addonsPath: [join(odoo19.dir, 'addons'), join(odoo19.dir, 'odoo', 'addons')], httpPorts: await freePortRange(2) };
  await p.addInfra({ runtimes: { 'local-odoo': runtime, 'local-odoo19': runtime19 } });
  assert.equal((await p.admin.call('PUT', '/api/projects/logs/environments/dev19/deploy-target', { runtime: 'local-odoo19' })).status, 200);
  for (const env of ['dev', 'production']) {
    const r = await p.admin.call('PUT', `/api/projects/logs/environments/${env}/deploy-target`, { runtime: 'local-odoo' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  envRow = (await p.cp.pool.query(`select * from ops.environments where name = 'dev'`)).rows[0];
  port = envRow.http_port!;
  // What a deploy leaves: the repository's checkout (Odoo wants at least one module in an addons directory).
  const checkout = join(p.cp.server.home, 'work', 'checkouts', envRow.id);
  mkdirSync(join(checkout, 'log_probe'), { recursive: true });
  writeFileSync(join(checkout, 'log_probe', '__manifest__.py'), "{'name': 'Log probe', 'version': '17.0.1.0', 'depends': ['base'], 'license': 'LGPL-3'}\n");
  writeFileSync(join(checkout, 'log_probe', '__init__.py'), '');
  chownToRunUser(join(p.cp.server.home, 'work', 'checkouts'));
  // The worker's own LocalOdoo (what a deploy starts), with the environment's database and password.
  odoo = new LocalOdoo(join(p.cp.server.home, 'work'), envRow, runtime as unknown as LocalRuntime,
    { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password, database: 'logs_dev' }, p.fs('logs_dev'));
  const { rows } = await p.cp.pool.query(`select id from ops.projects where slug = 'logs'`);
  developer = await p.cp.user();
  viewer = await p.cp.user();
  outsider = await p.cp.user(undefined, { instanceAdmin: true });
  await p.cp.pool.query(`insert into ops.project_members (project_id, user_id, role) values ($1, $2, 'developer'), ($1, $3, 'viewer')`, [rows[0].id, developer.id, viewer.id]);
  assert.equal((await outsider.call('POST', '/api/projects', { slug: 'other', name: 'other' })).status, 201);
});

after(async () => {
  for (const s of stops) s.abort();
  for (const c of clients) await c.realtime.disconnect();
  await odoo?.stop().catch(() => {});
  await p?.close();
});

test('lines arrive live with their levels; the log is followed across an Odoo restart', async () => {
  // Followed before Odoo ever ran: the worker starts reading once the log exists.
  const f = follow(developer);
  await odoo.start();
  await up();
  const version = await arrives(f, 'Odoo version 17.0', 60_000);
  assert.equal(version.level, 'info');
  assert.equal(version.stream, 'stdout');
  const m = marker('live');
  await request(m);
  const live = await arrives(f, m);
  assert.equal(live.level, 'info');
  assert.match(live.line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ INFO /);
  // Its time is Odoo's (UTC, as Odoo sets TZ for itself), not when the worker read it.
  assert.equal(live.ts, `${live.line.slice(0, 10)}T${live.line.slice(11, 19)}.${live.line.slice(20, 23)}Z`);
  assert.ok(tailing(), 'the worker tails the log while someone follows');

  // A request Odoo fails on (an RPC service that does not exist): an ERROR line and its traceback, whose
  // continuation lines carry the ERROR's level (and stream), so a level filter keeps them with it.
  const bad = await fetch(`http://127.0.0.1:${port}/jsonrpc`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { service: 'no_such_service', method: 'version', args: [] } }),
  }).then((r) => r.json() as Promise<{ error?: unknown }>);
  assert.ok(bad.error, 'Odoo failed the call');
  const error = await arrives(f, 'Exception during request handling.');
  assert.equal(error.level, 'error');
  assert.equal(error.stream, 'stderr');
  const traceback = await arrives(f, 'Traceback (most recent call last)');
  assert.equal(traceback.seq, error.seq + 1);
  const rest = await eventually('the traceback to its KeyError', async () => {
    const from = f.lines.indexOf(traceback);
    const to = f.lines.findIndex((l, i) => i > from && l.line.includes("KeyError: 'no_such_service'"));
    return to > from ? f.lines.slice(from, to + 1) : undefined;
  });
  assert.ok(rest.some((l) => /^ {2}File ".*\.py", line \d+, in /.test(l.line)), 'its frames');
  for (const l of rest) assert.deepEqual([l.level, l.stream], ['error', 'stderr'], l.line);
  // A secret in what Odoo logs (here the database password in a URL, in werkzeug's request line) is
  // redacted by the worker before it is stored or sent, as in a run's log.
  await request(`${p.password}-in-url`);
  const redacted = await arrives(f, '[redacted]-in-url');
  assert.equal(redacted.line.includes(p.password), false);
  assert.equal((await storedLines()).some((r) => r.line.includes(p.password)), false);
  assert.ok(readFileSync(logFile(), 'utf8').includes(p.password), 'the file itself has it (the control)');

  // Restarted: the new process's lines (its pid in each header) come after the old one's.
  const oldPid = /^\S+ \S+ (\d+) /.exec(version.line)![1];
  await odoo.restart();
  await up();
  const m2 = marker('restarted');
  await request(m2);
  const after = await arrives(f, m2, 60_000);
  const newPid = /^\S+ \S+ (\d+) /.exec(after.line)![1];
  assert.notEqual(newPid, oldPid);
  const seqs = f.lines.map((l) => l.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
  assert.equal(new Set(seqs).size, seqs.length, 'each line once');
  f.stop();
  await f.done;
});

test('Odoo 19: its log followed live with levels, a failed request\'s traceback kept at its ERROR\'s level', async () => {
  const row = (await p.cp.pool.query(`select * from ops.environments where name = 'dev19'`)).rows[0] as EnvironmentRow;
  const checkout = join(p.cp.server.home, 'work', 'checkouts', row.id);
  mkdirSync(join(checkout, 'log_probe'), { recursive: true });
  writeFileSync(join(checkout, 'log_probe', '__manifest__.py'), "{'name': 'Log probe', 'version': '19.0.1.0', 'depends': ['base'], 'license': 'LGPL-3'}\n");
  writeFileSync(join(checkout, 'log_probe', '__init__.py'), '');
  chownToRunUser(join(p.cp.server.home, 'work', 'checkouts'));
  const runtime19 = p.registry.runtimes!['local-odoo19'] as unknown as LocalRuntime;
  const odoo19Host = new LocalOdoo(join(p.cp.server.home, 'work'), row, runtime19,
    { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password, database: 'logs_dev19' }, p.fs('logs_dev19'));
  const f = follow(developer, 'dev19');
  try {
    await odoo19Host.start();
    await odoo19Host.healthy(90_000);
    const version = await arrives(f, 'Odoo version 19.0', 60_000);
    assert.equal(version.level, 'info');
    const bad = await fetch(`http://127.0.0.1:${row.http_port}/jsonrpc`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { service: 'no_such_service', method: 'version', args: [] } }),
    }).then((r) => r.json() as Promise<{ error?: unknown }>);
    assert.ok(bad.error, 'Odoo failed the call');
    const traceback = await arrives(f, 'Traceback (most recent call last)');
    const error = f.lines.find((l) => l.seq === traceback.seq - 1)!;
    assert.equal(error.level, 'error', error.line);
    const rest = await eventually('the traceback to its KeyError', async () => {
      const from = f.lines.indexOf(traceback);
      const to = f.lines.findIndex((l, i) => i > from && l.line.includes("KeyError: 'no_such_service'"));
      return to > from ? f.lines.slice(from, to + 1) : undefined;
    });
    for (const l of rest) assert.equal(l.level, 'error', l.line);
  } finally {
    f.stop();
    await f.done;
    await odoo19Host.stop();
  }
});

test('a rotated log is followed: renamed and re-created, and copytruncate', async () => {
  const f = follow(developer, 'dev', { after: 0 });
  const m0 = marker('before-rotation');
  await request(m0);
  await arrives(f, m0);
  // logrotate's "create": the file is renamed, Odoo (restarted) writes a new one.
  renameSync(logFile(), `${logFile()}.1`);
  const m1 = marker('renamed');
  await request(m1); // still written to the renamed file: Odoo holds it open
  await odoo.restart();
  await up();
  assert.ok(existsSync(logFile()), 'Odoo wrote a new log');
  const m2 = marker('new-file');
  await request(m2);
  await arrives(f, m2, 60_000);
  assert.ok(f.has(m1), 'what Odoo wrote to the renamed file before the new one appeared was read too');
  // copytruncate: copied away, then emptied in place while Odoo keeps appending.
  await new Promise((r) => setTimeout(r, 600));
  copyFileSync(logFile(), `${logFile()}.2`);
  truncateSync(logFile(), 0);
  await new Promise((r) => setTimeout(r, 600)); // the tail sees it shrink before Odoo writes past the old offset
  const m3 = marker('truncated');
  await request(m3);
  const got = await arrives(f, m3);
  assert.equal(got.level, 'info');
  assert.ok(readFileSync(logFile(), 'utf8').includes(m3));
  const seqs = f.lines.map((l) => l.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i), 'consecutive: nothing lost between the files');
  f.stop();
  await f.done;
});

test('a follower that was away fills its gap in order, from the API and Realtime', async () => {
  const keeper = follow(developer); // keeps the lease while the other one is away
  const away = follow(p.admin);
  const m0 = marker('both');
  await request(m0);
  await arrives(away, m0);
  await arrives(keeper, m0);
  away.stop();
  await away.done;
  const last = away.lines.at(-1)!.seq;
  const missed = [marker('missed-1'), marker('missed-2'), marker('missed-3')];
  for (const m of missed) await request(m);
  await arrives(keeper, missed[2]!);
  const back = follow(p.admin, 'dev', { after: last });
  const m4 = marker('back');
  await request(m4);
  await arrives(back, m4);
  for (const m of missed) assert.ok(back.has(m), `${m} filled in`);
  assert.equal(back.lines[0]!.seq, last + 1, 'from the line after the last one seen');
  const seqs = back.lines.map((l) => l.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => last + 1 + i));
  const stored = new Map((await storedLines()).map((r) => [Number(r.seq), r.line]));
  for (const l of back.lines) assert.equal(l.line, stored.get(l.seq));
  keeper.stop();
  back.stop();
  await Promise.all([keeper.done, back.done]);
});

test('the CLI prints the last lines by level and follows until interrupted', async () => {
  const m = marker('cli');
  const follower = follow(developer); // so the worker reads (the CLI's own follow does the same below)
  await request(m);
  await arrives(follower, m);
  const tail = await cli(['env', 'logs', 'logs', 'dev', '--lines', '3']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout.trim().split('\n').length, 3);
  assert.ok(tail.stdout.includes(m), tail.stdout);
  const warnings = await cli(['env', 'logs', 'logs', 'dev', '--level', 'warning', '--lines', '50', '--json']);
  assert.equal(warnings.code, 0, warnings.stderr);
  const levels = warnings.stdout.trim().split('\n').filter(Boolean).map((l) => C.OdooLogLine.parse(JSON.parse(l)).level);
  assert.ok(levels.length > 0, 'the refused call left warnings or errors');
  assert.ok(levels.every((l) => l !== 'info' && l !== 'debug'), levels.join(','));
  const bad = await cli(['env', 'logs', 'logs', 'dev', '--level', 'loud']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--level takes one of debug, info, warning, error, critical/);
  // --follow: a line Odoo writes after it started reaches it; Ctrl-C ends it with 0.
  const live = marker('cli-follow');
  const following = cli(['env', 'logs', 'logs', 'dev', '--follow', '--lines', '1'], (out) => out.includes(live));
  await new Promise((r) => setTimeout(r, 3000));
  await request(live);
  const r = await following;
  assert.ok(r.stdout.includes(live), r.stdout + r.stderr);
  assert.equal(r.code, 0, r.stderr);
  follower.stop();
  await follower.done;
});

test('refused: viewers, developers on production, members of other projects (API and topic join)', async () => {
  for (const [who, env] of [[viewer, 'dev'], [developer, 'production']] as const) {
    const read = await who.call('GET', `/api/projects/logs/environments/${env}/odoo-log?tail=10`);
    assert.equal(read.status, 403, JSON.stringify(read.body));
    assert.match(read.body.error.message, /cannot read the Odoo log of (development|production) environments/);
    const lease = await who.call('POST', `/api/projects/logs/environments/${env}/odoo-log/follow`, {});
    assert.equal(lease.status, 403, JSON.stringify(lease.body));
  }
  assert.equal((await outsider.call('GET', '/api/projects/logs/environments/dev/odoo-log')).status, 404);
  // The environment id of another project, straight at the database as that member: refused too.
  const other = await p.cp.sql(outsider, (c) => c.query('select ops.follow_odoo_log($1)', [envRow.id]).then(() => 'ok', (e) => e.code));
  assert.equal(other, '42501');
  const prodId = (await p.cp.pool.query(`select id from ops.environments where name = 'production'`)).rows[0].id;
  const join = async (u: TestUser, envId: string) => {
    const { sb } = await realtimeClient(p.cp.server.url, 'odooops-local', { target: { token: u.token } });
    clients.push(sb);
    return new Promise<string>((resolveStatus) => {
      const ch: RealtimeChannel = sb.channel(`odoo-log:${envId}`, { config: { private: true } });
      ch.subscribe((status) => {
        if (status !== 'CLOSED') resolveStatus(status);
      });
    });
  };
  assert.equal(await join(developer, envRow.id), 'SUBSCRIBED', 'the control: a developer may join development');
  assert.equal(await join(viewer, envRow.id), 'CHANNEL_ERROR');
  assert.equal(await join(developer, prodId), 'CHANNEL_ERROR');
  assert.equal(await join(outsider, envRow.id), 'CHANNEL_ERROR');
  // Nothing is readable through the table either.
  const rows = await p.cp.sql(viewer, (c) => c.query('select count(*)::int as n from ops.odoo_log_lines where environment_id = $1', [envRow.id]));
  assert.equal(rows.rows[0].n, 0);
  assert.ok((await storedLines()).length > 0);
});

test('a recent window: the oldest lines go past 20,000; a follower from before the window starts where it begins', async () => {
  // Written through the worker's own function (a stand-in worker id holding the claim): production runs
  // no Odoo on this worker, so the real worker leaves its log alone.
  const prodId = (await p.cp.pool.query(`select id from ops.environments where name = 'production'`)).rows[0].id as string;
  assert.equal((await p.admin.call('POST', '/api/projects/logs/environments/production/odoo-log/follow', {})).status, 200);
  assert.ok((await p.cp.pool.query(`select ops.claim_odoo_log_tail($1, 'stand-in worker', 30) as c`, [prodId])).rows[0].c);
  const n = 20_010;
  const text = Array.from({ length: n }, (_, i) => `2026-12-01 15:00:00,000 4242 INFO logs_prod odoo: line ${i + 1}`);
  const last = (await p.cp.pool.query(`select ops.append_odoo_log($1, 'stand-in worker', $2::text[], $3::text[], $4::text[], true, null, null) as seq`,
    [prodId, text.map(() => null), text.map(() => 'info'), text])).rows[0].seq;
  assert.equal(Number(last), n);
  const page = (await p.admin.call('GET', '/api/projects/logs/environments/production/odoo-log?after=0&limit=5')).body as C.OdooLogPage;
  assert.equal(page.firstSeq, n - 20_000 + 1, 'the last 20,000 lines are kept');
  assert.deepEqual(page.lines.map((l) => l.line), text.slice(n - 20_000, n - 20_000 + 5));
  // From seq 0: the follower does not wait for lines that are gone; it gets the window, in order, once.
  const f = follow(p.admin, 'production', { after: 0 });
  await eventually('the whole window', async () => f.lines.length >= 20_000, 60_000);
  assert.equal(f.lines[0]!.seq, n - 20_000 + 1);
  assert.equal(f.lines.at(-1)!.line, text.at(-1));
  assert.equal(f.lines.length, 20_000);
  f.stop();
  await f.done;
  // Someone else's claim: this worker id may not write there (its appends answer null).
  const other = await p.cp.pool.query(`select ops.append_odoo_log($1, 'another worker', array[null]::text[], array['info'], array['x'], true, null, null) as seq`, [prodId]);
  assert.equal(other.rows[0].seq, null);
});

test('no follower, no tail: once the lease lapses the worker stops reading the log', async () => {
  for (const s of stops) s.abort();
  const f = follow(developer);
  const m0 = marker('leased');
  await request(m0);
  await arrives(f, m0);
  f.stop();
  await f.done;
  assert.ok(tailing());
  // Five minutes without a renewal, brought forward: the lease as it is after them.
  await p.cp.pool.query(`update ops.odoo_log_state set follow_until = now() - interval '1 second' where environment_id = $1`, [envRow.id]);
  await eventually('the worker to stop tailing', async () => !tailing(), 15_000);
  const unwatched = marker('unwatched');
  await request(unwatched);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal((await storedLines()).some((r) => r.line.includes(unwatched)), false, 'nothing read while nobody follows');
  assert.ok(readFileSync(logFile(), 'utf8').includes(unwatched), 'though Odoo wrote it');
  // The CLI without --follow reads the log as it is now: the worker resumes where it stopped.
  const now = await cli(['env', 'logs', 'logs', 'dev', '--lines', '20']);
  assert.equal(now.code, 0, now.stderr);
  assert.ok(now.stdout.includes(unwatched), now.stdout);
  // A follower: the line written meanwhile, once, in order.
  const again = follow(developer, 'dev', { after: 0 });
  await arrives(again, unwatched, 30_000);
  const stored = (await storedLines()).filter((r) => r.line.includes(m0) || r.line.includes(unwatched));
  assert.equal(stored.length, 2, 'each line stored once');
  again.stop();
  await again.done;
});

test('an ssh runtime: its log (the registry\'s logPath) followed with tail -F over ssh, across a rotation', async () => {
  // A real sshd on loopback stands for the runtime's host (as in deploy.test.ts); the log it serves is the
  // real Odoo's above, read there by `tail -F` as root@127.0.0.1, the worker's key of the run user.
  const dir = join(p.scratch, 'sshd');
  const { port: sshPort, process: sshd } = await startLoopbackSshd(dir);
  try {
    chownToRunUser(join(dir, 'client_key'));
    const ssh = {
      kind: 'ssh', host: 'root@127.0.0.1', port: sshPort, identityFile: join(dir, 'client_key'), checkoutDir: join(p.scratch, 'remote-addons'), projects: ['logs'],
      odooBin: odoo17.odooBin, restart: ['true'], healthUrl: 'http://127.0.0.1:9/web/health',
    };
    await p.addInfra({ runtimes: { 'ssh-logs': ssh } });
    await p.addEnv({ name: 'staging', stage: 'staging', db: 'logs_staging' });
    assert.equal((await p.admin.call('PUT', '/api/projects/logs/environments/staging/deploy-target', { runtime: 'ssh-logs' })).status, 200);
    const stagingId = (await p.cp.pool.query(`select id from ops.environments where name = 'staging'`)).rows[0].id as string;
    // Without a logPath the worker cannot know where the log is: nothing is tailed, and the follower is told.
    const lease = await p.admin.call('POST', '/api/projects/logs/environments/staging/odoo-log/follow', {});
    assert.equal(lease.status, 200, JSON.stringify(lease.body));
    assert.match(lease.body.problem, /the runtime ssh-logs of staging declares no logPath/);
    const blind = follow(p.admin, 'staging');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(tailing(stagingId), false);
    blind.stop();
    await blind.done;
    await p.addInfra({ runtimes: { 'ssh-logs': { ...ssh, logPath: logFile() } } });
    assert.equal((await p.admin.call('POST', '/api/projects/logs/environments/staging/odoo-log/follow', {})).body.problem, null);
    const f = follow(p.admin, 'staging');
    await eventually('the worker to tail over ssh', async () => tailing(stagingId), 15_000);
    const m1 = marker('over-ssh');
    await request(m1);
    const got = await arrives(f, m1);
    assert.equal(got.level, 'info');
    // Rotated by rename, Odoo restarted into a new file: tail -F on the host follows the name.
    renameSync(logFile(), `${logFile()}.3`);
    await odoo.restart();
    await up();
    const m2 = marker('ssh-new-file');
    await request(m2);
    await arrives(f, m2, 60_000);
    const seqs = f.lines.map((l) => l.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    f.stop();
    await f.done;
    // Nobody follows: the tail (and its ssh) ends.
    await p.cp.pool.query(`update ops.odoo_log_state set follow_until = now() - interval '1 second' where environment_id = $1`, [stagingId]);
    await eventually('the ssh tail to stop', async () => !tailing(stagingId), 15_000);
  } finally {
    sshd.kill();
  }
});
