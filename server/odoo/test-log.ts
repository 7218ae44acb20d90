// Odoo's test log (odoo-bin --test-enable … --stop-after-init) read into contract's TestSummary, as 17.0
// and 19.0 write it: a record per failed test ("ERROR <db> odoo.addons.<module>.tests.<file>: FAIL:
// TestClass.test_name" or "ERROR: …", the traceback on the lines after it), and at the end, whatever
// happened, "odoo.tests.result: N failed, M error(s) of K tests when loading database 'db'". Files in
// tracebacks are the worker's checkout paths: they come out relative to the repository's root (what the
// developer's workspace has), or null when no frame is in the repository (a failure inside Odoo itself).
// Pure: the build run hands it the lines it logged, the unit tests hand it captured real output.
import type { TestFailure, TestSummary } from '../../contract/index.ts';

/** "2026-12-01 15:07:03,587 19209 ERROR capdb170 odoo.addons.cap_mod.tests.test_cap: FAIL: TestCap.test_fails" */
const RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ ([A-Z]+) (\S+) ([\w.]+): (.*)$/;
const OUTCOME = /^(FAIL|ERROR): (.+?)\s*$/;
const RESULT = /^(\d+) failed, (\d+) error\(s\) of (\d+) tests?\b/;
const FRAME = /^\s*File "([^"]+)", line (\d+), in /;
const MAX_FAILURES = 100;
const MAX_TRACEBACK = 20_000;

export interface ParsedTestLog extends TestSummary {
  /** Whether Odoo's final "… of N tests" line was seen (odoo-bin got to the end of its tests). */
  finished: boolean;
  /** The last ERROR or CRITICAL record that is not a test's (why an install failed), for the run's error. */
  lastError: string | null;
}

interface LogRecord {
  level: string;
  logger: string;
  message: string;
  body: string[];
}

function records(lines: Iterable<string>): LogRecord[] {
  const out: LogRecord[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    const m = RECORD.exec(line);
    if (m) out.push({ level: m[1]!, logger: m[3]!, message: m[4]!.trimEnd(), body: [] });
    else if (out.length) out.at(-1)!.body.push(line);
  }
  return out;
}

/** The module a test logger belongs to: odoo.addons.<module>.tests.… → <module>. */
const moduleOf = (logger: string) => /^odoo\.addons\.([\w]+)\./.exec(logger)?.[1] ?? null;

/**
 * Parses Odoo's output. `checkout` is the worker's directory of the repository (its submodules inside
 * it): paths under it come out relative; `modules` are the modules whose tests were asked for.
 */
export function parseTestLog(lines: Iterable<string>, checkout: string, modules: string[]): ParsedTestLog {
  const root = checkout.replace(/\/+$/, '') + '/';
  const failures: TestFailure[] = [];
  let counted: { failed: number; errors: number; tests: number } | null = null;
  let lastError: string | null = null;
  let outcomes = { failed: 0, error: 0 };
  for (const r of records(lines)) {
    const outcome = OUTCOME.exec(r.message);
    if (r.level === 'ERROR' && outcome && r.logger.startsWith('odoo.addons.')) {
      const kind = outcome[1] === 'FAIL' ? 'failed' : 'error';
      outcomes[kind]++;
      if (failures.length < MAX_FAILURES) failures.push(failure(kind, outcome[2]!, r, root));
      continue;
    }
    if (r.logger === 'odoo.tests.result') {
      const m = RESULT.exec(r.message);
      if (m) counted = { failed: Number(m[1]), errors: Number(m[2]), tests: Number(m[3]) };
      continue;
    }
    if ((r.level === 'ERROR' || r.level === 'CRITICAL') && r.logger !== 'odoo.modules.loading') {
      const last = r.body.map((l) => l.trim()).filter(Boolean).at(-1);
      lastError = `${r.message}${last && last !== r.message ? `: ${last}` : ''}`.slice(0, 2000);
    }
  }
  return {
    modules,
    // Odoo's own count when it got that far; otherwise what the log showed (a build cut short).
    tests: counted?.tests ?? 0,
    failed: counted?.failed ?? outcomes.failed,
    errors: counted?.errors ?? outcomes.error,
    failures,
    finished: counted !== null,
    lastError,
  };
}

function failure(outcome: 'failed' | 'error', name: string, r: LogRecord, root: string): TestFailure {
  // Odoo 17/19 print "TestClass.test_name"; the logger names the file: the test's full dotted name.
  const method = name.split(' ')[0]!.split('.').at(-1)!;
  const test = name.includes('(') ? name : `${method} (${r.logger}.${name})`;
  const body = r.body.join('\n').replace(/\s+$/, '');
  const module = moduleOf(r.logger);
  // The test's own file, as Odoo imported it: <module>/…/tests/<file>.py somewhere in the checkout.
  const testFile = `/${r.logger.replace(/^odoo\.addons\./, '').replace(/\./g, '/')}.py`;
  let inRepo: { file: string; line: number } | null = null;
  let inTest: { file: string; line: number } | null = null;
  for (const l of r.body) {
    const f = FRAME.exec(l);
    if (!f || !f[1]!.startsWith(root)) continue;
    const frame = { file: f[1]!.slice(root.length), line: Number(f[2]) };
    inRepo = frame;
    if (f[1]!.endsWith(testFile)) inTest = frame;
  }
  const where = inTest ?? inRepo;
  const message = r.body.map((l) => l.trim()).filter(Boolean).at(-1) ?? r.message;
  return {
    outcome,
    test: test.slice(0, 1000),
    module,
    file: where?.file ?? null,
    line: where && where.line > 0 ? where.line : null,
    message: message.slice(0, 4000),
    // Worker paths become repository paths here too: the traceback is shown to the developer.
    traceback: body.split(root).join('').slice(0, MAX_TRACEBACK),
  };
}

/** "14 tests, 2 failed" (GitHub's commit status, the CLI's last line). */
export function summaryLine(t: { tests: number; failed: number; errors: number }): string {
  const bad = t.failed + t.errors;
  return `${t.tests} test${t.tests === 1 ? '' : 's'}, ${bad ? `${bad} failed` : 'all passed'}`;
}

/** "2 of 14 tests failed: test_x (my_module), …" (the failed run's error). */
export function failureMessage(t: TestSummary): string {
  const bad = t.failed + t.errors;
  const names = t.failures.slice(0, 5).map((f) => `${f.test.split(' ')[0]} (${f.module ?? 'unknown module'})`);
  const more = bad > names.length ? `, and ${bad - names.length} more` : '';
  return `${bad} of ${t.tests} tests failed${names.length ? `: ${names.join(', ')}${more}` : ''}`;
}
