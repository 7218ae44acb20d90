// Run logs beside the editor: a webview panel per run. The extension host follows the run (Realtime
// batches plus history and gap fill by sequence number: the CLI's follower) and keeps every line, so a
// panel hidden and shown again, or restored after a window reload (WebviewPanelSerializer), is filled
// again from the start. The webview gets text and renders it as text, under a strict CSP with a nonce.
// Lines go to the webview in batches (at most 5000 a message, flushed every 50 ms), never one message per
// line; while the follower's live connection is down the webview shows that it is reconnecting. Panels
// share one editor group (logColumn.ts). The webview's links come back as messages: web addresses are
// opened outside VS Code (http and https only), file paths looked up in the workspace. A build run's
// tests (its result, read with the contract's schema) go to the viewer's header once the run has them.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import * as C from '../../contract/index.ts';
import { followLogs } from '../../client/follow.ts';
import type { ApiClient } from '../../client/api-client.ts';
import { viewerHtml } from '../../webview/src/page.ts';
import { safeExternalUrl, safeLogPath } from '../../webview/src/links.ts';
import { workspaceCandidates } from '../../webview/src/traceback.ts';
import { logPanelColumn } from './logColumn.ts';
import { buildMessage, resolveInWorkspace, type BuildMessage } from './buildProblems.ts';

export const VIEW_TYPE = 'odooops.runLogs';

const BATCH = 5000;
const FLUSH_MS = 50;
/** Lines a panel keeps for replay: as many as the viewer shows (webview/src/main.ts MAX_LINES). */
const KEEP = 1_000_000;

interface Panel {
  runId: number;
  panel: vscode.WebviewPanel;
  lines: C.LogLine[];
  status: string;
  connection: { type: 'connection'; state: 'live' | 'reconnecting' | 'done'; detail?: string } | null;
  /** Index in `lines` of the first line not yet posted to the webview. */
  posted: number;
  flush: ReturnType<typeof setTimeout> | undefined;
  disposed: boolean;
  /** Ends the follower when the panel closes (a reopened panel starts its own). */
  stop: AbortController;
  /** When it was opened or last became the active editor (logColumn.ts). */
  lastActive: number;
  /** A build's test summary for the header (the 'build' message), once the run has a result. */
  build: BuildMessage | null;
}

const fileFolders = () => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);

export class LogPanels implements vscode.WebviewPanelSerializer {
  private readonly panels = new Map<number, Panel>();
  private activations = 0;
  private readonly lineListeners = new Map<number, Set<(l: C.LogLine) => void>>();
  private readonly stateListeners = new Map<number, Set<(state: 'live' | 'reconnecting' | 'done', detail?: string) => void>>();
  private readonly context: vscode.ExtensionContext;
  /** Resolves once the extension has connected (a panel restored at start-up asks before that). */
  private readonly api: () => Promise<ApiClient | undefined>;

  constructor(context: vscode.ExtensionContext, api: () => Promise<ApiClient | undefined>) {
    this.context = context;
    this.api = api;
  }

  /** Every line of a run as its panel's follower receives it (the progress notification reads these). */
  onLine(runId: number, fn: (l: C.LogLine) => void): vscode.Disposable {
    const set = this.lineListeners.get(runId) ?? new Set();
    set.add(fn);
    this.lineListeners.set(runId, set);
    return new vscode.Disposable(() => {
      set.delete(fn);
      if (!set.size) this.lineListeners.delete(runId);
    });
  }

  /** Every change of a run's panel's live connection (live, reconnecting: why, done). */
  onConnection(runId: number, fn: (state: 'live' | 'reconnecting' | 'done', detail?: string) => void): vscode.Disposable {
    const set = this.stateListeners.get(runId) ?? new Set();
    set.add(fn);
    this.stateListeners.set(runId, set);
    return new vscode.Disposable(() => {
      set.delete(fn);
      if (!set.size) this.stateListeners.delete(runId);
    });
  }

  /** The panel's connection state: shown now, and again to a webview that is (re)created. */
  private connection(entry: Panel, m: NonNullable<Panel['connection']>): void {
    post(entry);
    entry.connection = m;
    if (!entry.disposed) void entry.panel.webview.postMessage(m);
    for (const fn of this.stateListeners.get(entry.runId) ?? []) fn(m.state, m.detail);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runId = Number((state as { runId?: number } | undefined)?.runId);
    if (!Number.isInteger(runId) || runId <= 0) return panel.dispose();
    this.attach(runId, panel);
  }

  open(runId: number): void {
    const existing = this.panels.get(runId);
    // Shown where it is (revealing it "beside" would move it into yet another column).
    if (existing) return existing.panel.reveal(existing.panel.viewColumn);
    const column = logPanelColumn([...this.panels.values()].map((p) => ({ viewColumn: p.panel.viewColumn, lastActive: p.lastActive })));
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Run #${runId}`, { viewColumn: column, preserveFocus: true }, {
      enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.context.extensionUri, 'dist')],
    });
    this.attach(runId, panel);
  }

  private attach(runId: number, panel: vscode.WebviewPanel): void {
    const entry: Panel = {
      runId, panel, lines: [], status: 'queued', connection: null, posted: 0, flush: undefined, disposed: false, stop: new AbortController(), lastActive: ++this.activations,
      build: null,
    };
    this.panels.set(runId, entry);
    panel.webview.html = viewerHtml({
      runId, nonce: randomBytes(16).toString('base64'), cspSource: panel.webview.cspSource,
      script: panel.webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview.js')).toString(),
    });
    panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) entry.lastActive = ++this.activations;
    });
    panel.onDidDispose(() => {
      entry.disposed = true;
      entry.stop.abort();
      clearTimeout(entry.flush);
      this.panels.delete(runId);
    });
    panel.webview.onDidReceiveMessage(async (m: { type: string; path?: unknown; line?: unknown; text?: string; url?: unknown }) => {
      if (m.type === 'ready') {
        // A new or re-shown webview: everything so far, then live lines as they come.
        void panel.webview.postMessage({ type: 'reset' });
        entry.posted = 0;
        post(entry);
        void panel.webview.postMessage({ type: 'status', status: entry.status, title: panel.title });
        if (entry.connection) void panel.webview.postMessage(entry.connection);
        if (entry.build) void panel.webview.postMessage(entry.build);
      } else if (m.type === 'open') {
        // From the page: checked again here (plain path characters, a line number).
        const path = safeLogPath(m.path);
        const line = Number.isInteger(m.line) && (m.line as number) > 0 ? (m.line as number) : 1;
        if (path) await openTraceback(path, line);
      } else if (m.type === 'openUrl') {
        const url = safeExternalUrl(m.url);
        if (url) await vscode.env.openExternal(vscode.Uri.parse(url, true));
      } else if (m.type === 'copy' && m.text !== undefined) {
        await vscode.env.clipboard.writeText(m.text);
        void vscode.window.setStatusBarMessage('OdooOps: log copied', 2000);
      }
    });
    void this.follow(runId, entry);
  }

  private async follow(runId: number, entry: Panel): Promise<void> {
    const api = await this.api();
    if (!api) {
      this.connection(entry, { type: 'connection', state: 'reconnecting', detail: 'not connected to an OdooOps server: run "OdooOps: Connect…"' });
      return;
    }
    try {
      const run = await api.get(`/api/runs/${runId}`, C.Run);
      this.showBuild(entry, run);
      entry.panel.title = `${run.kind} #${run.id} · ${run.environment}`;
      entry.status = run.status;
      void entry.panel.webview.postMessage({ type: 'status', status: run.status, title: entry.panel.title });
      this.connection(entry, { type: 'connection', state: 'live' });
      const final = await followLogs(api, runId, 0, (l) => {
        if (entry.status === 'queued') {
          // Lines mean it runs (the final state comes when the follower ends).
          entry.status = 'running';
          void entry.panel.webview.postMessage({ type: 'status', status: 'running', title: entry.panel.title });
        }
        entry.lines.push(l);
        for (const fn of this.lineListeners.get(runId) ?? []) fn(l);
        if (entry.lines.length >= KEEP + BATCH) {
          // Bounded like the viewer: the oldest lines go (they stay readable through the API and CLI).
          const dropped = entry.lines.length - KEEP;
          entry.lines.splice(0, dropped);
          entry.posted = Math.max(0, entry.posted - dropped);
        }
        if (entry.lines.length - entry.posted >= BATCH) post(entry);
        else entry.flush ??= setTimeout(() => post(entry), FLUSH_MS);
      }, { signal: entry.stop.signal, onState: (state, detail) => this.connection(entry, { type: 'connection', state, ...(detail ? { detail } : {}) }) });
      if (entry.disposed) return;
      post(entry);
      entry.status = final;
      void entry.panel.webview.postMessage({ type: 'status', status: final, title: entry.panel.title });
      this.connection(entry, { type: 'connection', state: 'done' });
      // A build's result is written as it finishes: read once more for the header.
      if (run.kind === 'build' && !entry.build) this.showBuild(entry, await api.get(`/api/runs/${runId}`, C.Run));
    } catch (err) {
      if (!entry.disposed) void vscode.window.showErrorMessage(`OdooOps: cannot follow run ${runId}: ${(err as Error).message}`);
    }
  }

  /** The build's summary in the panel's header, when the run is a build with a result. */
  private showBuild(entry: Panel, run: C.Run): void {
    const m = buildMessage(run, fileFolders());
    if (!m || entry.disposed) return;
    entry.build = m;
    void entry.panel.webview.postMessage(m);
  }
}

/** Posts the lines the webview has not had yet, in messages of at most BATCH lines. */
function post(entry: Panel): void {
  clearTimeout(entry.flush);
  entry.flush = undefined;
  // A closed webview takes nothing (its follower is stopping).
  if (entry.disposed) return;
  for (let i = entry.posted; i < entry.lines.length; i += BATCH) {
    void entry.panel.webview.postMessage({ type: 'lines', lines: entry.lines.slice(i, i + BATCH) });
  }
  entry.posted = entry.lines.length;
}

/** Opens the workspace file a traceback or a `path:line` names, at its line, when the workspace has it. */
export async function openTraceback(path: string, line: number): Promise<void> {
  // A repository-relative path (a build's failing test) where the Problems view finds it, first.
  const exact = resolveInWorkspace(path, fileFolders());
  if (exact) return void await showAt(vscode.Uri.file(exact), line);
  // A bare file name ("sale.py:12") is looked for as such; a path by its tails, longest first.
  const candidates = path.includes('/') ? workspaceCandidates(path) : [path];
  for (const candidate of candidates) {
    const found = await vscode.workspace.findFiles(`**/${candidate}`, '**/node_modules/**', 2);
    if (found.length === 1) return void await showAt(found[0]!, line);
  }
  void vscode.window.showInformationMessage(`OdooOps: ${path} is not in this workspace`);
}

async function showAt(uri: vscode.Uri, line: number): Promise<void> {
  const doc = await vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.One });
  const pos = new vscode.Position(Math.max(0, line - 1), 0);
  doc.selection = new vscode.Selection(pos, pos);
  doc.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
}
