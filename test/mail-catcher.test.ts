// The mail catcher on real Odoo: a real source database (odoo-sources.ts, plain: base, contacts, mail)
// cloned into staging through the real server; the clone's Odoo (odoo-bin shell) sends a mail with an
// attachment and hostile HTML, and it arrives in the catcher for that environment, readable through the
// API by those who may operate staging. Then the abuse cases: no AUTH, a wrong secret, another
// environment's secret, a production login (planted as if it had leaked), an oversized message, too many
// recipients or messages: refused, nothing stored; the API for a viewer, a developer (staging is not
// theirs) and a member of another project; an attachment named ../../x of type text/html downloads as a
// plain file named x. Mail goes with its environment.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import type * as C from '../contract/index.ts';
import { mailSecretHash, newMailSecret } from '../server/mail/login.ts';
import { CATCHER_SERVER } from '../server/odoo/catch-mail.ts';
import { realProductionAndStaging, type OdooProject } from './helpers/odoo-project.ts';
import { shell } from './helpers/odoo-sources.ts';
import { eventually, type TestRegistry } from './helpers/control-plane.ts';
import { ApiClient } from '../client/api-client.ts';
import { followProjects } from '../extension/src/projectFeed.ts';
import { MailBox, mailNodeLabel } from '../extension/src/mailBox.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const HOSTILE_HTML = `<p>Bonjour,</p><script>document.title='pwned'</script>
<img src="x" onerror="document.title='pwned-onerror'"><img src="http://tracker.example/pixel.png">
<p>Votre facture est jointe.</p>`;

async function staged(version: '17.0' | '19.0', slug: string) {
  const { odoo, p, server, data } = await realProductionAndStaging(version, slug, cleanups);
  const t0 = performance.now();
  const run = await p.runToEnd('staging', 'clone', { from: 'production' }, 600_000);
  const log = await p.logText(run.id);
  assert.equal(run.status, 'succeeded', `${run.error}\n${log.slice(-3000)}`);
  console.log(`# ${version}: clone into staging ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { odoo, p, server, data, log };
}

const mails = (p: OdooProject, env = 'staging', u = p.admin) => u.call('GET', `/api/projects/${p.slug}/environments/${env}/mails`);

/** Odoo's own way out: a mail.mail with an attachment, sent now through the active outgoing server. */
async function sendFromOdoo(s: Awaited<ReturnType<typeof staged>>, db: string, subject: string): Promise<string> {
  return shell(s.odoo, s.server, s.data, db, `
import base64
att = env['ir.attachment'].create({'name': '../../x', 'datas': base64.b64encode(b'<script>alert(1)</script>'), 'mimetype': 'text/html'})
pdf = env['ir.attachment'].create({'name': 'facture-2026-0042.pdf', 'datas': base64.b64encode(b'%PDF-1.4 facture'), 'mimetype': 'application/pdf'})
m = env['mail.mail'].create({'subject': ${JSON.stringify(subject)}, 'email_from': 'ventes@brasserie.example', 'email_to': 'client@klant-mail.example',
    'body_html': ${JSON.stringify(HOSTILE_HTML)}, 'attachment_ids': [(6, 0, [att.id, pdf.id])]})
m.send()
env.cr.commit()
print('STATE', m.state, m.failure_reason or '')
`);
}

async function arrives(p: OdooProject, subject: string): Promise<C.CaughtMail> {
  const list = await mails(p);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const found = (list.body as C.CaughtMailList).mails.find((m) => m.subject === subject);
  assert.ok(found, `the mail "${subject}" is in the catcher: ${JSON.stringify(list.body)}`);
  return found;
}

async function odooCase(version: '17.0' | '19.0', slug: string) {
  const s = await staged(version, slug);
  const { p } = s;
  const db = `${slug}_staging`;
  // The clone's outgoing server is the catcher, with staging's own login; production's servers are as they were.
  const servers = await p.sql(db, 'select * from ir_mail_server where active order by id');
  assert.equal(servers.length, 1, JSON.stringify(servers));
  const catcher = p.cp.server.mailCatcher!;
  assert.ok(catcher, 'the server runs a mail catcher');
  assert.equal(servers[0].name, CATCHER_SERVER);
  assert.equal(servers[0].smtp_host, catcher.host);
  assert.equal(servers[0].smtp_port, catcher.port);
  assert.equal(servers[0].smtp_user, `${slug}/staging`);
  assert.equal(servers[0].smtp_authentication, 'login');
  assert.equal(servers[0].smtp_encryption, 'none');
  if (version === '19.0') assert.equal(Number(servers[0].max_email_size), 10);
  const secret = servers[0].smtp_pass as string;
  assert.ok(secret.length >= 40, 'a long random secret');
  assert.ok(!s.log.includes(secret), 'the run log does not show the secret');
  const stored = (await p.cp.pool.query('select * from ops.mail_credentials')).rows;
  assert.equal(stored.length, 1);
  assert.ok(!JSON.stringify(stored).includes(secret), 'only a hash of the secret is in the control plane');
  assert.deepEqual(stored[0].secret_sha256, mailSecretHash(secret));
  assert.equal((await p.sql(`${slug}_prod`, `select count(*)::int as n from ir_mail_server where name = $1`, [CATCHER_SERVER]))[0].n, 0, 'production is never pointed at the catcher');
  // The stored clone (what developers pull) keeps Odoo's dummy server: the login is in staging's database only.
  const clone = (await p.cp.pool.query(`select id from ops.backups where kind = 'clone'`)).rows;
  assert.equal(clone.length, 1);

  const subject = `Facture ${version} ${process.pid}`;
  const t0 = performance.now();
  const out = await sendFromOdoo(s, db, subject);
  assert.match(out, /STATE sent/, out);
  console.log(`# ${version}: Odoo's mail.mail.send() into the catcher ${((performance.now() - t0) / 1000).toFixed(1)} s (odoo-bin shell start included)`);
  const m = await arrives(p, subject);
  assert.equal(m.attachments, 2);
  assert.match(m.to, /client@klant-mail\.example/);
  const detail = await p.admin.call('GET', `/api/projects/${slug}/environments/staging/mails/${m.id}`);
  assert.equal(detail.status, 200);
  const d = detail.body as C.CaughtMailDetail;
  assert.match(d.html ?? '', /<script>/, 'the HTML is returned as sent (the webview makes it inert)');
  assert.match(d.text ?? '', /Votre facture est jointe/);
  assert.ok(d.headers.some((h) => h.name.toLowerCase() === 'subject' && h.value === subject));
  assert.deepEqual(d.envelopeTo, ['client@klant-mail.example']);
  const names = d.parts.map((x) => x.filename).sort();
  assert.deepEqual(names, ['facture-2026-0042.pdf', 'x']);
  return { ...s, mail: d, secret };
}

test('Odoo 17: a neutralized clone sends to the catcher; abuse of the endpoint and the API is refused', { timeout: 1_800_000 }, async () => {
  const { p, mail, secret } = await odooCase('17.0', 'mailc17');
  const slug = p.slug;
  const catcher = p.cp.server.mailCatcher!;
  const count = async () => Number((await p.cp.pool.query('select count(*) as n from ops.mails')).rows[0].n);

  // The attachment ../../x of type text/html: a download of bytes named x, never a page.
  const x = mail.parts.find((a) => a.filename === 'x')!;
  assert.equal(x.contentType, 'text/html');
  const dl = await fetch(`${p.cp.server.url}/api/projects/${slug}/environments/staging/mails/${mail.id}/attachments/${x.index}`, { headers: { authorization: `Bearer ${p.admin.token}` } });
  assert.equal(dl.status, 200);
  assert.equal(dl.headers.get('content-type'), 'application/octet-stream');
  assert.match(dl.headers.get('content-disposition')!, /^attachment; filename="x"/);
  assert.equal(dl.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(await dl.text(), '<script>alert(1)</script>');

  // A backup of staging restored into staging: neutralized, so it gets a fresh login (the one it holds
  // is staging's old one, which stops working), and its mail still arrives.
  const backup = await p.runToEnd('staging', 'backup', {});
  assert.equal(backup.status, 'succeeded', backup.error ?? '');
  const restore = await p.runToEnd('staging', 'restore', { backup: (backup.result as { backupId: string }).backupId });
  assert.equal(restore.status, 'succeeded', `${restore.error}\n${(await p.logText(restore.id)).slice(-2000)}`);
  const restored = (await p.sql(`${slug}_staging`, 'select smtp_pass from ir_mail_server where active'));
  assert.equal(restored.length, 1);
  assert.notEqual(restored[0].smtp_pass, secret, 'a new login');
  assert.deepEqual((await p.cp.pool.query('select secret_sha256 from ops.mail_credentials')).rows[0].secret_sha256, mailSecretHash(restored[0].smtp_pass));
  await assert.rejects(nodemailer.createTransport({ host: catcher.host, port: catcher.port, secure: false, ignoreTLS: true, auth: { user: `${slug}/staging`, pass: secret } })
    .sendMail({ from: 'a@b.example', to: 'c@d.example', subject: 'old login', text: 'x' }), (e: { responseCode?: number }) => e.responseCode === 535, 'the replaced login no longer works');
  // The new one does; an inline (cid:) image is shown from a data: URI and is not counted as an attachment.
  await nodemailer.createTransport({ host: catcher.host, port: catcher.port, secure: false, ignoreTLS: true, auth: { user: `${slug}/staging`, pass: restored[0].smtp_pass } })
    .sendMail({ from: 'a@b.example', to: 'c@d.example', subject: 'inline logo', html: '<p>Logo</p><img src="cid:logo@brasserie">',
      attachments: [{ filename: 'logo.png', content: Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'), cid: 'logo@brasserie' }] });
  const inline = await arrives(p, 'inline logo');
  assert.equal(inline.attachments, 0);
  const inlineDetail = (await p.admin.call('GET', `/api/projects/${slug}/environments/staging/mails/${inline.id}`)).body as C.CaughtMailDetail;
  assert.match(inlineDetail.html!, /<img src="data:image\/png;base64,iVBOR/);
  assert.deepEqual(inlineDetail.parts.map((x) => [x.filename, x.inline]), [['logo.png', true]]);

  // SMTP abuse. A development environment and production get logins planted directly, as if leaked.
  await p.addEnv({ name: 'dev-a', stage: 'development', db: `${slug}_dev_a` });
  const envId = async (name: string) => (await p.cp.pool.query('select id, project_id from ops.environments where name = $1', [name])).rows[0];
  const devSecret = newMailSecret();
  const prodSecret = newMailSecret();
  for (const [name, user, sec] of [['dev-a', `${slug}/dev-a`, devSecret], ['production', `${slug}/production`, prodSecret]] as const) {
    const e = await envId(name);
    await p.cp.pool.query('insert into ops.mail_credentials (environment_id, project_id, username, secret_sha256) values ($1, $2, $3, $4)', [e.id, e.project_id, user, mailSecretHash(sec)]);
  }
  const send = (auth: { user: string; pass: string } | null, extra: Partial<SendMailOptions> = {}) =>
    nodemailer.createTransport({ host: catcher.host, port: catcher.port, secure: false, ignoreTLS: true, ...(auth ? { auth } : {}) })
      .sendMail({ from: 'a@brasserie.example', to: 'b@klant-mail.example', subject: 'probe', text: 'probe', ...extra });
  const before = await count();
  await assert.rejects(send(null), (e: { responseCode?: number }) => e.responseCode === 530, 'no AUTH: refused');
  await assert.rejects(send({ user: `${slug}/staging`, pass: `${secret}x` }), (e: { responseCode?: number }) => e.responseCode === 535, 'a wrong secret');
  await assert.rejects(send({ user: `${slug}/staging`, pass: devSecret }), (e: { responseCode?: number }) => e.responseCode === 535, 'another environment\'s secret');
  await assert.rejects(send({ user: `${slug}/production`, pass: prodSecret }), (e: { responseCode?: number }) => e.responseCode === 535, 'a production login, even a leaked one');
  await assert.rejects(send({ user: 'nobody', pass: secret }), (e: { responseCode?: number }) => e.responseCode === 535);
  assert.equal(await count(), before, 'nothing stored');
  // The database refuses production too, whoever calls it.
  const prodId = (await envId('production')).id;
  await assert.rejects(p.cp.pool.query(`select ops.store_mail($1, 'a', array['b'], '', '', 's', null, 0, 'x'::bytea, 7, 10, 1000000)`, [prodId]), /no mail is caught/);

  // Limits, from the registry (read again on SIGHUP): size, recipients, messages a minute.
  await p.addInfra({ mailCatcher: { maxMessageMb: 1, maxRecipients: 3, messagesPerMinute: 4 } } as unknown as TestRegistry);
  const dev = { user: `${slug}/dev-a`, pass: devSecret };
  await assert.rejects(send(dev, { text: 'x'.repeat(1_200_000) }), (e: { responseCode?: number }) => e.responseCode === 552, 'a huge message');
  assert.equal(await count(), before, 'nothing stored');
  // Recipients past the limit are refused one by one (452), as SMTP does; the mail keeps the others.
  const many = await send(dev, { to: ['a@x.example', 'b@x.example', 'c@x.example', 'd@x.example'] });
  assert.deepEqual(many.rejected, ['d@x.example']);
  assert.deepEqual((await p.cp.pool.query(`select envelope_to from ops.mails where subject = 'probe'`)).rows[0].envelope_to, ['a@x.example', 'b@x.example', 'c@x.example']);
  // The extension's side, against the real server and gateway: the project's Realtime topic says a mail
  // arrived in dev-a (ids only), and the tree's list (MailBox) is read again.
  const client = new ApiClient({ url: p.cp.server.url, token: p.admin.token });
  const box = new MailBox(() => ({ get: (path, schema) => client.get(path, { parse: (v: unknown) => v } as never).then((v) => schema.parse(v)) }));
  assert.equal((await box.load(slug, 'dev-a')).total, 1);
  const envs = (await p.admin.call('GET', `/api/projects/${slug}/environments`)).body as C.Environment[];
  const project = (await p.admin.call('GET', `/api/projects/${slug}`)).body as C.Project;
  const heard: C.MailBroadcast[] = [];
  const stopFeed = await followProjects(client, [project], {
    run: () => {}, approval: () => {}, rejoined: async () => {}, state: () => {},
    mail: (slugOf, m) => {
      heard.push(m);
      box.arrived(slugOf, envs.find((e) => e.id === m.environment)?.name);
    },
  });
  cleanups.push(() => stopFeed());
  await eventually('the feed to join', async () => p.cp.server.gateway.stats().channels > 0);
  for (let i = 0; i < 3; i++) await send(dev, { subject: `dev ${i}` });
  await eventually('the tree\'s list to be read again', async () => box.list(slug, 'dev-a')!.total === 4);
  assert.ok(heard.length >= 3 && heard.every((m) => m.environment === envs.find((e) => e.name === 'dev-a')!.id), JSON.stringify(heard));
  assert.equal(mailNodeLabel(box.list(slug, 'dev-a')), 'Mail (4)');
  await assert.rejects(send(dev, { subject: 'dev 3' }), (e: { responseCode?: number }) => e.responseCode === 451, 'the fifth in a minute');
  assert.equal(await count(), before + 4);
  const devList = (await mails(p, 'dev-a')).body as C.CaughtMailList;
  assert.deepEqual(devList.mails.map((m) => m.subject), ['dev 2', 'dev 1', 'dev 0', 'probe'], 'newest first, in dev-a only');
  assert.equal(((await mails(p)).body as C.CaughtMailList).total, 2, 'staging holds its own mail only');

  // The API: who may operate the stage.
  const developer = await p.cp.user();
  const tester = await p.cp.user();
  const viewer = await p.cp.user();
  for (const [u, role] of [[developer, 'developer'], [tester, 'tester'], [viewer, 'viewer']] as const) {
    assert.equal((await p.admin.call('POST', `/api/projects/${slug}/members`, { userId: u.id, role })).status, 201);
  }
  assert.equal((await mails(p, 'staging', tester)).status, 200, 'testers operate staging');
  assert.equal((await mails(p, 'staging', developer)).status, 403, 'developers do not operate staging');
  assert.equal((await mails(p, 'dev-a', developer)).status, 200, 'developers operate development');
  const v = await mails(p, 'staging', viewer);
  assert.equal(v.status, 403);
  assert.match(v.body.error.message, /viewer/);
  assert.equal((await viewer.call('GET', `/api/projects/${slug}/environments/staging/mails/${mail.id}`)).status, 403);
  assert.equal((await viewer.call('GET', `/api/projects/${slug}/environments/staging/mails/${mail.id}/attachments/0`)).status, 403);
  // RLS says the same around the API.
  assert.equal((await p.cp.sql(viewer, (c) => c.query('select id from ops.mails'))).rows.length, 0);
  assert.equal((await p.cp.sql(tester, (c) => c.query('select id from ops.mails'))).rows.length, 6);
  await assert.rejects(p.cp.sql(tester, (c) => c.query('select * from ops.mail_credentials')), /permission denied/, 'nobody reads the logins');
  // Another project's admin: not found, neither the project's mail nor one of its mails by id.
  const stranger = await p.cp.user(undefined, { instanceAdmin: true });
  assert.equal((await stranger.call('POST', '/api/projects', { slug: `${slug}-other`, name: 'other' })).status, 201);
  assert.equal((await stranger.call('GET', `/api/projects/${slug}/environments/staging/mails`)).status, 404);
  assert.equal((await stranger.call('GET', `/api/projects/${slug}/environments/staging/mails/${mail.id}`)).status, 404);
  // A mail of staging asked for through dev-a (an environment the developer may read) is not found.
  assert.equal((await developer.call('GET', `/api/projects/${slug}/environments/dev-a/mails/${mail.id}`)).status, 404);
  assert.equal((await mails(p, 'production')).status, 404, 'production has no catcher');

  // Retention: older than the days, beyond the count, beyond the bytes (the catcher passes the registry's).
  const devId = (await envId('dev-a')).id;
  await p.cp.pool.query(`update ops.mails set received_at = now() - interval '8 days' where subject = 'dev 0'`);
  await p.cp.pool.query(`select ops.store_mail($1, 'a', array['b'], '', '', 'dev 4', null, 0, 'x'::bytea, 7, 2, 1000000)`, [devId]);
  assert.deepEqual(((await mails(p, 'dev-a')).body as C.CaughtMailList).mails.map((m) => m.subject), ['dev 4', 'dev 2'], 'the expired and the oldest beyond 2 went');

  // Deleted with its environment.
  assert.equal((await p.admin.call('DELETE', `/api/projects/${slug}/environments/dev-a`)).status, 204);
  assert.equal(Number((await p.cp.pool.query('select count(*) as n from ops.mails where environment_id = $1', [devId])).rows[0].n), 0);
  assert.equal((await p.cp.pool.query('select 1 from ops.mail_credentials where environment_id = $1', [devId])).rowCount, 0);
});

test('Odoo 19: a neutralized clone sends to the catcher', { timeout: 1_800_000 }, async () => {
  await odooCase('19.0', 'mailc19');
});
