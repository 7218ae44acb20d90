// Logging in to a masked clone, on real Odoo 17.0 and 19.0: a real source database (odoo-sources.ts,
// plain: base, contacts, mail, auth_signup; a salesperson with a production password), cloned through the
// real server, served by real odoo-bin. The admin and the internal user log in with the project's clone
// password (a registry secret), production's passwords do not work, a portal user cannot log in,
// /web/reset_password works when it did in production; and the abuse cases: a project admin cannot name
// a secret of another project, a literal, or an env:/file: reference, and the secret's value appears
// nowhere (API, control plane, run log).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type * as C from '../contract/index.ts';
import { verifyOdooPassword } from '../server/odoo/odoo-password.ts';
import { realProductionAndStaging, type OdooProject } from './helpers/odoo-project.ts';
import { REAL_LOOKING, shell } from './helpers/odoo-sources.ts';
import { authenticate, serveOdoo, type OdooInstall } from './helpers/real-odoo.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const PORTAL = { name: 'Portal Customer', login: 'portal.customer@klant-mail.example', password: 'Portal-prod-Pw-5521' };

async function project(version: '17.0' | '19.0', slug: string) {
  const { odoo, p, server, data } = await realProductionAndStaging(version, slug, cleanups);
  // Production as a real one is: a portal user with a password, a real secret among the system
  // parameters, and feature flags named like credentials.
  await shell(odoo, server, data, `${slug}_prod`, `
groups = 'groups_id' if 'groups_id' in env['res.users']._fields else 'group_ids'
env['res.users'].with_context(no_reset_password=True).create({'name': ${JSON.stringify(PORTAL.name)}, 'login': ${JSON.stringify(PORTAL.login)},
    'email': ${JSON.stringify(PORTAL.login)}, 'password': ${JSON.stringify(PORTAL.password)}, groups: [(6, 0, [env.ref('base.group_portal').id])]})
env.cr.commit()
`);
  await p.sql(`${slug}_prod`, `insert into ir_config_parameter (key, value) values
    ('mail.twilio_account_token', 'twilio-live-4f9a1c2e7b'), ('auth_password_policy.minlength', '10'), ('google_gmail_client_secret', 'GOCSPX-live-secret')
    on conflict (key) do update set value = excluded.value`);
  return { odoo, p, server, data };
}

/** The value planted for a secret must be nowhere in the control plane: every row of every ops table. */
async function controlPlaneHolds(p: OdooProject, value: string): Promise<string[]> {
  const tables = (await p.cp.pool.query(`select table_name from information_schema.tables where table_schema = 'ops' and table_type = 'BASE TABLE' order by 1`)).rows;
  assert.ok(tables.length > 10, 'the ops schema was found');
  const found: string[] = [];
  for (const { table_name } of tables) {
    const r = await p.cp.pool.query(`select count(*)::int as n from ops.${table_name} t where t::text like $1`, [`%${value}%`]);
    if (r.rows[0].n) found.push(table_name);
  }
  return found;
}

/** `odooops ...args` as a user of the test server: exit code and output. */
async function cli(p: OdooProject, token: string, args: string[]): Promise<{ code: number; out: string }> {
  const env = { ...process.env, ODOOOPS_URL: p.cp.server.url, ODOOOPS_TOKEN: token, ODOOOPS_HOME: p.cp.home };
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [join(import.meta.dirname, '..', 'server', 'cli', 'main.ts'), ...args], { env, timeout: 60_000 });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const users = (p: OdooProject, db: string) =>
  p.sql<{ id: number; login: string; password: string | null; share: boolean; active: boolean }>(db, 'select id, login, password, share, active from res_users order by id');

async function serveClone(odoo: OdooInstall, server: { host: string; port: number; user: string; password: string }, p: OdooProject, db: string) {
  // The clone's filestore is <scratch>/filestore/<db>: odoo-bin's data directory is the scratch.
  const odooRun = await serveOdoo(odoo, server, p.scratch, db);
  cleanups.push(() => odooRun.stop());
  return odooRun;
}

async function cloneLoginCase(version: '17.0' | '19.0', slug: string) {
  const t0 = performance.now();
  const { odoo, p, server } = await project(version, slug);
  const prod = `${slug}_prod`;
  const staging = `${slug}_staging`;
  const secretValue = `Clone-${slug}-${process.pid}-Pw`;
  const otherValue = `Other-${slug}-${process.pid}-Pw`;
  const secretVar = `ODOOOPS_TEST_CLONE_PW_${slug.toUpperCase()}_${process.pid}`;
  const otherVar = `ODOOOPS_TEST_OTHER_PW_${slug.toUpperCase()}_${process.pid}`;
  process.env[secretVar] = secretValue;
  process.env[otherVar] = otherValue;
  cleanups.push(() => {
    delete process.env[secretVar];
    delete process.env[otherVar];
  });
  // A second project on the same instance, with a secret of its own.
  assert.equal((await p.admin.call('POST', '/api/projects', { slug: `${slug}-other`, name: 'other' })).status, 201);
  await p.addInfra({
    secrets: {
      [`${slug}-clone`]: { value: `env:${secretVar}`, projects: [slug], description: 'the clone password' },
      [`${slug}-other-clone`]: { value: `env:${otherVar}`, projects: [`${slug}-other`] },
    },
  });
  const developer = await p.cp.user();
  const viewer = await p.cp.user();
  for (const [u, role] of [[developer, 'developer'], [viewer, 'viewer']] as const) {
    assert.equal((await p.admin.call('POST', `/api/projects/${slug}/members`, { userId: u.id, role })).status, 201);
  }
  const patch = (u = p.admin, body: object) => u.call('PATCH', `/api/projects/${slug}`, body);

  // Abuse: only a registry name bound to this project, only by an admin.
  for (const bad of [`env:${secretVar}`, 'file:/etc/shadow', 'file:/proc/self/environ', secretValue, 'Hunter2 Hunter2!']) {
    const r = await patch(p.admin, { clonePasswordSecret: bad });
    assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.body)}`);
  }
  const unknown = await patch(p.admin, { clonePasswordSecret: 'hunter2hunter2' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error.code, 'unknown_infrastructure');
  const others = await patch(p.admin, { clonePasswordSecret: `${slug}-other-clone` });
  assert.equal(others.status, 400, 'another project\'s secret is not this project\'s');
  assert.match(others.body.error.message, new RegExp(`${slug} has no secret "${slug}-other-clone" \\(it may use: ${slug}-clone\\)`));
  assert.equal((await patch(developer, { clonePasswordSecret: `${slug}-clone` })).status, 403, 'developers do not choose it');
  assert.equal((await patch(viewer, { clonePasswordSecret: `${slug}-clone` })).status, 403);
  // Around the API, in SQL as the project's admin: the trigger refuses another project's secret.
  await assert.rejects(
    p.cp.sql(p.admin, (c) => c.query(`update ops.projects set clone_password_secret = $1 where slug = $2`, [`${slug}-other-clone`, slug])),
    /the secret ".*-other-clone" is not available to project/,
  );
  await assert.rejects(
    p.cp.sql(p.admin, (c) => c.query(`update ops.projects set clone_password_secret = 'env:X' where slug = $1`, [slug])),
    /the secret "env:X" is not available to project|projects_clone_password_secret_format/,
  );
  // A developer's direct update changes nothing (RLS: projects are updated by admins).
  const dev = await p.cp.sql(developer, (c) => c.query(`update ops.projects set clone_password_secret = null where slug = $1`, [slug]));
  assert.equal(dev.rowCount, 0);
  const viaCli = await cli(p, p.admin.token, ['project', 'set', slug, '--clone-password', `file:/etc/shadow`]);
  assert.equal(viaCli.code, 3, `the CLI sends it, the server refuses it: ${viaCli.out}`);
  const set = await cli(p, p.admin.token, ['project', 'set', slug, '--clone-password', `${slug}-clone`]);
  assert.equal(set.code, 0, set.out);
  assert.match(set.out, new RegExp(`clones' password: the registry secret "${slug}-clone"`));
  assert.equal((await p.admin.call('GET', `/api/projects/${slug}`)).body.clonePasswordSecret, `${slug}-clone`);

  // Clone production into staging through the real server.
  const prodUsers = await users(p, prod);
  const sofie = prodUsers.find((u) => u.login === REAL_LOOKING.user.login)!;
  const portal = prodUsers.find((u) => u.login === PORTAL.login)!;
  assert.ok(sofie && !sofie.share && sofie.password, 'production has the salesperson with a password');
  assert.ok(portal && portal.share && portal.password, 'production has the portal user with a password');
  const tClone = performance.now();
  const run = await p.runToEnd('staging', 'clone', {}, 600_000);
  const cloneSeconds = (performance.now() - tClone) / 1000;
  const log = await p.logText(run.id);
  assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);

  // The clone's users: admin and the active internal users have the clone password, nobody else any.
  const cloned = await users(p, staging);
  const withPassword = cloned.filter((u) => u.password !== null);
  const internal = cloned.filter((u) => u.active && !u.share && u.login !== '__system__');
  assert.deepEqual(withPassword.map((u) => u.id), internal.map((u) => u.id), 'exactly the active internal users have a password');
  assert.ok(internal.length >= 2, 'admin and the salesperson at least');
  for (const u of withPassword) {
    assert.ok(!prodUsers.some((q) => q.password === u.password), 'no production hash');
    assert.ok(await verifyOdooPassword(secretValue, u.password!), `${u.login} has the clone password`);
  }
  const clonedSofie = cloned.find((u) => u.id === sofie.id)!;
  assert.equal(clonedSofie.login, `user-${sofie.id}`, 'the salesperson logs in as user-<id>');
  const clonedPortal = cloned.find((u) => u.id === portal.id)!;
  assert.equal(clonedPortal.password, null, 'the portal user has no password');
  assert.notEqual(clonedPortal.login, PORTAL.login, 'portal logins stay masked');

  // The run's log names the logins and the secret, never its value; the result neither.
  assert.match(log, new RegExp(`log in to staging as admin, .*user-${sofie.id}.* with the project's clone password \\(the registry secret "${slug}-clone"`));
  assert.match(log, /portal and public users have none/);
  assert.ok(!log.includes(secretValue) && !log.includes('[redacted]'), 'the value is not in the log (not even redacted: it was never written)');
  assert.ok(!JSON.stringify(run).includes(secretValue), 'nor in the run or its result');
  // The admin (id 2) first, then the internal users by id.
  assert.deepEqual((run.result as { login: unknown }).login, { logins: internal.map((u) => u.login), passwordSecret: `${slug}-clone` });
  // Feature flags stay, secrets go.
  const params = Object.fromEntries((await p.sql(staging, 'select key, value from ir_config_parameter')).map((r) => [r.key, r.value]));
  assert.equal(params['auth_signup.reset_password'], 'True');
  assert.equal(params['auth_signup.invitation_scope'], 'b2c');
  assert.equal(params['auth_password_policy.minlength'], '10');
  assert.ok(!('mail.twilio_account_token' in params) && !('google_gmail_client_secret' in params), 'real secrets are scrubbed');
  assert.match(log, /scrub: kept \d+ setting\(s\) named like a credential.*auth_signup\.reset_password = True/);

  // Who may read how to log in: those who may operate staging (admins, testers), not viewers or developers.
  const loginInfo = await p.admin.call('GET', `/api/projects/${slug}/environments/staging/clone-login`);
  assert.equal(loginInfo.status, 200, JSON.stringify(loginInfo.body));
  assert.deepEqual({ ...loginInfo.body, createdAt: undefined } as C.CloneLogin,
    { environment: 'staging', runId: run.id, createdAt: undefined, logins: (run.result as any).login.logins, password: null, passwordSecret: `${slug}-clone` });
  assert.equal((await viewer.call('GET', `/api/projects/${slug}/environments/staging/clone-login`)).status, 403);
  assert.equal((await developer.call('GET', `/api/projects/${slug}/environments/staging/clone-login`)).status, 403);
  // The secret's value is in no API answer and nowhere in the control plane.
  for (const path of ['/api/infrastructure', `/api/projects/${slug}/infrastructure`, `/api/projects/${slug}`, `/api/projects`, `/api/runs/${run.id}`,
    `/api/projects/${slug}/audit?limit=1000`, `/api/projects/${slug}/environments/staging/clone-login`]) {
    const r = await p.admin.call('GET', path);
    assert.equal(r.status, 200, path);
    const text = JSON.stringify(r.body);
    assert.ok(!text.includes(secretValue) && !text.includes(otherValue) && !text.includes(secretVar), `${path} shows no secret value nor where it is`);
  }
  assert.ok((await p.admin.call('GET', `/api/projects/${slug}/infrastructure`)).body.some((e: C.InfraEntry) => e.kind === 'secret' && e.name === `${slug}-clone`),
    'the secret is listed by name');
  assert.deepEqual(await controlPlaneHolds(p, secretValue), [], 'no ops table holds the value');
  assert.deepEqual(await controlPlaneHolds(p, secretVar), [], 'nor where it is');

  // Real Odoo on the clone: the clone password opens admin and the salesperson; production's do not.
  const tBoot = performance.now();
  const odooRun = await serveClone(odoo, server, p, staging);
  const bootSeconds = (performance.now() - tBoot) / 1000;
  try {
    assert.equal((await fetch(`${odooRun.url}/web/login`)).status, 200);
    assert.ok(await authenticate(odooRun, staging, 'admin', secretValue), 'admin logs in with the clone password');
    assert.equal(await authenticate(odooRun, staging, `user-${sofie.id}`, secretValue), sofie.id, 'the salesperson logs in with it');
    assert.equal(await authenticate(odooRun, staging, 'admin', 'admin'), null, 'production\'s admin password does not work');
    assert.equal(await authenticate(odooRun, staging, `user-${sofie.id}`, REAL_LOOKING.user.password), null, 'nor the salesperson\'s');
    assert.equal(await authenticate(odooRun, staging, REAL_LOOKING.user.login, REAL_LOOKING.user.password), null, 'nor her production login');
    assert.equal(await authenticate(odooRun, staging, clonedPortal.login, secretValue), null, 'the portal user cannot log in with the clone password');
    assert.equal(await authenticate(odooRun, staging, clonedPortal.login, PORTAL.password), null, 'nor with its production password');
    assert.equal(await authenticate(odooRun, staging, PORTAL.login, PORTAL.password), null, 'nor as in production');
    const reset = await fetch(`${odooRun.url}/web/reset_password`, { redirect: 'manual' });
    assert.equal(reset.status, 200, '/web/reset_password works, as in production');
    assert.match(await reset.text(), /name="login"/);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- odoo-bin:\n${odooRun.output().slice(-3000)}`);
  } finally {
    await odooRun.stop();
  }
  console.log(`# Odoo ${version}: clone ${cloneSeconds.toFixed(1)} s, odoo-bin boot on the clone ${bootSeconds.toFixed(1)} s, ${internal.length} internal users given the clone password, whole case ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { odoo, p, server, sofie, viewer, developer };
}

test('Odoo 17.0: the clone password (a registry secret) opens admin and internal users; production passwords and portal users do not; the abuse cases; then a clone without a secret and without password reset', async () => {
  const { odoo, p, server, viewer, developer } = await cloneLoginCase('17.0', 'brew17');
  // Without a secret: a fresh password per clone, for those who may operate the environment only.
  // And reset disabled in production: /web/reset_password is not served on the clone either.
  assert.equal((await p.admin.call('PATCH', '/api/projects/brew17', { clonePasswordSecret: null })).status, 200);
  await p.sql('brew17_prod', `update ir_config_parameter set value = 'False' where key = 'auth_signup.reset_password'`);
  const run = await p.runToEnd('staging', 'clone', {}, 600_000);
  const log = await p.logText(run.id);
  assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
  assert.match(log, /with a fresh password made for this clone, for the members who may operate staging: odooops env login brew17 staging/);
  const info = await p.admin.call('GET', '/api/projects/brew17/environments/staging/clone-login');
  assert.equal(info.status, 200);
  // The same through the CLI: the operator's way to hand it on; refused to a viewer.
  const shown = await cli(p, p.admin.token, ['env', 'login', 'brew17', 'staging']);
  assert.equal(shown.code, 0, shown.out);
  assert.match(shown.out, new RegExp(`logins: admin, user-\\d+\\npassword: ${info.body.password.replace(/[-]/g, '\\-')}`));
  const refusedCli = await cli(p, viewer.token, ['env', 'login', 'brew17', 'staging']);
  assert.equal(refusedCli.code, 3, refusedCli.out);
  assert.ok(!refusedCli.out.includes(info.body.password));
  const fresh = info.body.password as string;
  assert.match(fresh, /^[A-Za-z0-9_-]{20}$/);
  assert.equal(info.body.passwordSecret, null);
  assert.equal(info.body.runId, run.id);
  assert.ok(!log.includes(fresh) && !JSON.stringify(run).includes(fresh), 'the fresh password is not in the log or the run (viewers read those)');
  for (const u of [viewer, developer]) {
    assert.equal((await u.call('GET', '/api/projects/brew17/environments/staging/clone-login')).status, 403);
    assert.deepEqual(await p.cp.sql(u, async (c) => (await c.query('select * from ops.clone_logins')).rows), [], 'RLS hides it from them');
  }
  const audit = (await p.admin.call('GET', '/api/projects/brew17/audit?limit=50')).body as C.AuditEntry[];
  assert.ok(audit.some((a) => a.action === 'clone.login.read' && a.target === 'staging'), 'reading it is audited');
  assert.ok(!JSON.stringify(audit).includes(fresh), 'the audit does not hold it');
  const odooRun = await serveClone(odoo, server, p, 'brew17_staging');
  try {
    assert.ok(await authenticate(odooRun, 'brew17_staging', 'admin', fresh), 'admin logs in with the fresh password');
    assert.ok(await authenticate(odooRun, 'brew17_staging', info.body.logins[1], fresh), 'so does an internal user');
    assert.equal(await authenticate(odooRun, 'brew17_staging', 'admin', `Clone-brew17-${process.pid}-Pw`), null, 'the former secret no longer opens it');
    const reset = await fetch(`${odooRun.url}/web/reset_password`, { redirect: 'manual' });
    assert.ok(reset.status >= 300, `reset disabled in production stays disabled (${reset.status})`);
  } finally {
    await odooRun.stop();
  }
  // A secret too short to be a password fails the clone before anything is copied; staging is untouched.
  const shortVar = `ODOOOPS_TEST_SHORT_PW_${process.pid}`;
  process.env[shortVar] = 'short7x';
  cleanups.push(() => void delete process.env[shortVar]);
  await p.addInfra({ secrets: { 'brew17-short': { value: `env:${shortVar}`, projects: ['brew17'] } } });
  assert.equal((await p.admin.call('PATCH', '/api/projects/brew17', { clonePasswordSecret: 'brew17-short' })).status, 200);
  const before = await p.sql('brew17_staging', 'select id, password from res_users order by id');
  const short = await p.runToEnd('staging', 'clone', {}, 300_000);
  assert.equal(short.status, 'failed');
  assert.match(short.error!, /the secret "brew17-short" \(the project's clone password\) is shorter than 12 characters; the operator sets a longer value/);
  assert.ok(!(await p.logText(short.id)).includes('short7x') && !short.error!.includes('short7x'));
  assert.doesNotMatch(await p.logText(short.id), /the copy is made on the production database server/, 'nothing was copied');
  assert.deepEqual(await p.sql('brew17_staging', 'select id, password from res_users order by id'), before, 'staging is as it was');
});

test('Odoo 19.0: the clone password opens admin and internal users; production passwords and portal users do not; the abuse cases', async () => {
  await cloneLoginCase('19.0', 'brew19');
});
