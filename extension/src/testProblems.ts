// Failed tests of builds as VS Code problems (the Problems view, squiggles, the hover), as a test runner
// or a linter shows them: one Error per failure at its file and line, "test_x failed: AssertionError…",
// from "OdooOps build #12 (dev-feature)". For each environment only its standing build counts (the newest
// finished one that tested something, buildProblems.ts): a newer passing build clears its problems, an
// environment that is gone or signing out clears them. The problem's code opens the build's report (every
// failure with its whole traceback, a read-only document), its related information points at the
// failure's traceback there, and a quick fix opens the build's log. Failures whose file is not in the
// workspace are listed in the build's log panel only.
import { readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import { buildReport, problemsOf, resolveInWorkspace, standingBuilds, type Problem, type StandingBuild } from './buildProblems.ts';
import type { Store } from './store.ts';

export const REPORT_SCHEME = 'odooops-build';
const COLLECTION = 'OdooOps tests';

/** The report document of a build: odooops-build:/<project>/<environment>/build-<id>.txt. */
export function reportUri(b: Pick<StandingBuild, 'project' | 'environment'> & { run: { id: number } }): vscode.Uri {
  return vscode.Uri.from({ scheme: REPORT_SCHEME, path: `/${b.project}/${b.environment}/build-${b.run.id}.txt` });
}

/** The line's text, from its first non-blank character to its end (the whole line when it cannot be read). */
function lineRange(path: string, line: number): vscode.Range {
  const at = Math.max(0, line - 1);
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8').split('\n', at + 1)[at]?.replace(/\r$/, '');
  } catch {
    // Unreadable now: VS Code clamps the range to the line when it shows it.
  }
  if (text === undefined) return new vscode.Range(at, 0, at, 10_000);
  const start = text.length - text.trimStart().length;
  return new vscode.Range(at, start === text.length ? 0 : start, at, text.length);
}

export class TestProblems implements vscode.TextDocumentContentProvider, vscode.CodeActionProvider, vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection(COLLECTION);
  /** The standing builds by run id (what the report documents show). */
  private readonly builds = new Map<number, StandingBuild>();
  /** Failures of the standing builds that have no file in the workspace. */
  elsewhere: { runId: number; test: string; file: string | null }[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  private last = '';
  /** A refresh is due whatever the builds (files changed). */
  private force = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
    const off = store.onDidChange(() => this.schedule());
    this.disposables.push(
      this.collection,
      { dispose: off },
      { dispose: () => clearTimeout(this.timer) },
      vscode.workspace.registerTextDocumentContentProvider(REPORT_SCHEME, this),
      vscode.languages.registerCodeActionsProvider({ scheme: 'file' }, this, { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] }),
      // A folder added or removed can hold (or held) the failing files.
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh(true)),
    );
    // A file created or deleted (a checkout, a branch switch) may be one a failure names.
    const files = vscode.workspace.createFileSystemWatcher('**/*.py', false, true, false);
    const again = () => {
      if (this.builds.size) this.schedule(true);
    };
    this.disposables.push(files, files.onDidCreate(again), files.onDidDelete(again));
    this.refresh();
  }

  private schedule(force = false): void {
    // A load, a burst of run events or of files is many changes: one refresh after them.
    this.force ||= force;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const f = this.force;
      this.force = false;
      this.refresh(f);
    }, force ? 500 : 50);
  }

  /** Sets the problems from the store's standing builds; nothing happens when those did not change. */
  refresh(force = false): void {
    const builds = standingBuilds(this.store);
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const key = JSON.stringify([folders, builds.map((b) => [b.run.id, b.run.status, b.result ? 1 : 0])]);
    if (!force && key === this.last) return;
    this.last = key;
    this.builds.clear();
    const byFile = new Map<string, vscode.Diagnostic[]>();
    const elsewhere: TestProblems['elsewhere'] = [];
    for (const b of builds) {
      this.builds.set(b.run.id, b);
      const { problems, elsewhere: out } = problemsOf(b, (file) => resolveInWorkspace(file, folders));
      for (const f of out) elsewhere.push({ runId: b.run.id, test: f.test, file: f.file });
      const report = buildReport(b);
      for (const p of problems) {
        const list = byFile.get(p.path) ?? [];
        list.push(this.diagnostic(b, p, report.starts[p.index] ?? 1));
        byFile.set(p.path, list);
      }
    }
    this.elsewhere = elsewhere;
    this.collection.clear();
    for (const [path, list] of byFile) this.collection.set(vscode.Uri.file(path), list);
  }

  private diagnostic(b: StandingBuild, p: Problem, reportLine: number): vscode.Diagnostic {
    const d = new vscode.Diagnostic(lineRange(p.path, p.line), p.message, vscode.DiagnosticSeverity.Error);
    d.source = p.source;
    const report = reportUri(b);
    d.code = { value: `build #${b.run.id}`, target: report.with({ fragment: `L${reportLine}` }) };
    const at = new vscode.Range(reportLine - 1, 0, reportLine - 1, 0);
    d.relatedInformation = [new vscode.DiagnosticRelatedInformation(new vscode.Location(report, at), `the whole traceback (build #${b.run.id}'s report)`)];
    return d;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const id = Number(/\/build-(\d+)\.txt$/.exec(uri.path)?.[1]);
    const b = this.builds.get(id);
    return b ? buildReport(b).text : `OdooOps: build #${Number.isFinite(id) ? id : '?'} is not an environment's latest build any more: open its log from the OdooOps view.\n`;
  }

  provideCodeActions(_doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    const seen = new Set<number>();
    for (const d of context.diagnostics) {
      const id = Number(/^OdooOps build #(\d+) /.exec(d.source ?? '')?.[1]);
      if (!id || seen.has(id) || !this.builds.has(id)) continue;
      seen.add(id);
      const log = new vscode.CodeAction(`Open the log of build #${id}`, vscode.CodeActionKind.QuickFix);
      log.command = { title: log.title, command: 'odooops.openRunLogs', arguments: [{ runId: id }] };
      log.diagnostics = [d];
      const report = new vscode.CodeAction(`Show the tracebacks of build #${id}`, vscode.CodeActionKind.QuickFix);
      report.command = { title: report.title, command: 'vscode.open', arguments: [reportUri(this.builds.get(id)!), { preview: true }] };
      report.diagnostics = [d];
      out.push(log, report);
    }
    return out;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
