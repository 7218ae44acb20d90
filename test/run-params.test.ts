// Run parameters are checked when a run is queued (API and CLI) with the schemas the executors parse
// with: a bad run is a 400 that names the parameter and what it takes, and nothing is queued. A run
// queued in SQL (past the API) is still refused by its worker, with the same words.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RUN_PARAMS, paramsOf, runParamsProblems } from '../contract/run-params.ts';
import { builtinExecutors } from '../server/worker/executors/index.ts';
import { startControlPlane, type TestControlPlane, type TestUser } from './helpers/control-plane.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MISSING = '6f1c1c59-4b44-4d7a-9a53-0f6d2a0b8e11';

let cp: TestControlPlane;
let admin: TestUser;
const ids: Record<string, string> = {};

const runCount = async () => (await cp.pool.query('select count(*)::int as n from ops.runs')).rows[0].n as number;
const approvalCount = async () => (await cp.pool.query('select count(*)::int as n from ops.approvals')).rows[0].n as number;
const queue = (env: string, kind: string, params: Record<string, unknown>, project = 'shop') =>
  admin.call('POST', `/api/projects/${project}/environments/${env}/runs`, { kind, params });

/** A 400 invalid_params whose message matches, and no run (nor approval) written. */
async function refused(request: () => Promise<{ status: number; body: any }>, message: RegExp) {
  const [runs, approvals] = [await runCount(), await approvalCount()];
  const r = await request();
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'invalid_params', JSON.stringify(r.body));
  assert.match(r.body.error.message, message);
  assert.equal(await runCount(), runs, 'nothing was queued');
  assert.equal(await approvalCount(), approvals, 'no approval was requested');
}

async function backupOf(project: string, env: string): Promise<string> {
  const { rows } = await cp.pool.query(
    `insert into ops.backups (project_id, environment_id, kind, location)
     select p.id, e.id, 'manual', 'test' from ops.projects p join ops.environments e on e.project_id = p.id where p.slug = $1 and e.name = $2 returning id`,
    [project, env]);
  return rows[0].id as string;
}

before(async () => {
  cp = await startControlPlane();
  admin = await cp.user(undefined, { instanceAdmin: true });
  for (const slug of ['shop', 'other']) {
    assert.equal((await admin.call('POST', '/api/projects', { slug, name: slug })).status, 201);
    for (const [name, stage] of [['prod', 'production'], ['staging', 'staging'], ['dev', 'development']]) {
      const r = await admin.call('POST', `/api/projects/${slug}/environments`, { name, stage, database: { server: 'test-db', name: `${slug}_${name}` } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
  }
  ids.shopProd = await backupOf('shop', 'prod');
  ids.shopStaging = await backupOf('shop', 'staging');
  ids.otherProd = await backupOf('other', 'prod');
});
after(() => cp?.close());

test('the executors parse with the schemas the API checks (one place)', () => {
  const builtins = new Map(builtinExecutors.map((e) => [e.kind, e.params]));
  assert.deepEqual([...builtins.keys()].sort(), Object.keys(RUN_PARAMS).sort(), 'every built-in kind has its params here');
  for (const [kind, schema] of Object.entries(RUN_PARAMS)) assert.equal(builtins.get(kind), schema, `${kind} parses with RUN_PARAMS.${kind}`);
});

test('every kind: a bad shape names the parameter and what it takes', () => {
  // Kinds that take nothing.
  for (const kind of ['health', 'retention', 'destroy']) {
    assert.deepEqual(runParamsProblems(kind, { deep: true }), [`a ${kind} run has no parameter "deep"; it takes none`]);
    assert.equal(runParamsProblems(kind, {}), null);
  }
  assert.match(runParamsProblems('backup', { kind: 'weekly' })!.join(), /params\.kind "weekly" is not allowed .*: give manual \(the default\), daily or pre-deploy/);
  assert.equal(runParamsProblems('backup', {}), null);
  assert.match(runParamsProblems('restore', {})!.join(), /params\.backup is missing: give the id of a backup of this project/);
  assert.match(runParamsProblems('restore', { backup: 'latest' })!.join(), /params\.backup "latest" is not allowed \(Invalid UUID\)/);
  assert.match(runParamsProblems('clone', { filestore: 'bogus' })!.join(), /params\.filestore "bogus" is not allowed .*: give assets, placeholders, all, none/);
  assert.match(runParamsProblems('clone', { form: 'prod' })!.join(), /a clone run has no parameter "form"; it takes from \(.*\); backup \(.*\); filestore \(.*\); profile/);
  assert.match(runParamsProblems('clone', { from: '../prod' })!.join(), /params\.from "..\/prod" is not allowed/);
  assert.match(runParamsProblems('clone', { from: 'prod', backup: MISSING })!.join(), /clone: give either "from" \(an environment\) or "backup", not both/);
  assert.equal(runParamsProblems('clone', { from: 'prod', filestore: 'all' }), null);
  assert.match(runParamsProblems('deploy', {})!.join(), /deploy: a deploy needs a revision \(40 hex digits\) or a branch/);
  assert.match(runParamsProblems('deploy', { revision: 'HEAD' })!.join(), /params\.revision "HEAD" is not allowed .*: give a full commit id/);
  assert.equal(runParamsProblems('deploy', { branch: 'main' }), null);
  // A kind an --executors module adds is its worker's to check.
  assert.equal(runParamsProblems('test.echo', { anything: 1 }), null);
  assert.deepEqual(paramsOf('health'), []);
});

test('the API refuses bad params of every kind with a 400, and queues nothing', async () => {
  await refused(() => queue('dev', 'health', { deep: true }), /invalid params for a health run: a health run has no parameter "deep"; it takes none/);
  await refused(() => queue('dev', 'retention', { keep: 3 }), /a retention run has no parameter "keep"/);
  await refused(() => queue('dev', 'destroy', { force: true }), /a destroy run has no parameter "force"/);
  await refused(() => queue('dev', 'backup', { kind: 'weekly' }), /params\.kind "weekly" is not allowed/);
  await refused(() => queue('staging', 'restore', {}), /params\.backup is missing/);
  await refused(() => queue('staging', 'clone', { filestore: 'bogus' }), /params\.filestore "bogus" is not allowed .*give assets, placeholders, all, none/);
  await refused(() => queue('dev', 'deploy', { revision: 'HEAD' }), /params\.revision "HEAD" is not allowed/);
  const r = await queue('staging', 'clone', { filestore: 'bogus' });
  assert.match(r.body.error.hint, /Nothing was queued/);
  assert.deepEqual(r.body.error.details.problems.length, 1);
});

test('what params name must exist, in this project, and be allowed there', async () => {
  await refused(() => queue('staging', 'restore', { backup: MISSING }), new RegExp(`params\\.backup: there is no backup ${MISSING} in project shop`));
  await refused(() => queue('staging', 'restore', { backup: ids.otherProd }), new RegExp(`there is no backup ${ids.otherProd} in project shop`));
  await refused(() => queue('staging', 'restore', { backup: ids.shopProd }), /is of production: restoring it into staging needs the clone rules/);
  await refused(() => queue('staging', 'clone', { from: 'nowhere' }), /params\.from: there is no environment "nowhere" in project shop/);
  await refused(() => queue('staging', 'clone', { from: 'staging' }), /cannot clone staging into itself/);
  await refused(() => queue('prod', 'clone', {}), /prod is a production environment: OdooOps never neutralizes or masks production/);
  await refused(() => queue('staging', 'clone', { backup: ids.otherProd }), /there is no backup .* in project shop/);
  await refused(() => queue('dev', 'clone', { backup: ids.shopStaging }), /not of this project's production environment.*is of staging, a staging environment/);
  await refused(() => queue('staging', 'destroy', {}), /staging is a staging environment: only development environments are destroyed/);
  // Approvals become runs: refused on request, not after a second admin said yes.
  await refused(() => admin.call('POST', '/api/projects/shop/environments/prod/approvals', { kind: 'restore', params: { backup: ids.otherProd } }), /there is no backup/);
  await refused(() => admin.call('POST', '/api/projects/shop/environments/prod/approvals', { kind: 'backup', params: { kind: 'hourly' } }), /params\.kind "hourly"/);

  // Good ones are queued.
  for (const [env, kind, params] of [
    ['staging', 'restore', { backup: ids.shopStaging }], ['staging', 'clone', { filestore: 'none' }], ['dev', 'clone', { from: 'staging' }],
    ['dev', 'clone', { backup: ids.shopProd }], ['dev', 'backup', {}], ['dev', 'destroy', {}],
  ] as const) {
    const ok = await queue(env, kind, params);
    assert.equal(ok.status, 201, `${kind} ${JSON.stringify(params)}: ${JSON.stringify(ok.body)}`);
  }
  const asked = await admin.call('POST', '/api/projects/shop/environments/prod/approvals', { kind: 'restore', params: { backup: ids.shopProd } });
  assert.equal(asked.status, 201, JSON.stringify(asked.body));
});

test('a member of another project learns nothing about its backups', async () => {
  const outsider = await cp.user();
  const r = await outsider.call('POST', `/api/projects/other/environments/staging/runs`, { kind: 'restore', params: { backup: ids.otherProd } });
  assert.equal(r.status, 404);
});

test('the CLI refuses bad params before sending, and shows the server\'s refusal of what they name', async () => {
  const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
    execFile(process.execPath, ['server/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ODOOOPS_HOME: cp.home, ODOOOPS_URL: cp.server.url, ODOOOPS_TOKEN: admin.token }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr }));
  });
  const runs = await runCount();
  const bogus = await cli('run', 'queue', 'shop', 'staging', 'clone', '--param', 'filestore=bogus');
  assert.equal(bogus.code, 2, bogus.stderr);
  assert.match(bogus.stderr, /invalid params for a clone run: params\.filestore "bogus" is not allowed .*give assets, placeholders, all, none/);
  const unknown = await cli('run', 'queue', 'shop', 'dev', 'health', '--param', 'deep=yes');
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /a health run has no parameter "deep"; it takes none/);
  const missing = await cli('run', 'queue', 'shop', 'staging', 'restore', '--param', `backup=${MISSING}`);
  assert.equal(missing.code, 3, missing.stderr);
  assert.match(missing.stderr, new RegExp(`there is no backup ${MISSING} in project shop`));
  assert.match(missing.stderr, /odooops backup list shop ENV/);
  const approval = await cli('approval', 'request', 'shop', 'prod', 'clone', '--param', 'filestore=bogus');
  assert.equal(approval.code, 2, approval.stderr);
  assert.equal(await runCount(), runs, 'nothing was queued');
});

test('a run queued in SQL, past the API, is refused by its worker in the same words', async () => {
  const { rows } = await cp.pool.query(
    `insert into ops.runs (project_id, environment_id, kind, params)
     select p.id, e.id, 'clone', '{"filestore": "bogus"}' from ops.projects p join ops.environments e on e.project_id = p.id
     where p.slug = 'other' and e.name = 'staging' returning id`);
  const id = rows[0].id as number;
  const deadline = Date.now() + 30_000;
  let run;
  while (Date.now() < deadline) {
    run = (await cp.pool.query('select status, error from ops.runs where id = $1', [id])).rows[0];
    if (run.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(run.status, 'failed', JSON.stringify(run));
  assert.match(run.error, /invalid params for clone: params\.filestore "bogus" is not allowed .*give assets, placeholders, all, none/);
});
