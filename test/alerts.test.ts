// Alerts (issue 16) end to end: a real Odoo 17 production whose backup fails for real (its database
// dropped) alerts the project: a real SMTP server (smtp-server, in-process) receives the mail, a real
// HTTP server the webhook with a valid HMAC signature, and the extension's project feed the 'alert'
// event; the same failure again within 6 h sends nothing more; channels are the registry's (an admin
// cannot point alerts elsewhere, a developer or viewer cannot change them); another project's member
// cannot read the alerts (API and RLS); a missed daily backup alerts; failed deliveries are recorded
// without URLs or secrets and never fail anything; a store filling up alerts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import type * as C from '../contract/index.ts';
import { ApiClient } from '../client/api-client.ts';
import { followProjects } from '../extension/src/projectFeed.ts';
import { Infrastructure } from '../server/infra/registry.ts';
import { storeFilling } from '../server/alerts/store-usage.ts';
import { Scheduler } from '../server/worker/scheduler.ts';
import { LocalBackupStore } from '../server/storage/backup-store.ts';
import { addMember, eventually, type TestUser } from './helpers/control-plane.ts';
import { startOdooProject, type OdooProject } from './helpers/odoo-project.ts';

let p: OdooProject;
let admin: TestUser;
let projectId: string;
let smtp: SMTPServer;
let hooks: Server;
let hookUrl: string;
let smtpPort: number;
/** A loopback port where nothing listens. */
let deadPort: number;

const HOOK_SECRET = `hook-secret-${process.pid}-5b1d7e`;
const SMTP_PASSWORD = `smtp-Pw-${process.pid}-93ac`;
const SECRET_VAR = `ODOOOPS_TEST_ALERT_HOOK_${process.pid}`;
const SMTP_VAR = `ODOOOPS_TEST_ALERT_SMTP_${process.pid}`;

interface Mail { from: string; to: string[]; raw: string }
interface Hook { path: string; headers: IncomingMessage['headers']; body: string }
const mails: Mail[] = [];
const received: Hook[] = [];
/** Statuses the webhook answers next (then 200). */
const answers: number[] = [];

before(async () => {
  smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'], allowInsecureAuth: true, logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'alerts' && auth.password === SMTP_PASSWORD) cb(null, { user: 'alerts' });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  smtpPort = ((smtp as unknown as { server: Server }).server.address() as AddressInfo).port;
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `${hookUrl}/inside` }).end();
        return;
      }
      res.writeHead(answers.shift() ?? 200).end('ok');
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  deadPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  process.env[SECRET_VAR] = HOOK_SECRET;
  process.env[SMTP_VAR] = SMTP_PASSWORD;

  p = await startOdooProject({
    slug: 'alerting',
    generate: {},
    real: { alerting_prod: { version: '17.0', kind: 'plain' } },
    envs: [{ name: 'production', stage: 'production', db: 'alerting_prod' }],
  });
  admin = p.admin;
  await p.addInfra({
    alertChannels: {
      'ops-mail': { kind: 'smtp', host: '127.0.0.1', port: smtpPort, user: 'alerts', password: `env:${SMTP_VAR}`, from: 'OdooOps <odooops@ops.example>', projects: ['alerting'] },
      'ops-hook': { kind: 'webhook', url: `${hookUrl}/hook`, secret: `env:${SECRET_VAR}`, projects: ['alerting'] },
      'dead-hook': { kind: 'webhook', url: `http://127.0.0.1:${deadPort}/nobody-listens`, projects: ['alerting'] },
      'redirect-hook': { kind: 'webhook', url: `${hookUrl}/redirect`, projects: ['alerting'] },
      'other-hook': { kind: 'webhook', url: `${hookUrl}/other`, projects: ['someone-else'] },
    },
  });
  projectId = (await p.cp.pool.query(`select id from ops.projects where slug = 'alerting'`)).rows[0].id;
  // The daily backup that the missed-backup test backdates, taken while the database is still there.
  const r = await p.runToEnd('production', 'backup', { kind: 'daily' });
  assert.equal(r.status, 'succeeded', r.error ?? '');
});
after(async () => {
  await p?.close();
  await new Promise((r) => smtp?.close(() => r(null)));
  await new Promise((r) => hooks?.close(() => r(null)));
  delete process.env[SECRET_VAR];
  delete process.env[SMTP_VAR];
});

const alerts = async (who: TestUser = admin) => (await who.call('GET', '/api/projects/alerting/alerts')).body as C.Alert[];
const settings = (who: TestUser, body: unknown) => who.call('PUT', '/api/projects/alerting/alert-settings', body);
const delivered = (id: number) => eventually(`alert ${id} to be delivered`, async () => (await alerts()).find((a) => a.id === id && a.deliveredAt !== null), 60_000);
const verifySignature = (h: Hook) => {
  const sent = String(h.headers['x-odooops-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', HOOK_SECRET).update(h.body).digest('hex')}`;
  return sent.length === expected.length && timingSafeEqual(Buffer.from(sent), Buffer.from(expected));
};

test('a webhook is https, or http to the loopback only: the registry refuses any other URL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'odooops-alert-registry-'));
  try {
    const load = (url: string) => {
      writeFileSync(join(dir, 'r.yaml'), JSON.stringify({ alertChannels: { hook: { kind: 'webhook', url, projects: ['*'] } } }));
      return Infrastructure.load(join(dir, 'r.yaml'));
    };
    for (const bad of ['http://10.0.0.5/hook', 'http://metadata.google.internal/computeMetadata/v1/', 'http://169.254.169.254/latest/meta-data', 'ftp://ops.example/x', 'file:///etc/passwd']) {
      assert.throws(() => load(bad), /alertChannels\.hook\.url/, bad);
    }
    for (const good of ['https://hooks.ops.example/odooops', 'http://127.0.0.1:8080/relay', 'http://localhost/relay']) {
      const infra = load(good);
      assert.deepEqual(infra.entries().map((e) => [e.kind, e.name, e.description]), [['alert_channel', 'hook', 'a webhook']], 'the URL is never shown');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('alerts go only to channels the registry binds to the project, set by its admins', async () => {
  const developer = await p.cp.user();
  const viewer = await p.cp.user();
  await addMember(p.cp.pool, projectId, developer.id, 'developer');
  await addMember(p.cp.pool, projectId, viewer.id, 'viewer');
  for (const who of [developer, viewer]) {
    const r = await settings(who, { channels: ['ops-hook'] });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal((await who.call('GET', '/api/projects/alerting/alert-settings')).status, 403, 'nor read the recipients');
  }
  const refused: [unknown, RegExp][] = [
    [{ channels: ['other-hook'] }, /alerting has no alert channel "other-hook"/], // declared, bound to another project
    [{ channels: ['https://evil.example/steal'] }, /registry name/], // a URL is never a channel
    [{ channels: ['nope'] }, /alerting has no alert channel "nope"/],
    [{ channels: ['ops-mail'] }, /an SMTP channel needs the addresses to mail/],
    [{ channels: ['ops-hook'], emails: ['oncall@ops.example'] }, /email addresses are for SMTP channels/],
    [{ channels: ['ops-mail'], emails: ['not an address'] }, /email/i],
    [{ channels: ['ops-mail'], emails: Array.from({ length: 21 }, (_, i) => `a${i}@ops.example`) }, /at most 20/],
  ];
  for (const [body, why] of refused) {
    const r = await settings(admin, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.error?.message ?? JSON.stringify(r.body), why);
  }
  // Around the API, in SQL as the users: RLS and the trigger say the same.
  await assert.rejects(p.cp.sql(developer, (c) => c.query(`insert into ops.alert_settings (project_id, channels) values ($1, '{ops-hook}')`, [projectId])), /row-level security/);
  await assert.rejects(p.cp.sql(admin, (c) => c.query(`insert into ops.alert_settings (project_id, channels) values ($1, '{other-hook}')`, [projectId])), /not bound to this project/);
  await assert.rejects(p.cp.sql(admin, (c) => c.query(`insert into ops.alert_settings (project_id, channels) values ($1, '{}') on conflict (project_id) do update set emails = '{"x@y.z"}', channels = '{}'`, [projectId]).then(() =>
    c.query(`update ops.alert_settings set emails = array_fill('a@b.cd'::text, array[21]) where project_id = $1`, [projectId]))), /alert_settings_emails_count/);
  assert.equal((await p.cp.pool.query('select count(*)::int as n from ops.alert_settings')).rows[0].n, 0, 'nothing was stored');

  const r = await settings(admin, { channels: ['ops-mail', 'ops-hook'], emails: ['oncall@ops.example', 'cto@ops.example'] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const s = r.body as C.AlertSettings;
  assert.deepEqual([s.channels, s.emails], [['ops-mail', 'ops-hook'], ['oncall@ops.example', 'cto@ops.example']]);
  assert.deepEqual(s.available.map((a) => [a.name, a.kind]), [['dead-hook', 'webhook'], ['ops-hook', 'webhook'], ['ops-mail', 'smtp'], ['redirect-hook', 'webhook']]);
  assert.doesNotMatch(JSON.stringify(s), /127\.0\.0\.1|env:/, 'no URL, host or secret reference');
});

test('a backup that fails for real is mailed, posted to the webhook signed, and announced on the project feed', async () => {
  const api = new ApiClient({ url: p.cp.server.url, token: admin.token });
  const seen: [string, unknown][] = [];
  const stop = await followProjects(api, [{ id: projectId, slug: 'alerting' }], {
    run: () => {}, approval: () => {}, rejoined: async () => {}, state: () => {}, alert: (project, payload) => seen.push([project, payload]),
  });
  try {
    await eventually('the feed to join', async () => p.cp.server.gateway.stats().channels > 0);
    // The production database is gone (dropped by someone on its server): pg_dump cannot connect.
    await p.sql('postgres', 'drop database alerting_prod');
    const run = await p.runToEnd('production', 'backup', { kind: 'manual' });
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /alerting_prod/);

    const [alert] = await alerts();
    assert.ok(alert && alert.runId === run.id, JSON.stringify(alert));
    assert.equal(alert.kind, 'backup_failed');
    assert.equal(alert.environment, 'production');
    assert.equal(alert.title, 'Backup of production failed');
    assert.match(alert.message, new RegExp(`^Backup of production failed: manual backup of production \\(production\\) in project alerting failed at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC, run #${run.id}: .*alerting_prod.*\\. Next: read its log \\(odooops run logs ${run.id}\\)`));
    const done = await delivered(alert.id);
    assert.deepEqual(done.deliveries.map((d) => [d.channel, d.kind, d.ok, d.attempts]), [['ops-mail', 'smtp', true, 1], ['ops-hook', 'webhook', true, 1]]);
    assert.equal(done.deliveries.find((d) => d.channel === 'ops-hook')!.status, 200);

    // The mail, through the real SMTP server, logged in with the registry's password.
    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.equal(mail.from, 'odooops@ops.example');
    assert.deepEqual(mail.to, ['oncall@ops.example', 'cto@ops.example']);
    assert.match(mail.raw, /^Subject: \[OdooOps\] alerting: Backup of production failed/m);
    assert.match(mail.raw, new RegExp(`run #${run.id}`));
    assert.match(mail.raw, /Next: read its log/);

    // The webhook: JSON, signed with the registry's secret over the exact body.
    const hook = received.filter((h) => h.path === '/hook');
    assert.equal(hook.length, 1);
    assert.ok(verifySignature(hook[0]!), 'X-OdooOps-Signature is the HMAC-SHA256 of the body');
    assert.equal(hook[0]!.headers['x-odooops-event'], 'alert');
    const body = JSON.parse(hook[0]!.body);
    assert.deepEqual([body.project, body.environment, body.kind, body.runId, body.id], ['alerting', 'production', 'backup_failed', run.id, alert.id]);
    assert.equal(body.message, alert.message);

    // The extension's feed got it as it happened (what becomes the VS Code notification).
    const [project, payload] = await eventually('the alert on the feed', async () => seen[0]);
    assert.equal(project, 'alerting');
    assert.deepEqual([(payload as C.AlertBroadcast).id, (payload as C.AlertBroadcast).kind, (payload as C.AlertBroadcast).run_id], [alert.id, 'backup_failed', run.id]);

    // Nothing secret anywhere it went.
    for (const text of [mail.raw, hook[0]!.body, JSON.stringify(done), JSON.stringify(payload)]) {
      for (const secret of [p.password, SMTP_PASSWORD, HOOK_SECRET, p.scratch, p.cp.server.home, `${hookUrl}/hook`]) assert.ok(!text.includes(secret), `${secret} leaked`);
    }
  } finally {
    await stop();
  }
});

test('the same failure again within 6 hours alerts once', async () => {
  const before = (await alerts()).length;
  const run = await p.runToEnd('production', 'backup', { kind: 'manual' });
  assert.equal(run.status, 'failed');
  // The alert would have been written with the run's end, in the same transaction.
  assert.equal((await alerts()).length, before);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(mails.length, 1, 'no second mail');
  assert.equal(received.filter((h) => h.path === '/hook').length, 1, 'no second webhook');
  // Past the 6 hours it alerts again.
  await p.cp.pool.query(`update ops.alerts set created_at = now() - interval '6 hours 1 minute' where project_id = $1`, [projectId]);
  const later = await p.runToEnd('production', 'backup', { kind: 'manual' });
  const [again] = await alerts();
  assert.equal(again!.runId, later.id);
  await delivered(again!.id);
  assert.equal(mails.length, 2);
});

test('a member of another project cannot read this project\'s alerts, through the API or in SQL', async () => {
  const other = await p.cp.user(undefined, { instanceAdmin: true });
  assert.equal((await other.call('POST', '/api/projects', { slug: 'other-team', name: 'Other' })).status, 201);
  assert.equal((await other.call('GET', '/api/projects/alerting/alerts')).status, 404);
  assert.equal((await other.call('GET', '/api/projects/alerting/alert-settings')).status, 404);
  assert.equal((await other.call('PUT', '/api/projects/alerting/alert-settings', { channels: [] })).status, 404);
  assert.equal((await p.cp.sql(other, (c) => c.query('select * from ops.alerts'))).rowCount, 0);
  assert.equal((await p.cp.sql(other, (c) => c.query('select * from ops.alert_settings'))).rowCount, 0);
  assert.ok((await p.cp.sql(admin, (c) => c.query('select * from ops.alerts'))).rowCount! > 0, 'the project\'s own admin reads them');
  // Nobody raises or delivers alerts but the service.
  await assert.rejects(p.cp.sql(other, (c) => c.query(`select ops.raise_alert($1, null, 'store_filling', 'x', 'y')`, [projectId])), /permission denied/);
  await assert.rejects(p.cp.sql(admin, (c) => c.query(`select * from ops.claim_alerts('me', 60)`)), /permission denied/);
  await assert.rejects(p.cp.sql(admin, (c) => c.query(`insert into ops.alerts (project_id, kind, title, message) values ($1, 'store_filling', 'x', 'y')`, [projectId])), /permission denied/);
});

test('a production without a good daily backup for 26 hours while a worker was around alerts, once', async () => {
  const scheduler = new Scheduler(p.cp.pool, 60_000, () => {});
  const missed = async () => (await alerts()).filter((a) => a.kind === 'backup_missed');
  const hooksBefore = received.filter((h) => h.path === '/hook').length;
  assert.equal(await scheduler.missedTick(), 0, 'the daily backup is recent');
  await p.cp.pool.query(`update ops.backups set created_at = now() - interval '27 hours' where project_id = $1 and kind = 'daily'`, [projectId]);
  await p.cp.pool.query(`update ops.environments set created_at = now() - interval '40 days' where project_id = $1`, [projectId]);
  assert.equal(await scheduler.missedTick(), 0, 'the schedulers have only been around since a moment ago: not missed yet');
  // The schedulers have been around for 30 hours (ticking all along).
  await p.cp.pool.query(`update ops.scheduler_presence set since = now() - interval '30 hours'`);
  assert.equal(await scheduler.missedTick(), 1);
  const [alert] = await missed();
  assert.ok(alert);
  assert.equal(alert.environment, 'production');
  assert.equal(alert.runId, null);
  assert.match(alert.message, /^No daily backup of production for 26 hours: production of project alerting has no good daily backup since \d{4}-\d\d-\d\d \d\d:\d\d UTC.*Next: .*odooops run queue alerting production backup --follow/);
  assert.equal(await scheduler.missedTick(), 0, 'once per 6 hours');
  assert.equal((await missed()).length, 1);
  await delivered(alert.id);
  const hook = received.filter((h) => h.path === '/hook').slice(hooksBefore);
  assert.equal(hook.length, 1);
  assert.equal(JSON.parse(hook[0]!.body).kind, 'backup_missed');
  assert.ok(verifySignature(hook[0]!));
  // A gap of over an hour in the schedulers' presence starts a new stretch: a machine that was off does not alert at once.
  await p.cp.pool.query(`update ops.alerts set created_at = now() - interval '7 hours' where kind = 'backup_missed'`);
  await p.cp.pool.query(`update ops.scheduler_presence set last_seen = now() - interval '2 hours'`);
  assert.equal(await scheduler.missedTick(), 0);
});

test('failed deliveries are retried, then recorded without URL or secret; a redirect is not followed; a store filling up alerts', async () => {
  assert.equal((await settings(admin, { channels: ['ops-hook', 'dead-hook', 'redirect-hook'] })).status, 200);
  answers.push(500); // the webhook fails once, then answers
  const before = received.length;
  // The store check, on the real store's filesystem, with a threshold it cannot meet (nobody has a disk 101 % free).
  const scheduler = new Scheduler(p.cp.pool, 60_000, () => {}, { stores: () => [{ store: new LocalBackupStore(join(p.cp.server.home, 'backups')) }], thresholds: { minFreeFraction: 1.01 } });
  assert.equal(await scheduler.storesTick(), 1);
  const [alert] = (await alerts()).filter((a) => a.kind === 'store_filling');
  assert.ok(alert);
  assert.equal(alert.environment, null);
  assert.match(alert.message, /^Backup store default is filling up: the backup store "default" has [\d.]+ % of its disk free \([\d.]+ GiB of [\d.]+ GiB\)/);
  assert.ok(!alert.message.includes(p.cp.server.home), 'the store is named, not its path');
  const done = await delivered(alert.id);
  const by = Object.fromEntries(done.deliveries.map((d) => [d.channel, d]));
  assert.deepEqual([by['ops-hook']!.ok, by['ops-hook']!.attempts, by['ops-hook']!.status], [true, 2, 200], 'retried after the 500');
  assert.deepEqual([by['dead-hook']!.ok, by['dead-hook']!.attempts, by['dead-hook']!.error], [false, 2, 'the connection was refused']);
  assert.equal(by['redirect-hook']!.ok, false);
  assert.match(by['redirect-hook']!.error!, /redirect \(HTTP 302\), which is not followed/);
  const paths = received.slice(before).map((h) => h.path).sort();
  assert.deepEqual(paths, ['/hook', '/hook', '/redirect', '/redirect'], 'the redirect target was never asked');
  assert.doesNotMatch(JSON.stringify(done.deliveries), /127\.0\.0\.1|nobody-listens|http:/);
  assert.equal(await scheduler.storesTick(), 0, 'once per 6 hours');
  // The production environment's runs were not touched by any of it.
  assert.equal((await p.cp.pool.query(`select count(*)::int as n from ops.runs where status in ('queued', 'running')`)).rows[0].n, 0);
});

test('a store filling up: an object store over 90 % of the registry\'s quota (its usage()), a local one under its disk\'s free threshold', async () => {
  // A test double for the S3 store (branch s3), which offers usage(): only the figure matters here.
  const objectStore = (bytes: number) => Object.assign(Object.create(null), { name: 'offsite', usage: async () => bytes });
  const GB = 1024 ** 3;
  assert.match((await storeFilling({ store: objectStore(95 * GB), quotaGb: 100 }))!, /^the backup store "offsite" holds 95.0 GiB, 95.0 % of its 100 GB quota$/);
  assert.equal(await storeFilling({ store: objectStore(50 * GB), quotaGb: 100 }), null);
  assert.equal(await storeFilling({ store: objectStore(95 * GB) }), null, 'no quota in the registry: nothing to compare with');
  // A local store: its disk's free share against the threshold. (Set on either side of this disk's own
  // share: how full the machine running the tests is must not decide them.)
  const local = new LocalBackupStore(join(p.cp.server.home, 'backups'));
  const fs = await statfs(local.root);
  const free = fs.bavail / fs.blocks;
  assert.equal(await storeFilling({ store: local }, { minFreeFraction: free / 2 }), null, 'more free than the threshold: nothing to say');
  assert.match((await storeFilling({ store: local }, { minFreeFraction: free * 2 + 0.01 }))!, /^the backup store "default" has \d+\.\d % of its disk free \(\d+\.\d GiB of \d+\.\d GiB\)$/);
});

test('the CLI: odooops project alerts sets and shows the channels, odooops alerts lists what happened', async () => {
  const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ODOOOPS_HOME: p.cp.home };
    delete env.ODOOOPS_URL;
    delete env.ODOOOPS_TOKEN;
    execFile(process.execPath, ['server/cli/main.ts', ...args, '--url', p.cp.server.url, '--token', admin.token],
      { cwd: new URL('..', import.meta.url).pathname, env, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      });
  });
  const set = await cli(['project', 'alerts', 'alerting', '--channel', 'ops-mail', '--channel', 'ops-hook', '--email', 'oncall@ops.example']);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /alerts of alerting go to: ops-mail, ops-hook\nmailed to: oncall@ops.example/);
  const bad = await cli(['project', 'alerts', 'alerting', '--channel', 'other-hook']);
  assert.equal(bad.code, 3, bad.stdout);
  assert.match(bad.stderr, /alerting has no alert channel "other-hook"[\s\S]*odooops infra list alerting/);
  const list = await cli(['alerts', 'alerting']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /store_filling\n  Backup store default is filling up/);
  assert.match(list.stdout, /backup_failed production run \d+\n  Backup of production failed: .*\n  delivered: ops-mail:ok ops-hook:ok/);
  const none = await cli(['project', 'alerts', 'alerting', '--none']);
  assert.match(none.stdout, /go to: no channel/);
  assert.deepEqual((await p.cp.pool.query('select channels from ops.alert_settings')).rows[0].channels, []);
});
