// The packaged extension in a real VS Code: code-server (VS Code in the browser, a real workbench and
// Node extension host; installed from npm by scripts/install-code-server.sh) driven by Debian's chromium
// through playwright-core, against `odooops server --demo` on the embedded default. Open the OdooOps
// view and see the demo environments; run "OdooOps: Clone prod to staging" from the command palette;
// watch the log panel fill while it runs; see the run turn green in the tree; then approve another
// admin's request to restore production. Screenshots go to test-artifacts/ (look at them); with
// ODOOOPS_SCREENSHOTS=1, the ones the extension's README shows are written to extension/media/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import pg from 'pg';
import type { Browser, Frame, Page } from 'playwright-core';
import { clusterDir } from '../server/db/embedded.ts';
import { homeFiles } from '../server/paths.ts';
import { eventually } from './helpers/control-plane.ts';
import { CODE_SERVER, ROOT, installCodeServer, launchChromium, run, startCodeServer, startDemoServer, stopChildren } from './helpers/code-server.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts');
// The README's screenshots (extension/README.md), made here so they show the extension as it is.
const SCREENSHOTS = process.env.ODOOOPS_SCREENSHOTS === '1' ? join(ROOT, 'extension', 'media', 'screenshots') : undefined;
let scratch: string;
const children: ChildProcess[] = [];
let browser: Browser | undefined;
let page: Page;
let csPort: number;
let home: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-e2e-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  for (const f of readdirSync(ARTIFACTS)) if (f.startsWith('e2e-')) rmSync(join(ARTIFACTS, f));
  // code-server (once per machine) and the .vsix, as a user gets it (npm run package).
  await installCodeServer();
  const vsix = join(scratch, 'odooops.vsix');
  await run(process.execPath, [join(ROOT, 'scripts', 'package-extension.ts'), '--out', vsix], { cwd: ROOT });

  // The server on the embedded default, with its demo (production, staging cloned at start, a dev branch).
  // 80,000 customers: a clone takes long enough (also on a loaded machine) to watch its log fill.
  home = join(scratch, 'odooops-home');
  await startDemoServer(home, children, { ODOOOPS_DEMO_PARTNERS: '80000' });

  // code-server runs on Node 24 (the project's own), its state in the scratch directory, the packaged
  // extension installed as a user installs it.
  const state = join(scratch, 'code-server');
  const xdg = join(state, 'xdg');
  await run(CODE_SERVER, ['--user-data-dir', join(state, 'user'), '--extensions-dir', join(state, 'extensions'), '--install-extension', vsix], {
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, XDG_CACHE_HOME: xdg },
    timeout: 120_000,
  });
  csPort = (await startCodeServer({ state, folder: scratch, env: { ODOOOPS_HOME: home } }, children)).port;
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopChildren(children);
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * Runs a command from the palette. A webview that takes the focus as it loads closes a palette opened
 * at that moment (as it would for a person): open it again until the command is picked.
 */
async function paletteCommand(title: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press('F1');
      const input = page.locator('.quick-input-widget input');
      await input.fill(`>${title}`, { timeout: 5_000 });
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: title.replace(/^[^:]+: /, '') }).first().waitFor({ timeout: 5_000 });
      await input.press('Enter', { timeout: 5_000 });
      return;
    } catch (err) {
      if (attempt === 5) throw err;
      await page.keyboard.press('Escape');
    }
  }
}

const rows = () => page.locator('[id="workbench.view.extension.odooops"] .monaco-list-row');

/** The frame (of a webview, or of a mail's HTML inside one) where `selector`'s text matches, if any yet. */
async function frameWith(selector: string, text: RegExp): Promise<Frame | null> {
  for (const f of page.frames()) {
    const t = await f.locator(selector).first().textContent({ timeout: 500 }).catch(() => null);
    if (t && text.test(t)) return f;
  }
  return null;
}

/** One of the README's screenshots, when asked for: the window, or the side bar down to the tree's last row. */
async function readmeShot(name: string, part?: 'tree'): Promise<void> {
  if (!SCREENSHOTS) return;
  if (!part) return void await page.screenshot({ path: join(SCREENSHOTS, name) });
  const side = (await page.locator('[id="workbench.parts.sidebar"]').boundingBox())!;
  const boxes = await Promise.all((await rows().all()).map((r) => r.boundingBox()));
  const bottom = Math.max(...boxes.map((b) => (b ? b.y + b.height : 0)));
  await page.screenshot({ path: join(SCREENSHOTS, name), clip: { x: side.x, y: side.y, width: side.width, height: Math.min(side.height, bottom - side.y + 12) } });
}

/** For the README's screenshots: a side bar wide enough for the tree's descriptions (its sash dragged, as a person would). */
async function widenSideBar(width: number): Promise<void> {
  if (!SCREENSHOTS) return;
  const side = await page.locator('[id="workbench.parts.sidebar"]').boundingBox();
  if (!side || side.width >= width) return;
  const [x, y] = [side.x + side.width, side.y + side.height / 2];
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + width - side.width, y, { steps: 8 });
  await page.mouse.up();
}

test('in VS Code: the OdooOps view shows the demo; a clone from the palette streams its log and turns green in the tree', async () => {
  await page.goto(`http://127.0.0.1:${csPort}/?folder=${encodeURIComponent(scratch)}`);
  const icon = page.locator('.activitybar .action-item a[aria-label^="OdooOps"]');
  await icon.waitFor({ timeout: 120_000 });
  await icon.click();
  await rows().filter({ hasText: 'staging' }).first().waitFor({ timeout: 60_000 });
  await widenSideBar(470);
  const names = await page.locator('[id="workbench.view.extension.odooops"] .monaco-list-row .label-name').allTextContents();
  assert.ok(['production', 'staging', 'dev-feature'].every((n) => names.includes(n)), names.join(', '));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-1-tree.png') });

  await paletteCommand('OdooOps: Clone prod to staging');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'staging' }).first().waitFor();
  await page.locator('.quick-input-widget input').fill('staging');
  await page.keyboard.press('Enter');
  // It replaces staging's database: a modal names what and with what, and offers a backup first.
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 30_000 });
  const asked = (await dialog.textContent()) ?? '';
  assert.match(asked, /Clone into demo › staging \(staging\): replace its database/);
  assert.match(asked, /With: a fresh, masked copy of production \(database [^)]+\), made now/);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-1b-confirm-clone.png') });
  await dialog.locator('.monaco-button', { hasText: /^Replace$/ }).click();

  // The log panel beside the editor fills while the clone runs.
  const viewer = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await viewer.locator('.line').first().waitFor({ timeout: 60_000 });
  let sawRunning = false;
  let sawPercent = false;
  const final = await eventually('the clone to finish in the viewer', async () => {
    const status = (await viewer.locator('#status').textContent()) ?? '';
    const lines = await viewer.locator('.line').count();
    if (status === 'running' && lines > 0) sawRunning = true;
    if (!sawPercent && /copying \d+ %/.test((await page.locator('.notifications-toasts').textContent().catch(() => '')) ?? '')) {
      sawPercent = true;
      await page.screenshot({ path: join(ARTIFACTS, 'e2e-2b-progress.png') });
    }
    if (status === 'running' && lines > 0 && !existsSync(join(ARTIFACTS, 'e2e-2a-while-running.png'))) await page.screenshot({ path: join(ARTIFACTS, 'e2e-2a-while-running.png') });
    return ['succeeded', 'failed', 'cancelled'].includes(status) ? { status, lines } : null;
  }, 180_000);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-2-clone-log.png') });
  assert.equal(final.status, 'succeeded');
  assert.ok(final.lines > 20, `${final.lines} lines shown`);
  assert.ok(sawRunning, 'lines were shown while the run was still running');

  const text = (await viewer.locator('#rows').textContent()) ?? '';
  assert.match(text, /staging is now a neutralized, masked copy of production|verified: no sampled email/);

  // The tree, kept current by Realtime run events, shows this run (its number is in the panel's title)
  // as succeeded under staging.
  const tab = (await page.locator('.tab', { hasText: 'clone #' }).first().textContent()) ?? '';
  const runId = /clone #(\d+)/.exec(tab)?.[1];
  assert.ok(runId, tab);
  // The clone logs how far its copy is every 2 s ("copying: 68 %"); the notification showed that.
  const conn = JSON.parse(readFileSync(join(home, 'connection.json'), 'utf8')) as { url: string; token: string };
  const log = await (await fetch(`${conn.url}/api/runs/${runId}/logs?limit=5000`, { headers: { authorization: `Bearer ${conn.token}` } })).json() as { lines: { line: string }[] };
  if (log.lines.some((l) => /^copying: \d+ %/.test(l.line))) assert.ok(sawPercent, 'the progress notification showed how far the copy was');
  await rows().filter({ hasText: 'staging' }).first().click();
  await eventually(`run ${runId} to show as succeeded in the tree`, async () =>
    (await rows().filter({ hasText: `clone #${runId}` }).first().textContent().catch(() => ''))?.includes('succeeded'), 30_000);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-3-tree-green.png') });
  await readmeShot('run-log.png');
  assert.ok(readFileSync(join(ARTIFACTS, 'e2e-3-tree-green.png')).length > 10_000);

  // Under staging, its backups: the masked clones this run and the demo's first one left.
  await rows().filter({ hasText: 'Backups' }).first().click();
  await eventually('the masked clone under Backups', async () => (await rows().filter({ hasText: 'masked' }).count()) >= 2, 30_000);
  const backupRows = await rows().filter({ hasText: 'masked' }).allTextContents();
  assert.ok(backupRows.every((r) => /clone .*MiB/.test(r)), backupRows.join(' | '));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-4-backups.png') });

  // A window reload: the log panel comes back (WebviewPanelSerializer) with the run's lines replayed.
  await page.reload();
  const restored = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await eventually('the log panel after a reload', async () => (await restored.locator('.line').count().catch(() => 0)) > 20 && (await restored.locator('#status').textContent().catch(() => '')) === 'succeeded', 90_000)
    .catch(async (err) => {
      await page.screenshot({ path: join(ARTIFACTS, 'e2e-5-after-reload-failed.png') });
      throw err;
    });
  assert.match((await restored.locator('#rows').textContent()) ?? '', /staging is now a neutralized, masked copy of production|verified: no sampled email/);
  // Once its history is read, a finished run's follow ends: it does not say "live".
  await eventually('the follow of a finished run to end', async () => (await restored.locator('#connection').textContent()) === '', 30_000);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-5-after-reload.png') });

  // Hidden behind another editor and shown again: the webview is re-created and its lines replayed.
  await page.locator('.tab', { hasText: `clone #${runId}` }).click();
  await paletteCommand('File: New Untitled Text File');
  await page.locator('.tab', { hasText: 'Untitled-1' }).waitFor({ timeout: 30_000 });
  await eventually('the log panel to be hidden', async () => (await page.locator('iframe.webview.ready:visible').count()) === 0, 30_000);
  await page.locator('.tab', { hasText: `clone #${runId}` }).click();
  const shown = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await eventually('the log panel shown again', async () => (await shown.locator('.line').count().catch(() => 0)) > 20, 60_000);
});

test('in VS Code: another admin asks to restore production; the request shows in the tree, Approve… names it and approves it', async () => {
  // A second admin of the demo project, with a token of its own, acting through the API as a colleague would.
  const cli = (...args: string[]) => run(process.execPath, [join(ROOT, 'server', 'cli', 'main.ts'), ...args], { env: { ...process.env, ODOOOPS_HOME: home } });
  const peer = randomUUID();
  const peerToken = (await cli('token', '--user', peer)).stdout.trim();
  await cli('member', 'add', 'demo', peer, '--role', 'admin', '--name', 'Ana Lima');
  const conn = JSON.parse(readFileSync(join(home, 'connection.json'), 'utf8')) as { url: string; token: string };
  const api = async <T>(token: string, method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${conn.url}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };
  // Her backup of production, then her request to restore it.
  const backupRun = await api<{ id: number }>(peerToken, 'POST', '/api/projects/demo/environments/production/runs', { kind: 'backup', params: { kind: 'manual' } });
  const done = await eventually('her backup of production', async () => {
    const r = await api<{ status: string; error: string | null }>(peerToken, 'GET', `/api/runs/${backupRun.id}`);
    return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
  }, 240_000);
  assert.equal(done.status, 'succeeded', done.error ?? '');
  const backups = await api<{ id: string; runId: number | null }[]>(peerToken, 'GET', '/api/projects/demo/environments/production/backups');
  const backup = backups.find((b) => b.runId === backupRun.id);
  assert.ok(backup, 'her backup is listed');
  const reason = 'Roll production back to this morning: the 10:40 import duplicated 2,300 invoices';
  const requested = await api<{ id: string; status: string }>(peerToken, 'POST', '/api/projects/demo/environments/production/approvals', { kind: 'restore', params: { backup: backup.id }, reason });
  assert.equal(requested.status, 'pending');

  // It arrives in the tree by itself (Realtime), under the project's Approvals.
  const request = rows().filter({ hasText: 'restore production' }).first();
  await request.waitFor({ timeout: 30_000 });
  assert.match((await request.textContent()) ?? '', /10:40 import/);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-6-approval-requested.png') });
  if (SCREENSHOTS) {
    // Production open too: its backup run and its Backups under it.
    await rows().filter({ hasText: 'production' }).filter({ hasNotText: 'restore' }).first().click();
    await rows().filter({ hasText: `backup #${backupRun.id}` }).first().waitFor({ timeout: 30_000 });
  }
  await request.hover();
  await readmeShot('tree.png', 'tree');

  await paletteCommand('OdooOps: Approve…');
  // Clicked, not Enter: on a loaded machine Enter can land before the list has an active row, and the
  // quick pick then closes with nothing picked (CI: no dialog).
  const choice = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'restore production' }).first();
  await choice.waitFor({ timeout: 10_000 });
  await choice.click();
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 30_000 });
  const asked = (await dialog.textContent()) ?? '';
  assert.match(asked, /restore/);
  assert.match(asked, /production/);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-7-approve-dialog.png') });
  await readmeShot('approval.png');
  await dialog.locator('.monaco-button', { hasText: /^Approve$/ }).click();

  // Approved by the person at this VS Code (the operator), not by her; the tree says it may run now.
  const me = await api<{ userId: string }>(conn.token, 'GET', '/api/me');
  const decided = await eventually('the approval to be decided', async () =>
    (await api<{ id: string; status: string; decidedBy: string | null }[]>(peerToken, 'GET', '/api/projects/demo/approvals')).find((a) => a.id === requested.id && a.status !== 'pending'), 30_000);
  assert.equal(decided.status, 'approved');
  assert.equal(decided.decidedBy, me.userId);
  await eventually('the tree to show it approved', async () => /approved/.test((await rows().filter({ hasText: 'restore production' }).first().textContent().catch(() => '')) ?? ''), 30_000);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-8-approved.png') });
});

test('in VS Code: mail staging sent opens in a sandboxed view; a failed build\'s test is a problem on its line, and its log panel sums the build up', async () => {
  // Staging's Odoo sends through the outgoing server the clone gave it (test 1): the catcher, with
  // staging's own login. Read where Odoo reads it and sent as Odoo would (the real Odoo's send is in
  // test/mail-catcher.test.ts).
  const cluster = clusterDir(home);
  const port = Number(readFileSync(join(cluster, 'postmaster.pid'), 'utf8').split('\n')[3]);
  const password = readFileSync(homeFiles(home).pgPassword, 'utf8').trim();
  const db = (database: string) => new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
  const staging = db('odoo_demo_staging');
  await staging.connect();
  const server = await staging.query(`select smtp_host, smtp_port, smtp_user, smtp_pass from ir_mail_server where active and name = 'OdooOps mail catcher'`)
    .then((r) => r.rows[0]).finally(() => staging.end());
  assert.ok(server, 'staging\'s outgoing server is the catcher');
  assert.match(server.smtp_user, /^demo\/staging$/, 'staging sends to the catcher as itself');
  const subject = 'Quotation S00042 from Brasserie du Port';
  await nodemailer.createTransport({ host: server.smtp_host, port: server.smtp_port, secure: false, ignoreTLS: true, auth: { user: server.smtp_user, pass: server.smtp_pass } }).sendMail({
    from: '"Brasserie du Port" <sales@example.invalid>', to: '"Alex Example" <u3f2a9c1d@example.invalid>', subject,
    html: '<h2>Your quotation S00042</h2><p>Hello Alex Example,</p><p>Here is your quotation <b>S00042</b> amounting to <b>€ 1,284.00</b>.</p>'
      + '<table border="1" cellpadding="4"><tr><th>Product</th><th>Qty</th><th>Price</th></tr><tr><td>Draught beer, 30 L keg</td><td>8</td><td>€ 1,040.00</td></tr><tr><td>Tap rental</td><td>1</td><td>€ 244.00</td></tr></table>'
      + '<p><img src="https://tracker.example.invalid/open.gif" alt="(remote image)"></p><script>document.body.innerHTML = "SCRIPT RAN"</script>',
    attachments: [{ filename: 'S00042.pdf', content: Buffer.from('%PDF-1.4\n% the quotation\n') }],
  });
  const stagingRow = rows().filter({ hasText: 'staging' }).filter({ hasNotText: '#' }).first();
  if (!(await rows().filter({ hasText: /Mail/ }).count())) await stagingRow.click();
  const mailNode = rows().filter({ hasText: 'Mail (' }).first();
  await eventually('"Mail (1)" under staging', async () => /Mail \(1\)/.test((await mailNode.textContent().catch(() => '')) ?? ''), 60_000);
  await mailNode.click();
  const mailRow = rows().filter({ hasText: subject }).first();
  await mailRow.waitFor({ timeout: 30_000 });
  await mailRow.click();
  await page.locator('.tab', { hasText: subject }).waitFor({ timeout: 30_000 });
  // The mail's HTML is in a frame of its own inside the webview (sandboxed: no scripts, no remote images).
  const html = await eventually('the mail\'s HTML', () => frameWith('body', /amounting to/), 30_000);
  // Its script would have replaced the page with "SCRIPT RAN" (the script's own text is in textContent, not innerText).
  const shown = await html.locator('body').innerText();
  assert.match(shown, /Your quotation S00042/);
  assert.doesNotMatch(shown, /SCRIPT RAN/, 'its script did not run');
  const panel = await eventually('the mail view', () => frameWith('body', /S00042\.pdf/), 30_000);
  assert.match((await panel.locator('body').textContent()) ?? '', /Load remote images/);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-9-mail.png') });
  await readmeShot('mail.png');

  // A build of dev-feature whose test failed. TEST FIXTURE: the run's rows are written into the control
  // plane (the demo has no Odoo to build with); test/build-run.test.ts makes the same rows with real builds
  // on Odoo 17 and 19. The failing test's file is in the workspace (this window's folder).
  const testFile = join(scratch, 'shop_bad', 'tests', 'test_bad.py');
  mkdirSync(join(scratch, 'shop_bad', 'tests'), { recursive: true });
  writeFileSync(testFile, 'from odoo.tests.common import TransactionCase\n\n\nclass TestBad(TransactionCase):\n    def test_passes(self):\n        self.assertTrue(True)\n\n    def test_fails(self):\n        self.assertEqual(1 + 1, 3, \'arithmetic\')\n');
  const traceback = `Traceback (most recent call last):\n  File "shop_bad/tests/test_bad.py", line 9, in test_fails\n    self.assertEqual(1 + 1, 3, 'arithmetic')\nAssertionError: 2 != 3 : arithmetic`;
  const result = {
    revision: 'a3c4e1f0b2d94c8e7f6a5b4c3d2e1f0a9b8c7d6e', odooVersion: '17.0', seconds: 41.7,
    tests: { modules: ['shop_bad', 'shop_ok'], tests: 3, failed: 1, errors: 0, failures: [{ outcome: 'failed', test: 'test_fails (odoo.addons.shop_bad.tests.test_bad.TestBad.test_fails)', module: 'shop_bad', file: 'shop_bad/tests/test_bad.py', line: 9, message: 'AssertionError: 2 != 3 : arithmetic', traceback }] },
  };
  const control = db('postgres');
  await control.connect();
  const buildId = Number(await control.query(
    `insert into ops.runs (project_id, environment_id, kind, status, params, requested_by, attempts, max_attempts, started_at, finished_at, error, result)
     select p.id, e.id, 'build', 'failed', $1, null, 1, 1, now() - interval '52 seconds', now(), '1 of 3 tests failed: test_fails (shop_bad)', $2
     from ops.projects p join ops.environments e on e.project_id = p.id where p.slug = 'demo' and e.name = 'dev-feature' returning id`,
    [{ branch: 'feature/invoice-layout', revision: result.revision }, result],
  ).then((r) => r.rows[0].id).finally(() => control.end()));
  await paletteCommand('Problems: Focus on Problems View');
  const problems = page.locator('.markers-panel');
  await eventually('the failing test in the Problems view', async () => /test_fails failed: AssertionError: 2 != 3/.test((await problems.textContent().catch(() => '')) ?? ''), 60_000);
  assert.match((await problems.textContent()) ?? '', new RegExp(`OdooOps build #${buildId} \\(dev-feature\\)`));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-10-problems.png') });

  await paletteCommand('OdooOps: Open run logs');
  await page.locator('.quick-input-widget input').fill(`#${buildId}`);
  const byNumber = page.locator('.quick-input-widget .monaco-list-row', { hasText: `#${buildId}` }).first();
  await byNumber.waitFor({ timeout: 10_000 });
  await byNumber.click();
  await page.locator('.tab', { hasText: `build #${buildId}` }).waitFor({ timeout: 30_000 });
  const header = await eventually('the build\'s summary in the log panel\'s header', () => frameWith('#build', /3 tests · 1 failed/), 30_000);
  assert.match((await header.locator('#build').textContent()) ?? '', /test_fails/);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-11-build-log.png') });
  await readmeShot('build.png');
});
