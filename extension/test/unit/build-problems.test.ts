// Builds' failed tests as problems: which build of an environment stands, where a failure's
// repository-relative file is in the workspace (real folders on disk), and what each problem says.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import type * as C from '../../../contract/index.ts';
import {
  buildMessage, buildReport, buildResultOf, problemMessage, problemsOf, resolveInWorkspace, safeRepoPath, shortTestName, standingBuild, standingBuilds, summaryText, tracebackTail,
} from '../../src/buildProblems.ts';


const TRACEBACK = [
  'Traceback (most recent call last):',
  '  File "/srv/checkout/sale_ext/tests/test_sale.py", line 14, in test_total',
  '    self.assertEqual(order.amount_total, 2)',
  '  File "/opt/odoo/odoo/tests/common.py", line 512, in assertEqual',
  '    super().assertEqual(first, second, msg)',
  'AssertionError: 1 != 2',
].join('\n');
const failure = (over: Partial<C.TestFailure> = {}): C.TestFailure => ({
  outcome: 'failed', test: 'test_total (odoo.addons.sale_ext.tests.test_sale.TestSale.test_total)', module: 'sale_ext',
  file: 'sale_ext/tests/test_sale.py', line: 14, message: 'AssertionError: 1 != 2', traceback: TRACEBACK, ...over,
});
const result = (failures: C.TestFailure[], tests = 14): C.BuildResult => ({
  revision: 'a'.repeat(40), odooVersion: '17.0', seconds: 42.5,
  tests: { modules: ['sale_ext', 'stock_ext'], tests, failed: failures.filter((f) => f.outcome === 'failed').length, errors: failures.filter((f) => f.outcome === 'error').length, failures },
});
const run = (id: number, status: C.Run['status'], res: unknown, kind = 'build', environment = 'dev-feature'): C.Run => ({
  id, project: 'acme', environment, kind, status, params: {}, requestedBy: null, idempotencyKey: null, approvalId: null,
  attempts: 1, maxAttempts: 1, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false, queuedAt: '2026-12-01T10:00:00.000Z',
  startedAt: null, finishedAt: '2026-12-01T10:05:00.000Z', error: status === 'failed' ? '1 test failed' : null, result: res, lastSeq: 10,
});

describe('a build run\'s result', () => {
  it('is read with the contract\'s schema; a malformed result, another kind or none is nothing (no throw)', () => {
    const good = result([failure()]);
    assert.deepEqual(buildResultOf(run(1, 'failed', good)), good);
    assert.equal(buildResultOf(run(1, 'failed', { ...good, tests: { ...good.tests, failures: 'lots' } })), null);
    assert.equal(buildResultOf(run(1, 'failed', { revision: 1 })), null);
    assert.equal(buildResultOf(run(1, 'failed', 'AssertionError')), null);
    assert.equal(buildResultOf(run(1, 'failed', null)), null);
    assert.equal(buildResultOf(run(1, 'succeeded', good, 'deploy')), null, 'only a build\'s result is a build result');
    assert.equal(buildResultOf(run(1, 'failed', result([failure({ line: -3 })]))), null);
    // What the log panel header gets: nothing for a malformed result either.
    assert.equal(buildMessage(run(1, 'failed', { revision: 'x' }), []), null);
    assert.deepEqual(buildMessage(run(2, 'failed', good), [])?.failures.map((f) => [f.test, f.inWorkspace]), [[failure().test, false]]);
  });

  it('the standing build of an environment: the newest finished one that tested something', () => {
    const failing = run(10, 'failed', result([failure()]));
    assert.equal(standingBuild('acme', 'dev-feature', [failing])?.run.id, 10);
    // A newer passing build stands (its problems are none): it clears the failures.
    const passing = run(12, 'succeeded', result([]));
    assert.equal(standingBuild('acme', 'dev-feature', [passing, failing])?.run.id, 12);
    assert.equal(standingBuild('acme', 'dev-feature', [failing, passing])?.run.id, 12, 'in any order');
    assert.equal(standingBuild('acme', 'dev-feature', [run(12, 'succeeded', null), failing])?.result, null, 'a passing build without a result stands too');
    // A newer build that ran no tests (failed before, cancelled, still running) leaves the earlier verdict.
    for (const newer of [run(13, 'failed', null), run(13, 'failed', { broken: true }), run(13, 'cancelled', null), run(13, 'running', null), run(13, 'queued', null)]) {
      assert.equal(standingBuild('acme', 'dev-feature', [newer, failing])?.run.id, 10, `${newer.status} ${JSON.stringify(newer.result)}`);
    }
    assert.equal(standingBuild('acme', 'dev-feature', [run(14, 'failed', result([failure()]), 'deploy')]), null, 'other kinds are not builds');
    assert.equal(standingBuild('acme', 'dev-feature', []), null);
  });

  it('every environment of every project the store lists; an environment it no longer lists has none', () => {
    const runs: Record<string, C.Run[]> = {
      'acme/dev-feature': [run(10, 'failed', result([failure()]))],
      'acme/staging': [run(11, 'succeeded', result([]), 'build', 'staging')],
      'acme/gone': [run(9, 'failed', result([failure()]), 'build', 'gone')],
    };
    const store = { projects: [{ slug: 'acme' }], environments: () => [{ name: 'dev-feature' }, { name: 'staging' }], runsOf: (p: string, e: string) => runs[`${p}/${e}`] ?? [] };
    assert.deepEqual(standingBuilds(store).map((b) => [b.environment, b.run.id]), [['dev-feature', 10], ['staging', 11]]);
    assert.deepEqual(standingBuilds({ ...store, projects: [] }), [], 'signed out: nothing');
  });
});

describe('a failure\'s file in the workspace', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'odooops-build-problems-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const touch = (...parts: string[]) => {
    mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true });
    writeFileSync(join(dir, ...parts), '# test\n');
    return join(dir, ...parts);
  };

  it('only plain repository-relative paths are looked up', () => {
    assert.equal(safeRepoPath('sale_ext/tests/test_sale.py'), 'sale_ext/tests/test_sale.py');
    for (const bad of ['../etc/passwd', 'sale_ext/../../x.py', '/etc/passwd', '~/x.py', 'a//b.py', './a.py', 'a/*.py', 'a/{b,c}.py', 'C:\\x.py', 'file:///etc/passwd', '', null, 42, 'x\ny.py']) {
      assert.equal(safeRepoPath(bad), null, JSON.stringify(bad));
    }
  });

  it('the repository as the workspace, as a subfolder of it, or in a later folder; else nowhere', () => {
    const root = join(dir, 'ws-root');
    const atRoot = touch('ws-root', 'sale_ext', 'tests', 'test_sale.py');
    assert.equal(resolveInWorkspace('sale_ext/tests/test_sale.py', [root]), atRoot);
    // A workspace whose folder holds the checkout one level down (or several checkouts).
    const parent = join(dir, 'ws-parent');
    touch('ws-parent', 'aaa-other-repo', 'README.md');
    const inSub = touch('ws-parent', 'acme-addons', 'sale_ext', 'tests', 'test_sale.py');
    assert.equal(resolveInWorkspace('sale_ext/tests/test_sale.py', [parent]), inSub);
    // Several folders: the first that has it at its root wins over a subfolder of an earlier one.
    assert.equal(resolveInWorkspace('sale_ext/tests/test_sale.py', [parent, root]), atRoot);
    assert.equal(resolveInWorkspace('sale_ext/tests/test_missing.py', [root, parent]), null);
    assert.equal(resolveInWorkspace(null, [root]), null);
    assert.equal(resolveInWorkspace('sale_ext/tests', [root]), null, 'a folder is no file');
    // A path that climbs out is never looked at, even where it would exist.
    touch('secret.py');
    assert.equal(resolveInWorkspace('../secret.py', [root]), null);
    assert.equal(resolveInWorkspace(join(dir, 'secret.py'), [root]), null);
    // Hidden folders and node_modules are not searched for checkouts.
    touch('ws-hidden', '.git', 'sale_ext', 'x.py');
    touch('ws-hidden', 'node_modules', 'sale_ext', 'x.py');
    assert.equal(resolveInWorkspace('sale_ext/x.py', [join(dir, 'ws-hidden')]), null);
    // A link the workspace has is the workspace's choice: followed like any file there.
    symlinkSync(join(root, 'sale_ext'), join(dir, 'ws-hidden', 'linked'));
    assert.equal(resolveInWorkspace('linked/tests/test_sale.py', [join(dir, 'ws-hidden')]), join(dir, 'ws-hidden', 'linked', 'tests', 'test_sale.py'));
  });
});

describe('problems of a build', () => {
  it('one per failure in the workspace, at its line, "test_x failed: …" with the traceback\'s last lines; the others listed apart', () => {
    const b = standingBuild('acme', 'dev-feature', [run(12, 'failed', result([
      failure(),
      failure({ outcome: 'error', test: 'test_stock (odoo.addons.stock_ext.tests.test_stock.T.test_stock)', file: 'stock_ext/tests/test_stock.py', line: null, message: "KeyError: 'x'", traceback: "Traceback…\nKeyError: 'x'" }),
      failure({ test: 'test_core (odoo.addons.base.tests.T.test_core)', file: null, line: null }),
      failure({ test: 'test_elsewhere (x)', file: 'not_here/tests/test_x.py' }),
    ]))])!;
    const where: Record<string, string> = { 'sale_ext/tests/test_sale.py': '/ws/sale_ext/tests/test_sale.py', 'stock_ext/tests/test_stock.py': '/ws/stock_ext/tests/test_stock.py' };
    const { problems, elsewhere } = problemsOf(b, (f) => (f ? where[f] ?? null : null));
    assert.deepEqual(problems.map((p) => [p.path, p.line, p.source, p.runId, p.index]), [
      ['/ws/sale_ext/tests/test_sale.py', 14, 'OdooOps build #12 (dev-feature)', 12, 0],
      ['/ws/stock_ext/tests/test_stock.py', 1, 'OdooOps build #12 (dev-feature)', 12, 1],
    ]);
    const [first, second] = problems.map((p) => p.message.split('\n'));
    assert.equal(first![0], 'test_total failed: AssertionError: 1 != 2');
    assert.deepEqual(first!.slice(1), tracebackTail(failure()));
    assert.equal(first!.at(-1), '    super().assertEqual(first, second, msg)', 'the message line is not repeated');
    assert.equal(first!.length, 1 + 5, 'the traceback\'s 5 lines before the message');
    const long = failure({ traceback: [...Array.from({ length: 30 }, (_, i) => `  frame ${i}`), 'AssertionError: 1 != 2'].join('\n') });
    assert.deepEqual(tracebackTail(long), Array.from({ length: 6 }, (_, i) => `  frame ${24 + i}`), 'at most the last 6');
    assert.equal(second![0], "test_stock errored: KeyError: 'x'");
    assert.deepEqual(elsewhere.map((f) => f.test), ['test_core (odoo.addons.base.tests.T.test_core)', 'test_elsewhere (x)']);
    assert.equal(problemMessage(failure({ traceback: '', message: '' })), 'test_total failed: (no message)');
  });

  it('the report lists every failure with its whole traceback, where the problems point', () => {
    const b = standingBuild('acme', 'dev-feature', [run(12, 'failed', result([failure(), failure({ test: 'test_two (x)', traceback: 'Traceback\nValueError: two', message: 'ValueError: two' })]))])!;
    const { text, starts } = buildReport(b);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^OdooOps build #12 of acme\/dev-feature: failed$/);
    assert.equal(lines[1], `revision ${'a'.repeat(40)} · Odoo 17.0 · 42.5 s`);
    assert.equal(lines[2], '14 tests · 2 failed · 0 errors · modules: sale_ext, stock_ext');
    assert.equal(starts.length, 2);
    assert.equal(lines[starts[0]! - 1], `FAIL: ${failure().test}  (sale_ext/tests/test_sale.py:14)`);
    assert.equal(lines[starts[1]! - 1], 'FAIL: test_two (x)  (sale_ext/tests/test_sale.py:14)');
    assert.ok(text.includes('    AssertionError: 1 != 2') && text.includes('    ValueError: two'));
  });

  it('names and counts as a person reads them', () => {
    assert.equal(shortTestName('test_x (odoo.addons.m.tests.test_f.C.test_x)'), 'test_x');
    assert.equal(shortTestName('TestClass.test_x'), 'TestClass.test_x');
    assert.equal(summaryText({ tests: 14, failed: 2, errors: 0 }), '14 tests · 2 failed · 0 errors');
    assert.equal(summaryText({ tests: 1, failed: 0, errors: 1 }), '1 test · 0 failed · 1 error');
  });
});
