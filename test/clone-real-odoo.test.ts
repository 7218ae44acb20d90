// Clones of real Odoo databases (17.0 and 19.0, made by odoo-bin: demo data, no demo data, and
// account/sale/stock) into staging through the real server: the clone succeeds although Odoo's module
// data and the company's own contact data sit in shipped views, templates and module descriptions; a
// customer's value planted in a view or a mail template still fails it (named by table.column, never
// printed); odoo-bin boots on the clone, admin and a salesperson log in with the project's clone password
// (admin with a fresh one where the project has none); every
// attachment has its file with its SHA-1 or is the emptied row; no customer's email, phone, VAT, name or
// street is left in any text column; only the autovacuum cron and the dummy mail server are active.
// One project (one control plane and one PostgreSQL) per version, the two versions at once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as C from '../contract/index.ts';
import { REAL_LOOKING, type SourceKind } from './helpers/odoo-sources.ts';
import { DB_SERVER, FILESTORE_ROOT, ODOO_ROLE, startOdooProject, type OdooProject } from './helpers/odoo-project.ts';
import { authenticate, installOdoo, serveOdoo, type OdooInstall } from './helpers/real-odoo.ts';

type Version = '17.0' | '19.0';
const KINDS: SourceKind[] = ['demo', 'plain', 'sales'];
const customers = REAL_LOOKING.customers;

/** Every text, varchar and jsonb column of the clone, searched for every customer value (not a sample). */
async function customerValuesLeft(p: OdooProject, db: string): Promise<string[]> {
  const needles = customers.flatMap((c) => [c.email, c.phone, c.phone.replace(/ /g, ''), c.vat, c.name, c.street]);
  const cols = await p.sql<{ t: string; c: string }>(db, `
    select c.table_name as t, c.column_name as c from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.data_type in ('text', 'character varying', 'character', 'jsonb')`);
  assert.ok(cols.length > 500, `a real Odoo database has hundreds of text columns (${cols.length})`);
  const byTable = new Map<string, string[]>();
  for (const r of cols) byTable.set(r.t, [...(byTable.get(r.t) ?? []), r.c]);
  const client = await p.odooPg.client(db);
  const found: string[] = [];
  try {
    for (const [t, cs] of byTable) {
      const q = (x: string) => `"${x.replace(/"/g, '""')}"`;
      const r = await client.query(
        `select ${cs.map((c, i) => `count(*) filter (where ${q(c)}::text ilike any($1::text[])) as c${i}`).join(', ')} from ${q(t)}`,
        [needles.map((n) => `%${n.replace(/[\\%_]/g, (m) => `\\${m}`)}%`)],
      );
      cs.forEach((c, i) => Number(r.rows[0][`c${i}`]) > 0 && found.push(`${t}.${c}`));
    }
  } finally {
    await client.end();
  }
  return found;
}

/** A project with its production (a real source of `kind`) and a staging environment to clone into. */
async function addProject(base: OdooProject, slug: string, prodDb: string, stagingDb: string) {
  if (slug !== base.slug) {
    assert.equal((await base.admin.call('POST', '/api/projects', { slug, name: slug })).status, 201);
    const reg = base.registry;
    await base.addInfra({
      databaseServers: { [DB_SERVER]: { ...reg.databaseServers![DB_SERVER]!, projects: [...(reg.databaseServers![DB_SERVER]!.projects as string[]), slug] } },
      filestoreRoots: { [FILESTORE_ROOT]: { ...reg.filestoreRoots![FILESTORE_ROOT]!, projects: [...(reg.filestoreRoots![FILESTORE_ROOT]!.projects as string[]), slug] } },
    });
  }
  for (const [name, stage, db] of [['production', 'production', prodDb], ['staging', 'staging', stagingDb]] as const) {
    const r = await base.admin.call('POST', `/api/projects/${slug}/environments`, {
      name, stage, filestore: FILESTORE_ROOT, database: { server: DB_SERVER, name: db }, ...(stage === 'staging' ? { url: 'http://localhost:8069' } : {}),
    });
    if (r.status !== 201) assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  return {
    slug,
    clone: async (params: object = {}): Promise<C.Run> => {
      const q = await base.admin.call('POST', `/api/projects/${slug}/environments/staging/runs`, { kind: 'clone', params });
      assert.equal(q.status, 201, JSON.stringify(q.body));
      return base.finished(q.body.id, 600_000);
    },
    /** The clone's admin login and fresh password, as members who may operate staging read them. */
    adminLogin: async (): Promise<{ login: string; password: string }> => {
      const r = await base.admin.call('GET', `/api/projects/${slug}/environments/staging/clone-login`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.password && r.body.logins.includes('admin'), JSON.stringify(r.body));
      return { login: 'admin', password: r.body.password };
    },
  };
}

async function assertAttachmentsWhole(p: OdooProject, src: string, db: string) {
  const rows = await p.sql(db, `select id, res_model, res_field, res_id, store_fname, checksum, file_size, db_datas is not null as in_db, mimetype from ir_attachment`);
  assert.ok(rows.length > 10, `${db} has attachments (${rows.length})`);
  let files = 0;
  let emptied = 0;
  for (const a of rows) {
    if (a.store_fname) {
      const path = join(p.fs(db), a.store_fname);
      assert.ok(existsSync(path), `attachment ${a.id} (${a.res_model}.${a.res_field}) points to ${a.store_fname}, which the clone's filestore lacks`);
      assert.equal(createHash('sha1').update(readFileSync(path)).digest('hex'), a.checksum, `attachment ${a.id}'s file has its SHA-1`);
      files++;
    } else if (!a.in_db) {
      // The documented emptied row of a file that stayed behind: no file, no checksum, size 0.
      assert.equal(a.checksum, null, `attachment ${a.id} without a file has no checksum`);
      assert.equal(Number(a.file_size ?? 0), 0, `attachment ${a.id} without a file has size 0`);
      emptied++;
    }
  }
  assert.ok(files > 0 && emptied > 0, `files kept (${files}) and business files left behind (${emptied})`);
  // Kept: the company's logo (its partner's images) and the avatars of internal users.
  const own = await p.sql(src, `select a.res_id, a.res_field from ir_attachment a where a.res_model = 'res.partner' and a.res_field like 'image%'
    and a.store_fname is not null and a.res_id in (select partner_id from res_company union select partner_id from res_users where not share)`);
  assert.ok(own.length >= 5, `the source has a company logo (${own.length} images of the company and internal users)`);
  const keptOwn = await p.sql(db, `select count(*)::int as n from ir_attachment where res_model = 'res.partner' and res_field like 'image%' and store_fname is not null
    and res_id = any($1::int[])`, [own.map((r) => r.res_id)]);
  assert.equal(keptOwn[0].n, own.length, 'the company logo and internal users\' avatars travel with the clone');
  // Left behind: the customer's photo and document.
  const customer = await p.sql(db, `select a.name, a.store_fname from ir_attachment a join res_partner p on p.id = a.res_id
    where a.res_model = 'res.partner' and p.id in (select id from res_partner where id not in (select partner_id from res_company)
      and id not in (select partner_id from res_users) and id not in (select res_id from ir_model_data where model = 'res.partner'))`);
  assert.ok(customer.length >= 6, `the customer's photo (5 sizes) and document are still listed (${customer.length})`);
  assert.deepEqual(customer.filter((a) => a.store_fname), [], 'no customer\'s file travels');
  return { files, emptied };
}

async function assertNeutralized(p: OdooProject, db: string) {
  const crons = await p.sql(db, `select coalesce(d.module || '.' || d.name, 'cron ' || c.id) as n from ir_cron c
    left join ir_model_data d on d.model = 'ir.cron' and d.res_id = c.id where c.active`);
  assert.deepEqual(crons.map((r) => r.n), ['base.autovacuum_job'], 'only the autovacuum cron is active');
  const servers = await p.sql(db, `select smtp_host, smtp_port from ir_mail_server where active`);
  assert.deepEqual(servers, [{ smtp_host: p.cp.server.mailCatcher!.host, smtp_port: p.cp.server.mailCatcher!.port }], 'only the mail catcher is active (Odoo\'s dummy server, pointed at it)');
}

type Login = { login: string; password: string };

/** Boots odoo-bin on the clone; every login given (the admin first) gets in with its password, not with another. */
async function bootAndLogIn(p: OdooProject, odoo: OdooInstall, db: string, logins: Login[]) {
  const admin = logins[0]!;
  const t = performance.now();
  // The clone's filestore is <root>/<db>: the root is odoo-bin's data dir's "filestore".
  const odooSrv = await serveOdoo(odoo, { host: p.odooPg.host, port: p.odooPg.port, user: ODOO_ROLE, password: p.password }, p.scratch, db);
  try {
    const boot = (performance.now() - t) / 1000;
    const login = await fetch(`${odooSrv.url}/web/login?db=${db}`);
    assert.equal(login.status, 200, `/web/login: ${login.status}\n${odooSrv.output().slice(-2000)}`);
    for (const l of logins) {
      const uid = await authenticate(odooSrv, db, l.login, l.password);
      assert.equal(typeof uid, 'number', `${l.login} logs in with the clone's password`);
      assert.equal(await authenticate(odooSrv, db, l.login, `${l.password}-wrong`), null);
    }
    // Images as Odoo serves them to a logged-in user: the company's logo from its file, a customer's
    // emptied photo as Odoo's default (no error, nothing broken).
    const auth = await fetch(`${odooSrv.url}/web/session/authenticate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { db, login: admin.login, password: admin.password } }),
    });
    const cookie = (auth.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.match(cookie, /^session_id=/);
    const image = async (id: number) => {
      const r = await fetch(`${odooSrv.url}/web/image/res.partner/${id}/image_128`, { headers: { cookie } });
      return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
    };
    const [logo] = await p.sql(db, `select a.res_id, a.store_fname from ir_attachment a where a.res_model = 'res.partner' and a.res_field = 'image_128'
      and a.res_id = (select partner_id from res_company order by id limit 1)`);
    const served = await image(logo.res_id);
    assert.equal(served.status, 200);
    assert.ok(served.body.equals(readFileSync(join(p.fs(db), logo.store_fname))), 'the logo Odoo serves is the kept file');
    const [photo] = await p.sql(db, `select a.res_id from ir_attachment a join res_partner p on p.id = a.res_id
      where a.res_model = 'res.partner' and a.res_field = 'image_128' and a.store_fname is null and p.name not like 'OdooBot%' order by a.id limit 1`);
    assert.ok(photo, 'a customer\'s photo was emptied');
    const fallback = await image(photo.res_id);
    assert.equal(fallback.status, 200, `a customer's emptied photo: ${fallback.status}\n${odooSrv.output().slice(-2000)}`);
    assert.match(fallback.type ?? '', /^image\//);
    assert.doesNotMatch(odooSrv.output(), /FileNotFoundError|_file_read.*not found/, 'no attachment file is missing');
    return boot;
  } finally {
    await odooSrv.stop();
  }
}

/** Plants a customer's email in a shipped text (a view's arch on 17, a mail template's body on 19); returns the undo. */
async function plantCustomerEmail(p: OdooProject, version: Version, db: string): Promise<{ column: string; undo: () => Promise<void> }> {
  const email = customers[0].email;
  if (version === '17.0') {
    const [v] = await p.sql(db, `insert into ir_ui_view (name, key, type, mode, priority, active, arch_db)
      values ('odooops planted contact', 'odooops.planted', 'qweb', 'primary', 16, true, jsonb_build_object('en_US', $1::text)) returning id`,
    [`<t t-name="odooops.planted"><p>Write to ${email}</p></t>`]);
    return { column: 'ir_ui_view.arch_db', undo: async () => void (await p.sql(db, 'delete from ir_ui_view where id = $1', [v.id])) };
  }
  const [t] = await p.sql(db, `select id, body_html from mail_template where body_html is not null order by id limit 1`);
  await p.sql(db, `update mail_template set body_html = jsonb_build_object('en_US', $2::text) where id = $1`, [t.id, `<p>Questions? ${email}</p>`]);
  return { column: 'mail_template.body_html', undo: async () => void (await p.sql(db, 'update mail_template set body_html = $2 where id = $1', [t.id, t.body_html])) };
}

async function cloneVersion(version: Version) {
  const n = version.slice(0, 2);
  const odoo = await installOdoo(version);
  const dbs = Object.fromEntries(KINDS.map((k) => [k, { prod: `${k}${n}_prod`, staging: `${k}${n}_staging` }])) as Record<SourceKind, { prod: string; staging: string }>;
  const p = await startOdooProject({
    slug: `real${n}-demo`, generate: {}, envs: [],
    real: Object.fromEntries(KINDS.map((k) => [dbs[k].prod, { version, kind: k }])),
  });
  try {
    // One after the other: each reads, extends and writes the registry.
    const projects: Partial<Record<SourceKind, Awaited<ReturnType<typeof addProject>>>> = {};
    for (const k of KINDS) projects[k] = await addProject(p, k === 'demo' ? p.slug : `real${n}-${k}`, dbs[k].prod, dbs[k].staging);
    // demo and sales have the project's clone password (a registry secret): admin and the salesperson log in
    // with it; plain has none, so its admin gets a fresh one that operators read.
    const secretVar = `ODOOOPS_TEST_CLONE_PW_${n}_${process.pid}`;
    const secretValue = `clone-${n}-${randomUUID()}`;
    process.env[secretVar] = secretValue;
    const withSecret: SourceKind[] = ['demo', 'sales'];
    await p.addInfra({ secrets: { [`clone-pw-${n}`]: { value: `env:${secretVar}`, projects: withSecret.map((k) => projects[k]!.slug) } } });
    for (const k of withSecret) {
      const r = await p.admin.call('PATCH', `/api/projects/${projects[k]!.slug}`, { clonePasswordSecret: `clone-pw-${n}` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const loginsOf = async (kind: SourceKind, prod: string): Promise<Login[]> => {
      if (!withSecret.includes(kind)) return [await projects[kind]!.adminLogin()];
      const [sofie] = await p.sql<{ id: number }>(prod, 'select id from res_users where login = $1', [REAL_LOOKING.user.login]);
      return [{ login: 'admin', password: secretValue }, { login: `user-${sofie!.id}`, password: secretValue }];
    };

    // A customer's email in a shipped text still fails the clone: the column named, the value not.
    const planted = await plantCustomerEmail(p, version, dbs.demo.prod);
    const failed = await projects.demo!.clone();
    await planted.undo();
    const failedLog = await p.logText(failed.id);
    assert.equal(failed.status, 'failed', failedLog.slice(-3000));
    assert.match(failed.error ?? '', new RegExp(`masked copy failed verification.*${planted.column.replace('.', '\\.')} still hold a source email`), failed.error ?? '');
    for (const text of [failed.error ?? '', failedLog]) assert.ok(!text.includes(customers[0].email) && !text.includes('klant-mail'), 'the value is never printed');
    assert.deepEqual(await p.sql('postgres', `select datname from pg_database where datname = $1`, [dbs.demo.staging]), [], 'nothing was cloned');
    console.log(`# Odoo ${version}: a customer's email in ${planted.column} failed the clone in ${((Date.parse(failed.finishedAt!) - Date.parse(failed.startedAt!)) / 1000).toFixed(1)} s`);

    for (const kind of KINDS) {
      const { prod, staging } = dbs[kind];
      const run = await projects[kind]!.clone();
      const log = await p.logText(run.id);
      assert.equal(run.status, 'succeeded', `${version} ${kind}: ${run.error}\n${log.slice(-4000)}`);
      const seconds = (run.result as { seconds: number }).seconds;
      const files = await assertAttachmentsWhole(p, prod, staging);
      assert.deepEqual(await customerValuesLeft(p, staging), [], `no customer's email, phone, VAT, name or street in any text column of the ${kind} clone`);
      // The sources really hold them (the scan can find them).
      assert.ok((await customerValuesLeft(p, prod)).includes('res_partner.email'), 'the scan finds the customers in production');
      // The company's own contact data stays readable (profile companies: keep).
      const [company] = await p.sql(staging, `select c.name, p.email, p.vat, p.street from res_company c join res_partner p on p.id = c.partner_id order by c.id limit 1`);
      assert.deepEqual(company, { name: REAL_LOOKING.company.name, email: REAL_LOOKING.company.email, vat: REAL_LOOKING.company.vat, street: REAL_LOOKING.company.street });
      await assertNeutralized(p, staging);
      // Product images are not personal data: they travel (the sales databases have hundreds).
      const productImages = `select count(*)::int as n from ir_attachment where res_model like 'product.%' and res_field like 'image\\_%' and store_fname is not null`;
      const [[srcImages], [cloneImages]] = await Promise.all([p.sql(prod, productImages), p.sql(staging, productImages)]);
      assert.equal(cloneImages.n, srcImages.n, 'every product image travels');
      if (kind === 'sales') assert.ok(srcImages.n > 100, `the sales source has product images (${srcImages.n})`);
      const logins = await loginsOf(kind, prod);
      const boot = await bootAndLogIn(p, odoo, staging, logins);
      console.log(`# Odoo ${version} ${kind}: clone ${seconds.toFixed(1)} s (${files.files} files kept, ${files.emptied} emptied), odoo-bin up in ${boot.toFixed(1)} s, ${logins.map((l) => l.login).join(' and ')} logged in`);
    }

    // A profile that masks the companies' own data too (a sole trader's): masked, and the clone still verifies.
    const masked = await projects.plain!.clone({ profile: { version: 1, columns: {}, companies: 'mask' } });
    assert.equal(masked.status, 'succeeded', `${masked.error}\n${(await p.logText(masked.id)).slice(-3000)}`);
    const [company] = await p.sql(dbs.plain.staging, `select p.name, p.email, p.vat, p.street from res_company c join res_partner p on p.id = c.partner_id order by c.id limit 1`);
    assert.notEqual(company.email, REAL_LOOKING.company.email);
    assert.notEqual(company.name, REAL_LOOKING.company.name);
    assert.deepEqual([company.vat, company.street], [null, null]);
    console.log(`# Odoo ${version} plain with the companies' data masked: clone ${(masked.result as { seconds: number }).seconds.toFixed(1)} s`);
  } finally {
    await p.close();
  }
}

describe('clones of real Odoo databases', { concurrency: 2 }, () => {
  for (const version of ['17.0', '19.0'] as const) test(`Odoo ${version}: demo, plain and sales databases clone, boot and log in; a customer's value in a shipped text fails the clone`, { timeout: 1_800_000 }, () => cloneVersion(version));
});
