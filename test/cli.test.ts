// The odooops CLI as people and CI pipelines run it: a child process finding the local test server
// through the connection.json it wrote into ODOOOPS_HOME, with its exit codes as the contract.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as C from '../contract/index.ts';
import { call, startControlPlane, type TestControlPlane } from './helpers/control-plane.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const P = 'cli-acme';
const E = 'dev';

let cp: TestControlPlane | undefined;

before(async () => {
  cp = await startControlPlane({ executorModules: ['test/fixtures/executors.ts'] });
  assert.ok(existsSync(join(cp.home, 'connection.json')), 'the test server wrote connection.json');
});

after(async () => {
  await cp?.close();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `odooops ...args` against the test server's home; `env` adds or (with undefined) removes variables. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ODOOOPS_HOME: cp!.home };
  // Whatever the caller's shell has must not redirect the CLI away from the test server.
  delete childEnv.ODOOOPS_URL;
  delete childEnv.ODOOOPS_TOKEN;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['server/cli/main.ts', ...args], { cwd: ROOT, env: childEnv, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`odooops ${args.join(' ')} did not exit normally (${err.code ?? err.signal}): ${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const runIdIn = (text: string) => {
  const m = /\brun (\d+)\b/.exec(text);
  assert.ok(m, `no run id in: ${text}`);
  return Number(m[1]);
};
/** The API as the local user the CLI acts as (the token of connection.json). */
const api = (method: string, path: string, body?: unknown) => call(cp!.server.url, cp!.server.token, method, path, body);

test('project create, env create, env list --json and project list', async () => {
  const created = await cli(['project', 'create', P, '--name', 'Acme ERP']);
  assert.equal(created.code, 0, show(created));
  assert.match(created.stdout, new RegExp(`created project ${P}; you are its admin`));

  const env = await cli(['env', 'create', P, E, '--stage', 'development', '--db-server', 'test-db', '--db', 'acme_dev', '--branch', 'feature/x']);
  assert.equal(env.code, 0, show(env));
  assert.match(env.stdout, new RegExp(`created development environment ${P}/${E} on database acme_dev \\(server test-db\\)`));
  // What the registry offers the project, and a name it does not offer: refused with what exists.
  const infra = await cli(['infra', 'list', P]);
  assert.equal(infra.code, 0, show(infra));
  assert.match(infra.stdout, /^database_server\s+test-db\s/m);
  const unknown = await cli(['env', 'create', P, 'qa', '--stage', 'development', '--db-server', 'elsewhere', '--db', 'acme_qa']);
  assert.equal(unknown.code, 3, show(unknown));
  assert.match(unknown.stderr, /cli-acme has no database server "elsewhere" \(it may use: test-db\)/);
  assert.match(unknown.stderr, /odooops infra list cli-acme/);

  const list = await cli(['env', 'list', P, '--json']);
  assert.equal(list.code, 0, show(list));
  const envs = JSON.parse(list.stdout) as C.Environment[];
  assert.equal(envs.length, 1);
  assert.deepEqual(
    { project: envs[0]!.project, name: envs[0]!.name, stage: envs[0]!.stage, branch: envs[0]!.branch, database: envs[0]!.database },
    { project: P, name: E, stage: 'development', branch: 'feature/x',
      database: { server: 'test-db', name: 'acme_dev' } },
  );

  const projects = await cli(['project', 'list']);
  assert.equal(projects.code, 0, show(projects));
  const row = projects.stdout.split('\n').find((l) => l.startsWith(`${P} `));
  assert.ok(row, show(projects));
  assert.match(row, /Acme ERP\s+admin\s+store "default", no copy$/);
  assert.match(projects.stdout, /^SLUG\s+NAME\s+ROLE\s+BACKUPS$/m);

  // The audit log of the project, as its admin reads it (`odooops audit PROJECT` used to be "unknown command").
  const audit = await cli(['audit', P, '--json']);
  assert.equal(audit.code, 0, show(audit));
  const actions = (JSON.parse(audit.stdout) as C.AuditEntry[]).map((e) => e.action);
  assert.ok(actions.includes('projects.insert') && actions.includes('environments.insert'), actions.join(', '));

  // The CLI really wrote through the API: the server has the project with the local user as admin.
  const viaApi = await api('GET', `/api/projects/${P}`);
  assert.equal(viaApi.status, 200);
  assert.equal(viaApi.body.role, 'admin');
});

test('run queue --wait, run wait, run logs and run list', async () => {
  const ok = await cli(['run', 'queue', P, E, 'test.block', '--params', '{"blockOn":[]}', '--wait']);
  assert.equal(ok.code, 0, show(ok));
  const okId = runIdIn(ok.stderr);
  assert.match(ok.stderr, new RegExp(`run ${okId} test.block on ${P}/${E}: succeeded`));
  const okRun = await api('GET', `/api/runs/${okId}`);
  assert.equal(okRun.body.status, 'succeeded');
  assert.deepEqual(okRun.body.params, { blockOn: [] });
  assert.deepEqual(okRun.body.result, { attempt: 1 });

  const bad = await cli(['run', 'queue', P, E, 'test.fail', '--param', 'message=disk full on /var/lib/odoo', '--wait']);
  assert.equal(bad.code, 1, show(bad));
  const badId = runIdIn(bad.stderr);
  assert.notEqual(badId, okId);
  assert.match(bad.stderr, new RegExp(`run ${badId} test.fail on ${P}/${E}: failed \\(disk full on /var/lib/odoo\\)`));

  const waited = await cli(['run', 'wait', String(badId)]);
  assert.equal(waited.code, 1, show(waited));
  assert.match(waited.stderr, /: failed \(disk full on \/var\/lib\/odoo\)/);
  const waitedOk = await cli(['run', 'wait', String(okId)]);
  assert.equal(waitedOk.code, 0, show(waitedOk));

  const logs = await cli(['run', 'logs', String(badId)]);
  assert.equal(logs.code, 0, show(logs));
  const lines = logs.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3, show(logs));
  assert.match(lines[0]!, /^\S+Z \[system\] test\.fail on dev \(development\), attempt 1 of 3/);
  assert.match(lines[1]!, /^\S+Z \[stderr\] about to fail$/);
  assert.match(lines[2]!, /^\S+Z \[stderr\] failed: disk full on \/var\/lib\/odoo$/);
  const after = await cli(['run', 'logs', String(badId), '--after', '2', '--json']);
  assert.equal(after.code, 0, show(after));
  assert.deepEqual(after.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).seq), [3]);

  const list = await cli(['run', 'list', '--json', '--project', P]);
  assert.equal(list.code, 0, show(list));
  const runs = JSON.parse(list.stdout) as C.Run[];
  const byId = new Map(runs.map((r) => [r.id, r]));
  assert.equal(byId.get(okId)?.status, 'succeeded');
  assert.equal(byId.get(badId)?.status, 'failed');
  assert.equal(byId.get(badId)?.error, 'disk full on /var/lib/odoo');
  const failedOnly = JSON.parse((await cli(['run', 'list', '--json', '--status', 'failed'])).stdout) as C.Run[];
  assert.deepEqual(failedOnly.map((r) => r.id), [badId]);

  const missing = await cli(['run', 'wait', '999999']);
  assert.equal(missing.code, 3, show(missing));
  assert.match(missing.stderr, /run 999999 not found/);
});

test('--idempotency-key: queueing twice returns the same run', async () => {
  const args = ['run', 'queue', P, E, 'test.block', '--params', '{"blockOn":[]}', '--idempotency-key', 'deploy-42'];
  const first = await cli(args);
  assert.equal(first.code, 0, show(first));
  assert.match(first.stdout, /^queued run \d+ test\.block/);
  const second = await cli(args);
  assert.equal(second.code, 0, show(second));
  assert.match(second.stdout, /^already queued with this idempotency key: run \d+/);
  assert.equal(runIdIn(second.stdout), runIdIn(first.stdout));
  const third = await cli([...args, '--json']);
  assert.equal(third.code, 0, show(third));
  assert.equal((JSON.parse(third.stdout) as C.Run).id, runIdIn(first.stdout));

  const runs = await api('GET', `/api/runs?project=${P}&limit=500`);
  assert.equal((runs.body as C.Run[]).filter((r) => r.idempotencyKey === 'deploy-42').length, 1, 'one run for the key');

  // The same key for other arguments is refused, not silently mapped to the first run.
  const other = await cli(['run', 'queue', P, E, 'test.block', '--params', '{"blockOn":[2]}', '--idempotency-key', 'deploy-42']);
  assert.equal(other.code, 3, show(other));
  assert.match(other.stderr, /idempotency key "deploy-42" was already used for run \d+ with other arguments/);
});

test('usage errors exit 2 and send nothing', async () => {
  const count = async () => ((await api('GET', `/api/runs?project=${P}&limit=500`)).body as C.Run[]).length;
  const before = await count();
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command: frobnicate/],
    [['project', 'rename', P], /unknown command: project rename/],
    [['run', 'queue', P], /missing ENV/],
    [['run', 'queue'], /missing PROJECT/],
    [['run', 'queue', P, E], /missing KIND/],
    [['env', 'create', P, 'qa', '--db', 'x'], /--stage is required/],
    [['env', 'create', P, 'qa', '--stage', 'development', '--db', 'x'], /--db-server is required/],
    [['env', 'deploy-target', P, E], /--runtime NAME is required/],
    [['admin', 'promote', 'x'], /unknown command: admin promote/],
    [['logon', '--help'], /unknown command: logon/],
    [['run', 'queue', P, E, 'test.block', '--params', '{"blockOn": [}'], /--params must be a JSON object/],
    [['run', 'queue', P, E, 'test.block', '--params', '[1, 2]'], /--params must be a JSON object/],
    [['run', 'queue', P, E, 'test.block', '--param', 'novalue'], /--param takes KEY=VALUE/],
    [['run', 'wait', 'abc'], /RUN_ID must be a positive number/],
    [['run', 'list', '--bogus'], /Unknown option '--bogus'/],
    [['token', '--user', 'not-a-uuid'], /--user must be a user id/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args)));
  results.forEach((r, i) => {
    const [args, message] = cases[i]!;
    assert.equal(r.code, 2, `odooops ${args.join(' ')}\n${show(r)}`);
    assert.match(r.stderr, message, `odooops ${args.join(' ')}`);
    assert.match(r.stderr, /^odooops: /);
  });
  const bare = await cli([]);
  assert.equal(bare.code, 2, show(bare));
  assert.match(bare.stdout, /^odooops — run self-hosted Odoo/);
  const help = await cli(['--help']);
  assert.equal(help.code, 0, show(help));
  assert.equal(await count(), before, 'no usage error queued a run');
});

test('unreachable server exits 4, a bad token 3, an invisible environment 3 with not found', async () => {
  const other = await cp!.user(undefined, { instanceAdmin: true });
  assert.equal((await other.call('POST', '/api/projects', { slug: 'cli-secret', name: 'Secret' })).status, 201);
  assert.equal((await other.call('POST', '/api/projects/cli-secret/environments', { name: 'prod', stage: 'production', database: { server: 'test-db', name: 'secret' } })).status, 201);

  const [down, garbage, invisible, noHome] = await Promise.all([
    cli(['project', 'list'], { ODOOOPS_URL: 'http://127.0.0.1:1', ODOOOPS_TOKEN: 'x' }),
    cli(['project', 'list'], { ODOOOPS_URL: cp!.server.url, ODOOOPS_TOKEN: 'garbage' }),
    cli(['run', 'queue', 'cli-secret', 'prod', 'test.block', '--params', '{"blockOn":[]}']),
    cli(['project', 'list'], { ODOOOPS_HOME: join(cp!.home, 'nowhere') }),
  ]);
  assert.equal(down.code, 4, show(down));
  assert.match(down.stderr, /cannot reach the OdooOps server at http:\/\/127\.0\.0\.1:1/);
  assert.equal(garbage.code, 3, show(garbage));
  assert.match(garbage.stderr, /the token is not valid for this server/);
  assert.equal(invisible.code, 3, show(invisible));
  assert.match(invisible.stderr, /project "cli-secret" not found/);
  assert.equal(noHome.code, 4, show(noHome));
  assert.match(noHome.stderr, /no OdooOps server found/);

  const runs = await other.call('GET', '/api/runs?project=cli-secret');
  assert.deepEqual(runs.body, [], 'nothing was queued in the project the CLI user cannot see');

  // A member with a role too low for the stage is refused as well (403 → 3), with the reason.
  const viewerToken = (await cli(['token', '--user', randomUUID()])).stdout.trim();
  const viewerId = (await call(cp!.server.url, viewerToken, 'GET', '/api/me')).body.userId as string;
  assert.equal((await api('POST', `/api/projects/${P}/members`, { userId: viewerId, role: 'viewer' })).status, 201);
  const refused = await cli(['run', 'queue', P, E, 'test.block', '--params', '{"blockOn":[]}'], { ODOOOPS_TOKEN: viewerToken });
  assert.equal(refused.code, 3, show(refused));
  assert.match(refused.stderr, /a viewer cannot queue runs on development environments/);
});

test('odooops token --user prints a JWT the API accepts for that user', async () => {
  const userId = randomUUID();
  const res = await cli(['token', '--user', userId, '--email', 'ci@example.invalid', '--ttl', '1h']);
  assert.equal(res.code, 0, show(res));
  const token = res.stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWT');
  const me = await call(cp!.server.url, token, 'GET', '/api/me');
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.deepEqual(me.body, { userId, email: 'ci@example.invalid', role: 'authenticated', instanceAdmin: false, name: null, githubLogin: null });
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; iat: number };
  assert.equal(claims.exp - claims.iat, 3600, '--ttl 1h');

  // The same token in ODOOOPS_TOKEN makes the CLI act as that user; a new user sees no projects.
  const whoami = await cli(['whoami', '--json'], { ODOOOPS_TOKEN: token });
  assert.equal(whoami.code, 0, show(whoami));
  assert.equal(JSON.parse(whoami.stdout).userId, userId);
  const projects = await cli(['project', 'list', '--json'], { ODOOOPS_TOKEN: token });
  assert.deepEqual(JSON.parse(projects.stdout), []);

  // Without --user it signs for the local user of this OdooOps directory.
  const local = (await cli(['token'])).stdout.trim();
  assert.equal((await call(cp!.server.url, local, 'GET', '/api/me')).body.userId, cp!.server.userId);
});

test('project masking: prints the profile as YAML that --set takes back, --reset, and only admins set it', async () => {
  const { writeFileSync } = await import('node:fs');
  const shown = await cli(['project', 'masking', P]);
  assert.equal(shown.code, 0, show(shown));
  assert.match(shown.stdout, /^# masking profile of cli-acme: OdooOps's default \(the project has none of its own\)$/m);
  assert.match(shown.stdout, /^# floor: res_users\.password: null, always$/m);
  const file = join(cp!.home, 'masking.yaml');
  // The printed YAML (its comments included) is a profile: edited and set again.
  writeFileSync(file, `${shown.stdout.replace(/\n {2}res_partner\.name:\n {4}strategy: name\n/, '\n  res_partner.name:\n    strategy: "null"\n')}`);
  const set = await cli(['project', 'masking', P, '--set', file, '--json']);
  assert.equal(set.code, 0, show(set));
  const after = JSON.parse(set.stdout) as C.ProjectMasking;
  assert.equal(after.isDefault, false);
  assert.deepEqual(after.profile.columns['res_partner.name'], { strategy: 'null' });
  assert.match((await cli(['project', 'masking', P])).stdout, /set by a project admin/);

  writeFileSync(file, 'version: 1\ncolumns:\n  res_users.password: { strategy: keep }\n');
  const floor = await cli(['project', 'masking', P, '--set', file]);
  assert.equal(floor.code, 3, show(floor));
  assert.match(floor.stderr, /no profile can lower these: res_users\.password/);
  writeFileSync(file, 'version: 1\ncolumns: [unclosed\n');
  const broken = await cli(['project', 'masking', P, '--set', file]);
  assert.equal(broken.code, 2, show(broken));
  assert.match(broken.stderr, /not a readable JSON or YAML file/);

  const devToken = (await cli(['token', '--user', randomUUID()])).stdout.trim();
  const devId = (await call(cp!.server.url, devToken, 'GET', '/api/me')).body.userId as string;
  assert.equal((await api('POST', `/api/projects/${P}/members`, { userId: devId, role: 'developer' })).status, 201);
  const refused = await cli(['project', 'masking', P, '--reset'], { ODOOOPS_TOKEN: devToken });
  assert.equal(refused.code, 3, show(refused));
  assert.match(refused.stderr, /only admins of "cli-acme" can change its masking profile; you are developer/);

  const reset = await cli(['project', 'masking', P, '--reset']);
  assert.equal(reset.code, 0, show(reset));
  assert.match(reset.stdout, /OdooOps's default/);
});

test('run retry: a failed run runs again as its next attempt; a succeeded one is refused', async () => {
  const bad = await cli(['run', 'queue', P, E, 'test.fail', '--param', 'message=network unreachable', '--wait']);
  assert.equal(bad.code, 1, show(bad));
  const id = runIdIn(bad.stderr);
  const retried = await cli(['run', 'retry', String(id), '--wait']);
  assert.equal(retried.code, 1, show(retried));
  assert.match(retried.stderr, new RegExp(`queued run ${id} again[\\s\\S]*run ${id} test.fail on ${P}/${E}: failed \\(network unreachable\\)`));
  const run = (await api('GET', `/api/runs/${id}`)).body as C.Run;
  assert.equal(run.attempts, 2);
  assert.match((await cli(['run', 'logs', String(id)])).stdout, /retried by .*: queued again for attempt 2 of 4/);

  const ok = await cli(['run', 'queue', P, E, 'test.block', '--params', '{"blockOn":[]}', '--wait']);
  assert.equal(ok.code, 0, show(ok));
  const refused = await cli(['run', 'retry', String(runIdIn(ok.stderr))]);
  assert.equal(refused.code, 3, show(refused));
  assert.match(refused.stderr, /is succeeded: only a failed run can be retried/);
  assert.match(refused.stderr, /queue a new run to do it again/i);
});
