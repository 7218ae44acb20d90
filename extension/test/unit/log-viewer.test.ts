// What the log viewer does to a line before it is shown: ANSI colours to segments (text only), levels,
// and Odoo traceback file references to workspace paths.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { levelOf, parseAnsi } from '../../../webview/src/ansi.ts';
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
