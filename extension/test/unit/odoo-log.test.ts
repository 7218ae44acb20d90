// "Show Odoo log": what is logic in it, without VS Code: the lines a level filter shows (a traceback
// stays whole: its lines carry its record's level), the page's level control, the messages the page may
// send, and who is offered the command (package.json's own `when` clauses, by role).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import { atLevel, DEFAULT_LEVEL, LevelMessage, odooLogTitle } from '../../src/odooLog.ts';
import { environmentContext } from '../../src/labels.ts';
import { viewerHtml } from '../../../webview/src/page.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const line = (seq: number, level: C.OdooLogLevel, text: string): C.OdooLogLine => ({ seq, ts: '2026-12-01T15:00:00.000Z', stream: level === 'error' ? 'stderr' : 'stdout', level, line: text });
const LOG = [
  line(1, 'info', '… INFO logs_dev odoo.modules.loading: 12 modules loaded'),
  line(2, 'debug', '… DEBUG_RPC logs_dev odoo.http.rpc.request: call_kw'),
  line(3, 'warning', '… WARNING logs_dev odoo.http: Login failed'),
  line(4, 'error', '… ERROR logs_dev odoo.http: Exception during request handling.'),
  line(5, 'error', 'Traceback (most recent call last):'),
  line(6, 'error', '  File "/srv/addons/shop/models/sale.py", line 12, in _compute'),
  line(7, 'critical', '… CRITICAL logs_dev odoo.service.server: Failed to load registry'),
];

describe('Odoo log panel', () => {
  it('the level filter shows that level and above, a traceback whole, in order', () => {
    assert.deepEqual(atLevel(LOG, 'debug').map((l) => l.seq), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(atLevel(LOG, 'info').map((l) => l.seq), [1, 3, 4, 5, 6, 7]);
    assert.deepEqual(atLevel(LOG, 'warning').map((l) => l.seq), [3, 4, 5, 6, 7]);
    assert.deepEqual(atLevel(LOG, 'error').map((l) => l.seq), [4, 5, 6, 7]);
    assert.deepEqual(atLevel(LOG, 'critical').map((l) => l.seq), [7]);
    assert.equal(DEFAULT_LEVEL, 'info');
    assert.equal(odooLogTitle('acme', 'dev-feature'), 'Odoo log · dev-feature (acme)');
  });

  it('the page\'s messages are checked: only a known level changes the filter', () => {
    assert.deepEqual(LevelMessage.parse({ type: 'level', level: 'warning' }), { type: 'level', level: 'warning' });
    for (const bad of [{ type: 'level', level: 'loud' }, { type: 'level' }, { type: 'level', level: 'info', extra: 1 }, { type: 'open', level: 'info' }, null, 'level']) {
      assert.equal(LevelMessage.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  it('the viewer page has the level control only for an Odoo log, with the chosen level selected', () => {
    const page = { runId: 0, nonce: 'bm9uY2U=', cspSource: 'vscode-resource:', script: 'webview.js' };
    assert.equal(viewerHtml(page).includes('id="level"'), false, 'a run\'s log has no level filter');
    const html = viewerHtml({ ...page, levels: 'warning' });
    assert.match(html, /<vscode-single-select id="level"/);
    assert.match(html, /<vscode-option value="warning" selected>warning and above<\/vscode-option>/);
    assert.equal((html.match(/<vscode-option /g) ?? []).length, 5);
    assert.equal(viewerHtml({ ...page, levels: '"><script>' as never }).includes('<script>"'), false);
    assert.equal(viewerHtml({ ...page, levels: '"><script>' as never }).includes('id="level"'), false, 'an unknown level: no control');
  });

  it('offered where your role may operate: the environment\'s menu and the palette', () => {
    const item = (pkg.contributes.menus['view/item/context'] as { command: string; when: string }[]).find((m) => m.command === 'odooops.showOdooLog')!;
    const re = new RegExp(/viewItem =~ \/(.*)\/$/.exec(item.when)![1]!);
    assert.equal(re.test(environmentContext('development', 'developer', true)), true);
    assert.equal(re.test(environmentContext('production', 'admin', true)), true);
    assert.equal(re.test(environmentContext('production', 'developer', false)), false, 'not a developer on production');
    assert.equal(re.test(environmentContext('development', 'viewer', false)), false, 'not a viewer');
    const palette = (pkg.contributes.menus.commandPalette as { command: string; when: string }[]).find((m) => m.command === 'odooops.showOdooLog')!;
    assert.equal(palette.when, 'odooops.connected && odooops.canRun');
    assert.ok((pkg.contributes.commands as { command: string; title: string }[]).some((c) => c.command === 'odooops.showOdooLog' && c.title === 'Show Odoo log'));
  });
});
