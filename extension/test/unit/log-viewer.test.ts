// What the log viewer does to a line before it is shown: ANSI colours to segments (text only), levels,
// and Odoo traceback file references to workspace paths; where wrapped lines sit (widths, prefix sums);
// how lines are stored (a bounded ring); and the page the host gives the webview.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { levelOf, parseAnsi } from '../../../webview/src/ansi.ts';
import { columns, linkText, MAX_SCROLL, RowIndex, rowsFor, scrollHeight, scrollScale } from '../../../webview/src/layout.ts';
import { LineStore, timeOfDay } from '../../../webview/src/lines.ts';
import { viewerHtml } from '../../../webview/src/page.ts';
import { fileRefs, workspaceCandidates } from '../../../webview/src/traceback.ts';

describe('ANSI', () => {
  it('colours and bold become segments; other escapes are dropped; text stays text', () => {
    assert.deepEqual(parseAnsi('\x1b[1;31mERROR\x1b[0m done'), [{ text: 'ERROR', bold: true, fg: 1 }, { text: ' done' }]);
    assert.deepEqual(parseAnsi('\x1b[92mok\x1b[39m \x1b[2K\x1b]0;title\x07x'), [{ text: 'ok', fg: 10 }, { text: ' x', fg: undefined }]);
    assert.deepEqual(parseAnsi('<script>alert(1)</script>'), [{ text: '<script>alert(1)</script>' }]);
    assert.deepEqual(parseAnsi('\x1b[38;5;208mx\x1b[m'), [{ text: 'x' }]);
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
    for (const id of ['status', 'connection', 'search', 'count', 'follow', 'times', 'wrap', 'copy', 'banner', 'viewport', 'spacer', 'rows']) assert.match(html, new RegExp(`id="${id}"`));
  });
});
