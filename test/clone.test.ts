// Clone runs (production → staging/development) on real PostgreSQL 15 with generated Odoo-17-shaped
// data: neutralized like Odoo's neutralize.sql, secrets scrubbed, personal data masked by the default
// profile, verified, and the unmasked copy never outside the production server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { defaultMaskProfile } from '../server/odoo/mask.ts';
import { findPii } from '../server/odoo/verify.ts';
import type { TestControlPlane } from './helpers/control-plane.ts';
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

/** Every email, phone and VAT of production (not a sample): none may be left in a clone. */
async function allProductionPii() {
  const col = async (q: string) => (await sql<{ v: string }>('acme_prod', q)).map((r) => r.v);
  return {
    emails: await col(`select distinct lower(email) as v from res_partner where email is not null`),
    phones: await col(`select distinct phone as v from res_partner where phone is not null union select mobile from res_partner where mobile is not null`),
    vats: await col(`select distinct vat as v from res_partner where vat is not null`),
  };
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
  const servers = await sql(db, `select smtp_host, smtp_port, smtp_user, smtp_pass from ir_mail_server where active`);
  assert.deepEqual(servers, [{ smtp_host: 'invalid', smtp_port: 1025, smtp_user: null, smtp_pass: null }]);
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
  assert.match(log, /verified: no sampled email/);
  assert.ok(!log.includes(PASSWORD));

  // Filestore: only the assets travel, with their checksums; business documents are emptied.
  const files = await fingerprintDir(fs('acme_staging'));
  const kept = await sql('acme_staging', `select store_fname, checksum from ir_attachment where store_fname is not null`);
  assert.ok(kept.length > 0);
  assert.deepEqual(Object.keys(files).sort(), kept.map((r) => r.store_fname).sort(), log.split('\n').filter((l) => /filestore/.test(l)).join('\n'));
  for (const k of kept) assert.equal(files[k.store_fname], k.checksum);
  assert.deepEqual((await sql('acme_staging', `select distinct res_model from ir_attachment where store_fname is not null`)).map((r) => r.res_model), ['ir.ui.view']);
  assert.equal((await sql('acme_staging', `select count(*)::int as n from ir_attachment where res_model = 'res.partner' and (store_fname is not null or index_content is not null)`))[0].n, 0);
  assert.ok(Object.keys(files).every((f) => f in prodFiles));

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
  const run = await runToEnd('production', 'clone', { from: 'staging' });
  assert.equal(run.status, 'failed');
  assert.match(run.error!, /production is a production environment: OdooOps never neutralizes or masks production/);
  assert.deepEqual(await fingerprintDb(odooPg!, 'acme_prod'), before);
});

test('clone from a production backup into development, with the backup\'s filestore', async () => {
  const b = await runToEnd('production', 'backup');
  assert.equal(b.status, 'succeeded', b.error ?? '');
  const backupId = (b.result as { backupId: string }).backupId;
  // Restoring it as it is into development is refused: that is what a clone is for.
  const refused = await runToEnd('dev', 'restore', { backup: backupId });
  assert.match(refused.error!, /needs the clone rules/);
  const run = await runToEnd('dev', 'clone', { backup: backupId });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  await assertMaskedAndNeutralized('acme_dev', 'http://localhost:8069');
  const log = await logText(run.id);
  assert.match(log, /the backup is restored unmasked only on the production database server .* as acme_prod_odooops_src_\d+/);
  assert.match(log, /the unmasked copy acme_prod_odooops_src_\d+ was dropped\n(.*\n)*.*neutralize\.log/, 'dropped as soon as the masked copy exists');
  const kept = await sql('acme_dev', `select store_fname, checksum from ir_attachment where store_fname is not null`);
  const files = await fingerprintDir(fs('acme_dev'));
  assert.deepEqual(Object.keys(files).sort(), kept.map((r) => r.store_fname).sort());
  assert.deepEqual(await sideDbs(), []);
});

test('a copy that fails verification is not cloned, and the unmasked copy is dropped', async () => {
  const before = await fingerprintDb(odooPg!, 'acme_staging');
  const beforeFiles = await fingerprintDir(fs('acme_staging'));
  const clonesBefore = (await cp!.pool.query(`select count(*)::int as n from ops.backups where kind = 'clone'`)).rows[0].n;
  // A profile that masks nothing: the verification must catch it.
  const run = await runToEnd('staging', 'clone', { profile: { version: 1, columns: {} } });
  assert.equal(run.status, 'failed');
  assert.match(run.error!, /the masked copy failed verification, nothing was cloned: .*res_partner\.email still hold a source email/);
  assert.ok(!/@(gmail|proton|outlook)/.test(run.error!), 'the error names columns, not values');
  assert.deepEqual(await fingerprintDb(odooPg!, 'acme_staging'), before);
  assert.deepEqual(await fingerprintDir(fs('acme_staging')), beforeFiles);
  assert.deepEqual(await sideDbs(), []);
  assert.equal((await cp!.pool.query(`select count(*)::int as n from ops.backups where kind = 'clone'`)).rows[0].n, clonesBefore);

  const bad = await runToEnd('staging', 'clone', { profile: { version: 1, columns: { 'res_partner.email': { strategy: 'scramble' } } } });
  assert.equal(bad.status, 'failed');
  assert.match(bad.error!, /invalid masking profile: columns\.res_partner\.email\.strategy/);
  const injection = await runToEnd('staging', 'clone', { profile: { version: 1, columns: { 'res_partner.email; drop table x': { strategy: 'null' } } } });
  assert.match(injection.error!, /invalid masking profile: columns/);
  assert.ok(existsSync(fs('acme_staging')));
});

test('fake phone numbers can never equal real ones (the scale bug a 250k-partner clone found)', async () => {
  const phones = await sql('acme_staging', `select phone from res_partner where phone is not null`);
  assert.ok(phones.length > 0);
  for (const { phone } of phones) assert.match(phone, /^\+00 0\d{9}$/);
});

test('a YAML profile with a row filter: filtered rows get the rule, the others keep their value', async () => {
  const profile = defaultMaskProfile();
  profile.columns['res_partner.city'] = { strategy: 'fixed', value: "Brussels (masked) 'quoted'", where: { column: 'country_code', op: 'in', value: ['BE', 'NL'] } };
  const run = await runToEnd('dev', 'clone', { profile: stringifyYaml(profile) });
  assert.equal(run.status, 'succeeded', `${run.error}\n${await logText(run.id)}`);
  const byCountry = await sql('acme_dev', `select country_code in ('BE', 'NL') as filtered, array_agg(distinct city) as cities from res_partner group by 1 order by 1`);
  const prodCities = (await sql('acme_prod', `select distinct city from res_partner where country_code not in ('BE', 'NL') order by 1`)).map((r) => r.city);
  assert.deepEqual(byCountry.find((r) => r.filtered)?.cities, ["Brussels (masked) 'quoted'"]);
  assert.deepEqual(byCountry.find((r) => !r.filtered)?.cities.sort(), prodCities.sort(), 'rows outside the filter are not touched');
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
});

test('what a killed clone left on the production server (working and unmasked copies) is removed by the next clone', async () => {
  await sql('postgres', `create database acme_prod_odooops_mask_999998 owner ${ODOO_ROLE}`);
  await sql('postgres', `create database acme_prod_odooops_src_999999 owner ${ODOO_ROLE}`);
  const run = await runToEnd('dev', 'clone');
  assert.equal(run.status, 'succeeded', run.error ?? '');
  assert.match(await logText(run.id), /removed what an interrupted earlier run left: acme_prod_odooops_mask_999998, acme_prod_odooops_src_999999/);
  assert.deepEqual(await sideDbs(), []);
});
