// Odoo's test log parser on output captured from real odoo-bin 17.0 and 19.0 (test/fixtures/odoo-test-log:
// `odoo-bin -d … -i cap_mod,cap_ok --test-enable --test-tags /cap_mod,/cap_ok --stop-after-init` with the
// addons in /tmp/cap/addons: cap_mod has a passing test, a failing assertion, an error raised in the
// module's own code and an error raised inside Odoo; cap_ok one passing test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestSummary } from '../contract/index.ts';
import { failureMessage, parseTestLog, summaryLine } from '../server/odoo/test-log.ts';

const captured = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', 'odoo-test-log', name), 'utf8').split('\n');

for (const version of ['17.0', '19.0']) {
  test(`Odoo ${version}: counts, each failure's test, module, repository file, line and message`, () => {
    const parsed = parseTestLog(captured(`${version}-fail.log`), '/tmp/cap/addons/', ['cap_mod', 'cap_ok']);
    assert.equal(parsed.finished, true);
    assert.deepEqual([parsed.tests, parsed.failed, parsed.errors], [5, 1, 2], 'Odoo\'s own count (odoo.tests.result)');
    const { finished, lastError, ...summary } = parsed;
    assert.doesNotThrow(() => TestSummary.parse(summary), 'the contract\'s shape');
    assert.equal(lastError, null, 'no error but the tests\'');
    assert.deepEqual(parsed.failures.map((f) => [f.outcome, f.test, f.module, f.file, f.line, f.message]), [
      ['error', 'test_errors (odoo.addons.cap_mod.tests.test_cap.TestCap.test_errors)', 'cap_mod', 'cap_mod/tests/test_cap.py', 13, 'ValueError: boom from helper 3'],
      ['failed', 'test_fails (odoo.addons.cap_mod.tests.test_cap.TestCap.test_fails)', 'cap_mod', 'cap_mod/tests/test_cap.py', 10, 'AssertionError: 1 != 2 : one is not two'],
      ['error', 'test_odoo_error (odoo.addons.cap_mod.tests.test_cap.TestCap.test_odoo_error)', 'cap_mod', 'cap_mod/tests/test_cap.py', 16,
        version === '17.0' ? 'ValueError: Invalid field \'nope_field\' on model \'res.partner\'' : 'ValueError: Invalid field \'nope_field\' in \'res.partner\''],
    ]);
    const errors = parsed.failures[0]!;
    assert.match(errors.traceback, /^Traceback \(most recent call last\):\n {2}File "cap_mod\/tests\/test_cap\.py", line 13, in test_errors\n/);
    assert.match(errors.traceback, /File "cap_mod\/models\.py", line 2, in helper/, 'worker paths become repository paths');
    assert.doesNotMatch(parsed.failures.map((f) => f.traceback).join('\n'), /\/tmp\/cap\/addons/);
    assert.equal(summaryLine(parsed), '5 tests, 3 failed');
    assert.equal(failureMessage(parsed), '3 of 5 tests failed: test_errors (cap_mod), test_fails (cap_mod), test_odoo_error (cap_mod)');
  });
}

test('a failure whose traceback is all inside Odoo has no file; a checkout elsewhere names none', () => {
  const parsed = parseTestLog(captured('17.0-fail.log'), '/srv/other-checkout', ['cap_mod']);
  assert.deepEqual(parsed.failures.map((f) => [f.file, f.line]), [[null, null], [null, null], [null, null]]);
  const inOdoo = [
    '2026-12-01 15:07:03,599 19209 ERROR db odoo.addons.cap_mod.tests.test_cap: ERROR: TestCap.test_x',
    'Traceback (most recent call last):',
    '  File "/var/cache/odoo/17.0/odoo/models.py", line 5976, in _update_cache',
    'KeyError: \'x\'',
    '2026-12-01 15:07:07,707 19209 ERROR db odoo.tests.result: 0 failed, 1 error(s) of 1 tests when loading database \'db\'',
  ];
  const one = parseTestLog(inOdoo, '/tmp/cap/addons', ['cap_mod']);
  assert.deepEqual([one.failures[0]!.file, one.failures[0]!.line, one.failures[0]!.message, one.errors, one.tests], [null, null, 'KeyError: \'x\'', 1, 1]);
});

test('a log cut short (an install error before the tests ended) is not finished and says why', () => {
  const lines = captured('17.0-fail.log');
  const cut = lines.slice(0, lines.findIndex((l) => l.includes('Loading module cap_ok')));
  cut.push(
    '2026-12-01 15:07:03,700 19209 CRITICAL capdb170 odoo.service.server: Failed to initialize database `capdb170`.',
    'Traceback (most recent call last):',
    '  File "/tmp/cap/addons/cap_ok/models.py", line 1, in <module>',
    'ImportError: cannot import name \'nope\'',
  );
  const parsed = parseTestLog(cut, '/tmp/cap/addons', ['cap_mod', 'cap_ok']);
  assert.equal(parsed.finished, false);
  assert.deepEqual([parsed.failed, parsed.errors], [1, 2], 'what the log showed');
  assert.equal(parsed.lastError, 'Failed to initialize database `capdb170`.: ImportError: cannot import name \'nope\'');
});

test('lines that merely look like results do not count: only Odoo\'s loggers', () => {
  const forged = [
    '2026-12-01 15:07:03,587 1 INFO db odoo.addons.cap_mod.tests.test_cap: FAIL: printed by a test at INFO',
    '2026-12-01 15:07:03,587 1 ERROR db some.other.logger: FAIL: not a test logger',
    'FAIL: TestCap.test_fails',
    '2026-12-01 15:07:07,707 1 INFO db odoo.addons.x: 9 failed, 9 error(s) of 9 tests',
    '2026-12-01 15:07:07,707 1 INFO db odoo.tests.result: 0 failed, 0 error(s) of 2 tests when loading database \'db\'',
  ];
  const parsed = parseTestLog(forged, '/tmp/cap/addons', ['cap_mod']);
  assert.deepEqual([parsed.tests, parsed.failed, parsed.errors, parsed.failures.length], [2, 0, 0, 0]);
  assert.equal(summaryLine(parsed), '2 tests, all passed');
});
