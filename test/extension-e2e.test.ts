// The packaged extension in a real VS Code: code-server (VS Code in the browser, a real workbench and
// Node extension host; installed from npm by scripts/install-code-server.sh) driven by Debian's chromium
// through playwright-core, against `odooops server --demo` on the embedded default. Open the OdooOps
// view and see the demo environments; run "OdooOps: Clone prod to staging" from the command palette;
// watch the log panel fill while it runs; see the run turn green in the tree. Screenshots go to
// test-artifacts/ (look at them).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../server/db/embedded.ts';
import { eventually } from './helpers/control-plane.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CODE_SERVER_DIR = process.env.ODOOOPS_CODE_SERVER_DIR ?? '/var/cache/odooops-test/code-server';
let scratch: string;
const children: ChildProcess[] = [];
let browser: Browser | undefined;
let page: Page;
let csPort: number;

function start(cmd: string, args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20000)));
  children.push(child);
  return Object.assign(child, { output: () => out });
}

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'odooops-e2e-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  // code-server (once per machine) and the .vsix, as a user gets it (npm run package).
  await run('sh', [join(ROOT, 'scripts', 'install-code-server.sh')], { env: { ...process.env, ODOOOPS_CODE_SERVER_DIR: CODE_SERVER_DIR }, timeout: 20 * 60_000, maxBuffer: 64 << 20 });
  await run(process.execPath, ['esbuild.mjs', '--production', '--only=extension,webview'], { cwd: ROOT });
  const vsix = join(scratch, 'odooops.vsix');
  await run(process.execPath, [join(ROOT, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--out', vsix], { cwd: join(ROOT, 'extension') });

  // The server on the embedded default, with its demo (production, staging cloned at start, a dev branch).
  const home = join(scratch, 'odooops-home');
  // 80,000 customers: a clone takes long enough (also on a loaded machine) to watch its log fill.
  const server = start(process.execPath, [join(ROOT, 'server', 'cli', 'main.ts'), 'server', '--demo', '--fast'], { ODOOOPS_HOME: home, ODOOOPS_DEMO_PARTNERS: '80000' });
  await eventually('the demo server', async () => existsSync(join(home, 'connection.json')) || (server.exitCode !== null && assert.fail(server.output())), 120_000);

  // code-server runs on Node 24 (the project's own), its state in the scratch directory.
  const xdg = join(scratch, 'xdg');
  const env = {
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`, ODOOOPS_HOME: home,
    XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, XDG_CACHE_HOME: xdg,
  };
  const cs = join(CODE_SERVER_DIR, 'node_modules', '.bin', 'code-server');
  const dirs = ['--user-data-dir', join(scratch, 'user'), '--extensions-dir', join(scratch, 'extensions')];
  await run(cs, [...dirs, '--install-extension', vsix], { env: { ...process.env, ...env }, timeout: 120_000 });
  csPort = await freePort();
  const codeServer = start(cs, ['--bind-addr', `127.0.0.1:${csPort}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    ...dirs, '--config', join(scratch, 'code-server.yaml'), scratch], env);
  await eventually('code-server', async () => (await fetch(`http://127.0.0.1:${csPort}/healthz`).catch(() => null))?.ok || (codeServer.exitCode !== null && assert.fail(codeServer.output())), 60_000);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const c of children.reverse()) {
    c.kill('SIGTERM');
    await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
  }
  rmSync(scratch, { recursive: true, force: true });
});

const rows = () => page.locator('[id="workbench.view.extension.odooops"] .monaco-list-row');

test('in VS Code: the OdooOps view shows the demo; a clone from the palette streams its log and turns green in the tree', async () => {
  await page.goto(`http://127.0.0.1:${csPort}/?folder=${encodeURIComponent(scratch)}`);
  const icon = page.locator('.activitybar .action-item a[aria-label^="OdooOps"]');
  await icon.waitFor({ timeout: 120_000 });
  await icon.click();
  await rows().filter({ hasText: 'staging' }).first().waitFor({ timeout: 60_000 });
  const names = await page.locator('[id="workbench.view.extension.odooops"] .monaco-list-row .label-name').allTextContents();
  assert.ok(['production', 'staging', 'dev-feature'].every((n) => names.includes(n)), names.join(', '));
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-1-tree.png') });

  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').fill('>OdooOps: Clone prod to staging');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Clone prod to staging' }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'staging' }).first().waitFor();
  await page.locator('.quick-input-widget input').fill('staging');
  await page.keyboard.press('Enter');

  // The log panel beside the editor fills while the clone runs.
  const viewer = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  await viewer.locator('.line').first().waitFor({ timeout: 60_000 });
  let sawRunning = false;
  const final = await eventually('the clone to finish in the viewer', async () => {
    const status = (await viewer.locator('#status').textContent()) ?? '';
    const lines = await viewer.locator('.line').count();
    if (status === 'running' && lines > 0) sawRunning = true;
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
  await rows().filter({ hasText: 'staging' }).first().click();
  await eventually(`run ${runId} to show as succeeded in the tree`, async () =>
    (await rows().filter({ hasText: `clone #${runId}` }).first().textContent().catch(() => ''))?.includes('succeeded'), 30_000);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-3-tree-green.png') });
  assert.ok(readFileSync(join(ARTIFACTS, 'e2e-3-tree-green.png')).length > 10_000);
});
