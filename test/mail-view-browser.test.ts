// A caught mail's page (extension/src/mailPage.ts, exactly as the extension sets it as a webview's HTML)
// in a real browser: Debian's chromium through playwright-core. The mail's HTML has a <script>, an image
// whose onerror runs code, a meta refresh, a remote image and a CSS background from a "remote" host (a
// second local server, another origin, that counts what it is asked for), and a data: image. Nothing
// runs, no request reaches the remote host until "Load remote images" is clicked (the page posts that to
// the extension, which renders the page again with remote images allowed: what the test does next),
// and even then only the images come, never the script's, the onerror's or the refresh's requests.
// The webview host API is a page-level test double (acquireVsCodeApi), as in log-viewer-browser.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import type * as C from '../contract/index.ts';
import { mailPageHtml } from '../extension/src/mailPage.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const skip = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (scripts/test-prereqs.sh installs Debian's chromium)`;
// A 1×1 PNG, as Odoo's cid: images arrive (the server turns them into data: URIs).
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

let browser: Browser;
let page: Server;
let remote: Server;
let origin = '';
let remoteOrigin = '';
const remoteAsked: string[] = [];

const mail = (): C.CaughtMailDetail => ({
  id: 9, from: 'Ventes <ventes@brasserie.example>', to: 'client@klant-mail.example', subject: 'Votre facture', date: null,
  receivedAt: '2026-12-01T10:00:00.000Z', size: 2000, attachments: 0, envelopeFrom: 'ventes@brasserie.example', envelopeTo: ['client@klant-mail.example'],
  headers: [{ name: 'Subject', value: 'Votre facture' }], text: 'Bonjour',
  html: `<meta http-equiv="refresh" content="1;url=${remoteOrigin}/refresh">
<p id="hello">Bonjour</p>
<script>document.title = 'pwned'; fetch('${remoteOrigin}/script'); parent.postMessage('pwned', '*');</script>
<img id="broken" src="nothing-here.png" onerror="fetch('${remoteOrigin}/onerror'); alert('onerror')">
<img id="tracker" src="${remoteOrigin}/pixel.png">
<div style="background-image: url('${remoteOrigin}/background.png'); width: 10px; height: 10px"></div>
<img id="inline" src="data:image/png;base64,${PIXEL}">
<a id="link" href="${remoteOrigin}/clicked">Payer</a>`,
  parts: [],
});

before(async () => {
  if (skip) return;
  remote = createServer((req, res) => {
    remoteAsked.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from(PIXEL, 'base64'));
  });
  await new Promise<void>((r) => remote.listen(0, '127.0.0.1', r));
  remoteOrigin = `http://127.0.0.1:${(remote.address() as AddressInfo).port}`;
  page = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/') return void res.writeHead(404).end();
    const html = mailPageHtml({ mail: mail(), nonce: randomBytes(16).toString('base64'), cspSource: origin, remoteImages: url.searchParams.get('remote') === '1' });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await Promise.all([page, remote].map((s) => new Promise((r) => (s ? s.close(r) : r(null)))));
});

function fakeVsCodeWebviewHost(): void {
  const w = window as unknown as { __posted: unknown[]; __windowMessages: unknown[]; acquireVsCodeApi: () => unknown };
  w.__posted = [];
  w.__windowMessages = [];
  w.acquireVsCodeApi = () => ({ postMessage: (m: unknown) => w.__posted.push(m), setState: () => {}, getState: () => undefined });
  window.addEventListener('message', (e) => w.__windowMessages.push(e.data));
}

test('a hostile mail renders inert: no script, no remote request until "Load remote images"', { skip }, async (t) => {
  const p = await browser.newPage();
  t.after(() => p.close());
  const dialogs: string[] = [];
  p.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const popups: string[] = [];
  p.on('popup', (w) => popups.push(w.url()));
  await p.addInitScript(fakeVsCodeWebviewHost);
  await p.goto(`${origin}/?remote=0`);
  await p.setViewportSize({ width: 1000, height: 800 });
  const frame = p.frames().find((f) => f !== p.mainFrame())!;
  assert.ok(frame, 'the mail is in a frame');
  await frame.waitForSelector('#hello');
  // Longer than the meta refresh's delay and any image load.
  await p.waitForTimeout(2000);
  assert.deepEqual(remoteAsked, [], 'nothing asked of the remote host');
  assert.deepEqual(dialogs, [], 'no script ran (onerror)');
  assert.notEqual(await p.title(), 'pwned');
  assert.deepEqual(await p.evaluate(() => (window as unknown as { __windowMessages: unknown[] }).__windowMessages), [], 'the mail posted nothing to the page');
  assert.ok(p.frames().includes(frame) && (await frame.$('#hello')), 'the frame was not navigated away (meta refresh)');
  assert.equal(await p.locator('iframe#body').getAttribute('sandbox'), '', 'sandboxed, nothing allowed');
  // Clicking a link needs a popup, which the sandbox refuses.
  await p.frameLocator('iframe#body').locator('#link').click();
  await p.waitForTimeout(500);
  assert.deepEqual(popups, []);
  assert.deepEqual(remoteAsked, [], 'a click on a link reaches nothing');
  // Text tab: the text part, as text.
  await p.click('nav button[data-tab="text"]');
  assert.equal(await p.locator('#tab-text pre').textContent(), 'Bonjour');

  // The user asks for remote images: the page tells the extension, which renders it again allowing them.
  await p.click('nav button[data-tab="html"]');
  await p.click('#remote');
  assert.deepEqual(await p.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted), [{ type: 'remoteImages' }]);
  await p.goto(`${origin}/?remote=1`);
  await p.frames().find((f) => f !== p.mainFrame())!.waitForSelector('#hello');
  await p.waitForTimeout(2000);
  assert.deepEqual([...new Set(remoteAsked)].sort(), ['/background.png', '/pixel.png'], 'the images, and only them');
  assert.deepEqual(dialogs, []);
  assert.equal(await p.locator('#remote').count(), 0, 'no button once they show');
  mkdirSync(ARTIFACTS, { recursive: true });
  await p.screenshot({ path: join(ARTIFACTS, 'mail-view.png'), fullPage: true });
});
