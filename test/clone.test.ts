// Clone runs (production → staging/development) on real PostgreSQL 15 with generated Odoo-17-shaped
// data: neutralized like Odoo's neutralize.sql, secrets scrubbed, personal data masked by the default
// profile, verified, and the unmasked copy never outside the production server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import type * as C from '../contract/index.ts';
import { asUser, SERVICE_CLAIMS } from '../server/db/session.ts';
import { defaultMaskProfile } from '../server/odoo/mask.ts';
import { verifyOdooPassword } from '../server/odoo/odoo-password.ts';
import { findPii, samplePii } from '../server/odoo/verify.ts';
import type { TestControlPlane, TestUser } from './helpers/control-plane.ts';
import { fingerprintDb, fingerprintDir, type DebianPostgres } from './helpers/debian-postgres.ts';
import { ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

let p: OdooProject;
let cp: TestControlPlane;
let odooPg: DebianPostgres;
let PASSWORD: string;
const fs = (db: string) => p.fs(db);
const runToEnd = (env: string, kind: string, params: object = {}) => p.runToEnd(env, kind, params);
const logText = (id: number) => p.logText(id);
const sql = <T = any>(db: string, text: string, params: unknown[] = []) => p.sql<T>(db, text, params);

before(async () => {
  p = await startOdooProject({
    slug: 'acme',
    generate: { acme_prod: { partners: 1000 } },
    envs: [
      { name: 'production', stage: 'production', db: 'acme_prod', url: 'https://erp.acme.example' },
      { name: 'staging', stage: 'staging', db: 'acme_staging', url: 'https://staging.acme.example' },
      { name: 'dev', stage: 'development', db: 'acme_dev', url: 'http://localhost:8069' },
    ],
  });
  ({ cp, odooPg, password: PASSWORD } = p);
});
after(async () => {
  await p?.close();
});

const sideDbs = async () => (await sql<{ datname: string }>('postgres', `select datname from pg_database where datname like '%odooops%'`)).map((r) => r.datname);

/** Every email, phone, VAT, name and street of production (not a sample): none may be left in a clone. */
async function allProductionPii() {
  const col = async (q: string) => (await sql<{ v: string }>('acme_prod', q)).map((r) => r.v);
  return {
    emails: await col(`select distinct lower(email) as v from res_partner where email is not null`),
    phones: await col(`select distinct phone as v from res_partner where phone is not null union select mobile from res_partner where mobile is not null`),
    vats: await col(`select distinct vat as v from res_partner where vat is not null`),
    names: await col(`select distinct name as v from res_partner where name is not null`),
    streets: await col(`select distinct street as v from res_partner where street is not null union select street2 from res_partner where street2 is not null`),
  };
}

/**
 * The clone keeps no production password: only its admin has one (a generated database does not say
 * which users are internal), fresh, readable by who may operate the environment, never in the log.
 */
async function assertFreshAdminPassword(db: string, run: C.Run, log: string) {
  const prodHashes = new Set((await sql('acme_prod', 'select password from res_users where password is not null')).map((r) => r.password));
  assert.ok(prodHashes.size > 0, 'production has password hashes to leak');
  const withPassword = await sql(db, 'select login, password from res_users where password is not null');
  assert.deepEqual(withPassword.map((r) => r.login), ['admin'], 'only the admin has a password in the clone');
  assert.ok(!prodHashes.has(withPassword[0].password), 'not production\'s hash');
  assert.equal((await sql(db, `select count(*)::int as n from res_users where totp_secret is not null`))[0].n, 0);
  assert.match(log, /log in to \S+ as admin with a fresh password made for this clone, for the members who may operate \S+: odooops env login acme \S+; only the admin user has a password/);
  assert.deepEqual((run.result as { login: unknown }).login, { logins: ['admin'], passwordSecret: null });
  const info = (await p.admin.call('GET', `/api/projects/acme/environments/${run.environment}/clone-login`)).body as C.CloneLogin;
  assert.equal(info.runId, run.id);
  assert.ok(!log.includes(info.password!), 'the password is not in the log (viewers read it)');
  assert.ok(await verifyOdooPassword(info.password!, withPassword[0].password), 'the password shown to operators opens the stored hash');
  assert.ok(!(await verifyOdooPassword(`${info.password}x`, withPassword[0].password)));
}

async function assertMaskedAndNeutralized(db: string, url: string) {
  const c = await odooPg!.client(db);
  try {
    const leaks = await findPii(c, await allProductionPii());
    assert.deepEqual(leaks, [], 'no production email, phone or VAT anywhere in the clone');
  } finally {
    await c.end();
  }
  // Neutralized like Odoo's neutralize.sql.
  const crons = await sql(db, `select c.name from ir_cron c where c.active`);
  assert.deepEqual(crons.map((r) => r.name), ['Base: Auto-vacuum internal data']);
  // Odoo's dummy server became the mail catcher, with the environment's own login (mail-catcher.test.ts).
  const servers = await sql(db, `select smtp_host, smtp_port, smtp_user, length(smtp_pass) as pass from ir_mail_server where active`);
  const catcher = p.cp.server.mailCatcher!;
  assert.deepEqual(servers, [{ smtp_host: catcher.host, smtp_port: catcher.port, smtp_user: `acme/${db.slice('acme_'.length)}`, pass: 43 }]);
  const params = Object.fromEntries((await sql(db, 'select key, value from ir_config_parameter')).map((r) => [r.key, r.value]));
  const prodParams = Object.fromEntries((await sql('acme_prod', 'select key, value from ir_config_parameter')).map((r) => [r.key, r.value]));
  assert.equal(params['database.is_neutralized'], 'true');
  assert.notEqual(params['database.uuid'], prodParams['database.uuid']);
  assert.notEqual(params['database.secret'], prodParams['database.secret']);
  assert.equal(params['web.base.url'], url);
  assert.ok(!('google_maps.api_key' in params) && !('mail.web_push_vapid_private_key' in params), 'keys and tokens gone');
  assert.deepEqual(await sql(db, `select state, stripe_publishable_key, stripe_secret_key from payment_provider`), [{ state: 'disabled', stripe_publishable_key: null, stripe_secret_key: null }]);
  assert.match((await sql(db, 'select account_token from iap_account'))[0].account_token, /\+disabled$/);
  assert.deepEqual(await sql(db, `select "user", password, active from fetchmail_server`), [{ user: null, password: null, active: false }]);
  assert.equal((await sql(db, 'select count(*)::int as n from res_users_apikeys'))[0].n, 0);
  assert.equal((await sql(db, 'select count(*)::int as n from res_users where totp_secret is not null or oauth_access_token is not null'))[0].n, 0);
  // Deterministic per clone: a partner's fake email is also their user's login and their messages' sender.
  assert.equal((await sql(db, `select count(*)::int as n from res_users u join res_partner p on p.id = u.partner_id where u.login not in ('admin', '__system__') and u.login <> p.email`))[0].n, 0);
  assert.equal((await sql(db, `select count(*)::int as n from mail_message m join res_partner p on p.id = m.author_id where position(p.email in m.email_from) = 0`))[0].n, 0);
  assert.equal((await sql(db, `select count(*)::int as n from res_partner where email not like '%@example.invalid'`))[0].n, 0);
  const logins = await sql(db, 'select login from res_users');
  assert.equal(new Set(logins.map((r) => r.login)).size, logins.length, 'logins stay unique');
  assert.ok(logins.some((r) => r.login === 'admin'), 'the admin can still log in');
}

test('clone production → staging: neutralized, scrubbed, masked, verified; production untouched', async () => {
  const prodBefore = await fingerprintDb(odooPg!, 'acme_prod');
  const prodFiles = await fingerprintDir(fs('acme_prod'));
  const run = await runToEnd('staging', 'clone');
  const log = await logText(run.id);
  assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
  await assertMaskedAndNeutralized('acme_staging', 'https://staging.acme.example');
  assert.deepEqual(await fingerprintDb(odooPg!, 'acme_prod'), prodBefore, 'production is not changed');
  assert.deepEqual(await sideDbs(), [], 'the unmasked copy was dropped');
  assert.match(log, /the copy is made on the production database server .* as acme_prod_odooops_mask_\d+: personal data is masked as it is copied/);
  assert.match(log, /acme_prod_odooops_mask_(\d+) becomes acme_staging_odooops_new_\1 \(acme_staging on the database server odoo-pg, .*\), renamed, not copied/, 'on the same server the masked copy is put in place as it is');
  assert.match(log, /copied \d+ tables \(\d+ rows, [\d.]+ MiB\) into acme_prod_odooops_mask_\d+ .*every row checked against the sample/);
  // The schema arrives whole: indexes, constraints and sequences as in production.
  const schema = async (db: string) => ({
    indexes: (await sql(db, `select indexname, indexdef from pg_indexes where schemaname = 'public' order by 1`)),
    constraints: (await sql(db, `select conname, pg_get_constraintdef(oid) as def from pg_constraint where connamespace = 'public'::regnamespace order by 1`)),
  });
  assert.deepEqual(await schema('acme_staging'), await schema('acme_prod'));
  const next = (await sql('acme_staging', `select nextval('res_partner_id_seq')::int as n, (select max(id) from res_partner) as m`))[0];
  assert.ok(next.n > next.m, 'sequences continue after the copied rows');
  assert.match(log, /neutralize\.log base: UPDATE ir_mail_server/);
  assert.match(log, /neutralize\.log: rules applied for base, iap, mail, payment, payment_stripe, web; installed modules without neutralize rules: contacts/);
  assert.match(log, /mask\.log: res_partner: 1000 rows/);
  assert.match(log, /sampled \d+ emails, \d+ phone numbers, \d+ VAT numbers, [1-9]\d* person names and [1-9]\d* street lines of the source/);
  assert.match(log, /verified: no sampled email, phone, VAT, person name or street line/);
  assert.match(log, /masking: the default profile \(the project has none of its own\)/);
  assert.ok(!log.includes(PASSWORD));
  await assertFreshAdminPassword('acme_staging', run, log);

  // Filestore: only the assets travel, with their checksums; business documents are emptied.
  const files = await fingerprintDir(fs('acme_staging'));
  const kept = await sql('acme_staging', `select store_fname, checksum from ir_attachment where store_fname is not null`);
  assert.ok(kept.length > 0);
  assert.deepEqual(Object.keys(files).sort(), kept.map((r) => r.store_fname).sort(), log.split('\n').filter((l) => /filestore/.test(l)).join('\n'));
  for (const k of kept) assert.equal(files[k.store_fname], k.checksum);
  assert.deepEqual((await sql('acme_staging', `select distinct res_model from ir_attachment where store_fname is not null`)).map((r) => r.res_model), ['ir.ui.view']);
  assert.equal((await sql('acme_staging', `select count(*)::int as n from ir_attachment where res_model = 'res.partner' and (store_fname is not null or index_content is not null)`))[0].n, 0);
  assert.ok(Object.keys(files).every((f) => f in prodFiles));
  // Production's filestore is on this worker: the kept files are copied from it, not rebuilt from the store.
  assert.match(log, new RegExp(`copying the filestore's ${kept.length} kept files beside the current one\\n(.*\\n)*.*filestore copied beside the current one \\(${kept.length} files`));
  assert.doesNotMatch(log, /unpacking the filestore/);

  // The masked clone is kept as a 'clone' backup of staging (what dev containers pull).
  const { rows } = await cp!.pool.query(`select b.kind, b.manifest from ops.backups b join ops.environments e on e.id = b.environment_id where e.name = 'staging'`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].kind, 'clone');
  assert.deepEqual(rows[0].manifest.clone, { source: 'production', sourceStage: 'production', masked: true, filestore: 'assets' });

  // A second clone is a fresh copy with other fakes (deterministic per clone, not across clones).
  const firstEmails = await sql('acme_staging', 'select email from res_partner order by id limit 5');
  await sql('acme_staging', `insert into ir_config_parameter (key, value) values ('only.in.staging', 'x')`);
  const again = await runToEnd('staging', 'clone');
  assert.equal(again.status, 'succeeded', again.error ?? '');
  assert.equal((await sql('acme_staging', `select count(*)::int as n from ir_config_parameter where key = 'only.in.staging'`))[0].n, 0, 'a fresh database');
  assert.notDeepEqual(await sql('acme_staging', 'select email from res_partner order by id limit 5'), firstEmails);
});

test('production is never neutralized or masked', async () => {
  const before = await fingerprintDb(odooPg!, 'acme_prod');
  // Refused when queued (the worker refuses a clone queued past the API too: run-params.test.ts).
  const run = await p.queue('production', 'clone', { from: 'staging' });
  assert.equal(run.status, 400, JSON.stringify(run.body));
  assert.match(run.body.error.message, /production is a production environment: OdooOps never neutralizes or masks production/);
  assert.deepEqual(await fingerprintDb(odooPg!, 'acme_prod'), before);
});

test('clone from a production backup into development, with the backup\'s filestore', async () => {
  const b = await runToEnd('production', 'backup');
  assert.equal(b.status, 'succeeded', b.error ?? '');
  const backupId = (b.result as { backupId: string }).backupId;
  // Restoring it as it is into development is refused when queued: that is what a clone is for.
  const refused = await p.queue('dev', 'restore', { backup: backupId });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.match(refused.body.error.message, /needs the clone rules/);
  const run = await runToEnd('dev', 'clone', { backup: backupId });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  await assertMaskedAndNeutralized('acme_dev', 'http://localhost:8069');
  const log = await logText(run.id);
  assert.match(log, /the backup is restored unmasked only on the production database server .* as acme_prod_odooops_src_\d+/);
  assert.match(log, /the unmasked copy acme_prod_odooops_src_\d+ was dropped\n(.*\n)*.*neutralize\.log/, 'dropped as soon as the masked copy exists');
  const kept = await sql('acme_dev', `select store_fname, checksum from ir_attachment where store_fname is not null`);
  const files = await fingerprintDir(fs('acme_dev'));
  assert.deepEqual(Object.keys(files).sort(), kept.map((r) => r.store_fname).sort());
  // The backup's files are in the store only: they are rebuilt from it, each checked.
  assert.match(log, /unpacking the filestore beside the current one \(\d+ files\)/);
  assert.deepEqual(await sideDbs(), []);
});

let developer: TestUser;
const masking = (who: TestUser, method: string, body?: unknown) => who.call(method, '/api/projects/acme/masking', body);
const cloneCount = async () => (await cp!.pool.query(`select count(*)::int as n from ops.backups where kind = 'clone'`)).rows[0].n as number;
const runCount = async () => (await cp!.pool.query(`select count(*)::int as n from ops.runs`)).rows[0].n as number;

test('masking is the project\'s policy: members read it, an admin sets it (audited), a developer cannot', async () => {
  developer = await cp.user();
  assert.equal((await p.admin.call('POST', '/api/projects/acme/members', { userId: developer.id, role: 'developer' })).status, 201);
  const read = await masking(developer, 'GET');
  assert.equal(read.status, 200);
  const current = read.body as C.ProjectMasking;
  assert.equal(current.isDefault, true);
  assert.deepEqual(current.profile.columns['res_partner.name'], { strategy: 'name' });
  assert.ok(current.floors.some((f) => f.startsWith('res_users.password: null')));

  const stricter = defaultMaskProfile();
  stricter.columns['res_partner.country_code'] = { strategy: 'fixed', value: 'ZZ' };
  const refused = await masking(developer, 'PUT', stricter);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /only admins of "acme" can change its masking profile/);
  const lowered = await masking(p.admin, 'PUT', { ...stricter, columns: { ...stricter.columns, 'res_users.password': { strategy: 'keep' } } });
  assert.equal(lowered.status, 400);
  assert.equal(lowered.body.error.code, 'masking_floor');
  assert.match(lowered.body.error.message, /res_users\.password \(keep: it is always null\)/);
  const invalid = await masking(p.admin, 'PUT', { version: 1, columns: { 'res_partner.email': { strategy: 'scramble' } } });
  assert.equal(invalid.status, 400);
  assert.match(invalid.body.error.message, /columns\.res_partner\.email\.strategy/);

  const set = await masking(p.admin, 'PUT', stricter);
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal((set.body as C.ProjectMasking).isDefault, false);
  assert.deepEqual((await masking(developer, 'GET')).body.profile.columns['res_partner.country_code'], { strategy: 'fixed', value: 'ZZ' });
  const audit = (await p.admin.call('GET', '/api/projects/acme/audit?limit=20')).body as C.AuditEntry[];
  const entry = audit.find((a) => a.action === 'projects.update' && (a.details as any).new?.mask_profile);
  assert.ok(entry, JSON.stringify(audit.map((a) => a.action)));
  assert.equal(entry.actor, p.admin.id);
  assert.deepEqual((entry.details as any).new.mask_profile.columns['res_partner.country_code'], { strategy: 'fixed', value: 'ZZ' });
  assert.equal((entry.details as any).old.mask_profile, undefined, 'it was the default (null) before');
  // Not even through the database: a developer's session cannot write the column.
  await assert.rejects(cp.sql(developer, (c) => c.query(`update ops.projects set mask_profile = '{"version": 1, "columns": {}}' where slug = 'acme'`)).then((r) => {
    if (r.rowCount === 0) throw new Error('no row updated');
  }));
});

test('a clone run can only make the project\'s masking stricter: refused at queue time, and again when a run queued in SQL starts', async () => {
  const runsBefore = await runCount();
  const clonesBefore = await cloneCount();
  const weaker = { version: 1, columns: { 'res_partner.name': { strategy: 'keep' }, 'res_partner.street': { strategy: 'text' }, 'res_users.password': { strategy: 'keep' } } };
  const q = await developer.call('POST', '/api/projects/acme/environments/dev/runs', { kind: 'clone', params: { profile: weaker } });
  assert.equal(q.status, 400, JSON.stringify(q.body));
  assert.equal(q.body.error.code, 'weakens_masking');
  assert.match(q.body.error.message, /on 3 column\(s\): res_partner\.name \(name → keep\), res_partner\.street \(null → text\), res_users\.password \(null → keep\); a run can only make masking stricter/);
  assert.match(q.body.error.hint, /odooops project masking acme --set FILE/);
  // A filter on a column the project masks masks fewer rows: refused too, as YAML as well.
  const filtered = await developer.call('POST', '/api/projects/acme/environments/dev/runs', {
    kind: 'clone', params: { profile: stringifyYaml({ version: 1, columns: { 'res_partner.email': { strategy: 'null', where: { column: 'country_code', op: 'eq', value: 'BE' } } } }) },
  });
  assert.equal(filtered.status, 400);
  assert.match(filtered.body.error.message, /res_partner\.email \(email → null where country_code eq "BE"\)/);
  const broken = await developer.call('POST', '/api/projects/acme/environments/dev/runs', { kind: 'clone', params: { profile: { version: 1, columns: { 'res_partner.email; drop table x': { strategy: 'null' } } } } });
  assert.equal(broken.status, 400);
  assert.match(broken.body.error.message, /params\.profile: invalid masking profile: columns/);
  assert.equal(await runCount(), runsBefore, 'nothing was queued');

  // Queued straight in SQL as the service role: the worker refuses it when it starts.
  const envId = (await cp.pool.query(`select e.id from ops.environments e join ops.projects p on p.id = e.project_id where p.slug = 'acme' and e.name = 'dev'`)).rows[0].id;
  const { rows } = await asUser(cp.pool, SERVICE_CLAIMS, (c) => c.query(`select run_id from ops.queue_run($1, 'clone', $2)`, [envId, JSON.stringify({ profile: weaker })]));
  const run = await p.finished(rows[0].run_id);
  assert.equal(run.status, 'failed');
  assert.match(run.error!, /the run's masking profile would mask less than the project's on 3 column\(s\): res_partner\.name \(name → keep\)/);
  assert.equal(await cloneCount(), clonesBefore, 'nothing was cloned');
  assert.deepEqual(await sideDbs(), []);
});

test('a stricter run profile is accepted and applied on top of the project\'s', async () => {
  // The project's profile (set above) writes ZZ into country_code; the run empties it and mail_mail.
  const q = await developer.call('POST', '/api/projects/acme/environments/dev/runs', {
    kind: 'clone', params: { profile: { version: 1, columns: { 'res_partner.country_code': { strategy: 'null' } }, truncate: ['mail_mail'] } },
  });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const run = await p.finished(q.body.id);
  const log = await logText(run.id);
  assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
  assert.match(log, /masking: the project's profile, made stricter by the run's profile/);
  assert.deepEqual(await sql('acme_dev', `select count(*)::int as n, count(country_code)::int as codes from res_partner`), [{ n: 1000, codes: 0 }]);
  assert.equal((await sql('acme_dev', 'select count(*)::int as n from mail_mail'))[0].n, 0);
  assert.ok((await sql('acme_prod', 'select count(*)::int as n from mail_mail'))[0].n > 0);
  // Without the run's rules, the project's own profile applies.
  const plain = await runToEnd('dev', 'clone');
  assert.equal(plain.status, 'succeeded', plain.error ?? '');
  assert.deepEqual(await sql('acme_dev', `select distinct country_code from res_partner`), [{ country_code: 'ZZ' }]);

  const reset = await masking(p.admin, 'DELETE');
  assert.equal(reset.status, 200);
  assert.equal((reset.body as C.ProjectMasking).isDefault, true);
  assert.equal((await masking(developer, 'DELETE')).status, 403);
});

test('a project profile that keeps partner names fails verification naming the columns; nothing is cloned', async () => {
  const before = await fingerprintDb(odooPg!, 'acme_staging');
  const beforeFiles = await fingerprintDir(fs('acme_staging'));
  const clonesBefore = await cloneCount();
  const keepNames = defaultMaskProfile();
  for (const c of ['name', 'complete_name']) keepNames.columns[`res_partner.${c}`] = { strategy: 'keep' };
  try {
    assert.equal((await masking(p.admin, 'PUT', keepNames)).status, 200);
    const run = await runToEnd('staging', 'clone');
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /the masked copy failed verification, nothing was cloned: /);
    assert.match(run.error!, /row\(s\) of res_partner\.complete_name still hold a source name/);
    assert.match(run.error!, /row\(s\) of res_partner\.name still hold a source name/);
    assert.doesNotMatch(run.error!, /email|phone|vat|street/, 'only the names were kept');
    const someName = (await sql('acme_prod', `select name from res_partner order by id limit 1`))[0].name;
    assert.ok(!run.error!.includes(someName), 'the error names columns, not values');
    assert.deepEqual(await fingerprintDb(odooPg!, 'acme_staging'), before);
    assert.deepEqual(await fingerprintDir(fs('acme_staging')), beforeFiles);
    assert.deepEqual(await sideDbs(), []);
    assert.equal(await cloneCount(), clonesBefore);

    // A profile that masks nothing at all: the emails, phones and VATs are caught as before.
    assert.equal((await masking(p.admin, 'PUT', { version: 1, columns: {} })).status, 200);
    const none = await runToEnd('staging', 'clone');
    assert.equal(none.status, 'failed');
    assert.match(none.error!, /res_partner\.email still hold a source email/);
    assert.match(none.error!, /res_partner\.street still hold a source street/);
    assert.ok(!/@(gmail|proton|outlook)/.test(none.error!), 'the error names columns, not values');
    assert.equal(await cloneCount(), clonesBefore);
  } finally {
    assert.equal((await masking(p.admin, 'DELETE')).status, 200);
  }
});

test('a name or a street planted in a column the profile does not mask is caught', async () => {
  // Attachment names are not masked by the default profile; a CV or a lease named after a person is.
  const c = await odooPg!.client('acme_prod');
  let sample;
  try {
    await c.query('begin isolation level repeatable read');
    sample = await samplePii(c);
    await c.query('commit');
  } finally {
    await c.end();
  }
  assert.ok(sample.names!.length > 0 && sample.streets!.length > 0);
  const targets = await sql('acme_prod', `select id, name from ir_attachment where res_model = 'res.partner' order by id limit 2`);
  try {
    await sql('acme_prod', 'update ir_attachment set name = $2 where id = $1', [targets[0].id, `CV ${sample.names![0]!.toUpperCase()}.pdf`]);
    await sql('acme_prod', 'update ir_attachment set name = $2 where id = $1', [targets[1].id, `Lease-${sample.streets![0]!.replaceAll(' ', '_')}.pdf`]);
    const run = await runToEnd('dev', 'clone');
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /1 row\(s\) of ir_attachment\.name still hold a source name/);
    assert.match(run.error!, /1 row\(s\) of ir_attachment\.name still hold a source street/);
  } finally {
    for (const t of targets) await sql('acme_prod', 'update ir_attachment set name = $2 where id = $1', [t.id, t.name]);
  }
  assert.deepEqual(await sideDbs(), []);
});

test('the floors hold whatever the project\'s profile says: no password hash, TOTP secret or API key leaves production', async () => {
  // A profile written past the API (which refuses it) that keeps them all.
  const lax = defaultMaskProfile();
  lax.columns['res_users.password'] = { strategy: 'keep' };
  lax.columns['res_users.totp_secret'] = { strategy: 'keep' };
  lax.truncate = lax.truncate.filter((t) => !['res_users_apikeys', 'auth_totp_device'].includes(t));
  await cp.pool.query(`update ops.projects set mask_profile = $1 where slug = 'acme'`, [lax]);
  try {
    assert.ok((await sql('acme_prod', 'select count(*)::int as n from res_users_apikeys'))[0].n > 0);
    assert.ok((await sql('acme_prod', 'select count(*)::int as n from res_users where totp_secret is not null'))[0].n > 0);
    const run = await runToEnd('dev', 'clone');
    const log = await logText(run.id);
    assert.equal(run.status, 'succeeded', `${run.error}\n${log}`);
    assert.match(log, /mask\.log: res_users_apikeys emptied/);
    assert.match(log, /mask\.log: res_users: \d+ rows, login:email password:null signature:text totp_secret:null/);
    assert.equal((await sql('acme_dev', 'select count(*)::int as n from res_users_apikeys'))[0].n, 0);
    const prodHashes = new Set((await sql('acme_prod', 'select password from res_users')).map((r) => r.password));
    for (const r of await sql('acme_dev', 'select login, password, totp_secret from res_users')) {
      assert.equal(r.totp_secret, null);
      assert.ok(!prodHashes.has(r.password), `${r.login} has no production hash`);
      if (r.login !== 'admin') assert.equal(r.password, null);
    }
  } finally {
    await cp.pool.query(`update ops.projects set mask_profile = null where slug = 'acme'`);
  }
});

test('fake phone numbers can never equal real ones (the scale bug a 250k-partner clone found)', async () => {
  const phones = await sql('acme_staging', `select phone from res_partner where phone is not null`);
  assert.ok(phones.length > 0);
  for (const { phone } of phones) assert.match(phone, /^\+00 0\d{9}$/);
});

test('a YAML run profile with a row filter on a column the project does not mask: filtered rows get the rule, the others keep their value', async () => {
  const profile = { version: 1, columns: { 'res_partner.country_code': { strategy: 'fixed', value: "Benelux (masked) 'quoted'", where: { column: 'country_code', op: 'in', value: ['BE', 'NL'] } } } };
  const run = await runToEnd('dev', 'clone', { profile: stringifyYaml(profile) });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  const prod = new Map((await sql('acme_prod', 'select id, country_code from res_partner')).map((r) => [r.id, r.country_code]));
  const dev = await sql('acme_dev', 'select id, country_code from res_partner');
  assert.equal(dev.length, prod.size);
  let filtered = 0;
  for (const r of dev) {
    const was = prod.get(r.id);
    if (['BE', 'NL'].includes(was)) filtered++;
    assert.equal(r.country_code, ['BE', 'NL'].includes(was) ? "Benelux (masked) 'quoted'" : was, 'rows outside the filter are not touched');
  }
  assert.ok(filtered > 0 && filtered < dev.length);
});

test('filestore policy "placeholders": business documents point to a placeholder file, images to an image', async () => {
  const run = await runToEnd('dev', 'clone', { filestore: 'placeholders' });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  assert.match(await logText(run.id), /mask\.log: \d+ filestore files travel, \d+ business attachments point to placeholder files/);
  const files = await fingerprintDir(fs('acme_dev'));
  const docs = await sql('acme_dev', `select mimetype, store_fname, checksum, file_size from ir_attachment where res_model = 'res.partner'`);
  const prodDocs = await sql('acme_prod', `select mimetype, count(*)::int as n from ir_attachment where res_model = 'res.partner' group by 1 order by 1`);
  assert.deepEqual(prodDocs.map((r) => r.mimetype), ['application/pdf', 'image/png'], 'the generator makes both kinds');
  assert.equal(docs.length, prodDocs.reduce((n, r) => n + r.n, 0), 'every business attachment keeps its record');
  assert.deepEqual([...new Set(docs.map((d) => d.mimetype))].sort(), ['image/png', 'text/plain']);
  assert.equal(new Set(docs.map((d) => d.store_fname)).size, 2, 'all of them share two placeholder files');
  for (const d of docs) {
    assert.equal(files[d.store_fname], d.checksum, 'the placeholder file is in the filestore under its SHA-1');
    const content = readFileSync(join(fs('acme_dev'), d.store_fname));
    assert.equal(content.length, d.file_size);
    if (d.mimetype === 'image/png') assert.deepEqual([...content.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  }
  const prodFiles = await fingerprintDir(fs('acme_prod'));
  const assets = await sql('acme_dev', `select store_fname from ir_attachment where res_model = 'ir.ui.view'`);
  assert.ok(assets.length > 0 && assets.every((a) => a.store_fname in prodFiles && a.store_fname in files), 'assets travel as they are');
  assert.equal(Object.keys(files).length, assets.length + 2, 'no business document left production');
  assert.match(await logText(run.id), new RegExp(`filestore copied beside the current one \\(${assets.length + 2} files`), 'the placeholders are copied with the kept files');
});

test('a kept file that is a symbolic link in production\'s filestore does not travel, nor what it points to', async () => {
  const [asset] = await sql('acme_prod', `select store_fname from ir_attachment where res_model = 'ir.ui.view' and store_fname is not null order by id limit 1`);
  const path = join(fs('acme_prod'), asset.store_fname);
  const secret = join(fs('acme_prod'), '..', 'outside-secret.txt');
  writeFileSync(secret, 'operator secret\n');
  renameSync(path, `${path}.real`);
  symlinkSync(secret, path);
  try {
    const run = await runToEnd('dev', 'clone');
    assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
    const copied = join(fs('acme_dev'), asset.store_fname);
    assert.equal(existsSync(copied) || lstatExists(copied), false, 'neither the link nor its target is in the clone');
    const files = await fingerprintDir(fs('acme_dev'));
    assert.ok(Object.keys(files).length > 0, 'the other kept files travel');
  } finally {
    rmSync(path, { force: true });
    renameSync(`${path}.real`, path);
    rmSync(secret, { force: true });
  }
});

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

test('what a killed clone left on the production server (working and unmasked copies) is removed by the next clone', async () => {
  await sql('postgres', `create database acme_prod_odooops_mask_999998 owner ${ODOO_ROLE}`);
  await sql('postgres', `create database acme_prod_odooops_src_999999 owner ${ODOO_ROLE}`);
  const run = await runToEnd('dev', 'clone');
  assert.equal(run.status, 'succeeded', run.error ?? '');
  assert.match(await logText(run.id), /removed what an interrupted earlier run left: acme_prod_odooops_mask_999998, acme_prod_odooops_src_999999/);
  assert.deepEqual(await sideDbs(), []);
});
