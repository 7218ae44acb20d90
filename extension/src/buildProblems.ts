// What the editor shows of builds' tests: which build of each environment stands (the newest finished
// one that says something about the tests), where each failure's file is in the workspace, and the
// problems made of them. No vscode import: unit-tested alone; testProblems.ts hands them to VS Code.
// A result is parsed with the contract's schema and a malformed one shows nothing (never throws): the
// server that wrote it may be newer or older than this extension.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as C from '../../contract/index.ts';
import type { BuildHeader } from '../../webview/src/build.ts';
import { safeLogPath } from '../../webview/src/links.ts';

/** A build run's result when it is one (kind "build", a result the contract accepts), else null. */
export function buildResultOf(run: Pick<C.Run, 'kind' | 'result'>): C.BuildResult | null {
  if (run.kind !== 'build' || run.result === null || run.result === undefined) return null;
  const parsed = C.BuildResult.safeParse(run.result);
  return parsed.success ? parsed.data : null;
}

export interface StandingBuild {
  project: string;
  environment: string;
  run: C.Run;
  /** null for a passing build without a result (nothing to show, and nothing left standing). */
  result: C.BuildResult | null;
}

/**
 * The build whose tests stand for an environment: the newest finished one that tested something. A
 * passing build (it clears the problems), or a failed one with a result; a failed build without one
 * (requirements that did not install, a cancelled build) ran no tests and leaves the earlier verdict.
 */
export function standingBuild(project: string, environment: string, runs: C.Run[]): StandingBuild | null {
  let best: StandingBuild | null = null;
  for (const run of runs) {
    if (run.kind !== 'build' || (best && run.id < best.run.id)) continue;
    const result = buildResultOf(run);
    if (run.status === 'succeeded' || (run.status === 'failed' && result)) best = { project, environment, run, result };
  }
  return best;
}

/** Every environment's standing build, from what the store knows (projects → environments → runs). */
export function standingBuilds(store: {
  projects: { slug: string }[];
  environments(slug: string): { name: string }[];
  runsOf(slug: string, env: string): C.Run[];
}): StandingBuild[] {
  const out: StandingBuild[] = [];
  for (const p of store.projects) {
    for (const e of store.environments(p.slug)) {
      const b = standingBuild(p.slug, e.name, store.runsOf(p.slug, e.name));
      if (b) out.push(b);
    }
  }
  return out;
}

/**
 * A repository-relative path the workspace may be asked about: plain path characters (links.ts's rule:
 * no glob metacharacters, no "..", no backslash or scheme), not absolute, no empty or "." segments.
 * Anything else is only shown, never looked up.
 */
export function safeRepoPath(value: unknown): string | null {
  const path = safeLogPath(value);
  if (!path || path.startsWith('/') || path.startsWith('~')) return null;
  if (path.split('/').some((p) => p === '' || p === '.')) return null;
  return path;
}

export interface FileSystem {
  isFile(path: string): boolean;
  /** The folders directly in `dir` (not following names that start with "."). */
  folders(dir: string): string[];
}

export const nodeFileSystem: FileSystem = {
  isFile: (p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  },
  folders: (dir) => {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'node_modules').map((d) => join(dir, d.name)).sort();
    } catch {
      return [];
    }
  },
};

/**
 * Where a repository-relative file is in the workspace: in the first workspace folder that has it (the
 * repository opened as the workspace), else in a folder one level below one (the repository opened as a
 * subfolder: a workspace of several checkouts); null when nowhere, or when the path is not a plain
 * relative one.
 */
export function resolveInWorkspace(file: string | null, workspaceFolders: string[], fs: FileSystem = nodeFileSystem): string | null {
  const rel = safeRepoPath(file);
  if (!rel) return null;
  for (const root of workspaceFolders) {
    if (fs.isFile(join(root, rel))) return join(root, rel);
  }
  for (const root of workspaceFolders) {
    for (const sub of fs.folders(root)) {
      if (fs.isFile(join(sub, rel))) return join(sub, rel);
    }
  }
  return null;
}

/** Odoo's "test_x (odoo.addons.m.tests.test_f.TestClass.test_x)" → "test_x". */
export function shortTestName(test: string): string {
  const name = test.split(' (')[0]!.trim();
  return name || test;
}

/** How many traceback lines a problem's message carries (the hover shows them; the rest is a click away). */
export const TRACEBACK_TAIL = 6;

/** The traceback's last lines before the message line (which the problem's first line says already). */
export function tracebackTail(f: Pick<C.TestFailure, 'traceback' | 'message'>, n = TRACEBACK_TAIL): string[] {
  const lines = f.traceback.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim());
  if (lines.length && lines.at(-1)!.trim() === f.message.trim()) lines.pop();
  return lines.slice(-n);
}

export interface Problem {
  /** Absolute path of the file in the workspace. */
  path: string;
  /** 1-based; 1 when the log named no line. */
  line: number;
  /** First line "test_x failed: AssertionError: 1 != 2", then the traceback's last lines. */
  message: string;
  /** "OdooOps build #12 (dev-feature)". */
  source: string;
  runId: number;
  failure: C.TestFailure;
  /** Its index in the build's failures (where its traceback is in the build's report). */
  index: number;
}

export function problemMessage(f: C.TestFailure): string {
  const head = `${shortTestName(f.test)} ${f.outcome === 'error' ? 'errored' : 'failed'}: ${f.message.split('\n')[0]!.trim() || '(no message)'}`;
  const tail = tracebackTail(f);
  return tail.length ? `${head}\n${tail.join('\n')}` : head;
}

export const problemSource = (b: Pick<StandingBuild, 'environment'> & { run: Pick<C.Run, 'id'> }) => `OdooOps build #${b.run.id} (${b.environment})`;

/**
 * The problems of one standing build, and the failures that have no file in the workspace (shown in the
 * run's log panel only: a problem has to be somewhere).
 */
export function problemsOf(b: StandingBuild, resolve: (file: string | null) => string | null): { problems: Problem[]; elsewhere: C.TestFailure[] } {
  const problems: Problem[] = [];
  const elsewhere: C.TestFailure[] = [];
  for (const [index, failure] of (b.result?.tests.failures ?? []).entries()) {
    const path = resolve(failure.file);
    if (!path) {
      elsewhere.push(failure);
      continue;
    }
    problems.push({ path, line: failure.line ?? 1, message: problemMessage(failure), source: problemSource(b), runId: b.run.id, failure, index });
  }
  return { problems, elsewhere };
}

/** "14 tests · 2 failed · 0 errors" (what the log panel's header and the report say). */
export function summaryText(t: Pick<C.TestSummary, 'tests' | 'failed' | 'errors'>): string {
  return `${t.tests} test${t.tests === 1 ? '' : 's'} · ${t.failed} failed · ${t.errors} error${t.errors === 1 ? '' : 's'}`;
}

/**
 * The build's report as a read-only document (what a problem's "code" link opens): the summary, then
 * each failure with its whole traceback. Returns the text and the line each failure starts at.
 */
export function buildReport(b: StandingBuild): { text: string; starts: number[] } {
  const r = b.result;
  const out: string[] = [`OdooOps build #${b.run.id} of ${b.project}/${b.environment}: ${b.run.status}`];
  const starts: number[] = [];
  if (r) {
    out.push(`revision ${r.revision}${r.odooVersion ? ` · Odoo ${r.odooVersion}` : ''} · ${r.seconds.toFixed(1)} s`);
    out.push(`${summaryText(r.tests)} · modules: ${r.tests.modules.join(', ') || '(none)'}`);
    const shown = r.tests.failures.length;
    const total = r.tests.failed + r.tests.errors;
    if (total > shown) out.push(`(${total - shown} more not listed: the build's log has them)`);
    for (const f of r.tests.failures) {
      out.push('');
      starts.push(out.length + 1);
      out.push(`${f.outcome === 'error' ? 'ERROR' : 'FAIL'}: ${f.test}${f.file ? `  (${f.file}${f.line ? `:${f.line}` : ''})` : ''}`);
      out.push(...f.traceback.split('\n').map((l) => `    ${l}`));
    }
  }
  return { text: `${out.join('\n')}\n`, starts };
}

/** What the viewer's header shows of a build (webview/src/build.ts, which declares it): the summary, no tracebacks. */
export type BuildMessage = { type: 'build' } & BuildHeader;

/** The header message of a build run with a result the contract accepts; null for anything else. */
export function buildMessage(run: C.Run, folders: string[]): BuildMessage | null {
  const r = buildResultOf(run);
  if (!r) return null;
  return {
    type: 'build', status: run.status, revision: r.revision, odooVersion: r.odooVersion, seconds: r.seconds,
    modules: r.tests.modules, tests: r.tests.tests, failed: r.tests.failed, errors: r.tests.errors,
    failures: r.tests.failures.map((f) => ({
      outcome: f.outcome, test: f.test, file: f.file, line: f.line, message: f.message, inWorkspace: resolveInWorkspace(f.file, folders) !== null,
    })),
  };
}
