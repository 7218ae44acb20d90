// What the log viewer does to a line before it is shown: ANSI colours to segments (text only), levels,
// and Odoo traceback file references to workspace paths; where wrapped lines sit (widths, prefix sums);
// how lines are stored (a bounded ring); and the page the host gives the webview.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { levelOf, palette256, parseAnsi, plainText } from '../../../webview/src/ansi.ts';
import { attemptStart } from '../../../webview/src/attempts.ts';
import { columns, linkText, MAX_SCROLL, RowIndex, rowsFor, scrollHeight, scrollScale } from '../../../webview/src/layout.ts';
import { LineStore, timeOfDay } from '../../../webview/src/lines.ts';
import { findLinks, safeExternalUrl, safeLogPath } from '../../../webview/src/links.ts';
import { viewerHtml } from '../../../webview/src/page.ts';
import { compile } from '../../../webview/src/search.ts';
import { fileRefs, workspaceCandidates } from '../../../webview/src/traceback.ts';
import { BESIDE, logPanelColumn } from '../../../extension/src/logColumn.ts';

describe('ANSI', () => {
  it('colours and bold become segments; other escapes are dropped; text stays text', () => {
    assert.deepEqual(parseAnsi('\x1b[1;31mERROR\x1b[0m done'), [{ text: 'ERROR', bold: true, fg: 1 }, { text: ' done' }]);
    assert.deepEqual(parseAnsi('\x1b[92mok\x1b[39m \x1b[2K\x1b]0;title\x07x'), [{ text: 'ok', fg: 10 }, { text: ' x', fg: undefined }]);
    assert.deepEqual(parseAnsi('<script>alert(1)</script>'), [{ text: '<script>alert(1)</script>' }]);
  });

  it('background colours, the 256-colour palette and true colour (foreground and background)', () => {
    assert.deepEqual(parseAnsi('\x1b[41;97m bg \x1b[49m fg\x1b[0m'), [{ text: ' bg ', bg: 1, fg: 15 }, { text: ' fg', bg: undefined, fg: 15 }]);
    assert.deepEqual(parseAnsi('\x1b[38;5;208mx\x1b[m'), [{ text: 'x', fg: '#ff8700' }]);
    assert.deepEqual(parseAnsi('\x1b[48;5;4;38;5;232my'), [{ text: 'y', bg: 4, fg: '#080808' }]);
    assert.deepEqual(parseAnsi('\x1b[38;2;255;128;0;48;2;0;0;16mz\x1b[39;49mw'), [{ text: 'z', fg: '#ff8000', bg: '#000010' }, { text: 'w', fg: undefined, bg: undefined }]);
    assert.deepEqual(parseAnsi('\x1b[38:5:196mc'), [{ text: 'c', fg: '#ff0000' }]);
    assert.deepEqual(parseAnsi('\x1b[3;4mi\x1b[23;24m'), [{ text: 'i', italic: true, underline: true }]);
    // Out of range: no colour, and nothing of the escape shows.
    assert.deepEqual(parseAnsi('\x1b[38;2;300;0;0mq\x1b[38;5;999mr'), [{ text: 'q', fg: undefined }, { text: 'r', fg: undefined }]);
    assert.deepEqual([palette256(16), palette256(231), palette256(244), palette256(7), palette256(256)], ['#000000', '#ffffff', '#808080', 7, undefined]);
    assert.equal(plainText('\x1b[1;38;5;2mok\x1b[0m \x1b[2Kdone'), 'ok done');
  });

  it('levels as Odoo logs them', () => {
    assert.equal(levelOf('2026-11-25 10:00:00,123 42 ERROR shop odoo.modules.registry: Failed to load registry'), 'error');
    assert.equal(levelOf('2026-11-25 10:00:00,123 42 WARNING shop odoo.models: field x'), 'warning');
    assert.equal(levelOf('Traceback (most recent call last):'), 'error');
    assert.equal(levelOf('plain line'), null);
    assert.equal(levelOf('\x1b[1;31mERROR\x1b[0m restore failed'), 'error');
  });
});

describe('tracebacks', () => {
  it('finds Python file references and the workspace paths they may be at', () => {
    const refs = fileRefs('  File "/opt/odoo/addons/sale/models/sale_order.py", line 42, in _compute');
    assert.deepEqual(refs, [{ start: 2, end: 60, path: '/opt/odoo/addons/sale/models/sale_order.py', line: 42 }]);
    assert.deepEqual(workspaceCandidates(refs[0]!.path), [
      'opt/odoo/addons/sale/models/sale_order.py', 'odoo/addons/sale/models/sale_order.py', 'addons/sale/models/sale_order.py',
      'sale/models/sale_order.py', 'models/sale_order.py',
    ]);
    assert.deepEqual(fileRefs('no file here'), []);
  });
});

describe('links', () => {
  it('web addresses (http and https only), trailing punctuation left out', () => {
    const text = 'see https://github.com/odoo/odoo/pull/1 (and http://x.test/a_(b)), or ftp://no.test; done.';
    assert.deepEqual(findLinks(text).map((l) => l.kind === 'url' && [l.url, text.slice(l.start, l.end)]), [
      ['https://github.com/odoo/odoo/pull/1', 'https://github.com/odoo/odoo/pull/1'], ['http://x.test/a_(b)', 'http://x.test/a_(b)'],
    ]);
    assert.deepEqual(findLinks('visit https://example.com/x.'), [{ start: 6, end: 27, kind: 'url', url: 'https://example.com/x' }]);
  });

  it('hostile text: a javascript: address is no link; an address stops at quotes and angle brackets', () => {
    assert.deepEqual(findLinks('javascript:alert(1) JAVASCRIPT://x data:text/html,<script>'), []);
    const evil = findLinks('https://x.test/"><img src=x onerror=alert(1)>');
    assert.deepEqual(evil.map((l) => l.kind === 'url' && l.url), ['https://x.test/']);
    assert.equal(safeExternalUrl('javascript:alert(1)'), null);
    assert.equal(safeExternalUrl('file:///etc/passwd'), null);
    assert.equal(safeExternalUrl('vscode://x/y'), null);
    assert.equal(safeExternalUrl({ url: 'https://x' }), null);
    assert.equal(safeExternalUrl('not a url'), null);
    assert.equal(safeExternalUrl('https://x.test/a b'), 'https://x.test/a%20b');
  });

  it('file:line references (with a folder, or a source file name); not times, hosts or addresses', () => {
    const refs = (t: string) => findLinks(t).map((l) => (l.kind === 'file' ? `${l.path}@${l.line}` : `url ${l.url}`));
    assert.deepEqual(refs('error in addons/sale_ext/models/sale.py:42: bad'), ['addons/sale_ext/models/sale.py@42']);
    assert.deepEqual(refs('at server/api/app.ts:10:5 and ./x/y.js:3'), ['server/api/app.ts@10', './x/y.js@3']);
    assert.deepEqual(refs('views.xml:12 oops'), ['views.xml@12']);
    assert.deepEqual(refs('2026-11-25 10:00:00,123 42 INFO shop odoo.modules.loading: loaded'), []);
    assert.deepEqual(refs('db.example.com:5432 localhost:8069'), []);
    assert.deepEqual(refs('see https://h.test/a/b.py:12 now'), ['url https://h.test/a/b.py:12']);
  });

  it('the host looks up plain paths only: no glob metacharacters or parent folders', () => {
    assert.equal(safeLogPath('addons/sale/models/sale.py'), 'addons/sale/models/sale.py');
    assert.equal(safeLogPath('/opt/odoo/my addons/x.py'), '/opt/odoo/my addons/x.py');
    for (const bad of ['**/*.py', 'a/{b,c}.py', '../../etc/passwd', 'a/[x].py', 'a?.py', 'C:\\x.py', '', 42, null]) assert.equal(safeLogPath(bad), null, String(bad));
  });
});

describe('search', () => {
  const lines = ['ERROR bad Query 1', 'error bad query 2', 'INFO fine', '\x1b[31mERR\x1b[0mOR coloured'];
  const hits = (o: { query: string; regex?: boolean; caseSensitive?: boolean }) => {
    const { matcher } = compile({ regex: false, caseSensitive: false, ...o });
    return lines.filter((l) => matcher!.test(l));
  };

  it('plain text, case-insensitive by default, case-sensitive when asked; over the text as shown', () => {
    assert.deepEqual(hits({ query: 'error' }), [lines[0], lines[1], lines[3]]);
    assert.deepEqual(hits({ query: 'ERROR', caseSensitive: true }), [lines[0], lines[3]]);
    assert.deepEqual(hits({ query: 'bad query', caseSensitive: true }), [lines[1]]);
    // Special characters are literal without "regex".
    assert.deepEqual(hits({ query: 'query .' }), []);
    assert.deepEqual(compile({ query: '', regex: false, caseSensitive: false }), { matcher: null });
  });

  it('regular expressions, with and without case; an invalid one is an error, not an exception', () => {
    assert.deepEqual(hits({ query: 'query \\d$', regex: true }), [lines[0], lines[1]]);
    assert.deepEqual(hits({ query: '^[A-Z]+ ', regex: true, caseSensitive: true }), [lines[0], lines[2], lines[3]]);
    const bad = compile({ query: 'a(b', regex: true, caseSensitive: false });
    assert.equal(bad.matcher, null);
    assert.match(bad.error!, /invalid regular expression/);
  });

  it('ranges: every match in the line (not the line), empty matches skipped', () => {
    const { matcher } = compile({ query: 'ab', regex: false, caseSensitive: false });
    assert.deepEqual(matcher!.ranges('xxAB ab abab'), [[2, 4], [5, 7], [8, 10], [10, 12]]);
    const re = compile({ query: 'b*', regex: true, caseSensitive: false }).matcher!;
    assert.deepEqual(re.ranges('abba b'), [[1, 3], [5, 6]]);
  });
});

describe('attempts', () => {
  it('an attempt starts at the worker\'s system line, never at a line of the run\'s own output', () => {
    const line = 'clone on staging (staging), attempt 2 of 3, worker w-1';
    assert.deepEqual(attemptStart('system', line), { attempt: 2, of: 3 });
    assert.equal(attemptStart('stdout', line), null);
    assert.equal(attemptStart('stderr', line), null);
    assert.equal(attemptStart('system', 'worker died; queued again for attempt 2 of 3'), null);
    assert.equal(attemptStart('system', 'cancel requested'), null);
  });
});

describe('log panel column', () => {
  it('the first panel opens beside the editor; later ones in the group of the most recently active log panel', () => {
    assert.equal(logPanelColumn([]), BESIDE);
    assert.equal(logPanelColumn([{ viewColumn: 2, lastActive: 1 }]), 2);
    assert.equal(logPanelColumn([{ viewColumn: 2, lastActive: 1 }, { viewColumn: 3, lastActive: 5 }, { viewColumn: 2, lastActive: 4 }]), 3);
    assert.equal(logPanelColumn([{ viewColumn: undefined, lastActive: 9 }, { viewColumn: 2, lastActive: 1 }]), 2);
    assert.equal(logPanelColumn([{ viewColumn: undefined, lastActive: 1 }]), BESIDE);
  });
});

describe('wrap layout', () => {
  it('a line\'s width in columns: escapes removed, tabs to stops of 8, traceback links counted', () => {
    assert.equal(columns('plain'), 5);
    assert.equal(columns('\x1b[1;31mERROR\x1b[0m done\x1b[2K'), 10);
    assert.equal(columns('a\tb'), 9);
    assert.equal(columns('\tx\t'), 16);
    const tb = '  File "/opt/odoo/addons/sale/models/sale.py", line 42, in x';
    assert.equal(columns(tb), tb.length + linkText('/opt/odoo/addons/sale/models/sale.py', 42).length);
    assert.equal(linkText('/opt/odoo/addons/sale/models/sale.py', 42), ' ↗ models/sale.py:42');
  });

  it('rows per line: at least one, then ceil(width / columns per row)', () => {
    assert.equal(rowsFor(0, 80), 1);
    assert.equal(rowsFor(80, 80), 1);
    assert.equal(rowsFor(81, 80), 2);
    assert.equal(rowsFor(2000, 100), 20);
  });

  it('prefix sums place lines and find the line covering a row, appended or rebuilt', () => {
    const heights = [1, 3, 1, 20, 2];
    const index = new RowIndex();
    index.build(3, (i) => heights[i]!);
    index.append(5, (i) => heights[i]!);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => index.top(i)), [0, 1, 4, 5, 25, 27]);
    assert.equal(index.total, 27);
    assert.deepEqual([-5, 0, 0.5, 1, 3.9, 4, 5, 24, 25, 26, 27, 100].map((r) => index.lineAt(r)), [0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 4, 4]);
    index.build(2, () => 1);
    assert.equal(index.total, 2);
    assert.equal(index.lineAt(1.5), 1);
    const empty = new RowIndex();
    assert.equal(empty.total, 0);
    assert.equal(empty.lineAt(10), 0);
    // A million lines, appended 5000 at a time as they arrive.
    const big = new RowIndex();
    for (let n = 5000; n <= 1_000_000; n += 5000) big.append(n, (i) => (i % 10 === 0 ? 3 : 1));
    assert.equal(big.total, 1_200_000);
    assert.equal(big.lineAt(big.top(999_999)), 999_999);
    assert.equal(big.lineAt(big.top(500_000) + 2), 500_000);
  });

  it('one line\'s rows change (a drawn line measured) without rebuilding: top, total and lineAt follow', () => {
    const heights = [1, 3, 1, 20, 2];
    const index = new RowIndex();
    index.build(5, (i) => heights[i]!);
    index.set(1, 5);
    heights[1] = 5;
    index.set(4, 1);
    heights[4] = 1;
    index.set(9, 100);
    const tops = heights.reduce<number[]>((acc, h, i) => [...acc, acc[i]! + h], [0]);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => index.top(i)), tops);
    assert.equal(index.total, 28);
    for (let row = 0; row < 28; row++) assert.equal(index.lineAt(row), tops.findLastIndex((t, i) => i < 5 && t <= row), `row ${row}`);
    // A million lines, a hundred of them corrected: each correction is a few steps, not a million.
    const big = new RowIndex();
    big.build(1_000_000, () => 1);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) big.set(500_000 + i, 3);
    assert.ok(performance.now() - t0 < 20, 'corrections are cheap');
    assert.equal(big.total, 1_000_200);
    assert.equal(big.top(500_100), 500_300);
    assert.equal(big.lineAt(500_300), 500_100);
    assert.equal(big.lineAt(500_002), 500_000);
    assert.equal(big.lineAt(500_003), 500_001);
  });

  it('past the browser\'s height limit the scroll area is capped and scaled', () => {
    assert.equal(scrollHeight(18_000_000), 18_000_000);
    assert.equal(scrollScale(18_000_000, 800), 1);
    assert.equal(scrollHeight(60_000_000), MAX_SCROLL);
    const k = scrollScale(60_000_000, 800);
    // The bottom of the capped area shows the bottom of the content.
    assert.equal(Math.round((MAX_SCROLL - 800) * k), 60_000_000 - 800);
  });
});

describe('line store', () => {
  const l = (n: number, stream = 'stdout') => ({ ts: `2026-11-25T10:00:00.${String(n % 1000).padStart(3, '0')}Z`, stream, line: `line ${n}` });

  it('line numbers are the log\'s sequence numbers, from the first line held; system lines are known', () => {
    const s = new LineStore(3);
    s.push([{ seq: 41, ...l(41) }, { seq: 42, ...l(42, 'system') }]);
    assert.deepEqual([s.number(0), s.number(1), s.isSystem(0), s.isSystem(1), s.isStderr(1)], [41, 42, false, true, false]);
    s.push([{ seq: 43, ...l(43) }, { seq: 44, ...l(44) }]);
    assert.deepEqual([s.text(0), s.number(0), s.number(2)], ['line 42', 42, 44]);
    s.clear();
    s.push([l(1)]);
    assert.equal(s.number(0), 1, 'without sequence numbers: counted from 1');
  });

  it('keeps text, time, stream and width per line', () => {
    const s = new LineStore(10);
    assert.equal(s.push([l(1), l(2, 'stderr'), { ts: 'not a time', stream: 'stdout', line: '\x1b[31mred\x1b[0m' }]), 0);
    assert.equal(s.length, 3);
    assert.deepEqual([s.text(0), s.time(0), s.isStderr(0), s.columns(0)], ['line 1', '10:00:00.001', false, 6]);
    assert.equal(s.isStderr(1), true);
    assert.deepEqual([s.time(2), s.columns(2)], ['', 3]);
    assert.deepEqual(s.all(), ['line 1', 'line 2', '\x1b[31mred\x1b[0m']);
  });

  it('times of day: the server\'s form read directly, others parsed, unreadable ones empty', () => {
    assert.equal(timeOfDay('2026-11-25T10:00:00.123Z'), 36_000_123);
    assert.equal(timeOfDay('2026-11-25T23:59:59.999Z'), 86_399_999);
    assert.equal(timeOfDay('2026-11-25T10:00:00+02:00'), 8 * 3_600_000);
    assert.equal(timeOfDay('1969-12-31T23:00:00.000+00:00'), 23 * 3_600_000);
    const s = new LineStore(2);
    s.push([{ ts: '2026-11-25T10:00:00+02:00', stream: 'stdout', line: 'a' }, { ts: 'garbage', stream: 'stdout', line: 'b' }]);
    assert.deepEqual([s.time(0), s.time(1)], ['08:00:00.000', '']);
  });

  it('is a ring: past its capacity the oldest lines go and are counted', () => {
    const s = new LineStore(5);
    s.push([1, 2, 3].map((n) => l(n)));
    assert.equal(s.push([4, 5, 6, 7].map((n) => l(n))), 2);
    assert.equal(s.length, 5);
    assert.equal(s.dropped, 2);
    assert.deepEqual(s.all(), ['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
    assert.equal(s.push(Array.from({ length: 12 }, (_, i) => l(8 + i, i % 2 ? 'stderr' : 'stdout'))), 12);
    assert.deepEqual(s.all(), ['line 15', 'line 16', 'line 17', 'line 18', 'line 19']);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => s.isStderr(i)), [true, false, true, false, true]);
    assert.equal(s.dropped, 14);
    s.clear();
    assert.deepEqual([s.length, s.dropped, s.all()], [0, 0, []]);
  });

  it('grows to its capacity, then rings', () => {
    const s = new LineStore(200_000);
    for (let b = 0; b < 200_000; b += 5000) s.push(Array.from({ length: 5000 }, (_, i) => ({ ts: '2026-11-25T10:00:00.000Z', stream: 'stdout', line: `l${b + i}` })));
    assert.equal(s.length, 200_000);
    assert.equal(s.text(199_999), 'l199999');
    assert.equal(s.push([{ ts: '', stream: 'stdout', line: 'next' }]), 1);
    assert.deepEqual([s.text(0), s.text(199_999), s.dropped], ['l1', 'next', 1]);
  });
});

describe('viewer page', () => {
  it('a strict CSP with the nonce; the bundle and the run id in it, attribute values escaped', () => {
    const html = viewerHtml({ runId: 42, nonce: 'abc+/=', cspSource: 'https://x.vscode-cdn.net', script: 'https://x/dist/webview.js?a=1&b="2"' });
    assert.match(html, /content="default-src 'none'; style-src https:\/\/x\.vscode-cdn\.net 'nonce-abc\+\/='; script-src 'nonce-abc\+\/='; font-src https:\/\/x\.vscode-cdn\.net;"/);
    assert.match(html, /<script nonce="abc\+\/=" src="https:\/\/x\/dist\/webview\.js\?a=1&amp;b=&quot;2&quot;"><\/script>/);
    assert.match(html, /window\.__odooopsRun = 42;/);
    assert.doesNotMatch(html, /unsafe-inline|unsafe-eval/);
    for (const id of ['status', 'connection', 'search', 'case', 'regex', 'filter', 'count', 'follow', 'times', 'wrap', 'copy', 'banner', 'viewport', 'spacer', 'rows']) assert.match(html, new RegExp(`id="${id}"`));
  });
});
