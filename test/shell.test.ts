// Shells on an environment (issue 17): real odoo-bin 17 shell, psql and bash through the server's
// websocket and a real pty, as the run user; who may open which (the stage rules, production only
// confirmed and recorded); what a client may not choose; every process gone when the socket closes; idle
// sessions ended; a session limit per person.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { spawn } from 'node:child_process';
import { spawn as spawnPty } from '@lydell/node-pty';
import WebSocket from 'ws';
import { SHELL_PATH, type ShellError, type ShellExit, type ShellKind, type ShellOpened } from '../contract/index.ts';
import { connectShell, shellUrl, type ShellConnection } from '../client/shell.ts';
import { runUser } from '../server/infra/run-user.ts';
import { sharedDir } from '../server/paths.ts';
import { addMember, chownToRunUser, eventually, freePortRange, type TestUser } from './helpers/control-plane.ts';
import { startLoopbackSshd } from './helpers/sshd.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { installOdoo } from './helpers/real-odoo.ts';

let p: OdooProject;
let odoo17: Awaited<ReturnType<typeof installOdoo>>;
let developer: TestUser;
let tester: TestUser;
let viewer: TestUser;
const serverLog: string[] = [];

before(async () => {
  const [project, odoo, odoo19Install] = await Promise.all([startOdooProject({
    slug: 'shell',
    generate: {},
    real: { shell_prod: { version: '17.0', kind: 'plain' }, shell_dev: { version: '17.0', kind: 'plain' }, shell_remote: { version: '17.0', kind: 'plain' }, shell_dev19: { version: '19.0', kind: 'plain' } },
    envs: [
      { name: 'production', stage: 'production', db: 'shell_prod' },
      { name: 'staging', stage: 'staging', db: 'shell_stage' },
      { name: 'dev-feature', stage: 'development', db: 'shell_dev' },
      { name: 'dev-remote', stage: 'development', db: 'shell_remote' },
      { name: 'dev-19', stage: 'development', db: 'shell_dev19' },
    ],
    server: { log: (m) => serverLog.push(m) },
  }), installOdoo('17.0'), installOdoo('19.0')]);
  p = project;
  odoo17 = odoo;
  const ports = await freePortRange(9);
  await p.addInfra({
    runtimes: {
      'local-odoo': {
        kind: 'local', odooBin: odoo.odooBin, addonsPath: [join(odoo.dir, 'addons'), join(odoo.dir, 'odoo', 'addons')],
        odooArgs: ['--max-cron-threads', '0', '--http-interface', '127.0.0.1'], httpPorts: [ports[0], ports[0] + 2], projects: ['shell'], shells: true,
      },
      'local-odoo19': {
        kind: 'local', odooBin: odoo19Install.odooBin, addonsPath: [join(odoo19Install.dir, 'addons'), join(odoo19Install.dir, 'odoo', 'addons')],
        odooArgs: ['--max-cron-threads', '0', '--http-interface', '127.0.0.1'], httpPorts: [ports[0] + 6, ports[1]], projects: ['shell'], shells: true,
      },
      // The same Odoo, but the operator has not allowed shells on it.
      'closed-odoo': {
        kind: 'local', odooBin: odoo.odooBin, addonsPath: [join(odoo.dir, 'addons'), join(odoo.dir, 'odoo', 'addons')],
        httpPorts: [ports[0] + 3, ports[0] + 5], projects: ['shell'],
      },
    },
  });
  for (const [env, runtime] of [['production', 'local-odoo'], ['dev-feature', 'local-odoo'], ['staging', 'closed-odoo'], ['dev-19', 'local-odoo19']]) {
    const r = await p.admin.call('PUT', `/api/projects/shell/environments/${env}/deploy-target`, { runtime });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // What a first deploy leaves: the environment's checkout (one module), which Odoo's addons path starts with.
  const work = join(sharedDir(p.cp.server.home), 'work', 'checkouts');
  for (const env of ['production', 'dev-feature', 'dev-19']) {
    const id = (await p.cp.pool.query('select id from ops.environments where name = $1', [env])).rows[0].id as string;
    mkdirSync(join(work, id, 'shell_probe'), { recursive: true });
    writeFileSync(join(work, id, 'shell_probe', '__init__.py'), '');
    writeFileSync(join(work, id, 'shell_probe', '__manifest__.py'), `{'name': 'Shell probe', 'version': '${env === 'dev-19' ? '19.0' : '17.0'}.1.0', 'depends': ['base']}\n`);
  }
  chownToRunUser(work);
  const projectId = (await p.cp.pool.query(`select id from ops.projects where slug = 'shell'`)).rows[0].id as string;
  [developer, tester, viewer] = await Promise.all([p.cp.user('dev@example.invalid'), p.cp.user('tester@example.invalid'), p.cp.user('viewer@example.invalid')]);
  await addMember(p.cp.pool, projectId, developer.id, 'developer');
  await addMember(p.cp.pool, projectId, tester.id, 'tester');
  await addMember(p.cp.pool, projectId, viewer.id, 'viewer');
});

after(async () => {
  await p?.close();
});

interface Session {
  conn: ShellConnection;
  opened: Promise<ShellOpened>;
  /** The end: an exit, a refusal, or a dropped connection. */
  end: Promise<{ exit?: ShellExit; error?: ShellError; dropped?: string }>;
  text(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  type(line: string): void;
}

function open(user: TestUser, environment: string, kind: ShellKind, extra: { confirmProduction?: boolean } = {}): Session {
  let out = '';
  let resolveOpened!: (o: ShellOpened) => void;
  let rejectOpened!: (e: Error) => void;
  const opened = new Promise<ShellOpened>((res, rej) => ((resolveOpened = res), (rejectOpened = rej)));
  opened.catch(() => {});
  let resolveEnd!: (e: { exit?: ShellExit; error?: ShellError; dropped?: string }) => void;
  const end = new Promise<{ exit?: ShellExit; error?: ShellError; dropped?: string }>((res) => (resolveEnd = res));
  const conn = connectShell({ url: p.cp.server.url, token: user.token, project: 'shell', environment, kind, cols: 120, rows: 40, ...extra }, {
    opened: resolveOpened,
    output: (b) => (out += Buffer.from(b).toString('utf8')),
    exit: (exit) => resolveEnd({ exit }),
    error: (error) => (rejectOpened(new Error(`${error.code}: ${error.message}`)), resolveEnd({ error })),
    dropped: (dropped) => (rejectOpened(new Error(dropped)), resolveEnd({ dropped })),
  });
  return {
    conn, opened, end,
    text: () => out,
    waitFor: (re, timeoutMs = 60_000) => eventually(`${re} in the ${kind} output (so far: ${JSON.stringify(out.slice(-600))})`, async () => out.match(re), timeoutMs),
    type: (line) => conn.write(`${line}\r`),
  };
}

/** Every process's command line, for "is it still running" and "is a secret on a command line". */
function commandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone
    }
  }
  return out;
}

const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

test('odoo: a developer runs Python in the development environment\'s real odoo-bin 17 shell and reads the answer', async () => {
  const t = performance.now();
  const s = open(developer, 'dev-feature', 'odoo');
  const opened = await s.opened;
  assert.equal(opened.kind, 'odoo');
  assert.equal(opened.stage, 'development');
  assert.equal(opened.recorded, false);
  assert.match(opened.where, /odoo-bin shell of the runtime local-odoo on shell_dev/);
  await s.waitFor(/>>> $/m, 120_000);
  console.log(`# odoo-bin 17 shell ready after ${since(t)}`);
  const n = (await p.sql<{ n: string }>('shell_dev', 'select count(*) as n from res_partner where active'))[0]!.n;
  s.type(`print('partners=%d' % env['res.partner'].search_count([]))`);
  const m = await s.waitFor(/partners=(\d+)/);
  assert.equal(Number(m[1]), Number(n));
  s.type('exit()');
  const end = await s.end;
  assert.equal(end.exit?.code, 0, JSON.stringify(end));
});

test('odoo: the same in a real odoo-bin 19 shell', async () => {
  const t = performance.now();
  const s = open(developer, 'dev-19', 'odoo');
  const opened = await s.opened;
  assert.match(opened.where, /odoo-bin shell of the runtime local-odoo19 on shell_dev19/);
  await s.waitFor(/>>> $/m, 120_000);
  console.log(`# odoo-bin 19 shell ready after ${since(t)}`);
  const n = (await p.sql<{ n: string }>('shell_dev19', 'select count(*) as n from res_partner where active'))[0]!.n;
  s.type(`print('partners=%d version=%s' % (env['res.partner'].search_count([]), odoo.release.series))`);
  const m = await s.waitFor(/partners=(\d+) version=(\S+)/);
  assert.equal(Number(m[1]), Number(n));
  assert.equal(m[2], '19.0');
  s.type('exit()');
  const end = await s.end;
  assert.equal(end.exit?.code, 0, JSON.stringify(end));
});

test('psql: select current_database() on the environment\'s database, the password in the environment only', async () => {
  const s = open(developer, 'dev-feature', 'psql');
  await s.opened;
  s.type('select current_database();');
  await s.waitFor(/^\s*shell_dev\s*$/m, 30_000);
  // The registry's password is nowhere on a command line while the session runs.
  assert.ok(p.password.length >= 12);
  assert.deepEqual(commandLines().filter((c) => c.includes(p.password)), []);
  s.type('\\q');
  const end = await s.end;
  assert.equal(end.exit?.code, 0, JSON.stringify(end));
});

test('shell: bash in the checkout with the database in PG* variables, as the run user, and its exit code', async () => {
  const s = open(developer, 'dev-feature', 'shell');
  await s.opened;
  s.type('echo "db=$PGDATABASE user=$(id -un) dir=$(basename $(dirname $PWD))"; exit 3');
  const m = await s.waitFor(/db=(\S*) user=(\S+) dir=(\S+)/);
  assert.equal(m[1], 'shell_dev');
  assert.equal(m[2], runUser().name);
  if (process.getuid?.() === 0) assert.notEqual(m[2], 'root');
  assert.equal(m[3], 'checkouts');
  const end = await s.end;
  assert.equal(end.exit?.code, 3, JSON.stringify(end));
});

test('roles: a viewer never; a developer not on staging or production; a tester on staging only where the runtime allows', async () => {
  for (const [user, env, code] of [
    [viewer, 'dev-feature', 'forbidden'], [viewer, 'production', 'forbidden'],
    [developer, 'staging', 'forbidden'], [developer, 'production', 'forbidden'],
    [tester, 'production', 'forbidden'],
  ] as const) {
    const s = open(user, env, 'shell');
    const end = await s.end;
    assert.equal(end.error?.code, code, `${env}: ${JSON.stringify(end)}`);
  }
  // The tester may operate staging, but its runtime does not allow shells: the operator's word.
  const closed = await open(tester, 'staging', 'psql').end;
  assert.equal(closed.error?.code, 'unavailable', JSON.stringify(closed));
  assert.match(closed.error!.message, /runtime closed-odoo does not allow shells/);
  // Someone who is no member at all: as if the environment did not exist.
  const stranger = await p.cp.user();
  const none = await open(stranger, 'production', 'shell').end;
  assert.equal(none.error?.code, 'not_found', JSON.stringify(none));
  // A token this server did not sign.
  const forged = await open({ ...developer, token: `${developer.token.slice(0, -4)}AAAA` }, 'dev-feature', 'shell').end;
  assert.equal(forged.error?.code, 'unauthorized', JSON.stringify(forged));
});

test('production: admins only, with the confirmation; the session and what was typed are recorded for the project\'s admins', async () => {
  const refused = await open(p.admin, 'production', 'shell').end;
  assert.equal(refused.error?.code, 'confirmation_required', JSON.stringify(refused));
  const before = (await p.cp.pool.query(`select count(*)::int as n from ops.shell_sessions where stage = 'production'`)).rows[0].n as number;
  assert.equal(before, 0, 'a refused production shell is not a session');

  const t = Date.now();
  const s = open(p.admin, 'production', 'shell', { confirmProduction: true });
  const opened = await s.opened;
  assert.equal(opened.recorded, true);
  s.type('echo "prod-db=$PGDATABASE"');
  await s.waitFor(/prod-db=shell_prod/);
  s.type('exit');
  const end = await s.end;
  assert.equal(end.exit?.code, 0, JSON.stringify(end));

  // Readable by the project's admins, through row level security, as the admin; not by the developer.
  const rows = await eventually('the closed session row', async () => {
    const r = await p.cp.sql(p.admin, async (c) => (await c.query(`select * from ops.shell_sessions where stage = 'production' and closed_at is not null`)).rows);
    return r.length ? r : undefined;
  });
  assert.equal(rows.length, 1);
  const row = rows[0];
  assert.equal(row.user_id, p.admin.id);
  assert.equal(row.kind, 'shell');
  assert.equal(row.confirmed, true);
  assert.match(row.client_address, /^(::ffff:)?127\.0\.0\.1:\d+$/);
  assert.equal(row.exit_code, 0);
  assert.ok(row.opened_at.getTime() >= t - 5000 && row.closed_at.getTime() >= row.opened_at.getTime());
  assert.match(row.input, /echo "prod-db=\$PGDATABASE"\rexit\r/);
  const seen = await p.cp.sql(developer, async (c) => (await c.query('select count(*)::int as n from ops.shell_sessions')).rows[0].n);
  assert.equal(seen, 0, 'a developer reads no session, not even their own');
  // The append-only audit log has the open and the close; the server's log a line for each.
  const audit = await p.cp.pool.query(`select action, details from ops.audit_log where action like 'shell.%' order by id`);
  assert.deepEqual(audit.rows.map((r) => r.action), ['shell.open', 'shell.close']);
  assert.equal(audit.rows[0].details.session, Number(row.id));
  assert.ok(serverLog.some((l) => new RegExp(`^shell ${row.id}: .* opened shell on shell/production \\(production\\) from .*input recorded`).test(l)), serverLog.join('\n'));
  assert.ok(serverLog.some((l) => new RegExp(`^shell ${row.id}: shell on shell/production by .* ended after \\d+ s: exited \\(exit 0\\)`).test(l)), serverLog.join('\n'));
  // The API gives them to admins only.
  const listed = await p.admin.call('GET', '/api/projects/shell/shell-sessions');
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const mine = listed.body.find((x: { id: number }) => x.id === Number(row.id));
  assert.equal(mine.stage, 'production');
  assert.match(mine.input, /prod-db/);
  assert.equal((await developer.call('GET', '/api/projects/shell/shell-sessions')).status, 403);
  // Nobody rewrites what happened: an API user may not touch the rows nor call the server's functions.
  await assert.rejects(p.cp.sql(p.admin, (c) => c.query('update ops.shell_sessions set input = null')), /permission denied/);
  await assert.rejects(p.cp.sql(p.admin, (c) => c.query(`select ops.close_shell_session($1, 0, 'forged')`, [row.id])), /permission denied/);
});

test('a closed socket ends every process of the session, background and setsid ones included', async () => {
  const s = open(developer, 'dev-feature', 'shell');
  await s.opened;
  // A job, a new session, and a double fork out of both (reparented to init) that ignores the hang-up.
  s.type(`sleep 1001 & setsid sleep 1002 & sh -c 'trap "" HUP; setsid sleep 1003 &' ; echo started-$((6*7))`);
  await s.waitFor(/started-42/);
  const sleeping = () => commandLines().filter((c) => /^sleep 100[123] $/.test(c));
  await eventually('the three sleeps', async () => sleeping().length === 3);
  const rowId = (await p.cp.pool.query(`select max(id) as id from ops.shell_sessions where kind = 'shell' and environment = 'dev-feature'`)).rows[0].id;
  s.conn.close();
  await eventually('no process of the session left', async () => sleeping().length === 0 && p.cp.server.shells.open === 0, 15_000);
  // The one that ignored the hang-up had to be killed.
  await eventually(`the kill in the server log (${serverLog.filter((l) => l.startsWith(`shell ${rowId}`)).join(' | ')})`,
    async () => serverLog.some((l) => new RegExp(`^shell ${rowId}: killed 1 process\\(es\\) left`).test(l)), 5000);
  const row = await eventually('the session closed in the database', async () =>
    (await p.cp.pool.query('select closed_at, end_reason from ops.shell_sessions where id = $1 and closed_at is not null', [rowId])).rows[0]);
  assert.equal(row.end_reason, 'the connection closed');
});

test('a session nobody types in is ended after the idle time (made short here)', async () => {
  const shells = p.cp.server.shells;
  const idle = shells.idleMs;
  shells.idleMs = 1500;
  try {
    const t = performance.now();
    const s = open(developer, 'dev-feature', 'shell');
    const opened = await s.opened;
    assert.equal(opened.idleSeconds, 2);
    s.type('sleep 1004 &');
    const end = await s.end;
    assert.match(end.exit?.reason ?? '', /^idle: no input for 2 s$/, JSON.stringify(end));
    assert.ok(performance.now() - t >= 1400);
    await eventually('the idle session\'s processes gone', async () => !commandLines().some((c) => /^sleep 1004 $/.test(c)), 10_000);
  } finally {
    shells.idleMs = idle;
  }
});

test('a terminal resized while its session opens (an editor laying out its panel) gets that size, from the client and from the server', async () => {
  // The client holds the size until the session is open.
  const s = open(developer, 'dev-feature', 'shell');
  s.conn.resize(101, 31);
  await s.opened;
  s.type('stty size; exit');
  assert.match((await s.waitFor(/^31 101\s*$/m))[0], /31 101/);
  // A client that sends it at once anyway: the server keeps the last size for the session, input too.
  const out = await new Promise<{ text: string; errors: any[] }>((resolve, reject) => {
    const ws = new WebSocket(shellUrl(p.cp.server.url));
    let text = '';
    const errors: any[] = [];
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'open', token: developer.token, project: 'shell', environment: 'dev-feature', kind: 'shell', cols: 80, rows: 24 }));
      ws.send(JSON.stringify({ type: 'resize', cols: 90, rows: 20 }));
      ws.send(JSON.stringify({ type: 'resize', cols: 133, rows: 41 }));
      ws.send(Buffer.from('stty size; exit\r'), { binary: true });
    });
    ws.on('message', (d, bin) => {
      if (bin) text += d.toString();
      else if (JSON.parse(d.toString()).type === 'error') errors.push(JSON.parse(d.toString()));
    });
    ws.on('close', () => resolve({ text, errors }));
    ws.on('error', reject);
  });
  assert.deepEqual(out.errors, []);
  assert.match(out.text, /^41 133\s*$/m, out.text);
});

test('a client cannot choose a command, an environment variable, a path, a host or a user; later frames are checked too', async () => {
  const raw = (frame: unknown, then?: unknown) => new Promise<{ frames: any[]; code: number }>((resolve, reject) => {
    const ws = new WebSocket(shellUrl(p.cp.server.url));
    const frames: any[] = [];
    ws.on('open', () => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)));
    ws.on('message', (d, bin) => {
      if (bin) return;
      const f = JSON.parse(d.toString());
      frames.push(f);
      if (f.type === 'opened' && then) ws.send(JSON.stringify(then));
    });
    ws.on('close', (code) => resolve({ frames, code }));
    ws.on('error', reject);
  });
  const base = { type: 'open', token: developer.token, project: 'shell', environment: 'dev-feature', kind: 'shell', cols: 80, rows: 24 };
  for (const [extra, key] of [
    [{ command: 'rm -rf /' }, 'command'], [{ args: ['-c', 'id'] }, 'args'], [{ env: { LD_PRELOAD: '/tmp/x.so' } }, 'env'],
    [{ cwd: '/etc' }, 'cwd'], [{ host: 'evil.example' }, 'host'], [{ user: 'root' }, 'user'], [{ file: '/bin/sh' }, 'file'],
  ] as const) {
    const r = await raw({ ...base, ...extra });
    assert.equal(r.frames[0]?.type, 'error', JSON.stringify(r));
    assert.equal(r.frames[0].code, 'bad_request');
    assert.match(r.frames[0].message, new RegExp(`Unrecognized key.*"${key}"`));
    assert.equal(r.code, 4400);
  }
  for (const bad of [{ ...base, kind: 'bash' }, { ...base, environment: '../production' }, { ...base, cols: 1e9 }, 'not json', { ...base, type: 'resize' }]) {
    const r = await raw(bad);
    assert.equal(r.frames[0]?.code, 'bad_request', JSON.stringify(r));
  }
  // Open, then try to slip a command into a resize, or send a frame type that does not exist: the session ends.
  const opens = (await p.cp.pool.query('select count(*)::int as n from ops.shell_sessions')).rows[0].n as number;
  for (const then of [{ type: 'resize', cols: 80, rows: 24, command: 'id' }, { type: 'exec', command: 'id' }]) {
    const r = await raw(base, then);
    assert.equal(r.frames[0].type, 'opened', JSON.stringify(r));
    assert.ok(r.frames.some((f) => f.type === 'error' && f.code === 'bad_request'), JSON.stringify(r));
  }
  assert.equal((await p.cp.pool.query('select count(*)::int as n from ops.shell_sessions')).rows[0].n, opens + 2);
  await eventually('those sessions ended', async () => p.cp.server.shells.open === 0);
  void SHELL_PATH;
});

test('input the process does not read is not piled up on the server: it stops reading the socket until the process catches up', async () => {
  const ws = new WebSocket(shellUrl(p.cp.server.url));
  let out = '';
  const closed = new Promise<void>((r) => ws.on('close', () => r()));
  ws.on('message', (d, bin) => {
    if (bin) out += d.toString();
    else if (JSON.parse(d.toString()).type === 'opened') {
      ws.send(Buffer.from('stty -echo; sleep 6; cat > /dev/null; echo done-$((40+2))\r'));
    }
  });
  try {
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'open', token: developer.token, project: 'shell', environment: 'dev-feature', kind: 'shell', cols: 80, rows: 24 }));
    await eventually('the command line echoed', async () => out.includes('done-$'));
    // 16 MiB of lines while the shell sleeps and reads nothing.
    const line = Buffer.from(`${'x'.repeat(1023)}\n`);
    const chunk = Buffer.concat(Array.from({ length: 64 }, () => line));
    for (let i = 0; i < 256; i++) ws.send(chunk);
    await new Promise((r) => setTimeout(r, 3000));
    // The server answers others meanwhile (a write to a full pty must not block its event loop).
    const t = performance.now();
    assert.equal((await fetch(new URL('/api/health', p.cp.server.url))).status, 200);
    const healthMs = performance.now() - t;
    console.log(`# /api/health while a shell's input waits: ${healthMs.toFixed(0)} ms`);
    assert.ok(healthMs < 2000, `${healthMs} ms`);
    assert.ok(ws.bufferedAmount > 4 * 2 ** 20, `the server stopped reading: ${ws.bufferedAmount} bytes still with the client`);
    const queued = p.cp.server.shells.stats.maxInputQueued;
    console.log(`# input waiting on the server at most: ${(queued / 2 ** 20).toFixed(2)} MiB of 16 MiB sent`);
    assert.ok(queued <= 1.1 * 2 ** 20, `${queued} bytes waited in the server`);
    // Once cat reads, the rest flows; Ctrl-D ends cat's input.
    ws.send(Buffer.from('\x04'));
    await eventually('cat to have read it all', async () => out.includes('done-42'), 120_000);
    assert.equal(ws.bufferedAmount, 0);
    ws.send(Buffer.from('exit\r'));
    await closed;
  } finally {
    ws.terminate();
  }
});

test('at most four shells per person on a server; the fifth is refused until one closes', async () => {
  const open4 = [1, 2, 3, 4].map(() => open(developer, 'dev-feature', 'shell'));
  await Promise.all(open4.map((s) => s.opened));
  const fifth = await open(developer, 'dev-feature', 'shell').end;
  assert.equal(fifth.error?.code, 'too_many', JSON.stringify(fifth));
  // Another person is not held back by it.
  const other = open(p.admin, 'dev-feature', 'psql');
  await other.opened;
  other.conn.close();
  open4[0]!.type('exit');
  await open4[0]!.end;
  const again = open(developer, 'dev-feature', 'shell');
  await again.opened;
  for (const s of [...open4.slice(1), again]) s.conn.close();
  await eventually('all closed', async () => p.cp.server.shells.open === 0, 15_000);
});

test('ssh runtime: bash and odoo-bin shell on the runtime\'s host through ssh -tt with a fixed command; a closed socket hangs the remote session up', async () => {
  // An sshd of our own on loopback (the "other host"), root by key only; the key is the run user's.
  const dir = join(p.scratch, 'sshd');
  const { port: sshPort, process: sshd } = await startLoopbackSshd(dir);
  try {
    chownToRunUser(join(dir, 'client_key'));
    // The host's checkout and its Odoo's own configuration (its database password is the host's, not OdooOps').
    const host = join(p.scratch, 'remote');
    const checkout = join(host, 'addons');
    mkdirSync(join(checkout, 'shell_probe'), { recursive: true });
    writeFileSync(join(checkout, 'shell_probe', '__init__.py'), '');
    writeFileSync(join(checkout, 'shell_probe', '__manifest__.py'), "{'name': 'Shell probe', 'version': '17.0.1.0', 'depends': ['base']}\n");
    const conf = join(host, 'odoo.conf');
    writeFileSync(conf, `[options]\ndb_host = ${p.odooPg.host}\ndb_port = ${p.odooPg.port}\ndb_user = odoo\ndb_password = ${p.password}\ndata_dir = ${join(host, 'data')}\n`);
    await p.addInfra({ runtimes: { ...p.registry.runtimes, 'ssh-odoo': {
      kind: 'ssh', host: 'root@127.0.0.1', port: sshPort, identityFile: join(dir, 'client_key'), checkoutDir: checkout, projects: ['shell'],
      odooBin: odoo17.odooBin, odooArgs: ['-c', conf], odooAddonsPath: [join(odoo17.dir, 'addons'), join(odoo17.dir, 'odoo', 'addons')],
      restart: ['true'], healthUrl: 'http://127.0.0.1:9/web/health', shells: true,
    } } });
    const set = await p.admin.call('PUT', '/api/projects/shell/environments/dev-remote/deploy-target', { runtime: 'ssh-odoo' });
    assert.equal(set.status, 200, JSON.stringify(set.body));

    const sh = open(developer, 'dev-remote', 'shell');
    assert.match((await sh.opened).where, /^a login shell on root@127\.0\.0\.1 in .*\/remote\/addons$/);
    sh.type('echo "db=$PGDATABASE dir=$PWD end-$((2*3))"; exit 4');
    const m = await sh.waitFor(/db=(\S*) dir=(\S+) end-6/, 30_000);
    assert.deepEqual([m[1], m[2]], ['shell_remote', checkout]);
    assert.equal((await sh.end).exit?.code, 4);

    const t = performance.now();
    const py = open(developer, 'dev-remote', 'odoo');
    assert.match((await py.opened).where, /^odoo-bin shell of the runtime ssh-odoo on root@127\.0\.0\.1$/);
    await py.waitFor(/>>> $/m, 120_000);
    console.log(`# odoo-bin 17 shell over ssh ready after ${since(t)}`);
    const n = (await p.sql<{ n: string }>('shell_remote', 'select count(*) as n from res_partner where active'))[0]!.n;
    py.type(`print('remote-partners=%d' % env['res.partner'].search_count([]))`);
    assert.equal(Number((await py.waitFor(/remote-partners=(\d+)/))[1]), Number(n));
    py.type('exit()');
    assert.equal((await py.end).exit?.code, 0);

    // The socket closes: the ssh client is ended, sshd hangs the remote session up, its job goes with it.
    const gone = open(developer, 'dev-remote', 'shell');
    await gone.opened;
    gone.type('sleep 1011 & echo bg-$((5+5))');
    await gone.waitFor(/bg-10/, 30_000);
    const remoteSleep = () => commandLines().some((c) => /^sleep 1011 $/.test(c));
    assert.ok(remoteSleep());
    gone.conn.close();
    await eventually('the remote job ended', async () => !remoteSleep() && p.cp.server.shells.open === 0, 20_000);
  } finally {
    sshd.kill();
  }
});

const CLI = join(import.meta.dirname, '..', 'server', 'cli', 'main.ts');
const cliArgs = (user: TestUser, ...args: string[]) => [CLI, 'env', 'shell', 'shell', ...args, '--url', p.cp.server.url, '--token', user.token];

/** The CLI with standard input from a pipe: what it printed and its exit code. */
function cliPiped(user: TestUser, input: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(user, ...args), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not end within 60 s: ${JSON.stringify({ stdout, stderr })}`));
    }, 60_000);
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
    child.stdin.end(input);
  });
}

test('CLI, piped: psql answers, the remote exit code is the command\'s, production wants --yes-production', async () => {
  const psql = await cliPiped(developer, 'select current_database();\n', 'dev-feature', '--psql');
  assert.equal(psql.code, 0, psql.stderr);
  assert.match(psql.stdout, /^\s*shell_dev\s*$/m);
  assert.match(psql.stderr, /psql on shell_dev \(database server odoo-pg\) on shell\/dev-feature \(development\)/);
  const seven = await cliPiped(developer, 'exit 7\n', 'dev-feature');
  assert.equal(seven.code, 7, seven.stderr);
  const prod = await cliPiped(p.admin, 'exit\n', 'production', '--odoo');
  assert.equal(prod.code, 3, prod.stderr);
  assert.match(prod.stderr, /needs an explicit confirmation/);
  assert.match(prod.stderr, /--yes-production/);
  const viewerTry = await cliPiped(viewer, 'id\n', 'dev-feature');
  assert.equal(viewerTry.code, 3, viewerTry.stderr);
  assert.match(viewerTry.stderr, /may not open shells/);
  const both = await cliPiped(developer, '', 'dev-feature', '--psql', '--odoo');
  assert.equal(both.code, 2, both.stderr);
  // The admins' view of what happened, in the CLI.
  const log = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'env', 'shell-log', 'shell', '--url', p.cp.server.url, '--token', p.admin.token], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(log.code, 0);
  assert.match(log.out, /psql on dev-feature \(development\) by [0-9a-f-]{36} from 127\.0\.0\.1:\d+\n {2}ended .*: exited \(exit 0\)/);
});

test('CLI on a terminal: raw mode, the window\'s size follows SIGWINCH, the exit code comes back', async () => {
  const term = spawnPty(process.execPath, cliArgs(developer, 'dev-feature'), { cols: 100, rows: 30, env: { ...process.env, TERM: 'xterm' } as Record<string, string> });
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
  const waitFor = (re: RegExp) => eventually(`${re} on the terminal (so far: ${JSON.stringify(out.slice(-500))})`, async () => out.match(re), 30_000);
  try {
    await waitFor(/bash as \S+ in the checkout of dev-feature/);
    term.write('stty size; echo size-$((1+1))\r');
    await waitFor(/^30 100\r?$/m);
    await waitFor(/size-2/);
    term.resize(132, 50);
    // Raw mode: a Ctrl-C goes to the remote side (it interrupts the sleep there), not to the CLI.
    term.write('sleep 30\r');
    await new Promise((r) => setTimeout(r, 500));
    term.write('\x03');
    term.write('stty size\r');
    await waitFor(/^50 132\r?$/m);
    term.write('exit 5\r');
    assert.equal(await exited, 5, out.slice(-2000));
  } finally {
    term.kill();
  }
});

after(() => {
  if (process.env.SHELL_TEST_LOG) console.log(serverLog.filter((l) => l.startsWith('shell')).join('\n'));
});
