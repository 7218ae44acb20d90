// Broadcast from Database, checked in the database itself: the realtime.messages rows that
// realtime.send stores for log batches (topic run:<id>) and run state changes (topic project:<uuid>),
// the policies that decide who may join those private topics (Supabase's own join check, in SQL), and
// the redaction of known secrets before anything is stored or broadcast.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { closeFixtures } from './fixtures/executors.ts';
import { addMember, eventually, seedProject, startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';
import { LogBatcher } from '../server/worker/log-batcher.ts';
import { LOG_MESSAGE_MAX_BYTES, SUPABASE_ID_BYTES } from '../server/realtime/budget.ts';
import { migrate } from '../server/db/migrate.ts';

let cp: TestControlPlane;
let admin: TestUser;
let outsider: TestUser;
let viewer: TestUser;
let projectA: string;
let projectB: string;
let envs: Record<string, string>;

const PASSWORD_ENV = 'ODOOOPS_DB_RB_TEST_PASSWORD';
const password = `pw-${randomBytes(9).toString('base64url')}`;

before(async () => {
  process.env[PASSWORD_ENV] = password;
  // The operator's registry: a server whose password the worker resolves (what test.secret logs).
  cp = await startControlPlane({
    executorModules: ['test/fixtures/executors.ts'],
    infra: { databaseServers: { 'secret-db': { host: '127.0.0.1', port: 9, password: `env:${PASSWORD_ENV}`, projects: ['rb-a'] } } },
  });
  // Without Supabase, realtime.send keeps only what a gateway watches; '*' keeps every broadcast.
  await cp.pool.query(`insert into realtime.odooops_gateway_topics (topic, gateway) values ('*', 'this test')`);
  admin = await cp.user();
  outsider = await cp.user();
  viewer = await cp.user();
  const a = await seedProject(cp.pool, admin.id, 'rb-a', [
    { name: 'lines', stage: 'development' }, { name: 'long', stage: 'development' }, { name: 'state', stage: 'development' },
    { name: 'secret', stage: 'development' }, { name: 'batcher', stage: 'development' },
  ]);
  projectA = a.projectId;
  envs = a.envIds;
  await addMember(cp.pool, projectA, viewer.id, 'viewer');
  projectB = (await seedProject(cp.pool, outsider.id, 'rb-b', [{ name: 'dev', stage: 'development' }])).projectId;
  await cp.pool.query(`update ops.environments set db_server = 'secret-db' where id = $1`, [envs.secret]);
});
after(async () => {
  delete process.env[PASSWORD_ENV];
  await closeFixtures();
  await cp?.close();
});

/** Queues as the admin, through the API (the path members use). */
async function queue(env: string, kind: string, params: object): Promise<number> {
  const r = await admin.call('POST', `/api/projects/rb-a/environments/${env}/runs`, { kind, params });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as number;
}

async function waitStatus(id: number, status: string, timeoutMs = 30_000) {
  return eventually(`run ${id} ${status}`, async () => {
    const { rows } = await cp.pool.query('select * from ops.runs where id = $1', [id]);
    return rows[0]?.status === status ? rows[0] : null;
  }, timeoutMs);
}

interface Stored {
  seq: number;
  ts: Date;
  stream: string;
  line: string;
}
const storedLines = async (id: number): Promise<Stored[]> =>
  (await cp.pool.query('select seq, ts, stream, line from ops.run_logs where run_id = $1 order by seq', [id])).rows;

interface Message {
  id: number;
  event: string;
  payload: any;
  private: boolean;
  bytes: number;
}
const messages = async (topic: string, event: string): Promise<Message[]> =>
  (await cp.pool.query(
    `select id, event, payload, private, octet_length(payload::text) as bytes from realtime.messages
     where topic = $1 and event = $2 and extension = 'broadcast' order by id`,
    [topic, event],
  )).rows;

/**
 * The log messages of a run announce its stored lines exactly once, in order, in contiguous ranges
 * (first_seq..last_seq), each under the budget's size, and each carries all the lines it announces,
 * identical to the stored ones, or none and says partial. Returns how many lines travelled in messages.
 */
function assertCoversLog(msgs: Message[], stored: Stored[], runId: number): number {
  assert.ok(msgs.length > 0, 'some log messages');
  let next = 1;
  let carried = 0;
  for (const m of msgs) {
    const p = m.payload;
    assert.equal(m.private, true);
    assert.equal(p.run_id, runId);
    assert.equal(p.first_seq, next, `message ${m.id} starts where the previous one ended`);
    assert.ok(p.last_seq >= p.first_seq);
    assert.ok(m.bytes + SUPABASE_ID_BYTES <= LOG_MESSAGE_MAX_BYTES, `message ${m.id} is ${m.bytes} bytes`);
    next = p.last_seq + 1;
    const size = p.last_seq - p.first_seq + 1;
    assert.ok(p.lines.length === 0 || p.lines.length === size, `message ${m.id}: all of its lines or none`);
    assert.equal(p.partial === true, p.lines.length < size, `message ${m.id}: partial says whether lines are missing`);
    p.lines.forEach((b: { seq: number; ts: string; stream: string; line: string }, i: number) => {
      const s = stored[b.seq - 1]!;
      assert.equal(b.seq, p.first_seq + i, 'in order');
      assert.equal(b.seq, s.seq);
      assert.equal(b.stream, s.stream);
      assert.equal(b.ts, s.ts.toISOString(), 'timestamps in the format the API uses');
      assert.equal(b.line, s.line);
    });
    carried += p.lines.length;
  }
  assert.equal(next - 1, stored.length, 'every stored line was announced once');
  return carried;
}

test('a run\'s log is announced in small messages, never per line: contiguous, complete, in order', async () => {
  // 1500 lines at once: announced in a message or two that carry none of them (the API has them).
  const id = await queue('lines', 'test.lines', { count: 1500 });
  const run = await waitStatus(id, 'succeeded');
  const stored = await storedLines(id);
  assert.equal(stored.length, 1501, 'the worker\'s first system line and 1500 lines');
  assert.equal(Number(run.log_seq), stored.length);
  const msgs = await messages(`run:${id}`, 'log');
  assert.ok(msgs.length <= 3, `${msgs.length} messages for ${stored.length} lines`);
  assert.ok(assertCoversLog(msgs, stored, id) < 100, 'the flood stays in the log table');
  // Nothing else on the run's topic.
  const { rows } = await cp.pool.query(`select distinct event from realtime.messages where topic = $1`, [`run:${id}`]);
  assert.deepEqual(rows.map((r) => r.event), ['log']);

  // A few short lines travel in the messages: a viewer that is caught up reads nothing from the API.
  const few = await queue('lines', 'test.lines', { count: 5 });
  await waitStatus(few, 'succeeded');
  const fewStored = await storedLines(few);
  assert.equal(assertCoversLog(await messages(`run:${few}`, 'log'), fewStored, few), fewStored.length);
});

/**
 * Appends lines to a running run as its worker does (ops.append_run_logs with its lease), and returns
 * the log messages that appeared on its topic meanwhile.
 */
async function append(id: number, worker: string, lines: string[], announce: boolean): Promise<Message[]> {
  const before = (await messages(`run:${id}`, 'log')).length;
  await cp.pool.query('select ops.append_run_logs($1, $2, $3::text[], $4::text[], $5::text[], $6)', [
    id, worker, lines.map(() => null), lines.map(() => 'stdout'), lines, announce,
  ]);
  return (await messages(`run:${id}`, 'log')).slice(before);
}

test('a message carries its lines only when they fit in 2 KB as Supabase stores it; long lines stay in the table', async () => {
  // Whole lines, never cut: a message with its lines is at most LOG_MESSAGE_MAX_BYTES with Supabase's
  // id; when they would not fit (measured here by PostgreSQL's own jsonb text), it carries none.
  const id = await queue('long', 'test.block', { blockOn: [1] });
  const { lease_owner: worker } = await waitStatus(id, 'running');
  // The worker's own two lines first, so that its batcher has nothing left to announce.
  await eventually('the worker\'s lines announced', async () => (await messages(`run:${id}`, 'log')).at(-1)?.payload.last_seq === 2);
  const quote = '"'.repeat(1000); // 1000 bytes of text, 2000 once escaped in JSON
  const cases: [string, string[]][] = [
    ['ten 100-byte lines', Array.from({ length: 10 }, () => 'a'.repeat(100))],
    ['twelve 100-byte lines', Array.from({ length: 12 }, () => 'b'.repeat(100))],
    ['a 1700-byte line', ['c'.repeat(1700)]],
    ['a 1900-byte line', ['d'.repeat(1900)]],
    ['a line of quotes, twice as long escaped', [quote]],
    ['thirty 1-byte lines', Array.from({ length: 30 }, () => 'e')],
    ['forty 20 KB lines', Array.from({ length: 40 }, () => 'f'.repeat(20_000))],
    ['a 300 KB line', ['g'.repeat(300_000)]],
  ];
  const outcome: Record<string, boolean> = {};
  for (const [what, lines] of cases) {
    const [m, ...more] = await append(id, worker, lines, true);
    assert.ok(m && more.length === 0, `${what}: one message`);
    assert.ok(m.bytes + SUPABASE_ID_BYTES <= LOG_MESSAGE_MAX_BYTES, `${what}: ${m.bytes} bytes`);
    outcome[what] = m.payload.lines.length > 0;
    // The same message with all of its lines, as PostgreSQL renders it: carried exactly when that fits.
    const { rows } = await cp.pool.query(
      `select octet_length((($1::jsonb - 'partial') || jsonb_build_object('lines', (
         select jsonb_agg(jsonb_build_object('seq', seq, 'ts', ops.iso_time(ts), 'stream', stream, 'line', line) order by seq)
         from ops.run_logs where run_id = $2 and seq between $3 and $4)))::text) as bytes`,
      [m.payload, id, m.payload.first_seq, m.payload.last_seq],
    );
    assert.equal(outcome[what], rows[0].bytes + SUPABASE_ID_BYTES <= LOG_MESSAGE_MAX_BYTES, `${what}: with its lines it would be ${rows[0].bytes} bytes`);
  }
  assert.deepEqual(outcome, {
    'ten 100-byte lines': true, 'twelve 100-byte lines': false, 'a 1700-byte line': true, 'a 1900-byte line': false,
    'a line of quotes, twice as long escaped': false, 'thirty 1-byte lines': false, 'forty 20 KB lines': false, 'a 300 KB line': false,
  });

  // Writes that do not announce leave their lines to the next announcement, which names them all.
  assert.deepEqual(await append(id, worker, ['h1', 'h2'], false), []);
  assert.deepEqual(await append(id, worker, ['h3'], false), []);
  const [later] = await append(id, worker, [], true);
  assert.deepEqual(later!.payload.lines.map((l: { line: string }) => l.line), ['h1', 'h2', 'h3']);
  assert.deepEqual(await append(id, worker, [], true), [], 'nothing left to announce: no message');

  // Unannounced lines at the end are announced by the end itself (a finish with no lines of its own;
  // the worker, blocked in its executor, then finds the run over and leaves it).
  await append(id, worker, ['last words'], false);
  await cp.pool.query(`select ops.finish_run($1, $2, 'succeeded')`, [id, worker]);
  const stored = await storedLines(id);
  const msgs = await messages(`run:${id}`, 'log');
  assertCoversLog(msgs, stored, id);
  assert.deepEqual(msgs.at(-1)!.payload.lines.map((l: { line: string }) => l.line), ['last words']);
  assert.equal(stored.find((l) => l.line.startsWith('g'))!.line.length, 300_000, 'the table keeps long lines whole');
});

test('run state changes are broadcast on the project topic, one message per transition', async () => {
  const ok = await queue('state', 'test.lines', { count: 3 });
  const okRun = await waitStatus(ok, 'succeeded');
  const runMsgs = async (id: number) => (await messages(`project:${projectA}`, 'run')).map((m) => m.payload).filter((p) => p.id === id);
  const okMsgs = await runMsgs(ok);
  assert.deepEqual(okMsgs.map((p) => [p.status, p.attempts]), [['queued', 0], ['running', 1], ['succeeded', 1]]);
  const last = okMsgs.at(-1)!;
  assert.equal(last.project_id, projectA);
  assert.equal(last.environment_id, envs.state);
  assert.equal(last.kind, 'test.lines');
  assert.equal(last.error, null);
  assert.equal(last.cancel_requested, false);
  assert.equal(last.last_seq, Number(okRun.log_seq), 'the finish counts the last batch, written in the same transaction');
  assert.equal(last.queued_at, okRun.queued_at.toISOString());
  assert.equal(last.started_at, okRun.started_at.toISOString());
  assert.equal(last.finished_at, okRun.finished_at.toISOString());
  assert.ok(!(await messages(`run:${ok}`, 'run')).length, 'state goes to the project topic only');

  // A run held long enough for several heartbeats (lease 5 s: one every ~1.7 s), then cancelled:
  // lease renewals broadcast nothing; the cancel request and the end do.
  const held = await queue('state', 'test.block', { blockOn: [1] });
  await waitStatus(held, 'running');
  const beats = async () => (await cp.pool.query('select heartbeat_at from ops.runs where id = $1', [held])).rows[0].heartbeat_at as Date;
  const firstBeat = await beats();
  await eventually('two heartbeats', async () => (await beats()).getTime() - firstBeat.getTime() > 2500, 10_000);
  assert.equal((await admin.call('POST', `/api/runs/${held}/cancel`)).status, 200);
  const cancelled = await waitStatus(held, 'cancelled');
  const heldMsgs = await runMsgs(held);
  assert.deepEqual(heldMsgs.map((p) => [p.status, p.cancel_requested]), [
    ['queued', false], ['running', false], ['running', true], ['cancelled', true],
  ]);
  assert.equal(heldMsgs.at(-1)!.error, 'cancelled by a member');
  assert.equal(heldMsgs.at(-1)!.last_seq, Number(cancelled.log_seq));
  // The system line of the cancel request went out on the run's topic, counted in the state message.
  const logMsgs = await messages(`run:${held}`, 'log');
  const cancelLine = logMsgs.flatMap((m) => m.payload.lines).find((l: { line: string }) => l.line === 'cancel requested');
  assert.equal(cancelLine?.stream, 'system');
  assert.equal(heldMsgs[2]!.last_seq, cancelLine.seq);
  assertCoversLog(logMsgs, await storedLines(held), held);
});

/**
 * Supabase Realtime's join check, as it runs it: in a transaction, store a probe message on the topic
 * as the privileged role, then as the user (role authenticated, their claims, realtime.topic set to the
 * topic) see whether the policies let them read it. Always rolled back.
 */
async function canJoin(userId: string | null, topic: string, extension = 'broadcast'): Promise<boolean> {
  const c = await cp.pool.connect();
  try {
    await c.query('begin');
    const { rows } = await c.query(
      `insert into realtime.messages (topic, extension, event, payload, private) values ($1, $2, 'probe', '{}', true) returning id`,
      [topic, extension],
    );
    await c.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true), set_config('realtime.topic', $2, true)`, [
      JSON.stringify(userId ? { sub: userId, role: 'authenticated' } : { role: 'authenticated' }), topic,
    ]);
    const seen = await c.query('select id from realtime.messages where topic = $1 and extension = $2 and id = $3', [topic, extension, rows[0].id]);
    return seen.rows.length === 1;
  } finally {
    await c.query('rollback');
    c.release();
  }
}

test('only members may join a project\'s private topics (realtime.messages policies)', async () => {
  const runA = await queue('state', 'test.lines', { count: 1 });
  await waitStatus(runA, 'succeeded');
  const { rows } = await cp.pool.query(
    `insert into ops.runs (project_id, environment_id, kind) select project_id, id, 'test.lines' from ops.environments where project_id = $1 returning id`,
    [projectB],
  );
  const runB = Number(rows[0].id);

  // Members, whatever their role, join the project's topic and its runs' topics.
  for (const u of [admin, viewer]) {
    assert.equal(await canJoin(u.id, `run:${runA}`), true);
    assert.equal(await canJoin(u.id, `project:${projectA}`), true);
    assert.equal(await canJoin(u.id, `run:${runB}`), false);
    assert.equal(await canJoin(u.id, `project:${projectB}`), false);
  }
  // A member of another project only.
  assert.equal(await canJoin(outsider.id, `run:${runA}`), false);
  assert.equal(await canJoin(outsider.id, `project:${projectA}`), false);
  assert.equal(await canJoin(outsider.id, `project:${projectB}`), true);
  // No user at all, and presence (not broadcast).
  assert.equal(await canJoin(null, `project:${projectA}`), false);
  assert.equal(await canJoin(admin.id, `project:${projectA}`, 'presence'), false);
  // Malformed, unknown, hostile: refused, never an error (an error would fail the join differently).
  for (const topic of [
    'run:abc', 'run:99999999999999999999', 'run:9223372036854775807', 'run:-1', 'run:0', 'run:', 'run:1.5', `run:${runA} `, ` run:${runA}`,
    `run:0${runA}`, 'project:not-a-uuid', `project:${projectA.toUpperCase()}`, `project:${projectA}x`, 'project:', 'project',
    `realtime:project:${projectA}`, '', 'nonsense', `run:${runA}'; select 1; --`, 'project:00000000-0000-0000-0000-000000000000',
    `run:${runA + 1_000_000}`,
  ]) {
    assert.equal(await canJoin(admin.id, topic), false, JSON.stringify(topic));
  }

  // Joining one topic does not open the others: with realtime.topic set to a topic the user may join,
  // messages of other topics stay hidden, and the real log messages of a run can be read.
  const c = await cp.pool.connect();
  try {
    await c.query('begin');
    await c.query(`select realtime.send('{"x":1}', 'log', $1, true)`, [`run:${runB}`]);
    await c.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true), set_config('realtime.topic', $2, true)`, [
      JSON.stringify({ sub: admin.id, role: 'authenticated' }), `project:${projectA}`,
    ]);
    const visible = await c.query(`select distinct topic from realtime.messages`);
    assert.deepEqual(visible.rows.map((r) => r.topic), [`project:${projectA}`]);
    await c.query(`select set_config('realtime.topic', $1, true)`, [`run:${runA}`]);
    const logs = await c.query(`select payload from realtime.messages where event = 'log'`);
    assert.ok(logs.rows.length > 0 && logs.rows.every((r) => r.payload.run_id === runA));
  } finally {
    await c.query('rollback');
    c.release();
  }
});

test('known secrets never reach the log table nor a broadcast', async () => {
  const token = `tok-${randomBytes(12).toString('hex')}`;
  const ok = await queue('secret', 'test.secret', { token });
  const failed = await queue('secret', 'test.secret', { token, fail: true });
  await waitStatus(ok, 'succeeded');
  const failedRun = await waitStatus(failed, 'failed');

  const lines = (await storedLines(ok)).map((l) => l.line);
  assert.deepEqual(lines.slice(1), [
    'connecting with password=[redacted] to odoo_rb_a_secret',
    '[redacted], then the token', // two passwords side by side: one span
    'Authorization: Bearer [redacted]; password again: [redacted].',
  ]);
  assert.equal(failedRun.error, 'could not use token [redacted] with password [redacted]');
  const failedLines = (await storedLines(failed)).map((l) => l.line);
  assert.equal(failedLines.at(-1), 'failed: could not use token [redacted] with password [redacted]');

  const everything = [...lines, ...failedLines, failedRun.error as string];
  for (const topic of [`run:${ok}`, `run:${failed}`, `project:${projectA}`]) {
    const { rows } = await cp.pool.query(`select payload::text as p from realtime.messages where topic = $1`, [topic]);
    assert.ok(rows.length > 0);
    everything.push(...rows.map((r) => r.p as string));
  }
  for (const text of everything) {
    assert.ok(!text.includes(password), `password leaked: ${text.slice(0, 200)}`);
    assert.ok(!text.includes(token), `token leaked: ${text.slice(0, 200)}`);
  }
  assert.ok(everything.some((t) => t.includes('[redacted]') && t.includes('"lines"')), 'the broadcast carries the redacted lines');
  const { rows } = await cp.pool.query(`select count(*)::int as n from ops.run_logs where line like '%' || $1 || '%' or line like '%' || $2 || '%'`, [password, token]);
  assert.equal(rows[0].n, 0);
});

test('a secret registered while lines still wait in the batcher hides them too', async () => {
  // Write as the worker that holds a real run (its lease), through the real append function.
  const id = await queue('batcher', 'test.block', { blockOn: [1] });
  const run = await waitStatus(id, 'running');
  const batcher = new LogBatcher(cp.pool, id, run.lease_owner, { intervalMs: 60_000 });
  const secret = `late-${randomBytes(6).toString('hex')}`;
  await batcher.log(`before registration: ${secret}`);
  batcher.redact(secret);
  batcher.redact('abc'); // too short to count: left alone
  await batcher.log(`after registration: ${secret} abc`);
  await batcher.close();
  assert.equal((await admin.call('POST', `/api/runs/${id}/cancel`)).status, 200);
  await waitStatus(id, 'cancelled');
  const lines = (await storedLines(id)).map((l) => l.line);
  assert.ok(lines.includes('before registration: [redacted]'), lines.join('\n'));
  assert.ok(lines.includes('after registration: [redacted] abc'));
  const { rows } = await cp.pool.query(`select count(*)::int as n from realtime.messages where topic = $1 and payload::text like '%' || $2 || '%'`, [`run:${id}`, secret]);
  assert.equal(rows[0].n, 0);
});

test('the migrations apply where realtime.messages is Supabase\'s own table (partitioned, uuid ids, send as invoker)', async () => {
  const name = `rb_supabase_${randomBytes(3).toString('hex')}`;
  await cp.pool.query(`create database ${name}`);
  const url = new URL(cp.server.databaseUrl);
  url.pathname = `/${name}`;
  const c = new pg.Client(url.toString());
  await c.connect();
  try {
    // Supabase Realtime's schema as its migrations leave it (abridged: what the migrations touch).
    await c.query(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
          create role supabase_realtime_admin nologin noinherit;
        end if;
      end $$;
      create schema realtime;
      create table realtime.messages (
        topic text not null, extension text not null, payload jsonb, event text, private boolean default false,
        updated_at timestamp not null default now(), inserted_at timestamp not null default now(),
        id uuid not null default gen_random_uuid(), primary key (id, inserted_at)
      ) partition by range (inserted_at);
      create table realtime.messages_default partition of realtime.messages default;
      alter table realtime.messages enable row level security;
      create function realtime.topic() returns text language sql stable as
        $f$ select nullif(current_setting('realtime.topic', true), '')::text $f$;
      create function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
      language plpgsql as $f$
      declare
        generated_id uuid;
        final_payload jsonb;
      begin
        begin
          generated_id := gen_random_uuid();
          final_payload := case when payload ? 'id' then payload else jsonb_set(payload, '{id}', to_jsonb(generated_id)) end;
          execute format('set local realtime.topic to %L', topic);
          insert into realtime.messages (id, payload, event, topic, private, extension)
          values (generated_id, final_payload, event, topic, private, 'broadcast');
        exception when others then
          raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
        end;
      end $f$;
      alter table realtime.messages owner to supabase_realtime_admin;
      alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
      alter function realtime.topic() owner to supabase_realtime_admin;
    `);
    await migrate(c);
    // The shims left Supabase's objects alone, the policy is on Supabase's table.
    const send = await c.query(`select prosecdef, pg_get_userbyid(proowner) as owner from pg_proc where oid = 'realtime.send(jsonb,text,text,boolean)'::regprocedure`);
    assert.deepEqual(send.rows[0], { prosecdef: false, owner: 'supabase_realtime_admin' });
    const policies = await c.query(`select policyname from pg_policies where schemaname = 'realtime' and tablename = 'messages' order by 1`);
    assert.deepEqual(policies.rows.map((r) => r.policyname), ['ops_members_receive_broadcasts']);

    // Broadcasts land there, and a member passes the join check on it.
    const user = '7d4f0a56-3c1e-4b7a-9a51-0d7e2c9b8f10';
    const { rows: p } = await c.query(`insert into ops.projects (slug, name, created_by) values ('sb', 'sb', $1) returning id`, [user]);
    const { rows: e } = await c.query(`insert into ops.environments (project_id, name, stage, db_name) values ($1, 'dev', 'development', 'x') returning id`, [p[0].id]);
    const { rows: r } = await c.query(`insert into ops.runs (project_id, environment_id, kind) values ($1, $2, 'test.lines') returning id`, [p[0].id, e[0].id]);
    await c.query(`select ops.log_system($1, 'hello')`, [r[0].id]);
    const sent = await c.query(`select topic, event, payload from realtime.messages order by event`);
    assert.deepEqual(sent.rows.map((m) => [m.topic, m.event]), [[`run:${r[0].id}`, 'log'], [`project:${p[0].id}`, 'run']]);
    assert.equal(sent.rows[0].payload.lines[0].line, 'hello');
    // Supabase's realtime.send adds an id to what it stores: the longest line a message still carries
    // leaves it within the budget's size with that id; one byte more and the line stays in the table.
    const announced = async (line: string) => {
      await c.query(`select ops.log_system($1, $2)`, [r[0].id, line]);
      const { rows } = await c.query(`select payload, octet_length(payload::text) as bytes from realtime.messages where event = 'log' order by inserted_at desc, (payload->>'last_seq')::int desc limit 1`);
      assert.ok(typeof rows[0].payload.id === 'string', 'Supabase added its id');
      assert.ok(rows[0].bytes <= LOG_MESSAGE_MAX_BYTES, `${rows[0].bytes} bytes stored`);
      return rows[0].payload.lines.length === 1;
    };
    assert.equal(await announced('x'.repeat(1796)), true);
    assert.equal(await announced('y'.repeat(1797)), false);
    for (const [topic, expected] of [[`project:${p[0].id}`, true], [`run:${r[0].id}`, true], ['run:abc', false]] as const) {
      await c.query('begin');
      const probe = await c.query(`insert into realtime.messages (topic, extension) values ($1, 'broadcast') returning id`, [topic]);
      await c.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true), set_config('realtime.topic', $2, true)`, [
        JSON.stringify({ sub: user, role: 'authenticated' }), topic,
      ]);
      const seen = await c.query('select id from realtime.messages where topic = $1 and id = $2', [topic, probe.rows[0].id]);
      await c.query('rollback');
      assert.equal(seen.rows.length === 1, expected, topic);
    }
  } finally {
    await c.end();
    await cp.pool.query(`drop database ${name} with (force)`);
  }
});
