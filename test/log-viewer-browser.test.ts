// The log viewer (webview bundle) in a real browser: Debian's chromium through playwright-core, the page
// exactly as the extension host builds it (webview/src/page.ts: same markup, same strict CSP with a
// nonce), the bundle built from the sources. The one thing VS Code provides that a browser lacks is the
// webview host API (acquireVsCodeApi): a page-level test double records what the viewer posts and keeps
// its state. Messages from the "host" are window messages, as VS Code delivers them.
// Behaviour is asserted; the million-line figures (ingest time, a scroll frame, JS heap) are printed.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { viewerHtml } from '../webview/src/page.ts';

const ROOT = join(import.meta.dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (scripts/test-prereqs.sh installs Debian's chromium)`;
const ARTIFACTS = join(ROOT, 'test-artifacts');

let browser: Browser;
let server: Server;
let origin = '';

before(async () => {
  if (skip) return;
  // The webview target of esbuild.mjs, built in memory (not into extension/dist, which the extension's
  // e2e test packages at the same time).
  const bundle = await build({
    entryPoints: [join(ROOT, 'webview', 'src', 'main.ts')], bundle: true, platform: 'browser', format: 'iife', target: 'es2022', write: false, logLevel: 'warning',
  });
  const js = bundle.outputFiles[0]!.text;
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/webview.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    } else if (url.pathname === '/') {
      const levels = url.searchParams.get('levels') as 'info' | null;
      const html = viewerHtml({ runId: Number(url.searchParams.get('run') ?? 7), nonce: randomBytes(16).toString('base64'), cspSource: origin, script: `${origin}/webview.js`, ...(levels ? { levels } : {}) });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await new Promise((r) => (server ? server.close(r) : r(null)));
});

/**
 * Runs in the page before its scripts: the test double of VS Code's webview host API, and the theme
 * variables VS Code would set (a plausible dark theme), as a constructed stylesheet (no CSP change).
 */
function fakeVsCodeWebviewHost(): void {
  const w = window as unknown as { __posted: unknown[]; __state: unknown; acquireVsCodeApi: () => unknown };
  w.__posted = [];
  w.__state = undefined;
  w.acquireVsCodeApi = () => ({
    postMessage: (m: unknown) => w.__posted.push(m),
    setState: (s: unknown) => (w.__state = s),
    getState: () => w.__state,
  });
  const theme = new CSSStyleSheet();
  theme.replaceSync(`:root {
    --vscode-editor-foreground: #cccccc; --vscode-editor-background: #1e1e1e; --vscode-panel-border: #444444;
    --vscode-editor-font-family: 'DejaVu Sans Mono', monospace; --vscode-editor-font-size: 13px; --vscode-font-family: 'DejaVu Sans', sans-serif;
    --vscode-errorForeground: #f48771; --vscode-editorWarning-foreground: #cca700; --vscode-descriptionForeground: #9d9d9d;
    --vscode-inputValidation-warningBackground: #352a05; --vscode-inputValidation-warningBorder: #b89500;
    --vscode-editor-findMatchHighlightBackground: rgba(234, 92, 0, 0.33); --vscode-editor-findMatchBackground: #515c6a;
    --vscode-textLink-foreground: #3794ff; --vscode-testing-iconPassed: #73c991;
    --vscode-terminal-ansiRed: rgb(205, 49, 49); --vscode-terminal-ansiGreen: rgb(13, 188, 121); --vscode-terminal-ansiYellow: #e5e510;
    --vscode-terminal-ansiBlue: #2472c8; --vscode-terminal-ansiCyan: #11a8cd; --vscode-terminal-ansiWhite: #e5e5e5;
    --vscode-input-background: #3c3c3c; --vscode-input-foreground: #cccccc; --vscode-button-secondaryBackground: #3a3d41;
    --vscode-button-secondaryForeground: #cccccc; --vscode-checkbox-background: #3c3c3c; --vscode-checkbox-border: #6b6b6b; --vscode-foreground: #cccccc;
  }`);
  document.adoptedStyleSheets = [theme];
}

async function open(t: TestContext, size = { width: 1200, height: 800 }, query = 'run=7'): Promise<Page> {
  const page = await browser.newPage({ viewport: size });
  t.after(() => page.close());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  t.after(() => assert.deepEqual(errors, [], 'no page errors and no CSP violations'));
  await page.addInitScript(fakeVsCodeWebviewHost);
  await page.goto(`${origin}/?${query}`);
  await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
  return page;
}

/** Posts messages as the extension host does, then waits for the viewer to have drawn them. */
async function host(page: Page, ...messages: unknown[]): Promise<void> {
  await page.evaluate((ms) => ms.forEach((m) => window.postMessage(m, '*')), messages);
  await frames(page);
}

const frames = (page: Page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
const line = (seq: number, text: string, stream = 'stdout') => ({ seq, ts: '2026-11-25T10:00:00.123Z', stream, line: text });

test('a million lines: bounded DOM, the end and a search reach the right line, figures printed', { skip }, async (t) => {
  const page = await open(t);
  const cdp = await page.context().newCDPSession(page);
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return (await cdp.send('Runtime.getHeapUsage')).usedSize / 2 ** 20;
  };
  const heapBefore = await heap();

  // Built in the page first (not timed), then posted 5000 a message like the host, and timed until the
  // viewer, following, shows the last line.
  const ingestMs = await page.evaluate(async () => {
    const N = 1_000_000;
    const batches: unknown[][] = [];
    for (let b = 0; b < N; b += 5000) {
      const lines = [];
      for (let i = b + 1; i <= b + 5000; i++) {
        const text = `2026-11-25 10:00:00,${String(i % 1000).padStart(3, '0')} 42 ${i % 97 === 0 ? 'WARNING' : 'INFO'} shop odoo.modules.loading: line ${i} loading module m${i % 500}`;
        lines.push({ seq: i, ts: new Date(Date.UTC(2026, 10, 25, 10) + i).toISOString(), stream: i % 10 === 0 ? 'stderr' : 'stdout', line: i === 999_999 ? `${text} needle-999999` : text });
      }
      batches.push(lines);
    }
    const rows = document.getElementById('rows')!;
    const t0 = performance.now();
    for (const lines of batches) window.postMessage({ type: 'lines', lines }, '*');
    await new Promise<void>((resolve) => {
      const check = () => (rows.textContent!.includes('line 1000000 loading') ? resolve() : requestAnimationFrame(check));
      check();
    });
    return performance.now() - t0;
  });
  const heapAfter = await heap();

  const shown = () => page.evaluate(() => {
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const rows = [...document.querySelectorAll<HTMLElement>('#rows .line')];
    const inView = rows.filter((r) => { const b = r.getBoundingClientRect(); return b.top >= vp.top - 1 && b.bottom <= vp.bottom + 1; });
    return { rows: rows.length, all: document.querySelectorAll('#rows *').length, first: inView[0]?.textContent ?? '', last: inView.at(-1)?.textContent ?? '' };
  });
  let view = await shown();
  assert.ok(view.rows < 300, `${view.rows} row elements for a million lines`);
  assert.ok(view.all < 2000, `${view.all} elements in the log area`);
  assert.match(view.last, /line 1000000 loading/, 'following: the last line is in view');

  // Scroll to the top, then to the end: the last line is in view again.
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  assert.match((await shown()).first, /: line 1 loading/);
  await page.evaluate(() => { const vp = document.getElementById('viewport')!; vp.scrollTop = vp.scrollHeight; });
  await frames(page);
  assert.match((await shown()).last, /line 1000000 loading/);

  // One frame after a jump to the middle: the middle lines are drawn.
  const scrollMs = await page.evaluate(async () => {
    const vp = document.getElementById('viewport')!;
    const t0 = performance.now();
    vp.scrollTop = (vp.scrollHeight - vp.clientHeight) / 2;
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    return performance.now() - t0;
  });
  view = await shown();
  const middle = Number(/line (\d+) loading/.exec(view.first)?.[1]);
  assert.ok(Math.abs(middle - 500_000) < 100, `the middle of the log is in view (line ${middle})`);
  assert.ok(view.rows < 300);
  // The viewer's own share of it: its scroll handler (the rows drawn) and the layout that follows.
  const renderMs = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!;
    const t0 = performance.now();
    vp.scrollTop = (vp.scrollHeight - vp.clientHeight) / 2 + 3000;
    vp.dispatchEvent(new Event('scroll'));
    void document.getElementById('rows')!.offsetHeight;
    return performance.now() - t0;
  });
  await frames(page);

  // Search: the one match, in line 999,999, is counted, marked current and scrolled into view.
  const t0 = Date.now();
  await page.locator('#search input').fill('needle-999999');
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 1');
  const searchMs = Date.now() - t0;
  await frames(page);
  const found = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const cur = document.querySelector<HTMLElement>('#rows .line.current');
    const b = cur?.getBoundingClientRect();
    return { text: cur?.textContent ?? '', inView: !!b && b.top >= vp.top && b.bottom <= vp.bottom };
  });
  assert.match(found.text, /line 999999 loading .* needle-999999/);
  assert.ok(found.inView, 'the match is scrolled into view');


  // Wrap on a million lines: every line's height computed, the match stays in view.
  const w0 = Date.now();
  await page.locator('#wrap').click();
  await frames(page);
  const wrapMs = Date.now() - w0;
  const wrapped = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const b = document.querySelector('#rows .line.current')?.getBoundingClientRect();
    return { inView: !!b && b.top < vp.bottom && b.bottom > vp.top, rows: document.querySelectorAll('#rows .line').length };
  });
  assert.ok(wrapped.inView, 'with wrap on the match is still in view');
  assert.ok(wrapped.rows < 300);

  const figures = `1M lines: ingest ${ingestMs.toFixed(0)} ms (200 messages of 5000), scroll-to-middle frame ${scrollMs.toFixed(1)} ms ` +
    `(rows drawn and laid out in ${renderMs.toFixed(1)} ms), ` +
    `search ${searchMs} ms, wrap on ${wrapMs} ms, JS heap ${heapBefore.toFixed(1)} MB → ${heapAfter.toFixed(1)} MB (+${(heapAfter - heapBefore).toFixed(1)} MB held), ${view.rows} row elements`;
  t.diagnostic(figures);
  console.log(figures);
  assert.ok(heapAfter - heapBefore < 400, 'a million lines fit in a bounded heap');

  // What the viewer told its host: ready, and the state VS Code keeps for the panel.
  const fake = await page.evaluate(() => {
    const w = window as unknown as { __posted: unknown[]; __state: unknown };
    return { posted: w.__posted, state: w.__state };
  });
  assert.deepEqual(fake.posted, [{ type: 'ready' }]);
  assert.deepEqual(fake.state, { runId: 7, wrap: true });
});

test('markup in a line is text: no script runs, no element is created', { skip }, async (t) => {
  const page = await open(t);
  const evil = ['<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=2">', 'File "<img src=x onerror=window.__pwned=3>.py", line 1'];
  await host(page, { type: 'lines', lines: evil.map((l, i) => line(i + 1, l)) });
  await page.waitForTimeout(200);
  const r = await page.evaluate(() => ({
    pwned: (window as unknown as { __pwned?: number }).__pwned,
    elements: document.querySelectorAll('#rows img, #rows script, #viewport img, #viewport script').length,
    texts: [...document.querySelectorAll('#rows .line')].map((e) => e.textContent),
  }));
  assert.equal(r.pwned, undefined);
  assert.equal(r.elements, 0);
  assert.equal(r.texts[0], evil[0]);
  assert.equal(r.texts[1], evil[1]);
  assert.ok(r.texts[2]!.startsWith(evil[2]!));
  assert.ok(await page.getByText(evil[0]!).isVisible(), 'shown as visible text');
});

test('wrap: a 2000-character line wraps when on and scrolls sideways when off; state kept', { skip }, async (t) => {
  const page = await open(t, { width: 900, height: 700 });
  const long = `START ${'0123456789abcdefghij'.repeat(100)} END`;
  const lines = [line(1, 'before'), line(2, long), line(3, 'after')];
  for (let i = 4; i <= 300; i++) lines.push(line(i, i % 7 === 0 ? `wide ${i} ${'x'.repeat(400 + i)}` : `short ${i}`));
  lines.push(line(301, `target ${'y'.repeat(700)} needle-301`));
  await host(page, { type: 'lines', lines });
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  const geometry = () => page.evaluate(() => {
    const rows = [...document.querySelectorAll<HTMLElement>('#rows .line')];
    const longRow = rows.find((r) => r.textContent!.startsWith('START'));
    if (!longRow) throw new Error(`no long row in ${rows.map((r) => r.textContent!.slice(0, 20)).join(' | ')} (scrollTop ${document.getElementById('viewport')!.scrollTop})`);
    const after = rows.find((r) => r.textContent === 'after')!;
    const b = longRow.getBoundingClientRect();
    // Where the text really ends: the last line box of the row's last span.
    const textBottom = [...longRow.lastElementChild!.getClientRects()].at(-1)!.bottom;
    const vp = document.getElementById('viewport')!;
    return { height: b.height, bottom: b.bottom, textBottom, afterTop: after.getBoundingClientRect().top, sideways: vp.scrollWidth > vp.clientWidth };
  });
  const off = await geometry();
  assert.equal(off.height, 18);
  assert.ok(off.sideways, 'without wrap the long line scrolls sideways');

  await page.locator('#wrap').click();
  await frames(page);
  const on = await geometry();
  assert.ok(on.height > 18 * 10, `the long line wraps (${on.height} px)`);
  assert.equal(on.height % 18, 0);
  assert.ok(on.textBottom > on.bottom - 18 - 1 && on.textBottom <= on.bottom + 1, 'its computed height is the height its text takes');
  assert.ok(on.afterTop >= on.bottom - 1, 'the next line starts below it');
  assert.ok(!on.sideways, 'no sideways scrolling with wrap on');
  assert.deepEqual(await page.evaluate(() => (window as unknown as { __state: unknown }).__state), { runId: 7, wrap: true });

  // With wrapped lines of many heights, a search still brings its line into view.
  await page.locator('#search input').fill('needle-301');
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 1');
  await frames(page);
  const found = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const b = document.querySelector('#rows .line.current')?.getBoundingClientRect();
    return !!b && b.top < vp.bottom && b.bottom > vp.top;
  });
  assert.ok(found, 'the wrapped match is in view');

  await page.locator('#search input').fill('');
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await page.locator('#wrap').click();
  await frames(page);
  const offAgain = await geometry();
  assert.equal(offAgain.height, 18);
  assert.deepEqual(await page.evaluate(() => (window as unknown as { __state: unknown }).__state), { runId: 7, wrap: false });
});

test('the reconnecting banner shows while the host reconnects and goes when it is live again', { skip }, async (t) => {
  const page = await open(t, { width: 1000, height: 560 });
  const lines = [];
  for (let i = 1; i <= 40; i++) {
    lines.push(line(i, i % 9 === 0
      ? `2026-11-25 10:00:0${i % 10},000 42 WARNING shop odoo.models: a long warning that wraps: ${'the quick brown fox jumps over the lazy dog; '.repeat(6)}`
      : `2026-11-25 10:00:0${i % 10},000 42 INFO shop odoo.modules.loading: loading module ${i}`));
  }
  lines.push(line(41, '\x1b[1;31mERROR\x1b[0m restore failed, retrying'));
  await host(page, { type: 'status', status: 'running', title: 'clone #7 · staging' }, { type: 'lines', lines });
  const banner = page.locator('#banner');
  assert.equal(await banner.isVisible(), false);
  await page.locator('#wrap').click();
  await host(page, { type: 'connection', state: 'reconnecting', detail: 'live connection channel error' });
  assert.equal(await banner.isVisible(), true);
  assert.match((await banner.textContent())!, /Reconnecting… lines will be filled in from where they stopped/);
  assert.equal(await page.locator('#connection').textContent(), 'reconnecting…');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-wrap-reconnecting.png') });

  await host(page, { type: 'connection', state: 'live' });
  assert.equal(await banner.isVisible(), false);
  assert.equal(await page.locator('#connection').textContent(), 'live');
});

test('ANSI colours become styled spans, not escape codes', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: [line(1, '\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m\x1b[2K')] });
  const r = await page.evaluate(() => {
    const row = document.querySelector('#rows .line')!;
    return {
      text: row.textContent,
      spans: [...row.querySelectorAll('span')].map((s) => ({ text: s.textContent, cls: s.className, color: getComputedStyle(s).color, weight: getComputedStyle(s).fontWeight })),
    };
  });
  assert.equal(r.text, 'red plain bold green');
  assert.doesNotMatch(r.text!, /\x1b|\[\d+m/);
  assert.deepEqual(r.spans.map((s) => [s.text, s.cls]), [['red', 'fg1'], [' plain ', ''], ['bold green', 'fg2']]);
  assert.equal(r.spans[0]!.color, 'rgb(205, 49, 49)');
  assert.equal(r.spans[2]!.color, 'rgb(13, 188, 121)');
  assert.equal(r.spans[2]!.weight, '700');
});

test('Ctrl+F searches the log; Enter and Shift+Enter step through the matches; Escape leaves the search', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: Array.from({ length: 50 }, (_, i) => line(i + 1, i % 10 === 3 ? `ERROR odoo.sql_db: bad query ${i + 1}` : `INFO line ${i + 1}`)) });
  await page.locator('#viewport').click();
  await page.keyboard.press('Control+f');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'search', 'the search field has the focus');
  await page.keyboard.type('bad query');
  await frames(page);
  assert.match((await page.locator('#count').textContent())!, /1 of 5|1\/5/);
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await frames(page);
  assert.match((await page.locator('#count').textContent())!, /3 of 5|3\/5/);
  assert.match((await page.locator('.line.current').textContent())!, /bad query 24/);
  await page.keyboard.press('Shift+Enter');
  await frames(page);
  assert.match((await page.locator('.line.current').textContent())!, /bad query 14/);
  await page.keyboard.press('Escape');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'viewport');
});

test('line numbers: the log\'s sequence numbers in a gutter beside each line, not in the text', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: Array.from({ length: 30 }, (_, i) => line(1001 + i, `text of ${1001 + i}`)) });
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  const r = await page.evaluate(() => {
    const gutter = document.getElementById('gutter')!;
    const node = gutter.firstChild!;
    const rows = [...document.querySelectorAll<HTMLElement>('#rows .line')];
    // Where the gutter draws each number: a range over it.
    const numbers = gutter.textContent!.split('\n');
    let at = 0;
    const tops = numbers.map((n) => {
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + n.length);
      at += n.length + 1;
      const b = range.getBoundingClientRect();
      return { top: Math.round(b.top), right: b.right };
    });
    return {
      numbers, tops, rowTops: rows.map((row) => Math.round(row.getBoundingClientRect().top)), texts: rows.map((row) => row.textContent),
      textLeft: rows[0]!.querySelector('span')!.getBoundingClientRect().left, visible: getComputedStyle(gutter).visibility === 'visible' && gutter.getBoundingClientRect().width > 20,
    };
  });
  assert.deepEqual(r.numbers, Array.from({ length: 30 }, (_, i) => String(1001 + i)));
  assert.equal(r.tops.length, r.rowTops.length);
  assert.ok(r.tops.every((x, i) => Math.abs(x.top - r.rowTops[i]!) <= 2), `each number beside its line (${r.tops.map((x) => x.top)} vs ${r.rowTops})`);
  assert.ok(r.visible);
  assert.ok(r.tops.every((x) => x.right <= r.textLeft), 'the numbers end before the text starts');
  assert.deepEqual(r.texts.slice(0, 3), ['text of 1001', 'text of 1002', 'text of 1003'], 'a line\'s text has no number in it');
});

test('search: the match is highlighted, not the line; case and regex toggles; filter shows only the matching lines', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: Array.from({ length: 200 }, (_, i) => line(i + 1, i % 10 === 3 ? `ERROR odoo.sql_db: bad Query ${i + 1} in shop` : `INFO line ${i + 1} bad query? no`)) });
  const hits = () => page.evaluate(() => ({
    hits: [...document.querySelectorAll('#rows .line.current .hit')].map((h) => h.textContent),
    lineBg: getComputedStyle(document.querySelector('#rows .line.current')!).backgroundColor,
    hitBg: getComputedStyle(document.querySelector('#rows .line.current .hit')!).backgroundColor,
    rest: [...document.querySelector('#rows .line.current')!.querySelectorAll('span:not(.hit)')].map((s) => getComputedStyle(s).backgroundColor),
  }));
  await page.locator('#search input').fill('bad query 14 ');
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 1');
  await frames(page);
  const h = await hits();
  assert.deepEqual(h.hits, ['bad Query 14 '], 'only the matching text is marked');
  assert.equal(h.lineBg, 'rgba(0, 0, 0, 0)', 'the line itself has no background');
  assert.notEqual(h.hitBg, 'rgba(0, 0, 0, 0)');
  assert.ok(h.rest.every((bg) => bg === 'rgba(0, 0, 0, 0)'), 'the rest of the line is not highlighted');

  // Case: "bad query" matches 200 lines without, the 180 INFO lines with "Match case".
  await page.locator('#search input').fill('bad query');
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 200');
  await page.locator('#case').click();
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 180');
  await page.locator('#case').click();
  // Regex: the ERROR lines' numbers ending in 4.
  await page.locator('#regex').click();
  await page.locator('#search input').fill('query \\d*4 in');
  await page.waitForFunction(() => document.getElementById('count')!.textContent === '1 of 20');
  await frames(page);
  assert.deepEqual((await hits()).hits, ['Query 4 in']);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-search.png') });
  await page.locator('#search input').fill('query (');
  await page.waitForFunction(() => /invalid regular expression/.test(document.getElementById('count')!.textContent!));

  // Filter: only the 20 matching lines are laid out, with their own line numbers; off again: all 200.
  await page.locator('#search input').fill('query \\d*4 in');
  await page.locator('#filter').click();
  await frames(page);
  const filtered = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!;
    vp.scrollTop = 0;
    return new Promise<{ texts: string[]; numbers: string[]; height: number }>((r) => requestAnimationFrame(() => requestAnimationFrame(() => {
      const rows = [...document.querySelectorAll<HTMLElement>('#rows .line')];
      r({ texts: rows.map((e) => e.textContent!), numbers: document.getElementById('gutter')!.textContent!.split('\n'), height: vp.scrollHeight });
    })));
  });
  assert.equal(filtered.texts.length, 20);
  assert.ok(filtered.texts.every((x) => /^ERROR odoo\.sql_db: bad Query \d*4 in shop$/.test(x)), filtered.texts.join(' | '));
  assert.deepEqual(filtered.numbers.slice(0, 3), ['4', '14', '24']);
  assert.ok(filtered.height <= 20 * 18 + 600, `the scroll area is the 20 lines' (${filtered.height} px)`);
  await page.locator('#filter').click();
  await frames(page);
  assert.ok(await page.evaluate(() => document.getElementById('viewport')!.scrollHeight >= 200 * 18));
});

test('links: a web address posts the open message; a file:line posts the workspace open; hostile text stays inert', { skip }, async (t) => {
  const page = await open(t);
  const evil = [
    'docs at https://www.odoo.com/documentation/17.0/ (read them)',
    'javascript:window.__pwned=1 and JAVASCRIPT:alert(1)',
    'https://x.test/"><img src=x onerror="window.__pwned=2"><script>window.__pwned=3</script>',
    '"><img src=x onerror=window.__pwned=4> <a href="javascript:window.__pwned=5">click</a>',
    'failed at addons/sale_ext/models/sale.py:42: boom',
  ];
  await host(page, { type: 'lines', lines: evil.map((l, i) => line(i + 1, l)) });
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  const r = await page.evaluate(() => ({
    anchors: [...document.querySelectorAll<HTMLAnchorElement>('#rows a')].map((a) => ({ text: a.textContent, href: a.getAttribute('href') })),
    elements: document.querySelectorAll('#viewport img, #viewport script, #viewport [onerror], #viewport [href^="javascript"]').length,
    texts: [...document.querySelectorAll('#rows .line')].map((e) => e.textContent),
  }));
  assert.deepEqual(r.anchors, [
    { text: 'https://www.odoo.com/documentation/17.0/', href: '#' },
    { text: 'https://x.test/', href: '#' },
    { text: 'addons/sale_ext/models/sale.py:42', href: '#' },
  ]);
  assert.equal(r.elements, 0, 'no element made from the text');
  assert.deepEqual(r.texts, evil, 'every line shown as its text');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-links.png') });

  await page.locator('#rows a', { hasText: 'odoo.com' }).click();
  await page.locator('#rows a', { hasText: 'x.test' }).click();
  await page.locator('#rows a', { hasText: 'sale.py:42' }).click();
  await page.locator('#rows .line', { hasText: 'JAVASCRIPT:alert' }).click();
  await page.locator('#rows .line', { hasText: 'click' }).click();
  await page.waitForTimeout(200);
  const after = await page.evaluate(() => {
    const w = window as unknown as { __posted: unknown[]; __pwned?: number };
    return { posted: w.__posted.slice(1), pwned: w.__pwned, url: location.href };
  });
  assert.deepEqual(after.posted, [
    { type: 'openUrl', url: 'https://www.odoo.com/documentation/17.0/' },
    { type: 'openUrl', url: 'https://x.test/' },
    { type: 'open', path: 'addons/sale_ext/models/sale.py', line: 42 },
  ]);
  assert.equal(after.pwned, undefined);
  assert.ok(after.url.startsWith(origin), 'the page did not navigate');
});

test('attempts are separated; stderr and the server\'s own lines look unlike stdout', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: [
    line(1, 'clone on staging (staging), attempt 1 of 3, worker w-1', 'system'),
    line(2, 'restoring', 'stdout'),
    line(3, 'pg_restore: error: connection lost', 'stderr'),
    line(4, 'worker w-1 stopped answering; queued again for attempt 2 of 3', 'system'),
    line(5, 'clone on staging (staging), attempt 2 of 3, worker w-2', 'system'),
    line(6, 'restoring', 'stdout'),
    line(7, 'clone on staging (staging), attempt 3 of 3, worker w-9', 'stdout'),
  ] });
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  const r = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#rows .line')].map((row) => {
    const s = getComputedStyle(row);
    return { attempt: getComputedStyle(row, '::after').content, shadow: s.boxShadow, bg: s.backgroundColor, color: s.color, style: s.fontStyle };
  }));
  assert.deepEqual(r.map((x) => x.attempt), ['"Attempt 1 of 3"', 'none', 'none', 'none', '"Attempt 2 of 3"', 'none', 'none'], 'a separator where each attempt starts, not for a line of output that looks like one');
  assert.notEqual(r[4]!.bg, r[3]!.bg, 'the separator is a band');
  assert.notEqual(r[4]!.shadow, 'none', 'with a rule');
  assert.notEqual(r[2]!.shadow, r[1]!.shadow, 'stderr is marked');
  assert.equal(r[6]!.shadow, r[1]!.shadow, 'stdout stays plain');
  assert.equal(r[3]!.style, 'italic', 'the server\'s own lines are set apart');
  assert.notEqual(r[3]!.color, r[1]!.color);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-attempts.png') });
});

test('ANSI background, 256 and true colours', { skip }, async (t) => {
  const page = await open(t);
  await host(page, { type: 'lines', lines: [line(1, '\x1b[41mbg\x1b[0m \x1b[38;5;208m256\x1b[0m \x1b[48;5;22mbg256\x1b[0m \x1b[38;2;1;2;3;48;2;250;240;230mtrue\x1b[0m')] });
  const r = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#rows .line span')].filter((s) => s.textContent!.trim()).map((s) => {
    const c = getComputedStyle(s);
    return [s.textContent, [c.color, c.backgroundColor]];
  })));
  assert.deepEqual(r, {
    bg: ['rgb(204, 204, 204)', 'rgb(205, 49, 49)'],
    256: ['rgb(255, 135, 0)', 'rgba(0, 0, 0, 0)'],
    bg256: ['rgb(204, 204, 204)', 'rgb(0, 95, 0)'],
    true: ['rgb(1, 2, 3)', 'rgb(250, 240, 230)'],
  });
});

test('word wrap breaks between words; a word longer than a row is broken; heights match what is drawn', { skip }, async (t) => {
  const page = await open(t, { width: 700, height: 600 });
  const words = 'restoring the filestore of shop-production into staging while the database is being masked'.split(' ');
  const lines = [];
  for (let i = 1; i <= 60; i++) lines.push(line(i, i % 3 === 0 ? Array.from({ length: 40 }, (_, j) => words[(i + j) % words.length]).join(' ') : i % 3 === 1 ? `id${i} ${'z'.repeat(150)} tail` : `short ${i}`));
  await host(page, { type: 'lines', lines });
  await page.locator('#wrap').click();
  await page.evaluate(() => (document.getElementById('viewport')!.scrollTop = 0));
  await frames(page);
  await frames(page);
  const r = await page.evaluate((texts) => {
    const rows = [...document.querySelectorAll<HTMLElement>('#rows .line')];
    const split: string[] = [];
    const gaps: number[] = [];
    for (const row of rows) {
      // Every word of a line of words is on one row: a range over it has one box. (After a hyphen is a
      // break between words too, as in any browser text: "shop-" "production".)
      const node = row.querySelector('span')!.firstChild!;
      const text = node.textContent!;
      if (!/^id\d+ /.test(text)) {
        for (const m of text.matchAll(/[^\s-]+-?/g)) {
          const range = document.createRange();
          range.setStart(node, m.index!);
          range.setEnd(node, m.index! + m[0].length);
          if (new Set([...range.getClientRects()].map((b) => Math.round(b.top))).size > 1) split.push(m[0]);
        }
      }
      const next = rows[rows.indexOf(row) + 1];
      if (next) gaps.push(Math.round(next.getBoundingClientRect().top - row.getBoundingClientRect().bottom));
    }
    // Each line in view has its number beside its first row.
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const gutter = document.getElementById('gutter')!.firstChild!;
    const offBy: number[] = [];
    let at = 0;
    for (const n of gutter.textContent!.split('\n')) {
      if (n) {
        const range = document.createRange();
        range.setStart(gutter, at);
        range.setEnd(gutter, at + n.length);
        const row = rows.find((x) => x.textContent === texts[Number(n) - 1])!;
        offBy.push(Math.abs(range.getBoundingClientRect().top - row.getBoundingClientRect().top));
      }
      at += n.length + 1;
    }
    const inView = rows.filter((x) => { const b = x.getBoundingClientRect(); return b.bottom > vp.top && b.top < vp.bottom; }).length;
    const long = rows.find((row) => /^id\d+ /.test(row.textContent!))!;
    const node = long.querySelector('span')!.firstChild!;
    const range = document.createRange();
    range.setStart(node, 0);
    range.setEnd(node, 2);
    const idTop = range.getClientRects()[0]!.top;
    const z = node.textContent!.indexOf('z');
    range.setStart(node, z);
    range.setEnd(node, z + 1);
    return { split, gaps, offBy, inView, wrapped: rows.filter((row) => row.getBoundingClientRect().height > 18).length, idRow: idTop, zRow: range.getClientRects()[0]!.top, heights: rows.map((row) => row.getBoundingClientRect().height % 18) };
  }, lines.map((l) => l.line));
  assert.deepEqual(r.split, [], 'no word is cut');
  assert.ok(r.wrapped >= 10, `long lines wrap (${r.wrapped})`);
  assert.ok(r.zRow > r.idRow, 'the word longer than a row starts on a row of its own');
  assert.ok(r.gaps.every((g) => g === 0), `lines follow each other with no gap or overlap (${r.gaps.join(',')})`);
  assert.ok(r.heights.every((h) => h === 0));
  assert.equal(r.offBy.length, r.inView, 'a number for each line in view');
  assert.ok(r.offBy.every((d) => d <= 2), `each number beside its line's first row (${r.offBy.join(',')})`);
  // Where the layout puts the last line is where it is drawn: the bottom of the log is the last line.
  await page.evaluate(() => { const vp = document.getElementById('viewport')!; vp.scrollTop = vp.scrollHeight; });
  await frames(page);
  await frames(page);
  const end = await page.evaluate(() => {
    const vp = document.getElementById('viewport')!.getBoundingClientRect();
    const last = [...document.querySelectorAll('#rows .line')].at(-1)!.getBoundingClientRect();
    return { lastBottom: last.bottom, vpBottom: vp.bottom };
  });
  assert.ok(Math.abs(end.lastBottom - end.vpBottom) <= 1, `the last line ends at the bottom (${end.lastBottom} vs ${end.vpBottom})`);
});

test('a narrow panel: the search keeps room to type and Copy is not clipped', { skip }, async (t) => {
  for (const width of [360, 520]) {
    const page = await open(t, { width, height: 500 });
    await host(page, { type: 'status', status: 'running', title: 'clone #7 · staging' }, { type: 'lines', lines: [line(1, 'x')] });
    const r = await page.evaluate(() => {
      const box = (id: string) => document.getElementById(id)!.getBoundingClientRect();
      const input = document.getElementById('search')!.getBoundingClientRect();
      const ids = ['search', 'case', 'regex', 'filter', 'follow', 'times', 'wrap', 'copy'].filter((id) => document.getElementById(id));
      return { input: input.width, boxes: ids.map((id) => ({ id, ...box(id).toJSON() })), page: document.documentElement.clientWidth, barScroll: document.getElementById('bar')!.scrollWidth - document.getElementById('bar')!.clientWidth };
    });
    assert.ok(r.input >= 120, `${width} px: the search field is ${r.input} px wide`);
    assert.equal(r.boxes.length, 8);
    for (const b of r.boxes) assert.ok(b.left >= 0 && b.right <= r.page && b.width > 0, `${width} px: ${b.id} within the panel (${b.left}..${b.right} of ${r.page})`);
    assert.equal(r.barScroll, 0, 'nothing overflows the toolbar');
    const copy = r.boxes.find((b) => b.id === 'copy')!;
    const copyText = await page.locator('#copy').evaluate((el) => (el as HTMLElement).innerText);
    assert.equal(copyText.trim(), 'Copy');
    assert.ok(copy.width >= 40, `Copy is ${copy.width} px wide`);
    if (width === 360) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-narrow.png') });
    }
  }
});

test('an Odoo server log: the level filter is a control of the page; choosing a level asks the host for those lines', { skip }, async (t) => {
  const page = await open(t, { width: 1200, height: 500 }, 'run=0&levels=info');
  const odoo = (seq: number, level: string, text: string) => ({ ts: '2026-12-01T15:00:00.000Z', stream: level === 'ERROR' ? 'stderr' : 'stdout', line: `2026-12-01 15:00:0${seq},000 4242 ${level} logs_dev ${text}` });
  await host(page, { type: 'status', status: 'Odoo log', title: 'Odoo log · dev (logs)' }, { type: 'connection', state: 'live' }, { type: 'lines', lines: [
    odoo(1, 'INFO', 'odoo.modules.loading: 12 modules loaded'),
    odoo(2, 'WARNING', 'odoo.http: <function health> called ignoring args {\'m\'}'),
    odoo(3, 'ERROR', 'odoo.http: Exception during request handling.'),
    { ts: '2026-12-01T15:00:03.000Z', stream: 'stderr', line: 'Traceback (most recent call last):' },
    { ts: '2026-12-01T15:00:03.000Z', stream: 'stderr', line: '  File "/srv/addons/shop_core/models/partner.py", line 12, in _compute_tier' },
  ] });
  assert.equal(await page.locator('#level').evaluate((el) => (el as HTMLElement & { value: string }).value), 'info');
  // As a person does it: open the select, click the option.
  await page.locator('#level').click();
  await page.getByText('warning and above').last().click();
  await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'level'));
  const posted = await page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === 'level'));
  assert.deepEqual(posted, [{ type: 'level', level: 'warning' }]);
  // The host answers as it does (odooLogPanel.ts): the lines again, at that level and above.
  await host(page, { type: 'reset' }, { type: 'lines', lines: [
    odoo(2, 'WARNING', 'odoo.http: <function health> called ignoring args {\'m\'}'),
    odoo(3, 'ERROR', 'odoo.http: Exception during request handling.'),
    { ts: '2026-12-01T15:00:03.000Z', stream: 'stderr', line: 'Traceback (most recent call last):' },
    { ts: '2026-12-01T15:00:03.000Z', stream: 'stderr', line: '  File "/srv/addons/shop_core/models/partner.py", line 12, in _compute_tier' },
  ] });
  const rows = await page.locator('#rows .line').allInnerTexts();
  assert.equal(rows.length, 4);
  assert.match(rows[0]!, /WARNING/);
  assert.equal(await page.locator('#rows .line.warning').count(), 1);
  assert.equal(await page.locator('#rows .line.error').count(), 2, 'the ERROR line and the traceback\'s first line');
  // The traceback's frame links into the workspace, as in a run's log.
  await page.locator('#rows a.file').first().click();
  const opened = await page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === 'open'));
  assert.deepEqual(opened, [{ type: 'open', path: '/srv/addons/shop_core/models/partner.py', line: 12 }]);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'odoo-log-viewer.png') });
});

test('a run\'s log has no level filter', { skip }, async (t) => {
  const page = await open(t);
  assert.equal(await page.locator('#level').count(), 0);
});

test('a build\'s tests in the header: counts in red or green, modules, failures that open their file; hostile names stay inert; the log keeps its rows', { skip }, async (t) => {
  const page = await open(t, { width: 900, height: 500 });
  const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
  const failure = (over: Record<string, unknown>) => ({ outcome: 'failed', test: 'test_total (odoo.addons.sale_ext.tests.test_sale.TestSale.test_total)', file: 'sale_ext/tests/test_sale.py', line: 14, message: 'AssertionError: 1 != 2', inWorkspace: true, ...over });
  const build = {
    type: 'build', status: 'failed', revision: 'c0ffee'.padEnd(40, '0'), odooVersion: '17.0', seconds: 61.25, modules: ['sale_ext', `stock_ext${hostile}`], tests: 14, failed: 2, errors: 1,
    failures: [
      failure({}),
      failure({ test: `test_evil${hostile} (odoo.addons.x)`, message: `AssertionError: ${hostile}`, file: 'stock_ext/tests/test_stock.py', line: 3 }),
      failure({ outcome: 'error', test: 'test_climb (x)', file: '../../etc/passwd', line: 1, message: 'KeyError', inWorkspace: false }),
      failure({ test: 'test_abs (x)', file: '/etc/passwd', line: 1, inWorkspace: false }),
      failure({ test: 'test_core (x)', file: null, line: null, inWorkspace: false }),
      failure({ test: 'test_not_here (x)', file: 'other_repo/tests/test_x.py', line: 9, inWorkspace: false }),
    ],
  };
  const lines = Array.from({ length: 2000 }, (_, i) => line(i + 1, `log line ${i + 1}`));
  await host(page, { type: 'lines', lines });
  const before = await page.evaluate(() => document.getElementById('viewport')!.clientHeight);
  await host(page, build);
  await frames(page);
  const r = await page.evaluate(() => {
    const b = document.getElementById('build')!;
    const counts = b.querySelector<HTMLElement>('.counts')!;
    const vp = document.getElementById('viewport')!;
    return {
      hidden: b.hidden, counts: counts.textContent, color: getComputedStyle(counts).color, meta: b.querySelector('.meta')!.textContent,
      items: [...b.querySelectorAll('.failures li')].map((li) => ({ text: li.textContent, link: li.querySelector('a')?.textContent ?? null, href: li.querySelector('a')?.getAttribute('href') ?? null })),
      elements: document.querySelectorAll('#build img, #build script, #build [onerror]').length,
      height: b.getBoundingClientRect().height, viewport: vp.clientHeight,
      // Following: the log's last line is in view, below the header.
      lastVisible: (() => {
        const last = [...document.querySelectorAll<HTMLElement>('#rows .line')].find((e) => e.textContent === 'log line 2000');
        if (!last) return false;
        const box = last.getBoundingClientRect();
        const port = vp.getBoundingClientRect();
        return box.top >= port.top && box.bottom <= port.bottom + 1;
      })(),
    };
  });
  assert.equal(r.hidden, false);
  assert.equal(r.counts, '14 tests · 2 failed · 1 error');
  assert.equal(r.color, 'rgb(244, 135, 113)', 'red (the theme\'s error colour) when a test failed');
  assert.equal(r.meta, `modules: sale_ext, stock_ext${hostile} · 61.3 s · c0ffee000000 · Odoo 17.0`);
  assert.deepEqual(r.items.map((i) => [i.link, i.href]), [
    ['test_total', '#'], [`test_evil${hostile}`, '#'], [null, null], [null, null], [null, null], ['test_not_here', '#'],
  ], 'a link only for a plain relative path, and never the path as its address');
  assert.equal(r.items[0]!.text, 'test_total failed: AssertionError: 1 != 2');
  assert.equal(r.items[1]!.text, `test_evil${hostile} failed: AssertionError: ${hostile}`, 'markup shown as text');
  assert.equal(r.items[2]!.text, 'test_climb errored: KeyError (no file of the repository)');
  assert.equal(r.items[4]!.text, 'test_core failed: AssertionError: 1 != 2 (no file of the repository)');
  assert.equal(r.items[5]!.text, 'test_not_here failed: AssertionError: 1 != 2 (other_repo/tests/test_x.py:9: not in this workspace)');
  assert.equal(r.elements, 0, 'no element made of a name or a message');
  // Compact: the list scrolls within a few rows; the log below keeps most of the panel and follows.
  assert.ok(r.height < 160, `the header is ${r.height} px high`);
  assert.ok(r.viewport >= before - 160 && r.viewport > 250, `the log keeps ${r.viewport} of ${before} px`);
  assert.ok(r.lastVisible, 'the last line is still in view under the header');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'log-viewer-build.png') });

  await page.locator('#build a', { hasText: 'test_total' }).click();
  await page.locator('#build a', { hasText: 'test_evil' }).click();
  await page.locator('#build li', { hasText: 'test_climb' }).click();
  await page.locator('#build li', { hasText: 'test_abs' }).click();
  await page.waitForTimeout(200);
  const after = await page.evaluate(() => {
    const w = window as unknown as { __posted: unknown[]; __pwned?: number };
    return { posted: w.__posted.slice(1), pwned: w.__pwned, url: location.href };
  });
  assert.deepEqual(after.posted, [
    { type: 'open', path: 'sale_ext/tests/test_sale.py', line: 14 },
    { type: 'open', path: 'stock_ext/tests/test_stock.py', line: 3 },
  ], 'the two plain paths were posted; the climbing and the absolute one not');
  assert.equal(after.pwned, undefined);
  assert.ok(after.url.startsWith(origin), 'the page did not navigate');

  // A passing build: green, no list. A malformed message changes nothing.
  await host(page, { ...build, failed: 0, errors: 0, failures: [] });
  const passed = await page.evaluate(() => ({ color: getComputedStyle(document.querySelector('#build .counts')!).color, text: document.querySelector('#build .counts')!.textContent, list: document.querySelectorAll('#build li').length }));
  assert.deepEqual(passed, { color: 'rgb(115, 201, 145)', text: '14 tests · 0 failed · 0 errors', list: 0 });
  for (const bad of [{ ...build, failures: 'lots' }, { ...build, tests: -1 }, { ...build, failures: [{ ...build.failures[0], line: '14' }] }, { type: 'build' }]) {
    await host(page, bad);
    assert.equal(await page.evaluate(() => document.querySelector('#build .counts')!.textContent), '14 tests · 0 failed · 0 errors', JSON.stringify(bad).slice(0, 80));
  }
  const fresh = await open(t);
  await host(fresh, { ...build, failures: [{ ...build.failures[0], outcome: 'boom' }] });
  assert.equal(await fresh.evaluate(() => document.getElementById('build')!.hidden), true, 'a malformed summary shows nothing');
});
