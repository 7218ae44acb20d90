// The control plane on hosted Supabase, simulated on Debian's PostgreSQL 15 (test/helpers/hosted-supabase.ts:
// the platform's roles, schemas and grants, and a named STAND-IN for supautils' policy_grants): the
// shims and every migration applied by hosted Supabase's non-superuser postgres role, the server started
// as that role, and the realtime policies deciding joins the way Supabase Realtime's probe asks them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { MIGRATIONS_DIR, MigrationError, migrate } from '../server/db/migrate.ts';
import { canRead } from '../server/realtime/gateway.ts';
import { closeFixtures } from './fixtures/executors.ts';
import { addMember, eventually, seedProject, startControlPlane, tempHome } from './helpers/control-plane.ts';
import { startHostedSupabase, type HostedSupabase } from './helpers/hosted-supabase.ts';

const run = promisify(execFile);
let hosted: HostedSupabase;
const FILES = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();

before(async () => {
  hosted = await startHostedSupabase();
});
after(async () => {
  await closeFixtures();
  await hosted?.stop();
});

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client(url);
  await c.connect();
  return c;
}

/** What the platform's objects look like: compared before and after OdooOps touched the database. */
async function platformObjects(c: pg.Client) {
  const { rows } = await c.query(`
    select p.oid::regprocedure::text as object, pg_get_userbyid(p.proowner) as owner, p.prosecdef::text as flag, md5(p.prosrc) as body
    from pg_proc p where p.pronamespace in ('auth'::regnamespace, 'realtime'::regnamespace)
    union all
    select c.oid::regclass::text, pg_get_userbyid(c.relowner), c.relrowsecurity::text, coalesce(array_to_string(c.relacl, ','), '')
    from pg_class c where c.relnamespace = 'realtime'::regnamespace and c.relkind in ('r', 'p')
    order by 1`);
  return rows;
}

test('as hosted Supabase\'s postgres, the shims change nothing and every migration applies; without supautils\' policy right they stop at the realtime policy', async () => {
  const platform = await hosted.platform();
  const c = await connect(hosted.url);
  try {
    // The role as Supabase makes it.
    const me = await c.query(`select rolsuper, rolbypassrls, has_schema_privilege('realtime', 'create') as create_realtime,
      pg_has_role('supabase_realtime_admin', 'member') as realtime_admin, pg_get_userbyid(relowner) as messages_owner
      from pg_roles, pg_class where rolname = current_user and pg_class.oid = 'realtime.messages'::regclass`);
    assert.deepEqual(me.rows[0], { rolsuper: false, rolbypassrls: true, create_realtime: false, realtime_admin: false, messages_owner: 'supabase_realtime_admin' });
    const before = await platformObjects(c);

    // Without the stand-in, PostgreSQL's own rule: only realtime.messages' owner may add a policy to it.
    await platform.query('alter event trigger supautils_standin_policy_start disable; alter event trigger supautils_standin_policy_end disable');
    await assert.rejects(migrate(c), /migration 20261122000400_ops_realtime\.sql failed and was rolled back: must be owner of table messages/);
    const partly = await c.query('select name from odooops_migrations.applied order by name');
    assert.deepEqual(partly.rows.map((r) => r.name), FILES.filter((f) => f < '20261122000400'));

    await platform.query('alter event trigger supautils_standin_policy_start enable; alter event trigger supautils_standin_policy_end enable');
    const result = await migrate(c);
    assert.deepEqual(result.applied, FILES.filter((f) => f >= '20261122000400'));
    const all = await c.query('select name from odooops_migrations.applied order by name');
    assert.deepEqual(all.rows.map((r) => r.name), FILES);

    // Auth's and Realtime's objects are as the platform left them (owners, bodies, grants, row level
    // security), and the shims added nothing beside them.
    assert.deepEqual(await platformObjects(c), before);
    const ours = await c.query(`select count(*)::int as n from pg_class where relnamespace = 'realtime'::regnamespace and relowner = 'postgres'::regrole`);
    assert.equal(ours.rows[0].n, 0);
    assert.equal((await c.query(`select to_regclass('realtime.odooops_gateway_topics') as t`)).rows[0].t, null);
    // postgres is what it was: the stand-in's membership lasted one policy statement each.
    const after = await c.query(`select pg_has_role('supabase_realtime_admin', 'member') as m, has_schema_privilege('realtime', 'create') as cr`);
    assert.deepEqual(after.rows[0], { m: false, cr: false });
    // The join policy is on Supabase's table; no insert policy for postgres, which bypasses RLS there.
    const policies = await c.query(`select policyname from pg_policies where schemaname = 'realtime' and tablename = 'messages' order by 1`);
    assert.deepEqual(policies.rows.map((r) => r.policyname), ['ops_members_receive_broadcasts']);
    // The same role cannot do what supautils does not allow it.
    await assert.rejects(c.query('alter table realtime.messages disable row level security'), /must be owner of table messages/);
    await assert.rejects(c.query('create table realtime.mine (id int)'), /permission denied for schema realtime/);
  } finally {
    await c.end();
    await platform.end();
  }
});

test('where a needed object is missing and postgres may not create it, the server stops naming it and what to do', async () => {
  const cases = [
    {
      db: 'no_messages', before: 'drop table realtime.messages',
      error: /the table realtime\.messages is missing, and postgres may not create it \(no CREATE on schema realtime\)/,
      hint: /Realtime creates it/,
    },
    {
      db: 'no_topic', before: 'drop function realtime.topic()',
      error: /the function realtime\.topic\(\) is missing, and postgres may not create it/,
      hint: /grant create on schema realtime to postgres/,
    },
    {
      db: 'rls_off', before: 'alter table realtime.messages disable row level security',
      error: /row level security is off on realtime\.messages, which belongs to supabase_realtime_admin, not postgres/,
      hint: /As supabase_realtime_admin or a superuser run: alter table realtime\.messages enable row level security/,
    },
    {
      db: 'no_select', before: 'revoke select on realtime.messages from authenticated',
      error: /the role authenticated lacks select on table realtime\.messages, and postgres may not grant it/,
      hint: /grant select on table realtime\.messages to authenticated/,
    },
    {
      // Cluster-wide: given back below.
      db: 'no_membership', before: 'revoke service_role from postgres',
      error: /the role postgres is not a member of service_role, which the server switches to for every request/,
      hint: /As a superuser run: grant service_role to postgres/,
    },
  ];
  const urls = new Map<string, string>();
  try {
    for (const k of cases) await refused(k);
  } finally {
    const platform = await hosted.platform();
    await platform.query('grant service_role to postgres');
    await platform.end();
  }
  // `odooops server` says it in one message and the hint, without a stack trace.
  const home = tempHome();
  const cli = await run(process.execPath, ['server/cli/main.ts', 'server', '--database-url', urls.get('no_messages')!, '--home', home], { timeout: 60_000 })
    .then(() => ({ code: 0, stderr: '' }), (err) => ({ code: err.code as number, stderr: String(err.stderr) }));
  rmSync(home, { recursive: true, force: true });
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /^odooops: the Supabase shims stopped: the table realtime\.messages is missing, and postgres may not create it/m);
  assert.match(cli.stderr, /\nOn Supabase, Realtime creates it/);
  assert.doesNotMatch(cli.stderr, /\n\s+at /, 'no stack trace');
  async function refused(k: (typeof cases)[number]) {
    const url = await hosted.project(k.db, { before: k.before });
    urls.set(k.db, url);
    const c = await connect(url);
    try {
      await assert.rejects(migrate(c), (err: Error & { hint?: string }) => {
        assert.ok(err instanceof MigrationError, String(err));
        assert.match(err.message, /^the Supabase shims stopped: /, k.db);
        assert.match(err.message, k.error, k.db);
        assert.match(err.hint ?? '', k.hint, k.db);
        return true;
      });
      // Stopped before anything of OdooOps's was made.
      assert.equal((await c.query(`select to_regnamespace('ops') as s`)).rows[0].s, null, k.db);
    } finally {
      await c.end();
    }
  }
});

test('a server started as postgres broadcasts through Supabase\'s realtime.send, and the realtime policies let members join, not strangers', async () => {
  const url = await hosted.project('served');
  const cp = await startControlPlane({ databaseUrl: url, executorModules: ['test/fixtures/executors.ts'] });
  const platform = await hosted.platform('served');
  try {
    assert.equal(cp.server.mode, 'external');
    const admin = await cp.user();
    const member = await cp.user();
    const stranger = await cp.user();
    const { projectId } = await seedProject(cp.pool, admin.id, 'hosted', [{ name: 'dev', stage: 'development' }]);
    await addMember(cp.pool, projectId, member.id, 'viewer');
    const queued = await admin.call('POST', '/api/projects/hosted/environments/dev/runs', { kind: 'test.lines', params: { count: 3 } });
    assert.equal(queued.status, 201, JSON.stringify(queued.body));
    const id = queued.body.id as number;
    await eventually(`run ${id} succeeded`, async () => (await admin.call('GET', `/api/runs/${id}`)).body.status === 'succeeded', 60_000);

    // Supabase's realtime.send ran as the ops functions' owner (postgres) and stored every broadcast,
    // with the id it adds, in the day's partition.
    const sent = await platform.query(`select tableoid::regclass::text as part, payload from realtime.messages
      where topic = $1 and event = 'log' and extension = 'broadcast' order by inserted_at`, [`run:${id}`]);
    const lines = sent.rows.flatMap((r) => r.payload.lines.map((l: { line: string }) => l.line));
    const stored = await cp.pool.query('select line from ops.run_logs where run_id = $1 order by seq', [id]);
    assert.deepEqual(lines, stored.rows.map((r) => r.line));
    assert.equal(lines.filter((l) => /^line \d x+$/.test(l)).length, 3);
    for (const r of sent.rows) {
      assert.match(r.part, /^realtime\.messages_\d{4}_\d{2}_\d{2}$/);
      assert.match(r.payload.id, /^[0-9a-f-]{36}$/);
    }

    // The gateway's own check, as the server's role (postgres).
    const claims = (sub: string) => ({ sub, role: 'authenticated' });
    for (const [who, user, expected] of [['admin', admin, true], ['member', member, true], ['stranger', stranger, false]] as const) {
      assert.equal(await canRead(cp.pool, claims(user.id), `run:${id}`), expected, `${who} run:${id}`);
      assert.equal(await canRead(cp.pool, claims(user.id), `project:${projectId}`), expected, `${who} project`);
    }

    // Supabase Realtime's own probe (lib/realtime/tenants/authorization.ex): on its connection, a
    // broadcast and a presence row for the topic, then the JWT's role and claims, then what they read.
    const probe = async (role: string, sub: string | null, topic: string) => {
      await platform.query('begin');
      try {
        const ids = (await platform.query(`insert into realtime.messages (topic, extension) values ($1, 'broadcast'), ($1, 'presence') returning id`, [topic])).rows.map((r) => r.id);
        const jwt = JSON.stringify({ role, ...(sub ? { sub } : {}) });
        await platform.query(`select set_config('role', $1, true), set_config('realtime.topic', $2, true), set_config('request.jwt.claims', $3, true),
          set_config('request.jwt.claim.sub', $4, true), set_config('request.jwt.claim.role', $1, true), set_config('request.headers', '{}', true)`,
          [role, topic, jwt, sub ?? '']);
        return (await platform.query(`select extension from realtime.messages where id = any($1::uuid[]) order by 1`, [ids])).rows.map((r) => r.extension);
      } finally {
        await platform.query('rollback');
      }
    };
    assert.deepEqual(await probe('authenticated', member.id, `run:${id}`), ['broadcast'], 'a member reads the run topic');
    assert.deepEqual(await probe('authenticated', member.id, `project:${projectId}`), ['broadcast']);
    assert.deepEqual(await probe('authenticated', stranger.id, `run:${id}`), [], 'a stranger does not');
    assert.deepEqual(await probe('authenticated', stranger.id, `project:${projectId}`), []);
    assert.deepEqual(await probe('anon', null, `run:${id}`), [], 'nor does anon');
    assert.deepEqual(await probe('authenticated', member.id, `run:${id + 1000}`), [], 'nor a member on another run');
  } finally {
    await platform.end();
    await cp.close();
  }
});
